use super::*;

fn t0() -> Instant {
    Instant::now()
}

fn starts(s: &mut Schedule<u32>, now: Instant) -> Vec<(u32, Start)> {
    std::iter::from_fn(|| s.poll_start(now)).collect()
}

/// Four peers introduced together all run at once; a fifth waits for a slot and starts
/// when one ends — not a minute later.
#[test]
fn several_runs_at_once_and_the_rest_in_line() {
    let now = t0();
    let mut s = Schedule::new(4);
    for p in 0..5 {
        s.introduced(p);
    }
    let first = starts(&mut s, now);
    assert_eq!(
        first.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    assert!(first.iter().all(|(_, why)| *why == Start::Ours));
    assert_eq!(
        s.poll_timeout(),
        None,
        "all slots taken: nothing to wait for"
    );
    s.ended(now + Duration::from_secs(3), 2, true);
    assert_eq!(
        starts(&mut s, now + Duration::from_secs(3)),
        [(4, Start::Ours)]
    );
}

/// A run that found nothing is tried again after 2 s, 4 s, 8 s, and no more than
/// MAX_ATTEMPTS times per introduction; a new introduction starts afresh.
#[test]
fn failed_runs_retry_with_backoff_and_a_bound() {
    let mut now = t0();
    let mut s = Schedule::new(4);
    s.introduced(7);
    assert_eq!(starts(&mut s, now), [(7, Start::Ours)]);
    let mut waits = Vec::new();
    loop {
        now += Duration::from_secs(4);
        s.ended(now, 7, false);
        let Some(at) = s.poll_timeout() else { break };
        waits.push(at - now);
        assert!(starts(&mut s, at - Duration::from_millis(1)).is_empty());
        now = at;
        assert_eq!(starts(&mut s, now), [(7, Start::Ours)]);
    }
    assert_eq!(
        waits,
        [2, 4, 8].map(Duration::from_secs),
        "backoff between the {MAX_ATTEMPTS} attempts"
    );
    assert!(starts(&mut s, now + Duration::from_secs(600)).is_empty());
    s.introduced(7);
    assert_eq!(starts(&mut s, now), [(7, Start::Ours)]);
}

/// A success needs no retry.
#[test]
fn a_run_that_found_a_path_is_not_repeated() {
    let now = t0();
    let mut s = Schedule::new(4);
    s.introduced(1);
    starts(&mut s, now);
    s.ended(now, 1, true);
    assert_eq!(s.poll_timeout(), None);
    assert!(starts(&mut s, now + Duration::from_secs(60)).is_empty());
}

/// The peer's request starts a run at once when a slot is free (not announced back), and
/// waits at the head of the line when none is; it is refused while a run goes on, right
/// after one ended, and once the attempts are spent.
#[test]
fn requests_from_the_peer() {
    let now = t0();
    let mut s = Schedule::new(2);
    assert!(s.requested(now, 1));
    assert!(s.is_running(1));
    assert!(!s.requested(now, 1), "already running");
    s.ended(now, 1, false);
    assert!(
        !s.requested(now + Duration::from_millis(100), 1),
        "just ended"
    );
    assert!(s.requested(now + MIN_GAP, 1));
    // Both slots busy: a request for 3 waits at the head, before 2 which came first.
    s.introduced(2);
    assert!(s.requested(now, 4));
    assert!(!s.requested(now, 3));
    s.ended(now, 4, true);
    assert_eq!(starts(&mut s, now), [(3, Start::Ours)]);
    s.ended(now, 3, true);
    assert_eq!(starts(&mut s, now), [(2, Start::Ours)]);
    // Attempts are spent by requests too: two hosts cannot keep each other going.
    let mut later = now;
    let mut honoured = 0;
    s.forget(1);
    for _ in 0..10 {
        later += Duration::from_secs(10);
        if s.requested(later, 1) {
            honoured += 1;
            s.ended(later, 1, false);
        }
    }
    assert_eq!(honoured, MAX_ATTEMPTS);
}

/// A peer that no longer needs runs leaves the line and its retries behind.
#[test]
fn forgetting_a_peer() {
    let now = t0();
    let mut s = Schedule::new(1);
    s.introduced(1);
    s.introduced(2);
    assert_eq!(starts(&mut s, now), [(1, Start::Ours)]);
    s.forget(2);
    s.ended(now, 1, false);
    s.forget(1);
    assert!(starts(&mut s, now + Duration::from_secs(60)).is_empty());
    assert_eq!(s.poll_timeout(), None);
}
