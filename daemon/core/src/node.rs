//! The data-plane state machine of one host.
//!
//! Inputs: `handle_tun_packet` (an IP packet the host sent into the overlay), `handle_datagram`
//! (a UDP datagram from the network) and `handle_timeout` (time passed). Outputs: the return
//! values of those calls and, after each of them, `poll_transmit` until it returns `None`
//! (handshake retries, keepalives, packets queued while a handshake was running). The caller
//! supplies every output buffer, so the per-packet path allocates nothing.

use crate::counters::{Counters, DropReason};
use crate::ip;
use crate::peer::{Peer, PeerConfig};
use crate::route::RouteTable;
use boringtun::noise::errors::WireGuardError;
use boringtun::noise::handshake::parse_handshake_anon;
use boringtun::noise::{Packet, Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use warren_proto::api::{PathKind, PeerStatus};
use warren_proto::datagram::{classify, DatagramKind};
use warren_proto::key::NodeKey;

pub type PeerId = usize;

/// boringtun's own device ticks its timers every 250 ms; so do we.
pub const TIMER_TICK: Duration = Duration::from_millis(250);
/// Smallest output buffer: a handshake initiation is 148 bytes.
pub const MIN_OUT: usize = 148;
/// WireGuard data message overhead: 16-byte header + 16-byte tag.
pub const WG_OVERHEAD: usize = 32;
/// Session indices carry the peer slot in their upper 24 bits (boringtun shifts by 8).
const MAX_PEERS: usize = 1 << 24;

/// A datagram to send: `len` bytes at the start of the caller's output buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    pub dst: SocketAddr,
    pub len: usize,
}

/// What to do with a received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// Write `len` bytes at the start of the output buffer to the TUN device.
    ToTun { len: usize },
    /// Send this reply (handshake response, keepalive).
    Transmit(Transmit),
    /// A STUN or disco message: not the data plane's business.
    Control(DatagramKind),
    /// Consumed (or dropped and counted).
    Nothing,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NodeError {
    #[error("peer {0} is this node's own key")]
    OwnKey(NodeKey),
    #[error("peer {0} is configured twice")]
    DuplicatePeer(NodeKey),
    #[error("allowed IP {net} of peer {peer} is already owned by peer {owner}")]
    RouteConflict {
        net: String,
        peer: String,
        owner: String,
    },
    #[error("too many peers")]
    TooManyPeers,
}

pub struct Node {
    secret: StaticSecret,
    public: PublicKey,
    /// Slots; a removed peer leaves `None` so ids (and session indices) of others stay put.
    peers: Vec<Option<Peer>>,
    by_key: HashMap<[u8; 32], PeerId>,
    routes: RouteTable<PeerId>,
    counters: Counters,
    /// Peers whose session just came up and may hold queued packets.
    flush: VecDeque<PeerId>,
    /// Peers to tell where we are now, after our own addresses changed.
    announce: VecDeque<PeerId>,
    /// Next peer whose timers to update in this tick; `peers.len()` when the tick is done.
    timer_cursor: usize,
    next_tick: Option<Instant>,
}

impl Node {
    pub fn new(secret: [u8; 32]) -> Self {
        let secret = StaticSecret::from(secret);
        let public = PublicKey::from(&secret);
        Self {
            secret,
            public,
            peers: Vec::new(),
            by_key: HashMap::new(),
            routes: RouteTable::new(),
            counters: Counters::default(),
            flush: VecDeque::new(),
            announce: VecDeque::new(),
            timer_cursor: 0,
            next_tick: None,
        }
    }

    pub fn public_key(&self) -> NodeKey {
        NodeKey(*self.public.as_bytes())
    }

