//! Direct paths over TCP for a host whose network lets no UDP out (a hotel, an office): the
//! `Node`'s side. It says which peers to dial (those it cannot reach but through the relay,
//! whose public address it knows), and takes the connected stream as one more candidate
//! address to probe. The shell carries a TCP stream behind a UDP socket on loopback (the same
//! trick as the relay over TCP), so to the core a TCP path is an address like any other: it
//! is proven by disco pings and pongs, chosen over the relay, and dropped when it falls silent.

use super::{Node, PeerId};
use crate::path::CandidateKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use warren_proto::key::NodeKey;

/// A peer is not dialed again sooner than this after the last try.
pub const REDIAL_AFTER: Duration = Duration::from_secs(30);

impl Node {
    /// Whether STUN heard nothing at all: this host's UDP does not get out.
    pub fn udp_blocked(&self) -> bool {
        self.discovery
            .result()
            .is_some_and(|d| d.reflexive.is_none())
    }

    /// The TCP connections to try now: (peer, its public address; the same port on TCP). Each
    /// peer at most once per [`REDIAL_AFTER`], only while it has no direct path, only peers the
    /// coordinator introduced with a public address, and only when our UDP is blocked.
    pub fn poll_tcp_dials(&mut self, now: Instant) -> Vec<(NodeKey, SocketAddr)> {
        if !self.up || !self.udp_blocked() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for id in 0..self.peers.len() {
            let Some(peer) = self.peers[id].as_ref() else {
                continue;
            };
            let Some(target) = peer.reflexive else {
                continue;
            };
            let due = self
                .tcp_dialed
                .get(&id)
                .is_none_or(|t| now >= *t + REDIAL_AFTER);
            if peer.paths.best_path().is_none() && due {
                out.push((peer.public_key(), target));
                self.tcp_dialed.insert(id, now);
            }
        }
        out
    }

    /// The shell connected to `key` over TCP; the stream is reached at `link` (a loopback
    /// address of the shell's): probe it as a candidate.
    pub fn tcp_link_up(&mut self, now: Instant, key: &NodeKey, link: SocketAddr) -> bool {
        self.note_time(now);
        let Some(id) = self.peer_id(key) else {
            return false;
        };
        if let Some(p) = self.peers[id].as_mut() {
            p.paths.probe(now, link, CandidateKind::Reflexive);
            self.disco_dirty.push_back(id);
        }
        true
    }

    pub(super) fn forget_tcp_dial(&mut self, id: PeerId) {
        self.tcp_dialed.remove(&id);
    }
}

#[cfg(test)]
mod tests;
