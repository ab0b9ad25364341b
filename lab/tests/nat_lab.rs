//! The NAT lab (issue 4): real `warren-coordinator`, `warrend` and `warren` processes in network
//! namespaces behind nftables NAT routers. Needs root, and the whole workspace built first
//! (`warrend` and `warren` from the same target directory, refused if stale):
//!
//! ```sh
//! cargo build --workspace && cargo test -p warren-lab --test nat_lab -- --nocapture
//! ```
//!
//! - `nat_matrix`: every pair of site kinds (public, full cone, port-restricted, symmetric, two
//!   hosts behind one NAT; a UDP-blocking site against eight of them), expectations as data in `lab::matrix::MATRIX`; prints a summary
//!   table (path, time to first ping reply, TCP MB/s). `WARREN_LAB_PAIRS=a-b,c-d` runs only
//!   those pairs; `WARREN_LAB_LOG` sets the processes' `RUST_LOG` (default `info`).
//! - `udp_blocked_relay_survives_coordinator_restart`: a host behind a UDP-blocking site on
//!   the relay over TCP+TLS, before and after a coordinator restart.
//! - `coordinator_restart`, `wrong_password_and_unknown_network`, `duplicate_name_in_network`.
//!
//! Everything lives in namespaces `wlab<pid>-<test>-*` and the "public" addresses are
//! TEST-NET-3 (203.0.113.0/24) inside them: nothing leaves the lab. Namespaces and processes
//! are removed even when a test fails; a failing test prints the daemons' status and logs and
//! keeps its temp dir.

use warren_lab as lab;

use lab::matrix::{first_reply, first_reply_blocking, ping, run_matrix, RELAY_FIRST_REPLY_LIMIT};
use lab::node::{networks, start_all, wait_path, Host, StandaloneRelay};
use lab::site::SiteKind;
use lab::Lab;
use serde_json::Value;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

/// Every pair of `lab::matrix::MATRIX`, one after another in one lab; prints the summary table.
#[test]
fn nat_matrix() {
    lab::needs_root!();
    run_matrix("matrix");
}

fn coordinator_connected(st: &Value) -> bool {
    st["coordinator"]["connected"] == true
}

