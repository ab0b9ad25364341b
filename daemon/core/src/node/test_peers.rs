//! Small builders shared by the node's tests (birthday runs, TCP dials, wake, subnets).

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

/// What the relay at `relay` would deliver to the other side of everything `n` sends it now:
/// each `Send` frame's payload re-framed as a `Deliver` (other transmits are dropped).
pub fn relayed_frames(n: &mut Node, relay: SocketAddr) -> Vec<Vec<u8>> {
    use warren_proto::relay::{RelayFrame, DELIVER_HEADER_LEN};
    let mut out = vec![0u8; 2048];
    let mut frames = Vec::new();
    while let Some(t) = n.poll_transmit(&mut out) {
        if t.dst != relay {
            continue;
        }
        if let Ok(RelayFrame::Send { payload, .. }) = warren_proto::relay::parse(&out[..t.len]) {
            let mut frame = vec![0u8; DELIVER_HEADER_LEN + payload.len()];
            warren_proto::relay::write_deliver_header(&mut frame);
            frame[DELIVER_HEADER_LEN..].copy_from_slice(payload);
            frames.push(frame);
        }
    }
    frames
}
