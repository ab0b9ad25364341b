//! A deterministic two-host network for [`PeerPaths`] tests: its own clock, latency per
//! interface, loss, and NATs that only let a packet in from an address the host has sent to
//! (port-restricted cone, as plain masquerade does). Messages are really sealed and opened with
//! `warren_proto::disco`, and "data" packets stand in for WireGuard traffic.
//!
//! A NAT may also be symmetric with fully random ports (nftables `masquerade fully-random`):
//! every (local socket, destination) gets its own random public port, and only that
//! destination gets in through it. A host may then run a [`Birthday`] and open side sockets,
//! glued to its [`PeerPaths`] the way `Node` does it.

use super::birthday::{Birthday, BirthdayConfig, BirthdayEvent, Role};
use super::{BestPath, CandidateKind, PeerPaths};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use warren_proto::datagram::{classify, DatagramKind};
use warren_proto::disco::{self, DiscoKey, DiscoMsg};

/// What stands in for a WireGuard data packet (its type word is 4).
const DATA: &[u8] = b"\x04\0\0\0data";

pub fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The NAT in front of one interface: one mapping (the public address), kept for every
/// destination (endpoint-independent mapping, so the reflexive address is the same for all).
#[derive(Debug)]
pub struct Nat {
    pub public: SocketAddr,
    /// Port-restricted: an inbound packet passes only from an address we sent to before.
    /// Otherwise full cone: everything passes.
    pub port_restricted: bool,
    pub permitted: HashSet<SocketAddr>,
    /// Inbound packets it refused.
    pub refused: u32,
    /// Symmetric, fully random: the mappings, else one mapping (`public`) for everything.
    pub symmetric: Option<Mappings>,
}

/// A local socket of a host: the main one (`None`) or side socket `k`.
pub type Sock = Option<u16>;

/// A symmetric NAT's mappings: (socket, destination) ↔ public port.
#[derive(Debug, Default)]
pub struct Mappings {
    pub by_flow: HashMap<(Sock, SocketAddr), u16>,
    pub by_port: HashMap<u16, (Sock, SocketAddr)>,
}

impl Nat {
    pub fn port_restricted(public: &str) -> Self {
        Self {
            public: addr(public),
            port_restricted: true,
            permitted: HashSet::new(),
            refused: 0,
            symmetric: None,
        }
    }

    /// Symmetric with fully random ports; `public` is the address STUN saw (its port is what
    /// the coordinator passes on as the reflexive address).
    pub fn symmetric(public: &str) -> Self {
        Self {
            symmetric: Some(Mappings::default()),
            ..Self::port_restricted(public)
        }
    }
}

/// One network interface of a host.
#[derive(Debug)]
pub struct Iface {
    /// The host's own address on it.
    pub addr: SocketAddr,
    /// The LAN it sits on, if any; hosts on one LAN reach each other's `addr` directly.
    pub lan: Option<u8>,
    /// How it reaches the internet: through a NAT, or (no NAT, no LAN) with `addr` public.
    pub nat: Option<Nat>,
    /// One-way delay from this interface to the internet's core.
    pub latency: Duration,
    pub up: bool,
}

impl Iface {
    /// Behind a port-restricted NAT on LAN `lan`.
    pub fn natted(local: &str, lan: u8, public: &str, latency_ms: u64) -> Self {
        Self {
            addr: addr(local),
            lan: Some(lan),
            nat: Some(Nat::port_restricted(public)),
            latency: ms(latency_ms),
            up: true,
        }
    }

    /// Behind a symmetric NAT with fully random ports on LAN `lan`.
    pub fn symmetric(local: &str, lan: u8, public: &str, latency_ms: u64) -> Self {
        Self {
            nat: Some(Nat::symmetric(public)),
            ..Self::natted(local, lan, public, latency_ms)
        }
    }

    /// Whether the internet reaches this interface at `dst` (any port of a symmetric NAT).
    fn reached_at(&self, dst: SocketAddr) -> bool {
        match &self.nat {
            Some(n) if n.symmetric.is_some() => n.public.ip() == dst.ip(),
            _ => self.public_addr() == Some(dst),
        }
    }

