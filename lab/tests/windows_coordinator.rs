//! The Windows build of `warren-coordinator` (issue 24), run under Wine in the lab's coordinator
//! namespace, serving Linux `warrend` hosts behind NAT routers: the coordinator is then truly
//! cross-platform. Needs root, Wine, the workspace built and the Windows coordinator built into
//! the same target directory:
//!
//! ```sh
//! cargo build --workspace && cargo build --target x86_64-pc-windows-gnu -p warren-coordinator \
//!   && cargo test -p warren-lab --test windows_coordinator -- --nocapture
//! ```
//!
//! Wine's wineserver makes the sockets of its programs, so the lab gives the coordinator a Wine
//! prefix of its own whose wineserver starts inside the coordinator's namespace (`lab::wine`).

use warren_lab as lab;

use lab::matrix::{first_reply_blocking, peer_path, ping};
use lab::node::{start_all, wait_path, Host};
use lab::site::SiteKind;
use lab::Lab;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// `count` pings from `from` to `to`, every one answered.
fn ping_all(from: &Host, to: Ipv4Addr, count: u32, what: &str) {
    let r = ping(&from.ns, to, count, 1);
    assert_eq!(
        r.received, count,
        "{what}: {} -> {to}:\n{}",
        from.name, r.output
    );
}

/// Both hosts' `warren status --json` name the other on `path`.
fn assert_path(a: &Host, b: &Host, path: &str) {
    for (from, to) in [(a, b), (b, a)] {
        let st = from.status();
        assert_eq!(
            peer_path(&st, &to.name),
            path,
            "{} sees {} on the wrong path: {st:#}",
            from.name,
            to.name
        );
    }
}

/// Create, join, ping through the overlay on a direct path (port-restricted and full-cone NATs,
/// hole-punched through the coordinator's introductions); two hosts behind symmetric NATs on
/// its relay over UDP; a host whose network blocks UDP on its control channel and relay over
/// TCP+TLS.
#[test]
fn the_windows_coordinator_serves_linux_daemons() {
    lab::needs_root!();
    let t0 = Instant::now();
    let mut lab = Lab::start_with_windows_coordinator("wincoord");
    let started = t0.elapsed();
    let (_sa, mut ha) = lab.add_site(SiteKind::PortRestricted, 1, "a");
    let (_sb, mut hb) = lab.add_site(SiteKind::FullCone, 1, "b");
    let (_sc, mut hc) = lab.add_site(SiteKind::Symmetric, 1, "c");
    let (_sd, mut hd) = lab.add_site(SiteKind::Symmetric, 1, "d");
    let (_se, mut he) = lab.add_site(SiteKind::UdpBlocked, 1, "e");
    let (a, b, c, d, e) = (&mut ha[0], &mut hb[0], &mut hc[0], &mut hd[0], &mut he[0]);
    start_all(&mut [&mut *a, &mut *b, &mut *c, &mut *d, &mut *e]);
    let [ip_a, ip_b, ip_c, ip_d, ip_e] = [&*a, &*b, &*c, &*d, &*e].map(|h| h.up(&lab.coordinator));

    a.warren_ok(&["create", "win", "--password", "pw-win"]);
    b.warren_ok(&["join", "win", "--password", "pw-win"]);
    first_reply_blocking(a, ip_b, Instant::now());
    // The first replies may come through the relay while the hole punch runs.
    let direct = wait_path(a, b, &["direct"], Duration::from_secs(10));
    assert_path(a, b, "direct");
    ping_all(a, ip_b, 5, "on the direct path");
    ping_all(b, ip_a, 5, "on the direct path");

    c.warren_ok(&["create", "winrelay", "--password", "pw-relay"]);
    d.warren_ok(&["join", "winrelay", "--password", "pw-relay"]);
    first_reply_blocking(c, ip_d, Instant::now());
    wait_path(c, d, &["relay"], Duration::from_secs(10));
    assert_path(c, d, "relay");
    ping_all(c, ip_d, 5, "through the relay");
    ping_all(d, ip_c, 5, "through the relay");

    e.warren_ok(&["join", "winrelay", "--password", "pw-relay"]);
    assert_eq!(e.status()["coordinator"]["transport"], "tcp");
    assert_eq!(c.status()["coordinator"]["transport"], "quic");
    first_reply_blocking(e, ip_c, Instant::now());
    wait_path(c, e, &["relay"], Duration::from_secs(10));
    assert_path(c, e, "relay");
    ping_all(e, ip_c, 5, "through the relay over TCP+TLS");
    ping_all(c, ip_e, 5, "through the relay over TCP+TLS");

    eprintln!(
        "[wincoord] Windows coordinator up under Wine after {:.1} s; direct path after {:.1} s; \
         all checks done {:.1} s after the start",
        started.as_secs_f64(),
        direct.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    // The coordinator must still be the Windows build under Wine, not have died and left the
    // hosts on what they cached.
    assert!(lab.coordinator.is_running(), "the coordinator exited");
}
