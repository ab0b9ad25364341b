//! The requests that run Argon2 — create a network, join one by password, set a new
//! password — without the hub lock: each costs tens of milliseconds of CPU, and under the
//! one lock every other session and the relay would wait for it. A request is checked and
//! rate limited under the lock, hashed on the blocking pool ([`HASHERS`] at a time), then
//! applied under the lock again by a registry step that checks everything anew (the network
//! may have been deleted, or its password changed, meanwhile).

use crate::hub::{error_code, unix_now};
use crate::server::{membership, Server};
use std::net::SocketAddr;
use warren_coordinator_core::{password, Change, Registry, RegistryError};
use warren_proto::control::msg::ErrorCode;
use warren_proto::key::NodeKey;

/// Argon2 runs at once, at most: more would only make each one slower, and would take every
/// core from the relay and the sessions.
pub const HASHERS: usize = 2;

type Refusal = (ErrorCode, String);

fn refused(e: RegistryError) -> Refusal {
    (error_code(&e), e.to_string())
}

/// Runs `work` on the blocking pool once one of the [`HASHERS`] is free.
async fn hashed<T: Send + 'static>(
    server: &Server,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Refusal> {
    let internal = |e: String| {
        (
            ErrorCode::Internal,
            format!("the coordinator could not check the password ({e}); try again"),
        )
    };
    let _permit = server
        .hashers
        .acquire()
        .await
        .map_err(|e| internal(e.to_string()))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| internal(e.to_string()))
}

/// Under the lock: the rate limits, then `check` (which needs no hash).
fn admitted<T>(
    server: &Server,
    remote: SocketAddr,
    network: &str,
    check: impl FnOnce(&Registry) -> Result<T, RegistryError>,
) -> Result<T, Refusal> {
    let mut hub = server.hub();
    hub.check_password_rate(remote.ip(), network)
        .map_err(|m| (ErrorCode::RateLimited, m))?;
    check(&hub.registry).map_err(refused)
}

pub async fn create(
    server: &Server,
    node: NodeKey,
    remote: SocketAddr,
    name: String,
    password: String,
    salt: [u8; 16],
) -> Result<Vec<Change>, Refusal> {
    let remembered = password.clone();
    let phc = new_hash(server, remote, &name, password, salt, |r, password| {
        r.check_create(node, &name, password).map(drop)
    })
    .await?;
    server.password_memo.remember(&phc, &remembered);
    membership(server, node, None, |hub| {
        hub.registry
            .create_network_hashed(node, &name, phc, unix_now())
    })
}

/// A new password's hash for `network`, once `check` (with the registry, under the lock)
/// and the rate limits allow it.
async fn new_hash(
    server: &Server,
    remote: SocketAddr,
    network: &str,
    password: String,
    salt: [u8; 16],
    check: impl FnOnce(&Registry, &str) -> Result<(), RegistryError>,
) -> Result<String, Refusal> {
    let params = admitted(server, remote, network, |r| {
        check(r, &password)?;
        Ok(r.hash_params().clone())
    })?;
    hashed(server, move || {
        Registry::hash_new_password(&params, &password, &salt)
    })
    .await?
    .map_err(refused)
}

pub async fn join(
    server: &Server,
    node: NodeKey,
    remote: SocketAddr,
    name: &str,
    password: String,
) -> Result<Vec<Change>, Refusal> {
    let known = {
        let mut hub = server.hub();
        let phc = hub.registry.hash_to_verify(node, name).map_err(refused)?;
        match server.password_memo.knows(&phc, &password) {
            true => {
                // Still a join from this address, which its limit counts (each costs a
                // database write and a fan-out).
                hub.check_rate(remote.ip())
                    .map_err(|m| (ErrorCode::RateLimited, m))?;
                Some(phc)
            }
            false => None,
        }
    };
    if let Some(phc) = known {
        // The right password, found right before: no Argon2, and none of the network's
        // password attempts spent (the registry step checks the network and its hash anew).
        return membership(server, node, None, |hub| {
            hub.registry
                .join_verified(node, name, &phc, true, unix_now())
        });
    }
    let phc = admitted(server, remote, name, |r| r.hash_to_verify(node, name))?;
    let verified = phc.clone();
    let remembered = password.clone();
    let right = hashed(server, move || {
        password::verify_password(&verified, &password)
    })
    .await?
    .map_err(|e| refused(e.into()))?;
    if right {
        server.password_memo.remember(&phc, &remembered);
    }
    membership(server, node, None, |hub| {
        hub.registry
            .join_verified(node, name, &phc, right, unix_now())
    })
}

pub async fn set(
    server: &Server,
    node: NodeKey,
    remote: SocketAddr,
    network: String,
    password: String,
    salt: [u8; 16],
) -> Result<Vec<Change>, Refusal> {
    let phc = new_hash(server, remote, &network, password, salt, |r, password| {
        r.check_set_password(node, &network, password).map(drop)
    })
    .await?;
    crate::owner::apply(
        server,
        &[node],
        |r| r.set_password_hashed(node, &network, phc),
        |_| None,
    )
}
