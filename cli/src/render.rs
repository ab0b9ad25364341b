//! What a person reads: the daemon's answers as text. Pure functions, tested without a daemon.

use std::collections::BTreeMap;
use warren_proto::api::{
    ControlTransport, CoordinatorStatus, InviteInfo, JoinRequestInfo, NetcheckReport, PathKind,
    PeerStatus, PingReply, Status, TunnelState,
};
use warren_proto::control::msg::NatKind;

mod games;
pub use games::games;

/// The heading of the group of peers that come from the config file, not a network.
pub const STATIC_GROUP: &str = "static peers (config file)";

pub fn status(s: &Status) -> String {
    let mut out = String::new();
    let v6 = s
        .self_
        .overlay_ip6
        .map(|ip| format!(" {ip}"))
        .unwrap_or_default();
    let state = match s.state {
        TunnelState::Up => "up",
        TunnelState::Down => "DOWN (`warren up` turns it on)",
    };
    out.push_str(&format!(
        "{} {}{v6} — Warren is {state}\n",
        s.self_.name, s.self_.overlay_ip
    ));
    let coords = coordinators(s);
    if coords.is_empty() {
        out.push_str("coordinator: none (`warren up --coordinator HOST:PORT --coordinator-key KEY` or `warren up INVITE`)\n");
    }
    for c in &coords {
        out.push_str(&coordinator_line(c, s.state));
    }
    if let Some(h) = &s.hosting {
        out.push_str(&format!(
            "hosting {} on this PC (coordinator and relay{}): {}\n",
            h.networks.join(", "),
            if h.running { "" } else { ", restarting" },
            h.reachability.message
        ));
    }
    if let Some(r) = s.self_.reflexive {
        out.push_str(&format!(
            "public address {r} ({})\n",
            nat_words(s.self_.nat)
        ));
    }
    let b = &s.broadcast;
    if b.sent + b.received + b.rate_limited > 0 {
        out.push_str(&format!(
            "broadcast/multicast: {} sent ({} copies), {} received{}\n",
            b.sent,
            b.copies,
            b.received,
            if b.rate_limited > 0 {
                format!(", {} copies over the rate limit", b.rate_limited)
            } else {
                String::new()
            }
        ));
    }
    if let Some(m) = s.self_.mapped {
        out.push_str(&format!("port mapping {m} (the router forwards it here)\n"));
    }
    if s.self_.address_moves > 0 {
        out.push_str(&format!(
            "moved to a new overlay address {} time{} (another host had this one)\n",
            s.self_.address_moves,
            if s.self_.address_moves == 1 { "" } else { "s" }
        ));
    }
    for c in &coords {
        out.push_str(&owner_lines(c));
    }
    let groups = group_by_network(s);
    if groups.is_empty() {
        if !coords.is_empty() && coords.iter().all(|c| c.networks.is_empty()) {
            out.push_str(
                "no networks yet: `warren create NET` or `warren join NET` (or an invite code)\n",
            );
        } else {
            out.push_str("no peers\n");
        }
        return out;
    }
    for (name, peers) in groups {
        let online = peers.iter().filter(|p| p.online).count();
        let tags = name
            .strip_prefix("network ")
            .map(|net| network_tags(&coords, net, s.state))
            .unwrap_or_default();
        out.push_str(&format!(
            "\n{name} — {} peer{}, {online} online{tags}\n",
            peers.len(),
            if peers.len() == 1 { "" } else { "s" }
        ));
        if peers.is_empty() {
            out.push_str("  (nobody else here yet: `warren invite` makes a code to share)\n");
            continue;
        }
        out.push_str(&peer_table(&peers));
        for p in peers.iter().filter(|p| p.address_clash) {
            out.push_str(&format!(
                "  {}: address clash with another peer: not reachable until one of them moves \
                 to a new address (within seconds)\n",
                p.name
            ));
        }
    }
    out
}

