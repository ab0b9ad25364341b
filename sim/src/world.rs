//! The world: one virtual clock, an event queue, the fabric, the hosts and the coordinator.
//!
//! [`World::run_for`] takes the earliest thing due — a datagram or control message arriving,
//! a host's timer — hands it to its actor at that instant, and queues what the actor sends
//! with the delay the fabric gives it. Equal instants keep the order they were queued in, and
//! every random choice comes from the world's seeded generator, so a seed replays a run.

use crate::coordinator::{Coordinator, Said, RELAY_PORT};
use crate::fabric::{
    Delivery, Dropped, Endpoint, Fabric, Flight, Hop, HostId, Iface, Server, INTERNET,
};
use crate::host::{self, Host, Out, COORDINATOR, MAIN_PORT};
use crate::seed::{Rng, SeedReport};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use warren_daemon_core::control::Client;
use warren_proto::datagram::{classify, DatagramKind};

mod control;
mod faults;
mod manual;
mod queue;
mod traffic;

pub use queue::Ev;
use queue::Queue;

/// The wall clock (unix ms) at the start of every run: disco messages carry it.
const START_UNIX_MS: u64 = 1_750_000_000_000;
/// Steps one run may take, and steps at one instant, before the world calls it a livelock
/// (a timer that never moves on, datagrams that answer each other without end).
const MAX_STEPS: u64 = 50_000_000;
const MAX_STEPS_AT_ONE_INSTANT: u64 = 1_000_000;

/// Counts of what happened to datagrams.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub sent: u64,
    pub delivered: u64,
    pub lost: u64,
    pub no_route: u64,
    pub down: u64,
    pub refused: u64,
}

/// One datagram put on the wire, for tests that count what went where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub at: Instant,
    pub host: HostId,
    pub port: u16,
    pub dst: SocketAddr,
    pub kind: DatagramKind,
    pub bytes: Vec<u8>,
}

/// The state of a host's control connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    Closed,
    Dialing,
    /// Welcomed; over TCP when UDP does not get out (its relay frames go on it too).
    Up {
        tcp: bool,
    },
}

pub struct World {
    pub now: Instant,
    pub start: Instant,
    pub fabric: Fabric,
    pub hosts: Vec<Host>,
    pub coordinator: Coordinator,
    /// Percentage of datagrams lost on the way, decided by the seeded generator.
    pub loss_percent: u32,
    pub stats: Stats,
    /// Every datagram sent, while [`World::trace`] is on.
    pub sent: Option<Vec<Sent>>,
    pub(crate) links: Vec<(Link, u64)>,
    /// The next echo sequence number.
    next_seq: u64,
    /// Pairs of addresses that cannot reach each other ([`World::cut`]).
    cuts: Vec<(IpAddr, IpAddr)>,
    /// The relay's port answers (it is not down while the coordinator runs on).
    relay_up: bool,
    /// Each pair's current traffic stream ([`World::set_traffic`]).
    streams: std::collections::BTreeMap<(HostId, HostId), u64>,
    queue: Queue,
    rng: Rng,
    pub report: SeedReport,
}