/// Polls `cond` on each host's status every 100 ms until it holds for all of them; returns the
/// time it took, or panics after `limit` naming `what`.
fn wait_all(
    hosts: &mut [&mut Host],
    limit: Duration,
    what: &str,
    cond: impl Fn(&Value) -> bool,
) -> Duration {
    let t0 = Instant::now();
    loop {
        let mut pending = Vec::new();
        for h in hosts.iter_mut() {
            h.check_alive();
            let st = h.status();
            if !cond(&st) {
                pending.push(format!("{}: {}", h.name, st["coordinator"]));
            }
        }
        if pending.is_empty() {
            return t0.elapsed();
        }
        if t0.elapsed() > limit {
            panic!(
                "not all hosts {what} within {limit:?}:\n{}",
                pending.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The relay restarts (it runs in the coordinator, killed with SIGKILL) under two hosts that can
/// only reach each other through it (symmetric NAT on both sides): their traffic stops while it
/// is gone, and resumes through the relay, on the new relay tokens, once the daemons have
/// reconnected by themselves.
#[test]
fn relay_restart() {
    lab::needs_root!();
    let mut lab = Lab::start("relayrst");
    let (_sa, mut ha) = lab.add_site(SiteKind::Symmetric, 1, "a");
    let (_sb, mut hb) = lab.add_site(SiteKind::Symmetric, 1, "b");
    let (a, b) = (&mut ha[0], &mut hb[0]);
    start_all(&mut [&mut *a, &mut *b]);
    let ip_a = a.up(&lab.coordinator);
    let ip_b = b.up(&lab.coordinator);
    a.warren_ok(&["create", "relayed", "--password", "pw-relay"]);
    b.warren_ok(&["join", "relayed", "--password", "pw-relay"]);
    first_reply_blocking(a, ip_b, Instant::now());
    wait_path(a, b, &["relay"], Duration::from_secs(10));

    lab.coordinator.kill();
    let t_kill = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let r = ping(&a.ns, ip_b, 3, 1);
    assert_eq!(
        r.received, 0,
        "with the relay gone, nothing can carry {} -> {ip_b}:\n{}",
        a.name, r.output
    );
    lab.coordinator.start();
    let restarted = t_kill.elapsed();
    // The daemons learn that their old connection is gone at their next keep-alive (a stateless
    // reset from the new process), reconnect, and ping the relay with their new tokens.
    let t_back = Instant::now();
    let first_ab = first_reply_blocking(a, ip_b, t_back);
    let first_ba = first_reply_blocking(b, ip_a, t_back);
    wait_all(
        &mut [&mut *a, &mut *b],
        Duration::from_secs(5),
        "connected",
        coordinator_connected,
    );
    wait_path(a, b, &["relay"], Duration::from_secs(5));
    eprintln!(
        "[relayrst] relay restarted {:.1} s after the kill; first replies through it \
         {:.3} s / {:.3} s after the restart",
        restarted.as_secs_f64(),
        first_ab.as_secs_f64(),
        first_ba.as_secs_f64()
    );
    for (from, to) in [(&*a, ip_b), (&*b, ip_a)] {
        let r = ping(&from.ns, to, 5, 1);
        assert_eq!(
            r.received, 5,
            "through the restarted relay, {} -> {to}:\n{}",
            from.name, r.output
        );
    }
}

/// The relay on its own (`warren-coordinator relay`), the coordinator pointed at it with
/// `--relay-at` and the shared secret file: two hosts that can only be relayed reach each
/// other through it within the relayed first-reply bound, and their status names it; the
/// coordinator runs no relay of its own.
#[test]
fn standalone_relay() {
    lab::needs_root!();
    let mut lab = Lab::start("relaysa");
    let secret = lab.dir.join("relay.secret");
    let relay_addr = SocketAddrV4::new(lab::COORDINATOR_IP, 7450);
    let relay = StandaloneRelay::start(&lab.coordinator.ns, relay_addr, &secret, &lab.dir);
    lab.coordinator.stop();
    lab.coordinator.extra_args = vec![
        "--relay-at".into(),
        relay.addr.to_string(),
        "--relay-secret-file".into(),
        secret.display().to_string(),
    ];
    lab.coordinator.start();
    let (_sa, mut ha) = lab.add_site(SiteKind::Symmetric, 1, "a");
    let (_sb, mut hb) = lab.add_site(SiteKind::Symmetric, 1, "b");
    let (a, b) = (&mut ha[0], &mut hb[0]);
    start_all(&mut [&mut *a, &mut *b]);
    let ip_a = a.up(&lab.coordinator);
    let ip_b = b.up(&lab.coordinator);
    a.warren_ok(&["create", "faraway", "--password", "pw-far"]);
    b.warren_ok(&["join", "faraway", "--password", "pw-far"]);
    let t0 = Instant::now();
    let (ab, ba) = (first_reply(&a.ns, ip_b, t0), first_reply(&b.ns, ip_a, t0));
    for (d, what) in [(ab.join(), "a -> b"), (ba.join(), "b -> a")] {
        let d = d
            .expect("pinger thread")
            .unwrap_or_else(|e| panic!("{what}: no reply: {e}"));
        eprintln!(
            "[relaysa] {what}: first reply after {:.3} s",
            d.as_secs_f64()
        );
        assert!(
            d <= RELAY_FIRST_REPLY_LIMIT,
            "{what}: first reply through the standalone relay after {d:?}"
        );
    }
    wait_path(a, b, &["relay"], Duration::from_secs(5));
    let st = a.status();
    let peer = Host::peer_in(&st, &b.name).expect("b listed");
    assert_eq!(peer["relay"], relay.addr.to_string(), "{peer}");
    let coordinator_said = std::fs::read_to_string(
        lab.dir
            .join("coordinator")
            .join(format!("stdout-{}.txt", lab.coordinator.starts)),
    )
    .unwrap();
    assert!(
        coordinator_said.contains(&format!("relay at {} (standalone)", relay.addr))
            && !coordinator_said.contains("relay on"),
        "the coordinator must not relay itself: {coordinator_said}"
    );
    let r = ping(&b.ns, ip_a, 5, 1);
    assert_eq!(r.received, 5, "{}", r.output);
}

/// Coordinator killed (SIGKILL) while two hosts behind port-restricted NATs talk: they keep
/// talking; after a restart with the same state dir they reconnect by themselves, with the same
/// overlay addresses and networks, still reach each other, and a new host can join the network
/// with its password.
/// A host whose network blocks UDP reaches the coordinator and the relay over TCP+TLS; when
/// the coordinator restarts (and its relay with it) the host reconnects by itself, over TCP
/// again, and relayed traffic resumes.
#[test]
fn udp_blocked_relay_survives_coordinator_restart() {
    lab::needs_root!();
    let mut lab = Lab::start("udpb-restart");
    let (_sa, mut ha) = lab.add_site(SiteKind::UdpBlocked, 1, "a");
    // Behind a symmetric NAT: its random ports meet no SYN, so no direct TCP path either and
    // the pair stays on the relay (a public host, a port-mapping router or a NAT that keeps
    // ports would be reached over TCP: see the next tests).
    let (_sb, mut hb) = lab.add_site(SiteKind::Symmetric, 1, "b");
    let (a, b) = (&mut ha[0], &mut hb[0]);
    start_all(&mut [&mut *a, &mut *b]);
    let ip_a = a.up(&lab.coordinator);
    let ip_b = b.up(&lab.coordinator);
    a.warren_ok(&["create", "hotel", "--password", "pw-hotel"]);
    b.warren_ok(&["join", "hotel", "--password", "pw-hotel"]);
    first_reply_blocking(a, ip_b, Instant::now());
    assert_eq!(a.status()["coordinator"]["transport"], "tcp");

    lab.coordinator.kill();
    wait_all(
        &mut [&mut *a, &mut *b],
        Duration::from_secs(40),
        "noticed the coordinator is gone",
        |st| !coordinator_connected(st),
    );
    lab.coordinator.start();
    wait_all(
        &mut [&mut *a, &mut *b],
        Duration::from_secs(45),
        "reconnected by themselves",
        coordinator_connected,
    );
    assert_eq!(a.status()["coordinator"]["transport"], "tcp");
    assert_eq!(b.status()["coordinator"]["transport"], "quic");
    let t0 = Instant::now();
    first_reply_blocking(a, ip_b, t0);
    first_reply_blocking(b, ip_a, t0);
    wait_path(a, b, &["relay"], Duration::from_secs(5));
    for (from, to) in [(&*a, ip_b), (&*b, ip_a)] {
        let r = ping(&from.ns, to, 3, 1);
        assert_eq!(
            r.received, 3,
            "after the restart, {} -> {to}:\n{}",
            from.name, r.output
        );
    }
}

#[test]
fn coordinator_restart() {
    lab::needs_root!();
    let mut lab = Lab::start("restart");
    let (_sa, mut ha) = lab.add_site(SiteKind::PortRestricted, 1, "a");
    let (_sb, mut hb) = lab.add_site(SiteKind::PortRestricted, 1, "b");
    let (_sc, mut hc) = lab.add_site(SiteKind::Public, 1, "c");
    let (a, b, c) = (&mut ha[0], &mut hb[0], &mut hc[0]);
    start_all(&mut [&mut *a, &mut *b]);
    let ip_a = a.up(&lab.coordinator);
    let ip_b = b.up(&lab.coordinator);
    a.warren_ok(&["create", "keepme", "--password", "pw-keep"]);
    b.warren_ok(&["join", "keepme", "--password", "pw-keep"]);
    first_reply_blocking(a, ip_b, Instant::now());
    // The first replies may come through the coordinator's relay; this test is about the
    // direct path surviving the coordinator, so wait for it.
    let (na, nb) = (a.name.clone(), b.name.clone());
    wait_all(
        &mut [&mut *a, &mut *b],
        Duration::from_secs(10),
        "a direct path",
        |st| {
            [&na, &nb].iter().any(|n| {
                Host::peer_in(st, n).is_some_and(|p| p["path"] == "direct" || p["path"] == "lan")
            })
        },
    );
    let before = [a.status(), b.status()];

    // Crash.
    lab.coordinator.kill();
    let t_kill = Instant::now();
    for (from, to) in [(&*a, ip_b), (&*b, ip_a)] {
        let r = ping(&from.ns, to, 3, 1);
        assert_eq!(
            r.received, 3,
            "with the coordinator gone, {} -> {to}:\n{}",
            from.name, r.output
        );
    }
    wait_all(
        &mut [&mut *a, &mut *b],
        Duration::from_secs(40),
        "noticed the coordinator is gone",
        |st| !coordinator_connected(st),
    );
    let noticed = t_kill.elapsed();
    eprintln!(
        "[restart] both daemons saw the coordinator gone {:.1} s after the kill",
        noticed.as_secs_f64()
    );
    // Existing peers keep talking while the coordinator is away.
    for (from, to) in [(&*a, ip_b), (&*b, ip_a)] {
        let r = ping(&from.ns, to, 3, 1);
        assert_eq!(
            r.received, 3,
            "coordinator away, {} -> {to}:\n{}",
            from.name, r.output
        );
    }
    // Let the daemons' backoff grow before the coordinator comes back.
    std::thread::sleep(Duration::from_secs(12));
    let down = t_kill.elapsed();
    lab.coordinator.start();
    let back = wait_all(
        &mut [&mut *a, &mut *b],
        Duration::from_secs(45),
        "reconnected by themselves",
        coordinator_connected,
    );
    eprintln!(
        "[restart] coordinator down {:.1} s; both daemons reconnected {:.1} s after it restarted (backoff caps at 30 s)",
        down.as_secs_f64(),
        back.as_secs_f64()
    );

    for (h, old) in [(&*a, &before[0]), (&*b, &before[1])] {
        let st = h.status();
        assert_eq!(
            st["self"]["overlay_ip"], old["self"]["overlay_ip"],
            "{}: overlay address changed across the restart",
            h.name
        );
        assert_eq!(
            st["coordinator"]["overlay_ip"], old["coordinator"]["overlay_ip"],
            "{}: lease changed",
            h.name
        );
        assert_eq!(
            networks(&st),
            vec!["keepme".to_string()],
            "{}: networks after the restart: {}",
            h.name,
            st["coordinator"]
        );
    }
    let st_a = a.status();
    let pb = Host::peer_in(&st_a, &b.name)
        .unwrap_or_else(|| panic!("{} no longer lists {}: {st_a}", a.name, b.name));
    assert_eq!(
        pb["overlay_ip"],
        ip_b.to_string(),
        "{}'s view of {}",
        a.name,
        b.name
    );
    for (from, to) in [(&*a, ip_b), (&*b, ip_a)] {
        let r = ping(&from.ns, to, 3, 1);
        assert_eq!(
            r.received, 3,
            "after the restart, {} -> {to}:\n{}",
            from.name, r.output
        );
    }

    // The network and its password survived: a new host joins and reaches the others.
    a.warren_err(
        &["create", "keepme", "--password", "x"],
        &["keepme", "already exists"],
    );
    start_all(&mut [&mut *c]);
    c.up(&lab.coordinator);
    c.warren_ok(&["join", "keepme", "--password", "pw-keep"]);
    first_reply_blocking(c, ip_a, Instant::now());
    let st_c = c.status();
    for (name, ip) in [(&a.name, ip_a), (&b.name, ip_b)] {
        let p = Host::peer_in(&st_c, name)
            .unwrap_or_else(|| panic!("{} does not list {name}: {st_c}", c.name));
        assert_eq!(p["overlay_ip"], ip.to_string());
    }
}

/// Wrong password, unknown network, duplicate network: exit code 1 and a clear message; the
/// right password then works, and leaving removes the peer on the other side.
#[test]
fn wrong_password_and_unknown_network() {
    lab::needs_root!();
    let mut lab = Lab::start("password");
    let (_sa, mut ha) = lab.add_site(SiteKind::Public, 1, "a");
    let (_sb, mut hb) = lab.add_site(SiteKind::FullCone, 1, "b");
    let (a, b) = (&mut ha[0], &mut hb[0]);
    start_all(&mut [&mut *a, &mut *b]);
    a.up(&lab.coordinator);
    let ip_b = b.up(&lab.coordinator);
    a.warren_ok(&["create", "lan-party", "--password", "secret"]);

    b.warren_err(
        &["join", "lan-party", "--password", "wrong"],
        &["wrong password for network lan-party"],
    );
    let st = b.status();
    assert!(
        networks(&st).is_empty(),
        "a refused join left {} in {:?}",
        b.name,
        networks(&st)
    );
    assert!(
        Host::peer_in(&st, &a.name).is_none(),
        "a refused join introduced {} to {}: {st}",
        a.name,
        b.name
    );
    b.warren_err(
        &["join", "nope", "--password", "secret"],
        &["no network named nope", "warren create nope"],
    );
    b.warren_err(
        &["create", "lan-party", "--password", "other"],
        &["network lan-party already exists", "warren join lan-party"],
    );

    let out = b.warren_ok(&["join", "lan-party", "--password", "secret"]);
    assert!(
        out.contains("joined network lan-party"),
        "join printed {out:?}"
    );
    first_reply_blocking(a, ip_b, Instant::now());

    let out = b.warren_ok(&["leave", "lan-party"]);
    assert!(
        out.contains("left network lan-party"),
        "leave printed {out:?}"
    );
    let t = Instant::now();
    loop {
        let st = a.status();
        if Host::peer_in(&st, &b.name).is_none() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{} still lists {} 5 s after it left: {st}",
            a.name,
            b.name
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = ping(&a.ns, ip_b, 2, 1);
    assert_eq!(
        r.received, 0,
        "{} still reaches {} after it left:\n{}",
        a.name, b.name, r.output
    );
}

/// A second host joining a network under a name already used there is refused with a message
/// naming the fix (`--name`); after `warren up --name` with another name it joins.
#[test]
fn duplicate_name_in_network() {
    lab::needs_root!();
    let mut lab = Lab::start("dupname");
    let (_sa, mut ha) = lab.add_site(SiteKind::Public, 1, "a");
    let (_sb, mut hb) = lab.add_site(SiteKind::PortRestricted, 1, "b");
    let (a, b) = (&mut ha[0], &mut hb[0]);
    a.name = "alice".into();
    b.name = "alice".into();
    start_all(&mut [&mut *a, &mut *b]);
    a.up(&lab.coordinator);
    a.warren_ok(&["create", "office", "--password", "pw"]);
    // Outside a shared network the name is free.
    b.up(&lab.coordinator);
    b.warren_err(
        &["join", "office", "--password", "pw"],
        &[
            "the name alice is already used by another host in network office",
            "--name",
        ],
    );
    assert!(networks(&b.status()).is_empty());
    assert!(
        Host::peer_in(&a.status(), "alice").is_none(),
        "the refused host shows up in alice's peers"
    );

    b.name = "bob".into();
    let ip_b = b.up(&lab.coordinator);
    b.warren_ok(&["join", "office", "--password", "pw"]);
    let st = a.status();
    assert!(
        Host::peer_in(&st, "bob").is_some(),
        "alice does not list bob: {st}"
    );
    first_reply_blocking(a, ip_b, Instant::now());
}

/// Join attempts are rate limited per source address: a host guessing passwords is stopped
/// after a burst, while another source still joins.
#[test]
fn join_attempts_are_rate_limited_per_source() {
    lab::needs_root!();
    let mut lab = Lab::start("ratelimit");
    let (_sa, mut ha) = lab.add_site(SiteKind::Public, 1, "a");
    let (_sb, mut hb) = lab.add_site(SiteKind::FullCone, 1, "b");
    let (_sc, mut hc) = lab.add_site(SiteKind::PortRestricted, 1, "c");
    let (a, b, c) = (&mut ha[0], &mut hb[0], &mut hc[0]);
    start_all(&mut [&mut *a, &mut *b, &mut *c]);
    a.up(&lab.coordinator);
    b.up(&lab.coordinator);
    c.up(&lab.coordinator);
    a.warren_ok(&["create", "vault", "--password", "right"]);

    let mut refused_for_rate = None;
    for attempt in 1..=8 {
        let o = b.warren(&["join", "vault", "--password", &format!("guess{attempt}")]);
        let err = o.stderr.clone();
        assert!(!o.status.success(), "guess {attempt} was accepted");
        if err.contains("too many join attempts") {
            refused_for_rate = Some(attempt);
            break;
        }
        assert!(err.contains("wrong password"), "attempt {attempt}: {err}");
    }
    let n = refused_for_rate.expect("8 wrong guesses in a row were never rate limited");
    assert!(n > 1, "the very first attempt was refused");
    // Now even the right password is refused from that source for a while...
    b.warren_err(
        &["join", "vault", "--password", "right"],
        &["too many join attempts"],
    );
    // ...while another source is not affected.
    let out = c.warren_ok(&["join", "vault", "--password", "right"]);
    assert!(out.contains("joined network vault"), "join printed {out:?}");
}

/// A daemon restarted by itself comes back to its coordinator (remembered), with the same
/// overlay address, and reaches its peers again; `warren up` with a wrong coordinator key is
/// refused (the Noise handshake cannot complete) with a message naming the likely cause.
#[test]
fn daemon_restart_and_wrong_coordinator_key() {
    lab::needs_root!();
    let mut lab = Lab::start("dmnrestart");
    let (_sa, mut ha) = lab.add_site(SiteKind::PortRestricted, 1, "a");
    let (_sb, mut hb) = lab.add_site(SiteKind::FullCone, 1, "b");
    let (_sc, mut hc) = lab.add_site(SiteKind::Public, 1, "c");
    let (a, b, c) = (&mut ha[0], &mut hb[0], &mut hc[0]);
    start_all(&mut [&mut *a, &mut *b, &mut *c]);
    let ip_a = a.up(&lab.coordinator);
    b.up(&lab.coordinator);
    a.warren_ok(&["create", "home", "--password", "pw"]);
    b.warren_ok(&["join", "home", "--password", "pw"]);
    first_reply_blocking(b, ip_a, Instant::now());

    a.stop_daemon();
    a.start_daemon();
    a.wait_api(Duration::from_secs(10));
    let t = Instant::now();
    wait_all(
        &mut [&mut *a],
        Duration::from_secs(15),
        "reconnected to its coordinator after a restart",
        coordinator_connected,
    );
    let st = a.status();
    assert_eq!(
        Host::overlay_in(&st),
        Some(ip_a),
        "overlay address changed across a daemon restart: {st}"
    );
    assert_eq!(networks(&st), vec!["home".to_string()]);
    first_reply_blocking(b, ip_a, t);

    // A wrong pinned key: another coordinator's, which this one cannot prove it holds.
    let wrong = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    assert_ne!(wrong, lab.coordinator.key);
    let err = c.warren_err(
        &[
            "up",
            "--coordinator",
            &lab.coordinator.address(),
            "--coordinator-key",
            wrong,
            "--name",
            "mallory",
        ],
        &["coordinator-key"],
    );
    eprintln!("[dmnrestart] wrong key: {err}");
    let st = c.status();
    assert!(
        !coordinator_connected(&st),
        "connected despite a wrong coordinator key: {st}"
    );
}

/// STUN against the coordinator's two ports tells each host its public address and whether
/// its NAT maps endpoint-independently or symmetrically (`status --json` → self.reflexive,
/// self.nat).
#[test]
fn stun_tells_reflexive_address_and_nat_kind() {
    lab::needs_root!();
    let mut lab = Lab::start("stun");
    let expectations = [
        (SiteKind::Public, "endpoint_independent"),
        (SiteKind::FullCone, "endpoint_independent"),
        (SiteKind::PortRestricted, "endpoint_independent"),
        (SiteKind::Symmetric, "symmetric"),
    ];
    let mut sites = Vec::new();
    for (i, (kind, want)) in expectations.iter().enumerate() {
        let (site, hosts) = lab.add_site(*kind, 1, &format!("s{i}"));
        sites.push((site, hosts, *want));
    }
    for (_, hosts, _) in sites.iter_mut() {
        start_all(&mut [&mut hosts[0]]);
        hosts[0].up(&lab.coordinator);
    }
    for (site, hosts, want) in sites.iter_mut() {
        let host = &mut hosts[0];
        wait_all(
            &mut [&mut *host],
            Duration::from_secs(10),
            "measured its NAT with STUN",
            |st| st["self"]["nat"] != "unknown",
        );
        let st = host.status();
        assert_eq!(
            st["self"]["nat"], *want,
            "{:?} site: {}",
            site.kind, st["self"]
        );
        let reflexive: std::net::SocketAddr = st["self"]["reflexive"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no reflexive address: {}", st["self"]));
        assert_eq!(
            reflexive.ip(),
            std::net::IpAddr::V4(site.public_ip),
            "{:?} site is seen from its public address",
            site.kind
        );
        eprintln!("[stun] {:?}: {reflexive} {}", site.kind, st["self"]["nat"]);
    }
}

/// Port mapping (issue 6): a host behind a router running miniupnpd gets a mapping of its UDP
/// port, `status --json` and `netcheck --json` report it (with the protocol that made it),
/// miniupnpd holds the forwarding rule; `warren down` deletes it, `warren up` maps again, and
/// a daemon that exits deletes it too.
#[test]
fn port_mapping_is_reported_and_deleted() {
    lab::needs_root!();
    use lab::upnp::redirects;
    let mut lab = Lab::start("pmap");
    let (site, mut hosts) = lab.add_site(SiteKind::SymmetricUpnp, 1, "m");
    let router = site.router_ns.clone().expect("a router");
    let host = &mut hosts[0];
    start_all(&mut [&mut *host]);
    host.up(&lab.coordinator);
    let mapped_of = |st: &Value| st["self"]["mapped"].as_str().map(str::to_string);
    wait_all(
        &mut [&mut *host],
        Duration::from_secs(20),
        "got a port mapping",
        |st| mapped_of(st).is_some(),
    );
    let mapped = mapped_of(&host.status()).unwrap();
    let want = format!("{}:{}", site.public_ip, lab::WG_PORT);
    assert_eq!(
        mapped, want,
        "the daemon's own port, on the router's WAN address"
    );
    let report: Value =
        serde_json::from_str(&host.warren_ok(&["netcheck", "--json"])).expect("netcheck --json");
    let pm = &report["port_mapping"];
    eprintln!("[pmap] netcheck port_mapping: {pm}");
    assert_eq!(pm["external"], want.as_str(), "{report}");
    let protocol = pm["protocol"].as_str().unwrap_or_default().to_string();
    assert!(
        ["pcp", "nat_pmp", "upnp"].contains(&protocol.as_str()),
        "{report}"
    );
    let text = host.warren_ok(&["netcheck"]);
    assert!(
        text.contains(&format!("mapped address: {want} via")),
        "{text}"
    );
    let rules = redirects(&router);
    assert!(
        rules.contains(&format!("dport {}", lab::WG_PORT)),
        "miniupnpd forwards the port: {rules}"
    );
    // The TCP listen port too (direct paths over TCP), asked for a moment after the UDP one.
    let t0 = Instant::now();
    while !lab::upnp::forwards_tcp(&router, lab::WG_PORT) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "miniupnpd forwards the TCP port: {}",
            redirects(&router)
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let wait_rules = |gone: bool, what: &str| {
        let t0 = Instant::now();
        while redirects(&router).is_empty() != gone {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "{what}: {}",
                redirects(&router)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    host.warren_ok(&["down"]);
    wait_rules(true, "the mapping is deleted after `warren down`");
    assert!(mapped_of(&host.status()).is_none());
    host.warren_ok(&["up"]);
    wait_rules(false, "mapped again after `warren up`");
    host.stop_daemon();
    wait_rules(true, "the mapping is deleted when the daemon exits");
    eprintln!("[pmap] {protocol} mapping {want}: reported, deleted on down and on exit");
}

/// Relay ↔ direct under load (issue 6): two public hosts talk directly; then nftables in B's
/// namespace drops the UDP between A and B (not to the coordinator), so the direct path dies and
/// traffic must be on the relay within 3 s; the rule is removed and the path goes back to
/// direct. A rate-limited TCP transfer runs through both switches and must arrive intact.
#[test]
fn relay_direct_switch_keeps_tcp() {
    lab::needs_root!();
    use lab::traffic::TcpTransfer;
    let mut lab = Lab::start("switch");
    let (_sa, mut ha) = lab.add_site(SiteKind::Public, 1, "a");
    let (_sb, mut hb) = lab.add_site(SiteKind::Public, 1, "b");
    let (a, b) = (&mut ha[0], &mut hb[0]);
    start_all(&mut [&mut *a, &mut *b]);
    a.up(&lab.coordinator);
    let ip_b = b.up(&lab.coordinator);
    a.warren_ok(&["create", "sw", "--password", "pw"]);
    b.warren_ok(&["join", "sw", "--password", "pw"]);
    first_reply_blocking(a, ip_b, Instant::now());
    const DIRECT: &[&str] = &["direct", "lan"];
    wait_path(a, b, DIRECT, Duration::from_secs(10));

    // 6 MB at 400 kB/s: about 15 s of traffic across both switches.
    let xfer = TcpTransfer::start(
        &a.ns,
        &b.ns,
        std::net::SocketAddrV4::new(ip_b, 5201),
        6_000_000,
        Some(400_000.0),
        42,
    );
    std::thread::sleep(Duration::from_secs(2));

    b.cut_udp_with(a.ip, "wswitch");
    let to_relay = wait_path(a, b, &["relay"], Duration::from_secs(10));
    eprintln!("[switch] direct path cut: both on the relay after {to_relay:?}");
    assert!(
        to_relay <= Duration::from_secs(3),
        "traffic took {to_relay:?} to move to the relay (limit 3 s)"
    );
    let moved = xfer.received();
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        xfer.received() > moved,
        "the transfer stalled on the relay at {moved} bytes"
    );

    b.restore_udp("wswitch");
    let back = wait_path(a, b, DIRECT, Duration::from_secs(20));
    eprintln!("[switch] cut lifted: direct again after {back:?}");

    let r = xfer.finish(Duration::from_secs(60));
    assert_eq!(r.sent.bytes, 6_000_000);
    assert_eq!(
        (r.received.bytes, r.received.hash),
        (r.sent.bytes, r.sent.hash),
        "the transfer arrived damaged across the switches"
    );
}
