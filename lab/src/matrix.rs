//! The pair matrix as data (which sites must reach each other, and how), a runner that checks
//! each pair in fresh sites of one lab, one pair after another, and a summary table.
//!
//! Each pair gets new routers (empty conntrack tables) and new daemons (new keys), joins a
//! network of its own, and is measured from the moment both hosts are members of that network
//! (the second `warren join` returned): both pings start then, each sending every 50 ms until
//! its first reply.

use super::cmd::run_timeout;
use super::node::Host;
use super::site::{Site, SiteKind, SiteKind::*};
use super::traffic::TcpTransfer;
use super::Lab;
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::Command;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
pub enum Sites {
    /// One host in a site of each kind.
    Pair(SiteKind, SiteKind),
    /// Two hosts behind one NAT router (a port-restricted one, like a home router).
    SameLan,
}

#[derive(Clone, Copy, Debug)]
pub enum Expect {
    /// A path must appear with one of these `status --json` kinds on both sides; ping both
    /// ways and a checksummed TCP transfer must work over it.
    Path(&'static [&'static str]),
}

pub struct Case {
    pub name: &'static str,
    pub sites: Sites,
    pub expect: Expect,
}

const DIRECT: &[&str] = &["direct"];
/// Same LAN: "lan" is the goal, "direct" (the LAN address, not recognised as such) accepted.
const LAN: &[&str] = &["lan", "direct"];
const RELAY: &[&str] = &["relay"];
const ON_LINK: &[&str] = &["direct", "lan"];

const fn case(name: &'static str, sites: Sites, expect: Expect) -> Case {
    Case {
        name,
        sites,
        expect,
    }
}

