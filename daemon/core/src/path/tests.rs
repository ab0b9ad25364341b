//! Two `PeerPaths` joined by the simulated network of [`super::sim`]: hole punching, the
//! ranking rules, dead paths, loss, and packet counts.

use super::sim::{addr, ms, Iface, Sim};
use super::{Candidate, CandidateKind, CandidateKind::*};
use std::time::Duration;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

const A_LAN: &str = "192.168.1.10:41641";
const A_WAN: &str = "203.0.113.1:41641";
const B_LAN: &str = "192.168.2.20:41641";
const B_WAN: &str = "198.51.100.2:41641";

fn cands(list: &[(&str, CandidateKind)]) -> Vec<Candidate> {
    list.iter()
        .map(|(a, k)| Candidate::new(addr(a), *k))
        .collect()
}

/// A and B at two sites, each behind its own port-restricted NAT.
fn two_sites() -> Sim {
    Sim::new(
        vec![Iface::natted(A_LAN, 1, A_WAN, 10)],
        vec![Iface::natted(B_LAN, 2, B_WAN, 15)],
    )
}

fn a_cands() -> Vec<Candidate> {
    cands(&[(A_LAN, Lan), (A_WAN, Reflexive)])
}

fn b_cands() -> Vec<Candidate> {
    cands(&[(B_LAN, Lan), (B_WAN, Reflexive)])
}

fn nat_refused(sim: &Sim, h: usize) -> u32 {
    sim.hosts[h].ifaces[0].nat.as_ref().unwrap().refused
}

#[test]
fn simultaneous_probing_punches_both_nats() {
    let mut sim = two_sites();
    // The coordinator's message reaches B 100 ms after A: A's first ping arrives at B's NAT
    // before B has sent anything and is refused; B's pings open B's NAT, A's retry gets in.
    sim.call_me_maybe(0, &b_cands());
    sim.run_until(ms(100));
    sim.call_me_maybe(1, &a_cands());
    sim.run_until(secs(3));

    let (a, b) = (sim.best(0).unwrap(), sim.best(1).unwrap());
    assert_eq!((a.addr, a.kind), (addr(B_WAN), Reflexive));
    assert_eq!((b.addr, b.kind), (addr(A_WAN), Reflexive));
    assert_eq!(a.rtt, ms(50), "2 × (10 + 15) ms");
    assert_eq!(b.rtt, ms(50));
    assert!(nat_refused(&sim, 1) > 0, "B's NAT refused A's first ping");
    for h in 0..2 {
        let t = sim.hosts[h].first_path_at.unwrap() - sim.start;
        assert!(t < ms(500), "host {h}: first path after {t:?}");
    }
    // The other site's LAN address never answers.
    let lan = sim.hosts[0].paths.paths().find(|p| p.addr == addr(B_LAN));
    assert_eq!(lan.unwrap().stats.rtt, None);
}

#[test]
fn one_sided_probing_does_not_punch_and_stays_bounded() {
    let mut sim = two_sites();
    sim.call_me_maybe(0, &b_cands());
    sim.run_until(secs(11));
    assert_eq!(sim.best(0), None);
    assert_eq!(sim.best(1), None);
    // One probe round: 2 candidates × 10 pings, then silence until the retry 10 s later.
    assert_eq!(sim.hosts[0].pings_out, 20);
    assert_eq!(sim.hosts[1].pings_out + sim.hosts[1].pongs_out, 0);
    assert_eq!(nat_refused(&sim, 1), 10);
    let retry = sim.hosts[0]
        .paths
        .poll_timeout()
        .expect("a retry is planned");
    assert!(retry > sim.now, "{retry:?}");
    // Over a minute: one round per retry interval, no more.
    sim.run_until(secs(60));
    assert_eq!(sim.best(0), None);
    let rounds = sim.hosts[0].paths.counters().probe_rounds;
    assert!((5..=6).contains(&rounds), "{rounds} rounds in 60 s");
    // The last round may still be running at 60 s.
    let pings = sim.hosts[0].pings_out as u64;
    assert!(pings > 20 * (rounds - 1) && pings <= 20 * rounds, "{pings}");
}

#[test]
fn a_public_peer_is_reached_when_only_one_side_probes() {
    // B has a public address: A's ping gets in, B pongs and pings back through the hole A's
    // ping opened, so both sides end with a path.
    let mut sim = Sim::new(
        vec![Iface::natted(A_LAN, 1, A_WAN, 10)],
        vec![Iface::public(B_WAN, 15)],
    );
    sim.call_me_maybe(0, &cands(&[(B_WAN, Reflexive)]));
    sim.run_until(secs(3));
    assert_eq!(sim.best(0).map(|b| b.addr), Some(addr(B_WAN)));
    let b = sim.best(1).unwrap();
    assert_eq!((b.addr, b.kind), (addr(A_WAN), Observed));
    assert_eq!(sim.hosts[0].pings_out, 1, "proven by the first pong");
    assert_eq!(sim.hosts[1].pings_out, 1, "one ping back, no round");
}

