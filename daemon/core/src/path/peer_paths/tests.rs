//! Unit tests of `PeerPaths`, driven by hand: exact ping schedules, pong matching, bounds.

use super::*;
use CandidateKind::*;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const LAN: &str = "192.168.1.20:41641";
const WAN: &str = "198.51.100.7:41641";

fn two_candidates() -> [Candidate; 2] {
    [
        Candidate::new(addr(LAN), Lan),
        Candidate::new(addr(WAN), Reflexive),
    ]
}

fn drain(p: &mut PeerPaths) -> Vec<(SocketAddr, TxId)> {
    std::iter::from_fn(|| p.poll_transmit())
        .map(|(a, m)| match m {
            DiscoMsg::Ping { tx_id } => (a, tx_id),
            other => panic!("PeerPaths only queues pings, got {other:?}"),
        })
        .collect()
}

#[test]
fn call_me_maybe_pings_every_candidate_at_once_then_retries_bounded() {
    let t0 = Instant::now();
    let mut p = PeerPaths::new(PathConfig::default(), [1; 8]);
    assert_eq!(p.poll_timeout(), None);
    p.handle_call_me_maybe(t0, &two_candidates());
    let first = drain(&mut p);
    assert_eq!(
        first.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
        vec![addr(LAN), addr(WAN)]
    );
    assert_ne!(first[0].1, first[1].1, "distinct tx_ids");
    let mut sent = first.len();
    let mut now = t0;
    let mut rounds = 1;
    // Until the round is over (the next timeout is then the retry, much later).
    while let Some(t) = p.poll_timeout().filter(|t| *t <= now + ms(200)) {
        assert_eq!(t, now + ms(200), "retry every 200 ms");
        now = t;
        p.handle_timeout(now);
        let batch = drain(&mut p);
        assert_eq!(batch.len(), 2);
        sent += batch.len();
        rounds += 1;
    }
    assert_eq!(rounds, 10);
    assert_eq!(sent, 20);
    assert_eq!(now - t0, ms(1800), "the round lasts 2 s");
    assert_eq!(p.best_path(), None);
    assert_eq!(p.counters().pings_sent, 20);
    // Then quiet until the retry round.
    p.handle_timeout(now + Duration::from_secs(5));
    assert!(drain(&mut p).is_empty());
    assert_eq!(
        p.poll_timeout(),
        Some(now + PathConfig::default().retry_interval)
    );
}

#[test]
fn pong_proves_the_path_and_measures_rtt() {
    let t0 = Instant::now();
    let mut p = PeerPaths::new(PathConfig::default(), [1; 8]);
    p.handle_call_me_maybe(t0, &two_candidates());
    let pings = drain(&mut p);
    let (wan, tx) = pings[1];
    assert!(p.handle_pong(t0 + ms(30), wan, tx));
    assert_eq!(
        p.best_path(),
        Some(BestPath {
            addr: wan,
            kind: Reflexive,
            rtt: ms(30)
        })
    );
    // The proven path is not probed again in this round; the other one is.
    p.handle_timeout(t0 + ms(200));
    assert_eq!(
        drain(&mut p).iter().map(|(a, _)| *a).collect::<Vec<_>>(),
        vec![addr(LAN)]
    );
}

#[test]
fn unknown_reused_and_misdirected_pongs_are_ignored() {
    let t0 = Instant::now();
    let mut p = PeerPaths::new(PathConfig::default(), [1; 8]);
    p.handle_call_me_maybe(t0, &two_candidates());
    let pings = drain(&mut p);
    let (lan, lan_tx) = pings[0];
    let (wan, wan_tx) = pings[1];
    let t = t0 + ms(10);
    // A tx_id we never sent.
    assert!(!p.handle_pong(t, wan, [0xEE; 12]));
    // The right tx_id from the wrong address (the ping went to the LAN address).
    assert!(!p.handle_pong(t, wan, lan_tx));
    // From an address we never pinged.
    assert!(!p.handle_pong(t, addr("203.0.113.9:1"), wan_tx));
    assert_eq!(p.best_path(), None);
    assert_eq!(p.counters().pongs_ignored, 3);
    // The genuine pong counts once; a replay of it does not.
    assert!(p.handle_pong(t, lan, lan_tx));
    assert!(!p.handle_pong(t + ms(5), lan, lan_tx));
    assert_eq!(p.best_path().map(|b| b.addr), Some(lan));
    assert_eq!(p.counters().pongs_matched, 1);
}

