//! The session's part in the network owner's controls: what the coordinator pushes about this
//! host's networks ([`ServerMsg::Networks`]) goes into the view, and the replies to owner
//! requests become plain-words answers. Peers that a removal or delete takes away arrive as
//! ordinary `PeerRemove`s, handled with the rest of the peer map.

use super::{Answer, ControlView, Reply};
use warren_proto::api::JoinRequestInfo;
use warren_proto::control::msg::{ClientMsg, NetworkState};

/// Applies a pushed network list: the coordinator's word on which networks this host is in,
/// owns, sees locked, answers requests for, and waits for. `networks` is the session's own
/// list (what a later `Ok` adds to), replaced too.
pub fn apply_networks(
    view: &mut ControlView,
    networks: &mut Vec<String>,
    states: Vec<NetworkState>,
    waiting: Vec<String>,
    note: Option<String>,
) {
    if let Some(note) = &note {
        // The one place a removed, turned-away or newly asked-for host hears why.
        tracing::info!("coordinator: {note}");
    }
    let Some(st) = view.coordinator.as_mut() else {
        return;
    };
    let member: Vec<String> = states
        .iter()
        .filter(|n| n.member)
        .map(|n| n.name.clone())
        .collect();
    *networks = member.clone();
    st.networks = member;
    st.owned = states
        .iter()
        .filter(|n| n.owned)
        .map(|n| n.name.clone())
        .collect();
    st.locked = states
        .iter()
        .filter(|n| n.locked)
        .map(|n| n.name.clone())
        .collect();
    st.requests = states
        .iter()
        .flat_map(|n| {
            n.requests.iter().map(|r| JoinRequestInfo {
                network: n.name.clone(),
                name: r.name.clone(),
                public_key: r.key,
                asked_at: r.asked_at,
            })
        })
        .collect();
    st.waiting = waiting;
}

/// What the user reads when the coordinator accepted one of the requests of this module
/// (`Ok`), or another request that changes no network list.
pub fn done_text(req: &ClientMsg) -> String {
    match req {
        ClientMsg::RevokeInvite {
            network, invite, ..
        } => format!("revoked invite {invite} of {network}: its code no longer works"),
        ClientMsg::RenameNetwork {
            network, new_name, ..
        } => format!(
            "network {network} is now called {new_name}; its members see the new name at once"
        ),
        ClientMsg::SetPassword { network, .. } => {
            format!("changed the password of {network}: members stay, new members need the new one")
        }
        ClientMsg::LockNetwork {
            network,
            locked: true,
            ..
        } => format!(
            "locked {network}: new members now wait for your approval (`warren requests` \
             lists them; `warren unlock {network}` ends this)"
        ),
        ClientMsg::LockNetwork { network, .. } => {
            format!("unlocked {network}: the password or an invite lets new members in again")
        }
        ClientMsg::AnswerRequest {
            network,
            approve: true,
            ..
        } => format!("approved: the host is now a member of {network}"),
        ClientMsg::AnswerRequest { network, .. } => {
            format!("turned down the request to join {network}")
        }
        ClientMsg::RemoveMember {
            network, ban: true, ..
        } => format!("removed the host from {network} and banned it: it cannot join again"),
        ClientMsg::RemoveMember { network, .. } => format!(
            "removed the host from {network} (it can join again with the password or an \
             invite; add --ban to stop that)"
        ),
        ClientMsg::DeleteNetwork { network, .. } => {
            format!("deleted network {network}: its members no longer have it")
        }
        _ => "ok".into(),
    }
}

/// Answers a join that became a request to a locked network.
pub fn pending(reply: Reply, network: &str) {
    let _ = reply.send(Ok(Answer::Done(format!(
        "network {network} is locked: your request to join waits for its owner's approval; \
         you are let in as soon as they approve (`warren status` shows it waiting until then)"
    ))));
}