/// Every pair among the site kinds, and two hosts behind one NAT.
pub const MATRIX: &[Case] = &[
    // Both public hosts are on the internet bridge's one /24, so they do share a link: "lan"
    // is as right as "direct" here (and only here).
    case(
        "public-public",
        Sites::Pair(Public, Public),
        Expect::Path(ON_LINK),
    ),
    case(
        "public-full_cone",
        Sites::Pair(Public, FullCone),
        Expect::Path(DIRECT),
    ),
    case(
        "public-port_restricted",
        Sites::Pair(Public, PortRestricted),
        Expect::Path(DIRECT),
    ),
    case(
        "public-symmetric",
        Sites::Pair(Public, Symmetric),
        Expect::Path(DIRECT),
    ),
    case(
        "full_cone-full_cone",
        Sites::Pair(FullCone, FullCone),
        Expect::Path(DIRECT),
    ),
    case(
        "full_cone-port_restricted",
        Sites::Pair(FullCone, PortRestricted),
        Expect::Path(DIRECT),
    ),
    case(
        "full_cone-symmetric",
        Sites::Pair(FullCone, Symmetric),
        Expect::Path(DIRECT),
    ),
    case(
        "port_restricted-port_restricted",
        Sites::Pair(PortRestricted, PortRestricted),
        Expect::Path(DIRECT),
    ),
    // Birthday probing (issue 6): the symmetric side's 256 side sockets against the other's
    // 2 048 probes find a direct path (99.97 %).
    case(
        "port_restricted-symmetric",
        Sites::Pair(PortRestricted, Symmetric),
        Expect::Path(DIRECT),
    ),
    // Two random sets of mappings: no birthday run can meet them; the relay carries it.
    case(
        "symmetric-symmetric",
        Sites::Pair(Symmetric, Symmetric),
        Expect::Path(RELAY),
    ),
    // Behind two NATs (home router + carrier-grade NAT), both endpoint-independent: the host
    // is as reachable as behind one port-restricted NAT.
    case(
        "public-double_nat",
        Sites::Pair(Public, DoubleNat),
        Expect::Path(DIRECT),
    ),
    case(
        "full_cone-double_nat",
        Sites::Pair(FullCone, DoubleNat),
        Expect::Path(DIRECT),
    ),
    case(
        "port_restricted-double_nat",
        Sites::Pair(PortRestricted, DoubleNat),
        Expect::Path(DIRECT),
    ),
    case(
        "double_nat-double_nat",
        Sites::Pair(DoubleNat, DoubleNat),
        Expect::Path(DIRECT),
    ),
    // Endpoint-independent mapping twice over is still a cone against the symmetric NAT: met by
    // birthday probing, as port_restricted-symmetric.
    case(
        "double_nat-symmetric",
        Sites::Pair(DoubleNat, Symmetric),
        Expect::Path(DIRECT),
    ),
    // Port mapping (issue 6): the symmetric site's router runs miniupnpd, so its host holds a
    // mapping of its UDP port (PCP here) and advertises it; peers' pings to the mapped address
    // get in whatever the NAT does to outgoing ports. All four are direct.
    case(
        "port_restricted-symmetric_upnp",
        Sites::Pair(PortRestricted, SymmetricUpnp),
        Expect::Path(DIRECT),
    ),
    case(
        "symmetric_upnp-symmetric_upnp",
        Sites::Pair(SymmetricUpnp, SymmetricUpnp),
        Expect::Path(DIRECT),
    ),
    case(
        "symmetric-symmetric_upnp",
        Sites::Pair(Symmetric, SymmetricUpnp),
        Expect::Path(DIRECT),
    ),
    case(
        "public-symmetric_upnp",
        Sites::Pair(Public, SymmetricUpnp),
        Expect::Path(DIRECT),
    ),
    case("same_lan", Sites::SameLan, Expect::Path(LAN)),
    // No UDP gets out of a hotel network: the control channel and the relay go over TCP+TLS.
    // Direct over TCP (issue 18): every host listens on TCP at its UDP port, and dials from
    // it. A public host is dialed straight; a port-mapping router forwards the TCP port too
    // (mapped_tcp); behind NATs that keep ports, both sides dial at once (the UDP-blocked host
    // asks the other through the relay) and the crossing SYNs open the stream.
    case(
        "udp_blocked-public",
        Sites::Pair(UdpBlocked, Public),
        Expect::Path(DIRECT),
    ),
    case(
        "udp_blocked-full_cone",
        Sites::Pair(UdpBlocked, FullCone),
        Expect::Path(DIRECT),
    ),
    case(
        "udp_blocked-double_nat",
        Sites::Pair(UdpBlocked, DoubleNat),
        Expect::Path(DIRECT),
    ),
    case(
        "udp_blocked-port_restricted",
        Sites::Pair(UdpBlocked, PortRestricted),
        Expect::Path(DIRECT),
    ),
    case(
        "udp_blocked-port_restricted_upnp",
        Sites::Pair(UdpBlocked, PortRestrictedUpnp),
        Expect::Path(DIRECT),
    ),
    // The symmetric router's random ports meet no SYN; its mapping of the TCP port does.
    case(
        "udp_blocked-symmetric",
        Sites::Pair(UdpBlocked, Symmetric),
        Expect::Path(RELAY),
    ),
    case(
        "udp_blocked-symmetric_upnp",
        Sites::Pair(UdpBlocked, SymmetricUpnp),
        Expect::Path(DIRECT),
    ),
    case(
        "udp_blocked-udp_blocked",
        Sites::Pair(UdpBlocked, UdpBlocked),
        Expect::Path(DIRECT),
    ),
];

/// Both first replies must come within this (goal: under 1 s).
pub const FIRST_REPLY_LIMIT: Duration = Duration::from_secs(10);
pub const FIRST_REPLY_GOAL: Duration = Duration::from_secs(1);
/// Relayed pairs reach each other at once, through the relay: the bound.
pub const RELAY_FIRST_REPLY_LIMIT: Duration = Duration::from_secs(2);
/// The path kind must settle this soon after the first replies.
pub const PATH_WITHIN: Duration = Duration::from_secs(5);
pub const TCP_BYTES: u64 = 10_000_000;
const TCP_PORT: u16 = 5201;

