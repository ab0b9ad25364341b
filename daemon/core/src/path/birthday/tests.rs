//! The planner alone: roles, schedule, pacing, bounds, outcomes, cancellation.

use super::*;
use std::collections::HashSet;

const EASY: &str = "203.0.113.1:41820";
const HARD: &str = "198.51.100.2:40000";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Runs the planner alone until it is over (or `limit` passes): every probe with the time it
/// was queued, and every event. The hard side gets all its sockets at once.
fn drive(
    b: &mut Birthday,
    t0: Instant,
    limit: Duration,
) -> (Vec<(Instant, Probe)>, Vec<BirthdayEvent>) {
    let (mut probes, mut events) = (Vec::new(), Vec::new());
    let mut now = t0;
    while let Some(t) = b.poll_timeout() {
        assert!(t >= now || t + ms(1) >= now, "timer went back");
        now = now.max(t);
        if now > t0 + limit {
            break;
        }
        b.handle_timeout(now);
        while let Some(e) = b.poll_event() {
            if let BirthdayEvent::OpenSockets(n) = e {
                b.sockets_opened(now, n);
            }
            events.push(e);
        }
        while let Some(p) = b.poll_transmit() {
            probes.push((now, p));
        }
    }
    (probes, events)
}

#[test]
fn roles_follow_the_nat_kinds() {
    use NatKind::*;
    let table = [
        (Symmetric, EndpointIndependent, Some(Role::Hard)),
        (EndpointIndependent, Symmetric, Some(Role::Easy)),
        (Symmetric, Symmetric, None),
        (EndpointIndependent, EndpointIndependent, None),
        (Unknown, Symmetric, None),
        (Symmetric, Unknown, None),
    ];
    for (ours, theirs, want) in table {
        assert_eq!(role(ours, theirs), want, "{ours:?} vs {theirs:?}");
    }
}

#[test]
fn default_numbers_give_a_high_chance_within_bounds() {
    let c = BirthdayConfig::default();
    let miss = (1.0 - c.sockets as f64 / PORT_SPACE as f64).powi(c.probes as i32);
    assert!(miss < 0.001, "miss probability {miss}");
    assert_eq!(c.max_packets(Role::Hard), 768);
    assert_eq!(c.max_packets(Role::Easy), 2048);
    for r in [Role::Hard, Role::Easy] {
        assert!(c.max_duration(r) <= Duration::from_secs(5), "{r:?}");
    }
}

#[test]
fn easy_side_probes_distinct_ports_paced_and_bounded() {
    let t0 = Instant::now();
    let c = BirthdayConfig::default();
    let mut b = Birthday::new(t0, Role::Easy, addr(HARD), c, 7, [1; 8]);
    let (probes, events) = drive(&mut b, t0, Duration::from_secs(60));
    assert_eq!(probes.len(), 2048);
    assert_eq!(events, [], "no sockets, nothing to close");
    assert_eq!(b.phase(), Phase::Over);
    let ports: HashSet<u16> = probes.iter().map(|(_, p)| p.dst.port()).collect();
    // The window and the permutation may overlap in a few ports, no more.
    assert!(ports.len() >= 2048 - 32, "{} distinct", ports.len());
    assert!(ports.iter().all(|&p| p >= 1024));
    for (_, p) in &probes {
        assert_eq!(p.dst.ip(), addr(HARD).ip());
        assert_eq!(p.socket, None);
        assert!(b.owns(&p.tx_id));
    }
    // The prediction window comes first: the ports right above the reflexive one.
    let first: Vec<u16> = probes[..4].iter().map(|(_, p)| p.dst.port()).collect();
    assert_eq!(first, [40001, 40002, 40003, 40004]);
    // Nothing before the plain probes had their chance; then batches of 16, 15 ms apart.
    assert_eq!(probes[0].0 - t0, c.start_after + c.easy_delay);
    let mut per_instant = std::collections::BTreeMap::new();
    for (t, _) in &probes {
        *per_instant.entry(*t).or_insert(0) += 1;
    }
    assert!(per_instant.values().all(|&n| n <= 16));
    let times: Vec<Instant> = per_instant.keys().copied().collect();
    assert!(times.windows(2).all(|w| w[1] - w[0] >= c.batch_interval));
    let last = probes.last().unwrap().0 - t0;
    assert!(last <= c.max_duration(Role::Easy) - c.linger, "{last:?}");
}

#[test]
fn ports_depend_on_the_seed_only() {
    let t0 = Instant::now();
    let c = BirthdayConfig::default();
    let ports = |seed| {
        let mut b = Birthday::new(t0, Role::Easy, addr(HARD), c, seed, [1; 8]);
        drive(&mut b, t0, Duration::from_secs(60))
            .0
            .iter()
            .map(|(_, p)| p.dst.port())
            .collect::<Vec<_>>()
    };
    assert_eq!(ports(1), ports(1));
    assert_ne!(ports(1)[32..], ports(2)[32..]);
}

#[test]
fn hard_side_opens_sockets_then_pings_in_rounds() {
    let t0 = Instant::now();
    let c = BirthdayConfig::default();
    let mut b = Birthday::new(t0, Role::Hard, addr(EASY), c, 7, [2; 8]);
    let (probes, events) = drive(&mut b, t0, Duration::from_secs(60));
    assert_eq!(
        events,
        [BirthdayEvent::OpenSockets(256), BirthdayEvent::CloseSockets]
    );
    assert_eq!(probes.len(), 768);
    for (i, (_, p)) in probes.iter().enumerate() {
        assert_eq!(p.socket, Some((i % 256) as u16));
        assert_eq!(p.dst, addr(EASY));
    }
    // Round r starts r seconds after the sockets opened.
    for r in 0..3 {
        let t = probes[r * 256].0 - t0;
        assert_eq!(
            t,
            c.start_after + c.hard_round_interval * r as u32,
            "round {r}"
        );
    }
    assert!(b.is_over());
}

