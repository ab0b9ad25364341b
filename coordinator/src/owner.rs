//! The owner's controls on the control channel (the rules are the registry's, see
//! `warren_coordinator_core::registry::owner`), and the pushes that keep every affected host's
//! view of its networks and peers current at once:
//! - [`push_networks`]: a host's whole network list ([`ServerMsg::Networks`]): after every
//!   membership change of its own, to the owner when a request arrives, to every member after
//!   a rename, lock, removal or delete, and to a waiting host when it is answered.
//! - [`resync`]: a host's peers after a change that others made: peers it no longer shares a
//!   network with are removed (so its WireGuard paths to them close), the rest re-sent with
//!   the networks they now share, new ones introduced both ways.

use crate::hub::{error_code, unix_now, Hub};
use crate::server::{refresh_ticket, storage_failed, Server};
use warren_coordinator_core::{Change, Registry, RegistryError};
use warren_proto::control::msg::{ClientMsg, ErrorCode, ServerMsg};
use warren_proto::key::NodeKey;

/// Sends `node` its networks as the registry sees them now, with `note` saying why.
pub fn push_networks(hub: &Hub, node: &NodeKey, note: Option<String>) {
    if !hub.online.contains_key(node) {
        return;
    }
    let (mut networks, waiting) = hub.registry.networks_state(node);
    for n in &mut networks {
        n.routes = crate::routes::of_network(hub, &n.name);
    }
    hub.send(
        node,
        ServerMsg::Networks {
            networks,
            waiting,
            note,
        },
    );
}

/// Brings `node`'s peer map from `before` to what the registry says now (see the module doc).
pub fn resync(hub: &Hub, node: &NodeKey, before: &[NodeKey]) {
    let after = hub.peers(node);
    let mut before = before.to_vec();
    before.sort_unstable();
    for lost in before.iter().filter(|p| after.binary_search(p).is_err()) {
        hub.send(node, ServerMsg::PeerRemove { key: *lost });
    }
    for kept in after.iter().filter(|p| before.binary_search(p).is_ok()) {
        if let Some(peer) = hub.peer_info(node, kept) {
            hub.send(node, ServerMsg::PeerUpsert { peer, call: false });
        }
    }
    let gained: Vec<NodeKey> = after
        .iter()
        .filter(|p| before.binary_search(p).is_err())
        .copied()
        .collect();
    hub.announce(node, &gained);
}

/// The reply to a join by password or invite that succeeded: `Ok` for a member, or
/// `JoinPending` when the network is locked (and the owner is told at once).
pub fn join_reply(
    server: &Server,
    node: NodeKey,
    id: u64,
    network: &str,
    changes: &[Change],
) -> ServerMsg {
    let hub = server.hub();
    let requested = changes.iter().find_map(|c| match c {
        Change::RequestAdded(r) => Some(r.network.clone()),
        _ => None,
    });
    let still_waiting = || {
        let lower = network.to_ascii_lowercase();
        hub.registry.networks_state(&node).1.contains(&lower)
            && !hub.registry.is_member(&node, &lower)
    };
    match requested {
        Some(net) => {
            if let Some(owner) = hub.registry.owner_of(&net) {
                let who = hub.registry.node_name(&node).unwrap_or("a host").to_owned();
                let note = format!(
                    "{who} asks to join {net}: `warren approve {net} {who}` or `warren deny {net} {who}`"
                );
                push_networks(&hub, &owner, Some(note));
            }
            ServerMsg::JoinPending { id, network: net }
        }
        None if still_waiting() => ServerMsg::JoinPending {
            id,
            network: network.to_ascii_lowercase(),
        },
        None => ServerMsg::Ok { id },
    }
}

/// Carries out an owner request (or an invite list or revoke) from `node` and answers it.
pub fn handle(server: &Server, node: NodeKey, msg: ClientMsg) {
    let id = msg.id();
    let reply = match answer(server, node, msg) {
        Ok(reply) => reply,
        Err((code, message)) => ServerMsg::Error { id, code, message },
    };
    server.hub().send(&node, reply);
}

type Outcome = Result<ServerMsg, (ErrorCode, String)>;

