//! Sites as the NAT lab builds them (`lab/src/site.rs`): a public host, or a
//! router of some kind with hosts on its LAN behind it.

use crate::fabric::{HostId, Iface, NatId, Router, SegId, INTERNET};
use crate::host::MAIN_PORT;
use crate::nat::{Nat, NatConfig};
use crate::World;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SiteKind {
    /// On the internet with a public address: no NAT, no filter.
    Public,
    /// Endpoint-independent mapping and filtering.
    FullCone,
    /// Endpoint-independent mapping (the port kept), replies only (plain masquerade).
    PortRestricted,
    /// A new random port per destination (`masquerade fully-random`).
    Symmetric,
    /// A port-restricted home router behind a port-restricted carrier-grade NAT.
    DoubleNat,
    /// Port-restricted, and no UDP gets out (a hotel).
    UdpBlocked,
    /// Symmetric, but the host holds a port mapping on the router (UPnP-IGD, NAT-PMP, PCP).
    SymmetricUpnp,
    /// Port-restricted, with a port mapping.
    PortRestrictedUpnp,
}

impl SiteKind {
    pub const ALL: [SiteKind; 8] = [
        SiteKind::Public,
        SiteKind::FullCone,
        SiteKind::PortRestricted,
        SiteKind::Symmetric,
        SiteKind::DoubleNat,
        SiteKind::UdpBlocked,
        SiteKind::SymmetricUpnp,
        SiteKind::PortRestrictedUpnp,
    ];

    pub fn label(self) -> &'static str {
        match self {
            SiteKind::Public => "public",
            SiteKind::FullCone => "full_cone",
            SiteKind::PortRestricted => "port_restricted",
            SiteKind::Symmetric => "symmetric",
            SiteKind::DoubleNat => "double_nat",
            SiteKind::UdpBlocked => "udp_blocked",
            SiteKind::SymmetricUpnp => "symmetric_upnp",
            SiteKind::PortRestrictedUpnp => "port_restricted_upnp",
        }
    }

    fn router(self) -> Option<NatConfig> {
        match self {
            SiteKind::Public => None,
            SiteKind::FullCone => Some(NatConfig::full_cone()),
            SiteKind::PortRestricted | SiteKind::DoubleNat | SiteKind::PortRestrictedUpnp => {
                Some(NatConfig::port_restricted())
            }
            SiteKind::Symmetric | SiteKind::SymmetricUpnp => Some(NatConfig::symmetric()),
            SiteKind::UdpBlocked => Some(NatConfig::udp_blocked()),
        }
    }

    fn port_mapping(self) -> bool {
        matches!(self, SiteKind::SymmetricUpnp | SiteKind::PortRestrictedUpnp)
    }
}

/// What [`World::add_site`] built.
#[derive(Debug, Clone)]
pub struct Site {
    pub kind: SiteKind,
    pub hosts: Vec<HostId>,
    /// The site's router (the home router of a double NAT), and the carrier's NAT.
    pub router: Option<NatId>,
    pub cgn: Option<NatId>,
    /// The LAN behind the router.
    pub lan: Option<SegId>,
    /// The address the internet sees.
    pub public_ip: IpAddr,
}

/// One-way delay between a host and its LAN, and of a public host's uplink.
const LAN_LATENCY: Duration = Duration::from_millis(1);
const PUBLIC_LATENCY: Duration = Duration::from_millis(10);

impl World {
    /// A site of `kind` with `hosts` hosts (a public site has one per host, each its own
    /// address), named `label0`, `label1`…; the hosts are not started.
    pub fn add_site(&mut self, kind: SiteKind, hosts: usize, label: &str) -> Site {
        let k = self.fabric.routers.len() as u8 + self.hosts.len() as u8 + 10;
        let public_ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, k));
        let Some(config) = kind.router() else {
            let ids = (0..hosts)
                .map(|i| {
                    let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, k + i as u8));
                    let iface = Iface {
                        seg: INTERNET,
                        ip,
                        gateway: None,
                        latency: PUBLIC_LATENCY,
                        up: true,
                    };
                    self.add_host(&format!("{label}{i}"), vec![iface])
                })
                .collect();
            return Site {
                kind,
                hosts: ids,
                router: None,
                cgn: None,
                lan: None,
                public_ip,
            };
        };
        let (outside, outside_gw, cgn) = if kind == SiteKind::DoubleNat {
            let carrier = self.fabric.add_segment(format!("{label}-carrier"));
            let cgn = self.fabric.add_router(Router {
                nat: Nat::new(NatConfig::port_restricted(), public_ip),
                inside: carrier,
                outside: INTERNET,
                gateway: None,
                up: true,
            });
            (carrier, Some(cgn), Some(cgn))
        } else {
            (INTERNET, None, None)
        };
        let router_ip = if cgn.is_some() {
            IpAddr::V4(Ipv4Addr::new(100, 64, k, 2))
        } else {
            public_ip
        };
        let lan = self.fabric.add_segment(format!("{label}-lan"));
        let router = self.fabric.add_router(Router {
            nat: Nat::new(config, router_ip),
            inside: lan,
            outside,
            gateway: outside_gw,
            up: true,
        });
        let ids = (0..hosts)
            .map(|i| {
                let ip = IpAddr::V4(Ipv4Addr::new(192, 168, k, 10 + i as u8));
                let iface = Iface {
                    seg: lan,
                    ip,
                    gateway: Some(router),
                    latency: LAN_LATENCY,
                    up: true,
                };
                let h = self.add_host(&format!("{label}{i}"), vec![iface]);
                if kind.port_mapping() {
                    self.map_port(h, router, SocketAddr::new(ip, MAIN_PORT));
                }
                h
            })
            .collect();
        Site {
            kind,
            hosts: ids,
            router: Some(router),
            cgn,
            lan: Some(lan),
            public_ip,
        }
    }

    /// Host `h` asks router `n` for a mapping of its socket `inside` (as the daemon's
    /// port-mapping client does): the same port outside when free, else the next free one.
    pub fn map_port(&mut self, h: HostId, n: NatId, inside: SocketAddr) {
        let nat = &mut self.fabric.routers[n].nat;
        let port = (inside.port()..=u16::MAX)
            .find(|&p| nat.add_forward(p, inside))
            .expect("a free port");
        let external = SocketAddr::new(nat.outside, port);
        self.hosts[h].node.set_port_mapping(Some(external));
    }

    /// Starts every host of `sites`, and lets them connect.
    pub fn start_all(&mut self, hosts: &[HostId]) {
        for &h in hosts {
            self.start(h);
        }
    }
}
