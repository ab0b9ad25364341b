//! LAN prefixes routed through a peer (subnet routes, issue 19): they join its own addresses
//! in cryptokey routing, so packets to them go to the peer and packets from them are accepted
//! from it — and from no other peer.

use super::{Node, NodeError};
use ipnet::IpNet;
use warren_proto::key::NodeKey;

impl Node {
    /// Routes exactly `nets` through peer `key` (replacing the ones before). A prefix another
    /// peer holds is refused and left out; the others still apply.
    pub fn set_peer_subnets(&mut self, key: &NodeKey, nets: &[IpNet]) -> Result<(), NodeError> {
        let Some(id) = self.peer_id(key) else {
            return Ok(());
        };
        let Some(peer) = self.peers[id].as_mut() else {
            return Ok(());
        };
        let old = std::mem::take(&mut peer.subnets);
        for net in &old {
            self.routes.remove(*net, id);
        }
        let mut kept = Vec::new();
        let mut refused = None;
        for net in nets {
            match self.routes.insert(*net, id) {
                Ok(()) => kept.push(*net),
                Err(owner) => {
                    refused = Some(NodeError::RouteConflict {
                        net: net.to_string(),
                        peer: self.peers[id]
                            .as_ref()
                            .map(|p| p.name().to_string())
                            .unwrap_or_default(),
                        owner: self
                            .peer(owner)
                            .map(|p| p.name().to_string())
                            .unwrap_or_default(),
                    })
                }
            }
        }
        if let Some(p) = self.peers[id].as_mut() {
            p.subnets = kept;
        }
        refused.map_or(Ok(()), Err)
    }

    /// `ip` lies in a LAN routed through one of our peers.
    pub(super) fn in_a_subnet_route(&self, ip: std::net::IpAddr) -> bool {
        self.peers
            .iter()
            .flatten()
            .any(|p| p.subnets.iter().any(|n| n.contains(&ip)))
    }

    /// A datagram from `ip` reached our UDP socket through our own tunnel: from an address our
    /// cryptokey routing sends into the tunnel (a peer's overlay address, or a LAN we route
    /// through a peer — e.g. we probed a peer's LAN address inside a routed LAN). Taking it as
    /// a path would put WireGuard inside WireGuard. (Not the whole 100.64/10: hosts behind one
    /// carrier-grade NAT meet directly at such addresses.)
    pub(super) fn came_through_the_tunnel(&self, ip: std::net::IpAddr) -> bool {
        self.routes.lookup(ip.to_canonical()).is_some()
    }

    /// The prefixes routed through peer `key`.
    pub fn peer_subnets(&self, key: &NodeKey) -> Vec<IpNet> {
        self.peer_id(key)
            .and_then(|id| self.peers[id].as_ref())
            .map(|p| p.subnets.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_peers::coordinator_peer;
    use super::*;

    #[test]
    fn a_routed_prefix_goes_to_its_peer_until_it_is_withdrawn() {
        let mut node = Node::new([1; 32], [0; 16]);
        let (a, b) = (coordinator_peer(2), coordinator_peer(3));
        let (ka, kb) = (a.public_key, b.public_key);
        node.add_peer(a).unwrap();
        node.add_peer(b).unwrap();
        let lan: IpNet = "192.168.1.0/24".parse().unwrap();
        let host = "192.168.1.10".parse().unwrap();
        assert_eq!(node.routes.lookup(host), None);
        node.set_peer_subnets(&ka, &[lan]).unwrap();
        assert_eq!(node.routes.lookup(host), node.peer_id(&ka));
        // A peer's LAN address inside that LAN is not probed as a direct path: it would be
        // reached through the overlay.
        let t = std::time::Instant::now();
        let inside: std::net::SocketAddr = "192.168.1.20:41820".parse().unwrap();
        let outside: std::net::SocketAddr = "10.0.0.20:41820".parse().unwrap();
        node.handle_call_me_maybe(t, &kb, &[inside, outside], None, None);
        let b = node.peer(node.peer_id(&kb).unwrap()).unwrap();
        let probed: Vec<_> = b.paths.paths().map(|p| p.addr).collect();
        assert!(
            probed.contains(&outside) && !probed.contains(&inside),
            "{probed:?}"
        );
        // The same prefix through another peer is refused; the first keeps it.
        assert!(node.set_peer_subnets(&kb, &[lan]).is_err());
        assert_eq!(node.routes.lookup(host), node.peer_id(&ka));
        assert!(node.peer_subnets(&kb).is_empty());
        // Withdrawn: nobody routes it, and the peer's own address still does.
        node.set_peer_subnets(&ka, &[]).unwrap();
        assert_eq!(node.routes.lookup(host), None);
        assert_eq!(
            node.routes.lookup("100.64.0.2".parse().unwrap()),
            node.peer_id(&ka)
        );
    }
}
