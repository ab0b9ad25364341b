//! End-to-end test of the data plane: real `warrend` processes, real TUN devices, real UDP, in
//! two network namespaces joined by a veth pair. Needs root.
//!
//! Each test builds its own pair (namespaces `wre2e-<pid>-<tag>-{a,b}`, underlay 10.<idx>.0.0/24,
//! overlay 100.64.<idx>.0/24), so they run in parallel. Run with
//! `cargo build -p warrend -p warren-cli && cargo test -p warren-lab --test e2e_dataplane -- --nocapture`.
//! `WARREN_E2E_LOG` sets the daemons' RUST_LOG (default `info`); their logs are printed when a
//! test fails.

use warren_lab::pair as common;

use common::traffic::{udp_burst, TcpTransfer, UdpBurst};
use common::{change_underlay, ping, traffic_lock, Pair, PairSpec};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

/// Acceptance 1: ping both ways over the overlay.
#[test]
fn ping_both_ways() {
    warren_lab::needs_root!();
    let mut net = Pair::start("ping", 21);
    net.wait_tunnel();
    for (from, to) in [(&net.a, net.b.overlay), (&net.b, net.a.overlay)] {
        let r = ping(&from.ns, to, 3, 2);
        eprintln!(
            "[ping] {} -> {to}: {}/{} replies",
            from.name, r.received, r.transmitted
        );
        assert_eq!(
            (r.transmitted, r.received),
            (3, 3),
            "ping {} -> {to} lost packets:\n{}",
            from.name,
            r.output
        );
    }
    // The IPv6 overlay (ULA) carries traffic too.
    for (from, to) in [(&net.a, net.b.overlay6), (&net.b, net.a.overlay6)] {
        let r = ping(&from.ns, to, 3, 2);
        assert_eq!(r.received, 3, "ping6 {} -> {to}:\n{}", from.name, r.output);
    }
    net.check_alive();
    let st = net.status(&net.a);
    assert_eq!(
        st["peers"][0]["online"], true,
        "a's status after pings: {st}"
    );

    // An overlay address that no peer owns: dropped and counted, nothing else happens.
    let no_route = |st: &serde_json::Value| st["dropped"]["no_route"].as_u64().unwrap_or(0);
    let before = no_route(&st);
    let stray = Ipv4Addr::new(100, 64, net.idx, 99);
    let r = ping(&net.a.ns, stray, 2, 1);
    assert_eq!(r.received, 0, "nobody owns {stray}: {}", r.output);
    let after = no_route(&net.status(&net.a));
    assert_eq!(
        after,
        before + 2,
        "no_route counter after 2 pings to {stray}"
    );
}

/// With TUN offload off (what the daemon falls back to when the kernel refuses it), the plain
/// per-packet path carries pings and a checksummed TCP transfer; `--mtu` sets the interface MTU.
#[test]
fn plain_tun_path_without_offload() {
    warren_lab::needs_root!();
    const TOTAL: u64 = 20 * 1000 * 1000;
    let mut spec = PairSpec::new("plain", 25);
    spec.extra_args = vec!["--no-offload", "--mtu", "1300"];
    let mut net = Pair::start_with(spec);
    net.wait_tunnel();
    let st = net.status(&net.a);
    assert_eq!(st["offload"]["tun_vnet_hdr"], false, "status: {st}");
    assert_eq!(st["self"]["mtu"], 1300, "status: {st}");
    let link = std::process::Command::new("ip")
        .args([
            "-n",
            &net.a.ns,
            "link",
            "show",
            "dev",
            st["self"]["tun"].as_str().unwrap(),
        ])
        .output()
        .expect("ip link");
    let link = String::from_utf8_lossy(&link.stdout);
    assert!(link.contains("mtu 1300"), "{link}");
    let r = ping(&net.b.ns, net.a.overlay, 3, 2);
    assert_eq!(r.received, 3, "{}", r.output);
    let _serial = traffic_lock();
    let dst = SocketAddrV4::new(net.b.overlay, 5004);
    let r = TcpTransfer::start(&net.a.ns, &net.b.ns, dst, TOTAL, None, 25)
        .finish(Duration::from_secs(45));
    eprintln!(
        "[plain] {} bytes in {:.2}s = {:.1} MB/s",
        r.received.bytes,
        r.elapsed.as_secs_f64(),
        r.mbytes_per_sec()
    );
    assert_eq!(r.received.bytes, TOTAL);
    assert_eq!(r.received.hash, r.sent.hash, "checksum mismatch");
    net.check_alive();
}

/// Acceptance 2: 100 MB over TCP A→B, checksummed on both ends.
#[test]
fn tcp_100mb_checksum() {
    warren_lab::needs_root!();
    const TOTAL: u64 = 100 * 1000 * 1000;
    let mut net = Pair::start("tcp", 22);
    net.wait_tunnel();
    let _serial = traffic_lock();
    let dst = SocketAddrV4::new(net.b.overlay, 5001);
    let xfer = TcpTransfer::start(&net.a.ns, &net.b.ns, dst, TOTAL, None, 22);
    let r = xfer.finish(Duration::from_secs(45));
    eprintln!(
        "[tcp] {} bytes in {:.2}s = {:.1} MB/s; hash sent {:016x} received {:016x}",
        r.received.bytes,
        r.elapsed.as_secs_f64(),
        r.mbytes_per_sec(),
        r.sent.hash,
        r.received.hash
    );
    assert_eq!(r.sent.bytes, TOTAL);
    assert_eq!(r.received.bytes, TOTAL, "receiver byte count");
    assert_eq!(r.received.hash, r.sent.hash, "checksum mismatch");
    net.check_alive();
}

