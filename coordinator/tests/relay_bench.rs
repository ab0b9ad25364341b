//! Relay benchmark (issue 6): TCP throughput and ping RTT between two hosts over the overlay,
//! first on their direct path, then with the direct path cut so the same two hosts talk through
//! the coordinator's relay — both measured in one run, in one lab, printed side by side.
//!
//! Ignored by default (it is a measurement, not a check); needs root and the whole workspace
//! built in the same profile:
//!
//! ```sh
//! cargo build --release --workspace &&
//!   cargo test --release -p warren-coordinator --test relay_bench -- --ignored --nocapture
//! ```
//!
//! The relay meters what each host sends through it (`RelayConfig`, printed with the table), so
//! the relayed transfer is sized well past the burst; the "2nd half" column is the rate over the
//! second half of each transfer, which for the relay is the sustained, rate-limited figure.
//! Nothing is asserted about speed: only that both paths are what they should be and that both
//! transfers arrive intact.

mod lab;

use lab::cmd::run_timeout;
use lab::matrix::{first_reply_blocking, peer_path};
use lab::node::{start_all, wait_path, Host};
use lab::site::SiteKind;
use lab::traffic::TcpTransfer;
use lab::Lab;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::Command;
use std::time::{Duration, Instant};
use warren_coordinator_core::RelayConfig;

const DIRECT_BYTES: u64 = 200_000_000;
const RELAY_BYTES: u64 = 40_000_000;
const TCP_TIMEOUT: Duration = Duration::from_secs(180);
const PINGS: u32 = 200;
const PING_INTERVAL: &str = "0.01";
const ON_LINK: &[&str] = &["direct", "lan"];
const RELAY: &[&str] = &["relay"];

struct Tcp {
    /// Over the whole transfer.
    mbytes_per_sec: f64,
    /// Over its second half (past the relay's burst).
    second_half: f64,
}

struct Rtt {
    /// Milliseconds, sorted.
    ms: Vec<f64>,
    sent: u32,
}

impl Rtt {
    /// Nearest-rank percentile.
    fn pct(&self, p: f64) -> f64 {
        let rank = ((p / 100.0) * self.ms.len() as f64).ceil() as usize;
        self.ms[rank.clamp(1, self.ms.len()) - 1]
    }
}

struct Row {
    path: String,
    tcp: Tcp,
    rtt: Rtt,
}

#[test]
#[ignore = "benchmark: run as root with --ignored --nocapture (see the file's doc)"]
fn relay_vs_direct() {
    let mut lab = Lab::start("relaybench");
    let (_sa, mut ha) = lab.add_site(SiteKind::Public, 1, "a");
    let (_sb, mut hb) = lab.add_site(SiteKind::Public, 1, "b");
    let (a, b) = (&mut ha[0], &mut hb[0]);
    start_all(&mut [&mut *a, &mut *b]);
    a.up(&lab.coordinator);
    let ip_b = b.up(&lab.coordinator);
    a.warren_ok(&["create", "bench", "--password", "pw"]);
    b.warren_ok(&["join", "bench", "--password", "pw"]);
    first_reply_blocking(a, ip_b, Instant::now());
    wait_path(a, b, ON_LINK, Duration::from_secs(10));

    let direct = measure(a, b, ip_b, 5201, DIRECT_BYTES, ON_LINK);

    // Cut the direct path as `relay_direct_switch_keeps_tcp` does: B drops UDP from and to A's
    // WireGuard port; the coordinator (and its relay) stays reachable.
    b.cut_udp_with(a.ip, "wbench");
    let took = wait_path(a, b, RELAY, Duration::from_secs(10));
    eprintln!("[relaybench] direct path cut: both on the relay after {took:?}");

    let relay = measure(a, b, ip_b, 5202, RELAY_BYTES, RELAY);
    // The lab's guards remove the namespaces, and the rule with them.
    print_table(&direct, &relay);
}

/// RTT (pings from A while idle), then a TCP transfer A -> B, on the path `want`, which must
/// still be in use afterwards.
fn measure(a: &Host, b: &Host, ip_b: Ipv4Addr, port: u16, bytes: u64, want: &[&str]) -> Row {
    let rtt = ping_rtts(&a.ns, ip_b);
    let tcp = transfer(a, b, SocketAddrV4::new(ip_b, port), bytes);
    let path = peer_path(&a.status(), &b.name);
    assert!(
        want.contains(&path.as_str()),
        "{} -> {}: path {path} after measuring, want one of {want:?}",
        a.name,
        b.name
    );
    Row { path, tcp, rtt }
}