#[test]
fn pongs_to_the_last_few_pings_count() {
    let t0 = Instant::now();
    let mut p = PeerPaths::new(PathConfig::default(), [1; 8]);
    p.handle_call_me_maybe(t0, &[Candidate::new(addr(WAN), Reflexive)]);
    let mut txs = vec![drain(&mut p)[0].1];
    for k in 1..6 {
        p.handle_timeout(t0 + ms(200 * k));
        txs.push(drain(&mut p)[0].1);
    }
    // The first two pings (0 and 200 ms) are forgotten; the third (400 ms) still counts.
    assert!(!p.handle_pong(t0 + ms(1100), addr(WAN), txs[0]));
    assert!(!p.handle_pong(t0 + ms(1100), addr(WAN), txs[1]));
    assert!(p.handle_pong(t0 + ms(1100), addr(WAN), txs[2]));
    assert_eq!(p.best_path().unwrap().rtt, ms(700));
}

#[test]
fn tx_ids_come_from_the_salt_and_never_repeat() {
    let t0 = Instant::now();
    let mut a = PeerPaths::new(PathConfig::default(), [1; 8]);
    let mut b = PeerPaths::new(PathConfig::default(), [2; 8]);
    let mut seen = std::collections::HashSet::new();
    for p in [&mut a, &mut b] {
        p.handle_call_me_maybe(t0, &two_candidates());
        loop {
            for (_, tx) in drain(p) {
                assert!(seen.insert(tx), "tx_id reused");
            }
            // One round (2 s), not the retries after it.
            let Some(t) = p
                .poll_timeout()
                .filter(|t| *t < t0 + Duration::from_secs(5))
            else {
                break;
            };
            p.handle_timeout(t);
        }
    }
    assert_eq!(seen.len(), 40);
}

#[test]
fn ping_gets_a_pong_and_a_ping_back_once() {
    let t0 = Instant::now();
    let mut p = PeerPaths::new(PathConfig::default(), [1; 8]);
    let from = addr("203.0.113.50:6000");
    let pong = p.handle_ping(t0, from, [4; 12]);
    assert_eq!(
        pong,
        DiscoMsg::Pong {
            tx_id: [4; 12],
            observed: from
        }
    );
    let info: Vec<_> = p.paths().collect();
    assert_eq!(info.len(), 1);
    assert_eq!((info[0].addr, info[0].stats.kind), (from, Observed));
    // One ping back, not a round.
    let back = drain(&mut p);
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].0, from);
    // Pinged again at once: a pong, but no second ping back within the probe interval.
    p.handle_ping(t0 + ms(50), from, [5; 12]);
    assert!(drain(&mut p).is_empty());
    p.handle_ping(t0 + ms(250), from, [6; 12]);
    assert_eq!(drain(&mut p).len(), 1);
    // Our ping is answered: the observed address is a proven path.
    assert!(p.handle_pong(t0 + ms(260), from, back[0].1));
    assert_eq!(
        p.best_path().map(|b| (b.addr, b.kind)),
        Some((from, Observed))
    );
    // The coordinator later names that address: it takes the advertised kind.
    p.handle_call_me_maybe(t0 + ms(300), &[Candidate::new(from, Reflexive)]);
    assert_eq!(p.best_path().map(|b| b.kind), Some(Reflexive));
}

