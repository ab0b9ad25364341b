//! One task per daemon connection: Noise handshake, registration, then requests in and peer
//! map updates out.

use crate::hub::{error_code, unix_now, Hub};
use crate::quic::{read_frame, write_frame};
use anyhow::{anyhow, Context, Result};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use warren_proto::control::auth::{ServerHandshake, BINDING_LEN, EXPORTER_LABEL};
use warren_proto::control::msg::{
    ClientMsg, ErrorCode, Hello, ServerMsg, Welcome, CONTROL_VERSION,
};
use warren_proto::key::NodeKey;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Leases last 30 days; renewing hourly while connected keeps them far from expiry.
const RENEW_EVERY: Duration = Duration::from_secs(3600);

pub struct Server {
    pub secret: [u8; 32],
    pub stun_ports: Vec<u16>,
    pub hub: Mutex<Hub>,
}

impl Server {
    fn hub(&self) -> std::sync::MutexGuard<'_, Hub> {
        self.hub.lock().expect("coordinator state poisoned")
    }
}

pub async fn serve(endpoint: quinn::Endpoint, server: Arc<Server>) -> Result<()> {
    while let Some(incoming) = endpoint.accept().await {
        let server = server.clone();
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            if let Err(e) = connection(incoming, &server).await {
                tracing::debug!(%remote, "connection ended: {e:#}");
            }
        });
    }
    Ok(())
}

async fn connection(incoming: quinn::Incoming, server: &Server) -> Result<()> {
    let conn = incoming.await?;
    let remote = conn.remote_address();
    let mut binding = [0u8; BINDING_LEN];
    conn.export_keying_material(&mut binding, EXPORTER_LABEL, b"")
        .map_err(|_| anyhow!("TLS exporter unavailable"))?;
    let (mut send, mut recv) = tokio::time::timeout(HANDSHAKE_TIMEOUT, conn.accept_bi())
        .await
        .context("no control stream")??;
    let first = tokio::time::timeout(HANDSHAKE_TIMEOUT, read_frame(&mut recv))
        .await
        .context("no handshake")??;
    // Nothing is accepted from a node before its key is proven.
    let hs = ServerHandshake::accept(&server.secret, &binding, &first)?;
    let node = hs.node;
    let hello: Hello = serde_json::from_slice(&hs.payload).context("bad hello")?;
    let answer = if hello.v != CONTROL_VERSION {
        Err((
            ErrorCode::Internal,
            format!(
                "this coordinator speaks control version {CONTROL_VERSION}, the daemon {}: \
                 update the older one",
                hello.v
            ),
        ))
    } else {
        register(server, node, &hello)
    };
    let payload = match &answer {
        Ok(welcome) => serde_json::to_vec(welcome)?,
        Err((code, message)) => serde_json::to_vec(&ServerMsg::Error {
            id: 0,
            code: *code,
            message: message.clone(),
        })?,
    };
    write_frame(&mut send, &hs.reply(&payload)?).await?;
    if answer.is_err() {
        send.finish()?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        return Ok(());
    }
    tracing::info!(%remote, node = %node, name = %hello.name, "node connected");

    // A guess at the node's reflexive WireGuard endpoint until it reports a STUN answer: the
    // address its control connection comes from, with its UDP port. Right for public hosts and
    // for NATs that keep ports.
    let reflexive_guess = SocketAddr::new(remote.ip(), hello.udp_port);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let session = {
        let mut hub = server.hub();
        let session = hub.go_online(node, tx, hello.lan_endpoints.clone(), Some(reflexive_guess));
        let peers = hub.peers(&node);
        hub.announce(&node, &peers);
        session
    };

    let writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            let bytes = serde_json::to_vec(&msg).expect("serializable");
            if write_frame(&mut send, &bytes).await.is_err() {
                break;
            }
        }
    });
    let result = requests(server, node, remote, &mut recv).await;
    writer.abort();
    let mut hub = server.hub();
    if hub.go_offline(&node, session) {
        tracing::info!(node = %node, "node disconnected");
        for peer in hub.peers(&node) {
            if let Some(info) = hub.peer_info(&peer, &node) {
                hub.send(&peer, ServerMsg::PeerUpsert { peer: info });
            }
        }
    }
    result
}

