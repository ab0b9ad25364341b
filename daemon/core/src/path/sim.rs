//! A deterministic two-host network for [`PeerPaths`] tests: its own clock, latency per
//! interface, loss, and NATs that only let a packet in from an address the host has sent to
//! (port-restricted cone, as plain masquerade does). Messages are really sealed and opened with
//! `warren_proto::disco`, and "data" packets stand in for WireGuard traffic.

use super::{BestPath, PeerPaths};
use std::collections::HashSet;
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
}

impl Nat {
    pub fn port_restricted(public: &str) -> Self {
        Self {
            public: addr(public),
            port_restricted: true,
            permitted: HashSet::new(),
            refused: 0,
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
    /// Every change of `best_path`, in order.
    pub changes: Vec<(Instant, Option<BestPath>)>,
}

struct InFlight {
    at: Instant,
    to: usize,
    /// Arriving from the internet on this interface: its NAT filters at arrival time.
    wan_iface: Option<usize>,
    from: SocketAddr,
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
        }
        if let (Some(t), Some(every)) = (self.next_traffic, self.traffic) {
            if t <= now {
                self.next_traffic = Some(now + every);
                for h in 0..2 {
                    if let Some(best) = self.best(h) {
                        self.hosts[h].data_out += 1;
                        self.hosts[h].paths.handle_data_sent(now);
                        self.send(h, best.addr, DATA.to_vec());
                        self.after_input(h);
                    }
                }
            }
        }
    }

    fn deliver(&mut self, p: InFlight) {
        let now = self.now;
        let h = p.to;
        if let Some(i) = p.wan_iface {
            let iface = &mut self.hosts[h].ifaces[i];
            let refused = match &mut iface.nat {
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
        match classify(&p.bytes) {
            DatagramKind::Disco => {
                let host = &mut self.hosts[h];
                let msg = host.key.open(&p.bytes).expect("peers' messages open");
                match msg {
                    DiscoMsg::Ping { tx_id } => {
                        let pong = host.paths.handle_ping(now, p.from, tx_id);
                        host.pongs_out += 1;
                        let bytes = self.seal(h, &pong);
                        self.send(h, p.from, bytes);
                    }
                    DiscoMsg::Pong { tx_id, observed } => {
                        // The ponger saw us at our NAT's public side (or our own address).
                        assert!(
                            host.ifaces
                                .iter()
                                .any(|i| i.public_addr() == Some(observed) || i.addr == observed),
                            "observed {observed} is none of host {h}'s addresses"
                        );
                        host.paths.handle_pong(now, p.from, tx_id);
                    }
                    DiscoMsg::PortQuery { .. } | DiscoMsg::PortAnswer { .. } => {
                        panic!("path probing sends no port checks")
                    }
                }
            }
            DatagramKind::WireGuard(_) => self.hosts[h].paths.handle_authenticated(now, p.from),
            other => panic!("unexpected datagram {other:?}"),
        }
        self.after_input(h);
    }

    /// Drains host `h`'s transmits onto the network and records path changes.
    fn after_input(&mut self, h: usize) {
        while let Some((dst, msg)) = self.hosts[h].paths.poll_transmit() {
            self.hosts[h].pings_out += 1;
            let bytes = self.seal(h, &msg);
            self.send(h, dst, bytes);
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

    fn random_loss(&mut self) -> bool {
        // Splitmix64.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % 100 < self.loss_percent
    }

    /// Routes a datagram from host `s` to `dst`: inside a shared LAN, or across the internet
    /// through both sides' NATs, where the receiving NAT may refuse it.
    fn send(&mut self, s: usize, dst: SocketAddr, bytes: Vec<u8>) {
        let r = 1 - s;
        if self.random_loss() {
            self.lost += 1;
            return;
        }
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
            let ri = rcv
                .ifaces
                .iter()
                .position(|ri| ri.up && ri.public_addr() == Some(dst));
            let si = snd.ifaces.iter_mut().find(|si| {
                si.up
                    && si
                        .public_addr()
                        .is_some_and(|a| a.is_ipv4() == dst.is_ipv4())
            });
            match (si, ri) {
                (Some(si), Some(ri)) => {
                    if let Some(nat) = &mut si.nat {
                        nat.permitted.insert(dst);
                    }
                    let delay = si.latency + rcv.ifaces[ri].latency;
                    Some((si.public_addr().unwrap(), delay, Some(ri)))
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
                bytes,
            }),
            None => self.lost += 1,
        }
    }
}