    /// A public address, no NAT.
    pub fn public(a: &str, latency_ms: u64) -> Self {
        Self {
            addr: addr(a),
            lan: None,
            nat: None,
            latency: ms(latency_ms),
            up: true,
        }
    }

    /// Where the internet reaches this interface, if it does.
    fn public_addr(&self) -> Option<SocketAddr> {
        match (&self.nat, self.lan) {
            (Some(n), _) => Some(n.public),
            (None, None) => Some(self.addr),
            (None, Some(_)) => None,
        }
    }
}

pub struct Host {
    pub paths: PeerPaths,
    pub ifaces: Vec<Iface>,
    key: DiscoKey,
    nonce: u64,
    buf: Vec<u8>,
    /// Disco messages this host put on the wire: (pings, pongs).
    pub pings_out: u32,
    pub pongs_out: u32,
    pub data_out: u32,
    /// When `best_path` first became `Some`.
    pub first_path_at: Option<Instant>,
    pub birthday: Option<Birthday>,
    /// Side sockets open now, the most ever open at once, and the one kept for the peer's
    /// address after it won.
    pub side: HashSet<u16>,
    pub side_peak: usize,
    pub kept: Option<(u16, SocketAddr)>,
    /// Birthday pings put on the wire.
    pub birthday_out: u32,
    /// Packets that reached each socket (main: `None`).
    pub received: HashMap<Sock, u32>,
    /// Every change of `best_path`, in order.
    pub changes: Vec<(Instant, Option<BestPath>)>,
}

struct InFlight {
    at: Instant,
    to: usize,
    /// Arriving from the internet on this interface: its NAT filters at arrival time.
    wan_iface: Option<usize>,
    from: SocketAddr,
    dst: SocketAddr,
    bytes: Vec<u8>,
}

pub struct Sim {
    pub now: Instant,
    pub start: Instant,
    pub hosts: [Host; 2],
    /// Extra one-way delay of a delivery inside a LAN.
    pub lan_delay: Duration,
    pub lan_up: bool,
    /// Percentage of datagrams lost, decided by a seeded generator.
    pub loss_percent: u64,
    /// Both hosts send a data packet on their best path this often (and count it as sent).
    pub traffic: Option<Duration>,
    next_traffic: Option<Instant>,
    in_flight: Vec<InFlight>,
    rng: u64,
    /// Datagrams lost, unroutable, or refused by a NAT.
    pub lost: u32,
}

impl Sim {
    pub fn new(a: Vec<Iface>, b: Vec<Iface>) -> Self {
        let secrets = [[0xA1u8; 32], [0xB2u8; 32]];
        let keys = secrets.map(|s| disco::public_key(&s));
        let host = |i: usize, ifaces: Vec<Iface>| Host {
            paths: PeerPaths::new(Default::default(), [i as u8 + 1; 8]),
            ifaces,
            key: DiscoKey::derive(&secrets[i], keys[i], keys[1 - i]).unwrap(),
            nonce: 0,
            buf: Vec::with_capacity(disco::MAX_SEALED_LEN),
            pings_out: 0,
            pongs_out: 0,
            data_out: 0,
            first_path_at: None,
            changes: Vec::new(),
            birthday: None,
            side: HashSet::new(),
            side_peak: 0,
            kept: None,
            birthday_out: 0,
            received: HashMap::new(),
        };
        let start = Instant::now();
        Self {
            now: start,
            start,
            hosts: [host(0, a), host(1, b)],
            lan_delay: ms(1),
            lan_up: true,
            loss_percent: 0,
            traffic: None,
            next_traffic: None,
            in_flight: Vec::new(),
            rng: 0x5EED,
            lost: 0,
        }
    }

    pub fn best(&self, h: usize) -> Option<BestPath> {
        self.hosts[h].paths.best_path()
    }

    /// The coordinator's "call me maybe" to host `h`, listing the other's candidates.
    pub fn call_me_maybe(&mut self, h: usize, candidates: &[super::Candidate]) {
        let now = self.now;
        self.hosts[h].paths.handle_call_me_maybe(now, candidates);
        self.after_input(h);
    }

