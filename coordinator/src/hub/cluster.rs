//! The hub's side of running beside other coordinators on one database
//! ([`crate::cluster`]): telling them about this coordinator's nodes, and telling this
//! coordinator's nodes about theirs. Each coordinator speaks only to its own sessions: a
//! change at another is announced here to the local peers of the node it concerns, and the
//! other coordinator does the same for its side.

use super::Hub;
use crate::cluster::{Endpoints, Event};
use std::sync::atomic::Ordering;
use warren_coordinator_core::Registry;
use warren_proto::control::msg::ServerMsg;
use warren_proto::key::NodeKey;

impl Hub {
    /// Where `key` can be reached: its session here, else what its coordinator said.
    pub fn endpoints_of(&self, key: &NodeKey) -> Option<Endpoints> {
        match self.online.get(key) {
            Some(o) => Some(Endpoints {
                lan: o.reach.lan.clone(),
                reflexive: o.reach.reflexive,
                nat: o.reach.nat,
                mapped: o.reach.mapped,
                relay: o.reach.relay,
                routes: o.routes.clone(),
                mapped_tcp: o.reach.mapped_tcp,
            }),
            None => self.remote.get(key).cloned(),
        }
    }

    /// Online at another coordinator and not here.
    fn remote_only(&self, key: &NodeKey) -> Option<&Endpoints> {
        match self.online.contains_key(key) {
            true => None,
            false => self.remote.get(key),
        }
    }

    pub fn cluster_publish(&self, event: Event) {
        if let Some(c) = &self.cluster {
            c.publish(event);
        }
    }

    /// `key` connected here or reported new endpoints (after its local peers were told):
    /// the other coordinators hear of it, and it is asked to probe its peers online there
    /// (their coordinators ask them to probe it).
    pub fn cluster_online(&self, key: &NodeKey) {
        if self.cluster.is_none() {
            return;
        }
        let Some(endpoints) = self.online.get(key).and(self.endpoints_of(key)) else {
            return;
        };
        self.cluster_publish(Event::Online {
            node: *key,
            endpoints,
        });
        self.call_remote(key, &self.peers(key));
    }

    /// `key`'s session here ended (and no newer one replaced it).
    pub fn cluster_offline(&self, key: &NodeKey) {
        self.cluster_publish(Event::Offline { node: *key });
    }

    /// Asks the local `key` to probe each of `peers` that is online at another coordinator.
    pub fn call_remote(&self, key: &NodeKey, peers: &[NodeKey]) {
        if !self.online.contains_key(key) {
            return;
        }
        for peer in peers {
            if let Some(e) = self.remote_only(peer) {
                self.send(
                    key,
                    ServerMsg::CallMeMaybe {
                        key: *peer,
                        lan: e.lan.clone(),
                        reflexive: e.reflexive,
                        mapped: e.mapped,
                        mapped_tcp: e.mapped_tcp,
                    },
                );
            }
        }
    }

    /// `node`, not connected here, came online, moved, or went offline at another
    /// coordinator: its local peers get its new state, and are asked to probe it if it is
    /// online.
    pub fn remote_changed(&self, node: &NodeKey) {
        if self.online.contains_key(node) {
            return; // its session here is what its peers here see
        }
        let endpoints = self.remote.get(node);
        for peer in self.peers(node) {
            if !self.online.contains_key(&peer) {
                continue;
            }
            if let Some(info) = self.peer_info(&peer, node) {
                self.send(
                    &peer,
                    ServerMsg::PeerUpsert {
                        peer: info,
                        call: false,
                    },
                );
            }
            if let Some(e) = endpoints {
                self.send(
                    &peer,
                    ServerMsg::CallMeMaybe {
                        key: *node,
                        lan: e.lan.clone(),
                        reflexive: e.reflexive,
                        mapped: e.mapped,
                        mapped_tcp: e.mapped_tcp,
                    },
                );
            }
        }
    }

    /// Every node connected here, said again (another coordinator asked: [`Event::Sync`]).
    pub fn republish_online(&self) {
        for key in self.online.keys() {
            if let Some(endpoints) = self.endpoints_of(key) {
                self.cluster_publish(Event::Online {
                    node: *key,
                    endpoints,
                });
            }
        }
    }

