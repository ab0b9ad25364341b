//! What the registry answers about nodes, peers and networks (read-only).

use super::*;

impl Registry {
    /// Every other node sharing at least one network with `key`, sorted by name then key.
    /// A node in no network has no peers. A member whose lease was taken over (it was away
    /// longer than the lease TTL) is left out until it registers again and gets an address.
    pub fn peers_of(&self, key: &NodeKey) -> Vec<PeerInfo> {
        let Some(me) = self.nodes.get(key) else {
            return Vec::new();
        };
        let mut shared: BTreeMap<NodeKey, Vec<String>> = BTreeMap::new();
        for net in &me.networks {
            for member in self.networks[net].members.keys() {
                if member != key {
                    shared.entry(*member).or_default().push(net.clone());
                }
            }
        }
        let mut peers: Vec<PeerInfo> = shared
            .into_iter()
            .filter_map(|(k, networks)| {
                let lease = self.leases.get(&k)?;
                Some(PeerInfo {
                    key: k,
                    name: self.nodes[&k].name.clone(),
                    overlay_v4: lease.addr,
                    networks,
                })
            })
            .collect();
        peers.sort_by(|a, b| (&a.name, a.key).cmp(&(&b.name, b.key)));
        peers
    }

    /// May `reporter`, which sees a host of another coordinator at `ip` too, ask `target` to
    /// move off `ip`? Only a peer of `target` may, only about `target`'s address here, and
    /// `target` is asked at most once per [`CLASH_INTERVAL`] (an allowed report counts, a
    /// dropped one does not), so a hostile peer cannot make it hop continuously.
    pub fn clash_report(
        &mut self,
        reporter: NodeKey,
        target: NodeKey,
        ip: Ipv4Addr,
        now: u64,
    ) -> Result<(), ClashDropped> {
        if !self.shares_network(&reporter, &target) {
            return Err(ClashDropped::NotAPeer);
        }
        if self.leases.get(&target).map(|l| l.addr) != Some(ip) {
            return Err(ClashDropped::NotItsAddress);
        }
        self.clash_asks
            .ask(target, now)
            .map_err(ClashDropped::RateLimited)
    }

    /// True when `a` and `b` are in at least one common network (may they talk?).
    pub fn shares_network(&self, a: &NodeKey, b: &NodeKey) -> bool {
        match (self.nodes.get(a), self.nodes.get(b)) {
            (Some(na), Some(nb)) => a != b && !na.networks.is_disjoint(&nb.networks),
            _ => false,
        }
    }

    /// The node's name, if it has registered.
    pub fn node_name(&self, key: &NodeKey) -> Option<&str> {
        self.nodes.get(key).map(|n| n.name.as_str())
    }

    pub fn lease_of(&self, key: &NodeKey) -> Option<Lease> {
        self.leases.get(key)
    }

    /// The networks `key` is in, sorted.
    pub fn network_count(&self) -> usize {
        self.networks.len()
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The keys of the hosts sharing a network with `key` and holding an address (those
    /// [`Registry::peers_of`] describes), sorted: for fan-out, which needs no records.
    pub fn peer_keys(&self, key: &NodeKey) -> Vec<NodeKey> {
        let Some(me) = self.nodes.get(key) else {
            return Vec::new();
        };
        let mut keys: Vec<NodeKey> = me
            .networks
            .iter()
            .flat_map(|net| self.networks[net].members.keys())
            .filter(|m| *m != key && self.leases.get(m).is_some())
            .copied()
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// The networks `a` and `b` are both in, sorted, without copying either's list.
    pub fn shared_networks(&self, a: &NodeKey, b: &NodeKey) -> Vec<String> {
        let (Some(a), Some(b)) = (self.nodes.get(a), self.nodes.get(b)) else {
            return Vec::new();
        };
        a.networks.intersection(&b.networks).cloned().collect()
    }

    pub fn networks_of(&self, key: &NodeKey) -> Vec<String> {
        self.nodes
            .get(key)
            .map(|n| n.networks.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The members of network `name` (normalised or not), sorted by key; `None` if it does not
    /// exist.
    pub fn members_of(&self, name: &str) -> Option<Vec<NodeKey>> {
        let name = normalize_name(name).ok()?;
        self.networks
            .get(&name)
            .map(|n| n.members.keys().copied().collect())
    }

    pub fn network(&self, name: &str) -> Option<NetworkRecord> {
        let name = normalize_name(name).ok()?;
        self.networks.get(&name).map(|n| n.record(&name))
    }
}