    /// Starts a birthday run on host `h` against the peer at `target` (the coordinator
    /// introduced the peer, and the NAT kinds gave this host `role`).
    pub fn start_birthday(&mut self, h: usize, role: Role, target: &str, seed: u64) {
        let b = Birthday::new(
            self.now,
            role,
            addr(target),
            BirthdayConfig::default(),
            seed,
            [0xB0 + h as u8; 8],
        );
        self.hosts[h].birthday = Some(b);
        self.after_input(h);
    }

    /// Host `h`'s NAT on interface `iface` loses its mapping and makes a new one at
    /// `public` (a router reboot, or an expired mapping): nothing is permitted in any more.
    pub fn rebind(&mut self, h: usize, iface: usize, public: &str) {
        let nat = self.hosts[h].ifaces[iface].nat.as_mut().expect("a NAT");
        nat.public = addr(public);
        nat.permitted.clear();
    }

    pub fn set_seed(&mut self, seed: u64) {
        self.rng = seed;
    }

    pub fn set_traffic(&mut self, every: Option<Duration>) {
        self.traffic = every;
        self.next_traffic = every.map(|_| self.now);
    }

    /// Runs the network until `until` (time since the start).
    pub fn run_until(&mut self, until: Duration) {
        let end = self.start + until;
        for _ in 0..1_000_000 {
            let next = [
                self.in_flight.iter().map(|p| p.at).min(),
                self.hosts[0].paths.poll_timeout(),
                self.hosts[1].paths.poll_timeout(),
                self.birthday_timeout(0),
                self.birthday_timeout(1),
                self.next_traffic,
            ]
            .into_iter()
            .flatten()
            .min();
            let Some(next) = next.filter(|&t| t <= end) else {
                self.now = self.now.max(end);
                return;
            };
            self.now = self.now.max(next);
            self.step();
        }
        panic!("simulation does not settle: a timer that never advances?");
    }

    fn step(&mut self) {
        let now = self.now;
        // Deliveries due, in arrival order (stable for equal times).
        self.in_flight.sort_by_key(|p| p.at);
        let due = self.in_flight.partition_point(|p| p.at <= now);
        for p in self.in_flight.drain(..due).collect::<Vec<_>>() {
            self.deliver(p);
        }
        for h in 0..2 {
            if self.hosts[h].paths.poll_timeout().is_some_and(|t| t <= now) {
                self.hosts[h].paths.handle_timeout(now);
                self.after_input(h);
            }
            if self.birthday_timeout(h).is_some_and(|t| t <= now) {
                if let Some(b) = self.hosts[h].birthday.as_mut() {
                    b.handle_timeout(now);
                }
                self.after_input(h);
            }
        }
        if let (Some(t), Some(every)) = (self.next_traffic, self.traffic) {
            if t <= now {
                self.next_traffic = Some(now + every);
                for h in 0..2 {
                    if let Some(best) = self.best(h) {
                        self.hosts[h].data_out += 1;
                        self.hosts[h].paths.handle_data_sent(now);
                        self.send(h, None, best.addr, DATA.to_vec());
                        self.after_input(h);
                    }
                }
            }
        }
    }

