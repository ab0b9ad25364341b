//! Issue 18: with the relay's default limits, two gamers and a remote desktop run at full speed
//! through it at once.
//!
//! Two hosts whose direct path is cut, so everything between them goes through the
//! coordinator's relay, started without limit flags (the defaults). At the same time:
//! - a game each way (A -> B and B -> A): UDP at 1 Mbit/s, 128 datagrams of ~1 kB a second;
//! - a remote desktop from A to B: TCP at 25 Mbit/s (3.125 MB/s).
//!
//! So A sends ~26 Mbit/s through the relay, B ~1 Mbit/s. "Full speed" is checked where it
//! cannot be a matter of timing on a busy machine: the relay dropped nothing for being over a
//! limit (its metrics), the game datagrams arrived, and the desktop stream arrived intact,
//! near its offered rate (it is paced, so a slow machine shows up as a small shortfall, not
//! as a failure). The rates are far below what the relay carries (see `relay_bench`).

use warren_lab as lab;

use lab::matrix::first_reply_blocking;
use lab::netns::in_netns;
use lab::node::{start_all, wait_path};
use lab::site::SiteKind;
use lab::traffic::{udp_burst, TcpTransfer, UdpBurst};
use lab::Lab;
use std::io::{Read, Write};
use std::net::{SocketAddrV4, TcpStream};
use std::time::{Duration, Instant};

/// 25 Mbit/s for 6 s.
const DESKTOP_RATE: f64 = 3_125_000.0;
const DESKTOP_BYTES: u64 = 18_750_000;
/// 1 Mbit/s of 976-byte datagrams in bursts of 16 every 125 ms (a 128 Hz game sends one
/// every ~8 ms; the bursts keep the sender's sleeps coarse on a busy machine), for 6 s.
const GAME: UdpBurst = UdpBurst {
    count: 128 * 6,
    size: 976,
    burst: 16,
    pause: Duration::from_millis(125),
};
const METRICS: &str = "127.0.0.1:9464";

#[test]
fn two_gamers_and_a_remote_desktop_at_full_speed_through_the_default_relay() {
    lab::needs_root!();
    let mut lab = Lab::start_with(
        "relaymix",
        ["--metrics", METRICS].map(String::from).to_vec(),
    );
    let (_sa, mut ha) = lab.add_site(SiteKind::Public, 1, "a");
    let (_sb, mut hb) = lab.add_site(SiteKind::Public, 1, "b");
    let (a, b) = (&mut ha[0], &mut hb[0]);
    start_all(&mut [&mut *a, &mut *b]);
    let ip_a = a.up(&lab.coordinator);
    let ip_b = b.up(&lab.coordinator);
    a.warren_ok(&["create", "mix", "--password", "pw"]);
    b.warren_ok(&["join", "mix", "--password", "pw"]);
    first_reply_blocking(a, ip_b, Instant::now());
    b.cut_udp_with(a.ip, "wmix");
    let took = wait_path(a, b, &["relay"], Duration::from_secs(20));
    eprintln!("[relaymix] direct path cut: both on the relay after {took:?}");
    let before = relay_metrics(&lab);

    let desktop = TcpTransfer::start(
        &a.ns,
        &b.ns,
        SocketAddrV4::new(ip_b, 5301),
        DESKTOP_BYTES,
        Some(DESKTOP_RATE),
        18,
    );
    let (ns_a, ns_b) = (a.ns.clone(), b.ns.clone());
    let game_ab = std::thread::spawn({
        let (ns_a, ns_b) = (ns_a.clone(), ns_b.clone());
        move || udp_burst(&ns_a, &ns_b, SocketAddrV4::new(ip_b, 5302), GAME)
    });
    let game_ba =
        std::thread::spawn(move || udp_burst(&ns_b, &ns_a, SocketAddrV4::new(ip_a, 5303), GAME));
    let desktop = desktop.finish(Duration::from_secs(60));
    let games = [game_ab.join().unwrap(), game_ba.join().unwrap()];
    // The relay publishes its counters once a second.
    std::thread::sleep(Duration::from_millis(1500));
    let after = relay_metrics(&lab);
    let path = lab::matrix::peer_path(&a.status(), &b.name);

    let offered_secs = DESKTOP_BYTES as f64 / DESKTOP_RATE;
    eprintln!(
        "[relaymix] desktop: {} bytes in {:.2} s (offered {offered_secs:.1} s); games: {games:?}; \
         relay before {before:?}, after {after:?}",
        desktop.received.bytes,
        desktop.elapsed.as_secs_f64()
    );
    assert_eq!(path, "relay", "A -> B must still be relayed");
    assert_eq!(
        (desktop.received.bytes, desktop.received.hash),
        (desktop.sent.bytes, desktop.sent.hash),
        "the desktop stream arrived damaged"
    );
    assert_eq!(DESKTOP_BYTES, desktop.sent.bytes);
    for (i, g) in games.iter().enumerate() {
        assert_eq!(g.sent, GAME.count, "game {i}: every datagram sent");
        assert_eq!(g.corrupt, 0, "game {i}: {g:?}");
        // A datagram may be lost on any path, direct too (a full queue on a busy machine);
        // what the relay itself dropped is counted exactly below.
        assert!(
            g.received >= GAME.count * 99 / 100,
            "game {i}: {} of {} datagrams arrived: {g:?}",
            g.received,
            GAME.count
        );
    }
    let relayed = after.forwarded_bytes - before.forwarded_bytes;
    assert!(
        relayed >= DESKTOP_BYTES + 2 * GAME.count as u64 * GAME.size as u64,
        "all of it went through the relay: {relayed} bytes"
    );
    assert_eq!(
        (after.rate_limited, after.total_rate_limited),
        (0, 0),
        "the default limits held some of it back"
    );
    // Paced at 25 Mbit/s, so it cannot finish early; a quarter late at most even on a busy
    // machine (a limit below its rate would stretch it far more, and show in the drops).
    assert!(
        desktop.elapsed.as_secs_f64() < offered_secs * 1.25 + 1.0,
        "the desktop stream took {:.1} s for {offered_secs:.1} s of data",
        desktop.elapsed.as_secs_f64()
    );
}

#[derive(Debug, Default)]
struct RelayMetrics {
    forwarded_bytes: u64,
    rate_limited: u64,
    total_rate_limited: u64,
}

/// The relay's counters from the coordinator's `/metrics`, read inside its namespace.
fn relay_metrics(lab: &Lab) -> RelayMetrics {
    let text = in_netns(&lab.coordinator.ns, || -> std::io::Result<String> {
        let mut conn = TcpStream::connect(METRICS)?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")?;
        let mut text = String::new();
        conn.read_to_string(&mut text)?;
        Ok(text)
    })
    .unwrap_or_else(|e| panic!("the coordinator's metrics on {METRICS}: {e}"));
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map_or(0, |v| v as u64)
    };
    RelayMetrics {
        forwarded_bytes: value("warren_relay_forwarded_bytes_total"),
        rate_limited: value("warren_relay_dropped_total{reason=\"rate_limited\"}"),
        total_rate_limited: value("warren_relay_dropped_total{reason=\"total_rate_limited\"}"),
    }
}
