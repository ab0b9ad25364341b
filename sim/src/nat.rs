//! NAT models: how a router maps inside sockets to public ports and which packets from outside
//! it lets back in. The lab's routers (nftables, `lab/src/site.rs`) are the
//! reference: plain masquerade keeps a socket's port and lets in only replies from where it
//! sent (port-restricted); the full cone lets anything in to a mapped port; `masquerade
//! fully-random` gives every new destination a new random port (symmetric); a hotel network
//! drops all UDP. A router may also hold port mappings (UPnP-IGD, NAT-PMP, PCP), may hairpin
//! (carry a packet from inside to its own public address back inside), and may forget every
//! mapping at once (a reboot, or mappings that timed out: a rebinding).
//!
//! Mappings never time out on their own here; [`Nat::rebind`] is the one way they go.

use crate::seed::Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mapping {
    /// One public port per inside socket, whatever the destination; the socket's own port when
    /// no other socket holds it (masquerade).
    EndpointIndependent,
    /// A new random public port for every (inside socket, destination).
    Symmetric,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filtering {
    /// Anything sent to a mapped port gets in (full cone).
    EndpointIndependent,
    /// Only packets from an address and port the inside socket sent to (conntrack's rule).
    AddressAndPort,
}

#[derive(Clone, Debug)]
pub struct NatConfig {
    pub mapping: Mapping,
    pub filtering: Filtering,
    /// A packet from inside to the router's own public address is carried back inside, as if
    /// it had come from outside (many home routers do not).
    pub hairpin: bool,
    /// No UDP passes either way (only TCP: the control channel and the relay over TCP).
    pub udp_blocked: bool,
    /// One-way delay across the router and its uplink.
    pub latency: Duration,
}

impl NatConfig {
    pub fn full_cone() -> Self {
        Self {
            mapping: Mapping::EndpointIndependent,
            filtering: Filtering::EndpointIndependent,
            hairpin: false,
            udp_blocked: false,
            latency: Duration::from_millis(10),
        }
    }

    pub fn port_restricted() -> Self {
        Self {
            filtering: Filtering::AddressAndPort,
            ..Self::full_cone()
        }
    }

    pub fn symmetric() -> Self {
        Self {
            mapping: Mapping::Symmetric,
            ..Self::port_restricted()
        }
    }

    /// A hotel network: port-restricted, and all UDP dropped.
    pub fn udp_blocked() -> Self {
        Self {
            udp_blocked: true,
            ..Self::port_restricted()
        }
    }

    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    pub fn with_hairpin(mut self, on: bool) -> Self {
        self.hairpin = on;
        self
    }
}

/// What a NAT did to the packets that met it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NatCounters {
    pub mappings_made: u64,
    /// Inbound packets no mapping or filter let in.
    pub refused: u64,
    /// UDP dropped by a UDP-blocking router.
    pub blocked: u64,
    pub hairpinned: u64,
    pub rebinds: u64,
}

#[derive(Debug, Clone)]
struct Binding {
    inside: SocketAddr,
    /// The one destination of a symmetric mapping.
    dst: Option<SocketAddr>,
    /// Where the inside socket sent to through this binding.
    permitted: BTreeSet<SocketAddr>,
}

/// A port mapping on the router (UPnP-IGD, NAT-PMP, PCP): its public port leads to `inside`
/// from anywhere, and replies to those who came in through it leave from that port.
#[derive(Debug, Clone)]
struct Forward {
    inside: SocketAddr,
    came_in: BTreeSet<SocketAddr>,
}

#[derive(Debug)]
pub struct Nat {
    pub config: NatConfig,
    /// The router's public (outside) address.
    pub outside: IpAddr,
    bindings: BTreeMap<u16, Binding>,
    /// (inside socket, destination for symmetric) → public port.
    by_flow: BTreeMap<(SocketAddr, Option<SocketAddr>), u16>,
    forwards: BTreeMap<u16, Forward>,
    /// After a rebinding, sockets no longer get their own port back.
    keep_ports: bool,
    pub counters: NatCounters,
}