    pub fn add_peer(&mut self, config: PeerConfig) -> Result<PeerId, NodeError> {
        let key = config.public_key;
        if key.0 == *self.public.as_bytes() {
            return Err(NodeError::OwnKey(key));
        }
        if self.by_key.contains_key(&key.0) {
            return Err(NodeError::DuplicatePeer(key));
        }
        let id = self
            .peers
            .iter()
            .position(Option::is_none)
            .unwrap_or(self.peers.len());
        if id >= MAX_PEERS {
            return Err(NodeError::TooManyPeers);
        }
        for net in &config.allowed_ips {
            if let Err(owner) = self.routes.insert(*net, id) {
                self.routes.remove_owner(id);
                return Err(NodeError::RouteConflict {
                    net: net.to_string(),
                    peer: config.name.clone(),
                    owner: self
                        .peer(owner)
                        .map(|p| p.name().to_string())
                        .unwrap_or_default(),
                });
            }
        }
        let tunn = Tunn::new(
            self.secret.clone(),
            PublicKey::from(key.0),
            None,
            config.persistent_keepalive,
            id as u32,
            None,
        );
        self.by_key.insert(key.0, id);
        let peer = Peer {
            endpoint: config.endpoint,
            config,
            tunn,
            last_authenticated: None,
        };
        if id == self.peers.len() {
            self.peers.push(Some(peer));
        } else {
            self.peers[id] = Some(peer);
        }
        Ok(id)
    }

    /// Forgets a peer: its routes, its session, anything queued for it.
    pub fn remove_peer(&mut self, key: &NodeKey) -> bool {
        let Some(id) = self.by_key.remove(&key.0) else {
            return false;
        };
        self.routes.remove_owner(id);
        self.peers[id] = None;
        self.flush.retain(|p| *p != id);
        self.announce.retain(|p| *p != id);
        true
    }

    /// Points a peer's WireGuard session at `endpoint` (path selection decided it).
    pub fn set_endpoint(&mut self, key: &NodeKey, endpoint: SocketAddr) -> bool {
        match self
            .by_key
            .get(&key.0)
            .and_then(|id| self.peers[*id].as_mut())
        {
            Some(peer) => {
                peer.endpoint = Some(endpoint);
                true
            }
            None => false,
        }
    }

    pub fn peer_id(&self, key: &NodeKey) -> Option<PeerId> {
        self.by_key.get(&key.0).copied()
    }

    pub fn peer(&self, id: PeerId) -> Option<&Peer> {
        self.peers.get(id).and_then(Option::as_ref)
    }

    pub fn peers(&self) -> impl Iterator<Item = &Peer> {
        self.peers.iter().flatten()
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// For drops the shell sees (send and TUN write failures).
    pub fn count_drop(&mut self, reason: DropReason) {
        self.counters.drop(reason);
    }

    /// An IP packet read from the TUN device. `out` must hold `packet.len() + 32` bytes and at
    /// least [`MIN_OUT`].
    pub fn handle_tun_packet(&mut self, packet: &[u8], out: &mut [u8]) -> Option<Transmit> {
        let Some(dst) = ip::destination(packet) else {
            self.counters.drop(DropReason::Malformed);
            return None;
        };
        let Some(id) = self.routes.lookup(dst) else {
            self.counters.drop(if is_multicast_or_broadcast(dst) {
                DropReason::Multicast
            } else {
                DropReason::NoRoute
            });
            return None;
        };
        if out.len() < packet.len() + WG_OVERHEAD || out.len() < MIN_OUT {
            self.counters.drop(DropReason::Oversized);
            return None;
        }
        let Some(peer) = self.peers[id].as_mut() else {
            self.counters.drop(DropReason::NoRoute);
            return None;
        };
        let Some(endpoint) = peer.endpoint else {
            self.counters.drop(DropReason::NoEndpoint);
            return None;
        };
        let out_start = out.as_ptr();
        match peer.tunn.encapsulate(packet, out) {
            TunnResult::WriteToNetwork(d) => {
                debug_assert_eq!(d.as_ptr(), out_start);
                Some(Transmit {
                    dst: endpoint,
                    len: d.len(),
                })
            }
            // Queued inside the session until the handshake completes.
            TunnResult::Done => None,
            _ => {
                self.counters.drop(DropReason::HandshakeFailed);
                None
            }
        }
    }

    /// A datagram received on the daemon's UDP socket. `out` must be at least as long as the
    /// datagram and at least [`MIN_OUT`].
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        out: &mut [u8],
    ) -> Inbound {
        match classify(datagram) {
            DatagramKind::WireGuard(_) => self.handle_wireguard(now, from, datagram, out),
            DatagramKind::Unknown => {
                self.counters.drop(DropReason::Malformed);
                Inbound::Nothing
            }
            other => Inbound::Control(other),
        }
    }

