//! The peers of every coordinator this host follows, merged into one map the data plane routes.
//!
//! A friend in networks of two coordinators is one peer: one WireGuard session, the networks of
//! both. Coordinators lease addresses independently, so two *different* peers may arrive at the
//! same overlay IPv4 address (each coordinator only keeps its own members apart). Then the one
//! known first keeps the route, the other is marked `clash` and reached by IPv6 only, and the
//! peer with the greater key is asked — through a coordinator that knows it — to move to a
//! fresh address (see [`super::address`]). Every host that sees the clash asks the same peer,
//! so it moves once.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use warren_proto::control::msg::{NatKind, PeerInfo};
use warren_proto::key::NodeKey;

/// The shell's name for a coordinator.
pub type CoordId = u32;

/// A peer as the data plane should have it.
#[derive(Debug, Clone, PartialEq)]
pub struct MergedPeer {
    pub key: NodeKey,
    pub name: String,
    /// Its overlay address, routed to it unless `clash`.
    pub overlay_ip: IpAddr,
    /// Another peer holds `overlay_ip` and was known first: do not route it to this one.
    pub clash: bool,
    /// The networks of all coordinators shared with it.
    pub networks: Vec<String>,
    /// The coordinators that brought it (their relays reach it).
    pub sources: Vec<CoordId>,
    pub nat: NatKind,
    pub lan: Vec<SocketAddr>,
    pub reflexive: Option<SocketAddr>,
    pub mapped: Option<SocketAddr>,
    /// It relays for its peers (at `mapped`, else `reflexive`).
    pub relay: bool,
    /// LAN prefixes it routes, approved by the owner of a network shared with it (by any
    /// coordinator that brought it).
    pub routes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
// A batch holds a handful of changes; boxing each peer would only add allocations.
#[allow(clippy::large_enum_variant)]
pub enum PeerChange {
    Set(MergedPeer),
    Remove(NodeKey),
}

/// Ask `via` to tell `mover` that another peer has its address `ip`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clash {
    pub ip: Ipv4Addr,
    pub mover: NodeKey,
    pub via: CoordId,
}

struct Entry {
    /// What each coordinator said last, with the order it came in.
    from: BTreeMap<CoordId, (u64, PeerInfo)>,
    /// When the peer was first known (for who keeps a clashing address).
    first: u64,
}

#[derive(Default)]
pub struct PeerMap {
    entries: BTreeMap<NodeKey, Entry>,
    /// What the data plane was last given.
    shown: BTreeMap<NodeKey, MergedPeer>,
    seq: u64,
    /// Clashes already reported, until they end.
    reported: BTreeSet<(Ipv4Addr, NodeKey)>,
    clashes: VecDeque<Clash>,
}

