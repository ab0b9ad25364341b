//! Sites: a public host on the internet bridge, or a NAT router (nftables) with hosts behind it.

use super::cmd::run_ok;
use super::netns::Netns;
use super::node::Host;
use super::upnp::{self, Miniupnpd};
use super::{nft_bin, Lab, UPNP_WAN_NET, WG_PORT};
use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteKind {
    /// The host sits on the internet bridge with a public address: no NAT, no filter.
    Public,
    /// Endpoint-independent mapping and filtering: masquerade (which keeps the source port when
    /// it is free) plus a dnat of UDP to the daemon's port back to the host.
    FullCone,
    /// Plain masquerade: endpoint-independent mapping (the port is kept), but conntrack only
    /// lets in replies from the exact address and port a host sent to.
    PortRestricted,
    /// `masquerade fully-random`: every new destination gets a new random public port, so the
    /// port a STUN server sees says nothing about the port a peer will see.
    Symmetric,
    /// A home router (port-restricted) behind a carrier-grade NAT (port-restricted too, as
    /// RFC 6888 asks of a CGN): the host's LAN is 192.168.K/24, the home router's WAN
    /// 100.64.K.2 in the CGN's shared address space, the CGN's WAN the site's public address.
    DoubleNat,
    /// Symmetric (fully-random masquerade), but the router runs miniupnpd: hosts may ask it
    /// for a port mapping with UPnP-IGD, NAT-PMP or PCP. Its WAN address is in
    /// [`UPNP_WAN_NET`] (miniupnpd refuses reserved ones such as the lab's 203.0.113.0/24).
    SymmetricUpnp,
    /// A home router as most are: port-restricted (plain masquerade), running miniupnpd, so a
    /// host may map ports on it (a PC hosting a network for friends). WAN in [`UPNP_WAN_NET`].
    PortRestrictedUpnp,
    /// A hotel network: port-restricted NAT that drops all UDP between the LAN and the WAN,
    /// so only TCP gets out (the control channel and the relay over TCP+TLS).
    UdpBlocked,
}

impl SiteKind {
    pub fn label(self) -> &'static str {
        match self {
            SiteKind::Public => "public",
            SiteKind::FullCone => "full_cone",
            SiteKind::PortRestricted => "port_restricted",
            SiteKind::Symmetric => "symmetric",
            SiteKind::DoubleNat => "double_nat",
            SiteKind::SymmetricUpnp => "symmetric_upnp",
            SiteKind::PortRestrictedUpnp => "port_restricted_upnp",
            SiteKind::UdpBlocked => "udp_blocked",
        }
    }

    /// A short form for host names.
    pub fn short(self) -> &'static str {
        match self {
            SiteKind::Public => "pub",
            SiteKind::FullCone => "fc",
            SiteKind::PortRestricted => "prc",
            SiteKind::Symmetric => "sym",
            SiteKind::DoubleNat => "dbl",
            SiteKind::SymmetricUpnp => "symu",
            SiteKind::PortRestrictedUpnp => "prcu",
            SiteKind::UdpBlocked => "udpb",
        }
    }

    /// Whether the router offers port mapping (runs miniupnpd).
    pub fn port_mapping(self) -> bool {
        matches!(self, SiteKind::SymmetricUpnp | SiteKind::PortRestrictedUpnp)
    }

    /// The router's nftables ruleset (`None` for a public host). Besides NAT, the router is a
    /// stateful firewall like a home router's: from the WAN only replies to what went out (and,
    /// for the full cone, the forwarded port) get through; everything else is dropped silently.
    fn ruleset(self, first_host: Ipv4Addr) -> Option<String> {
        let (masq, forward) = match self {
            SiteKind::Public => return None,
            SiteKind::FullCone => (
                "masquerade",
                format!(
                    "iifname \"wan\" udp dport {WG_PORT} counter dnat to {first_host}:{WG_PORT}"
                ),
            ),
            SiteKind::PortRestricted
            | SiteKind::PortRestrictedUpnp
            | SiteKind::DoubleNat
            | SiteKind::UdpBlocked => ("masquerade", String::new()),
            SiteKind::Symmetric | SiteKind::SymmetricUpnp => {
                ("masquerade fully-random", String::new())
            }
        };
        let upnp = if self.port_mapping() {
            upnp::ruleset()
        } else {
            String::new()
        };
        let udp_filter = match self {
            SiteKind::UdpBlocked => "meta l4proto udp counter drop",
            _ => "",
        };
        Some(format!(
            "table ip warren_lab {{
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    {forward}
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    oifname \"wan\" counter {masq}
  }}
  chain forward {{
    type filter hook forward priority filter; policy accept;
    {udp_filter}
    iifname \"wan\" ct state established,related accept
    iifname \"wan\" ct status dnat accept
    iifname \"wan\" counter drop
  }}
  chain input {{
    type filter hook input priority filter; policy accept;
    iifname \"wan\" ct state established,related accept
    iifname \"wan\" counter drop
  }}
}}
{upnp}"
        ))
    }
}