/// One pair's results, filled in as far as the run got.
pub struct Row {
    pub case: &'static str,
    pub expect: String,
    /// How a sees b, and b sees a (`status --json` → `peers[].path`).
    pub path_ab: String,
    pub path_ba: String,
    pub first_ab: Option<Duration>,
    pub first_ba: Option<Duration>,
    pub mbytes_per_sec: Option<f64>,
    /// `Ok(note)` or `Err(why it failed)`.
    pub outcome: Result<String, String>,
}

impl Row {
    fn new(case: &Case) -> Row {
        let expect = match case.expect {
            Expect::Path(set) => set.join("|"),
        };
        Row {
            case: case.name,
            expect,
            path_ab: "-".into(),
            path_ba: "-".into(),
            first_ab: None,
            first_ba: None,
            mbytes_per_sec: None,
            outcome: Err("not run".into()),
        }
    }
}

/// `WARREN_LAB_PAIRS=a,b`: run only these pairs (by name).
fn env_filter(case: &Case) -> bool {
    match std::env::var("WARREN_LAB_PAIRS") {
        Ok(list) if !list.trim().is_empty() => list.split(',').any(|n| n.trim() == case.name),
        _ => true,
    }
}

/// Runs the pairs of [`MATRIX`] (those named by `WARREN_LAB_PAIRS`, if set) in one lab, one
/// after another; prints the summary table; panics naming every pair that missed its
/// expectation.
pub fn run_matrix(tag: &str) {
    let cases: Vec<&Case> = MATRIX.iter().filter(|c| env_filter(c)).collect();
    if cases.is_empty() {
        eprintln!("[{tag}] no pair selected");
        return;
    }
    let mut lab = Lab::start(tag);
    let t_all = Instant::now();
    let mut rows = Vec::new();
    for case in cases {
        eprintln!("\n[{tag}] ===== {} =====", case.name);
        let mut row = Row::new(case);
        let t = Instant::now();
        let r = catch_unwind(AssertUnwindSafe(|| run_case(&mut lab, case, &mut row)));
        if let Err(p) = r {
            row.outcome = Err(panic_text(&p));
        }
        eprintln!(
            "[{tag}] {}: {} ({:.1} s)",
            case.name,
            match &row.outcome {
                Ok(n) => format!("ok — {n}"),
                Err(e) => format!("FAILED — {}", first_line(e)),
            },
            t.elapsed().as_secs_f64()
        );
        rows.push(row);
    }
    eprintln!("{}", summary(&rows));
    eprintln!(
        "[{tag}] {} pairs in {:.0} s",
        rows.len(),
        t_all.elapsed().as_secs_f64()
    );
    let failed: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            r.outcome
                .as_ref()
                .err()
                .map(|e| format!("- {}: {e}", r.case))
        })
        .collect();
    if !failed.is_empty() {
        panic!(
            "{} of {} pairs missed their expectation (details, daemon logs and status above):\n{}",
            failed.len(),
            rows.len(),
            failed.join("\n")
        );
    }
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else {
        "panic".into()
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// Hosts and their sites (one pair's, or a mesh's); hosts drop (daemons stop, logs dumped on
/// failure) before the sites' namespaces go (routers described on failure).
pub struct Setup {
    pub hosts: Vec<Host>,
    pub sites: Vec<Site>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for s in &self.sites {
                eprintln!("{}", s.describe_router());
            }
        }
    }
}

