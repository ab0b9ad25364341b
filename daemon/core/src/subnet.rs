//! Subnet routes (issue 19), the decisions without I/O: which approved LAN prefixes of our
//! peers this host routes through them, and — on a host that advertises prefixes — which
//! overlay sources it forwards into which of them, as an nftables ruleset.

use ipnet::IpNet;
use std::fmt::Write as _;
use std::net::IpAddr;
use warren_proto::key::NodeKey;

pub use warren_coordinator_core::registry::routes::{overlaps, route_prefix};

/// A prefix of one of this host's own interfaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanPrefix {
    pub iface: String,
    pub net: IpNet,
}

/// A peer's route the owner of a shared network approved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offered {
    pub peer: NodeKey,
    pub name: String,
    pub prefix: IpNet,
}

/// Why an approved route is not used here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// It overlaps a LAN this host is on: its addresses are reached there, not through Warren.
    OwnLan(LanPrefix),
    /// Another peer's route covers the same addresses and was taken first.
    RoutedBy(String),
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::OwnLan(l) => write!(
                f,
                "not routed here: it overlaps this host's own network {} on {} (those addresses \
                 are reached there); renumber one of the two LANs to reach it",
                l.net, l.iface
            ),
            Skip::RoutedBy(name) => write!(
                f,
                "not routed here: {name} routes the same addresses; ask the owner to approve \
                 only one of them"
            ),
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    pub routed: Vec<(NodeKey, IpNet)>,
    pub skipped: Vec<(NodeKey, IpNet, Skip)>,
}

impl Plan {
    /// The prefixes routed through `peer`.
    pub fn through(&self, peer: &NodeKey) -> Vec<IpNet> {
        self.routed
            .iter()
            .filter(|(k, _)| k == peer)
            .map(|(_, n)| *n)
            .collect()
    }
}

/// Which offered routes this host uses: none that overlaps one of its own LANs, and of two that
/// overlap each other the one of the peer whose name sorts first (every host decides alike).
pub fn plan(offers: &[Offered], lans: &[LanPrefix]) -> Plan {
    let mut offers = offers.to_vec();
    offers.sort_by(|a, b| (&a.name, a.peer, a.prefix).cmp(&(&b.name, b.peer, b.prefix)));
    let mut out = Plan::default();
    let mut taken: Vec<(IpNet, String)> = Vec::new();
    for o in offers {
        if let Some(l) = lans.iter().find(|l| overlaps(&l.net, &o.prefix)) {
            out.skipped
                .push((o.peer, o.prefix, Skip::OwnLan(l.clone())));
        } else if let Some((_, by)) = taken.iter().find(|(n, _)| overlaps(n, &o.prefix)) {
            out.skipped
                .push((o.peer, o.prefix, Skip::RoutedBy(by.clone())));
        } else {
            taken.push((o.prefix, o.name.clone()));
            out.routed.push((o.peer, o.prefix));
        }
    }
    out
}

/// One of our advertised prefixes and the overlay addresses that may reach it through us: the
/// peers that share a network whose owner approved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub prefix: IpNet,
    pub sources: Vec<IpAddr>,
}

/// What this host forwards: `approved` (network, prefix) pairs of our own routes, `peers` as
/// (overlay addresses, networks shared with us).
pub fn forwarding(
    approved: &[(String, IpNet)],
    peers: &[(Vec<IpAddr>, Vec<String>)],
) -> Vec<Forward> {
    let mut prefixes: Vec<IpNet> = approved.iter().map(|(_, p)| *p).collect();
    prefixes.sort();
    prefixes.dedup();
    prefixes
        .into_iter()
        .map(|prefix| {
            let nets: Vec<&String> = approved
                .iter()
                .filter(|(_, p)| *p == prefix)
                .map(|(n, _)| n)
                .collect();
            let mut sources: Vec<IpAddr> = peers
                .iter()
                .filter(|(_, shared)| shared.iter().any(|s| nets.contains(&s)))
                .flat_map(|(ips, _)| ips.iter().copied())
                .filter(|ip| ip.is_ipv4() == prefix.addr().is_ipv4())
                .collect();
            sources.sort();
            sources.dedup();
            Forward { prefix, sources }
        })
        .collect()
}

/// The nftables table that makes this host a router for `forwards`, entering from `tun`:
/// - forward: from the overlay only the allowed sources into their prefix, nothing else; into
///   the overlay only replies (the LAN cannot open connections to members);
/// - postrouting: what enters a prefix is masqueraded, so the LAN's hosts answer this host
///   and need no route back to the overlay.
///
/// Priority `filter - 5` runs before the host's own forward rules: what this table accepts
/// may still be dropped by them (a firewall stays in charge), what it drops is dropped.
pub fn nft_ruleset(table: &str, tun: &str, forwards: &[Forward]) -> String {
    let mut r = format!("table inet {table} {{\n  chain forward {{\n    type filter hook forward priority filter - 5; policy accept;\n");
    for f in forwards.iter().filter(|f| !f.sources.is_empty()) {
        let fam = family(&f.prefix);
        let sources: Vec<String> = f.sources.iter().map(|s| s.to_string()).collect();
        let _ = writeln!(
            r,
            "    iifname \"{tun}\" {fam} saddr {{ {} }} {fam} daddr {} accept",
            sources.join(", "),
            f.prefix
        );
    }
    let _ = writeln!(r, "    iifname \"{tun}\" counter drop");
    let _ = writeln!(
        r,
        "    oifname \"{tun}\" ct state established,related accept"
    );
    let _ = writeln!(r, "    oifname \"{tun}\" counter drop\n  }}");
    let _ = writeln!(
        r,
        "  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;"
    );
    for f in forwards.iter().filter(|f| !f.sources.is_empty()) {
        let _ = writeln!(
            r,
            "    iifname \"{tun}\" {} daddr {} masquerade",
            family(&f.prefix),
            f.prefix
        );
    }
    r.push_str("  }\n}\n");
    r
}

fn family(net: &IpNet) -> &'static str {
    match net {
        IpNet::V4(_) => "ip",
        IpNet::V6(_) => "ip6",
    }
}

#[cfg(test)]
mod tests;