impl PeerMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// What coordinator `coord` last said about `key`.
    pub fn info_from(&self, coord: CoordId, key: &NodeKey) -> Option<&PeerInfo> {
        self.entries
            .get(key)?
            .from
            .get(&coord)
            .map(|(_, info)| info)
    }

    pub fn upsert(&mut self, coord: CoordId, info: PeerInfo) -> Vec<PeerChange> {
        self.seq += 1;
        let seq = self.seq;
        let entry = self.entries.entry(info.key).or_insert_with(|| Entry {
            from: BTreeMap::new(),
            first: seq,
        });
        entry.from.insert(coord, (seq, info));
        self.refresh()
    }

    pub fn remove(&mut self, coord: CoordId, key: &NodeKey) -> Vec<PeerChange> {
        if let Some(e) = self.entries.get_mut(key) {
            e.from.remove(&coord);
            if e.from.is_empty() {
                self.entries.remove(key);
            }
        }
        self.refresh()
    }

    /// Everything `coord` brought goes (its coordinator was forgotten).
    pub fn remove_coordinator(&mut self, coord: CoordId) -> Vec<PeerChange> {
        self.entries.retain(|_, e| {
            e.from.remove(&coord);
            !e.from.is_empty()
        });
        self.refresh()
    }

    pub fn get(&self, key: &NodeKey) -> Option<&MergedPeer> {
        self.shown.get(key)
    }

    /// The networks shared with each peer, for status.
    pub fn networks(&self) -> impl Iterator<Item = (&NodeKey, &Vec<String>)> {
        self.shown.iter().map(|(k, p)| (k, &p.networks))
    }

    /// Each peer's approved subnet routes.
    pub fn routes(&self) -> impl Iterator<Item = (&NodeKey, &Vec<String>)> {
        self.shown.iter().map(|(k, p)| (k, &p.routes))
    }

    /// Peers not routed by IPv4 because another one holds their address.
    pub fn clashing(&self) -> impl Iterator<Item = NodeKey> + '_ {
        self.shown.values().filter(|p| p.clash).map(|p| p.key)
    }

    /// The next clash to report to a coordinator.
    pub fn poll_clash(&mut self) -> Option<Clash> {
        self.clashes.pop_front()
    }

    /// Recomputes the merged view and returns what changed since the data plane was told.
    fn refresh(&mut self) -> Vec<PeerChange> {
        let mut merged: BTreeMap<NodeKey, MergedPeer> = self
            .entries
            .iter()
            .map(|(k, e)| (*k, merge(*k, e)))
            .collect();
        self.mark_clashes(&mut merged);
        let mut changes = Vec::new();
        for key in self.shown.keys() {
            if !merged.contains_key(key) {
                changes.push(PeerChange::Remove(*key));
            }
        }
        for (key, peer) in &merged {
            if self.shown.get(key) != Some(peer) {
                changes.push(PeerChange::Set(peer.clone()));
            }
        }
        self.shown = merged;
        changes
    }

    /// Keeps each IPv4 address on the peer known first; asks every other holder to move.
    fn mark_clashes(&mut self, merged: &mut BTreeMap<NodeKey, MergedPeer>) {
        let mut holders: BTreeMap<Ipv4Addr, Vec<(u64, NodeKey)>> = BTreeMap::new();
        for (key, p) in merged.iter() {
            if let IpAddr::V4(v4) = p.overlay_ip {
                holders
                    .entry(v4)
                    .or_default()
                    .push((self.entries[key].first, *key));
            }
        }
        let mut live = BTreeSet::new();
        for (ip, mut keys) in holders.into_iter().filter(|(_, k)| k.len() > 1) {
            keys.sort();
            for (_, key) in &keys[1..] {
                merged.get_mut(key).expect("listed").clash = true;
            }
            // The greater keys move: a rule every observer applies alike.
            let smallest = keys.iter().map(|(_, k)| *k).min().expect("two or more");
            for (_, mover) in keys.iter().filter(|(_, k)| *k != smallest) {
                live.insert((ip, *mover));
                if self.reported.insert((ip, *mover)) {
                    let via = self.latest_source(mover);
                    self.clashes.push_back(Clash {
                        ip,
                        mover: *mover,
                        via,
                    });
                }
            }
        }
        self.reported.retain(|c| live.contains(c));
    }

    fn latest_source(&self, key: &NodeKey) -> CoordId {
        let e = &self.entries[key];
        e.from
            .iter()
            .max_by_key(|(_, (seq, _))| *seq)
            .map(|(c, _)| *c)
            .expect("an entry has a source")
    }
}