impl World {
    /// An empty internet with the coordinator on it (reachable, 5 ms from the core).
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let coordinator = Coordinator::new(Rng::new(rng.next_u64()));
        let mut fabric = Fabric::new();
        fabric.server = Some(Server {
            ip: COORDINATOR,
            latency: Duration::from_millis(5),
            up: true,
        });
        // Instants come only from the real clock: the virtual one starts at a real instant and
        // then moves on by itself (what boringtun reads of the real clock meanwhile: see the
        // crate's docs).
        let start = Instant::now();
        Self {
            now: start,
            start,
            fabric,
            hosts: Vec::new(),
            coordinator,
            loss_percent: 0,
            stats: Stats::default(),
            sent: None,
            links: Vec::new(),
            next_seq: 1,
            cuts: Vec::new(),
            relay_up: true,
            streams: Default::default(),
            queue: Queue::default(),
            rng,
            report: SeedReport { seed },
        }
    }

    pub fn seed(&self) -> u64 {
        self.report.seed
    }

    /// Time since the world began.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    pub(crate) fn unix(&self) -> u64 {
        (START_UNIX_MS + self.elapsed().as_millis() as u64) / 1000
    }

    /// Starts recording every datagram sent.
    pub fn trace(&mut self) {
        self.sent = Some(Vec::new());
    }

    /// A host with these interfaces and a fresh key; not connected to anything yet.
    pub fn add_host(&mut self, name: &str, ifaces: Vec<Iface>) -> HostId {
        let secret: [u8; 32] = self.rng.bytes();
        let seed: [u8; 16] = self.rng.bytes();
        let unix_ms = START_UNIX_MS + self.elapsed().as_millis() as u64;
        let node = host::node(secret, seed, self.now, unix_ms);
        let client = Client::new("coordinator", false, self.now, self.rng.next_u64());
        let mut h = Host::new(name.to_string(), node, client);
        h.lan = lan_of(&ifaces);
        self.fabric.hosts.push(ifaces);
        self.hosts.push(h);
        self.links.push((Link::Closed, 0));
        self.hosts.len() - 1
    }

    pub fn host(&self, h: HostId) -> &Host {
        &self.hosts[h]
    }

    pub fn host_mut(&mut self, h: HostId) -> &mut Host {
        &mut self.hosts[h]
    }

    /// Runs every event due within `d`.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        self.run_until_at(end, |_| false);
    }

    /// Runs until `done` holds (checked after every step) or `limit` passed; whether it held.
    pub fn run_until(&mut self, limit: Duration, done: impl FnMut(&World) -> bool) -> bool {
        let end = self.now + limit;
        self.run_until_at(end, done)
    }

    fn run_until_at(&mut self, end: Instant, mut done: impl FnMut(&World) -> bool) -> bool {
        let mut same_instant = 0;
        for _ in 0..MAX_STEPS {
            if done(self) {
                return true;
            }
            let timer = self
                .hosts
                .iter()
                .enumerate()
                .filter_map(|(h, host)| host.poll_timeout().map(|t| (t, h)))
                .min();
            let event = self.queue.peek_time();
            let next = match (timer, event) {
                (Some((t, _)), Some(e)) => t.min(e),
                (Some((t, _)), None) => t,
                (None, Some(e)) => e,
                (None, None) => end,
            };
            if next > end {
                self.now = self.now.max(end);
                return done(self);
            }
            if next <= self.now {
                same_instant += 1;
                assert!(
                    same_instant < MAX_STEPS_AT_ONE_INSTANT,
                    "the simulation does not move on from {:?} (seed {})",
                    self.elapsed(),
                    self.seed()
                );
            } else {
                same_instant = 0;
            }
            self.now = self.now.max(next);
            if event.is_some_and(|e| e <= self.now) {
                let ev = self.queue.pop().expect("due");
                self.handle(ev);
            } else if let Some((_, h)) = timer {
                let out = self.hosts[h].timeout(self.now);
                self.carry(h, out);
            }
        }
        panic!("the simulation does not settle (seed {})", self.seed());
    }

    /// Puts what host `h` sent on its way.
    pub(crate) fn carry(&mut self, h: HostId, out: Vec<Out>) {
        for o in out {
            match o {
                Out::Udp { port, dst, bytes } => self.udp(h, port, dst, bytes),
                Out::Control(msg) => self.send_to_coordinator(h, msg),
                Out::Connect => self.dial(h),
                Out::Close => self.hang_up(h),
            }
        }
    }

    fn udp(&mut self, h: HostId, port: u16, dst: SocketAddr, bytes: Vec<u8>) {
        self.stats.sent += 1;
        if let Some(log) = &mut self.sent {
            log.push(Sent {
                at: self.now,
                host: h,
                port,
                dst,
                kind: classify(&bytes),
                bytes: bytes.clone(),
            });
        }
        if dst == relay_addr() && !self.relay_up {
            self.stats.lost += 1;
            return;
        }
        if dst == relay_addr() && self.links[h].0 == (Link::Up { tcp: true }) {
            // The relay over the TCP control connection (`daemon/src/control/relay_shim.rs`).
            let delay = self.fabric.control_path(h);
            if let Some(d) = delay {
                let link = self.links[h].1;
                self.queue
                    .push(self.now + d, Ev::TcpToRelay { h, link, bytes });
            }
            return;
        }
        if self.rng.percent(self.loss_percent) {
            self.stats.lost += 1;
            return;
        }
        match self.fabric.start(h, port, dst) {
            Ok((flight, delay)) => self.advance(flight, delay, bytes),
            Err(e) => self.dropped(e),
        }
    }

    /// Moves a datagram on from where it is: to its receiver, or to the next router.
    fn advance(&mut self, flight: Flight, delay: Duration, bytes: Vec<u8>) {
        if flight.seg == INTERNET && self.is_cut(flight.src.ip(), flight.dst.ip()) {
            self.stats.lost += 1;
            return;
        }
        match self.fabric.advance(flight, delay) {
            Ok(Hop::Arrive(Delivery { to, from, delay })) => self
                .queue
                .push(self.now + delay, Ev::Udp { to, from, bytes }),
            Ok(Hop::Router {
                n,
                outbound,
                delay,
                flight,
            }) => self.queue.push(
                self.now + delay,
                Ev::Hop {
                    n,
                    outbound,
                    flight,
                    bytes,
                },
            ),
            Err(e) => self.dropped(e),
        }
    }

    fn dropped(&mut self, e: Dropped) {
        match e {
            Dropped::NoRoute => self.stats.no_route += 1,
            Dropped::Down => self.stats.down += 1,
            Dropped::Refused => self.stats.refused += 1,
        }
    }

    fn handle(&mut self, ev: Ev) {
        let now = self.now;
        match ev {
            Ev::Udp { to, from, bytes } => {
                match to {
                    Endpoint::Host { h, iface, ip, port } => {
                        // It moved away while the datagram was on its way.
                        let there = self.fabric.hosts[h]
                            .get(iface)
                            .is_some_and(|i| i.up && i.ip == ip);
                        if !there {
                            self.stats.no_route += 1;
                            return;
                        }
                        self.stats.delivered += 1;
                        let out = self.hosts[h].receive(now, port, from, &bytes);
                        self.carry(h, out);
                    }
                    Endpoint::Server(dst) => {
                        self.stats.delivered += 1;
                        let unix = self.unix();
                        let mut said = Vec::new();
                        self.coordinator
                            .datagram(now, unix, dst.port(), from, &bytes, &mut said);
                        self.said(said);
                    }
                }
            }
            Ev::Hop {
                n,
                outbound,
                flight,
                bytes,
            } => match self.fabric.cross(&mut self.rng, n, outbound, flight) {
                Ok((flight, delay)) => self.advance(flight, delay, bytes),
                Err(e) => self.dropped(e),
            },
            Ev::TcpToRelay { h, link, bytes } => {
                if self.links[h] != (Link::Up { tcp: true }, link)
                    || !self.server_up()
                    || !self.relay_up
                {
                    return;
                }
                let unix = self.unix();
                let mut said = Vec::new();
                self.coordinator
                    .datagram(now, unix, RELAY_PORT, synthetic(h), &bytes, &mut said);
                self.said(said);
            }
            Ev::TcpFromRelay { h, link, bytes } => {
                if self.links[h] == (Link::Up { tcp: true }, link) {
                    let out = self.hosts[h].receive(now, MAIN_PORT, relay_addr(), &bytes);
                    self.carry(h, out);
                }
            }
            Ev::Traffic {
                a,
                b,
                every,
                stream,
            } => {
                if self.streams.get(&(a, b)) == Some(&stream) {
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    self.send_echo(a, b, seq);
                    self.send_echo(b, a, seq);
                    let ev = Ev::Traffic {
                        a,
                        b,
                        every,
                        stream,
                    };
                    self.queue.push(now + every, ev);
                }
            }
            other => self.control_event(other),
        }
    }

    /// Carries what the coordinator said.
    pub(crate) fn said(&mut self, said: Vec<Said>) {
        for s in said {
            match s {
                Said::Control(h, msg) => self.send_to_host(h, msg),
                Said::Udp { port, to, bytes } => match synthetic_host(to) {
                    Some(h) => {
                        if let (Link::Up { tcp: true }, link) = self.links[h] {
                            if let Some(d) = self.fabric.control_path(h) {
                                self.queue
                                    .push(self.now + d, Ev::TcpFromRelay { h, link, bytes });
                            }
                        }
                    }
                    None => self.send_from_server(port, to, bytes),
                },
            }
        }
    }

    /// A datagram from the coordinator's machine: the way back crosses the same routers.
    fn send_from_server(&mut self, port: u16, to: SocketAddr, bytes: Vec<u8>) {
        self.stats.sent += 1;
        if self.rng.percent(self.loss_percent) {
            self.stats.lost += 1;
            return;
        }
        let server = self.fabric.server.expect("a server");
        let from = SocketAddr::new(server.ip, port);
        let flight = Fabric::start_on_internet(from, to);
        self.advance(flight, server.latency, bytes);
    }

    fn server_up(&self) -> bool {
        self.fabric.server.is_some_and(|s| s.up)
    }
}

/// The coordinator's relay.
pub fn relay_addr() -> SocketAddr {
    SocketAddr::new(COORDINATOR, RELAY_PORT)
}

/// The address the relay knows a TCP connection by (`coordinator/src/tcp_links.rs` makes one
/// per connection, as here one per host).
fn synthetic(h: HostId) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 77, 0, 1)), 20_000 + h as u16)
}

fn synthetic_host(a: SocketAddr) -> Option<HostId> {
    (a.ip() == IpAddr::V4(Ipv4Addr::new(127, 77, 0, 1)) && a.port() >= 20_000)
        .then(|| (a.port() - 20_000) as usize)
}

/// A host's LAN candidates: every interface address with the main port.
pub(crate) fn lan_of(ifaces: &[Iface]) -> Vec<SocketAddr> {
    ifaces
        .iter()
        .filter(|i| i.up)
        .map(|i| SocketAddr::new(i.ip, MAIN_PORT))
        .collect()
}
