//! Peer relays (issue 18): a member others can reach unasked (a public address or a port
//! mapping) relays for the rest of its networks, as Skype's supernodes, Nebula's relays and
//! EasyTier's peers do. Both sides of it live here:
//!
//! - Serving: the coordinator's relay core (`warren_coordinator_core::Relay`) on this node's
//!   one UDP socket. It admits exactly our peers, each under the token only it and we can make
//!   from our static keys (`DiscoKey::relay_token`), so no one has to hand tokens around and
//!   none of the coordinator's relay tokens is ever shown to a member; and it forwards between
//!   two of them only when they share one of our networks. Payloads stay end-to-end WireGuard.
//! - Using: a peer the coordinator names as a relay becomes one more [`super::relays`] entry,
//!   registered with that same token; the relay with the shortest round trip carries.

use super::{Inbound, Node, Transmit};
use crate::peer::Peer;
use blake2::{Blake2s256, Digest};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;
use warren_coordinator_core::Relay;
pub use warren_coordinator_core::{RelayConfig, RelayCounters};
use warren_proto::key::NodeKey;

const COOKIE_DOMAIN: &[u8] = b"warren peer relay v1 cookie secret";

pub(super) struct Serving {
    relay: Relay,
}

impl Node {
    /// Relay for our peers (or stop). While on, every peer may register with us and send
    /// through us to another peer that shares one of our networks with it.
    pub fn set_relaying(&mut self, on: bool, config: RelayConfig) {
        if !on {
            self.serving = None;
            return;
        }
        // Challenges must be unforgeable by others: keyed by our secret and this run's seed.
        let cookie_secret: [u8; 32] = Blake2s256::new()
            .chain_update(COOKIE_DOMAIN)
            .chain_update(self.secret_bytes)
            .chain_update(self.nonce_prefix)
            .finalize()
            .into();
        let mut relay = Relay::new(config, cookie_secret);
        for peer in self.peers.iter().flatten() {
            if let Some(d) = &peer.disco {
                relay.add_node(peer.public_key(), d.relay_token());
            }
        }
        self.serving = Some(Serving { relay });
    }

    pub fn is_relaying(&self) -> bool {
        self.serving.is_some()
    }

    /// What our relay for others did (while it is on).
    pub fn relaying_counters(&self) -> Option<RelayCounters> {
        self.serving.as_ref().map(|s| s.relay.counters())
    }

    /// The networks we share with peer `key`: a peer relay forwards only within them.
    pub fn set_peer_networks(&mut self, key: &NodeKey, networks: Vec<String>) {
        if let Some(p) = self.peer_id(key).and_then(|id| self.peers[id].as_mut()) {
            p.networks = networks;
        }
    }

    /// Peer `key` relays for its networks at `at` (`None`: it no longer does, or left).
    /// Call after [`Self::set_peer_networks`]: it relays for the networks we share with it.
    pub fn set_peer_relay(&mut self, now: Instant, key: &NodeKey, at: Option<SocketAddr>) {
        let relay = self
            .peer_id(key)
            .and_then(|id| self.peers[id].as_ref())
            .and_then(|p| Some((p.disco.as_ref()?.relay_token(), p.networks.clone())));
        let entry = at.zip(relay).map(|(at, (token, nets))| (at, token, nets));
        self.relays.set_peer(now, *key, entry);
    }

    pub(super) fn serve_peer_added(&mut self, key: NodeKey) {
        let token = self
            .peer_id(&key)
            .and_then(|id| self.peers[id].as_ref())
            .and_then(|p| p.disco.as_ref())
            .map(|d| d.relay_token());
        if let (Some(s), Some(token)) = (self.serving.as_mut(), token) {
            s.relay.add_node(key, token);
        }
    }

    pub(super) fn serve_peer_removed(&mut self, key: &NodeKey) {
        if let Some(s) = self.serving.as_mut() {
            s.relay.remove_node(key);
        }
        self.relays.remove_peer(key);
    }

    /// A relay frame a client sends (ping, register, send) came to us: serve it if we relay.
    pub(super) fn serve_relay_frame(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        out: &mut [u8],
    ) -> Inbound {
        let Some(s) = self.serving.as_mut() else {
            self.counters.drop(crate::counters::DropReason::Unhandled);
            return Inbound::Nothing;
        };
        let (peers, by_key) = (&self.peers, &self.by_key);
        let shares = |a: &NodeKey, b: &NodeKey| share_a_network(peers, by_key, a, b);
        match s.relay.handle_datagram(now, from, datagram, shares, out) {
            Some(t) => Inbound::Transmit(Transmit {
                dst: t.to,
                len: t.len,
            }),
            None => Inbound::Nothing,
        }
    }
}

/// Both are our peers and one of our networks holds both.
fn share_a_network(
    peers: &[Option<Peer>],
    by_key: &HashMap<[u8; 32], usize>,
    a: &NodeKey,
    b: &NodeKey,
) -> bool {
    let networks = |k: &NodeKey| {
        by_key
            .get(&k.0)
            .and_then(|id| peers[*id].as_ref())
            .map(|p| p.networks.as_slice())
    };
    match (networks(a), networks(b)) {
        (Some(na), Some(nb)) => a != b && na.iter().any(|n| nb.contains(n)),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