    fn handle_wireguard(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        out: &mut [u8],
    ) -> Inbound {
        if datagram.len() > out.len() || out.len() < MIN_OUT {
            self.counters.drop(DropReason::Oversized);
            return Inbound::Nothing;
        }
        let Ok(packet) = Tunn::parse_incoming_packet(datagram) else {
            self.counters.drop(DropReason::Malformed);
            return Inbound::Nothing;
        };
        let (id, is_handshake) = match &packet {
            Packet::HandshakeInit(init) => {
                match parse_handshake_anon(&self.secret, &self.public, init) {
                    Ok(half) => match self.by_key.get(&half.peer_static_public) {
                        Some(id) => (*id, true),
                        None => {
                            self.counters.drop(DropReason::UnknownPeer);
                            return Inbound::Nothing;
                        }
                    },
                    Err(_) => {
                        self.counters.drop(DropReason::DecryptFailed);
                        return Inbound::Nothing;
                    }
                }
            }
            Packet::HandshakeResponse(p) => ((p.receiver_idx >> 8) as usize, true),
            Packet::PacketCookieReply(p) => ((p.receiver_idx >> 8) as usize, false),
            Packet::PacketData(p) => ((p.receiver_idx >> 8) as usize, false),
        };
        let is_data = matches!(packet, Packet::PacketData(_));
        let Some(peer) = self.peers.get_mut(id).and_then(Option::as_mut) else {
            self.counters.drop(DropReason::UnknownPeer);
            return Inbound::Nothing;
        };
        let out_start = out.as_ptr();
        match peer.tunn.decapsulate(Some(from.ip()), datagram, out) {
            TunnResult::WriteToTunnelV4(p, src) => {
                debug_assert_eq!(p.as_ptr(), out_start);
                let len = p.len();
                self.accept_inner(now, from, id, IpAddr::V4(src), len)
            }
            TunnResult::WriteToTunnelV6(p, src) => {
                debug_assert_eq!(p.as_ptr(), out_start);
                let len = p.len();
                self.accept_inner(now, from, id, IpAddr::V6(src), len)
            }
            TunnResult::WriteToNetwork(p) => {
                // A handshake response or the keepalive that completes our handshake: the
                // message authenticated, so the peer is where it came from.
                debug_assert_eq!(p.as_ptr(), out_start);
                let len = p.len();
                self.authenticated(now, from, id);
                if is_handshake {
                    self.flush.push_back(id);
                }
                Inbound::Transmit(Transmit { dst: from, len })
            }
            TunnResult::Done => {
                if is_data {
                    // A keepalive: authenticated data with nothing inside.
                    self.authenticated(now, from, id);
                }
                Inbound::Nothing
            }
            TunnResult::Err(e) => {
                self.counters.drop(match e {
                    WireGuardError::InvalidAeadTag | WireGuardError::InvalidMac => {
                        DropReason::DecryptFailed
                    }
                    WireGuardError::DuplicateCounter | WireGuardError::InvalidCounter => {
                        DropReason::Replay
                    }
                    WireGuardError::NoCurrentSession | WireGuardError::WrongIndex => {
                        DropReason::NoSession
                    }
                    WireGuardError::InvalidPacket | WireGuardError::IncorrectPacketLength => {
                        DropReason::Malformed
                    }
                    _ => DropReason::HandshakeFailed,
                });
                Inbound::Nothing
            }
        }
    }