fn run_case(lab: &mut Lab, case: &Case, row: &mut Row) {
    assert!(
        lab.coordinator.is_running(),
        "the lab's coordinator is not running (it crashed during an earlier pair?)"
    );
    let mut setup = match case.sites {
        Sites::Pair(ka, kb) => {
            let (sa, ha) = lab.add_site(ka, 1, "a");
            let (sb, hb) = lab.add_site(kb, 1, "b");
            Setup {
                hosts: ha.into_iter().chain(hb).collect(),
                sites: vec![sa, sb],
            }
        }
        Sites::SameLan => {
            let (s, h) = lab.add_site(PortRestricted, 2, "lan");
            Setup {
                hosts: h,
                sites: vec![s],
            }
        }
    };
    let [a, b] = setup.hosts.as_mut_slice() else {
        unreachable!("two hosts per pair")
    };
    for h in [&mut *a, &mut *b] {
        h.start_daemon();
    }
    for h in [&mut *a, &mut *b] {
        h.wait_api(Duration::from_secs(10));
    }
    let ip_a = a.up(&lab.coordinator);
    let ip_b = b.up(&lab.coordinator);
    if let Sites::Pair(ka, kb) = case.sites {
        for (h, kind) in [(&*a, ka), (&*b, kb)] {
            check_transport(h, kind);
        }
    }
    let net = format!("m-{}", case.name);
    let pw = format!("pw-{}", case.name);
    a.warren_ok(&["create", &net, "--password", &pw]);
    b.warren_ok(&["join", &net, "--password", &pw]);
    let t0 = Instant::now();
    eprintln!(
        "{}: {} {} ({}) and {} {} ({}) in network {net}",
        case.name, a.name, a.ip, ip_a, b.name, b.ip, ip_b
    );

    match case.expect {
        Expect::Path(set) => {
            let pa = first_reply(&a.ns, ip_b, t0);
            let pb = first_reply(&b.ns, ip_a, t0);
            check_path(a, b, (ip_a, ip_b), set, (pa, pb), row);
        }
    }
}

/// Only a host behind a UDP-blocking site reaches the coordinator over TCP.
pub fn check_transport(h: &Host, kind: SiteKind) {
    let want = if kind == UdpBlocked { "tcp" } else { "quic" };
    let st = h.status();
    assert_eq!(
        st["coordinator"]["transport"],
        want,
        "{} ({}) should reach the coordinator over {want}: {}",
        h.name,
        kind.label(),
        st["coordinator"]
    );
}

