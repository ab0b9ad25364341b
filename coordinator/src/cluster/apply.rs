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
            // Whatever it did while we did not hear from it is read back too.
            sync = true;
            reload = true;
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

// Every test here runs coordinators on the lab's PostgreSQL, a Unix one (see `store::test_pg`).
#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::cluster::event::encode;
    use crate::cluster::presence::DEAD_AFTER;
    use crate::cluster::Publisher;
    use crate::outbox::{outbox, OutboxRx};
    use crate::store::{PgStore, Storage};
    use std::net::SocketAddr;
    use std::sync::mpsc::Receiver;
    use warren_coordinator_core::outbox::DEFAULT_CAPACITY;
    use warren_coordinator_core::{HashParams, RegistryConfig};
    use warren_proto::control::msg::ServerMsg;

    const ALICE: NodeKey = NodeKey([1; 32]);
    const BOB: NodeKey = NodeKey([2; 32]);

    /// A coordinator on the database at `url`, as it starts (the registry read from it), and
    /// the events it publishes.
    fn coordinator(url: &str) -> (Server, Receiver<Event>) {
        let store = PgStore::connect(url).unwrap();
        let config = RegistryConfig {
            hash_params: HashParams::new(HashParams::MIN_M_COST, 1, 1, None).unwrap(),
            ..Default::default()
        };
        let registry = Registry::from_snapshot(config, store.load().unwrap()).unwrap();
        let mut hub = Hub::new(registry, store);
        let (publisher, events) = Publisher::new();
        hub.cluster = Some(publisher);
        (Server::new([0; 32], vec![], None, hub), events)
    }

    /// What `from` published so far, as the others receive it.
    fn heard(from: u64, events: &Receiver<Event>) -> Vec<String> {
        events.try_iter().map(|e| encode(from, &e)).collect()
    }

    fn upserts(rx: &mut OutboxRx) -> Vec<(NodeKey, bool, Option<SocketAddr>)> {
        std::iter::from_fn(|| rx.try_recv())
            .filter_map(|m| match m {
                ServerMsg::PeerUpsert { peer, .. } => Some((peer.key, peer.online, peer.reflexive)),
                _ => None,
            })
            .collect()
    }

    /// Alice is connected to coordinator 1, which creates her network; Bob connects to
    /// coordinator 2, then joins it there. Alice hears of Bob, online with his endpoints, and is
    /// asked to probe him; when coordinator 2 falls silent, Bob goes offline for her, and
    /// when it speaks again it is asked who is online there.
    #[test]
    fn a_join_at_one_coordinator_reaches_the_members_at_the_other() {
        let pg = crate::store::tests::Pg::new();
        let (c1, out1) = coordinator(&pg.url());
        let (c2, out2) = coordinator(&pg.url());
        let t0 = Instant::now();
        let (tx, mut alice) = outbox(DEFAULT_CAPACITY);
        {
            let mut hub = c1.hub();
            let c = hub.registry.register_node(ALICE, "alice", None, 1).unwrap();
            hub.persist(&c).unwrap();
            hub.go_online(ALICE, tx, vec![], None);
            hub.cluster_online(&ALICE);
            let c = hub
                .registry
                .create_network(ALICE, "net", "pw", &[7; 16], 1)
                .unwrap();
            hub.persist(&c).unwrap();
        }
        batch(&c2, 2, &heard(1, &out1), t0);
        assert!(c2.hub().registry.is_member(&ALICE, "net"), "read back");
        let said: Vec<Event> = out2.try_iter().collect();
        assert!(
            said.contains(&Event::Sync),
            "a coordinator heard for the first time is asked who is online: {said:?}"
        );

        let there: SocketAddr = "203.0.113.20:41820".parse().unwrap();
        let (tx, _bob) = outbox(DEFAULT_CAPACITY);
        {
            let mut hub = c2.hub();
            let c = hub.registry.register_node(BOB, "bob", None, 2).unwrap();
            hub.persist(&c).unwrap();
            hub.go_online(BOB, tx, vec![], Some(there));
            hub.cluster_online(&BOB);
        }
        batch(&c1, 1, &heard(2, &out2), t0);
        assert!(upserts(&mut alice).is_empty(), "Bob is nobody to Alice yet");
        {
            let mut hub = c2.hub();
            let c = hub.registry.join_network(BOB, "net", "pw", 2).unwrap();
            hub.persist(&c).unwrap();
        }
        batch(&c1, 1, &heard(2, &out2), t0);
        let msgs: Vec<ServerMsg> = std::iter::from_fn(|| alice.try_recv()).collect();
        assert!(
            msgs.iter()
                .any(|m| matches!(m, ServerMsg::PeerUpsert { peer, .. }
                if peer.key == BOB && peer.online && peer.reflexive == Some(there))),
            "{msgs:?}"
        );
        assert!(
            msgs.iter().any(
                |m| matches!(m, ServerMsg::CallMeMaybe { key, reflexive, .. }
                if *key == BOB && *reflexive == Some(there))
            ),
            "{msgs:?}"
        );
        assert!(
            msgs.iter().any(|m| matches!(m, ServerMsg::Networks { .. })),
            "{msgs:?}"
        );

        // Coordinator 2 says nothing more (it died): Bob is offline for Alice.
        batch(&c1, 1, &[], t0 + DEAD_AFTER / 2);
        assert!(upserts(&mut alice).is_empty(), "not silent long enough yet");
        batch(&c1, 1, &[], t0 + DEAD_AFTER);
        assert_eq!(upserts(&mut alice), vec![(BOB, false, None)]);

        // It speaks again (its database connection came back): asked who is online again.
        out1.try_iter().for_each(drop);
        batch(&c1, 1, &[encode(2, &Event::Alive)], t0 + DEAD_AFTER * 2);
        let said: Vec<Event> = out1.try_iter().collect();
        assert!(said.contains(&Event::Sync), "{said:?}");
    }
}
