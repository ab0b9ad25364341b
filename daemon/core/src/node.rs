//! The data-plane state machine of one host.
//!
//! Inputs: `handle_tun_packet` (an IP packet the host sent into the overlay), `handle_datagram`
//! (a UDP datagram from the network) and `handle_timeout` (time passed). Outputs: the return
//! values of those calls and, after each of them, `poll_transmit` until it returns `None`
//! (handshake retries, keepalives, packets queued while a handshake was running). The caller
//! supplies every output buffer, so the per-packet path allocates nothing.

use crate::counters::{Counters, DropReason};
use crate::ip;
use crate::path::{Candidate, CandidateKind, PathConfig, PeerPaths};
use crate::peer::{Peer, PeerConfig};
use crate::route::RouteTable;
use crate::stun::{Discovery, DiscoveryConfig, EndpointDiscovery, SeededTxIds};
use boringtun::noise::errors::WireGuardError;
use boringtun::noise::handshake::parse_handshake_anon;
use boringtun::noise::rate_limiter::RateLimiter;
use boringtun::noise::{Packet, Tunn, TunnResult};
use boringtun::x25519::{PublicKey, StaticSecret};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use warren_proto::api::PathKind;
use warren_proto::control::msg::NatKind;
use warren_proto::datagram::{classify, DatagramKind};
use warren_proto::disco::{self, DiscoKey, DiscoMsg};
use warren_proto::key::NodeKey;
use warren_proto::relay::{self as relay_frame, RelayFrame, RelayToken, SEND_HEADER_LEN};

mod birthday;
pub mod capture;
pub mod disco_freshness;
mod disco_in;
pub mod discovery_ports;
pub mod fanout;
mod own_address;
mod peer_relay;
mod peer_table;
mod requests;
mod settings;
pub mod snapshot;
mod subnets;
mod wireguard;
pub use peer_relay::{RelayConfig, RelayCounters};
pub mod port_check;
pub mod relays;
mod tcp_dial;
#[cfg(test)]
mod test_peers;
mod user_ping;
pub mod wake;

use fanout::{Fanout, FanoutConfig, FanoutCounters};
use port_check::{PortChecks, PortQuestion};

pub use birthday::{SideEvent, SideSocket};
use relays::{RelayId, Relays, Target};
pub use snapshot::PeerSnapshot;
pub use tcp_dial::REDIAL_AFTER;
pub use user_ping::PingAnswer;
use user_ping::UserPings;
use warren_proto::disco::{Listening, PortProto};

pub type PeerId = usize;

/// boringtun's own device ticks its timers every 250 ms; so do we.
pub const TIMER_TICK: Duration = Duration::from_millis(250);
/// Smallest output buffer: a handshake initiation is 148 bytes.
pub const MIN_OUT: usize = 148;
/// WireGuard data message overhead: 16-byte header + 16-byte tag.
pub const WG_OVERHEAD: usize = 32;
/// Session indices carry the peer slot in their upper 24 bits (boringtun shifts by 8).
const MAX_PEERS: usize = 1 << 24;
/// Handshakes a second before the cookie is asked for: a host with hundreds of peers that all
/// come back at once stays under it.
pub const HANDSHAKE_LIMIT: u64 = 500;
/// A peer without a direct path heard from this recently has traffic through a relay: the
/// relays are then pinged faster, so a dead one is left within 2 s.
const RELAYED_TRAFFIC_RECENT: Duration = Duration::from_secs(10);
/// Least time between two checks of our own NAT mapping prompted by silent paths.
pub const RECHECK_INTERVAL: Duration = Duration::from_secs(2);

/// A datagram to send: `len` bytes at the start of the caller's output buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    pub dst: SocketAddr,
    pub len: usize,
}

/// How a datagram reaches a peer: straight to an address, or through the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Direct(SocketAddr),
    Relay(SocketAddr),
}

/// A proven direct path first; else the relay, for peers it serves, while it answers; else the
/// last address the peer was heard from (or configured), which is all a node without a relay
/// (or with a dead one) has.
fn route_of(peer: &Peer, relays: &Relays) -> Option<Route> {
    if let Some(best) = peer.paths.best_path() {
        return Some(Route::Direct(best.addr));
    }
    let target = Target {
        coordinators: &peer.relays,
        key: &peer.config.public_key,
        networks: &peer.networks,
    };
    let relay = relays.for_peer(&target).filter(|_| peer.config.relay);
    match relay {
        Some(r) if r.is_usable() || peer.endpoint.is_none() => Some(Route::Relay(r.server())),
        _ => peer.endpoint.map(Route::Direct),
    }
}