#[test]
fn hard_side_uses_only_the_sockets_it_got() {
    let t0 = Instant::now();
    let mut b = Birthday::new(t0, Role::Hard, addr(EASY), Default::default(), 7, [2; 8]);
    b.handle_timeout(t0 + ms(1000));
    assert_eq!(b.poll_event(), Some(BirthdayEvent::OpenSockets(256)));
    b.sockets_opened(t0 + ms(1000), 10);
    let (probes, _) = drive(&mut b, t0 + ms(1000), Duration::from_secs(60));
    assert_eq!(probes.len(), 30);
    assert!(probes.iter().all(|(_, p)| p.socket.unwrap() < 10));

    let mut none = Birthday::new(t0, Role::Hard, addr(EASY), Default::default(), 7, [2; 8]);
    none.handle_timeout(t0 + ms(1000));
    none.poll_event();
    none.sockets_opened(t0 + ms(1000), 0);
    assert!(none.is_over());
    assert_eq!(none.poll_event(), Some(BirthdayEvent::CloseSockets));
}

#[test]
fn a_side_socket_that_hears_the_peer_wins() {
    let t0 = Instant::now();
    let mut b = Birthday::new(t0, Role::Hard, addr(EASY), Default::default(), 7, [2; 8]);
    let start = t0 + ms(1000);
    b.handle_timeout(start);
    b.poll_event();
    b.sockets_opened(start, 256);
    b.handle_timeout(start);
    assert!(b.poll_transmit().is_some());
    // Another address, or a socket never opened: no.
    assert!(!b.handle_side_disco(3, addr("203.0.113.1:9")));
    assert!(!b.handle_side_disco(300, addr(EASY)));
    assert!(b.handle_side_disco(3, addr(EASY)));
    assert_eq!(b.phase(), Phase::Won(3));
    assert_eq!(b.poll_event(), Some(BirthdayEvent::Won(3)));
    assert_eq!(b.poll_event(), None, "the winner is kept: no CloseSockets");
    assert_eq!(b.poll_transmit(), None, "nothing more is sent");
    assert_eq!(b.poll_timeout(), None);
    b.cancel();
    assert_eq!(b.poll_event(), None);
}

#[test]
fn a_pong_of_ours_from_the_hard_ip_is_found() {
    let t0 = Instant::now();
    let mut b = Birthday::new(t0, Role::Easy, addr(HARD), Default::default(), 7, [1; 8]);
    b.handle_timeout(t0 + ms(1300));
    let p = b.poll_transmit().unwrap();
    let mut foreign = p.tx_id;
    foreign[0] ^= 1;
    assert!(
        !b.handle_pong(addr("198.51.100.3:40001"), &p.tx_id),
        "another IP"
    );
    assert!(
        !b.handle_pong(addr("198.51.100.2:40001"), &foreign),
        "not our ping"
    );
    assert!(b.handle_pong(addr("198.51.100.2:55555"), &p.tx_id));
    assert_eq!(
        b.poll_event(),
        Some(BirthdayEvent::Found(addr("198.51.100.2:55555")))
    );
    assert!(b.is_over());
}

#[test]
fn cancel_before_start_sends_nothing_and_closes_nothing() {
    let t0 = Instant::now();
    for role in [Role::Hard, Role::Easy] {
        let target = addr(if role == Role::Hard { EASY } else { HARD });
        let mut b = Birthday::new(t0, role, target, Default::default(), 7, [1; 8]);
        b.handle_timeout(t0 + ms(500));
        b.cancel();
        let (probes, events) = drive(&mut b, t0, Duration::from_secs(60));
        assert_eq!((probes.len(), events), (0, vec![]), "{role:?}");
    }
}

#[test]
fn cancel_after_the_sockets_opened_closes_them() {
    let t0 = Instant::now();
    let mut b = Birthday::new(t0, Role::Hard, addr(EASY), Default::default(), 7, [2; 8]);
    b.handle_timeout(t0 + ms(1000));
    b.poll_event();
    b.sockets_opened(t0 + ms(1000), 256);
    b.handle_timeout(t0 + ms(1000));
    b.cancel();
    assert_eq!(b.poll_event(), Some(BirthdayEvent::CloseSockets));
    assert_eq!(b.poll_transmit(), None, "queued pings are dropped");
    assert_eq!(b.poll_timeout(), None);
}

#[test]
fn a_run_never_outlives_its_bound() {
    // A caller that never reports its sockets: the run still ends, and closes them.
    let t0 = Instant::now();
    let c = BirthdayConfig::default();
    let mut b = Birthday::new(t0, Role::Hard, addr(EASY), c, 7, [2; 8]);
    b.handle_timeout(t0 + ms(1000));
    assert_eq!(b.poll_event(), Some(BirthdayEvent::OpenSockets(256)));
    let end = b.poll_timeout().unwrap();
    assert_eq!(end, t0 + c.max_duration(Role::Hard));
    b.handle_timeout(end);
    assert_eq!(b.poll_event(), Some(BirthdayEvent::CloseSockets));
    assert!(b.is_over());
}
