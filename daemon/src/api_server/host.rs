//! `warren host NETWORK`: start the coordinator on this PC, connect to it through loopback,
//! create the network there, and remember to host it after a restart.

use super::answer::{ask, current_name, request, request_to};
use super::ApiState;
use crate::control::{Answer, Command, CoordinatorSettings};
use warren_proto::api::{ApiError, ErrorCode};
use warren_proto::control::msg::ClientMsg;

pub async fn host(
    state: &ApiState,
    network: &str,
    password: Option<String>,
) -> Result<Answer, ApiError> {
    let hosting = &state.hosting;
    hosting.check_record()?;
    let key = hosting.coordinator_key()?;
    hosting.run();
    hosting.wait_ready().await?;
    // Networks of other coordinators stay: this host follows its own coordinator too.
    let connected_here = {
        let v = state.control.view.lock().expect("control view lock");
        v.by_key(&key).is_some_and(|c| c.connected)
    } && state.dataplane.node().is_up();
    if !connected_here {
        let settings = CoordinatorSettings {
            address: hosting.loopback_address(),
            public_key: key,
            name: current_name(state),
            alternates: Vec::new(),
        };
        ask(state, |r| Command::Up(Some(settings), r)).await?;
    }
    // Invites are the usual way in; a password nobody knows keeps password joins shut.
    let password = password
        .filter(|p| !p.is_empty())
        .unwrap_or_else(random_password);
    let created = request_to(
        state,
        key,
        ClientMsg::CreateNetwork {
            id: 0,
            name: network.to_string(),
            password,
        },
    )
    .await;
    match created {
        Ok(_) => {}
        Err(e) if hosting.hosts(network) && e.code == ErrorCode::NetworkExists => {
            return Ok(Answer::Done(format!(
                "this PC already hosts {network}; invite friends with `warren invite {network}`"
            )));
        }
        Err(e) => {
            stop_if_idle(state).await;
            return Err(e);
        }
    }
    hosting.add_network(network)?;
    Ok(Answer::Done(format!(
        "this PC now hosts network {network}: it is the network's coordinator and relay"
    )))
}

/// A failed first `host` leaves nothing running.
async fn stop_if_idle(state: &ApiState) {
    state.hosting.stop_if_idle().await;
}

fn random_password() -> String {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b).expect("the OS random source");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `warren delete NETWORK`: the owner deletes it for everyone; when this PC hosted it and
/// hosts nothing more, its coordinator stops and the router's port mappings go.
pub async fn delete(state: &ApiState, network: String) -> Result<Answer, ApiError> {
    let answer = request(
        state,
        ClientMsg::DeleteNetwork {
            id: 0,
            network: network.clone(),
        },
    )
    .await?;
    let hosted = state
        .hosting
        .status()
        .map(|h| h.networks)
        .unwrap_or_default();
    let last = hosted.len() == 1 && state.hosting.hosts(&network);
    if last {
        // Nothing left to follow on this PC's coordinator: log out while it still answers.
        if let Ok(key) = state.hosting.coordinator_key() {
            let _ = ask(state, |reply| Command::Logout {
                force: false,
                to: Some(key),
                reply,
            })
            .await;
        }
    }
    state.hosting.remove_network(&network).await?;
    if last {
        return Ok(Answer::Done(format!(
            "deleted network {network}; this PC hosts nothing any more, so its coordinator \
             stopped"
        )));
    }
    Ok(answer)
}
