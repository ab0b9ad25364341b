//! Path probing between two real nodes without a coordinator: the test hands each the calls to
//! probe (when and with what the coordinator would), so the probing itself is in view — hole
//! punching, the ranking rules, dead paths, rebinding, loss, and how many datagrams it costs.

use std::net::SocketAddr;
use std::time::Duration;
use warren_daemon_core::path::{BestPath, CandidateKind, PathCounters};
use warren_sim::fabric::Router;
use warren_sim::{
    seeds, HostId, Iface, Nat, NatConfig, NatId, SiteKind, World, INTERNET, MAIN_PORT,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Two hosts at two sites, each behind its own port-restricted NAT, introduced to each
/// other; their LAN and public candidates.
struct Two {
    w: World,
    a: HostId,
    b: HostId,
    rb: NatId,
    a_lan: SocketAddr,
    a_wan: SocketAddr,
    b_lan: SocketAddr,
    b_wan: SocketAddr,
}

fn two_sites(seed: u64) -> Two {
    let mut w = World::new(seed);
    let sa = w.add_site(SiteKind::PortRestricted, 1, "a");
    let sb = w.add_site(SiteKind::PortRestricted, 1, "b");
    let (a, b) = (sa.hosts[0], sb.hosts[0]);
    w.introduce(a, b);
    let lan = |w: &World, h: HostId| SocketAddr::new(w.fabric.hosts[h][0].ip, MAIN_PORT);
    Two {
        a_lan: lan(&w, a),
        b_lan: lan(&w, b),
        a_wan: SocketAddr::new(sa.public_ip, MAIN_PORT),
        b_wan: SocketAddr::new(sb.public_ip, MAIN_PORT),
        rb: sb.router.unwrap(),
        w,
        a,
        b,
    }
}

impl Two {
    fn call_a(&mut self) {
        let (a, b, lan, wan) = (self.a, self.b, self.b_lan, self.b_wan);
        self.w.call_me_maybe(a, b, &[lan], Some(wan));
    }

    fn call_b(&mut self) {
        let (a, b, lan, wan) = (self.a, self.b, self.a_lan, self.a_wan);
        self.w.call_me_maybe(b, a, &[lan], Some(wan));
    }
}

/// `h`'s one peer's chosen path.
fn best(w: &World, h: HostId) -> Option<BestPath> {
    w.host(h).node.peers().next()?.paths().best_path()
}

fn counters(w: &World, h: HostId) -> PathCounters {
    *w.host(h).node.peers().next().unwrap().paths().counters()
}

/// When `h` first had a path, since the world began.
fn first_path(w: &World, h: HostId) -> Option<Duration> {
    let (_, changes) = w.host(h).history.iter().next()?;
    changes
        .iter()
        .find(|(_, k)| *k != warren_sim::PathKind::None)
        .map(|(t, _)| *t - w.start)
}

#[test]
fn simultaneous_probing_punches_both_nats() {
    let mut t = two_sites(1);
    // The call reaches B 100 ms after A: A's first ping meets B's NAT before B has sent
    // anything and is refused; B's pings open B's NAT, and A's retry gets in.
    t.call_a();
    t.w.run_for(ms(100));
    t.call_b();
    t.w.run_for(secs(3));
    let (a, b) = (best(&t.w, t.a).unwrap(), best(&t.w, t.b).unwrap());
    assert_eq!((a.addr, a.kind), (t.b_wan, CandidateKind::Reflexive));
    assert_eq!((b.addr, b.kind), (t.a_wan, CandidateKind::Reflexive));
    // Host to LAN 1 ms, each router 10 ms, both ways.
    assert_eq!(a.rtt, ms(44));
    assert_eq!(b.rtt, ms(44));
    assert!(
        t.w.fabric.routers[t.rb].nat.counters.refused > 0,
        "B's NAT refused A's first ping"
    );
    for h in [t.a, t.b] {
        let at = first_path(&t.w, h).unwrap();
        assert!(at < ms(500), "host {h}: first path after {at:?}");
    }
    // The other site's LAN address never answers.
    let peer = t.w.host(t.a).node.peers().next().unwrap();
    let lan = peer.paths().paths().find(|p| p.addr == t.b_lan).unwrap();
    assert_eq!(lan.stats.rtt, None);
}

#[test]
fn one_sided_probing_does_not_punch_and_stays_bounded() {
    let mut t = two_sites(1);
    t.call_a();
    t.w.run_for(secs(11));
    assert_eq!(best(&t.w, t.a), None);
    assert_eq!(best(&t.w, t.b), None);
    // One probe round: 2 candidates × 10 pings, then silence until the retry.
    assert_eq!(counters(&t.w, t.a).pings_sent, 20);
    let cb = counters(&t.w, t.b);
    assert_eq!(cb.pings_sent + cb.pongs_sent, 0);
    assert_eq!(t.w.fabric.routers[t.rb].nat.counters.refused, 10);
    // Over a minute: one round per retry interval, no more.
    t.w.run_for(secs(49));
    assert_eq!(best(&t.w, t.a), None);
    let c = counters(&t.w, t.a);
    assert!(
        (5..=6).contains(&c.probe_rounds),
        "{} rounds in 60 s",
        c.probe_rounds
    );
    // The last round may still be running at 60 s.
    assert!(
        c.pings_sent > 20 * (c.probe_rounds - 1) && c.pings_sent <= 20 * c.probe_rounds,
        "{c:?}"
    );
}

#[test]
fn a_public_peer_is_reached_when_only_one_side_probes() {
    // B has a public address: A's ping gets in, B answers and pings back through the hole
    // A's ping opened, so both sides end with a path.
    let mut w = World::new(1);
    let sa = w.add_site(SiteKind::PortRestricted, 1, "a");
    let sb = w.add_site(SiteKind::Public, 1, "b");
    let (a, b) = (sa.hosts[0], sb.hosts[0]);
    w.introduce(a, b);
    let b_wan = SocketAddr::new(sb.public_ip, MAIN_PORT);
    w.call_me_maybe(a, b, &[], Some(b_wan));
    w.run_for(secs(3));
    assert_eq!(best(&w, a).map(|p| p.addr), Some(b_wan));
    let pb = best(&w, b).unwrap();
    assert_eq!(
        (pb.addr, pb.kind),
        (
            SocketAddr::new(sa.public_ip, MAIN_PORT),
            CandidateKind::Observed
        )
    );
    assert_eq!(counters(&w, a).pings_sent, 1, "proven by the first pong");
    assert_eq!(counters(&w, b).pings_sent, 1, "one ping back, no round");
}

/// Two hosts on one LAN (`lan_ms` each way between a host and it), each also behind a NAT of
/// its own to the internet (`wan_ms` from host to router and on, each way); introduced, with
/// their candidates: (LAN, public) of each.
fn lan_and_own_nats(
    seed: u64,
    lan_ms: u64,
    wan_ms: u64,
) -> (World, HostId, HostId, [SocketAddr; 4]) {
    let mut w = World::new(seed);
    let lan = w.fabric.add_segment("shared lan");
    let mut hosts = Vec::new();
    let mut cands = Vec::new();
    for i in 0..2u8 {
        let own = w.fabric.add_segment(format!("own {i}"));
        let public = format!("203.0.113.{}", 1 + i).parse().unwrap();
        let r = w.fabric.add_router(Router {
            nat: Nat::new(
                NatConfig::port_restricted().with_latency(ms(wan_ms)),
                public,
            ),
            inside: own,
            outside: INTERNET,
            gateway: None,
            up: true,
        });
        let lan_ip = format!("192.168.1.{}", 10 + i).parse().unwrap();
        let ifaces = vec![
            Iface {
                seg: lan,
                ip: lan_ip,
                gateway: None,
                latency: ms(lan_ms),
                up: true,
            },
            Iface {
                seg: own,
                ip: format!("10.0.{i}.10").parse().unwrap(),
                gateway: Some(r),
                latency: ms(wan_ms),
                up: true,
            },
        ];
        hosts.push(w.add_host(&format!("h{i}"), ifaces));
        cands.push(SocketAddr::new(lan_ip, MAIN_PORT));
        cands.push(SocketAddr::new(public, MAIN_PORT));
    }
    let (a, b) = (hosts[0], hosts[1]);
    w.introduce(a, b);
    w.call_me_maybe(a, b, &[cands[2]], Some(cands[3]));
    w.call_me_maybe(b, a, &[cands[0]], Some(cands[1]));
    (w, a, b, [cands[0], cands[1], cands[2], cands[3]])
}

#[test]
fn same_lan_wins_even_when_another_path_is_faster() {
    // A slow LAN (10 ms each way to it: a congested Wi-Fi bridge) and a fast internet (1 ms
    // hops): the LAN path is chosen by rule.
    let (mut w, a, b, [a_lan, a_wan, b_lan, b_wan]) = lan_and_own_nats(1, 10, 1);
    w.run_for(secs(3));
    for (h, peer_lan, peer_wan) in [(a, b_lan, b_wan), (b, a_lan, a_wan)] {
        let p = best(&w, h).unwrap();
        assert_eq!(
            (p.addr, p.kind, p.rtt),
            (peer_lan, CandidateKind::Lan, ms(40))
        );
        // The public path was proven too, and is five times faster.
        let peer = w.host(h).node.peers().next().unwrap();
        let wan = peer.paths().paths().find(|p| p.addr == peer_wan).unwrap();
        assert_eq!(wan.stats.rtt, Some(ms(8)));
        // It answered first and was used until the LAN pong came.
        let kinds: Vec<_> = w
            .host(h)
            .history
            .values()
            .next()
            .unwrap()
            .iter()
            .map(|c| c.1)
            .collect();
        use warren_sim::PathKind::*;
        assert_eq!(kinds, [None, Direct, Lan], "host {h}");
    }
}

#[test]
fn lowest_rtt_wins_among_internet_paths() {
    // B is reachable over IPv4 through its NAT and over IPv6 directly; which is faster varies.
    // (B's IPv4 router delay, B's IPv6 delay) → the path both choose. The IPv6 address is
    // handed over as a mapped one (a PCP pinhole), not among the LAN addresses, so both are
    // internet paths and only the round trip decides.
    for (b4, b6, want_v6) in [
        (40, 5, true),
        (5, 40, false),
        (12, 10, true),
        (10, 12, false),
    ] {
        let mut w = World::new(1);
        let mut hosts = Vec::new();
        let mut cands = Vec::new();
        // Each host is 1 ms from its router; the router's delay makes up the rest of `v4`.
        for (i, (v4, v6)) in [(10, 10), (b4, b6)].into_iter().enumerate() {
            let lan = w.fabric.add_segment(format!("lan {i}"));
            let public = format!("203.0.113.{}", 1 + i).parse().unwrap();
            let r = w.fabric.add_router(Router {
                nat: Nat::new(
                    NatConfig::port_restricted().with_latency(ms(v4 - 1)),
                    public,
                ),
                inside: lan,
                outside: INTERNET,
                gateway: None,
                up: true,
            });
            let lan_ip = format!("192.168.{i}.10").parse().unwrap();
            let v6_ip = format!("2001:db8::{}", 0xa + i).parse().unwrap();
            let ifaces = vec![
                Iface {
                    seg: lan,
                    ip: lan_ip,
                    gateway: Some(r),
                    latency: ms(1),
                    up: true,
                },
                Iface {
                    seg: INTERNET,
                    ip: v6_ip,
                    gateway: None,
                    latency: ms(v6),
                    up: true,
                },
            ];
            hosts.push(w.add_host(&format!("h{i}"), ifaces));
            cands.push((
                SocketAddr::new(v6_ip, MAIN_PORT),
                SocketAddr::new(public, MAIN_PORT),
            ));
        }
        let (a, b) = (hosts[0], hosts[1]);
        w.introduce(a, b);
        w.call_me_maybe_mapped(a, b, Some(cands[1].1), Some(cands[1].0));
        w.call_me_maybe_mapped(b, a, Some(cands[0].1), Some(cands[0].0));
        w.run_for(secs(3));
        let (pa, pb) = (best(&w, a).unwrap(), best(&w, b).unwrap());
        let (a_want, b_want, rtt) = if want_v6 {
            (cands[1].0, cands[0].0, 2 * (10 + b6))
        } else {
            (cands[1].1, cands[0].1, 2 * (10 + b4))
        };
        assert_eq!((pa.addr, pa.rtt), (a_want, ms(rtt)), "{b4}/{b6}");
        assert_eq!(pb.addr, b_want, "{b4}/{b6}");
    }
}

/// Both hosts on one LAN (with a NAT each to the internet), settled on the LAN path while
/// traffic flows both ways every 20 ms.
fn settled_on_lan() -> (World, HostId, HostId) {
    let (mut w, a, b, _) = lan_and_own_nats(1, 1, 5);
    w.set_traffic(a, b, Some(ms(20)));
    w.run_for(secs(1));
    let pings = counters(&w, a).pings_sent;
    w.run_for(secs(4));
    assert_eq!(
        counters(&w, a).pings_sent,
        pings,
        "traffic keeps the path alive without keepalives"
    );
    assert_eq!(best(&w, a).unwrap().kind, CandidateKind::Lan);
    assert_eq!(best(&w, b).unwrap().kind, CandidateKind::Lan);
    (w, a, b)
}

/// When `h`'s path first changed away from the LAN after `cut`.
fn left_lan(w: &World, h: HostId, cut: std::time::Instant) -> Duration {
    let (_, changes) = w.host(h).history.iter().next().unwrap();
    changes
        .iter()
        .find(|(t, k)| *t > cut && *k != warren_sim::PathKind::Lan)
        .map(|(t, _)| *t - cut)
        .expect("dropped the LAN path")
}

#[test]
fn a_dead_lan_path_gives_way_to_the_internet_path_within_a_second() {
    let (mut w, a, b) = settled_on_lan();
    let pings_before = counters(&w, a).pings_sent;
    // The LAN goes away (cable pulled); the internet path still works.
    let cut = w.now;
    w.fabric.segments[1].up = false;
    w.run_for(secs(7));
    for h in [a, b] {
        // Suspect 300 ms after the first unanswered packet; the probe round that starts then
        // proves the internet path (four 5 ms hops each way) a little later, and it takes over.
        let left = left_lan(&w, h, cut);
        assert!(left <= ms(400), "host {h} kept a dead path for {left:?}");
        let p = best(&w, h).unwrap();
        assert_eq!(
            (p.kind, p.rtt),
            (CandidateKind::Reflexive, ms(40)),
            "host {h}"
        );
        let c = counters(&w, h);
        // Never without a path: the LAN path was replaced, not dropped.
        assert_eq!(
            (c.suspicions, c.paths_dropped, c.probe_rounds),
            (1, 0, 2),
            "host {h}"
        );
    }
    // Bounded: the round pinged both candidates (the LAN one 10 times, the public one until
    // it answered), and heartbeats; nothing else.
    let new_pings = counters(&w, a).pings_sent - pings_before;
    assert!((11..=16).contains(&new_pings), "{new_pings}");
}

#[test]
fn an_idle_dead_path_is_dropped_within_a_keepalive_and_three_seconds() {
    let (mut w, a, b) = settled_on_lan();
    w.set_traffic(a, b, None);
    w.run_for(secs(15));
    let cut = w.now;
    w.fabric.segments[1].up = false;
    w.run_for(secs(20));
    let cfg = warren_daemon_core::path::PathConfig::default();
    for h in [a, b] {
        let left = left_lan(&w, h, cut);
        assert!(
            left <= cfg.keepalive_interval + cfg.reply_timeout,
            "host {h}: {left:?}"
        );
        assert_eq!(best(&w, h).unwrap().kind, CandidateKind::Reflexive);
    }
}

/// B's public address after its router rebound (its next datagram made the new mapping).
fn new_b_wan(t: &Two) -> SocketAddr {
    let nat = &t.w.fabric.routers[t.rb].nat;
    let port = nat.public_port_of(t.b_lan).expect("B sent since");
    SocketAddr::new(nat.outside, port)
}

#[test]
fn nat_rebinding_kills_the_path_until_the_coordinator_reintroduces() {
    let mut t = two_sites(1);
    t.call_a();
    t.call_b();
    let (a, b) = (t.a, t.b);
    t.w.set_traffic(a, b, Some(ms(50)));
    t.w.run_for(secs(5));
    assert!(best(&t.w, a).is_some() && best(&t.w, b).is_some());
    // B's router reboots: a new public port, no state.
    let cut = t.w.now;
    t.w.rebind(t.rb);
    t.w.run_for(secs(5));
    for h in [a, b] {
        assert_eq!(best(&t.w, h), None, "host {h}");
        let (_, changes) = t.w.host(h).history.iter().next().unwrap();
        let (at, _) = *changes.last().unwrap();
        assert!(at - cut <= secs(3) + ms(50), "host {h}: {:?}", at - cut);
        // Two new rounds each (when the path became suspect, and when it was dropped), then
        // quiet until the retry: nothing gets through.
        assert_eq!(counters(&t.w, h).probe_rounds, 3, "host {h}");
    }
    // The coordinator learns B's new address and introduces them again.
    let moved = new_b_wan(&t);
    assert_ne!(moved, t.b_wan);
    let (lan, a_lan, a_wan) = (t.b_lan, t.a_lan, t.a_wan);
    t.w.call_me_maybe(a, b, &[lan], Some(moved));
    t.w.call_me_maybe(b, a, &[a_lan], Some(a_wan));
    let again = t.w.now;
    t.w.run_for(secs(2));
    assert_eq!(best(&t.w, a).map(|p| p.addr), Some(moved));
    assert_eq!(best(&t.w, b).map(|p| p.addr), Some(a_wan));
    let (_, changes) = t.w.host(a).history.iter().next().unwrap();
    let at = changes.last().unwrap().0;
    assert!(at - again < ms(200), "{:?}", at - again);
    // The old address is forgotten.
    let peer = t.w.host(a).node.peers().next().unwrap();
    assert!(peer.paths().paths().all(|p| p.addr != t.b_wan));
}

/// B's router forgets its mappings while traffic flows. B notices once its path is suspect
/// (in the daemon: a STUN run), the coordinator hands A B's new address, A's probes open B's
/// NAT for B's packets from the new port, and both move to the new path without ever being
/// without one.
#[test]
fn nat_rebinding_is_followed_as_soon_as_the_new_address_is_known() {
    let mut t = two_sites(1);
    t.call_a();
    t.call_b();
    let (a, b) = (t.a, t.b);
    t.w.set_traffic(a, b, Some(ms(20)));
    t.w.run_for(secs(5));
    let cut = t.w.now;
    t.w.rebind(t.rb);
    let suspected = t.w.run_until(secs(1), |w| counters(w, b).suspicions > 0);
    assert!(suspected, "B never suspected its path");
    let took = t.w.now - cut;
    assert!(took <= ms(350), "{took:?}");
    // STUN and the coordinator's round trip: 100 ms more.
    t.w.run_for(ms(100));
    let moved = new_b_wan(&t);
    let (lan, a_lan, a_wan) = (t.b_lan, t.a_lan, t.a_wan);
    t.w.call_me_maybe(a, b, &[lan], Some(moved));
    t.w.call_me_maybe(b, a, &[a_lan], Some(a_wan));
    t.w.run_for(secs(1));
    assert_eq!(best(&t.w, a).map(|p| p.addr), Some(moved));
    assert_eq!(best(&t.w, b).map(|p| p.addr), Some(a_wan));
    for h in [a, b] {
        let (_, changes) = t.w.host(h).history.iter().next().unwrap();
        assert!(
            changes
                .iter()
                .all(|(at, k)| *at <= cut || *k != warren_sim::PathKind::None),
            "host {h} was without a path: {changes:?}"
        );
        assert_eq!(counters(&t.w, h).paths_dropped, 0, "host {h}");
    }
}

#[test]
fn a_lossy_network_still_finds_a_path_and_stays_bounded() {
    for seed in seeds(1..=8) {
        let mut t = two_sites(seed);
        t.w.set_loss(20);
        t.call_a();
        t.call_b();
        t.w.run_for(secs(60));
        for h in [t.a, t.b] {
            let first = first_path(&t.w, h).expect("a path");
            assert!(first < secs(2), "seed {seed} host {h}: {first:?}");
            // Pings are bounded by rounds and keepalives: a round is at most 20 pings, and
            // each 5 s keepalive is followed by at most two heartbeats.
            let c = counters(&t.w, h);
            let bound = 20 * c.probe_rounds + 3 * (60 / 5 + 1) + 5;
            assert!(
                c.pings_sent <= bound,
                "seed {seed} host {h}: bound {bound}, {c:?}"
            );
        }
    }
}

#[test]
fn an_idle_path_costs_one_keepalive_exchange_per_five_seconds() {
    let mut t = two_sites(1);
    t.call_a();
    t.call_b();
    t.w.run_for(secs(5));
    let before: Vec<u64> = [t.a, t.b]
        .iter()
        .map(|&h| counters(&t.w, h).pings_sent + counters(&t.w, h).pongs_sent)
        .collect();
    t.w.run_for(secs(60));
    let mut total = 0;
    for (i, h) in [t.a, t.b].into_iter().enumerate() {
        let c = counters(&t.w, h);
        total += c.pings_sent + c.pongs_sent - before[i];
        assert!(best(&t.w, h).is_some());
        assert_eq!(c.paths_dropped, 0);
    }
    // Both sides keep the path: at most a ping and a pong each per 5 s, both directions.
    assert!(total <= 4 * 12 + 4, "{total} datagrams in 60 s");
    assert!(total >= 2 * 12 - 2, "{total}: keepalives must flow");
}

#[test]
fn two_hosts_behind_one_nat_meet_at_its_public_address_only_if_it_hairpins() {
    // Only their public candidates are handed over (as if the coordinator had not vouched
    // for their LAN addresses): the way between them runs out to the router's public address
    // and back in, which a router does only when it hairpins.
    for hairpin in [true, false] {
        let mut w = World::new(1);
        let site = w.add_site(SiteKind::PortRestricted, 2, "lan");
        let r = site.router.unwrap();
        w.fabric.routers[r].nat.config.hairpin = hairpin;
        let (a, b) = (site.hosts[0], site.hosts[1]);
        w.introduce(a, b);
        // Each socket's mapping exists once it sent anything out: the STUN answer it reports.
        let stun: SocketAddr = "192.0.2.1:7444".parse().unwrap();
        for h in [a, b] {
            w.on_node(h, |n, now| n.start_discovery(now, [stun, stun]));
        }
        w.run_for(ms(100));
        let public = |w: &World, h: HostId| {
            let nat = &w.fabric.routers[r].nat;
            let inside = SocketAddr::new(w.fabric.hosts[h][0].ip, MAIN_PORT);
            SocketAddr::new(nat.outside, nat.public_port_of(inside).unwrap())
        };
        let (pa, pb) = (public(&w, a), public(&w, b));
        assert_ne!(pa, pb, "two sockets, two public ports");
        w.call_me_maybe(a, b, &[], Some(pb));
        w.call_me_maybe(b, a, &[], Some(pa));
        w.run_for(secs(3));
        if hairpin {
            assert_eq!(best(&w, a).map(|p| p.addr), Some(pb));
            assert_eq!(best(&w, b).map(|p| p.addr), Some(pa));
            assert!(w.fabric.routers[r].nat.counters.hairpinned > 0);
        } else {
            assert_eq!((best(&w, a), best(&w, b)), (None, None));
        }
    }
}
