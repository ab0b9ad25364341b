//! Who is in which network, as the relay asks it: a copy of the registry's memberships the
//! hub keeps in step after every stored change, behind its own lock, so that a relayed
//! datagram never waits for control work (a commit, a fan-out) holding the hub.

use std::collections::{BTreeSet, HashMap};
use std::sync::RwLock;
use warren_coordinator_core::{Change, Registry};
use warren_proto::key::NodeKey;

#[derive(Default)]
pub struct MembershipIndex {
    networks: RwLock<HashMap<NodeKey, BTreeSet<String>>>,
}

impl MembershipIndex {
    pub fn from_registry(registry: &Registry) -> Self {
        let index = Self::default();
        index.rebuild(registry);
        index
    }

    /// Everything again, from `registry` (at start, and after a rollback).
    pub fn rebuild(&self, registry: &Registry) {
        let map = registry.snapshot().memberships.into_iter().fold(
            HashMap::new(),
            |mut map: HashMap<_, BTreeSet<_>>, m| {
                map.entry(m.node).or_default().insert(m.network);
                map
            },
        );
        *self.networks.write().expect("membership index lock") = map;
    }

    /// Brings the index in step with `registry` after it made `changes`.
    pub fn apply(&self, registry: &Registry, changes: &[Change]) {
        let mut touched = BTreeSet::new();
        for change in changes {
            match change {
                Change::MemberAdded(m) => {
                    touched.insert(m.node);
                }
                Change::MemberRemoved { node, .. } => {
                    touched.insert(*node);
                }
                // Rare: whole networks renamed or gone.
                Change::NetworkRenamed { .. } | Change::NetworkDeleted { .. } => {
                    return self.rebuild(registry);
                }
                _ => {}
            }
        }
        if touched.is_empty() {
            return;
        }
        let mut map = self.networks.write().expect("membership index lock");
        for node in touched {
            let now: BTreeSet<String> = registry.networks_of(&node).into_iter().collect();
            if now.is_empty() {
                map.remove(&node);
            } else {
                map.insert(node, now);
            }
        }
    }

    pub fn shares_network(&self, a: &NodeKey, b: &NodeKey) -> bool {
        let map = self.networks.read().expect("membership index lock");
        match (map.get(a), map.get(b)) {
            (Some(na), Some(nb)) => a != b && !na.is_disjoint(nb),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_coordinator_core::{HashParams, RegistryConfig};

    fn key(i: u8) -> NodeKey {
        NodeKey([i; 32])
    }

    /// Joins, leaves, a rename, a delete and a logout: after each, the index answers as the
    /// registry does for every pair.
    #[test]
    fn the_index_follows_the_registry() {
        let mut reg = Registry::new(RegistryConfig {
            hash_params: HashParams::new(HashParams::MIN_M_COST, 1, 1, None).unwrap(),
            ..Default::default()
        })
        .unwrap();
        let index = MembershipIndex::from_registry(&reg);
        let keys: Vec<NodeKey> = (1..=4).map(key).collect();
        for (i, k) in keys.iter().enumerate() {
            let changes = reg.register_node(*k, &format!("h{i}"), None, 1).unwrap();
            index.apply(&reg, &changes);
        }
        let check = |reg: &Registry, index: &MembershipIndex, step: &str| {
            for a in &keys {
                for b in &keys {
                    assert_eq!(
                        index.shares_network(a, b),
                        reg.shares_network(a, b),
                        "{step}: {a:?} {b:?}"
                    );
                }
            }
        };
        let step = |reg: &mut Registry, what: &str, changes: Vec<Change>| {
            index.apply(reg, &changes);
            check(reg, &index, what);
        };
        let c = reg.create_network(keys[0], "a", "pw", &[1; 16], 1).unwrap();
        step(&mut reg, "create a", c);
        let c = reg.join_network(keys[1], "a", "pw", 1).unwrap();
        step(&mut reg, "join a", c);
        let c = reg.create_network(keys[2], "b", "pw", &[1; 16], 1).unwrap();
        step(&mut reg, "create b", c);
        let c = reg.join_network(keys[1], "b", "pw", 1).unwrap();
        step(&mut reg, "join b", c);
        let c = reg.leave_network(keys[1], "a").unwrap();
        step(&mut reg, "leave a", c);
        let c = reg.join_network(keys[3], "b", "pw", 1).unwrap();
        step(&mut reg, "join b again", c);
        let c = reg.logout(keys[3]).unwrap();
        step(&mut reg, "logout", c);
        let c = reg.rename_network(keys[2], "b", "b2").unwrap();
        step(&mut reg, "rename", c);
        let c = reg.join_network(keys[0], "b2", "pw", 1).unwrap();
        step(&mut reg, "join renamed", c);
        let c = reg.delete_network(keys[0], "a").unwrap();
        step(&mut reg, "delete", c);
        assert!(index.shares_network(&keys[1], &keys[2]));
        assert!(index.shares_network(&keys[0], &keys[1]), "both in b2");
        assert!(!index.shares_network(&keys[3], &keys[1]));
    }
}