impl Nat {
    pub fn new(config: NatConfig, outside: IpAddr) -> Self {
        Self {
            config,
            outside,
            bindings: BTreeMap::new(),
            by_flow: BTreeMap::new(),
            forwards: BTreeMap::new(),
            keep_ports: true,
            counters: NatCounters::default(),
        }
    }

    /// A packet from `inside` to `dst` leaves: the public address it leaves from, or `None`
    /// when the router drops it.
    pub fn outbound(
        &mut self,
        rng: &mut Rng,
        inside: SocketAddr,
        dst: SocketAddr,
    ) -> Option<SocketAddr> {
        if self.config.udp_blocked {
            self.counters.blocked += 1;
            return None;
        }
        // A reply to someone who came in through a port mapping leaves from that port.
        if let Some((&port, _)) = self
            .forwards
            .iter()
            .find(|(_, f)| f.inside == inside && f.came_in.contains(&dst))
        {
            return Some(SocketAddr::new(self.outside, port));
        }
        let flow = match self.config.mapping {
            Mapping::EndpointIndependent => (inside, None),
            Mapping::Symmetric => (inside, Some(dst)),
        };
        let port = match self.by_flow.get(&flow) {
            Some(&p) => p,
            None => {
                let want = (self.config.mapping == Mapping::EndpointIndependent && self.keep_ports)
                    .then_some(inside.port());
                let port = self.free_port(rng, want);
                self.by_flow.insert(flow, port);
                self.bindings.insert(
                    port,
                    Binding {
                        inside,
                        dst: flow.1,
                        permitted: BTreeSet::new(),
                    },
                );
                self.counters.mappings_made += 1;
                port
            }
        };
        self.bindings
            .get_mut(&port)
            .expect("bound")
            .permitted
            .insert(dst);
        Some(SocketAddr::new(self.outside, port))
    }

    /// A packet from `from` reaches public port `port`: the inside socket it goes on to, or
    /// `None` when the router refuses it.
    pub fn inbound(&mut self, from: SocketAddr, port: u16) -> Option<SocketAddr> {
        if self.config.udp_blocked {
            self.counters.blocked += 1;
            return None;
        }
        if let Some(f) = self.forwards.get_mut(&port) {
            f.came_in.insert(from);
            return Some(f.inside);
        }
        let passes = self.bindings.get(&port).filter(|b| {
            b.dst.is_none_or(|d| d == from)
                && (self.config.filtering == Filtering::EndpointIndependent
                    || b.permitted.contains(&from))
        });
        match passes {
            Some(b) => Some(b.inside),
            None => {
                self.counters.refused += 1;
                None
            }
        }
    }

    /// Maps public port `port` to `inside` (a port mapping a host asked for); `false` when
    /// the port is taken.
    pub fn add_forward(&mut self, port: u16, inside: SocketAddr) -> bool {
        if self.bindings.contains_key(&port) || self.forwards.contains_key(&port) {
            return false;
        }
        self.forwards.insert(
            port,
            Forward {
                inside,
                came_in: BTreeSet::new(),
            },
        );
        true
    }

    /// The router forgets every mapping (not its port mappings): the next packet of each
    /// socket gets a new port, and nothing is let in until it is sent.
    pub fn rebind(&mut self) {
        self.bindings.clear();
        self.by_flow.clear();
        for f in self.forwards.values_mut() {
            f.came_in.clear();
        }
        self.keep_ports = false;
        self.counters.rebinds += 1;
    }

    /// The public port `inside` is mapped to for every destination (endpoint-independent
    /// mapping), if it has one.
    pub fn public_port_of(&self, inside: SocketAddr) -> Option<u16> {
        self.by_flow.get(&(inside, None)).copied()
    }

    /// How many mappings the router holds now.
    pub fn mappings(&self) -> usize {
        self.bindings.len()
    }