/// A site's namespaces (deleted on drop). Its hosts are returned separately by
/// [`Lab::add_site`] so a test can hold several mutably; they must be dropped first (declare
/// them after the site).
pub struct Site {
    pub kind: SiteKind,
    pub index: u8,
    /// The address the internet sees: the router's WAN address, or the public host's own.
    pub public_ip: Ipv4Addr,
    pub router_ns: Option<String>,
    /// The carrier-grade NAT in front of the router ([`SiteKind::DoubleNat`] only).
    pub cgn_ns: Option<String>,
    pub dir: PathBuf,
    /// The port-mapping daemon of a router that offers it; stopped before the namespaces go.
    pub miniupnpd: Option<Miniupnpd>,
    /// Hosts on the LAN that run no Warren ([`Lab::add_site_with_lan_hosts`]).
    pub lan_hosts: Vec<LanHost>,
    namespaces: Vec<Netns>,
}

/// A plain namespace on a site's LAN, no daemon in it (its namespace belongs to the [`Site`]).
#[derive(Debug, Clone)]
pub struct LanHost {
    pub ns: String,
    pub ip: Ipv4Addr,
    /// The LAN's broadcast address (192.168.K.255).
    pub broadcast: Ipv4Addr,
    pub dir: PathBuf,
}

impl Site {
    /// Builds site number `index` of `lab` and returns it with its hosts (daemons not started).
    pub(crate) fn build(
        lab: &Lab,
        kind: SiteKind,
        index: u8,
        hosts: usize,
        label: &str,
        bare: usize,
    ) -> (Site, Vec<Host>) {
        assert!(hosts >= 1);
        assert!(
            kind != SiteKind::Public || bare == 0,
            "a public site has no LAN for other hosts"
        );
        assert!(
            kind != SiteKind::Public || hosts == 1,
            "a public site has exactly one host"
        );
        let public_ip = if kind.port_mapping() {
            let [a, b, c, _] = UPNP_WAN_NET.octets();
            Ipv4Addr::new(a, b, c, 10 + index)
        } else {
            Ipv4Addr::new(203, 0, 113, 10 + index)
        };
        let dir = lab.dir.join(format!("s{index}-{label}"));
        fs::create_dir_all(&dir).expect("create site dir");
        let mut site = Site {
            kind,
            index,
            public_ip,
            router_ns: None,
            cgn_ns: None,
            dir,
            miniupnpd: None,
            lan_hosts: Vec::new(),
            namespaces: Vec::new(),
        };
        let port = format!("s{index}");
        let host_name = |i: usize| {
            if hosts == 1 {
                format!("{}-{label}", kind.short())
            } else {
                format!("{}-{label}{}", kind.short(), i + 1)
            }
        };
        if kind == SiteKind::Public {
            let ns = lab.ns_name(&format!("s{index}-h1"));
            site.namespaces.push(Netns::create(&ns));
            lab.plug(&port, &ns, "eth0", public_ip);
            let host = Host::new("h1", &host_name(0), &ns, public_ip, &site.dir);
            return (site, vec![host]);
        }

        let router = lab.ns_name(&format!("s{index}-r"));
        site.namespaces.push(Netns::create(&router));
        site.router_ns = Some(router.clone());
        if kind == SiteKind::DoubleNat {
            site.add_cgn(lab, &port, &router);
        } else {
            lab.plug(&port, &router, "wan", public_ip);
        }
        let lan_gw = Ipv4Addr::new(192, 168, index, 1);
        let lan_gw_cidr = format!("{lan_gw}/24");
        let host_ip = |i: usize| Ipv4Addr::new(192, 168, index, 2 + i as u8);
        // One host: a veth straight to it; several: a LAN bridge in the router.
        let bridged = hosts + bare > 1;
        if bridged {
            run_ok(
                "ip",
                &["-n", &router, "link", "add", "lan", "type", "bridge"],
            );
        }
        let mut out = Vec::new();
        for i in 0..hosts {
            let hlabel = format!("h{}", i + 1);
            let ns = lab.ns_name(&format!("s{index}-{hlabel}"));
            site.namespaces.push(Netns::create(&ns));
            let rdev = if bridged {
                hlabel.clone()
            } else {
                "lan".into()
            };
            run_ok(
                "ip",
                &[
                    "link", "add", &rdev, "netns", &router, "type", "veth", "peer", "name", "eth0",
                    "netns", &ns,
                ],
            );
            if bridged {
                run_ok(
                    "ip",
                    &["-n", &router, "link", "set", &rdev, "master", "lan"],
                );
            }
            run_ok("ip", &["-n", &router, "link", "set", &rdev, "up"]);
            let cidr = format!("{}/24", host_ip(i));
            // With its broadcast address, as DHCP gives home PCs theirs.
            run_ok(
                "ip",
                &["-n", &ns, "addr", "add", &cidr, "brd", "+", "dev", "eth0"],
            );
            run_ok("ip", &["-n", &ns, "link", "set", "eth0", "up"]);
            let gw = lan_gw.to_string();
            run_ok("ip", &["-n", &ns, "route", "add", "default", "via", &gw]);
            out.push(Host::new(
                &hlabel,
                &host_name(i),
                &ns,
                host_ip(i),
                &site.dir,
            ));
        }
        for j in 0..bare {
            let blabel = format!("b{}", j + 1);
            let ns = lab.ns_name(&format!("s{index}-{blabel}"));
            site.namespaces.push(Netns::create(&ns));
            run_ok(
                "ip",
                &[
                    "link", "add", &blabel, "netns", &router, "type", "veth", "peer", "name",
                    "eth0", "netns", &ns,
                ],
            );
            run_ok(
                "ip",
                &["-n", &router, "link", "set", &blabel, "master", "lan"],
            );
            run_ok("ip", &["-n", &router, "link", "set", &blabel, "up"]);
            let ip = host_ip(hosts + j);
            let cidr = format!("{ip}/24");
            run_ok(
                "ip",
                &["-n", &ns, "addr", "add", &cidr, "brd", "+", "dev", "eth0"],
            );
            run_ok("ip", &["-n", &ns, "link", "set", "eth0", "up"]);
            let gw = lan_gw.to_string();
            run_ok("ip", &["-n", &ns, "route", "add", "default", "via", &gw]);
            let dir = site.dir.join(&blabel);
            fs::create_dir_all(&dir).expect("create LAN host dir");
            site.lan_hosts.push(LanHost {
                ns,
                ip,
                broadcast: Ipv4Addr::new(192, 168, index, 255),
                dir,
            });
        }
        run_ok(
            "ip",
            &[
                "-n",
                &router,
                "addr",
                "add",
                &lan_gw_cidr,
                "brd",
                "+",
                "dev",
                "lan",
            ],
        );
        run_ok("ip", &["-n", &router, "link", "set", "lan", "up"]);
        run_ok(
            "ip",
            &[
                "netns",
                "exec",
                &router,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ],
        );
        let rules = kind.ruleset(host_ip(0)).expect("a NAT kind");
        let file = site.dir.join("router.nft");
        fs::write(&file, rules).expect("write the ruleset");
        run_ok(
            "ip",
            &[
                "netns",
                "exec",
                &router,
                nft_bin(),
                "-f",
                file.to_str().unwrap(),
            ],
        );
        if kind.port_mapping() {
            let lan = format!("192.168.{index}.0/24");
            site.miniupnpd = Some(Miniupnpd::start(&router, &lan, &site.dir));
        }
        (site, out)
    }