#[test]
fn same_lan_wins_even_when_another_path_is_faster() {
    // One LAN (slow: 20 ms each way, say a congested Wi-Fi bridge), and each host's own NAT to
    // a fast internet (1 ms each way): the LAN path is chosen by rule.
    let mut sim = Sim::new(
        vec![Iface::natted(
            "192.168.1.10:41641",
            1,
            "203.0.113.1:1001",
            1,
        )],
        vec![Iface::natted(
            "192.168.1.20:41641",
            1,
            "203.0.113.2:1002",
            1,
        )],
    );
    sim.lan_delay = ms(20);
    sim.call_me_maybe(
        0,
        &cands(&[("192.168.1.20:41641", Lan), ("203.0.113.2:1002", Reflexive)]),
    );
    sim.call_me_maybe(
        1,
        &cands(&[("192.168.1.10:41641", Lan), ("203.0.113.1:1001", Reflexive)]),
    );
    sim.run_until(secs(3));
    for (h, peer_lan, peer_wan) in [
        (0, "192.168.1.20:41641", "203.0.113.2:1002"),
        (1, "192.168.1.10:41641", "203.0.113.1:1001"),
    ] {
        let best = sim.best(h).unwrap();
        assert_eq!(
            (best.addr, best.kind, best.rtt),
            (addr(peer_lan), Lan, ms(40))
        );
        // The reflexive path was proven, and is ten times faster.
        let wan = sim.hosts[h]
            .paths
            .paths()
            .find(|p| p.addr == addr(peer_wan))
            .unwrap();
        assert_eq!(wan.stats.rtt, Some(ms(4)));
        // It answered first and was used until the LAN pong came.
        let kinds: Vec<_> = sim.hosts[h]
            .changes
            .iter()
            .map(|c| c.1.map(|b| b.kind))
            .collect();
        assert_eq!(kinds, vec![Some(Reflexive), Some(Lan)]);
    }
}

#[test]
fn lowest_rtt_wins_among_internet_paths() {
    // B reachable over IPv4 through its NAT and over IPv6 directly; which is faster varies.
    // (B's IPv4 latency, B's IPv6 latency) → the path A and B choose.
    let table = [(40, 5, "v6"), (5, 40, "v4"), (12, 10, "v6"), (10, 12, "v4")];
    for (b4, b6, want) in table {
        let mut sim = Sim::new(
            vec![
                Iface::natted(A_LAN, 1, A_WAN, 10),
                Iface::public("[2001:db8::a]:41641", 10),
            ],
            vec![
                Iface::natted(B_LAN, 2, B_WAN, b4),
                Iface::public("[2001:db8::b]:41641", b6),
            ],
        );
        sim.call_me_maybe(
            0,
            &cands(&[
                (B_LAN, Lan),
                (B_WAN, Reflexive),
                ("[2001:db8::b]:41641", Reflexive),
            ]),
        );
        sim.call_me_maybe(
            1,
            &cands(&[
                (A_LAN, Lan),
                (A_WAN, Reflexive),
                ("[2001:db8::a]:41641", Reflexive),
            ]),
        );
        sim.run_until(secs(3));
        let (a, b) = (sim.best(0).unwrap(), sim.best(1).unwrap());
        let (a_want, b_want, rtt) = if want == "v6" {
            ("[2001:db8::b]:41641", "[2001:db8::a]:41641", 2 * (10 + b6))
        } else {
            (B_WAN, A_WAN, 2 * (10 + b4))
        };
        assert_eq!((a.addr, a.rtt), (addr(a_want), ms(rtt)), "{b4}/{b6}");
        assert_eq!(b.addr, addr(b_want), "{b4}/{b6}");
    }
}

/// A and B on one LAN (each with a NAT to the internet), settled on the LAN path, with data
/// flowing both ways every 20 ms.
fn settled_on_lan() -> Sim {
    let mut sim = Sim::new(
        vec![Iface::natted(
            "192.168.1.10:41641",
            1,
            "203.0.113.1:1001",
            5,
        )],
        vec![Iface::natted(
            "192.168.1.20:41641",
            1,
            "203.0.113.2:1002",
            5,
        )],
    );
    sim.call_me_maybe(
        0,
        &cands(&[("192.168.1.20:41641", Lan), ("203.0.113.2:1002", Reflexive)]),
    );
    sim.call_me_maybe(
        1,
        &cands(&[("192.168.1.10:41641", Lan), ("203.0.113.1:1001", Reflexive)]),
    );
    sim.set_traffic(Some(ms(20)));
    sim.run_until(secs(5));
    assert_eq!(sim.best(0).unwrap().kind, Lan);
    assert_eq!(sim.best(1).unwrap().kind, Lan);
    sim
}