    /// Swaps in a registry another coordinator changed (read back from the database), as
    /// [`Hub::persist`] moves the relay's index and generation for a change of its own.
    pub fn replace_registry(&mut self, registry: Registry) {
        self.generation.fetch_add(1, Ordering::Release);
        self.registry = registry;
        self.index.rebuild(&self.registry);
        self.generation.fetch_add(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::Publisher;
    use crate::outbox::{outbox, OutboxRx};
    use crate::store::SqliteStore;
    use std::net::SocketAddr;
    use std::time::Instant;
    use warren_coordinator_core::outbox::DEFAULT_CAPACITY;
    use warren_coordinator_core::{HashParams, RegistryConfig};
    use warren_proto::control::msg::NatKind;

    fn key(i: u8) -> NodeKey {
        NodeKey([i; 32])
    }

    /// Nodes 1..=3 in one network; 1 and 2 connected here, 3 (elsewhere) not.
    fn hub(dir: &std::path::Path) -> (Hub, Vec<OutboxRx>, std::sync::mpsc::Receiver<Event>) {
        let config = RegistryConfig {
            hash_params: HashParams::new(HashParams::MIN_M_COST, 1, 1, None).unwrap(),
            ..Default::default()
        };
        let mut hub = Hub::new(
            Registry::new(config).unwrap(),
            SqliteStore::open(dir).unwrap(),
        );
        let (publisher, events) = Publisher::new();
        hub.cluster = Some(publisher);
        let mut inboxes = Vec::new();
        for i in 1..=3 {
            let c = hub
                .registry
                .register_node(key(i), &format!("h{i}"), None, 1)
                .unwrap();
            hub.persist(&c).unwrap();
            let c = match i {
                1 => hub
                    .registry
                    .create_network(key(1), "net", "pw", &[7; 16], 1),
                _ => hub.registry.join_network(key(i), "net", "pw", 1),
            };
            hub.persist(&c.unwrap()).unwrap();
            if i < 3 {
                let (tx, rx) = outbox(DEFAULT_CAPACITY);
                hub.go_online(key(i), tx, vec![], None);
                inboxes.push(rx);
            }
        }
        (hub, inboxes, events)
    }

    fn drain<T>(rx: &mut OutboxRx, f: impl Fn(&ServerMsg) -> Option<T>) -> Vec<T> {
        std::iter::from_fn(|| rx.try_recv())
            .filter_map(|m| f(&m))
            .collect()
    }

    fn upserts(rx: &mut OutboxRx) -> Vec<(NodeKey, bool, Option<SocketAddr>)> {
        drain(rx, |m| match m {
            ServerMsg::PeerUpsert { peer, .. } => Some((peer.key, peer.online, peer.reflexive)),
            _ => None,
        })
    }

    #[test]
    fn a_node_at_another_coordinator_reaches_the_local_peers_and_leaves_them() {
        let dir = tempfile::tempdir().unwrap();
        let (mut hub, mut inboxes, events) = hub(dir.path());
        let stored: Vec<Event> = events.try_iter().collect();
        assert!(
            stored.iter().all(|e| *e == Event::Registry) && !stored.is_empty(),
            "every stored change is announced: {stored:?}"
        );
        for rx in &mut inboxes {
            upserts(rx);
        }
        let there: SocketAddr = "203.0.113.33:41820".parse().unwrap();
        let endpoints = Endpoints {
            lan: vec![],
            reflexive: Some(there),
            nat: NatKind::EndpointIndependent,
            mapped: None,
            relay: false,
            routes: Vec::new(),
            mapped_tcp: None,
        };
        assert_eq!(
            hub.peer_info(&key(1), &key(3)).map(|p| p.online),
            Some(false)
        );

        let now = Instant::now();
        hub.remote.heard(42, now);
        hub.remote.online(42, key(3), endpoints.clone());
        hub.remote_changed(&key(3));
        for rx in &mut inboxes {
            let msgs: Vec<ServerMsg> = std::iter::from_fn(|| rx.try_recv()).collect();
            assert!(msgs.iter().any(|m| matches!(m,
                ServerMsg::PeerUpsert { peer, .. } if peer.key == key(3) && peer.online
                    && peer.reflexive == Some(there))));
            assert!(msgs.iter().any(|m| matches!(m,
                ServerMsg::CallMeMaybe { key: k, reflexive, .. }
                    if *k == key(3) && *reflexive == Some(there))));
        }

        // Node 1 reports endpoints here: the others hear of it, and it is asked to probe 3.
        hub.cluster_online(&key(1));
        let published: Vec<Event> = events.try_iter().collect();
        assert!(matches!(&published[..], [Event::Online { node, .. }] if *node == key(1)));
        let calls = drain(&mut inboxes[0], |m| match m {
            ServerMsg::CallMeMaybe { key, .. } => Some(*key),
            _ => None,
        });
        assert_eq!(calls, vec![key(3)], "only the peer at another coordinator");

        // Its coordinator dies: 3 goes offline for the local peers.
        let gone = hub
            .remote
            .expire(now + crate::cluster::presence::DEAD_AFTER);
        assert_eq!(gone, vec![key(3)]);
        hub.remote_changed(&key(3));
        for rx in &mut inboxes {
            assert_eq!(upserts(rx), vec![(key(3), false, None)]);
        }
    }

    #[test]
    fn a_node_connected_here_is_seen_as_it_is_here() {
        let dir = tempfile::tempdir().unwrap();
        let (mut hub, mut inboxes, _events) = hub(dir.path());
        for rx in &mut inboxes {
            upserts(rx);
        }
        // A stale word from elsewhere about node 2, which is connected here.
        hub.remote.online(
            9,
            key(2),
            Endpoints {
                lan: vec![],
                reflexive: Some("203.0.113.99:1".parse().unwrap()),
                nat: NatKind::Unknown,
                mapped: None,
                relay: false,
                routes: Vec::new(),
                mapped_tcp: None,
            },
        );
        hub.remote_changed(&key(2));
        assert!(upserts(&mut inboxes[0]).is_empty());
        assert_eq!(
            hub.peer_info(&key(1), &key(2)).unwrap().reflexive,
            None,
            "the local session wins"
        );
    }
}
