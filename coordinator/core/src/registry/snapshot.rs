//! The registry as a whole: its canonical snapshot, and a registry rebuilt from one (checked).

use super::*;

impl Registry {
    /// The whole state, in canonical order.
    pub fn snapshot(&self) -> Snapshot {
        let mut snap = Snapshot {
            nodes: self
                .nodes
                .iter()
                .map(|(k, n)| NodeRecord {
                    key: *k,
                    name: n.name.clone(),
                    created_at: n.created_at,
                })
                .collect(),
            leases: self
                .leases
                .iter()
                .map(|(k, l)| LeaseRecord {
                    node: *k,
                    addr: l.addr,
                    renewed_at: l.renewed_at,
                })
                .collect(),
            networks: self
                .networks
                .iter()
                .map(|(name, n)| n.record(name))
                .collect(),
            memberships: self
                .networks
                .iter()
                .flat_map(|(name, n)| {
                    n.members.iter().map(|(k, at)| Membership {
                        network: name.clone(),
                        node: *k,
                        joined_at: *at,
                    })
                })
                .collect(),
            invites: self.invites.iter().cloned().collect(),
            bans: self
                .networks
                .iter()
                .flat_map(|(name, n)| {
                    n.bans.iter().map(|(k, at)| BanRecord {
                        network: name.clone(),
                        node: *k,
                        banned_at: *at,
                    })
                })
                .collect(),
            requests: self
                .networks
                .iter()
                .flat_map(|(name, n)| {
                    n.requests.iter().map(|(k, at)| JoinRequestRecord {
                        network: name.clone(),
                        node: *k,
                        asked_at: *at,
                    })
                })
                .collect(),
            routes: self
                .networks
                .iter()
                .flat_map(|(name, n)| {
                    n.routes.iter().map(|(k, prefix)| RouteRecord {
                        network: name.clone(),
                        node: *k,
                        prefix: prefix.clone(),
                    })
                })
                .collect(),
        };
        snap.normalize();
        snap
    }

    /// Rebuilds a registry from a stored snapshot, checking every invariant the operations keep.
    pub fn from_snapshot(
        config: RegistryConfig,
        snapshot: Snapshot,
    ) -> Result<Self, SnapshotError> {
        let mut reg = Self::new(config)?;
        let stored_name = |kind, name: &str| match normalize_name(name) {
            Ok(n) if n == name => Ok(()),
            _ => Err(SnapshotError::BadName {
                kind,
                name: name.to_owned(),
            }),
        };
        for n in snapshot.nodes {
            stored_name(NameKind::Node, &n.name)?;
            let node = Node {
                name: n.name,
                created_at: n.created_at,
                networks: BTreeSet::new(),
                waiting: BTreeSet::new(),
            };
            if reg.nodes.insert(n.key, node).is_some() {
                return Err(SnapshotError::DuplicateNode(n.key));
            }
        }
        for l in snapshot.leases {
            if !reg.nodes.contains_key(&l.node) {
                return Err(SnapshotError::LeaseForUnknownNode(l.node));
            }
            let lease = Lease {
                addr: l.addr,
                renewed_at: l.renewed_at,
            };
            reg.leases.restore(l.node, lease)?;
        }
        for n in snapshot.networks {
            stored_name(NameKind::Network, &n.name)?;
            if let Err(error) = check_phc(&n.password_hash) {
                return Err(SnapshotError::BadPasswordHash {
                    network: n.name,
                    error,
                });
            }
            if !reg.nodes.contains_key(&n.owner) {
                return Err(SnapshotError::UnknownOwner {
                    network: n.name,
                    owner: n.owner,
                });
            }
            let network = Network::new(n.password_hash, n.owner, n.created_at, n.locked);
            if reg.networks.insert(n.name.clone(), network).is_some() {
                return Err(SnapshotError::DuplicateNetwork(n.name));
            }
        }
        for m in snapshot.memberships {
            let dangling = |missing| SnapshotError::DanglingMembership {
                network: m.network.clone(),
                node: m.node,
                missing,
            };
            let Some(node) = reg.nodes.get(&m.node) else {
                return Err(dangling("node"));
            };
            let Some(network) = reg.networks.get(&m.network) else {
                return Err(dangling("network"));
            };
            if network.members.contains_key(&m.node) {
                return Err(SnapshotError::DuplicateMembership {
                    network: m.network,
                    node: m.node,
                });
            }
            if reg.check_name_free(&node.name, &m.network, m.node).is_err() {
                return Err(SnapshotError::NameClash {
                    name: node.name.clone(),
                    network: m.network,
                });
            }
            reg.add_member(&m.network, m.node, m.joined_at);
        }
        // Expired invites are restored too: they are pruned by the next creation, like in a
        // registry that never stopped.
        for i in snapshot.invites {
            let dangling = |missing| SnapshotError::DanglingInvite {
                hash: i.hash,
                network: i.network.clone(),
                missing,
            };
            if !reg.networks.contains_key(&i.network) {
                return Err(dangling("network"));
            }
            if !reg.nodes.contains_key(&i.created_by) {
                return Err(dangling("creator"));
            }
            let hash = i.hash;
            if !reg.invites.insert(i) {
                return Err(SnapshotError::DuplicateInvite(hash));
            }
        }
        for b in snapshot.bans {
            reg.check_owner_record(&b.network, b.node)?;
            reg.networks
                .get_mut(&b.network)
                .expect("checked")
                .bans
                .insert(b.node, b.banned_at);
        }
        for r in snapshot.routes {
            reg.check_owner_record(&r.network, r.node)?;
            reg.networks
                .get_mut(&r.network)
                .expect("checked")
                .routes
                .insert((r.node, r.prefix));
        }
        for r in snapshot.requests {
            reg.check_owner_record(&r.network, r.node)?;
            if reg.networks[&r.network].members.contains_key(&r.node) {
                return Err(SnapshotError::RequestOfMember {
                    network: r.network,
                    node: r.node,
                });
            }
            reg.add_request(&r.network, r.node, r.asked_at);
        }
        let keys: Vec<NodeKey> = reg.nodes.keys().copied().collect();
        for k in &keys {
            reg.sync_lease_ttl(k);
        }
        Ok(reg)
    }
}
