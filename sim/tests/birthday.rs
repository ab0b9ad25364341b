//! Birthday probing through the real coordinator: a port-restricted host and one behind a
//! symmetric NAT with fully random ports. The plain probes cannot meet; the runs both nodes
//! start after the call to probe find a direct path within their bounds, and the side socket
//! that won carries the pair's traffic from then on.

use std::net::SocketAddr;
use std::time::Duration;
use warren_daemon_core::path::birthday::{BirthdayConfig, Role};
use warren_daemon_core::path::PathConfig;
use warren_proto::datagram::DatagramKind;
use warren_sim::world::Sent;
use warren_sim::{seeds, HostId, PathKind, Site, SiteKind, World, MAIN_PORT};

struct Pair {
    w: World,
    easy: HostId,
    hard: HostId,
    easy_site: Site,
    hard_site: Site,
}

/// The two hosts, both in one network, datagrams traced from the join on.
fn pair(seed: u64, easy_kind: SiteKind) -> Pair {
    let mut w = World::new(seed);
    let easy_site = w.add_site(easy_kind, 1, "easy");
    let hard_site = w.add_site(SiteKind::Symmetric, 1, "hard");
    let (easy, hard) = (easy_site.hosts[0], hard_site.hosts[0]);
    w.trace();
    w.network(&[easy, hard], "b");
    Pair {
        w,
        easy,
        hard,
        easy_site,
        hard_site,
    }
}

fn sent_by(w: &World, h: HostId) -> impl Iterator<Item = &Sent> {
    w.sent
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .filter(move |s| s.host == h)
}

fn best(w: &World, h: HostId) -> Option<warren_daemon_core::path::BestPath> {
    w.host(h).node.peers().next()?.paths().best_path()
}

#[test]
fn port_restricted_and_symmetric_meet_directly_within_the_runs_bounds() {
    let c = BirthdayConfig::default();
    for seed in seeds(1..=20) {
        let mut p = pair(seed, SiteKind::PortRestricted);
        let joined = p.w.now;
        let (easy, hard) = (p.easy, p.hard);
        let met = p.w.run_until(Duration::from_secs(10), |w| {
            w.path(easy, hard) == PathKind::Direct && w.path(hard, easy) == PathKind::Direct
        });
        assert!(
            met,
            "seed {seed}: no direct path ({:?}/{:?})",
            p.w.path(easy, hard),
            p.w.path(hard, easy)
        );
        let took = p.w.now - joined;
        // The runs wait for the plain probes, then send within their bound; STUN and the
        // introduction come first.
        assert!(
            took <= c.max_duration(Role::Easy) + Duration::from_secs(1),
            "seed {seed}: {took:?}"
        );
        p.w.run_for(Duration::from_secs(6));
        let easy_wan = SocketAddr::new(p.easy_site.public_ip, MAIN_PORT);
        // The easy side reaches one of the hard side's random ports; the hard side reaches the
        // easy side's public address from the side socket that won.
        let (e, h) = (best(&p.w, easy).unwrap(), best(&p.w, hard).unwrap());
        assert_eq!(e.addr.ip(), p.hard_site.public_ip, "seed {seed}");
        assert_eq!(h.addr, easy_wan, "seed {seed}");
        assert_eq!(
            e.rtt,
            Duration::from_millis(44),
            "seed {seed}: 2 × (1 + 10 + 10 + 1) ms"
        );
        // The hard side meets the easy side from the side socket that won, or (when an easy
        // probe hit the port its main socket was given for the easy side) from its main
        // socket; either way every other side socket is closed.
        let kept = p.w.host(hard).kept_for(easy_wan);
        assert_eq!(
            p.w.host(hard).side_open(),
            usize::from(kept.is_some()),
            "seed {seed}: the losers closed"
        );
        let kept = kept.unwrap_or(MAIN_PORT);
        assert!(
            p.w.host(hard).side_peak <= c.sockets as usize,
            "seed {seed}"
        );
        // Bounds on what each side sent: the hard side's pings from side sockets (the kept
        // one's keepalives aside), the easy side's probes to the hard side's address (its
        // chosen path's keepalives aside; two plain rounds to the reflexive address allowed).
        let side_pings = sent_by(&p.w, hard)
            .filter(|s| s.port != MAIN_PORT && s.port != kept)
            .count();
        assert!(
            side_pings as u32 <= c.max_packets(Role::Hard),
            "seed {seed}: {side_pings}"
        );
        let plain = 2 * PathConfig::default().probe_attempts as u32;
        let probes = sent_by(&p.w, easy)
            .filter(|s| s.kind == DatagramKind::Disco && s.dst.ip() == p.hard_site.public_ip)
            .filter(|s| s.dst != e.addr)
            .count();
        assert!(
            probes as u32 <= c.max_packets(Role::Easy) + plain,
            "seed {seed}: {probes}"
        );
    }
}

#[test]
fn the_winning_socket_carries_traffic_and_keepalives() {
    let mut p = pair(3, SiteKind::PortRestricted);
    let (easy, hard) = (p.easy, p.hard);
    assert!(p
        .w
        .run_until(Duration::from_secs(10), |w| w.path(hard, easy)
            == PathKind::Direct));
    let easy_wan = SocketAddr::new(p.easy_site.public_ip, MAIN_PORT);
    let kept = p.w.host(hard).kept_for(easy_wan).unwrap();
    let from_kept = |w: &World| sent_by(w, hard).filter(|s| s.port == kept).count();
    let before = from_kept(&p.w);
    let won = p.w.now;
    let replies = p.w.echoes(
        hard,
        easy,
        100,
        Duration::from_millis(100),
        Duration::from_secs(1),
    );
    assert_eq!(replies, 100);
    assert!(
        from_kept(&p.w) >= before + 100,
        "{before} → {}",
        from_kept(&p.w)
    );
    assert_eq!(
        sent_by(&p.w, hard)
            .filter(|s| s.at >= won && s.port == MAIN_PORT && s.dst == easy_wan)
            .count(),
        0,
        "nothing to the easy side from the main socket"
    );
    // Idle: the keepalive pings go through the side socket too, and hold the path.
    let idle = from_kept(&p.w);
    p.w.run_for(Duration::from_secs(60));
    assert!(
        from_kept(&p.w) >= idle + 10,
        "keepalives from the kept socket"
    );
    assert_eq!(p.w.path(easy, hard), PathKind::Direct);
    assert_eq!(p.w.path(hard, easy), PathKind::Direct);
    let dropped =
        p.w.host(easy)
            .node
            .peers()
            .next()
            .unwrap()
            .paths()
            .counters()
            .paths_dropped;
    assert_eq!(dropped, 0);
}

#[test]
fn a_plain_path_cancels_the_run_before_it_sends() {
    // A full cone lets the symmetric side's plain probes in: the path is found before the
    // runs would start, and no side socket is ever opened.
    let mut p = pair(1, SiteKind::FullCone);
    let (easy, hard) = (p.easy, p.hard);
    p.w.run_for(Duration::from_secs(6));
    assert_eq!(p.w.path(easy, hard), PathKind::Direct);
    assert_eq!(p.w.path(hard, easy), PathKind::Direct);
    for h in [easy, hard] {
        assert_eq!(p.w.host(h).side_peak, 0, "host {h}");
        assert_eq!(
            sent_by(&p.w, h).filter(|s| s.port != MAIN_PORT).count(),
            0,
            "host {h}"
        );
    }
}