#[test]
fn authenticated_packets_keep_paths_fresh_and_introduce_new_addresses() {
    let t0 = Instant::now();
    let mut p = PeerPaths::new(PathConfig::default(), [1; 8]);
    let roamed = addr("203.0.113.99:777");
    // Traffic from an unknown address: an Observed candidate and one ping, not one per
    // packet.
    for k in 0..50 {
        p.handle_authenticated(t0 + ms(k), roamed);
    }
    let pings = drain(&mut p);
    assert_eq!(pings.len(), 1);
    assert_eq!(p.paths().next().unwrap().stats.kind, Observed);
    assert_eq!(p.best_path(), None, "traffic alone proves nothing: no RTT");
    // A second ping a heartbeat interval later if still unanswered.
    p.handle_authenticated(t0 + ms(1000), roamed);
    assert_eq!(drain(&mut p).len(), 1);
    assert!(p.handle_pong(t0 + ms(1010), roamed, pings[0].1));
    assert_eq!(p.best_path().unwrap().addr, roamed);
    // From now on packets refresh the path, and no keepalive is due while they come.
    for k in 0..100u64 {
        p.handle_authenticated(t0 + ms(1010 + 100 * k), roamed);
    }
    assert_eq!(p.poll_timeout(), Some(t0 + ms(1010 + 9900 + 5000)));
    assert!(drain(&mut p).is_empty());
}

#[test]
fn addresses_are_bounded() {
    let t0 = Instant::now();
    let mut p = PeerPaths::new(PathConfig::default(), [1; 8]);
    let many: Vec<_> = (0..40)
        .map(|i| Candidate::new(addr(&format!("10.0.0.{i}:1000")), Reflexive))
        .collect();
    p.handle_call_me_maybe(t0, &many);
    assert_eq!(p.paths().count(), MAX_PATHS);
    assert_eq!(drain(&mut p).len(), MAX_PATHS);
    assert_eq!(p.counters().candidates_refused, 24);
    // Pings from unknown addresses: pongs always, but no new candidates when full of
    // advertised ones.
    for i in 0..100u16 {
        let from = addr(&format!("203.0.113.1:{}", 2000 + i));
        assert!(matches!(
            p.handle_ping(t0, from, [0; 12]),
            DiscoMsg::Pong { .. }
        ));
    }
    assert_eq!(p.paths().count(), MAX_PATHS);
    assert!(drain(&mut p).is_empty());

    // Learned addresses evict each other, oldest first.
    let mut q = PeerPaths::new(PathConfig::default(), [1; 8]);
    for i in 0..100u16 {
        q.handle_authenticated(t0, addr(&format!("203.0.113.1:{}", 2000 + i)));
    }
    assert_eq!(q.paths().count(), MAX_PATHS);
    assert_eq!(
        q.paths().next().unwrap().addr,
        addr(&format!("203.0.113.1:{}", 2000 + 100 - MAX_PATHS as u16))
    );
    // And the transmit queue stays bounded when nobody drains it.
    assert!(q.transmits.len() <= MAX_QUEUED);
    assert!(q.counters().transmits_dropped > 0);
}

#[test]
fn new_call_me_maybe_replaces_advertised_candidates_but_keeps_the_path_in_use() {
    let t0 = Instant::now();
    let mut p = PeerPaths::new(PathConfig::default(), [1; 8]);
    p.handle_call_me_maybe(t0, &two_candidates());
    let pings = drain(&mut p);
    p.handle_pong(t0 + ms(5), pings[1].0, pings[1].1); // WAN proven and chosen
    let observed = addr("203.0.113.77:9");
    p.handle_ping(t0 + ms(6), observed, [0; 12]);
    drain(&mut p);
    let moved = addr("198.51.100.8:41641");
    p.handle_call_me_maybe(t0 + ms(10), &[Candidate::new(moved, Reflexive)]);
    let addrs: Vec<_> = p.paths().map(|i| i.addr).collect();
    // The LAN candidate is gone; the path in use and the learned address stay.
    assert_eq!(addrs, vec![addr(WAN), observed, moved]);
    assert_eq!(p.best_path().map(|b| b.addr), Some(addr(WAN)));
    // And the new round probes all three.
    assert_eq!(drain(&mut p).len(), 3);
}

