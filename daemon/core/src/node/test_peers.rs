//! Small builders shared by the node's tests of birthday runs and TCP dials.

use super::*;
use crate::peer::PeerConfig;
use std::net::Ipv4Addr;

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub fn key_of(seed: u8) -> NodeKey {
    Node::new([seed; 32], [0; 16]).public_key()
}

/// A peer the coordinator brings (relayed until a direct path is proven), at 100.64.0.SEED.
pub fn coordinator_peer(seed: u8) -> PeerConfig {
    PeerConfig {
        name: format!("n{seed}"),
        public_key: key_of(seed),
        allowed_ips: vec![format!("{}/32", Ipv4Addr::new(100, 64, 0, seed))
            .parse()
            .unwrap()],
        endpoint: None,
        persistent_keepalive: None,
        relay: true,
    }
}
