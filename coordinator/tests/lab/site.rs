//! Sites: a public host on the internet bridge, or a NAT router (nftables) with hosts behind it.

use super::cmd::run_ok;
use super::netns::Netns;
use super::node::Host;
use super::{nft_bin, Lab, WG_PORT};
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
            SiteKind::UdpBlocked => "udpb",
        }
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
            SiteKind::PortRestricted => ("masquerade", String::new()),
            SiteKind::Symmetric => ("masquerade fully-random", String::new()),
            SiteKind::UdpBlocked => ("masquerade", String::new()),
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
"
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
    pub dir: PathBuf,
    namespaces: Vec<Netns>,
}

impl Site {
    /// Builds site number `index` of `lab` and returns it with its hosts (daemons not started).
    pub(crate) fn build(
        lab: &Lab,
        kind: SiteKind,
        index: u8,
        hosts: usize,
        label: &str,
    ) -> (Site, Vec<Host>) {
        assert!(hosts >= 1);
        assert!(
            kind != SiteKind::Public || hosts == 1,
            "a public site has exactly one host"
        );
        let public_ip = Ipv4Addr::new(203, 0, 113, 10 + index);
        let dir = lab.dir.join(format!("s{index}-{label}"));
        fs::create_dir_all(&dir).expect("create site dir");
        let mut site = Site {
            kind,
            index,
            public_ip,
            router_ns: None,
            dir,
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
        lab.plug(&port, &router, "wan", public_ip);
        let lan_gw = Ipv4Addr::new(192, 168, index, 1);
        let lan_gw_cidr = format!("{lan_gw}/24");
        let host_ip = |i: usize| Ipv4Addr::new(192, 168, index, 2 + i as u8);
        // One host: a veth straight to it; several: a LAN bridge in the router.
        if hosts > 1 {
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
            let rdev = if hosts > 1 {
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
            if hosts > 1 {
                run_ok(
                    "ip",
                    &["-n", &router, "link", "set", &rdev, "master", "lan"],
                );
            }
            run_ok("ip", &["-n", &router, "link", "set", &rdev, "up"]);
            let cidr = format!("{}/24", host_ip(i));
            run_ok("ip", &["-n", &ns, "addr", "add", &cidr, "dev", "eth0"]);
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
        run_ok(
            "ip",
            &["-n", &router, "addr", "add", &lan_gw_cidr, "dev", "lan"],
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
        (site, out)
    }

    /// The router's ruleset with its counters (NATed, forwarded, dropped), for failure reports.
    pub fn describe_router(&self) -> String {
        match &self.router_ns {
            None => format!("site s{} ({}): no router", self.index, self.kind.label()),
            Some(r) => {
                let o = super::cmd::run_quiet(
                    "ip",
                    &["netns", "exec", r, nft_bin(), "list", "ruleset"],
                );
                format!(
                    "site s{} ({}) router {r}:\n{}",
                    self.index,
                    self.kind.label(),
                    o.map(|o| o.stdout).unwrap_or_else(|e| e)
                )
            }
        }
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        // Deleting a namespace takes its veth ends (and so the bridge ports) with it.
        self.namespaces.clear();
    }
}
