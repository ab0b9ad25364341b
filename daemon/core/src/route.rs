//! Cryptokey routing: which peer owns an overlay address.
//!
//! Host routes (/32, /128) — the overwhelmingly common case — are a hash lookup; wider prefixes
//! fall back to a longest-prefix scan over a short list.

use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;

#[derive(Debug, Default, Clone)]
pub struct RouteTable<T> {
    hosts: HashMap<IpAddr, T>,
    /// Sorted longest prefix first.
    prefixes: Vec<(IpNet, T)>,
}

impl<T: Copy + PartialEq> RouteTable<T> {
    pub fn new() -> Self {
        Self {
            hosts: HashMap::new(),
            prefixes: Vec::new(),
        }
    }

    /// Adds a route. Returns the current owner instead if the exact prefix is already taken.
    pub fn insert(&mut self, net: IpNet, owner: T) -> Result<(), T> {
        let net = net.trunc();
        if net.prefix_len() == net.max_prefix_len() {
            if let Some(existing) = self.hosts.get(&net.addr()) {
                return Err(*existing);
            }
            self.hosts.insert(net.addr(), owner);
            return Ok(());
        }
        if let Some((_, existing)) = self.prefixes.iter().find(|(n, _)| *n == net) {
            return Err(*existing);
        }
        self.prefixes.push((net, owner));
        self.prefixes
            .sort_by_key(|(n, _)| std::cmp::Reverse(n.prefix_len()));
        Ok(())
    }

    /// Removes the route for exactly `net` when `owner` holds it.
    pub fn remove(&mut self, net: IpNet, owner: T) {
        let net = net.trunc();
        if net.prefix_len() == net.max_prefix_len() {
            if self.hosts.get(&net.addr()) == Some(&owner) {
                self.hosts.remove(&net.addr());
            }
            return;
        }
        self.prefixes.retain(|(n, o)| !(*n == net && *o == owner));
    }

    /// Removes every route of `owner`.
    pub fn remove_owner(&mut self, owner: T) {
        self.hosts.retain(|_, o| *o != owner);
        self.prefixes.retain(|(_, o)| *o != owner);
    }

    pub fn lookup(&self, addr: IpAddr) -> Option<T> {
        if let Some(o) = self.hosts.get(&addr) {
            return Some(*o);
        }
        self.prefixes
            .iter()
            .find(|(n, _)| n.contains(&addr))
            .map(|(_, o)| *o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn host_routes_beat_prefixes_and_longest_prefix_wins() {
        let mut t = RouteTable::new();
        t.insert(net("100.64.0.0/10"), 1).unwrap();
        t.insert(net("100.64.1.0/24"), 2).unwrap();
        t.insert(net("100.64.1.7/32"), 3).unwrap();
        t.insert(net("fd00::1/128"), 4).unwrap();
        let cases = [
            ("100.64.1.7", Some(3)),
            ("100.64.1.8", Some(2)),
            ("100.65.0.1", Some(1)),
            ("100.128.0.1", None),
            ("fd00::1", Some(4)),
            ("fd00::2", None),
            ("10.0.0.1", None),
        ];
        for (addr, want) in cases {
            assert_eq!(t.lookup(ip(addr)), want, "{addr}");
        }
    }

    #[test]
    fn duplicates_are_refused_with_owner_and_removal_works() {
        let mut t = RouteTable::new();
        t.insert(net("100.64.0.1/32"), 1).unwrap();
        assert_eq!(t.insert(net("100.64.0.1/32"), 2), Err(1));
        t.insert(net("10.0.0.0/8"), 1).unwrap();
        // Host bits are ignored: 10.1.2.3/8 is 10.0.0.0/8.
        assert_eq!(t.insert(net("10.1.2.3/8"), 2), Err(1));
        t.remove_owner(1);
        assert_eq!(t.lookup(ip("100.64.0.1")), None);
        assert_eq!(t.lookup(ip("10.0.0.5")), None);
        t.insert(net("100.64.0.1/32"), 2).unwrap();
        assert_eq!(t.lookup(ip("100.64.0.1")), Some(2));
    }
}