/// Every coordinator whose networks this host is in. An older daemon fills only
/// `coordinator`, so that one alone stands for the list then.
pub fn coordinators(s: &Status) -> Vec<&CoordinatorStatus> {
    if s.coordinators.is_empty() {
        s.coordinator.iter().collect()
    } else {
        s.coordinators.iter().collect()
    }
}

fn coordinator_line(c: &CoordinatorStatus, state: TunnelState) -> String {
    if c.connected {
        // Another coordinator on the same database, when the first did not answer.
        let through = match &c.connected_to {
            Some(t) if c.alternates.contains(t) => format!(" through {t}"),
            _ => String::new(),
        };
        format!(
            "coordinator {}: connected{through}{}{}\n",
            c.address,
            match c.transport {
                Some(ControlTransport::Quic) => " over QUIC",
                Some(ControlTransport::Tcp) =>
                    " over TCP (no UDP to the coordinator; the relay goes over it too)",
                None => "",
            },
            c.rtt_ms
                .map(|r| format!(", RTT {r} ms"))
                .unwrap_or_default()
        )
    } else if state == TunnelState::Down {
        format!(
            "coordinator {}: disconnected while Warren is down\n",
            c.address
        )
    } else {
        format!(
            "coordinator {}: not connected ({})\n",
            c.address,
            c.last_error.as_deref().unwrap_or("connecting")
        )
    }
}

/// " (yours, locked)", " (locked)" or nothing, at the end of a network's heading (after the
/// counts, so the heading's start stays what scripts and tests look for). With several
/// coordinators the heading also says whose network it is, and whether that one is away (the
/// coordinator lines above say it already when there is only one).
fn network_tags(coords: &[&CoordinatorStatus], net: &str, state: TunnelState) -> String {
    let mut tags = Vec::new();
    if coords.iter().any(|c| c.owned.iter().any(|n| n == net)) {
        tags.push("yours".to_string());
    }
    if coords.iter().any(|c| c.locked.iter().any(|n| n == net)) {
        tags.push("locked".to_string());
    }
    if coords.len() > 1 {
        for c in coords
            .iter()
            .filter(|c| c.networks.iter().any(|n| n == net))
        {
            tags.push(if c.connected || state == TunnelState::Down {
                format!("coordinator {}", c.address)
            } else {
                format!(
                    "coordinator {} not connected — existing connections keep working",
                    c.address
                )
            });
        }
    }
    if tags.is_empty() {
        String::new()
    } else {
        format!(" ({})", tags.join(", "))
    }
}

/// The lines about waiting: hosts that ask to join this host's networks, and networks this
/// host asked to join; plus owned networks it is not in.
fn owner_lines(c: &CoordinatorStatus) -> String {
    let mut out = String::new();
    for r in &c.requests {
        out.push_str(&format!(
            "{} asks to join {}: `warren approve {} {}` or `warren deny {} {}`\n",
            r.name, r.network, r.network, r.name, r.network, r.name
        ));
    }
    for n in &c.waiting {
        out.push_str(&format!(
            "waiting for the owner of {n} to approve this host (it is let in as soon as they \
             do; `warren leave {n}` withdraws the request)\n"
        ));
    }
    for n in c.owned.iter().filter(|n| !c.networks.contains(n)) {
        out.push_str(&format!(
            "network {n} is yours but this host left it (`warren join {n}` to rejoin, \
             `warren delete {n}` to delete it)\n"
        ));
    }
    out
}

/// `warren requests`: the hosts waiting to join networks this host owns.
pub fn requests(list: &[JoinRequestInfo], now: u64) -> String {
    if list.is_empty() {
        return "no one is waiting to join your networks (`warren lock NET` makes new members \
                wait for your approval)\n"
            .into();
    }
    let rows: Vec<[String; 4]> = list
        .iter()
        .map(|r| {
            let key = r.public_key.to_string();
            [
                r.network.clone(),
                r.name.clone(),
                format!("{}…", &key[..8]),
                format!("{} ago", short_duration(now.saturating_sub(r.asked_at))),
            ]
        })
        .collect();
    let mut out = table(&["NETWORK", "NAME", "KEY", "ASKED"], &rows);
    out.push_str("answer with `warren approve NET NAME` or `warren deny NET NAME`\n");
    out
}

