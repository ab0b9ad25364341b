//! Relay benchmark (issues 6 and 18): TCP throughput and ping RTT between two hosts over the
//! overlay, first on their direct path, then with the direct path cut so the same two hosts talk
//! through the coordinator's relay — both measured in one run, in one lab, printed side by side.
//! That lab's relay has no per-host limit (`--relay-rate 0`), so the comparison is of speed; a
//! second lab with the default limits gives the relayed figure an operator gets out of the box.
//! The CPU each process (and its busiest threads) used during each transfer is printed too, to
//! show where a path stops.
//!
//! Ignored by default (it is a measurement, not a check); needs root and the whole workspace
//! built in the same profile:
//!
//! ```sh
//! cargo build --release --workspace &&
//!   cargo test --release -p warren-lab --test relay_bench -- --ignored --nocapture
//! ```
//!
//! With the default limits the relay meters what each host sends through it (`RelayConfig`,
//! printed with the table), so that transfer is sized well past the burst; the "2nd half" column
//! is the rate over the second half of each transfer, which there is the sustained, rate-limited
//! figure. Nothing is asserted about speed: only that the paths are what they should be and that
//! every transfer arrives intact.

use warren_lab as lab;

use lab::cmd::run_timeout;
use lab::matrix::{first_reply_blocking, peer_path};
use lab::node::{start_all, wait_path, Host};
use lab::site::SiteKind;
use lab::traffic::TcpTransfer;
use lab::Lab;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::Command;
use std::time::{Duration, Instant};
use warren_coordinator_core::RelayConfig;

const DIRECT_BYTES: u64 = 200_000_000;
/// Through the relay without limits: as much as direct, so both run for comparable times.
const RELAY_BYTES: u64 = 200_000_000;
/// Through the relay with its default limits: past the 16 MiB burst, ~6 s at 8 MiB/s.
const LIMITED_BYTES: u64 = 50_000_000;
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
    /// CPU used during the transfer: per process, and its busiest threads.
    cpu: Vec<String>,
}

#[test]
#[ignore = "benchmark: run as root with --ignored --nocapture (see the file's doc)"]
fn relay_vs_direct() {
    lab::needs_root!();
    let no_limit = ["--relay-rate", "0"].map(String::from).to_vec();
    let (direct, relay) = {
        let mut lab = Lab::start_with("relaybench", no_limit);
        let (_sa, mut ha) = lab.add_site(SiteKind::Public, 1, "a");
        let (_sb, mut hb) = lab.add_site(SiteKind::Public, 1, "b");
        let (a, b) = (&mut ha[0], &mut hb[0]);
        let ip_b = pair(&lab, a, b);
        let direct = measure(&lab, a, b, ip_b, 5201, DIRECT_BYTES, ON_LINK);
        cut_direct(a, b);
        let relay = measure(&lab, a, b, ip_b, 5202, RELAY_BYTES, RELAY);
        (direct, relay)
        // The lab's guards remove the namespaces, and the rule with them.
    };
    let limited = {
        let mut lab = Lab::start("relaybenchdef");
        let (_sa, mut ha) = lab.add_site(SiteKind::Public, 1, "a");
        let (_sb, mut hb) = lab.add_site(SiteKind::Public, 1, "b");
        let (a, b) = (&mut ha[0], &mut hb[0]);
        let ip_b = pair(&lab, a, b);
        cut_direct(a, b);
        measure(&lab, a, b, ip_b, 5203, LIMITED_BYTES, RELAY)
    };
    print_table(&direct, &relay, &limited);
}

/// Starts A and B in one network, on their direct path; B's overlay address.
fn pair(lab: &Lab, a: &mut Host, b: &mut Host) -> Ipv4Addr {
    start_all(&mut [&mut *a, &mut *b]);
    a.up(&lab.coordinator);
    let ip_b = b.up(&lab.coordinator);
    a.warren_ok(&["create", "bench", "--password", "pw"]);
    b.warren_ok(&["join", "bench", "--password", "pw"]);
    first_reply_blocking(a, ip_b, Instant::now());
    wait_path(a, b, ON_LINK, Duration::from_secs(10));
    ip_b
}

/// Cuts the direct path as `relay_direct_switch_keeps_tcp` does: B drops UDP from and to A's
/// WireGuard port; the coordinator (and its relay) stays reachable.
fn cut_direct(a: &Host, b: &Host) {
    b.cut_udp_with(a.ip, "wbench");
    let took = wait_path(a, b, RELAY, Duration::from_secs(10));
    eprintln!("[relaybench] direct path cut: both on the relay after {took:?}");
}

