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
use warren_proto::api::{PathKind, PeerStatus};
use warren_proto::control::msg::NatKind;
use warren_proto::datagram::{classify, DatagramKind};
use warren_proto::disco::{self, DiscoKey, DiscoMsg};
use warren_proto::key::NodeKey;
use warren_proto::relay::{self as relay_frame, RelayFrame, RelayToken, SEND_HEADER_LEN};

mod birthday;
pub mod capture;
pub mod disco_freshness;
pub mod discovery_ports;
pub mod fanout;
mod peer_relay;
mod subnets;
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

/// Why a person's ping could not be sent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PingError {
    #[error("the tunnel is down (`warren up` turns it on)")]
    Down,
    #[error("no such peer")]
    UnknownPeer,
    #[error("no path to this peer yet (is it online?)")]
    NoPath,
    #[error("path messages are off for this peer's key")]
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

    /// The shell's port-mapping client got (or lost, `None`) a mapping on our router.
    pub fn set_port_mapping(&mut self, external: Option<SocketAddr>) {
        self.port_mapping = external;
    }

    pub fn port_mapping(&self) -> Option<SocketAddr> {
        self.port_mapping
    }

    /// Uses (or, with `None`, stops using) the coordinator's relay at `server` with `token`
    /// as the only relay (a node that follows one coordinator).
    pub fn set_relay(&mut self, now: Instant, relay: Option<(SocketAddr, RelayToken)>) {
        self.relays = Relays::default();
        self.relays.set(now, 0, relay);
    }

    /// The ticket a standalone relay wants in our pings (see `warren_proto::relay_ticket`).
    pub fn set_relay_ticket(&mut self, now: Instant, ticket: Option<Vec<u8>>) {
        self.relays.set_ticket(now, 0, ticket);
    }

    /// Uses (or, with `None`, stops using) coordinator `id`'s relay, next to the others.
    pub fn set_relay_of(
        &mut self,
        now: Instant,
        id: RelayId,
        relay: Option<(SocketAddr, RelayToken)>,
    ) {
        self.relays.set(now, id, relay);
    }

    pub fn set_relay_ticket_of(&mut self, now: Instant, id: RelayId, ticket: Option<Vec<u8>>) {
        self.relays.set_ticket(now, id, ticket);
    }

    /// The relays that reach peer `key` (those of the coordinators it came from).
    pub fn set_peer_relays(&mut self, key: &NodeKey, relays: Vec<RelayId>) {
        if let Some(id) = self.peer_id(key) {
            if let Some(p) = self.peers[id].as_mut() {
                p.relays = relays;
            }
        }
    }

    /// This host's overlay IPv4 address (discovery packets copied from the LAN come from it).
    pub fn set_own_v4(&mut self, ip: std::net::Ipv4Addr) {
        self.own_v4 = Some(ip);
    }

    /// The directed broadcast addresses of this host's other interfaces: broadcasts to them
    /// that the kernel copies to the TUN are carried like 255.255.255.255.
    pub fn set_lan_broadcasts(&mut self, list: Vec<std::net::Ipv4Addr>) {
        self.lan_broadcasts = list;
    }

    /// Discovery counters of UDP ports `first..=last`.
    pub fn discovery_counters(&self, first: u16, last: u16) -> discovery_ports::PortCounters {
        self.game_ports.range(first, last)
    }

    /// Whether peer `key` gets this host's broadcasts and multicast (and this host its): off
    /// for a peer that shares only networks where game discovery is switched off.
    pub fn set_peer_discovery(&mut self, key: &NodeKey, on: bool) {
        if let Some(id) = self.peer_id(key) {
            if let Some(p) = self.peers[id].as_mut() {
                p.discovery = on;
            }
        }
    }

    /// What broadcast and multicast replication did.
    pub fn fanout_counters(&self) -> FanoutCounters {
        self.fanout.counters
    }

    /// The relay in use, its last RTT, and whether it answers.
    pub fn relay_status(&self, now: Instant) -> Option<(SocketAddr, Option<Duration>, bool)> {
        self.relays
            .first()
            .map(|r| (r.server(), r.rtt(), r.is_alive(now)))
    }

    /// `warren down` / `warren up`: while down, every packet in either direction is dropped
    /// (counted as `tunnel_down`) and nothing is sent; sessions resume by handshake when up.
    pub fn set_up(&mut self, up: bool) {
        self.up = up;
    }

    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Sends one authenticated ping to `key` on its current path; the answer is collected with
    /// [`Self::take_ping_answer`].
    pub fn ping(&mut self, now: Instant, key: &NodeKey) -> Result<disco::TxId, PingError> {
        self.note_time(now);
        let (id, to, tx_id) = self.disco_to(key)?;
        self.user_pings.sent(now, tx_id);
        self.user_ping_out
            .push_back((id, to, DiscoMsg::Ping { tx_id }));
        Ok(tx_id)
    }

    /// Where a person's disco message to `key` goes (its current path) and a fresh tx id.
    fn disco_to(&mut self, key: &NodeKey) -> Result<(PeerId, Route, disco::TxId), PingError> {
        if !self.up {
            return Err(PingError::Down);
        }
        let id = self.peer_id(key).ok_or(PingError::UnknownPeer)?;
        let peer = self.peers[id].as_ref().ok_or(PingError::UnknownPeer)?;
        if peer.disco.is_none() {
            return Err(PingError::NoDisco);
        }
        let to = route_of(peer, &self.relays).ok_or(PingError::NoPath)?;
        let nonce = self.next_nonce();
        let mut tx_id = [0u8; 12];
        tx_id.copy_from_slice(&nonce[nonce.len() - 12..]);
        Ok((id, to, tx_id))
    }

    /// The pong to a [`Self::ping`], once it came, with the kind of path it came over.
    pub fn take_ping_answer(
        &mut self,
        key: &NodeKey,
        tx_id: &disco::TxId,
    ) -> Option<(PingAnswer, PathKind)> {
        let answer = self.user_pings.take(tx_id)?;
        let relayed = self.relays.is_server(answer.from);
        let kind = self
            .peer_id(key)
            .and_then(|id| self.peers[id].as_ref())
            .and_then(|p| p.paths.paths().find(|i| i.addr == answer.from))
            .map(|i| i.stats.kind.path_kind())
            .unwrap_or(if relayed {
                PathKind::Relay
            } else {
                PathKind::Direct
            });
        Some((answer, kind))
    }

    /// The caller stopped waiting for this ping.
    pub fn cancel_ping(&mut self, tx_id: &disco::TxId) {
        self.user_pings.cancel(tx_id);
    }

    /// Asks `key`'s daemon what listens on its `port`; the answer is collected with
    /// [`Self::take_port_answer`].
    pub fn ask_port(
        &mut self,
        now: Instant,
        key: &NodeKey,
        port: u16,
        proto: PortProto,
    ) -> Result<disco::TxId, PingError> {
        self.note_time(now);
        let (id, to, tx_id) = self.disco_to(key)?;
        self.port_checks.asked(now, tx_id);
        self.user_ping_out
            .push_back((id, to, DiscoMsg::PortQuery { tx_id, port, proto }));
        Ok(tx_id)
    }

    pub fn take_port_answer(&mut self, tx_id: &disco::TxId) -> Option<Listening> {
        self.port_checks.take_answer(tx_id)
    }

    pub fn cancel_port_question(&mut self, tx_id: &disco::TxId) {
        self.port_checks.cancel(tx_id);
    }

    /// A peer's question about one of our ports, for the shell to look up and answer.
    pub fn take_port_question(&mut self) -> Option<PortQuestion<Route>> {
        self.port_checks.take_question()
    }

    /// Sends the answer to `q` back the way the question came.
    pub fn answer_port_question(&mut self, q: PortQuestion<Route>, listening: Listening) {
        let answer = DiscoMsg::PortAnswer {
            tx_id: q.tx_id,
            listening,
        };
        self.pongs.push_back((q.peer, q.route, answer));
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
        let mut tx_salt = [0u8; 8];
        tx_salt[..4].copy_from_slice(&self.nonce_prefix[..4]);
        tx_salt[4..].copy_from_slice(&(id as u32).to_le_bytes());
        let peer = Peer {
            endpoint: config.endpoint,
            config,
            tunn,
            last_authenticated: None,
            paths: PeerPaths::new(PathConfig::default(), tx_salt),
            disco: DiscoKey::derive(&self.secret_bytes, self.public_key(), key).ok(),
            fresh: Default::default(),
            applied_path: None,
            nat: NatKind::Unknown,
            reflexive: None,
            relays: Vec::new(),
            networks: Vec::new(),
            subnets: Vec::new(),
            discovery: true,
        };
        if id == self.peers.len() {
            self.peers.push(Some(peer));
        } else {
            self.peers[id] = Some(peer);
        }
        self.serve_peer_added(key);
        Ok(id)
    }

    /// Forgets a peer: its routes, its session, anything queued for it.
    pub fn remove_peer(&mut self, key: &NodeKey) -> bool {
        let Some(id) = self.by_key.remove(&key.0) else {
            return false;
        };
        self.routes.remove_owner(id);
        self.peers[id] = None;
        self.release_kept(id);
        self.end_birthday_with(id);
        self.forget_tcp_dial(id);
        self.serve_peer_removed(key);
        self.flush.retain(|p| *p != id);
        self.announce.retain(|p| *p != id);
        self.disco_dirty.retain(|p| *p != id);
        self.handshake_now.retain(|p| *p != id);
        self.pongs.retain(|(p, _, _)| *p != id);
        true
    }

    /// The coordinator introduced `key` (or asks to probe again) with these candidates; the
    /// peer got ours at the same moment, so both sides' pings open their NATs for each other.
    pub fn handle_call_me_maybe(
        &mut self,
        now: Instant,
        key: &NodeKey,
        lan: &[SocketAddr],
        reflexive: Option<SocketAddr>,
        mapped: Option<SocketAddr>,
    ) -> bool {
        self.note_time(now);
        let Some(id) = self.peer_id(key) else {
            return false;
        };
        // A host with a public address lists it among its interface addresses too; the same
        // address as its reflexive one is not a LAN path.
        // An address inside a LAN routed through a peer would be reached through the overlay
        // itself (WireGuard inside WireGuard): not a direct path.
        let mut candidates: Vec<Candidate> = lan
            .iter()
            .filter(|a| Some(**a) != reflexive && Some(**a) != mapped)
            .filter(|a| !self.in_a_subnet_route(a.ip()))
            .map(|a| Candidate::new(*a, CandidateKind::Lan))
            .collect();
        candidates.extend(mapped.map(|a| Candidate::new(a, CandidateKind::Mapped)));
        candidates.extend(
            reflexive
                .filter(|a| Some(*a) != mapped)
                .map(|a| Candidate::new(a, CandidateKind::Reflexive)),
        );
        if let Some(peer) = self.peers[id].as_mut() {
            peer.paths.handle_call_me_maybe(now, &candidates);
            peer.reflexive = reflexive;
            self.disco_dirty.push_back(id);
        }
        self.maybe_start_birthday(now, id);
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

    /// A peer chose another name (`warren name`): its session and paths stay as they are.
    pub fn rename_peer(&mut self, key: &NodeKey, name: &str) {
        if let Some(p) = self.peer_id(key).and_then(|id| self.peers[id].as_mut()) {
            if p.config.name != name {
                p.config.name = name.to_string();
            }
        }
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
    pub fn handle_tun_packet(
        &mut self,
        now: Instant,
        packet: &[u8],
        out: &mut [u8],
    ) -> Option<Transmit> {
        self.note_time(now);
        if !self.up {
            self.counters.drop(DropReason::TunnelDown);
            return None;
        }
        let Some(dst) = ip::destination(packet) else {
            self.counters.drop(DropReason::Malformed);
            return None;
        };
        if self.captured(now, packet) {
            return None;
        }
        let Some(id) = self.routes.lookup(dst) else {
            if fanout::is_group(dst) {
                self.fan_out(now, packet);
            } else {
                self.counters.drop(DropReason::NoRoute);
            }
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
        let Some(route) = route_of(peer, &self.relays) else {
            self.counters.drop(DropReason::NoEndpoint);
            return None;
        };
        // A relayed packet is encrypted behind room for the relay header: no copy on this path.
        let (skip, dst) = match route {
            Route::Direct(dst) => (0, dst),
            Route::Relay(server) => (SEND_HEADER_LEN, server),
        };
        if out.len() < packet.len() + WG_OVERHEAD + skip {
            self.counters.drop(DropReason::Oversized);
            return None;
        }
        let key = peer.public_key();
        match peer.tunn.encapsulate(packet, &mut out[skip..]) {
            TunnResult::WriteToNetwork(d) => {
                let len = d.len() + skip;
                if peer.applied_path == Some(dst) {
                    // The path now owes an answer; silence for 3 s drops it.
                    peer.paths.handle_data_sent(now);
                }
                if let Route::Relay(_) = route {
                    relay_frame::write_send_header(out, &key);
                }
                Some(Transmit { dst, len })
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

    /// Starts asking two STUN servers (the coordinator's two ports) where we are seen from.
    pub fn start_discovery(&mut self, now: Instant, servers: [SocketAddr; 2]) {
        self.note_time(now);
        self.discovery.start(now, servers);
    }

    /// A new reflexive address or NAT kind, once per change: tell the coordinator.
    pub fn poll_discovery_event(&mut self) -> Option<Discovery> {
        self.discovery.poll_event()
    }

    /// What STUN found, unless the servers answered over loopback (this PC hosts the
    /// coordinator): that says nothing of how the internet sees this host, and a peer told
    /// "127.0.0.1" would only reach itself.
    pub fn discovery(&self) -> Option<Discovery> {
        self.discovery
            .result()
            .filter(|d| !d.reflexive.is_some_and(|r| r.ip().is_loopback()))
    }

    /// A discovery run is waiting for answers.
    pub fn discovery_running(&self) -> bool {
        self.discovery.is_running()
    }

    /// How long a discovery run takes at most.
    pub fn discovery_bound(&self) -> Duration {
        self.discovery.config().run_bound()
    }

    /// A frame from the relay: a pong to our registration ping, or a peer's WireGuard or disco
    /// message it carried. Relayed messages never move a peer's direct endpoint.
    fn handle_relay(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        out: &mut [u8],
    ) -> Inbound {
        let to_a_relay = matches!(
            relay_frame::parse(datagram),
            Ok(RelayFrame::Ping { .. }
                | RelayFrame::TicketPing { .. }
                | RelayFrame::Register { .. }
                | RelayFrame::Send { .. })
        );
        if to_a_relay {
            return self.serve_relay_frame(now, from, datagram, out);
        }
        if !self.relays.is_server(from) {
            self.counters.drop(DropReason::Unhandled);
            return Inbound::Nothing;
        }
        match relay_frame::parse(datagram) {
            Ok(RelayFrame::Pong { tx }) => {
                if let Some(r) = self.relays.by_server_mut(from) {
                    r.handle_pong(now, from, tx);
                }
                Inbound::Nothing
            }
            Ok(RelayFrame::Challenge { tx, cookie }) => {
                if let Some(r) = self.relays.by_server_mut(from) {
                    r.handle_challenge(from, tx, cookie);
                }
                Inbound::Nothing
            }
            Ok(RelayFrame::Deliver { payload }) => match classify(payload) {
                DatagramKind::WireGuard(_) => self.handle_wireguard(now, from, true, payload, out),
                DatagramKind::Disco => {
                    self.handle_disco(now, from, true, payload);
                    Inbound::Nothing
                }
                _ => {
                    self.counters.drop(DropReason::Malformed);
                    Inbound::Nothing
                }
            },
            Ok(_) | Err(_) => {
                self.counters.drop(DropReason::Malformed);
                Inbound::Nothing
            }
        }
    }

    fn handle_disco(&mut self, now: Instant, from: SocketAddr, relayed: bool, datagram: &[u8]) {
        let id = match disco::sender(datagram) {
            Ok(sender) => match self.peer_id(&sender) {
                Some(id) => id,
                None => {
                    self.counters.drop(DropReason::UnknownPeer);
                    return;
                }
            },
            Err(_) => {
                self.counters.drop(DropReason::Malformed);
                return;
            }
        };
        let Some(peer) = self.peers[id].as_mut() else {
            return;
        };
        let Some(key) = &peer.disco else {
            self.counters.drop(DropReason::DecryptFailed);
            return;
        };
        let opened = key.open(datagram);
        if opened.is_ok() {
            let fresh = disco::sent_at(datagram)
                .is_some_and(|(sent, nonce)| peer.fresh.accept(sent, nonce));
            if !fresh {
                // Sealed by the peer, but seen before or too old: a replay.
                self.counters.drop(DropReason::StaleDisco);
                return;
            }
        }
        match opened {
            Ok(DiscoMsg::Ping { tx_id }) if relayed => {
                // A person's ping over the relay: answer the same way, prove no direct path.
                let observed = from;
                self.pongs
                    .push_back((id, Route::Relay(from), DiscoMsg::Pong { tx_id, observed }));
            }
            Ok(DiscoMsg::Ping { tx_id }) => {
                let pong = peer.paths.handle_ping(now, from, tx_id);
                self.pongs.push_back((id, Route::Direct(from), pong));
            }
            Ok(DiscoMsg::Pong { tx_id, .. }) => {
                if self.user_pings.pong(now, from, &tx_id) || relayed {
                    return;
                }
                if peer.paths.handle_pong(now, from, tx_id) {
                    // A proven path ends a birthday run toward the peer.
                    self.pump_birthday(now);
                } else {
                    self.birthday_pong(now, id, from, &tx_id);
                }
                self.apply_best_path(id);
            }
            Ok(DiscoMsg::PortQuery { tx_id, port, proto }) => {
                let route = if relayed {
                    Route::Relay(from)
                } else {
                    Route::Direct(from)
                };
                self.port_checks.question(
                    now,
                    PortQuestion {
                        port,
                        proto,
                        peer: id,
                        route,
                        tx_id,
                    },
                );
                return;
            }
            Ok(DiscoMsg::PortAnswer { tx_id, listening }) => {
                self.port_checks.answered(&tx_id, listening);
                return;
            }
            Ok(DiscoMsg::Birthday { .. }) => {
                self.birthday_requested(now, id);
                return;
            }
            Ok(DiscoMsg::TcpDial { .. }) => {
                self.tcp_dial_requested(now, id);
                return;
            }
            Ok(DiscoMsg::Wake { mac, .. }) => return self.wake_requested(now, id, mac),
            Err(_) => {
                self.counters.drop(DropReason::DecryptFailed);
                return;
            }
        }
        self.disco_dirty.push_back(id);
    }

    /// Points WireGuard at the path machine's choice when that choice changed.
    fn apply_best_path(&mut self, id: PeerId) {
        let Some(peer) = self.peers[id].as_mut() else {
            return;
        };
        let best = peer.paths.best_path().map(|b| b.addr);
        if best != peer.applied_path {
            if let Some(addr) = best {
                peer.endpoint = Some(addr);
                if peer.tunn.time_since_last_handshake().is_none() {
                    self.handshake_now.push_back(id);
                }
            }
            peer.applied_path = best;
        }
    }

    /// `relayed`: it came through the relay at `from`, so it proves nothing about a direct path
    /// and replies go back through the relay.
    fn handle_wireguard(
        &mut self,
        now: Instant,
        from: SocketAddr,
        relayed: bool,
        datagram: &[u8],
        out: &mut [u8],
    ) -> Inbound {
        if datagram.len() > out.len() || out.len() < MIN_OUT {
            self.counters.drop(DropReason::Oversized);
            return Inbound::Nothing;
        }
        let packet = match self
            .handshake_gate
            .verify_packet(Some(from.ip()), datagram, out)
        {
            Ok(p) => p,
            Err(TunnResult::WriteToNetwork(cookie)) => {
                self.counters.drop(DropReason::UnderLoad);
                // Through the relay the sender's address is the relay's: nothing to prove.
                if relayed {
                    return Inbound::Nothing;
                }
                let len = cookie.len();
                return Inbound::Transmit(Transmit { dst: from, len });
            }
            Err(TunnResult::Err(WireGuardError::InvalidMac)) => {
                self.counters.drop(DropReason::DecryptFailed);
                return Inbound::Nothing;
            }
            Err(_) => {
                self.counters.drop(DropReason::Malformed);
                return Inbound::Nothing;
            }
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
                let (len, group) = (p.len(), ip::destination(p).is_some_and(fanout::is_group));
                let inbound = self.accept_inner(now, from, relayed, id, IpAddr::V4(src), len);
                self.count_group(id, group, inbound, out)
            }
            TunnResult::WriteToTunnelV6(p, src) => {
                debug_assert_eq!(p.as_ptr(), out_start);
                let (len, group) = (p.len(), ip::destination(p).is_some_and(fanout::is_group));
                let inbound = self.accept_inner(now, from, relayed, id, IpAddr::V6(src), len);
                self.count_group(id, group, inbound, out)
            }
            TunnResult::WriteToNetwork(p) => {
                // A handshake response or the keepalive that completes our handshake: the
                // message authenticated, so the peer is where it came from.
                debug_assert_eq!(p.as_ptr(), out_start);
                let len = p.len();
                self.authenticated(now, from, relayed, id);
                if is_handshake {
                    self.flush.push_back(id);
                }
                let route = if relayed {
                    Route::Relay(from)
                } else {
                    Route::Direct(from)
                };
                let key = self.peers[id].as_ref().map(|p| p.public_key());
                match key.and_then(|k| wrap(route, &k, out, len)) {
                    Some(t) => Inbound::Transmit(t),
                    None => {
                        self.counters.drop(DropReason::Oversized);
                        Inbound::Nothing
                    }
                }
            }
            TunnResult::Done => {
                if is_data {
                    // A keepalive: authenticated data with nothing inside.
                    self.authenticated(now, from, relayed, id);
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
        relayed: bool,
        id: PeerId,
        inner_src: IpAddr,
        len: usize,
    ) -> Inbound {
        // The packet is authentic either way, so the peer has roamed even if we refuse it.
        self.authenticated(now, from, relayed, id);
        if self.routes.lookup(inner_src) != Some(id) {
            self.counters.drop(DropReason::SourceNotAllowed);
            return Inbound::Nothing;
        }
        Inbound::ToTun { len }
    }

    /// Counts a broadcast/multicast packet from a peer that goes to the TUN; refuses it from a
    /// peer this host does not share game discovery with.
    fn count_group(&mut self, id: PeerId, group: bool, inbound: Inbound, out: &[u8]) -> Inbound {
        let Inbound::ToTun { len } = inbound else {
            return inbound;
        };
        if !group {
            return inbound;
        }
        if self.peers[id].as_ref().is_some_and(|p| !p.discovery) {
            self.counters.drop(DropReason::Multicast);
            return Inbound::Nothing;
        }
        self.fanout.counters.received += 1;
        if let Some(port) = discovery_ports::udp_port(&out[..len]) {
            self.game_ports.received(port);
        }
        inbound
    }

    /// A discovery packet the kernel copied from the LAN (see [`capture`]): rewritten to come
    /// from the overlay address and fanned out. `false` when the packet is not one.
    fn captured(&mut self, now: Instant, packet: &[u8]) -> bool {
        let outside = packet.first().is_some_and(|b| b >> 4 == 4)
            && packet.len() >= 20
            && !warren_proto::overlay::OVERLAY_V4.contains(&std::net::Ipv4Addr::new(
                packet[12], packet[13], packet[14], packet[15],
            ));
        if !outside {
            return false;
        }
        let Some(own) = self.own_v4 else {
            return false;
        };
        let mut buf = std::mem::take(&mut self.capture_buf);
        buf.clear();
        buf.extend_from_slice(packet);
        let verdict = capture::rewrite(&mut buf, own, &self.lan_broadcasts);
        match verdict {
            capture::Capture::Rewritten { .. } => self.fan_out(now, &buf),
            capture::Capture::Refused => self.counters.drop(DropReason::Multicast),
            capture::Capture::NotCaptured => {}
        }
        self.capture_buf = buf;
        verdict != capture::Capture::NotCaptured
    }

    /// Queues copies of a group packet read from the TUN for every peer that takes them; the
    /// copies go out from `poll_transmit`, one per peer.
    fn fan_out(&mut self, now: Instant, packet: &[u8]) {
        let peers = (0..self.peers.len()).filter(|&id| {
            self.peers[id]
                .as_ref()
                .is_some_and(|p| p.discovery && route_of(p, &self.relays).is_some())
        });
        let limited = self.fanout.counters.rate_limited;
        let queued = self.fanout.offer(now, packet, peers);
        let dropped = self.fanout.counters.rate_limited - limited;
        if let Some(port) = discovery_ports::udp_port(packet) {
            if queued {
                self.game_ports.sent(port);
            }
            if dropped > 0 {
                self.game_ports.dropped(port, dropped);
            }
        }
        if !queued {
            self.counters.drop(DropReason::Multicast);
        }
    }

    fn authenticated(&mut self, now: Instant, from: SocketAddr, relayed: bool, id: PeerId) {
        if relayed {
            if let Some(peer) = self.peers[id].as_mut() {
                peer.last_authenticated = Some(now);
            }
            return;
        }
        if let Some(peer) = self.peers[id].as_mut() {
            // WireGuard roaming: the source of an authenticated packet is where the peer is.
            peer.endpoint = Some(from);
            peer.last_authenticated = Some(now);
            peer.paths.handle_authenticated(now, from);
            if peer.paths.poll_timeout().is_some_and(|t| t <= now) {
                self.disco_dirty.push_back(id);
            }
            // The peer may have roamed onto this address: use it (and ping it) now.
            if peer.paths.best_path().map(|b| b.addr) != peer.applied_path {
                self.disco_dirty.push_back(id);
                self.apply_best_path(id);
            }
        }
    }

    /// This host's own addresses changed (new network, DHCP renewal, roaming): peers only learn
    /// our new endpoint from an authenticated packet, so the next `poll_transmit` calls send each
    /// peer a keepalive (or start a handshake where there is no session) instead of waiting for
    /// traffic or the persistent keepalive.
    pub fn handle_network_change(&mut self, now: Instant) {
        self.note_time(now);
        self.discovery.handle_network_change(now);
        for r in self.relays.iter_mut() {
            r.handle_network_change(now);
        }
        self.announce.clear();
        self.announce
            .extend((0..self.peers.len()).filter(|id| self.peers[*id].is_some()));
    }

    /// A peer's chosen path stopped answering: perhaps our own NAT mapping changed (rebinding),
    /// and the peer's packets go to a port of ours that is gone. A STUN run finds our new
    /// reflexive address (the shell tells the coordinator, which introduces us to our peers
    /// again) and a ping registers our new port with the relays; at most once per
    /// [`RECHECK_INTERVAL`], since many paths may fall silent together.
    fn recheck_own_mapping(&mut self, now: Instant) {
        if self
            .last_recheck
            .is_some_and(|t| now.saturating_duration_since(t) < RECHECK_INTERVAL)
        {
            return;
        }
        self.last_recheck = Some(now);
        self.mapping_rechecks += 1;
        self.discovery.handle_network_change(now);
        for r in self.relays.iter_mut() {
            r.handle_network_change(now);
        }
    }

    /// How often silent paths made this node check its own NAT mapping.
    pub fn mapping_rechecks(&self) -> u64 {
        self.mapping_rechecks
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

    /// Status of every peer as the local API reports it.
    pub fn peer_status(&self, now: Instant) -> Vec<PeerStatus> {
        self.peers()
            .map(|p| {
                let (since, tx, rx, handshake_rtt) = p.session_stats();
                let online = p.is_online(now);
                let best = p.paths.best_path();
                let relay = match route_of(p, &self.relays) {
                    Some(Route::Relay(server)) => Some(server),
                    _ => None,
                };
                let path = match best {
                    Some(b) => b.kind.path_kind(),
                    None if relay.is_some() => PathKind::Relay,
                    None if online && p.endpoint.is_some() => PathKind::Direct,
                    None => PathKind::None,
                };
                let rtt = best.map(|b| b.rtt.as_millis() as u32).or(handshake_rtt);
                PeerStatus {
                    address_clash: false,
                    transport: None,
                    routes: vec![],
                    name: p.name().to_string(),
                    public_key: p.public_key(),
                    overlay_ip: p.overlay_ip(),
                    allowed_ips: p.allowed_ips().iter().map(|n| n.to_string()).collect(),
                    online,
                    path,
                    endpoint: p.endpoint,
                    rtt_ms: rtt,
                    last_handshake_secs: since.map(|d| d.as_secs()),
                    rx_bytes: rx,
                    tx_bytes: tx,
                    networks: Vec::new(),
                    relay,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