#[test]
fn idle_chosen_path_gets_keepalives_and_dies_two_seconds_after_a_missed_one() {
    let t0 = Instant::now();
    let cfg = PathConfig::default();
    let mut p = PeerPaths::new(cfg, [1; 8]);
    let wan = addr(WAN);
    p.handle_call_me_maybe(t0, &[Candidate::new(wan, Reflexive)]);
    let tx = drain(&mut p)[0].1;
    p.handle_pong(t0 + ms(20), wan, tx);
    // Idle and answering: one keepalive every 5 s after the last pong.
    let mut heard = t0 + ms(20);
    for _ in 0..3 {
        assert_eq!(p.poll_timeout(), Some(heard + cfg.keepalive_interval));
        let now = heard + cfg.keepalive_interval;
        p.handle_timeout(now);
        let ka = drain(&mut p);
        assert_eq!(ka.len(), 1);
        heard = now + ms(20);
        assert!(p.handle_pong(heard, wan, ka[0].1));
    }
    assert_eq!(p.best_path().map(|b| b.addr), Some(wan));
    // Now the pongs stop: the keepalive is followed by a heartbeat 150 ms later; at 300 ms the
    // path is suspect and a probe round pings it every 200 ms; 2 s after the first unanswered
    // ping the path is dropped and a new round starts.
    let missed = heard + cfg.keepalive_interval;
    let mut now = heard;
    let mut pings = 0;
    while p.best_path().is_some() {
        now = p.poll_timeout().unwrap();
        p.handle_timeout(now);
        pings += drain(&mut p).len();
    }
    assert_eq!(now, missed + cfg.reply_timeout);
    assert_eq!(
        pings,
        1 + 1 + 9 + 1,
        "keepalive, a heartbeat, the suspicion's round (0.3 to 1.9 s), the new round's first ping"
    );
    assert_eq!(p.counters().paths_dropped, 1);
    assert_eq!(p.counters().suspicions, 1);
    assert!(p.take_suspicion(), "the node is told once");
    assert!(!p.take_suspicion());
    assert_eq!(p.counters().probe_rounds, 3);
    assert_eq!(p.paths().next().unwrap().probes_left, 9);
}

#[test]
fn busy_path_needs_no_pings_and_dies_two_seconds_after_the_peer_goes_quiet() {
    let t0 = Instant::now();
    let cfg = PathConfig::default();
    let mut p = PeerPaths::new(cfg, [1; 8]);
    let wan = addr(WAN);
    p.handle_call_me_maybe(t0, &[Candidate::new(wan, Reflexive)]);
    let tx = drain(&mut p)[0].1;
    p.handle_pong(t0 + ms(20), wan, tx);
    // Traffic both ways every 10 ms for 20 s: no keepalives at all.
    let mut now = t0 + ms(20);
    for _ in 0..2000 {
        now += ms(10);
        p.handle_data_sent(now);
        p.handle_authenticated(now + ms(1), wan);
        if p.poll_timeout().is_some_and(|t| t <= now + ms(1)) {
            p.handle_timeout(now + ms(1));
        }
    }
    assert!(drain(&mut p).is_empty());
    // The peer falls silent while we keep sending: a heartbeat at +0.15 s, suspect at +0.3 s
    // (a probe round: 0.3 to 1.9 s), dropped at +2 s.
    let quiet = now + ms(1);
    let mut pings = 0;
    while p.best_path().is_some() {
        now += ms(10);
        p.handle_data_sent(now);
        if p.poll_timeout().is_some_and(|t| t <= now) {
            p.handle_timeout(now);
            pings += drain(&mut p).len();
        }
    }
    assert!(
        now - quiet <= cfg.reply_timeout + ms(10),
        "{:?}",
        now - quiet
    );
    assert_eq!(
        pings,
        1 + 9 + 1,
        "a heartbeat, the suspicion's round, then the new round's first ping"
    );
    assert_eq!(p.counters().suspicions, 1);
}

#[test]
fn one_way_traffic_is_kept_alive_by_heartbeats() {
    let t0 = Instant::now();
    let mut p = PeerPaths::new(PathConfig::default(), [1; 8]);
    let wan = addr(WAN);
    p.handle_call_me_maybe(t0, &[Candidate::new(wan, Reflexive)]);
    let tx = drain(&mut p)[0].1;
    p.handle_pong(t0 + ms(20), wan, tx);
    let mut now = t0 + ms(20);
    let mut pings = 0;
    for _ in 0..1000 {
        now += ms(10);
        p.handle_data_sent(now);
        if p.poll_timeout().is_some_and(|t| t <= now) {
            p.handle_timeout(now);
            for (a, tx) in drain(&mut p) {
                pings += 1;
                assert!(p.handle_pong(now + ms(20), a, tx));
            }
        }
    }
    assert_eq!(p.best_path().map(|b| b.addr), Some(wan));
    // About one heartbeat per 150 ms (and its 20 ms answer) while data flows one way, and the
    // answers come before the path is ever suspect.
    assert!((55..=70).contains(&pings), "{pings}");
    assert_eq!(p.counters().suspicions, 0);
    assert!(!p.take_suspicion());
}