    fn free_port(&self, rng: &mut Rng, want: Option<u16>) -> u16 {
        let taken = |p: u16| self.bindings.contains_key(&p) || self.forwards.contains_key(&p);
        if let Some(p) = want.filter(|&p| !taken(p)) {
            return p;
        }
        loop {
            let p = rng.port();
            if !taken(p) {
                return p;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const HOST: &str = "192.168.1.10:41641";
    const PEER: &str = "198.51.100.2:41641";
    const OTHER: &str = "198.51.100.9:1234";

    #[test]
    fn port_restricted_keeps_the_port_and_lets_in_only_replies() {
        let mut rng = Rng::new(1);
        let mut nat = Nat::new(NatConfig::port_restricted(), "203.0.113.1".parse().unwrap());
        assert_eq!(nat.inbound(a(PEER), 41641), None, "nothing mapped yet");
        let out = nat.outbound(&mut rng, a(HOST), a(PEER)).unwrap();
        assert_eq!(out, a("203.0.113.1:41641"), "the port is kept");
        assert_eq!(
            nat.outbound(&mut rng, a(HOST), a(OTHER)),
            Some(out),
            "one mapping"
        );
        assert_eq!(nat.inbound(a(PEER), 41641), Some(a(HOST)));
        assert_eq!(
            nat.inbound(a("198.51.100.2:9"), 41641),
            None,
            "another port"
        );
        assert_eq!(nat.counters.refused, 2);
        // A second socket wanting the same port gets another one.
        let out2 = nat
            .outbound(&mut rng, a("192.168.1.11:41641"), a(PEER))
            .unwrap();
        assert_ne!(out2.port(), 41641);
    }

    #[test]
    fn full_cone_lets_anyone_in_to_a_mapped_port() {
        let mut rng = Rng::new(1);
        let mut nat = Nat::new(NatConfig::full_cone(), "203.0.113.1".parse().unwrap());
        nat.outbound(&mut rng, a(HOST), a(PEER)).unwrap();
        assert_eq!(nat.inbound(a(OTHER), 41641), Some(a(HOST)));
    }

    #[test]
    fn symmetric_maps_each_destination_to_its_own_random_port() {
        let mut rng = Rng::new(1);
        let mut nat = Nat::new(NatConfig::symmetric(), "203.0.113.1".parse().unwrap());
        let p1 = nat.outbound(&mut rng, a(HOST), a(PEER)).unwrap();
        let p2 = nat.outbound(&mut rng, a(HOST), a(OTHER)).unwrap();
        assert_ne!(p1.port(), p2.port());
        assert_eq!(
            nat.outbound(&mut rng, a(HOST), a(PEER)),
            Some(p1),
            "kept per flow"
        );
        assert_eq!(nat.inbound(a(PEER), p1.port()), Some(a(HOST)));
        assert_eq!(
            nat.inbound(a(OTHER), p1.port()),
            None,
            "not its destination"
        );
    }

    #[test]
    fn a_rebinding_forgets_mappings_and_moves_the_port() {
        let mut rng = Rng::new(1);
        let mut nat = Nat::new(NatConfig::port_restricted(), "203.0.113.1".parse().unwrap());
        let before = nat.outbound(&mut rng, a(HOST), a(PEER)).unwrap();
        nat.rebind();
        assert_eq!(nat.inbound(a(PEER), before.port()), None);
        let after = nat.outbound(&mut rng, a(HOST), a(PEER)).unwrap();
        assert_ne!(after, before);
    }

    #[test]
    fn a_port_mapping_reaches_the_host_through_a_symmetric_nat_and_replies_keep_it() {
        let mut rng = Rng::new(1);
        let mut nat = Nat::new(NatConfig::symmetric(), "203.0.113.1".parse().unwrap());
        assert!(nat.add_forward(41641, a(HOST)));
        assert_eq!(nat.inbound(a(PEER), 41641), Some(a(HOST)));
        assert_eq!(
            nat.outbound(&mut rng, a(HOST), a(PEER)),
            Some(a("203.0.113.1:41641"))
        );
        assert_ne!(
            nat.outbound(&mut rng, a(HOST), a(OTHER)).unwrap().port(),
            41641
        );
    }

    #[test]
    fn a_udp_blocking_router_passes_nothing() {
        let mut rng = Rng::new(1);
        let mut nat = Nat::new(NatConfig::udp_blocked(), "203.0.113.1".parse().unwrap());
        assert_eq!(nat.outbound(&mut rng, a(HOST), a(PEER)), None);
        assert_eq!(nat.inbound(a(PEER), 41641), None);
        assert_eq!(nat.counters.blocked, 2);
    }
}
