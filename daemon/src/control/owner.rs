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
            "locked {network}: new members now wait for your approval (they are listed as \
             join requests; unlock {network} to let them in directly again)"
        ),
        ClientMsg::LockNetwork { network, .. } => {
            format!("unlocked {network}: the password or an invite lets new members in again")
        }
        ClientMsg::AnswerRequest {
            network,
            approve: true,
            ..
        } => format!("approved: the host is now a member of {network}"),
        ClientMsg::AnswerRequest { network, .. } => format!(
            "turned down the request to join {network} (the host may ask again; remove and \
             ban it to turn it away for good)"
        ),
        ClientMsg::RemoveMember {
            network, ban: true, ..
        } => format!("removed the host from {network} and banned it: it cannot join again"),
        ClientMsg::RemoveMember { network, .. } => format!(
            "removed the host from {network} (it can join again with the password or an \
             invite; remove and ban it to stop that)"
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
         you are let in as soon as they approve, with nothing more to do"
    ))));
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_proto::api::CoordinatorStatus;
    use warren_proto::control::msg::JoinRequest;
    use warren_proto::key::NodeKey;

    fn view(networks: &[&str]) -> ControlView {
        ControlView {
            coordinator: Some(CoordinatorStatus {
                address: "203.0.113.1:7443".into(),
                name: "alice".into(),
                overlay_ip: None,
                public_key: NodeKey([9; 32]),
                connected: true,
                last_error: None,
                networks: networks.iter().map(|s| s.to_string()).collect(),
                rtt_ms: None,
                transport: None,
                owned: vec![],
                locked: vec![],
                requests: vec![],
                waiting: vec![],
                name_taken: false,
            }),
            ..Default::default()
        }
    }

    fn net(name: &str, member: bool, owned: bool, locked: bool) -> NetworkState {
        NetworkState {
            name: name.into(),
            member,
            owned,
            locked,
            requests: vec![],
        }
    }

    #[test]
    fn a_pushed_network_list_replaces_what_the_session_knew() {
        let mut v = view(&["lan", "old"]);
        let mut session = vec!["lan".to_string(), "old".to_string()];
        let mut lan = net("lan", true, true, true);
        lan.requests.push(JoinRequest {
            key: NodeKey([2; 32]),
            name: "bob".into(),
            asked_at: 5,
        });
        let states = vec![
            lan,
            net("left", false, true, false),
            net("work", true, false, true),
        ];
        apply_networks(
            &mut v,
            &mut session,
            states,
            vec!["club".into()],
            Some("x".into()),
        );
        let c = v.coordinator.unwrap();
        // "old" was renamed or deleted; "left" is owned but not joined.
        assert_eq!(session, ["lan", "work"]);
        assert_eq!(c.networks, ["lan", "work"]);
        assert_eq!(c.owned, ["lan", "left"]);
        assert_eq!(c.locked, ["lan", "work"]);
        assert_eq!(c.waiting, ["club"]);
        assert_eq!(c.requests.len(), 1);
        assert_eq!(
            (c.requests[0].network.as_str(), c.requests[0].name.as_str()),
            ("lan", "bob")
        );
    }

    #[test]
    fn owner_answers_name_the_next_step() {
        let lock = ClientMsg::LockNetwork {
            id: 1,
            network: "lan".into(),
            locked: true,
        };
        // Words the CLI and the window can both show: no command lines, no flags.
        assert!(done_text(&lock).contains("join requests"));
        assert!(!done_text(&lock).contains('`'));
        let remove = ClientMsg::RemoveMember {
            id: 1,
            network: "lan".into(),
            node: NodeKey([1; 32]),
            ban: false,
        };
        assert!(done_text(&remove).contains("remove and ban"));
        assert!(!done_text(&remove).contains("--"));
    }
}
