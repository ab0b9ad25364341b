//! Who is online at the other coordinators, as their events told us, and which of those
//! coordinators still run. A coordinator silent for [`DEAD_AFTER`] is taken for dead and its
//! nodes for offline, except those that connected somewhere else since (whose latest event
//! names another coordinator). Pure: time comes in as arguments.

use super::event::Endpoints;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use warren_proto::key::NodeKey;

/// Coordinators say they are alive every second: three missed, and one more for a slow
/// database, and it is dead.
pub const DEAD_AFTER: Duration = Duration::from_secs(4);

#[derive(Default)]
pub struct RemotePresence {
    /// Each node's latest coordinator and endpoints.
    nodes: HashMap<NodeKey, (u64, Endpoints)>,
    /// When each coordinator was last heard from.
    heard: HashMap<u64, Instant>,
}

impl RemotePresence {
    /// Coordinator `from` said something at `now`; true if it was not known to be alive (new,
    /// or back after being taken for dead): then its view and ours may differ.
    pub fn heard(&mut self, from: u64, now: Instant) -> bool {
        self.heard.insert(from, now).is_none()
    }

    /// `node` is online at `from`, which knows best where it is now.
    pub fn online(&mut self, from: u64, node: NodeKey, endpoints: Endpoints) {
        self.nodes.insert(node, (from, endpoints));
    }

    /// `node`'s session at `from` ended; true if that was where it was online. A late
    /// goodbye from a coordinator it already left changes nothing.
    pub fn offline(&mut self, from: u64, node: &NodeKey) -> bool {
        if self.nodes.get(node).is_some_and(|(at, _)| *at == from) {
            self.nodes.remove(node);
            true
        } else {
            false
        }
    }

    /// Forgets the coordinators silent since before `now - DEAD_AFTER`; returns the nodes that
    /// were online only there.
    pub fn expire(&mut self, now: Instant) -> Vec<NodeKey> {
        let dead: Vec<u64> = self
            .heard
            .iter()
            .filter(|(_, at)| now.saturating_duration_since(**at) >= DEAD_AFTER)
            .map(|(id, _)| *id)
            .collect();
        if dead.is_empty() {
            return Vec::new();
        }
        for id in &dead {
            self.heard.remove(id);
        }
        let gone: Vec<NodeKey> = self
            .nodes
            .iter()
            .filter(|(_, (at, _))| dead.contains(at))
            .map(|(k, _)| *k)
            .collect();
        for k in &gone {
            self.nodes.remove(k);
        }
        gone
    }

    pub fn get(&self, node: &NodeKey) -> Option<&Endpoints> {
        self.nodes.get(node).map(|(_, e)| e)
    }

    /// The other coordinators alive, and the nodes online at them (for logs and metrics).
    pub fn counts(&self) -> (usize, usize) {
        (self.heard.len(), self.nodes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_proto::control::msg::NatKind;

    fn key(i: u8) -> NodeKey {
        NodeKey([i; 32])
    }

    fn at(port: u16) -> Endpoints {
        Endpoints {
            lan: vec![],
            reflexive: Some(std::net::SocketAddr::from(([203, 0, 113, 9], port))),
            nat: NatKind::Unknown,
            mapped: None,
            relay: false,
            routes: Vec::new(),
            mapped_tcp: None,
        }
    }

    #[test]
    fn a_silent_coordinators_nodes_go_offline_unless_they_moved() {
        let t0 = Instant::now();
        let mut p = RemotePresence::default();
        assert!(p.heard(1, t0), "a new coordinator is news");
        assert!(!p.heard(1, t0));
        assert!(p.heard(2, t0));
        p.online(1, key(1), at(1));
        p.online(1, key(2), at(2));
        p.online(2, key(3), at(3));
        // Node 2 moves from coordinator 1 to 2; 1 never says goodbye (it dies).
        p.online(2, key(2), at(22));
        let later = t0 + Duration::from_secs(2);
        p.heard(2, later);
        assert!(
            p.expire(later).is_empty(),
            "nobody is silent long enough yet"
        );
        let dead = t0 + DEAD_AFTER;
        assert_eq!(p.expire(dead), vec![key(1)]);
        assert!(p.get(&key(1)).is_none());
        assert_eq!(p.get(&key(2)), Some(&at(22)));
        assert_eq!(p.get(&key(3)), Some(&at(3)));
        assert_eq!(p.counts(), (1, 2));
        // Coordinator 1 comes back (its database connection returned): news again.
        assert!(p.heard(1, dead));
    }

    #[test]
    fn a_late_goodbye_from_a_coordinator_the_node_left_changes_nothing() {
        let mut p = RemotePresence::default();
        p.online(1, key(1), at(1));
        p.online(2, key(1), at(2));
        assert!(!p.offline(1, &key(1)));
        assert_eq!(p.get(&key(1)), Some(&at(2)));
        assert!(p.offline(2, &key(1)));
        assert!(p.get(&key(1)).is_none());
        assert!(!p.offline(2, &key(1)));
    }
}
