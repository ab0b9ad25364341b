//! Direct paths over TCP for a host whose network lets no UDP out (a hotel, an office): the
//! `Node`'s side. It says which peers to dial and takes the connected stream as one more
//! candidate address to probe. The shell carries a TCP stream behind a UDP socket on loopback
//! (the same trick as the relay over TCP), so to the core a TCP path is an address like any
//! other: it is proven by disco pings and pongs, chosen over the relay, and dropped when it
//! falls silent.
//!
//! Whom to dial, and where:
//! - A UDP-blocked host dials each relayed peer's router port mapping of its TCP listen port
//!   (`mapped_tcp`, when the coordinator passed one on) and its public address (a public host
//!   listens on TCP at its UDP port).
//! - Behind a NAT nothing listens at a public address, so the UDP-blocked host also asks the
//!   peer through the relay ([`DiscoMsg::TcpDial`]) to dial it back at once. Both dial from
//!   their listen ports to the other's public address: two SYNs in flight together are a
//!   TCP simultaneous open, which NATs that keep ports let through (each SYN is a reply to
//!   the one that went out). The answering side dials only the address the coordinator gave
//!   for the peer (its control connection's source, vouched for), never one the message
//!   names, and only peers the coordinator introduced (which are the ones with a public
//!   address).
//!
//! Each peer is dialed at most once per [`REDIAL_AFTER`], whoever started it, and only while
//! it has no direct path.

use super::{route_of, Node, PeerId};
use crate::path::CandidateKind;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use warren_proto::disco::DiscoMsg;
use warren_proto::key::NodeKey;

/// A peer is not dialed again sooner than this after the last try.
pub const REDIAL_AFTER: Duration = Duration::from_secs(30);
/// A peer's ask to dial it back is answered within this or not at all: its SYNs stop soon
/// after (the shell's connect timeout). An ask that comes a little before the peer is due
/// again (each side's clock started its 30 s a relay trip apart) waits for it.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// What the core knows per peer about TCP dials.
#[derive(Debug, Default)]
pub(super) struct TcpDials {
    peers: HashMap<PeerId, TcpPeer>,
}

#[derive(Debug, Default)]
struct TcpPeer {
    /// When it was last dialed.
    last: Option<Instant>,
    /// Its router's mapping of its TCP listen port, as the coordinator passed it on.
    mapped_tcp: Option<SocketAddr>,
    /// When it asked us to dial it back ([`DiscoMsg::TcpDial`]).
    asked: Option<Instant>,
}

impl TcpPeer {
    fn due(&self, now: Instant) -> bool {
        self.last.is_none_or(|t| now >= t + REDIAL_AFTER)
    }
}

impl Node {
    /// Whether STUN heard nothing at all: this host's UDP does not get out.
    pub fn udp_blocked(&self) -> bool {
        self.discovery
            .result()
            .is_some_and(|d| d.reflexive.is_none())
    }

    /// The coordinator says `key`'s router forwards `mapped_tcp` to its TCP listen port (or,
    /// with `None`, that it holds no such mapping). Pass it on with each call to probe.
    pub fn set_peer_mapped_tcp(&mut self, key: &NodeKey, mapped_tcp: Option<SocketAddr>) {
        if let Some(id) = self.peer_id(key) {
            self.tcp_dials.peers.entry(id).or_default().mapped_tcp = mapped_tcp;
        }
    }

    /// The TCP connections to try now: (peer, address). The shell dials each from its TCP
    /// listen port. See the module's comment for whom and where.
    pub fn poll_tcp_dials(&mut self, now: Instant) -> Vec<(NodeKey, SocketAddr)> {
        if !self.up {
            return Vec::new();
        }
        let blocked = self.udp_blocked();
        let mut out = Vec::new();
        let mut ask = Vec::new();
        for id in 0..self.peers.len() {
            let Some(peer) = self.peers[id].as_ref() else {
                continue;
            };
            let state = self.tcp_dials.peers.entry(id).or_default();
            let asked = match state.asked {
                Some(at) if now >= at + ANSWER_WITHIN => {
                    state.asked = None;
                    false
                }
                Some(_) => true,
                None => false,
            };
            // Only peers the coordinator introduced have a public address here.
            let Some(public) = peer.reflexive else {
                continue;
            };
            if peer.paths.best_path().is_some() || !state.due(now) || !(blocked || asked) {
                continue;
            }
            state.last = Some(now);
            state.asked = None;
            let key = peer.public_key();
            if let Some(m) = state.mapped_tcp.filter(|m| *m != public && blocked) {
                out.push((key, m));
            }
            out.push((key, public));
            if blocked && !asked {
                // The peer dials us back at the same moment (we may both be behind NATs).
                ask.extend(route_of(peer, &self.relays).map(|r| (id, r)));
            }
        }
        for (id, route) in ask {
            let nonce = self.next_nonce();
            let tx_id = nonce[12..].try_into().expect("12 bytes");
            self.pongs
                .push_back((id, route, DiscoMsg::TcpDial { tx_id }));
        }
        out
    }

    /// The peer `id` dials us over TCP now and asks us to dial it back
    /// ([`DiscoMsg::TcpDial`]): the next [`poll_tcp_dials`](Self::poll_tcp_dials) does, if
    /// the peer is due.
    pub(super) fn tcp_dial_requested(&mut self, now: Instant, id: PeerId) {
        self.tcp_dials.peers.entry(id).or_default().asked = Some(now);
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
        self.tcp_dials.peers.remove(&id);
    }
}

#[cfg(test)]
mod tests;