    fn deliver(&mut self, p: InFlight) {
        let now = self.now;
        let h = p.to;
        let mut sock = None;
        if let Some(i) = p.wan_iface {
            let iface = &mut self.hosts[h].ifaces[i];
            let refused = match &mut iface.nat {
                Some(nat) if nat.symmetric.is_some() => {
                    // Only the destination a mapping was made for gets in, to its socket.
                    let m = nat.symmetric.as_ref().unwrap();
                    match m.by_port.get(&p.dst.port()) {
                        Some(&(s, remote)) if remote == p.from => {
                            sock = s;
                            false
                        }
                        _ => {
                            nat.refused += 1;
                            true
                        }
                    }
                }
                Some(nat) if nat.port_restricted && !nat.permitted.contains(&p.from) => {
                    nat.refused += 1;
                    true
                }
                _ => false,
            };
            if refused || !iface.up {
                self.lost += 1;
                return;
            }
        }
        *self.hosts[h].received.entry(sock).or_default() += 1;
        if let Some(k) = sock {
            if !self.side_accepts(h, k, p.from, &p.bytes) {
                self.lost += 1;
                return;
            }
        }
        match classify(&p.bytes) {
            DatagramKind::Disco => {
                let host = &mut self.hosts[h];
                let msg = host.key.open(&p.bytes).expect("peers' messages open");
                match msg {
                    DiscoMsg::Ping { tx_id } => {
                        let pong = host.paths.handle_ping(now, p.from, tx_id);
                        host.pongs_out += 1;
                        let bytes = self.seal(h, &pong);
                        self.send(h, None, p.from, bytes);
                    }
                    DiscoMsg::Pong { tx_id, observed } => {
                        // The ponger saw us at our NAT's public side (or our own address).
                        assert!(
                            host.ifaces
                                .iter()
                                .any(|i| i.reached_at(observed) || i.addr == observed),
                            "observed {observed} is none of host {h}'s addresses"
                        );
                        if !host.paths.handle_pong(now, p.from, tx_id) {
                            if let Some(b) = host.birthday.as_mut() {
                                b.handle_pong(p.from, &tx_id);
                            }
                        }
                    }
                    DiscoMsg::PortQuery { .. }
                    | DiscoMsg::PortAnswer { .. }
                    | DiscoMsg::Birthday { .. }
                    | DiscoMsg::Wake { .. }
                    | DiscoMsg::TcpDial { .. } => {
                        panic!("path probing sends only pings and pongs")
                    }
                }
            }
            DatagramKind::WireGuard(_) => self.hosts[h].paths.handle_authenticated(now, p.from),
            other => panic!("unexpected datagram {other:?}"),
        }
        self.after_input(h);
    }

    fn birthday_timeout(&self, h: usize) -> Option<Instant> {
        self.hosts[h].birthday.as_ref()?.poll_timeout()
    }

    /// Side socket `k` of host `h` got a datagram from `from`: the kept one carries
    /// everything; the others only a disco message of the peer, which may make one win
    /// (the `Node` authenticates it first; here only the peer can reach the host at all).
    fn side_accepts(&mut self, h: usize, k: u16, from: SocketAddr, bytes: &[u8]) -> bool {
        let host = &mut self.hosts[h];
        if host.kept.is_some_and(|(kept, _)| kept == k) {
            return true;
        }
        if !host.side.contains(&k) || classify(bytes) != DatagramKind::Disco {
            return false;
        }
        let won = host
            .birthday
            .as_mut()
            .is_some_and(|b| b.handle_side_disco(k, from));
        self.apply_birthday_events(h);
        won
    }

    /// The glue `Node` has between a [`Birthday`] and [`PeerPaths`]: a plain path cancels the
    /// run; sockets are opened and closed as asked; what the run found is probed as a path.
    fn apply_birthday_events(&mut self, h: usize) {
        let now = self.now;
        let host = &mut self.hosts[h];
        let Some(b) = host.birthday.as_mut() else {
            return;
        };
        if host.paths.best_path().is_some() && host.kept.is_none() {
            b.cancel();
        }
        while let Some(e) = b.poll_event() {
            match e {
                BirthdayEvent::OpenSockets(n) => {
                    host.side = (0..n).collect();
                    host.side_peak = host.side_peak.max(host.side.len());
                    b.sockets_opened(now, n);
                }
                BirthdayEvent::Won(k) => {
                    host.side.retain(|&s| s == k);
                    host.kept = Some((k, b.target()));
                    host.paths.probe(now, b.target(), CandidateKind::Reflexive);
                }
                BirthdayEvent::Found(a) => host.paths.probe(now, a, CandidateKind::Observed),
                BirthdayEvent::CloseSockets => host.side.clear(),
            }
        }
    }