/// Acceptance 3: a burst of numbered UDP datagrams A→B; whatever arrives is intact, and at
/// least 90 % arrives.
#[test]
fn udp_burst_intact() {
    warren_lab::needs_root!();
    let mut net = Pair::start("udp", 23);
    net.wait_tunnel();
    let _serial = traffic_lock();
    let spec = UdpBurst {
        count: 2000,
        size: 1200,
        burst: 20,
        pause: Duration::from_millis(1),
    };
    let dst = SocketAddrV4::new(net.b.overlay, 5002);
    let r = udp_burst(&net.a.ns, &net.b.ns, dst, spec);
    eprintln!(
        "[udp] sent {} ({} send errors) in {:.3}s, received {} intact ({:.1} %), {} corrupt, {} duplicates",
        r.sent,
        r.send_errors,
        r.send_time.as_secs_f64(),
        r.received,
        100.0 * r.received as f64 / spec.count as f64,
        r.corrupt,
        r.duplicates
    );
    assert_eq!(r.corrupt, 0, "corrupted datagrams arrived: {r:?}");
    assert!(
        r.received as u64 * 10 >= spec.count as u64 * 9,
        "only {} of {} datagrams arrived: {r:?}",
        r.received,
        spec.count
    );
    net.check_alive();
    let st = net.status(&net.b);
    eprintln!("[udp] b dropped counters: {}", st["dropped"]);
}

/// Acceptance 4: B's underlay address changes in the middle of a paced TCP transfer: the connection
/// survives, and A learns B's new endpoint.
#[test]
fn roaming_mid_transfer() {
    warren_lab::needs_root!();
    const TOTAL: u64 = 40 * 1000 * 1000;
    const RATE: f64 = 15e6;
    let mut net = Pair::start("roam", 24);
    net.wait_tunnel();
    let _serial = traffic_lock();
    let old_ep = net.b.endpoint().to_string();
    assert_eq!(
        net.peer_endpoint(&net.a).as_deref(),
        Some(old_ep.as_str()),
        "a's view of b's endpoint before roaming"
    );

    let dst = SocketAddrV4::new(net.b.overlay, 5003);
    let xfer = TcpTransfer::start(&net.a.ns, &net.b.ns, dst, TOTAL, Some(RATE), 24);
    std::thread::sleep(Duration::from_secs(1));
    let before = xfer.received();
    let t_roam = Instant::now();
    let new_ip = Ipv4Addr::new(10, net.idx, 0, 3);
    change_underlay(&mut net.b, new_ip);
    let b_tx_at_move = net.status(&net.b)["peers"][0]["tx_bytes"].as_u64();
    let roam_at = xfer.started.elapsed();
    eprintln!(
        "[roam] moved b to {new_ip} at {:.2}s, with {before} of {TOTAL} bytes received",
        roam_at.as_secs_f64()
    );
    assert!(
        before > 0 && before < TOTAL,
        "roam was not mid-transfer ({before} of {TOTAL} bytes received)"
    );

    // The transfer must get going again soon: 1 MB more must arrive within STALL of the move.
    const STALL: Duration = Duration::from_secs(10);
    let mut resumed = None;
    while t_roam.elapsed() < STALL {
        if xfer.received() >= (before + 1_000_000).min(TOTAL) {
            resumed = Some(t_roam.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let Some(resumed) = resumed else {
        let got = xfer.received();
        let sa = net.status(&net.a);
        let sb = net.status(&net.b);
        panic!(
            "TCP transfer stalled after b's underlay moved to {new_ip}: receiver at {got} bytes \
             ({before} at the move) {STALL:?} later. a reports b's endpoint as {} (old {old_ep}); \
             b's tx_bytes to a: {:?} just after the move, {} now (if unchanged, b sent nothing \
             from its new address, so a cannot learn it); b's drop counters: {}.\n\
             a peers: {}\nb peers: {}",
            sa["peers"][0]["endpoint"],
            b_tx_at_move,
            sb["peers"][0]["tx_bytes"],
            sb["dropped"],
            sa["peers"],
            sb["peers"],
        );
    };
    eprintln!(
        "[roam] transfer 1 MB past the move {:.2}s after it",
        resumed.as_secs_f64()
    );

    let r = xfer.finish(Duration::from_secs(40));
    eprintln!(
        "[roam] {} bytes in {:.2}s; hash sent {:016x} received {:016x}",
        r.received.bytes,
        r.elapsed.as_secs_f64(),
        r.sent.hash,
        r.received.hash
    );
    assert_eq!(r.received.bytes, TOTAL, "receiver byte count");
    assert_eq!(r.received.hash, r.sent.hash, "checksum mismatch");
    net.check_alive();

    let new_ep = net.b.endpoint().to_string();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut seen = net.peer_endpoint(&net.a);
    while seen.as_deref() != Some(new_ep.as_str()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        seen = net.peer_endpoint(&net.a);
    }
    assert_eq!(
        seen.as_deref(),
        Some(new_ep.as_str()),
        "a still reports b's old endpoint after roaming; status: {}",
        net.status(&net.a)
    );
    eprintln!("[roam] a now reports b at {new_ep}");
}