#[test]
fn dead_lan_path_gives_way_to_the_internet_path_within_a_second() {
    let mut sim = settled_on_lan();
    let pings_before = sim.hosts[0].pings_out;
    assert_eq!(
        pings_before, 2,
        "traffic keeps the path alive without keepalives"
    );
    // The LAN goes away (cable pulled); the internet path still works.
    let cut = sim.now;
    sim.lan_up = false;
    sim.run_until(secs(12));
    for h in 0..2 {
        let host = &sim.hosts[h];
        let left_lan = host
            .changes
            .iter()
            .find(|(t, b)| *t > cut && b.is_none_or(|b| b.kind != Lan))
            .expect("dropped the LAN path");
        // Suspect 300 ms after the first unanswered packet; the probe round that starts then
        // proves the internet path 20 ms later, and it takes over.
        assert!(
            left_lan.0 - cut <= ms(400),
            "host {h} kept a dead path for {:?}",
            left_lan.0 - cut
        );
        let best = host.paths.best_path().unwrap();
        assert_eq!(best.kind, Reflexive, "host {h}");
        assert_eq!(best.rtt, ms(20));
        let back = host
            .changes
            .iter()
            .find(|(t, b)| *t > cut && b.is_some_and(|b| b.kind == Reflexive))
            .unwrap();
        assert_eq!(back, left_lan, "host {h}: straight to the internet path");
        let c = host.paths.counters();
        // Never without a path: the LAN path was replaced, not dropped.
        assert_eq!(
            (c.suspicions, c.paths_dropped, c.probe_rounds),
            (1, 0, 2),
            "host {h}"
        );
    }
    // Bounded: heartbeats on the LAN path until it was suspect, then the round pinged both
    // candidates (the LAN one 10 times, the reflexive one until it answered); nothing else.
    let new_pings = sim.hosts[0].pings_out - pings_before;
    assert!((12..=16).contains(&new_pings), "{new_pings}");
}

#[test]
fn idle_dead_path_is_dropped_within_a_keepalive_and_three_seconds() {
    let mut sim = settled_on_lan();
    sim.set_traffic(None);
    sim.run_until(secs(20));
    let cut = sim.now;
    sim.lan_up = false;
    sim.run_until(secs(40));
    let cfg = *sim.hosts[0].paths.config();
    for h in 0..2 {
        let left = sim.hosts[h]
            .changes
            .iter()
            .find(|(t, b)| *t > cut && b.is_none_or(|b| b.kind != Lan))
            .unwrap();
        assert!(left.0 - cut <= cfg.keepalive_interval + cfg.reply_timeout);
        assert_eq!(sim.best(h).unwrap().kind, Reflexive);
    }
}

#[test]
fn nat_rebinding_kills_the_path_until_the_coordinator_reintroduces() {
    let mut sim = two_sites();
    sim.call_me_maybe(0, &b_cands());
    sim.call_me_maybe(1, &a_cands());
    sim.set_traffic(Some(ms(50)));
    sim.run_until(secs(5));
    assert!(sim.best(0).is_some() && sim.best(1).is_some());
    // B's router reboots: new public port, no state.
    let cut = sim.now;
    sim.rebind(1, 0, "198.51.100.2:50000");
    sim.run_until(secs(10));
    for h in 0..2 {
        assert_eq!(sim.best(h), None, "host {h}");
        let (t, _) = *sim.hosts[h].changes.last().unwrap();
        assert!(t - cut <= secs(3) + ms(50), "host {h}: {:?}", t - cut);
        // Two new rounds each (when the path became suspect, and when it was dropped), then
        // quiet until the retry: nothing can get through.
        assert_eq!(sim.hosts[h].paths.counters().probe_rounds, 3);
        let retry = sim.hosts[h].paths.poll_timeout().expect("retry planned");
        assert!(retry > sim.now, "host {h}");
    }
    // The coordinator learns B's new address and introduces them again.
    sim.call_me_maybe(
        0,
        &cands(&[(B_LAN, Lan), ("198.51.100.2:50000", Reflexive)]),
    );
    sim.call_me_maybe(1, &a_cands());
    let again = sim.now;
    sim.run_until(secs(12));
    assert_eq!(
        sim.best(0).map(|b| b.addr),
        Some(addr("198.51.100.2:50000"))
    );
    assert_eq!(sim.best(1).map(|b| b.addr), Some(addr(A_WAN)));
    let t = sim.hosts[0].changes.last().unwrap().0;
    assert!(t - again < ms(200), "{:?}", t - again);
    // The old address is forgotten.
    assert!(sim.hosts[0].paths.paths().all(|p| p.addr != addr(B_WAN)));
}