    /// Drains host `h`'s transmits onto the network and records path changes.
    fn after_input(&mut self, h: usize) {
        self.apply_birthday_events(h);
        while let Some(p) = self.hosts[h]
            .birthday
            .as_mut()
            .and_then(|b| b.poll_transmit())
        {
            self.hosts[h].birthday_out += 1;
            let bytes = self.seal(h, &DiscoMsg::Ping { tx_id: p.tx_id });
            if p.socket.is_none_or(|k| self.hosts[h].side.contains(&k)) {
                self.send(h, p.socket, p.dst, bytes);
            }
        }
        while let Some((dst, msg)) = self.hosts[h].paths.poll_transmit() {
            self.hosts[h].pings_out += 1;
            let bytes = self.seal(h, &msg);
            self.send(h, None, dst, bytes);
        }
        let now = self.now;
        let host = &mut self.hosts[h];
        let best = host.paths.best_path();
        if host.changes.last().and_then(|c| c.1) != best {
            host.changes.push((now, best));
        }
        if best.is_some() && host.first_path_at.is_none() {
            host.first_path_at = Some(now);
        }
    }

    fn seal(&mut self, h: usize, msg: &DiscoMsg) -> Vec<u8> {
        let host = &mut self.hosts[h];
        host.nonce += 1;
        let mut nonce = [h as u8; 24];
        nonce[..8].copy_from_slice(&host.nonce.to_be_bytes());
        host.key.seal(msg, nonce, &mut host.buf);
        host.buf.clone()
    }

    fn random(&mut self) -> u64 {
        // Splitmix64.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn random_loss(&mut self) -> bool {
        self.random() % 100 < self.loss_percent
    }

    /// Routes a datagram from socket `sock` of host `s` to `dst`: inside a shared LAN, or
    /// across the internet through both sides' NATs, where the receiving NAT may refuse it.
    /// What the main socket sends to the address a side socket won goes out of that socket,
    /// as the daemon's shell does it.
    fn send(&mut self, s: usize, sock: Sock, dst: SocketAddr, bytes: Vec<u8>) {
        let r = 1 - s;
        if self.random_loss() {
            self.lost += 1;
            return;
        }
        let sock = match self.hosts[s].kept {
            Some((k, to)) if sock.is_none() && to == dst => Some(k),
            _ => sock,
        };
        let fresh_port = 1024 + (self.random() % 64512) as u16;
        let [a, b] = &mut self.hosts;
        let (snd, rcv) = if s == 0 { (a, b) } else { (b, a) };
        // Same LAN: straight to the receiver's own address.
        let lan = rcv.ifaces.iter().find_map(|ri| {
            let id = ri.lan.filter(|_| ri.addr == dst && ri.up)?;
            snd.ifaces
                .iter()
                .find(|si| si.lan == Some(id) && si.up)
                .map(|si| si.addr)
        });
        let route = if let Some(src) = lan {
            self.lan_up.then_some((src, self.lan_delay, None))
        } else {
            // Across the internet, from an interface of the same address family; the sender's
            // NAT now lets answers from `dst` in.
            let ri = rcv.ifaces.iter().position(|ri| ri.up && ri.reached_at(dst));
            let si = snd.ifaces.iter_mut().find(|si| {
                si.up
                    && si
                        .public_addr()
                        .is_some_and(|a| a.is_ipv4() == dst.is_ipv4())
            });
            match (si, ri) {
                (Some(si), Some(ri)) => {
                    let mut from = si.public_addr().unwrap();
                    if let Some(nat) = &mut si.nat {
                        nat.permitted.insert(dst);
                        if let Some(m) = &mut nat.symmetric {
                            let port = *m.by_flow.entry((sock, dst)).or_insert_with(|| {
                                // A port in use is taken again; the test seeds make it rare.
                                fresh_port
                            });
                            m.by_port.insert(port, (sock, dst));
                            from.set_port(port);
                        }
                    }
                    let delay = si.latency + rcv.ifaces[ri].latency;
                    Some((from, delay, Some(ri)))
                }
                _ => None,
            }
        };
        match route {
            Some((from, delay, wan_iface)) => self.in_flight.push(InFlight {
                at: self.now + delay,
                to: r,
                wan_iface,
                from,
                dst,
                bytes,
            }),
            None => self.lost += 1,
        }
    }
}
