//! One simulated host: the real [`Node`] with the sockets a daemon gives it (its one main UDP
//! socket and the birthday side sockets), a TUN that answers echo requests, and the control
//! glue (`host/control.rs`) that follows the coordinator the way `warrend`'s control session
//! does.
//!
//! A host takes inputs (datagrams, timeouts, echo requests from its TUN, control messages)
//! and returns what it puts on the wire as [`Out`]s; the [`crate::World`] carries them. After
//! every input it records each peer's path kind when it changed.

mod control;

use crate::packet::{echo_packet, parse_echo, Echo};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;
use warren_daemon_core::control::{Client, PeerMap};
use warren_daemon_core::node::{Inbound, Node, SideEvent, SideSocket, MIN_OUT};
use warren_proto::api::PathKind;
use warren_proto::control::msg::ClientMsg;
use warren_proto::key::NodeKey;

pub use control::COORDINATOR;

/// The port of every host's main socket (the daemon's default).
pub const MAIN_PORT: u16 = 41641;
/// Where side sockets' ports start (the OS's ephemeral ports, as far as the NATs care).
const FIRST_SIDE_PORT: u16 = 50_000;
/// Large enough for any datagram a node makes.
const BUF: usize = 2048;
const _: () = assert!(MIN_OUT <= BUF);

/// What a host puts on the wire or asks of the world.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    /// A datagram from the socket at `port`.
    Udp {
        port: u16,
        dst: SocketAddr,
        bytes: Vec<u8>,
    },
    /// A message on the control connection.
    Control(ClientMsg),
    /// Open the control connection (the client's `Event::Connect`).
    Connect,
    /// Close it (the client's `Event::Close`).
    Close,
}

/// An echo the TUN saw arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    pub at: Instant,
    pub from: Ipv4Addr,
    pub echo: Echo,
}

pub struct Host {
    pub name: String,
    pub node: Node,
    pub(crate) client: Client,
    pub(crate) peers: PeerMap,
    /// The addresses of its interfaces with the main port: its LAN candidates.
    pub(crate) lan: Vec<SocketAddr>,
    /// The coordinator's answers to its requests, in order.
    pub replies: Vec<Result<String, String>>,
    /// Open side sockets and their ports; those kept for a peer's address.
    side: BTreeMap<(u32, u16), u16>,
    by_port: BTreeMap<u16, SideSocket>,
    kept: Vec<(SocketAddr, SideSocket)>,
    next_side_port: u16,
    /// Side sockets open at once, at most.
    pub side_peak: usize,
    /// Echoes that reached the TUN.
    pub arrivals: Vec<Arrival>,
    /// Each peer's path kind, every time it changed.
    pub history: BTreeMap<NodeKey, Vec<(Instant, PathKind)>>,
    /// Its overlay address when no coordinator leased one ([`crate::World::introduce`]).
    pub(crate) manual_ip: Option<Ipv4Addr>,
    buf: Vec<u8>,
}

impl Host {
    pub(crate) fn new(name: String, node: Node, client: Client) -> Self {
        Self {
            name,
            node,
            client,
            peers: PeerMap::new(),
            lan: Vec::new(),
            replies: Vec::new(),
            side: BTreeMap::new(),
            by_port: BTreeMap::new(),
            kept: Vec::new(),
            next_side_port: FIRST_SIDE_PORT,
            side_peak: 0,
            arrivals: Vec::new(),
            history: BTreeMap::new(),
            manual_ip: None,
            buf: vec![0; BUF],
        }
    }

    pub fn key(&self) -> NodeKey {
        self.node.public_key()
    }