/// The lab's NAT rebinding: B's router forgets its mappings and maps B to a new port. B finds
/// out once its path is suspect (in the daemon: a STUN run) and the coordinator hands A B's new
/// address; A's probes open B's port-restricted NAT for B's packets from the new port, and both
/// sides move to the new path without ever being without one.
#[test]
fn nat_rebinding_is_followed_as_soon_as_the_new_address_is_known() {
    let mut sim = two_sites();
    sim.call_me_maybe(0, &b_cands());
    sim.call_me_maybe(1, &a_cands());
    sim.set_traffic(Some(ms(20)));
    sim.run_until(secs(5));
    let cut = sim.now;
    let new_b = "198.51.100.2:50000";
    sim.rebind(1, 0, new_b);
    // B's path becomes suspect 300 ms after its first unanswered packet.
    while !sim.hosts[1].paths.take_suspicion() {
        assert!(sim.now - cut < secs(1), "B never suspected its path");
        let t = sim.now - sim.start + ms(5);
        sim.run_until(t);
    }
    let suspected = sim.now - cut;
    assert!(suspected <= ms(350), "{suspected:?}");
    // STUN and the coordinator's round trip: 100 ms more.
    let t = sim.now - sim.start + ms(100);
    sim.run_until(t);
    sim.call_me_maybe(0, &cands(&[(B_LAN, Lan), (new_b, Reflexive)]));
    sim.call_me_maybe(1, &a_cands());
    let t = sim.now - sim.start + secs(1);
    sim.run_until(t);
    assert_eq!(sim.best(0).map(|b| b.addr), Some(addr(new_b)));
    assert_eq!(sim.best(1).map(|b| b.addr), Some(addr(A_WAN)));
    let moved = sim.hosts[0]
        .changes
        .iter()
        .find(|(t, b)| *t > cut && b.is_some_and(|b| b.addr == addr(new_b)))
        .expect("A moved to B's new address")
        .0;
    assert!(moved - cut <= ms(550), "A moved after {:?}", moved - cut);
    for h in 0..2 {
        assert!(
            sim.hosts[h]
                .changes
                .iter()
                .all(|(t, b)| *t <= cut || b.is_some()),
            "host {h} was without a path"
        );
        assert_eq!(sim.hosts[h].paths.counters().paths_dropped, 0, "host {h}");
    }
}

#[test]
fn lossy_network_still_finds_a_path_and_stays_bounded() {
    for seed in 1..=8u64 {
        let mut sim = two_sites();
        sim.loss_percent = 20;
        sim.set_seed(seed);
        sim.call_me_maybe(0, &b_cands());
        sim.call_me_maybe(1, &a_cands());
        sim.run_until(secs(60));
        for h in 0..2 {
            let host = &sim.hosts[h];
            let first = host.first_path_at.expect("a path") - sim.start;
            assert!(first < secs(2), "seed {seed} host {h}: {first:?}");
            // Pings are bounded by rounds and keepalives: a round is at most 20 pings, and each
            // 5 s keepalive is followed by at most two heartbeats.
            let c = host.paths.counters();
            let bound = 20 * c.probe_rounds as u32 + 3 * (60 / 5 + 1) + 5;
            assert!(
                host.pings_out <= bound,
                "seed {seed} host {h}: {} pings, bound {bound}, {c:?}",
                host.pings_out
            );
        }
    }
}

#[test]
fn idle_path_costs_one_keepalive_exchange_per_five_seconds() {
    let mut sim = two_sites();
    sim.call_me_maybe(0, &b_cands());
    sim.call_me_maybe(1, &a_cands());
    sim.run_until(secs(5));
    let before: Vec<_> = sim
        .hosts
        .iter()
        .map(|h| (h.pings_out, h.pongs_out))
        .collect();
    sim.run_until(secs(65));
    let mut total = 0;
    for (h, (pings, pongs)) in before.into_iter().enumerate() {
        let host = &sim.hosts[h];
        total += host.pings_out - pings + host.pongs_out - pongs;
        assert!(host.paths.best_path().is_some());
        assert_eq!(host.paths.counters().paths_dropped, 0);
    }
    // Both sides keep the path: at most a ping and a pong each per 5 s, both directions.
    assert!(total <= 4 * 12 + 4, "{total} datagrams in 60 s");
    assert!(total >= 2 * 12 - 2, "{total}: keepalives must flow");
}

#[test]
fn disco_keys_are_the_nodes_wireguard_keys() {
    for seed in [1u8, 7, 0xA1] {
        let secret = [seed; 32];
        assert_eq!(
            warren_proto::disco::public_key(&secret),
            crate::node::Node::new(secret, [0; 16]).public_key()
        );
    }
}
