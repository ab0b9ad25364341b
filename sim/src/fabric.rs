//! The wires: segments (the internet, LANs, a carrier's inside network), the hosts'
//! interfaces on them, and NAT routers between them. A UDP datagram goes hop by hop
//! ([`Fabric::start`], [`Fabric::advance`], [`Fabric::cross`]): each router translates and
//! filters it at the instant it gets there, so a router sees packets in the order they reach
//! it, as a real one does.
//!
//! Every interface and router names its gateway: the router it sends through for addresses
//! not on its own segment. A segment can hold several hosts (a LAN: they reach each other's
//! own addresses) and several routers' inside addresses; a router's outside is another
//! segment, where it may have a gateway of its own (a home router behind a carrier-grade NAT).
//! Segment 0 is the internet: addresses not found there are nowhere.

use crate::nat::Nat;
use crate::seed::Rng;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub type SegId = usize;
pub type NatId = usize;
pub type HostId = usize;

/// The internet's segment.
pub const INTERNET: SegId = 0;

#[derive(Debug, Clone)]
pub struct Segment {
    pub name: String,
    /// A cut cable: nothing crosses it.
    pub up: bool,
}

#[derive(Debug, Clone)]
pub struct Iface {
    pub seg: SegId,
    pub ip: IpAddr,
    /// The router for everything not on `seg` (`None` on the internet itself).
    pub gateway: Option<NatId>,
    /// One-way delay between the host and its segment.
    pub latency: Duration,
    pub up: bool,
}

#[derive(Debug)]
pub struct Router {
    pub nat: Nat,
    /// Where its inside address faces (its LAN) and where its outside address is.
    pub inside: SegId,
    pub outside: SegId,
    /// The router it sends through from its outside (a carrier-grade NAT), if any.
    pub gateway: Option<NatId>,
    pub up: bool,
}

/// The coordinator's machine on the internet.
#[derive(Debug, Clone, Copy)]
pub struct Server {
    pub ip: IpAddr,
    pub latency: Duration,
    pub up: bool,
}

/// Where a datagram arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// Host `h`'s socket at `port`, by its interface `iface` with address `ip`.
    Host {
        h: HostId,
        iface: usize,
        ip: IpAddr,
        port: u16,
    },
    /// The coordinator, at this address of it (which port says STUN or relay).
    Server(SocketAddr),
}

/// A datagram on its way: on segment `seg`, with the gateway of whoever put it there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flight {
    pub seg: SegId,
    pub gateway: Option<NatId>,
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

/// What happens to a datagram on a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    /// It reaches its receiver after `delay`.
    Arrive(Delivery),
    /// It reaches router `n` after `delay`.
    Router {
        n: NatId,
        outbound: bool,
        delay: Duration,
        flight: Flight,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub to: Endpoint,
    /// The source address the receiver sees (after every NAT).
    pub from: SocketAddr,
    pub delay: Duration,
}

/// Why a datagram went nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// The sender has no interface that reaches the destination.
    NoRoute,
    /// A segment, an interface, a router or the server is down.
    Down,
    /// A router refused it (no mapping, filtered, UDP blocked).
    Refused,
}

#[derive(Debug, Default)]
pub struct Fabric {
    pub segments: Vec<Segment>,
    pub routers: Vec<Router>,
    /// Every host's interfaces, by host id.
    pub hosts: Vec<Vec<Iface>>,
    pub server: Option<Server>,
}

/// What is at an address on a segment.
enum Target {
    Host(HostId, usize),
    RouterOutside(NatId),
    Server,
}

impl Fabric {
    pub fn new() -> Self {
        Self {
            segments: vec![Segment {
                name: "internet".into(),
                up: true,
            }],
            ..Default::default()
        }
    }

    pub fn add_segment(&mut self, name: impl Into<String>) -> SegId {
        self.segments.push(Segment {
            name: name.into(),
            up: true,
        });
        self.segments.len() - 1
    }

    pub fn add_router(&mut self, router: Router) -> NatId {
        self.routers.push(router);
        self.routers.len() - 1
    }

    /// A datagram leaves host `h`'s socket at `port` for `dst`: where it is, and how long it
    /// took to get onto its segment.
    pub fn start(
        &self,
        h: HostId,
        port: u16,
        dst: SocketAddr,
    ) -> Result<(Flight, Duration), Dropped> {
        let iface = self.source_iface(h, dst).ok_or(Dropped::NoRoute)?;
        let i = &self.hosts[h][iface];
        let flight = Flight {
            seg: i.seg,
            gateway: i.gateway,
            src: SocketAddr::new(i.ip, port),
            dst,
        };
        Ok((flight, i.latency))
    }

    /// A datagram sent from `from` on the internet itself (the coordinator's machine).
    pub fn start_on_internet(from: SocketAddr, dst: SocketAddr) -> Flight {
        Flight {
            seg: INTERNET,
            gateway: None,
            src: from,
            dst,
        }
    }