/// The checks of a pair that must connect: first replies both ways (timed), steady pings both
/// ways, path kinds in `set` on both sides, a checksummed TCP transfer a → b.
fn check_path(
    a: &mut Host,
    b: &mut Host,
    (ip_a, ip_b): (Ipv4Addr, Ipv4Addr),
    set: &[&str],
    (pa, pb): (Pinger, Pinger),
    row: &mut Row,
) {
    let ra = pa.join().expect("pinger thread");
    let rb = pb.join().expect("pinger thread");
    row.first_ab = ra.as_ref().ok().copied();
    row.first_ba = rb.as_ref().ok().copied();
    if ra.is_err() || rb.is_err() {
        let show = |r: &Result<Duration, String>| match r {
            Ok(d) => format!("first reply after {:.3} s", d.as_secs_f64()),
            Err(e) => format!("NO REPLY: {e}"),
        };
        let (sa, sb) = (a.status(), b.status());
        row.path_ab = peer_path(&sa, &b.name);
        row.path_ba = peer_path(&sb, &a.name);
        panic!(
            "no ping reply within {FIRST_REPLY_LIMIT:?} of both joining: {} -> {} {}; {} -> {} \
             {}. {} sees {}: {}; {} sees {}: {}",
            a.name,
            b.name,
            show(&ra),
            b.name,
            a.name,
            show(&rb),
            a.name,
            b.name,
            peer_brief(&sa, &b.name),
            b.name,
            a.name,
            peer_brief(&sb, &a.name)
        );
    }
    // From here on, every check runs even when an earlier one failed, so the row is complete.
    let mut problems = Vec::new();
    if set == RELAY {
        for (from, to, first) in [(&*a, &*b, row.first_ab), (&*b, &*a, row.first_ba)] {
            if first.is_some_and(|d| d > RELAY_FIRST_REPLY_LIMIT) {
                problems.push(format!(
                    "{} -> {}: first reply after {:?}, over the relay's {RELAY_FIRST_REPLY_LIMIT:?}",
                    from.name, to.name, first
                ));
            }
        }
    }
    for (from, to) in [(&*a, ip_b), (&*b, ip_a)] {
        let r = ping(&from.ns, to, 5, 1);
        if (r.transmitted, r.received) != (5, 5) {
            problems.push(format!(
                "steady ping {} -> {to}: {} of {} replies:\n{}",
                from.name, r.received, r.transmitted, r.output
            ));
        }
    }
    // The path kind both sides report.
    let t = Instant::now();
    let (sa, sb) = loop {
        let (sa, sb) = (a.status(), b.status());
        row.path_ab = peer_path(&sa, &b.name);
        row.path_ba = peer_path(&sb, &a.name);
        let good = set.contains(&row.path_ab.as_str()) && set.contains(&row.path_ba.as_str());
        if good || t.elapsed() > PATH_WITHIN {
            if !good {
                problems.push(format!(
                    "ping works, but the reported path is not one of {set:?} within \
                     {PATH_WITHIN:?}: {} sees {}: {}; {} sees {}: {}",
                    a.name,
                    b.name,
                    peer_brief(&sa, &b.name),
                    b.name,
                    a.name,
                    peer_brief(&sb, &a.name)
                ));
            }
            break (sa, sb);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let note = format!(
        "{} sees {}; {} sees {}",
        a.name,
        peer_brief(&sa, &b.name),
        b.name,
        peer_brief(&sb, &a.name)
    );
    eprintln!("{note}");

    let dst = SocketAddrV4::new(ip_b, TCP_PORT);
    let seed = 0x5741_5252 ^ u64::from(ip_b.to_bits());
    let xfer = TcpTransfer::start(&a.ns, &b.ns, dst, TCP_BYTES, None, seed);
    let res = xfer.finish(Duration::from_secs(60));
    if res.received != res.sent || res.received.bytes != TCP_BYTES {
        problems.push(format!(
            "TCP {} -> {}: sent {:?}, received {:?} (of {TCP_BYTES} bytes)",
            a.name, b.name, res.sent, res.received
        ));
    } else {
        row.mbytes_per_sec = Some(res.mbytes_per_sec());
    }
    a.check_alive();
    b.check_alive();
    if !problems.is_empty() {
        panic!("{}", problems.join("\n"));
    }
    row.outcome = Ok(note);
}

type Pinger = JoinHandle<Result<Duration, String>>;

/// Pings `to` from `ns` every 50 ms until the first reply (at most [`FIRST_REPLY_LIMIT`]);
/// the result is the time from `t0` to that reply.
pub fn first_reply(ns: &str, to: Ipv4Addr, t0: Instant) -> Pinger {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        let w = FIRST_REPLY_LIMIT.as_secs().to_string();
        let to_s = to.to_string();
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns", "exec", &ns, "ping", "-n", "-q", "-i", "0.05", "-c", "1", "-w", &w, &to_s,
        ]);
        let o = run_timeout(&mut cmd, FIRST_REPLY_LIMIT + Duration::from_secs(5))?;
        let at = t0.elapsed();
        if o.success() {
            Ok(at)
        } else {
            let summary = o
                .stdout
                .lines()
                .find(|l| l.contains("packets transmitted"))
                .unwrap_or(o.stdout.trim())
                .to_string();
            Err(format!("{summary} {}", o.stderr.trim()))
        }
    })
}

/// [`first_reply`], waited for: panics (with both sides' view) when no reply comes.
pub fn first_reply_blocking(from: &Host, to: Ipv4Addr, t0: Instant) -> Duration {
    match first_reply(&from.ns, to, t0).join().expect("pinger thread") {
        Ok(d) => {
            eprintln!(
                "{} -> {to}: first reply after {:.3} s",
                from.name,
                d.as_secs_f64()
            );
            d
        }
        Err(e) => panic!(
            "{} -> {to}: no ping reply within {FIRST_REPLY_LIMIT:?}: {e}",
            from.name
        ),
    }
}

pub struct PingResult {
    pub transmitted: u32,
    pub received: u32,
    pub output: String,
}