    /// Puts a carrier-grade NAT between the internet and `router`: the CGN holds the site's
    /// public address (bridge port `port`) and gives the router's `wan` 100.64.K.2/24.
    fn add_cgn(&mut self, lab: &Lab, port: &str, router: &str) {
        let cgn = lab.ns_name(&format!("s{}-cgn", self.index));
        self.namespaces.push(Netns::create(&cgn));
        self.cgn_ns = Some(cgn.clone());
        lab.plug(port, &cgn, "wan", self.public_ip);
        run_ok(
            "ip",
            &[
                "link", "add", "lan", "netns", &cgn, "type", "veth", "peer", "name", "wan",
                "netns", router,
            ],
        );
        let inside = |host: u8| Ipv4Addr::new(100, 64, self.index, host);
        let cgn_cidr = format!("{}/24", inside(1));
        let router_cidr = format!("{}/24", inside(2));
        run_ok("ip", &["-n", &cgn, "addr", "add", &cgn_cidr, "dev", "lan"]);
        run_ok("ip", &["-n", &cgn, "link", "set", "lan", "up"]);
        run_ok(
            "ip",
            &["-n", router, "addr", "add", &router_cidr, "dev", "wan"],
        );
        run_ok("ip", &["-n", router, "link", "set", "wan", "up"]);
        let gw = inside(1).to_string();
        run_ok("ip", &["-n", router, "route", "add", "default", "via", &gw]);
        run_ok(
            "ip",
            &[
                "netns",
                "exec",
                &cgn,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ],
        );
        let rules = SiteKind::PortRestricted
            .ruleset(inside(2))
            .expect("a NAT kind");
        let file = self.dir.join("cgn.nft");
        fs::write(&file, rules).expect("write the CGN ruleset");
        run_ok(
            "ip",
            &[
                "netns",
                "exec",
                &cgn,
                nft_bin(),
                "-f",
                file.to_str().unwrap(),
            ],
        );
    }

    /// The router's ruleset with its counters (NATed, forwarded, dropped), for failure reports.
    pub fn describe_router(&self) -> String {
        let Some(router) = &self.router_ns else {
            return format!("site s{} ({}): no router", self.index, self.kind.label());
        };
        let mut out = String::new();
        for (role, ns) in [("router", Some(router)), ("CGN", self.cgn_ns.as_ref())] {
            let Some(ns) = ns else { continue };
            let o =
                super::cmd::run_quiet("ip", &["netns", "exec", ns, nft_bin(), "list", "ruleset"]);
            out += &format!(
                "site s{} ({}) {role} {ns}:\n{}\n",
                self.index,
                self.kind.label(),
                o.map(|o| o.stdout).unwrap_or_else(|e| e)
            );
        }
        out
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.miniupnpd = None;
        // Deleting a namespace takes its veth ends (and so the bridge ports) with it.
        self.namespaces.clear();
    }
}