/// `warren invite NET --list`: the network's unexpired invites.
pub fn invites(network: &str, list: &[InviteInfo], now: u64) -> String {
    if list.is_empty() {
        return format!(
            "no unexpired invites for {network} (`warren invite {network}` makes one)\n"
        );
    }
    let rows: Vec<[String; 4]> = list
        .iter()
        .map(|i| {
            [
                i.id.clone(),
                i.created_by.clone(),
                format!("{} ago", short_duration(now.saturating_sub(i.created_at))),
                match i.expires {
                    None => "never (until revoked)".into(),
                    Some(t) => format!("in {}", short_duration(t.saturating_sub(now))),
                },
            ]
        })
        .collect();
    let mut out = table(&["ID", "MADE BY", "MADE", "EXPIRES"], &rows);
    out.push_str(&format!(
        "revoke one with `warren invite {network} --revoke ID`\n"
    ));
    out
}

/// Left-aligned columns, two spaces apart.
fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    table_aligned(header, rows, [false; N])
}

/// Columns two spaces apart; those marked in `right` (counters) right-aligned so their digits
/// line up.
fn table_aligned<const N: usize>(
    header: &[&str; N],
    rows: &[[String; N]],
    right: [bool; N],
) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, (c, w)) in cells.iter().zip(&width).enumerate() {
            if right[i] {
                l.push_str(&format!("{c:>w$}"));
            } else if i + 1 == N {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}"));
            }
            if i + 1 < N {
                l.push_str("  ");
            }
        }
        l.push('\n');
        l
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// Networks in name order (empty ones too), then the static peers; a peer in two networks is
/// listed under both.
fn group_by_network(s: &Status) -> Vec<(String, Vec<&PeerStatus>)> {
    let mut by_net: BTreeMap<String, Vec<&PeerStatus>> = BTreeMap::new();
    for c in coordinators(s) {
        for n in &c.networks {
            by_net.entry(n.clone()).or_default();
        }
    }
    let mut statics = Vec::new();
    for p in &s.peers {
        if p.networks.is_empty() {
            statics.push(p);
        }
        for n in &p.networks {
            by_net.entry(n.clone()).or_default().push(p);
        }
    }
    let mut groups: Vec<_> = by_net
        .into_iter()
        .map(|(n, peers)| (format!("network {n}"), peers))
        .collect();
    if !statics.is_empty() {
        groups.push((STATIC_GROUP.to_string(), statics));
    }
    groups
}