/// RTT (pings from A while idle), then a TCP transfer A -> B, on the path `want`, which must
/// still be in use afterwards.
fn measure(
    lab: &Lab,
    a: &Host,
    b: &Host,
    ip_b: Ipv4Addr,
    port: u16,
    bytes: u64,
    want: &[&str],
) -> Row {
    let rtt = ping_rtts(&a.ns, ip_b);
    let procs = [
        ("coordinator", lab.coordinator.pid()),
        ("warrend A", a.pid()),
        ("warrend B", b.pid()),
    ];
    let before: Vec<_> = procs.iter().map(|(_, p)| p.map(thread_ticks)).collect();
    let t0 = Instant::now();
    let tcp = transfer(a, b, SocketAddrV4::new(ip_b, port), bytes);
    let wall = t0.elapsed();
    let cpu = procs
        .iter()
        .zip(before)
        .filter_map(|((name, pid), before)| {
            Some(cpu_line(name, &before?, &thread_ticks((*pid)?), wall))
        })
        .collect();
    let path = peer_path(&a.status(), &b.name);
    assert!(
        want.contains(&path.as_str()),
        "{} -> {}: path {path} after measuring, want one of {want:?}",
        a.name,
        b.name
    );
    Row {
        path,
        tcp,
        rtt,
        cpu,
    }
}

/// CPU clock ticks (user + system) of each thread of `pid`, by thread id, with its name.
fn thread_ticks(pid: u32) -> HashMap<u32, (String, u64)> {
    let mut out = HashMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // "tid (name) state ppid ... utime stime ...": fields 14 and 15, counted after ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let tid = stat[..open].trim().parse().unwrap_or(0);
        out.insert(tid, (name, ticks(11) + ticks(12)));
    }
    out
}

/// "coordinator 93% (tokio-runtime-w 61%, ...)": CPU over `wall`, 100% = one core.
fn cpu_line(
    name: &str,
    before: &HashMap<u32, (String, u64)>,
    after: &HashMap<u32, (String, u64)>,
    wall: Duration,
) -> String {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let pct = |ticks: u64| ticks as f64 / hz / wall.as_secs_f64() * 100.0;
    let mut threads: Vec<(String, u64)> = after
        .iter()
        .map(|(tid, (n, t))| (n.clone(), t - before.get(tid).map_or(0, |b| b.1.min(*t))))
        .collect();
    threads.sort_by_key(|t| std::cmp::Reverse(t.1));
    let total: u64 = threads.iter().map(|t| t.1).sum();
    let busiest: Vec<String> = threads
        .iter()
        .take(3)
        .filter(|t| pct(t.1) >= 1.0)
        .map(|(n, t)| format!("{n} {:.0}%", pct(*t)))
        .collect();
    format!("{name} {:.0}% ({})", pct(total), busiest.join(", "))
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

fn print_table(direct: &Row, relay: &Row, limited: &Row) {
    const MIB: f64 = (1u64 << 20) as f64;
    let cfg = RelayConfig::default();
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let mut s = format!(
        "\nrelay benchmark ({profile} build; TCP A->B {} MB direct, {} MB relayed without \
         limits, {} MB relayed with the default limits; {PINGS} pings every {PING_INTERVAL} s \
         while idle)\n",
        DIRECT_BYTES / 1_000_000,
        RELAY_BYTES / 1_000_000,
        LIMITED_BYTES / 1_000_000
    );
    s.push_str(&format!(
        "{:<22} {:>10} {:>14} {:>12} {:>12} {:>10}\n",
        "path", "TCP MB/s", "2nd half MB/s", "RTT p50 ms", "RTT p99 ms", "replies"
    ));
    s.push_str(&format!("{}\n", "-".repeat(85)));
    let label = |r: &Row, what: &str| format!("{} ({what})", r.path);
    for (r, what) in [
        (direct, "no limit"),
        (relay, "no limit"),
        (limited, "default"),
    ] {
        s.push_str(&format!(
            "{:<22} {:>10.1} {:>14.1} {:>12.3} {:>12.3} {:>10}\n",
            label(r, what),
            r.tcp.mbytes_per_sec,
            r.tcp.second_half,
            r.rtt.pct(50.0),
            r.rtt.pct(99.0),
            format!("{}/{}", r.rtt.ms.len(), r.rtt.sent)
        ));
    }
    s.push_str(&format!(
        "{:<22} {:>10.3} {:>14.3} {:>12.2} {:>12.2}\n",
        "relay/direct",
        relay.tcp.mbytes_per_sec / direct.tcp.mbytes_per_sec,
        relay.tcp.second_half / direct.tcp.second_half,
        relay.rtt.pct(50.0) / direct.rtt.pct(50.0),
        relay.rtt.pct(99.0) / direct.rtt.pct(99.0),
    ));
    s.push_str(&format!(
        "default relay limit (RelayConfig::default, per sending host, on WireGuard \
         ciphertext): {:.2} MB/s ({} MiB/s) sustained, {:.2} MB ({} MiB) burst\n",
        cfg.rate_bytes_per_sec as f64 / 1e6,
        cfg.rate_bytes_per_sec as f64 / MIB,
        cfg.burst_bytes as f64 / 1e6,
        cfg.burst_bytes as f64 / MIB
    ));
    s.push_str("CPU during each transfer (100% = one core):\n");
    for (r, what) in [
        (direct, "direct"),
        (relay, "relay, no limit"),
        (limited, "relay, default"),
    ] {
        s.push_str(&format!("  {what}: {}\n", r.cpu.join("; ")));
    }
    eprintln!("{s}");
}