/// `ip netns exec NS ping -c COUNT -i 0.2 -W WAIT TO`, with the summary parsed.
pub fn ping(ns: &str, to: Ipv4Addr, count: u32, wait_s: u32) -> PingResult {
    let to_s = to.to_string();
    let c = count.to_string();
    let w = wait_s.to_string();
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns", "exec", ns, "ping", "-n", "-i", "0.2", "-c", &c, "-W", &w, &to_s,
    ]);
    let out = run_timeout(
        &mut cmd,
        Duration::from_secs((count * (wait_s + 1) + 5) as u64),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let output = format!("{}{}", out.stdout, out.stderr);
    // "3 packets transmitted, 3 received, 0% packet loss, time 2003ms"
    let mut nums = Vec::new();
    if let Some(line) = output.lines().find(|l| l.contains("packets transmitted")) {
        nums = line
            .split(',')
            .filter_map(|p| p.split_whitespace().next()?.parse().ok())
            .collect();
    }
    PingResult {
        transmitted: nums.first().copied().unwrap_or(0),
        received: nums.get(1).copied().unwrap_or(0),
        output,
    }
}

/// `peers[name].path` in `status`, or "-" when the peer is not listed.
pub fn peer_path(status: &Value, name: &str) -> String {
    Host::peer_in(status, name)
        .and_then(|p| p["path"].as_str())
        .unwrap_or("-")
        .to_string()
}

/// "path P via ENDPOINT, online, rtt N ms" for failure messages and notes.
pub fn peer_brief(status: &Value, name: &str) -> String {
    match Host::peer_in(status, name) {
        None => "not listed".into(),
        Some(p) => format!(
            "path {} via {}, {}, rtt {} ms, rx {} tx {} bytes",
            p["path"].as_str().unwrap_or("?"),
            p["endpoint"].as_str().unwrap_or("no endpoint"),
            if p["online"] == true {
                "online"
            } else {
                "offline"
            },
            p["rtt_ms"],
            p["rx_bytes"],
            p["tx_bytes"]
        ),
    }
}

fn secs(d: Option<Duration>) -> String {
    match d {
        Some(d) => format!(
            "{:.3} s{}",
            d.as_secs_f64(),
            if d > FIRST_REPLY_GOAL { " !" } else { "" }
        ),
        None => "-".into(),
    }
}

/// The table printed at the end of a matrix run.
pub fn summary(rows: &[Row]) -> String {
    let mut s = String::from(
        "\nNAT lab summary (first reply: from both hosts joined; ! = over the 1 s goal)\n",
    );
    s.push_str(&format!(
        "{:<32} {:<12} {:<14} {:>11} {:>11} {:>8}  {}\n",
        "pair (a-b)", "expected", "path a>b/b>a", "1st a>b", "1st b>a", "TCP MB/s", "result"
    ));
    s.push_str(&format!("{}\n", "-".repeat(110)));
    for r in rows {
        s.push_str(&format!(
            "{:<32} {:<12} {:<14} {:>11} {:>11} {:>8}  {}\n",
            r.case,
            r.expect,
            format!("{}/{}", r.path_ab, r.path_ba),
            secs(r.first_ab),
            secs(r.first_ba),
            r.mbytes_per_sec
                .map(|m| format!("{m:.1}"))
                .unwrap_or_else(|| "-".into()),
            match &r.outcome {
                Ok(_) => "ok".to_string(),
                Err(e) => format!("FAILED: {}", shorten(first_line(e), 90)),
            }
        ));
    }
    let slow: Vec<&str> = rows
        .iter()
        .filter(|r| {
            [r.first_ab, r.first_ba]
                .iter()
                .any(|d| d.is_some_and(|d| d > FIRST_REPLY_GOAL))
        })
        .map(|r| r.case)
        .collect();
    if !slow.is_empty() {
        s.push_str(&format!(
            "over the {FIRST_REPLY_GOAL:?} first-reply goal: {}\n",
            slow.join(", ")
        ));
    }
    s
}

fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}