/// The chosen path to `WAN`, proven at `t0 + 20 ms` with a 20 ms RTT.
fn settled_on_wan(t0: Instant) -> PeerPaths {
    let mut p = PeerPaths::new(PathConfig::default(), [1; 8]);
    p.handle_call_me_maybe(t0, &[Candidate::new(addr(WAN), Reflexive)]);
    let tx = drain(&mut p)[0].1;
    assert!(p.handle_pong(t0 + ms(20), addr(WAN), tx));
    p
}

#[test]
fn the_peer_roams_to_a_new_address_once_the_chosen_path_is_suspect() {
    let t0 = Instant::now();
    let mut p = settled_on_wan(t0);
    let moved = addr("198.51.100.7:50000");
    // While the chosen path answers, packets from elsewhere do not move it (a stray or late
    // packet, or a peer that sends on another path than ours).
    p.handle_data_sent(t0 + ms(30));
    p.handle_authenticated(t0 + ms(40), moved);
    p.handle_authenticated(t0 + ms(50), addr(WAN));
    assert_eq!(p.best_path().unwrap().addr, addr(WAN));
    // Pings to `moved`, and when they left.
    let mut pings = Vec::new();
    let mut note = |p: &mut PeerPaths, now: Instant| {
        pings.extend(
            drain(p)
                .into_iter()
                .filter(|(a, _)| *a == moved)
                .map(|(_, tx)| (tx, now)),
        );
    };
    note(&mut p, t0 + ms(40));
    // The peer's NAT rebinds at t0 + 100 ms: our data goes unanswered on WAN from then on.
    let quiet = t0 + ms(100);
    let suspect_after = p.config().suspect_after;
    let mut now = quiet;
    while now < quiet + suspect_after + ms(50) {
        p.handle_data_sent(now);
        if p.poll_timeout().is_some_and(|t| t <= now) {
            p.handle_timeout(now);
            note(&mut p, now);
        }
        now += ms(10);
    }
    assert!(
        p.take_suspicion(),
        "suspect without an answer for {suspect_after:?}"
    );
    assert_eq!(p.best_path().unwrap().addr, addr(WAN), "not dropped yet");
    // The peer's packets now come from its new public port: they carry the path at once.
    p.handle_authenticated(now, moved);
    let best = p.best_path().unwrap();
    assert_eq!((best.addr, best.kind), (moved, Observed));
    assert_eq!(best.rtt, ms(20), "the old path's RTT until measured");
    assert_eq!(p.counters().roams, 1);
    // It has been pinged (by the suspicion's probe round, else now); the pong measures it.
    note(&mut p, now);
    let (tx, sent_at) = *pings.last().expect("pinged");
    assert!(sent_at > quiet, "a ping since the rebinding");
    assert!(p.handle_pong(now + ms(30), moved, tx));
    let sample = now + ms(30) - sent_at;
    assert_eq!(p.best_path().unwrap().rtt, (ms(20) * 7 + sample) / 8);
    // The old path, suspect and silent, does not take over again.
    p.handle_timeout(now + ms(40));
    assert_eq!(p.best_path().unwrap().addr, moved);
}