/// One peer from what its coordinators said: the latest word for its address and endpoints,
/// the networks of all.
fn merge(key: NodeKey, e: &Entry) -> MergedPeer {
    let (_, latest) = e
        .from
        .values()
        .max_by_key(|(seq, _)| *seq)
        .expect("an entry has a source");
    let mut networks: Vec<String> = e
        .from
        .values()
        .flat_map(|(_, p)| p.networks.iter().cloned())
        .collect();
    networks.sort();
    networks.dedup();
    MergedPeer {
        key,
        name: latest.name.clone(),
        overlay_ip: latest.overlay_ip,
        clash: false,
        networks,
        sources: e.from.keys().copied().collect(),
        nat: latest.nat,
        lan: latest.lan.clone(),
        reflexive: latest.reflexive,
        mapped: latest.mapped,
        relay: latest.relay,
        routes: {
            let mut r: Vec<String> = e
                .from
                .values()
                .flat_map(|(_, i)| i.routes.iter().filter(|r| r.approved))
                .map(|r| r.prefix.clone())
                .collect();
            r.sort();
            r.dedup();
            r
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(k: u8, ip: &str, networks: &[&str]) -> PeerInfo {
        PeerInfo {
            key: NodeKey([k; 32]),
            name: format!("p{k}"),
            overlay_ip: ip.parse().unwrap(),
            networks: networks.iter().map(|s| s.to_string()).collect(),
            online: true,
            lan: vec![],
            reflexive: None,
            nat: NatKind::Unknown,
            mapped: None,
            relay: false,
            routes: vec![],
            mapped_tcp: None,
        }
    }

    fn set(changes: &[PeerChange]) -> Vec<&MergedPeer> {
        changes
            .iter()
            .filter_map(|c| match c {
                PeerChange::Set(p) => Some(p),
                PeerChange::Remove(_) => None,
            })
            .collect()
    }

    /// A round of calls is answered from what the calling coordinator itself said of each
    /// peer (its candidates), not another coordinator's word.
    #[test]
    fn what_each_coordinator_said_is_kept_apart() {
        let mut m = PeerMap::new();
        let mut one = info(5, "100.64.0.5", &["alpha"]);
        one.reflexive = Some("198.51.100.1:41820".parse().unwrap());
        let mut two = info(5, "100.64.0.5", &["beta"]);
        two.reflexive = Some("198.51.100.2:41820".parse().unwrap());
        m.upsert(1, one.clone());
        m.upsert(2, two.clone());
        let k = NodeKey([5; 32]);
        assert_eq!(m.info_from(1, &k), Some(&one));
        assert_eq!(m.info_from(2, &k), Some(&two));
        assert_eq!(m.info_from(3, &k), None);
        m.remove(1, &k);
        assert_eq!(m.info_from(1, &k), None);
        assert_eq!(m.info_from(9, &NodeKey([6; 32])), None);
    }

    #[test]
    fn a_friend_of_two_coordinators_is_one_peer_with_both_networks() {
        let mut m = PeerMap::new();
        let c = m.upsert(1, info(5, "100.64.0.5", &["alpha"]));
        assert_eq!(set(&c)[0].networks, ["alpha"]);
        let c = m.upsert(2, info(5, "100.64.0.5", &["beta"]));
        assert_eq!(set(&c)[0].networks, ["alpha", "beta"]);
        assert_eq!(set(&c)[0].sources, [1, 2]);
        // The same word again changes nothing.
        assert!(m.upsert(2, info(5, "100.64.0.5", &["beta"])).is_empty());
        // Gone from one coordinator: still a peer through the other.
        let c = m.remove(1, &NodeKey([5; 32]));
        assert_eq!(set(&c)[0].networks, ["beta"]);
        let c = m.remove_coordinator(2);
        assert_eq!(c, vec![PeerChange::Remove(NodeKey([5; 32]))]);
        assert!(m.get(&NodeKey([5; 32])).is_none());
    }

    #[test]
    fn a_clash_keeps_the_first_peer_routed_and_asks_the_greater_key_to_move() {
        let mut m = PeerMap::new();
        m.upsert(1, info(9, "100.64.0.7", &["alpha"]));
        let c = m.upsert(2, info(3, "100.64.0.7", &["beta"]));
        // Key 3 came second: it is the one not routed…
        assert!(set(&c)[0].clash);
        assert!(!m.get(&NodeKey([9; 32])).unwrap().clash);
        // …but key 9 is greater, so 9 is asked to move, through coordinator 1 that knows it.
        let ask = m.poll_clash().unwrap();
        assert_eq!(
            ask,
            Clash {
                ip: "100.64.0.7".parse().unwrap(),
                mover: NodeKey([9; 32]),
                via: 1,
            }
        );
        // Asked once, not on every update.
        m.upsert(2, info(3, "100.64.0.7", &["beta", "gamma"]));
        assert_eq!(m.poll_clash(), None);
        // 9 moved: both are routed, no clash left.
        let c = m.upsert(1, info(9, "100.64.1.1", &["alpha"]));
        assert!(set(&c).iter().all(|p| !p.clash));
        assert_eq!(set(&c).len(), 2);
        // A clash that comes back is reported again.
        m.upsert(1, info(9, "100.64.0.7", &["alpha"]));
        assert_eq!(m.poll_clash().map(|c| c.mover), Some(NodeKey([9; 32])));
    }

    #[test]
    fn a_second_word_from_another_coordinator_about_the_same_peer_is_no_clash() {
        let mut m = PeerMap::new();
        m.upsert(1, info(4, "100.64.0.4", &["a"]));
        m.upsert(2, info(4, "100.64.0.4", &["b"]));
        assert_eq!(m.poll_clash(), None);
        assert!(!m.get(&NodeKey([4; 32])).unwrap().clash);
    }
}