/// Turns the `len` bytes at the start of `out` into the datagram for `route`: unchanged when
/// direct, moved behind a relay Send header when relayed. `None` if `out` has no room for it.
fn wrap(route: Route, to: &NodeKey, out: &mut [u8], len: usize) -> Option<Transmit> {
    match route {
        Route::Direct(dst) => Some(Transmit { dst, len }),
        Route::Relay(server) => {
            if out.len() < len + SEND_HEADER_LEN {
                return None;
            }
            out.copy_within(..len, SEND_HEADER_LEN);
            relay_frame::write_send_header(out, to);
            Some(Transmit {
                dst: server,
                len: len + SEND_HEADER_LEN,
            })
        }
    }
}

/// What to do with a received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    /// Write `len` bytes at the start of the output buffer to the TUN device.
    ToTun { len: usize },
    /// Send this reply (handshake response, keepalive).
    Transmit(Transmit),
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

/// Why a person's ping could not be sent (the daemon words it for people).
#[derive(Debug, PartialEq, Eq)]
pub enum PingError {
    Down,
    UnknownPeer,
    NoPath,
    /// Path messages are off for this peer's key.
    NoDisco,
}

pub struct Node {
    secret_bytes: [u8; 32],
    secret: StaticSecret,
    public: PublicKey,
    /// Checks every handshake's mac1 (keyed with our public key: cheap) before the X25519 work
    /// of finding its sender, and past [`HANDSHAKE_LIMIT`] a second answers with a cookie
    /// instead, as WireGuard does.
    handshake_gate: RateLimiter,
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
    /// Peers whose path machine may have something to send.
    disco_dirty: VecDeque<PeerId>,
    /// Peers whose first proven path arrived before any session: handshake on it right away
    /// instead of waiting for WireGuard's 5 s retry of an initiation sent elsewhere.
    handshake_now: VecDeque<PeerId>,
    /// Pongs to send: (peer, route back, message).
    pongs: VecDeque<(PeerId, Route, DiscoMsg)>,
    /// Injected randomness: disco nonces are this prefix plus a counter.
    nonce_prefix: [u8; 16],
    nonce_counter: u64,
    /// The time written into disco nonces, so that peers can refuse replays.
    clock: disco_freshness::SenderClock,
    disco_buf: Vec<u8>,
    /// Our reflexive address and NAT kind, asked of two STUN servers from this socket.
    discovery: EndpointDiscovery,
    /// `false` after `warren down`: nothing is carried, nothing is sent.
    up: bool,
    user_pings: UserPings,
    /// Pings a person asked for, to send: (peer, route, message).
    user_ping_out: VecDeque<(PeerId, Route, DiscoMsg)>,
    /// The relays we may send through: the coordinators' and our peers'.
    relays: Relays,
    /// Our relay for our peers, while we offer one (see `peer_relay`).
    serving: Option<peer_relay::Serving>,
    /// Broadcast and multicast packets from the TUN, copied to every peer.
    fanout: Fanout<PeerId>,
    /// This host's overlay IPv4 address: the source of discovery packets copied from the LAN.
    own_v4: Option<std::net::Ipv4Addr>,
    /// Where a copied discovery packet is rewritten (see [`capture`]).
    capture_buf: Vec<u8>,
    /// The directed broadcast addresses of this host's other interfaces.
    lan_broadcasts: Vec<std::net::Ipv4Addr>,
    game_ports: discovery_ports::DiscoveryCounters,
    /// `warren check` questions to and from peers.
    port_checks: PortChecks<Route>,
    /// The birthday runs going on and when the next ones start, the side sockets that won
    /// earlier ones, what the shell must do with side sockets, and the last run's number.
    birthday: Vec<birthday::Run>,
    birthday_schedule: birthday::Schedule<PeerId>,
    side_kept: Vec<birthday::Kept>,
    side_events: VecDeque<SideEvent>,
    birthday_runs: u32,
    /// When each peer was last dialed over TCP, and where (see `tcp_dial`).
    tcp_dials: tcp_dial::TcpDials,
    wakes: wake::Wakes,
    /// The port mapping our router grants us (UPnP-IGD, NAT-PMP, PCP), if any.
    port_mapping: Option<SocketAddr>,
    /// When a silent path last made us check our own mapping (see `recheck_own_mapping`),
    /// and how often it did.
    last_recheck: Option<Instant>,
    mapping_rechecks: u64,
}

