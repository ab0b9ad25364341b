//! The NAT lab's pair matrix (`lab/src/matrix.rs`) over simulated sites: every
//! site kind against every other, and two hosts on one LAN. Each pair gets a world of its
//! own; both hosts join one network, then: a first echo reply within the lab's limits, the
//! path kind both sides report, and steady echoes both ways over it.

use std::time::Duration;
use warren_sim::SiteKind::{self, *};
use warren_sim::{seed_or, PathKind, World};

/// What the lab expects of a pair, and where the simulation differs.
fn expected(a: SiteKind, b: SiteKind) -> PathKind {
    let has = |k: SiteKind| a == k || b == k;
    if has(UdpBlocked) {
        // The lab goes direct over TCP for these (but with a symmetric NAT); direct paths over
        // TCP are the shell's and not simulated: the relay over TCP carries every pair here.
        return PathKind::Relay;
    }
    if a == Symmetric && b == Symmetric {
        // Two random sets of mappings: no birthday run meets them.
        return PathKind::Relay;
    }
    // Punching, birthday probing (symmetric against an endpoint-independent NAT) or a port
    // mapping: all direct.
    PathKind::Direct
}

/// First replies within this of both joining (the lab's limit; its goal is 1 s).
const FIRST_REPLY_LIMIT: Duration = Duration::from_secs(10);
const FIRST_REPLY_GOAL: Duration = Duration::from_secs(1);
/// A relayed pair answers at once.
const RELAY_FIRST_REPLY_LIMIT: Duration = Duration::from_secs(2);
/// The path kind settles this soon after the first reply.
const PATH_WITHIN: Duration = Duration::from_secs(5);

struct Row {
    name: String,
    seed: u64,
    first: Option<Duration>,
    settled: Option<Duration>,
    paths: (PathKind, PathKind),
    problems: Vec<String>,
}

fn run_pair(
    name: String,
    seed: u64,
    build: impl FnOnce(&mut World) -> (usize, usize),
    expect: PathKind,
    udp_blocked: [bool; 2],
) -> Row {
    let mut w = World::new(seed);
    let (a, b) = build(&mut w);
    w.network(&[a, b], "m");
    let t0 = w.now;
    let mut problems = Vec::new();
    // Only a host behind a UDP-blocking site reaches the coordinator over TCP.
    for (h, blocked) in [a, b].into_iter().zip(udp_blocked) {
        if w.over_tcp(h) != blocked {
            problems.push(format!(
                "{}: control over TCP is {}",
                w.host(h).name,
                !blocked
            ));
        }
    }
    let first = w.ping(a, b, Duration::from_millis(50), FIRST_REPLY_LIMIT);
    match first {
        None => problems.push(format!("no reply within {FIRST_REPLY_LIMIT:?}")),
        Some(d) if expect == PathKind::Relay && d > RELAY_FIRST_REPLY_LIMIT => {
            problems.push(format!("first reply after {d:?}, over the relay's limit"))
        }
        _ => {}
    }
    let want = |k: PathKind| match expect {
        // Same LAN: "lan" is the goal, the LAN address taken for a direct one accepted.
        PathKind::Lan => matches!(k, PathKind::Lan | PathKind::Direct),
        e => k == e,
    };
    let settled = w
        .run_until(PATH_WITHIN, |w| want(w.path(a, b)) && want(w.path(b, a)))
        .then(|| w.now - t0);
    let paths = (w.path(a, b), w.path(b, a));
    if settled.is_none() {
        problems.push(format!("paths {paths:?}, expected {expect:?}"));
    }
    for (x, y) in [(a, b), (b, a)] {
        let n = w.echoes(x, y, 5, Duration::from_millis(200), Duration::from_secs(1));
        if n != 5 {
            problems.push(format!(
                "{} -> {}: {n} of 5 echoes",
                w.host(x).name,
                w.host(y).name
            ));
        }
    }
    Row {
        name,
        seed,
        first,
        settled,
        paths,
        problems,
    }
}

#[test]
fn every_site_kind_meets_every_other_as_the_lab_expects() {
    let kinds = SiteKind::ALL;
    let mut rows = Vec::new();
    for (i, &ka) in kinds.iter().enumerate() {
        for &kb in &kinds[i..] {
            let seed = seed_or(0x3A7 + rows.len() as u64);
            let name = format!("{}-{}", ka.label(), kb.label());
            rows.push(run_pair(
                name,
                seed,
                |w| {
                    let a = w.add_site(ka, 1, "a").hosts[0];
                    let b = w.add_site(kb, 1, "b").hosts[0];
                    (a, b)
                },
                expected(ka, kb),
                [ka == UdpBlocked, kb == UdpBlocked],
            ));
        }
    }
    let seed = seed_or(0x3A7 + rows.len() as u64);
    rows.push(run_pair(
        "same_lan".into(),
        seed,
        |w| {
            let s = w.add_site(PortRestricted, 2, "lan");
            (s.hosts[0], s.hosts[1])
        },
        PathKind::Lan,
        [false, false],
    ));
    let mut table = String::from(
        "\npair                                        paths a>b/b>a     1st reply  settled\n",
    );
    for r in &rows {
        table.push_str(&format!(
            "{:<43} {:<17} {:>9} {:>8}  {}\n",
            r.name,
            format!("{:?}/{:?}", r.paths.0, r.paths.1),
            r.first.map_or("-".into(), |d| format!(
                "{:.3}s{}",
                d.as_secs_f64(),
                if d > FIRST_REPLY_GOAL { "!" } else { "" }
            )),
            r.settled
                .map_or("-".into(), |d| format!("{:.3}s", d.as_secs_f64())),
            if r.problems.is_empty() {
                "ok".to_string()
            } else {
                format!("FAILED (seed {})", r.seed)
            },
        ));
    }
    eprintln!("{table}");
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| !r.problems.is_empty())
        .map(|r| {
            format!(
                "- {} (WARREN_SIM_SEED={}): {}",
                r.name,
                r.seed,
                r.problems.join("; ")
            )
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} pairs missed:\n{}",
        failed.len(),
        rows.len(),
        failed.join("\n")
    );
}