    /// Where a datagram on its segment goes next: to its receiver, or to a router (whose
    /// translation and filter apply when it gets there, [`Fabric::cross`]). `delay` is the
    /// time it has been on its way since the last hop.
    pub fn advance(&self, f: Flight, delay: Duration) -> Result<Hop, Dropped> {
        if !self.segments[f.seg].up {
            return Err(Dropped::Down);
        }
        match self.find(f.seg, f.dst.ip()) {
            Some(Target::Host(to, iface)) => Ok(Hop::Arrive(Delivery {
                to: Endpoint::Host {
                    h: to,
                    iface,
                    ip: f.dst.ip(),
                    port: f.dst.port(),
                },
                from: f.src,
                delay: delay + self.hosts[to][iface].latency,
            })),
            Some(Target::Server) => {
                let s = self.server.expect("found");
                if !s.up {
                    return Err(Dropped::Down);
                }
                Ok(Hop::Arrive(Delivery {
                    to: Endpoint::Server(f.dst),
                    from: f.src,
                    delay: delay + s.latency,
                }))
            }
            Some(Target::RouterOutside(n)) => Ok(Hop::Router {
                n,
                outbound: false,
                delay,
                flight: f,
            }),
            None => {
                let n = f.gateway.ok_or(Dropped::NoRoute)?;
                Ok(Hop::Router {
                    n,
                    outbound: true,
                    delay,
                    flight: f,
                })
            }
        }
    }

    /// The datagram reaches router `n` now, from inside (`outbound`) or from outside: it is
    /// translated and filtered, and goes on after the router's delay.
    pub fn cross(
        &mut self,
        rng: &mut Rng,
        n: NatId,
        outbound: bool,
        f: Flight,
    ) -> Result<(Flight, Duration), Dropped> {
        let r = &mut self.routers[n];
        if !r.up {
            return Err(Dropped::Down);
        }
        let latency = r.nat.config.latency;
        if !outbound {
            let dst = r.nat.inbound(f.src, f.dst.port()).ok_or(Dropped::Refused)?;
            // Going down: what is not inside now is nowhere.
            let flight = Flight {
                seg: r.inside,
                gateway: None,
                src: f.src,
                dst,
            };
            return Ok((flight, latency));
        }
        let src = r.nat.outbound(rng, f.src, f.dst).ok_or(Dropped::Refused)?;
        if f.dst.ip() == r.nat.outside {
            // To the router's own public address from inside.
            if !r.nat.config.hairpin {
                r.nat.counters.refused += 1;
                return Err(Dropped::Refused);
            }
            r.nat.counters.hairpinned += 1;
            let dst = r.nat.inbound(src, f.dst.port()).ok_or(Dropped::Refused)?;
            let flight = Flight { dst, src, ..f };
            return Ok((flight, Duration::ZERO));
        }
        let flight = Flight {
            seg: r.outside,
            gateway: r.gateway,
            src,
            dst: f.dst,
        };
        Ok((flight, latency))
    }

    /// The interface `h` sends to `dst` from: one on the destination's own segment, else one
    /// with a way to the internet; of the destination's address family, and up.
    fn source_iface(&self, h: HostId, dst: SocketAddr) -> Option<usize> {
        let ifaces = &self.hosts[h];
        let usable = |i: &&Iface| i.up && i.ip.is_ipv4() == dst.is_ipv4();
        ifaces
            .iter()
            .position(|i| usable(&i) && self.find(i.seg, dst.ip()).is_some())
            .or_else(|| {
                ifaces
                    .iter()
                    .position(|i| usable(&i) && (i.gateway.is_some() || i.seg == INTERNET))
            })
    }

    fn find(&self, seg: SegId, ip: IpAddr) -> Option<Target> {
        if seg == INTERNET && self.server.is_some_and(|s| s.ip == ip) {
            return Some(Target::Server);
        }
        for (h, ifaces) in self.hosts.iter().enumerate() {
            if let Some(k) = ifaces
                .iter()
                .position(|i| i.seg == seg && i.ip == ip && i.up)
            {
                return Some(Target::Host(h, k));
            }
        }
        self.routers
            .iter()
            .position(|r| r.outside == seg && r.nat.outside == ip)
            .map(Target::RouterOutside)
    }

    /// The routers `h`'s traffic to the internet crosses, nearest first.
    pub fn uplink(&self, h: HostId) -> Vec<NatId> {
        let mut chain = Vec::new();
        let mut g = self.hosts[h]
            .iter()
            .find(|i| i.up && i.ip.is_ipv4() && (i.gateway.is_some() || i.seg == INTERNET))
            .and_then(|i| i.gateway);
        while let Some(n) = g {
            chain.push(n);
            g = self.routers[n].gateway;
        }
        chain
    }

    /// Whether `h` reaches the internet at all (over TCP: a UDP-blocking router lets it
    /// through), and the one-way delay to the coordinator on that way.
    pub fn control_path(&self, h: HostId) -> Option<Duration> {
        let server = self.server.filter(|s| s.up)?;
        let first = self.hosts[h]
            .iter()
            .find(|i| i.up && i.ip.is_ipv4() && (i.gateway.is_some() || i.seg == INTERNET))?;
        let mut delay = first.latency + server.latency;
        if !self.segments[first.seg].up {
            return None;
        }
        for n in self.uplink(h) {
            let r = &self.routers[n];
            if !r.up || !self.segments[r.outside].up {
                return None;
            }
            delay += r.nat.config.latency;
        }
        Some(delay)
    }

    /// The address the coordinator sees `h`'s control connection come from: the outermost
    /// router's public address, or the host's own.
    pub fn public_ip(&self, h: HostId) -> Option<IpAddr> {
        match self.uplink(h).last() {
            Some(&n) => Some(self.routers[n].nat.outside),
            None => self.hosts[h]
                .iter()
                .find(|i| i.up && i.seg == INTERNET && i.ip.is_ipv4())
                .map(|i| i.ip),
        }
    }

    /// Whether a router on `h`'s way out drops UDP (the control channel then goes over TCP).
    pub fn udp_blocked(&self, h: HostId) -> bool {
        self.uplink(h)
            .iter()
            .any(|&n| self.routers[n].nat.config.udp_blocked)
    }
}