impl Node {
    /// `seed` must be fresh randomness for every run: disco nonces and probe ids derive from it.
    pub fn new(secret: [u8; 32], seed: [u8; 16]) -> Self {
        let secret_bytes = secret;
        let secret = StaticSecret::from(secret);
        let public = PublicKey::from(&secret);
        Self {
            secret_bytes,
            secret,
            handshake_gate: RateLimiter::new(&public, HANDSHAKE_LIMIT),
            public,
            peers: Vec::new(),
            by_key: HashMap::new(),
            routes: RouteTable::new(),
            counters: Counters::default(),
            flush: VecDeque::new(),
            announce: VecDeque::new(),
            timer_cursor: 0,
            next_tick: None,
            disco_dirty: VecDeque::new(),
            handshake_now: VecDeque::new(),
            pongs: VecDeque::new(),
            nonce_prefix: seed,
            nonce_counter: 0,
            clock: Default::default(),
            disco_buf: Vec::with_capacity(128),
            discovery: EndpointDiscovery::new(DiscoveryConfig::default(), {
                let mut s = [0u8; 32];
                s[..16].copy_from_slice(&seed);
                s[16..].copy_from_slice(b"warren stun seed");
                SeededTxIds::new(s)
            }),
            up: true,
            user_pings: UserPings::default(),
            user_ping_out: VecDeque::new(),
            relays: Relays::default(),
            serving: None,
            fanout: Fanout::new(FanoutConfig::default()),
            own_v4: None,
            capture_buf: Vec::new(),
            lan_broadcasts: Vec::new(),
            game_ports: Default::default(),
            port_checks: PortChecks::default(),
            birthday: Vec::new(),
            birthday_schedule: birthday::Schedule::default(),
            side_kept: Vec::new(),
            side_events: VecDeque::new(),
            birthday_runs: 0,
            tcp_dials: Default::default(),
            wakes: Default::default(),
            port_mapping: None,
            last_recheck: None,
            mapping_rechecks: 0,
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
        self.note_time(now);
        if !self.up {
            self.counters.drop(DropReason::TunnelDown);
            return Inbound::Nothing;
        }
        if self.came_through_the_tunnel(from.ip()) {
            self.counters.drop(DropReason::Looped);
            return Inbound::Nothing;
        }
        match classify(datagram) {
            DatagramKind::WireGuard(_) => self.handle_wireguard(now, from, false, datagram, out),
            DatagramKind::Disco => {
                self.handle_disco(now, from, false, datagram);
                Inbound::Nothing
            }
            DatagramKind::Relay => self.handle_relay(now, from, datagram, out),
            DatagramKind::Unknown => {
                self.counters.drop(DropReason::Malformed);
                Inbound::Nothing
            }
            DatagramKind::Stun => {
                if !self.discovery.handle_response(now, from, datagram) {
                    self.counters.drop(DropReason::Unhandled);
                }
                Inbound::Nothing
            }
        }
    }

    /// Time passed: the next `poll_transmit` calls run every session's timers once.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.note_time(now);
        // A new second for the handshake limit (it keeps its own clock, as `Tunn` does).
        self.handshake_gate.reset_count();
        if self.discovery.poll_timeout().is_some_and(|t| t <= now) {
            self.discovery.handle_timeout(now);
        }
        for r in self.relays.iter_mut() {
            r.handle_timeout(now);
        }
        let mut relayed_traffic = false;
        for id in 0..self.peers.len() {
            let Some(peer) = self.peers[id].as_mut() else {
                continue;
            };
            relayed_traffic |= peer.config.relay
                && peer.paths.best_path().is_none()
                && peer
                    .last_authenticated
                    .is_some_and(|t| now.saturating_duration_since(t) < RELAYED_TRAFFIC_RECENT);
            if peer.paths.poll_timeout().is_some_and(|t| t <= now) {
                peer.paths.handle_timeout(now);
                let suspect = peer.paths.take_suspicion();
                self.disco_dirty.push_back(id);
                self.apply_best_path(id);
                if suspect {
                    self.recheck_own_mapping(now);
                }
            }
        }
        self.relays.set_active(now, relayed_traffic);
        self.pump_birthday(now);
        if self.next_tick.is_some_and(|t| now < t) {
            return;
        }
        self.next_tick = Some(now + TIMER_TICK);
        self.timer_cursor = 0;
    }