fn register(server: &Server, node: NodeKey, hello: &Hello) -> Result<Welcome, (ErrorCode, String)> {
    let mut hub = server.hub();
    let changes = hub
        .registry
        .register_node(node, &hello.name, unix_now())
        .map_err(|e| (error_code(&e), e.to_string()))?;
    hub.persist(&changes).map_err(|e| {
        (
            ErrorCode::Internal,
            format!("coordinator storage failed: {e:#}"),
        )
    })?;
    let lease = hub
        .registry
        .lease_of(&node)
        .ok_or((ErrorCode::Internal, "no address lease".to_string()))?;
    Ok(Welcome {
        v: CONTROL_VERSION,
        overlay_ip: lease.addr.into(),
        networks: hub.registry.networks_of(&node),
        stun_ports: server.stun_ports.clone(),
    })
}

async fn requests(
    server: &Server,
    node: NodeKey,
    remote: SocketAddr,
    recv: &mut quinn::RecvStream,
) -> Result<()> {
    let mut renew = tokio::time::interval(RENEW_EVERY);
    renew.tick().await;
    loop {
        let frame = tokio::select! {
            f = read_frame(recv) => f?,
            _ = renew.tick() => {
                let mut hub = server.hub();
                if let Ok(changes) = hub.registry.renew_lease(node, unix_now()) {
                    hub.persist(&changes)?;
                }
                continue;
            }
        };
        let msg: ClientMsg = match serde_json::from_slice(&frame) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(node = %node, "bad request: {e}");
                continue;
            }
        };
        handle(server, node, remote, msg).await;
    }
}

async fn handle(server: &Server, node: NodeKey, remote: SocketAddr, msg: ClientMsg) {
    let (id, outcome) = match msg {
        ClientMsg::CreateNetwork { id, name, password } => {
            let mut salt = [0u8; 16];
            let _ = getrandom::getrandom(&mut salt);
            (
                id,
                membership(server, node, Some(remote), |hub| {
                    hub.registry
                        .create_network(node, &name, &password, &salt, unix_now())
                }),
            )
        }
        ClientMsg::JoinNetwork { id, name, password } => (
            id,
            membership(server, node, Some(remote), |hub| {
                hub.registry
                    .join_network(node, &name, &password, unix_now())
            }),
        ),
        ClientMsg::LeaveNetwork { id, name } => (
            id,
            membership(server, node, None, |hub| {
                hub.registry.leave_network(node, &name)
            }),
        ),
        ClientMsg::Endpoints {
            lan,
            reflexive,
            nat,
        } => {
            let mut hub = server.hub();
            if let Some(o) = hub.online.get_mut(&node) {
                o.lan = lan;
                if reflexive.is_some() {
                    o.reflexive = reflexive;
                }
                o.nat = nat;
            }
            let peers = hub.peers(&node);
            hub.announce(&node, &peers);
            return;
        }
    };
    let reply = match outcome {
        Ok(()) => ServerMsg::Ok { id },
        Err((code, message)) => ServerMsg::Error { id, code, message },
    };
    server.hub().send(&node, reply);
}

/// Runs a membership operation, persists it, and pushes the peers it gained or lost.
/// Password-checking operations pass their source address for the per-source rate limit.
fn membership(
    server: &Server,
    node: NodeKey,
    rate_limited: Option<SocketAddr>,
    op: impl FnOnce(
        &mut Hub,
    ) -> Result<
        Vec<warren_coordinator_core::Change>,
        warren_coordinator_core::RegistryError,
    >,
) -> Result<(), (ErrorCode, String)> {
    let mut hub = server.hub();
    if let Some(source) = rate_limited {
        hub.check_rate(source.ip())
            .map_err(|m| (ErrorCode::RateLimited, m))?;
    }
    let before = hub.peers(&node);
    let changes = op(&mut hub).map_err(|e| (error_code(&e), e.to_string()))?;
    hub.persist(&changes).map_err(|e| {
        (
            ErrorCode::Internal,
            format!("coordinator storage failed: {e:#}"),
        )
    })?;
    hub.reconcile(&node, &before);
    Ok(())
}