#[test]
fn a_suspect_path_gives_way_to_a_probed_one_before_it_is_dropped() {
    let t0 = Instant::now();
    let mut p = PeerPaths::new(PathConfig::default(), [1; 8]);
    let (lan, wan) = (addr(LAN), addr(WAN));
    p.handle_call_me_maybe(t0, &two_candidates());
    for (a, tx) in drain(&mut p) {
        assert!(p.handle_pong(t0 + ms(if a == lan { 2 } else { 20 }), a, tx));
    }
    assert_eq!(p.best_path().unwrap().addr, lan);
    // The LAN dies at t0 + 10 ms while we send; only WAN still answers.
    let mut now = t0 + ms(10);
    let mut switched = None;
    while switched.is_none() && now < t0 + Duration::from_secs(3) {
        p.handle_data_sent(now);
        if p.poll_timeout().is_some_and(|t| t <= now) {
            p.handle_timeout(now);
            for (a, tx) in drain(&mut p) {
                if a == wan {
                    p.handle_pong(now + ms(20), a, tx);
                }
            }
        }
        if p.best_path().is_some_and(|b| b.addr == wan) {
            switched = Some(now);
        }
        now += ms(10);
    }
    let at = switched.expect("moved to WAN") - t0;
    // Suspect 300 ms after the first unanswered packet (at 10 ms), probed at once, answered
    // 20 ms later.
    assert!(at <= ms(350), "{at:?}");
    assert_eq!(p.counters().paths_dropped, 0, "switched before the timeout");
}

#[test]
fn nearly_equal_paths_do_not_flap() {
    let t0 = Instant::now();
    let mut p = PeerPaths::new(PathConfig::default(), [1; 8]);
    let (x, y) = (addr("198.51.100.1:1"), addr("198.51.100.2:2"));
    let cands = [Candidate::new(x, Reflexive), Candidate::new(y, Reflexive)];
    // Round 1: x answers in 20 ms, y in 21 ms → x.
    p.handle_call_me_maybe(t0, &cands);
    let pings = drain(&mut p);
    p.handle_pong(t0 + ms(20), x, pings[0].1);
    p.handle_pong(t0 + ms(21), y, pings[1].1);
    assert_eq!(p.best_path().unwrap().addr, x);
    // Round 2: y is now 1 ms faster than x's smoothed RTT: not clearly better, x stays.
    let t1 = t0 + ms(500);
    p.handle_call_me_maybe(t1, &cands);
    let pings = drain(&mut p);
    p.handle_pong(t1 + ms(19), y, pings[1].1);
    p.handle_pong(t1 + ms(20), x, pings[0].1);
    assert_eq!(p.best_path().unwrap().addr, x);
    // y drops to 5 ms: once its smoothed RTT (20.75 → 18.8 → 17.1 ms) is clearly better
    // than x's 20 ms (by 2 ms, 10 %), y wins.
    let mut now = t0 + ms(1000);
    let mut rounds = 0;
    while p.best_path().unwrap().addr == x {
        rounds += 1;
        assert!(rounds <= 5, "never switched");
        p.handle_call_me_maybe(now, &cands);
        let pings = drain(&mut p);
        p.handle_pong(now + ms(5), y, pings[1].1);
        p.handle_pong(now + ms(20), x, pings[0].1);
        now += ms(500);
    }
    assert_eq!(rounds, 2);
    assert_eq!(p.best_path().unwrap().addr, y);
}

#[test]
fn without_a_path_probing_starts_again_every_retry_interval() {
    let t0 = Instant::now();
    let cfg = PathConfig::default();
    let mut p = PeerPaths::new(cfg, [1; 8]);
    let wan = addr(WAN);
    p.handle_call_me_maybe(t0, &[Candidate::new(wan, Reflexive)]);
    // Nobody answers: the round runs out.
    let mut now = t0;
    let mut pings = drain(&mut p).len();
    while let Some(t) = p.poll_timeout() {
        if t > t0 + cfg.retry_interval * 3 {
            break;
        }
        now = t;
        p.handle_timeout(now);
        pings += drain(&mut p).len();
    }
    assert!(p.best_path().is_none());
    assert_eq!(
        p.counters().probe_rounds,
        3,
        "the first round and two retries"
    );
    assert_eq!(pings, 3 * cfg.probe_attempts as usize);
    // A retry round that gets an answer proves the path, and retries stop.
    let at = p.poll_timeout().expect("next retry planned");
    p.handle_timeout(at);
    let tx = drain(&mut p)[0].1;
    assert!(p.handle_pong(at + ms(5), wan, tx));
    assert_eq!(p.best_path().map(|b| b.addr), Some(wan));
    assert!(now < at);
}