    /// When the shell should call [`Self::handle_timeout`] next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.peers()
            .filter_map(|p| p.paths.poll_timeout())
            .chain(self.next_tick)
            .chain(self.discovery.poll_timeout())
            .chain(self.relays.poll_timeout())
            .chain(self.birthday_timeout())
            .min()
    }

    fn next_nonce(&mut self) -> [u8; disco::NONCE_LEN] {
        let mut unique = [0u8; 16];
        unique[..8].copy_from_slice(&self.nonce_prefix[8..]);
        unique[8..].copy_from_slice(&self.nonce_counter.to_le_bytes());
        self.nonce_counter += 1;
        disco::nonce_at(self.clock.now_ms(), unique)
    }

    fn note_time(&mut self, now: Instant) {
        self.clock.note(now);
    }

    /// The wall clock (ms since 1970) at `now`: disco messages carry it, so that peers refuse
    /// replayed ones. Without it a node stamps the time since its process started.
    pub fn set_wall_clock(&mut self, now: Instant, unix_ms: u64) {
        self.clock.set_wall_clock(now, unix_ms);
    }

    /// Seals `msg` for peer `id` into `out` and addresses it along `route`; `None` if it does
    /// not fit or disco is off.
    fn seal_disco(
        &mut self,
        id: PeerId,
        route: Route,
        msg: DiscoMsg,
        out: &mut [u8],
    ) -> Option<Transmit> {
        let nonce = self.next_nonce();
        let peer = self.peers[id].as_ref()?;
        let key = peer.disco.as_ref()?;
        key.seal(&msg, nonce, &mut self.disco_buf);
        let len = self.disco_buf.len();
        out.get_mut(..len)?.copy_from_slice(&self.disco_buf);
        wrap(route, &peer.public_key(), out, len)
    }

    /// A WireGuard message of `len` bytes at the start of `out` for peer `id`, addressed along
    /// its current route.
    fn address_to(&mut self, id: PeerId, out: &mut [u8], len: usize) -> Option<Transmit> {
        let peer = self.peers[id].as_ref()?;
        let route = route_of(peer, &self.relays)?;
        wrap(route, &peer.public_key(), out, len)
    }

    /// The next datagram to send that no input returned directly. `out` as for
    /// [`Self::handle_tun_packet`] with the largest packet the TUN device can produce.
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> Option<Transmit> {
        if !self.up {
            return None;
        }
        while let Some((id, route, ping)) = self.user_ping_out.pop_front() {
            if let Some(t) = self.seal_disco(id, route, ping, out) {
                return Some(t);
            }
        }
        if let Some((dst, len)) = self.relays.poll_transmit(out) {
            return Some(Transmit { dst, len });
        }
        while let Some(&id) = self.flush.front() {
            let Some(peer) = self.peers[id].as_mut() else {
                self.flush.pop_front();
                continue;
            };
            match peer.tunn.decapsulate(None, &[], out) {
                TunnResult::WriteToNetwork(p) => {
                    let len = p.len();
                    if let Some(t) = self.address_to(id, out, len) {
                        return Some(t);
                    }
                }
                _ => {
                    self.flush.pop_front();
                }
            }
        }
        if let Some(t) = self.discovery.poll_transmit(out) {
            return Some(t);
        }
        while let Some(id) = self.handshake_now.pop_front() {
            let Some(peer) = self.peers[id].as_mut() else {
                continue;
            };
            if route_of(peer, &self.relays).is_none() {
                continue;
            }
            if let TunnResult::WriteToNetwork(p) = peer.tunn.format_handshake_initiation(out, true)
            {
                let len = p.len();
                if let Some(t) = self.address_to(id, out, len) {
                    return Some(t);
                }
            }
        }
        while let Some((id, packet)) = self.fanout.pop_copy() {
            let Some(peer) = self.peers[id].as_mut() else {
                continue;
            };
            if let TunnResult::WriteToNetwork(p) = peer.tunn.encapsulate(&packet, out) {
                let len = p.len();
                if let Some(t) = self.address_to(id, out, len) {
                    return Some(t);
                }
            }
        }
        while let Some((id, route, pong)) = self.pongs.pop_front() {
            if let Some(t) = self.seal_disco(id, route, pong, out) {
                return Some(t);
            }
        }
        while let Some(&id) = self.disco_dirty.front() {
            let next = self.peers[id]
                .as_mut()
                .and_then(|p| p.paths.poll_transmit());
            match next {
                Some((to, msg)) => {
                    if let Some(t) = self.seal_disco(id, Route::Direct(to), msg, out) {
                        return Some(t);
                    }
                }
                None => {
                    self.disco_dirty.pop_front();
                }
            }
        }
        if let Some(t) = self.poll_easy_probe(out) {
            return Some(t);
        }
        while let Some(id) = self.announce.pop_front() {
            let Some(peer) = self.peers[id].as_mut() else {
                continue;
            };
            // Only peers we can reach: a keepalive to nowhere would start a pointless handshake.
            if route_of(peer, &self.relays).is_none() {
                continue;
            }
            if let TunnResult::WriteToNetwork(p) = peer.tunn.encapsulate(&[], out) {
                let len = p.len();
                if let Some(t) = self.address_to(id, out, len) {
                    return Some(t);
                }
            }
        }
        while self.timer_cursor < self.peers.len() {
            let id = self.timer_cursor;
            self.timer_cursor += 1;
            let Some(peer) = self.peers[id].as_mut() else {
                continue;
            };
            if let TunnResult::WriteToNetwork(p) = peer.tunn.update_timers(out) {
                let len = p.len();
                match self.address_to(id, out, len) {
                    Some(t) => return Some(t),
                    None => self.counters.drop(DropReason::NoEndpoint),
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests;