fn peer_table(peers: &[&PeerStatus]) -> String {
    let header = [
        "NAME",
        "OVERLAY IP",
        "ONLINE",
        "PATH",
        "ENDPOINT",
        "RTT",
        "HANDSHAKE",
        "RX",
        "TX",
    ];
    let rows: Vec<[String; 9]> = peers
        .iter()
        .map(|p| {
            [
                p.name.clone(),
                p.overlay_ip.map(|i| i.to_string()).unwrap_or("-".into()),
                if p.online { "yes" } else { "no" }.into(),
                match (p.path, p.relay, p.transport.as_deref()) {
                    (PathKind::Relay, Some(r), _) => format!("relay via {r}"),
                    (PathKind::Direct, _, Some("tcp")) => "direct over TCP".into(),
                    (path, _, _) => path_words(path).into(),
                },
                p.endpoint.map(|e| e.to_string()).unwrap_or("-".into()),
                p.rtt_ms.map(|r| format!("{r} ms")).unwrap_or("-".into()),
                p.last_handshake_secs
                    .map(|s| format!("{} ago", short_duration(s)))
                    .unwrap_or("never".into()),
                human_bytes(p.rx_bytes),
                human_bytes(p.tx_bytes),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>| {
        let mut l = String::from(" ");
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            // Counters are right-aligned, the rest left.
            if i >= 7 {
                l.push_str(&format!(" {c:>w$}"));
            } else {
                l.push_str(&format!(" {c:<w$}"));
            }
        }
        l.trim_end().to_string() + "\n"
    };
    out.push_str(&line(header.to_vec()));
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

pub fn path_words(p: PathKind) -> &'static str {
    match p {
        PathKind::Direct => "direct",
        PathKind::Lan => "LAN",
        PathKind::Relay => "relay",
        PathKind::None => "-",
    }
}

pub fn nat_words(n: NatKind) -> &'static str {
    match n {
        NatKind::EndpointIndependent => {
            "endpoint-independent mapping: peers can reach this host directly"
        }
        NatKind::Symmetric => "symmetric NAT: a new port per destination, direct paths are harder",
        NatKind::Unknown => "NAT kind unknown",
    }
}

/// `warren networks`: one line per network with its peers, and whose network it is when this
/// host is in networks of several coordinators.
pub fn networks(s: &Status) -> String {
    let groups: Vec<_> = group_by_network(s)
        .into_iter()
        .filter(|(n, _)| n != STATIC_GROUP)
        .collect();
    if groups.is_empty() {
        return "not in any network: `warren create NET` or `warren join NET`\n".into();
    }
    let coords = coordinators(s);
    let width = groups
        .iter()
        .map(|(n, _)| n.len() - 8)
        .max()
        .unwrap_or(0)
        .max(7);
    // The column only when it tells networks apart, so one coordinator's table stays as it was.
    let hosts: Option<Vec<String>> = (coords.len() > 1).then(|| {
        groups
            .iter()
            .map(|(n, _)| network_coordinators(&coords, &n[8..], s.state))
            .collect()
    });
    let host_width = hosts
        .iter()
        .flatten()
        .map(|h| h.chars().count())
        .max()
        .unwrap_or(0)
        .max("COORDINATOR".len());
    let mut out = format!("{:<width$}  PEERS  ONLINE  ", "NETWORK");
    if hosts.is_some() {
        out.push_str(&format!("{:<host_width$}  ", "COORDINATOR"));
    }
    out.push_str("MEMBERS\n");
    for (i, (n, peers)) in groups.iter().enumerate() {
        let online = peers.iter().filter(|p| p.online).count();
        let names: Vec<_> = peers.iter().map(|p| p.name.as_str()).collect();
        out.push_str(&format!(
            "{:<width$}  {:>5}  {:>6}  ",
            &n[8..],
            peers.len(),
            online
        ));
        if let Some(h) = &hosts {
            out.push_str(&format!("{:<host_width$}  ", h[i]));
        }
        out.push_str(&names.join(", "));
        out.push('\n');
    }
    out
}

/// The coordinators that list `net`, "(not connected)" after those that are away; "-" for a
/// network only peers name.
fn network_coordinators(coords: &[&CoordinatorStatus], net: &str, state: TunnelState) -> String {
    let list: Vec<String> = coords
        .iter()
        .filter(|c| c.networks.iter().any(|n| n == net))
        .map(|c| {
            if c.connected || state == TunnelState::Down {
                c.address.clone()
            } else {
                format!("{} (not connected)", c.address)
            }
        })
        .collect();
    if list.is_empty() {
        "-".into()
    } else {
        list.join(", ")
    }
}

/// The JSON form of `warren networks`.
pub fn networks_json(s: &Status) -> serde_json::Value {
    let coords = coordinators(s);
    let list: Vec<_> = group_by_network(s)
        .into_iter()
        .filter(|(n, _)| n != STATIC_GROUP)
        .map(|(n, peers)| {
            let net = &n[8..];
            serde_json::json!({
                "name": net,
                "peers": peers.iter().map(|p| serde_json::json!({
                    "name": p.name,
                    "overlay_ip": p.overlay_ip,
                    "online": p.online,
                })).collect::<Vec<_>>(),
                "online": peers.iter().filter(|p| p.online).count(),
                "coordinators": coords
                    .iter()
                    .filter(|c| c.networks.iter().any(|x| x == net))
                    .map(|c| c.address.as_str())
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::Value::Array(list)
}

pub fn pong(r: &PingReply) -> String {
    format!(
        "pong from {} ({}) via {} ({}) in {}",
        r.peer,
        r.overlay_ip.map(|i| i.to_string()).unwrap_or("-".into()),
        r.endpoint,
        path_words(r.path),
        millis(r.rtt_us)
    )
}

fn millis(us: u64) -> String {
    if us < 10_000 {
        format!("{:.2} ms", us as f64 / 1000.0)
    } else {
        format!("{} ms", us / 1000)
    }
}

pub fn netcheck(r: &NetcheckReport) -> String {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let mut out = String::new();
    if r.stun.is_empty() {
        out.push_str("UDP:            not checked (no coordinator to ask; `warren up` first)\n");
    } else {
        out.push_str(&format!("UDP:            {}\n", yes_no(r.udp)));
    }
    out.push_str(&format!(
        "public address: {}\n",
        r.reflexive
            .map(|a| a.to_string())
            .unwrap_or("unknown".into())
    ));
    out.push_str(&format!("NAT mapping:    {}\n", nat_words(r.nat)));
    out.push_str(&format!(
        "port mapping:   UPnP-IGD {}\n",
        match r.upnp {
            Some(ip) => format!("yes (external address {ip})"),
            None => "no".into(),
        }
    ));
    out.push_str(&format!(
        "mapped address: {}\n",
        match &r.port_mapping {
            Some(m) => format!(
                "{} via {} (lifetime {} s, renewed at half)",
                m.external,
                m.protocol.label(),
                m.lifetime_secs
            ),
            None => "none (no router answered PCP, NAT-PMP or UPnP-IGD)".into(),
        }
    ));
    match (&r.coordinator, r.coordinator_rtt_ms) {
        (Some(c), Some(rtt)) => out.push_str(&format!("coordinator:    {c}, RTT {rtt} ms\n")),
        (Some(c), None) => out.push_str(&format!("coordinator:    {c}, not connected\n")),
        (None, _) => out.push_str("coordinator:    none\n"),
    }
    for s in &r.stun {
        out.push_str(&format!(
            "  STUN {} saw {}\n",
            s.server,
            s.mapped
                .map(|m| m.to_string())
                .unwrap_or("nothing (no answer)".into())
        ));
    }
    match &r.relay {
        Some(c) if c.reachable => out.push_str(&format!(
            "relay:          {}{}\n",
            c.server,
            c.rtt_ms
                .map(|r| format!(", RTT {r} ms"))
                .unwrap_or_default()
        )),
        Some(c) => out.push_str(&format!("relay:          {} does not answer\n", c.server)),
        None => out.push_str("relay:          none (the coordinator offers none)\n"),
    }
    out
}

fn short_duration(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs} s"),
        120..=7199 => format!("{} min", secs / 60),
        7200..=172_799 => format!("{} h", secs / 3600),
        _ => format!("{} d", secs / 86400),
    }
}

pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests;

/// One `warren check` line: the port, the verdict in words, and why.
pub fn check(r: &warren_proto::api::CheckReport) -> String {
    use warren_proto::api::Verdict;
    let verdict = match r.verdict {
        Verdict::Reachable => "reachable".to_string(),
        Verdict::NothingListening => format!("nothing listening on {}", r.peer),
        Verdict::FirewallDrops => format!("{}'s firewall drops it", r.peer),
        Verdict::Unreachable => format!("{} is unreachable", r.peer),
    };
    format!("{}/{}: {verdict} — {}", r.port, r.proto.name(), r.detail)
}

/// A check's line; an optional port of a preset that is not open says so first, since it does
/// not fail the check.
pub fn check_line(r: &warren_proto::api::CheckReport, required: bool) -> String {
    if required || r.verdict == warren_proto::api::Verdict::Reachable {
        check(r)
    } else {
        format!("optional, not open: {}", check(r))
    }
}