    fn accept_inner(
        &mut self,
        now: Instant,
        from: SocketAddr,
        id: PeerId,
        inner_src: IpAddr,
        len: usize,
    ) -> Inbound {
        // The packet is authentic either way, so the peer has roamed even if we refuse it.
        self.authenticated(now, from, id);
        if self.routes.lookup(inner_src) != Some(id) {
            self.counters.drop(DropReason::SourceNotAllowed);
            return Inbound::Nothing;
        }
        Inbound::ToTun { len }
    }

    fn authenticated(&mut self, now: Instant, from: SocketAddr, id: PeerId) {
        if let Some(peer) = self.peers[id].as_mut() {
            peer.endpoint = Some(from);
            peer.last_authenticated = Some(now);
        }
    }

    /// This host's own addresses changed (new network, DHCP renewal, roaming): peers only learn
    /// our new endpoint from an authenticated packet, so the next `poll_transmit` calls send each
    /// peer a keepalive (or start a handshake where there is no session) instead of waiting for
    /// traffic or the persistent keepalive.
    pub fn handle_network_change(&mut self) {
        self.announce.clear();
        self.announce
            .extend((0..self.peers.len()).filter(|id| self.peers[*id].is_some()));
    }

    /// Time passed: the next `poll_transmit` calls run every session's timers once.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.next_tick.is_some_and(|t| now < t) {
            return;
        }
        self.next_tick = Some(now + TIMER_TICK);
        self.timer_cursor = 0;
    }

    /// When the shell should call [`Self::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_tick
    }

    /// The next datagram to send that no input returned directly. `out` as for
    /// [`Self::handle_tun_packet`] with the largest packet the TUN device can produce.
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> Option<Transmit> {
        while let Some(&id) = self.flush.front() {
            let Some(peer) = self.peers[id].as_mut() else {
                self.flush.pop_front();
                continue;
            };
            match peer.tunn.decapsulate(None, &[], out) {
                TunnResult::WriteToNetwork(p) => {
                    if let Some(dst) = peer.endpoint {
                        return Some(Transmit { dst, len: p.len() });
                    }
                }
                _ => {
                    self.flush.pop_front();
                }
            }
        }
        while let Some(id) = self.announce.pop_front() {
            let Some(peer) = self.peers[id].as_mut() else {
                continue;
            };
            let Some(dst) = peer.endpoint else { continue };
            if let TunnResult::WriteToNetwork(p) = peer.tunn.encapsulate(&[], out) {
                return Some(Transmit { dst, len: p.len() });
            }
        }
        while self.timer_cursor < self.peers.len() {
            let slot = &mut self.peers[self.timer_cursor];
            self.timer_cursor += 1;
            let Some(peer) = slot.as_mut() else { continue };
            if let TunnResult::WriteToNetwork(p) = peer.tunn.update_timers(out) {
                match peer.endpoint {
                    Some(dst) => return Some(Transmit { dst, len: p.len() }),
                    None => self.counters.drop(DropReason::NoEndpoint),
                }
            }
        }
        None
    }

    /// Status of every peer as the local API reports it.
    pub fn peer_status(&self, now: Instant) -> Vec<PeerStatus> {
        self.peers()
            .map(|p| {
                let (since, tx, rx, rtt) = p.session_stats();
                let online = p.is_online(now);
                PeerStatus {
                    name: p.name().to_string(),
                    public_key: p.public_key(),
                    overlay_ip: p.overlay_ip(),
                    allowed_ips: p.allowed_ips().iter().map(|n| n.to_string()).collect(),
                    online,
                    path: if online && p.endpoint.is_some() {
                        PathKind::Direct
                    } else {
                        PathKind::None
                    },
                    endpoint: p.endpoint,
                    rtt_ms: rtt,
                    last_handshake_secs: since.map(|d| d.as_secs()),
                    rx_bytes: rx,
                    tx_bytes: tx,
                }
            })
            .collect()
    }
}

fn is_multicast_or_broadcast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_multicast()
                || v4.is_broadcast()
                || v4 == warren_proto::overlay::OVERLAY_V4.broadcast()
        }
        IpAddr::V6(v6) => v6.is_multicast(),
    }
}

#[cfg(test)]
mod tests;