/// An unthrottled checksummed transfer; polls progress to time its second half.
fn transfer(a: &Host, b: &Host, dst: SocketAddrV4, bytes: u64) -> Tcp {
    let xfer = TcpTransfer::start(&a.ns, &b.ns, dst, bytes, None, u64::from(dst.port()));
    let mut half = None;
    while !xfer.is_finished() && xfer.started.elapsed() < TCP_TIMEOUT {
        let got = xfer.received();
        if half.is_none() && got >= bytes / 2 {
            half = Some((xfer.started.elapsed(), got));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let r = xfer.finish(TCP_TIMEOUT);
    assert_eq!(r.sent.bytes, bytes);
    assert_eq!(
        (r.received.bytes, r.received.hash),
        (r.sent.bytes, r.sent.hash),
        "the transfer to {dst} arrived damaged"
    );
    // A transfer that finished between two polls has no second-half sample: use the whole.
    let second_half = match half {
        Some((t, got)) if r.elapsed > t => {
            (r.received.bytes - got) as f64 / 1e6 / (r.elapsed - t).as_secs_f64()
        }
        _ => r.mbytes_per_sec(),
    };
    eprintln!(
        "[relaybench] {bytes} bytes to {dst} in {:.2} s",
        r.elapsed.as_secs_f64()
    );
    Tcp {
        mbytes_per_sec: r.mbytes_per_sec(),
        second_half,
    }
}

/// `PINGS` pings every `PING_INTERVAL` s; the RTT of every reply, from ping's per-reply lines.
fn ping_rtts(ns: &str, to: Ipv4Addr) -> Rtt {
    let (to_s, count) = (to.to_string(), PINGS.to_string());
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        ns,
        "ping",
        "-n",
        "-c",
        &count,
        "-i",
        PING_INTERVAL,
        "-W",
        "2",
        &to_s,
    ]);
    let out = run_timeout(&mut cmd, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    // "64 bytes from 100.64.0.2: icmp_seq=1 ttl=64 time=0.123 ms"
    let mut ms: Vec<f64> = out
        .stdout
        .lines()
        .filter_map(|l| {
            l.split_once(" time=")?
                .1
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert!(
        !ms.is_empty(),
        "no ping replies from {to} in {ns}:\n{}{}",
        out.stdout,
        out.stderr
    );
    ms.sort_by(f64::total_cmp);
    Rtt { ms, sent: PINGS }
}

fn print_table(direct: &Row, relay: &Row) {
    const MIB: f64 = (1u64 << 20) as f64;
    let cfg = RelayConfig::default();
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let mut s = format!(
        "\nrelay benchmark ({profile} build; TCP A->B {} MB direct, {} MB relayed; \
         {PINGS} pings every {PING_INTERVAL} s while idle)\n",
        DIRECT_BYTES / 1_000_000,
        RELAY_BYTES / 1_000_000
    );
    s.push_str(&format!(
        "{:<14} {:>10} {:>14} {:>12} {:>12} {:>10}\n",
        "path", "TCP MB/s", "2nd half MB/s", "RTT p50 ms", "RTT p99 ms", "replies"
    ));
    s.push_str(&format!("{}\n", "-".repeat(77)));
    for r in [direct, relay] {
        s.push_str(&format!(
            "{:<14} {:>10.1} {:>14.1} {:>12.3} {:>12.3} {:>10}\n",
            r.path,
            r.tcp.mbytes_per_sec,
            r.tcp.second_half,
            r.rtt.pct(50.0),
            r.rtt.pct(99.0),
            format!("{}/{}", r.rtt.ms.len(), r.rtt.sent)
        ));
    }
    s.push_str(&format!(
        "{:<14} {:>10.3} {:>14.3} {:>12.2} {:>12.2}\n",
        "relay/direct",
        relay.tcp.mbytes_per_sec / direct.tcp.mbytes_per_sec,
        relay.tcp.second_half / direct.tcp.second_half,
        relay.rtt.pct(50.0) / direct.rtt.pct(50.0),
        relay.rtt.pct(99.0) / direct.rtt.pct(99.0),
    ));
    s.push_str(&format!(
        "relay limit (RelayConfig::default, per sending host, on WireGuard ciphertext): \
         {:.2} MB/s ({} MiB/s) sustained, {:.2} MB ({} MiB) burst\n",
        cfg.rate_bytes_per_sec as f64 / 1e6,
        cfg.rate_bytes_per_sec as f64 / MIB,
        cfg.burst_bytes as f64 / 1e6,
        cfg.burst_bytes as f64 / MIB
    ));
    eprintln!("{s}");
}