fn answer(server: &Server, node: NodeKey, msg: ClientMsg) -> Outcome {
    let now = unix_now();
    let refused = |e: RegistryError| (error_code(&e), e.to_string());
    match msg {
        ClientMsg::ListInvites { id, network } => {
            let invites = server
                .hub()
                .registry
                .list_invites(node, &network, now)
                .map_err(refused)?;
            Ok(ServerMsg::Invites { id, invites })
        }
        ClientMsg::RevokeInvite {
            id,
            network,
            invite,
        } => apply(
            server,
            &[node],
            |r| r.revoke_invite(node, &network, &invite),
            |_| None,
        )
        .map(|_| ServerMsg::Ok { id }),
        ClientMsg::RenameNetwork {
            id,
            network,
            new_name,
        } => {
            let affected = everyone_in(server, node, &network);
            let new = new_name.to_ascii_lowercase();
            let note = format!(
                "network {} is now called {new}",
                network.to_ascii_lowercase()
            );
            apply(
                server,
                &affected,
                |r| r.rename_network(node, &network, &new_name),
                |_| Some(note.clone()),
            )
            .map(|_| ServerMsg::Ok { id })
        }
        ClientMsg::LockNetwork {
            id,
            network,
            locked,
        } => {
            let affected = everyone_in(server, node, &network);
            apply(
                server,
                &affected,
                |r| r.set_locked(node, &network, locked),
                |_| None,
            )
            .map(|_| ServerMsg::Ok { id })
        }
        ClientMsg::AnswerRequest {
            id,
            network,
            node: who,
            approve,
        } => {
            let net = network.to_ascii_lowercase();
            let note = if approve {
                format!("the owner of {net} let this host in")
            } else {
                format!("the owner of {net} turned down this host's request to join")
            };
            apply(
                server,
                &[node, who],
                |r| r.answer_request(node, &network, who, approve, now),
                |k| (*k == who).then(|| note.clone()),
            )
            .map(|_| ServerMsg::Ok { id })
        }
        ClientMsg::RemoveMember {
            id,
            network,
            node: who,
            ban,
        } => {
            let mut affected = everyone_in(server, node, &network);
            if !affected.contains(&who) {
                affected.push(who);
            }
            let net = network.to_ascii_lowercase();
            let note = if ban {
                format!("the owner of {net} removed this host from it and banned it")
            } else {
                format!("the owner of {net} removed this host from it")
            };
            apply(
                server,
                &affected,
                |r| r.remove_member(node, &network, who, ban, now),
                |k| (*k == who).then(|| note.clone()),
            )
            .map(|_| ServerMsg::Ok { id })
        }
        ClientMsg::ApproveRoute {
            id,
            network,
            node: who,
            prefix,
            approve,
        } => {
            let affected = everyone_in(server, node, &network);
            apply(
                server,
                &affected,
                |r| r.approve_route(node, &network, who, &prefix, approve),
                |_| None,
            )
            .map(|_| ServerMsg::Ok { id })
        }
        ClientMsg::DeleteNetwork { id, network } => {
            let affected = everyone_in(server, node, &network);
            let note = format!(
                "network {} was deleted by its owner",
                network.to_ascii_lowercase()
            );
            apply(
                server,
                &affected,
                |r| r.delete_network(node, &network),
                |k| (*k != node).then(|| note.clone()),
            )
            .map(|_| ServerMsg::Ok { id })
        }
        other => Err((
            ErrorCode::Internal,
            format!("not an owner request: {other:?}"),
        )),
    }
}

/// The owner (`node`), the members and the waiting hosts of `network`: whoever a change to it
/// must reach. Nothing is checked here; the registry operation refuses a non-owner.
fn everyone_in(server: &Server, node: NodeKey, network: &str) -> Vec<NodeKey> {
    let hub = server.hub();
    let mut all = vec![node];
    let members = hub.registry.members_of(network).unwrap_or_default();
    let waiting = hub.registry.waiting_for(network);
    for k in members.into_iter().chain(waiting) {
        if !all.contains(&k) {
            all.push(k);
        }
    }
    all
}

/// Runs `op`, persists it, and brings every `affected` host up to date: relay ticket, peers,
/// networks (with `note(host)`).
pub(crate) fn apply(
    server: &Server,
    affected: &[NodeKey],
    op: impl FnOnce(&mut Registry) -> Result<Vec<Change>, RegistryError>,
    note: impl Fn(&NodeKey) -> Option<String>,
) -> Result<Vec<Change>, (ErrorCode, String)> {
    let mut hub = server.hub();
    let before: Vec<(NodeKey, Vec<NodeKey>)> =
        affected.iter().map(|k| (*k, hub.peers(k))).collect();
    let changes = op(&mut hub.registry).map_err(|e| (error_code(&e), e.to_string()))?;
    hub.persist(&changes).map_err(storage_failed)?;
    if changes.is_empty() {
        return Ok(changes);
    }
    for (k, peers) in &before {
        // The ticket first: a new peer must not hear of a network the relay does not know yet.
        refresh_ticket(server, &hub, k);
        resync(&hub, k, peers);
        push_networks(&hub, k, note(k));
    }
    Ok(changes)
}
