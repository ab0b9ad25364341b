//! The other coordinators' events, applied to this one's hub: a batch at a time, under the
//! hub's lock, from the listening thread.

use super::event::{decode, Event};
use crate::hub::Hub;
use crate::owner::{push_networks, resync};
use crate::server::{refresh_ticket, Server};
use std::time::Instant;
use warren_coordinator_core::Registry;
use warren_proto::key::NodeKey;

/// Applies the payloads that arrived together (this coordinator's own, `id`, are skipped),
/// then takes the coordinators silent for too long for dead.
pub fn batch(server: &Server, id: u64, payloads: &[String], now: Instant) {
    let mut hub = server.hub();
    let (mut reload, mut republish, mut sync) = (false, false, false);
    let mut changed: Vec<NodeKey> = Vec::new();
    for payload in payloads {
        let envelope = match decode(payload) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!("{e}: ignored (is another program notifying on this channel?)");
                continue;
            }
        };
        let from = envelope.from;
        if from == id {
            continue;
        }
        if hub.remote.heard(from, now) {
            tracing::info!(
                coordinator = %format!("{from:016x}"),
                "another coordinator shares the database: exchanging who is online"
            );
            sync = true;
        }
        if envelope.event != Event::Alive {
            tracing::debug!(from = %format!("{from:016x}"), event = ?envelope.event, "cluster event");
        }
        match envelope.event {
            Event::Alive => {}
            Event::Sync => republish = true,
            Event::Registry => reload = true,
            Event::Online { node, endpoints } => {
                hub.remote.online(from, node, endpoints);
                changed.push(node);
            }
            Event::Offline { node } => {
                if hub.remote.offline(from, &node) {
                    changed.push(node);
                }
            }
        }
    }
    if reload {
        reload_registry(server, &mut hub);
    }
    let gone = hub.remote.expire(now);
    if !gone.is_empty() {
        let (alive, elsewhere) = hub.remote.counts();
        tracing::warn!(
            nodes = gone.len(),
            other_coordinators = alive,
            online_at_them = elsewhere,
            "a coordinator on this database stopped answering: its hosts are offline until \
             they connect again (here or elsewhere)"
        );
    }
    changed.extend(gone);
    changed.sort();
    changed.dedup();
    for node in &changed {
        hub.remote_changed(node);
    }
    if sync {
        hub.cluster_publish(Event::Sync);
    }
    if sync || republish {
        hub.republish_online();
    }
}

/// The listening connection was (re)opened: what the others said meanwhile is lost, so the
/// registry is read back and everyone is asked who is online.
pub fn after_gap(server: &Server) {
    let mut hub = server.hub();
    reload_registry(server, &mut hub);
    hub.cluster_publish(Event::Sync);
    hub.republish_online();
}

/// Reads the registry back from the database and brings every local session whose peers or
/// networks changed up to date.
fn reload_registry(server: &Server, hub: &mut Hub) {
    let local: Vec<NodeKey> = hub.online.keys().copied().collect();
    let before: Vec<_> = local.iter().map(|k| view(hub, k)).collect();
    let registry = hub
        .store
        .load()
        .map_err(anyhow::Error::from)
        .and_then(|snap| Ok(Registry::from_snapshot(hub.registry.config(), snap)?));
    match registry {
        Ok(r) => hub.replace_registry(r),
        Err(e) => {
            tracing::error!(
                "another coordinator changed the database, which cannot be read back ({e:#}): \
                 this one keeps its older view until the next change; check the database"
            );
            return;
        }
    }
    for (key, (peers, networks)) in local.iter().zip(before) {
        let (after, networks_after) = view(hub, key);
        if after == peers && networks_after == networks {
            continue;
        }
        refresh_ticket(server, hub, key);
        resync(hub, key, &peers);
        let gained: Vec<NodeKey> = after.into_iter().filter(|p| !peers.contains(p)).collect();
        hub.call_remote(key, &gained);
        push_networks(hub, key, None);
    }
}

/// A node's peers (sorted) and networks, to compare before and after a reload.
fn view(
    hub: &Hub,
    key: &NodeKey,
) -> (
    Vec<NodeKey>,
    (Vec<warren_proto::control::msg::NetworkState>, Vec<String>),
) {
    let mut peers = hub.peers(key);
    peers.sort();
    (peers, hub.registry.networks_state(key))
}