    /// The overlay address its coordinator leased it.
    pub fn overlay_ip(&self) -> Option<Ipv4Addr> {
        match self.client.overlay_ip() {
            Some(IpAddr::V4(ip)) => Some(ip),
            _ => self.manual_ip,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The path kind it reports for `peer` now (as `warren status` shows it).
    pub fn path_to(&self, now: Instant, peer: &NodeKey) -> PathKind {
        self.node
            .peer_status(now)
            .into_iter()
            .find(|p| p.public_key == *peer)
            .map_or(PathKind::None, |p| p.path)
    }

    /// Side sockets open now.
    pub fn side_open(&self) -> usize {
        self.side.len()
    }

    /// The side socket kept for `dst`, if one won a birthday run for it.
    pub fn kept_for(&self, dst: SocketAddr) -> Option<u16> {
        self.kept
            .iter()
            .find(|(d, _)| *d == dst)
            .and_then(|(_, s)| self.side.get(&(s.run, s.index)).copied())
    }

    /// A datagram that reached its socket at `port`.
    pub(crate) fn receive(
        &mut self,
        now: Instant,
        port: u16,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Vec<Out> {
        let mut buf = std::mem::take(&mut self.buf);
        let inbound = if port == MAIN_PORT {
            Some(self.node.handle_datagram(now, from, bytes, &mut buf))
        } else {
            let socket = self.by_port.get(&port).copied();
            socket.map(|s| {
                self.node
                    .handle_side_datagram(now, s, from, bytes, &mut buf)
            })
        };
        let mut out = Vec::new();
        // A side socket that just won must be kept before anything goes to the peer.
        self.side_events(now);
        let packet = match inbound {
            Some(Inbound::ToTun { len }) => Some(buf[..len].to_vec()),
            Some(Inbound::Transmit(t)) => {
                out.push(Out::Udp {
                    port: self.port_for(t.dst),
                    dst: t.dst,
                    bytes: buf[..t.len].to_vec(),
                });
                None
            }
            Some(Inbound::Nothing) | None => None,
        };
        self.buf = buf;
        if let Some(p) = packet {
            self.tun(now, &p, &mut out);
        }
        self.drain(now, &mut out);
        out
    }

    /// Time passed: the node's and the client's timers.
    pub(crate) fn timeout(&mut self, now: Instant) -> Vec<Out> {
        if self.node.poll_timeout().is_some_and(|t| t <= now) {
            self.node.handle_timeout(now);
        }
        if self.client.poll_timeout().is_some_and(|t| t <= now) {
            self.client.handle_timeout(now);
        }
        let mut out = Vec::new();
        self.drain(now, &mut out);
        out
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        [self.node.poll_timeout(), self.client.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whatever is pending now (after an input the world gave the client directly).
    pub(crate) fn drain_now(&mut self, now: Instant) -> Vec<Out> {
        let mut out = Vec::new();
        self.drain(now, &mut out);
        out
    }

    /// An echo request from the TUN to `to`, numbered `seq`.
    pub(crate) fn send_echo(&mut self, now: Instant, to: Ipv4Addr, seq: u64) -> Vec<Out> {
        let mut out = Vec::new();
        if let Some(me) = self.overlay_ip() {
            self.tun_send(now, &echo_packet(me, to, Echo::Request(seq)), &mut out);
        }
        self.drain(now, &mut out);
        out
    }

    /// This host's addresses changed (it roamed): its LAN candidates, and the node is told.
    pub(crate) fn network_changed(&mut self, now: Instant, lan: Vec<SocketAddr>) -> Vec<Out> {
        self.lan = lan;
        self.node.handle_network_change(now);
        let mut out = Vec::new();
        self.drain(now, &mut out);
        out
    }

    /// A packet the node took out of the tunnel: an echo request is answered.
    fn tun(&mut self, now: Instant, packet: &[u8], out: &mut Vec<Out>) {
        let Some((from, to, echo)) = parse_echo(packet) else {
            return;
        };
        self.arrivals.push(Arrival {
            at: now,
            from,
            echo,
        });
        if let Echo::Request(seq) = echo {
            self.tun_send(now, &echo_packet(to, from, Echo::Reply(seq)), out);
        }
    }

    fn tun_send(&mut self, now: Instant, packet: &[u8], out: &mut Vec<Out>) {
        let mut buf = std::mem::take(&mut self.buf);
        if let Some(t) = self.node.handle_tun_packet(now, packet, &mut buf) {
            out.push(Out::Udp {
                port: self.port_for(t.dst),
                dst: t.dst,
                bytes: buf[..t.len].to_vec(),
            });
        }
        self.buf = buf;
    }

    /// Everything the node and the client have to say, until both are quiet.
    fn drain(&mut self, now: Instant, out: &mut Vec<Out>) {
        let mut buf = std::mem::take(&mut self.buf);
        loop {
            let mut progressed = self.control(now, out);
            loop {
                self.side_events(now);
                let Some(t) = self.node.poll_transmit(&mut buf) else {
                    break;
                };
                progressed = true;
                out.push(Out::Udp {
                    port: self.port_for(t.dst),
                    dst: t.dst,
                    bytes: buf[..t.len].to_vec(),
                });
            }
            while let Some((socket, t)) = self.node.poll_side_transmit(&mut buf) {
                progressed = true;
                if let Some(&port) = self.side.get(&(socket.run, socket.index)) {
                    out.push(Out::Udp {
                        port,
                        dst: t.dst,
                        bytes: buf[..t.len].to_vec(),
                    });
                }
            }
            // `warren check` questions are not simulated: none is asked.
            while self.node.take_port_question().is_some() {}
            if !progressed {
                break;
            }
        }
        self.buf = buf;
        self.record(now);
    }

    /// Applies the node's side-socket events, as the daemon's `side` module does.
    fn side_events(&mut self, now: Instant) {
        while let Some(e) = self.node.poll_side_event() {
            match e {
                SideEvent::Open { run, count, .. } => {
                    for index in 0..count {
                        let port = self.next_side_port;
                        self.next_side_port = self
                            .next_side_port
                            .checked_add(1)
                            .unwrap_or(FIRST_SIDE_PORT);
                        self.side.insert((run, index), port);
                        self.by_port.insert(port, SideSocket { run, index });
                    }
                    self.side_peak = self.side_peak.max(self.side.len());
                    self.node.side_sockets_opened(now, run, count);
                }
                SideEvent::Keep { socket, dst } => {
                    let keep =
                        |&(run, index): &(u32, u16)| run != socket.run || index == socket.index;
                    self.side.retain(|k, _| keep(k));
                    self.by_port.retain(|_, s| keep(&(s.run, s.index)));
                    if self.side.contains_key(&(socket.run, socket.index)) {
                        self.kept.push((dst, socket));
                    }
                }
                SideEvent::Close { run } => {
                    self.side.retain(|k, _| k.0 != run);
                    self.by_port.retain(|_, s| s.run != run);
                    self.kept.retain(|(_, s)| s.run != run);
                }
            }
        }
    }

    /// The socket a datagram to `dst` leaves from: a kept side socket, else the main one.
    fn port_for(&self, dst: SocketAddr) -> u16 {
        self.kept_for(dst).unwrap_or(MAIN_PORT)
    }

    fn record(&mut self, now: Instant) {
        for st in self.node.peer_status(now) {
            let h = self.history.entry(st.public_key).or_default();
            if h.last().map(|(_, k)| *k) != Some(st.path) {
                h.push((now, st.path));
            }
        }
    }
}

/// A fresh node with `secret`, its randomness and its wall clock from the world.
pub(crate) fn node(secret: [u8; 32], seed: [u8; 16], now: Instant, unix_ms: u64) -> Node {
    let mut node = Node::new(secret, seed);
    node.set_wall_clock(now, unix_ms);
    node
}
