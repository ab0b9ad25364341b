//! Which path to use: pure functions of the paths' measurements and the time.
//!
//! A path is *proven* once a pong came back on it, and stays proven while it keeps answering:
//! it must have been heard from within [`Liveness::trust`], and must not owe an answer (to a
//! ping, or to data we sent on it) for [`Liveness::reply_timeout`] or longer. Among proven
//! paths, same-LAN wins, then the lowest RTT; a path in use is only replaced by one that is
//! clearly better ([`clearly_better`]), so that two nearly equal paths do not flap.
//!
//! A proven path that has owed an answer for a while ([`is_suspect`]: longer than a heartbeat
//! and a few round trips take) is probably dead, but is kept until the reply timeout in case
//! it is only slow. Meanwhile it loses every comparison: any proven path that is not suspect
//! replaces it at once, hysteresis or not, so that a peer that moved (a NAT rebinding, a new
//! address) is followed as soon as its new path answers instead of after the reply timeout.

use super::candidate::CandidateKind;
use std::cmp::Ordering;
use std::time::{Duration, Instant};

/// A new path must beat the current one's RTT by at least this much…
pub const SWITCH_MIN_GAIN: Duration = Duration::from_millis(1);
/// …and by at least this share of the current RTT, in percent.
pub const SWITCH_MIN_GAIN_PERCENT: u32 = 10;

/// What ranking needs to know about one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathStats {
    pub kind: CandidateKind,
    /// Smoothed round-trip time of pings on this path; `None` until a pong came back.
    pub rtt: Option<Duration>,
    /// When the peer was last heard from on this path (pong or another authenticated packet).
    pub last_heard: Option<Instant>,
    /// When we first sent something on this path (a ping, or data) that is still unanswered:
    /// `None` when the path was heard from after everything we sent.
    pub unanswered_since: Option<Instant>,
}

impl PathStats {
    pub fn new(kind: CandidateKind) -> Self {
        Self {
            kind,
            rtt: None,
            last_heard: None,
            unanswered_since: None,
        }
    }
}

/// How long a path stays proven without news.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    /// A path not heard from for this long is no longer proven.
    pub trust: Duration,
    /// A path that owes an answer for this long is no longer proven.
    pub reply_timeout: Duration,
    /// A path that owes an answer for this long (or three of its round trips, if longer) is
    /// suspect: see [`is_suspect`].
    pub suspect_after: Duration,
}

/// Whether `p` counts as a working path at `now`.
pub fn is_proven(p: &PathStats, now: Instant, l: Liveness) -> bool {
    p.rtt.is_some() && proven_until(p, l).is_some_and(|t| now < t)
}

/// The instant a path that answered stops being proven unless it is heard from again.
pub fn proven_until(p: &PathStats, l: Liveness) -> Option<Instant> {
    let heard = p.last_heard? + l.trust;
    Some(match p.unanswered_since {
        Some(since) => heard.min(since + l.reply_timeout),
        None => heard,
    })
}

/// The instant `p` becomes suspect if it stays unanswered: [`Liveness::suspect_after`] or
/// three round trips (so a slow path with a heartbeat in flight is not suspected) after it
/// began to owe an answer. `None` while it owes nothing.
pub fn suspect_at(p: &PathStats, l: Liveness) -> Option<Instant> {
    let since = p.unanswered_since?;
    let rtts = p.rtt.map_or(Duration::ZERO, |r| r * 3);
    Some(since + l.suspect_after.max(rtts))
}

/// Whether `p` has owed an answer for so long that it is probably dead (see [`suspect_at`]).
pub fn is_suspect(p: &PathStats, now: Instant, l: Liveness) -> bool {
    suspect_at(p, l).is_some_and(|t| now >= t)
}

/// Ranks two proven paths, without hysteresis: `Greater` when `a` is the better one. Same LAN
/// first, then the lower RTT, then the more specific kind.
pub fn better(a: &PathStats, b: &PathStats) -> Ordering {
    let lan = |p: &PathStats| p.kind == CandidateKind::Lan;
    lan(a)
        .cmp(&lan(b))
        // Lower RTT is better; an unmeasured path ranks below any measured one.
        .then_with(|| match (a.rtt, b.rtt) {
            (Some(x), Some(y)) => y.cmp(&x),
            (x, y) => x.is_some().cmp(&y.is_some()),
        })
        .then_with(|| a.kind.preference().cmp(&b.kind.preference()))
}

/// Whether proven path `new` should replace proven path `current`: it must be on the same LAN
/// where `current` is not, or be in the same class and faster by at least [`SWITCH_MIN_GAIN`]
/// and [`SWITCH_MIN_GAIN_PERCENT`] of the current RTT.
pub fn clearly_better(new: &PathStats, current: &PathStats) -> bool {
    let (new_lan, cur_lan) = (
        new.kind == CandidateKind::Lan,
        current.kind == CandidateKind::Lan,
    );
    if new_lan != cur_lan {
        return new_lan;
    }
    match (new.rtt, current.rtt) {
        (Some(n), Some(c)) => {
            let margin = (c * SWITCH_MIN_GAIN_PERCENT / 100).max(SWITCH_MIN_GAIN);
            n + margin <= c
        }
        (Some(_), None) => true,
        _ => false,
    }
}

/// The path to use, as an index into `paths`: the best proven path that is not suspect,
/// except that the current one (index `current`) is kept while it is proven, not suspect, and
/// nothing is [`clearly_better`]. A suspect current path is replaced by any proven path that
/// is not suspect, and kept when there is none. Without a current path, suspect paths are
/// chosen only when no other is proven. Ties go to the earlier path. `None` when no path is
/// proven.
pub fn choose<'a>(
    paths: impl IntoIterator<Item = &'a PathStats>,
    current: Option<usize>,
    now: Instant,
    l: Liveness,
) -> Option<usize> {
    // The best of the healthy proven paths, and of the suspect ones.
    let mut healthy: Option<(usize, &PathStats)> = None;
    let mut suspect: Option<(usize, &PathStats)> = None;
    let mut cur: Option<(usize, &PathStats, bool)> = None;
    for (i, p) in paths.into_iter().enumerate() {
        if !is_proven(p, now, l) {
            continue;
        }
        let sus = is_suspect(p, now, l);
        if current == Some(i) {
            cur = Some((i, p, sus));
        }
        let slot = if sus { &mut suspect } else { &mut healthy };
        if slot.is_none_or(|(_, b)| better(p, b) == Ordering::Greater) {
            *slot = Some((i, p));
        }
    }
    match (cur, healthy) {
        (Some((_, c, false)), Some((bi, b))) if clearly_better(b, c) => Some(bi),
        (Some((_, _, true)), Some((bi, _))) => Some(bi),
        (Some((ci, _, _)), _) => Some(ci),
        (None, healthy) => healthy.or(suspect).map(|(i, _)| i),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CandidateKind::*;

    const L: Liveness = Liveness {
        trust: Duration::from_secs(8),
        reply_timeout: Duration::from_secs(3),
        suspect_after: Duration::from_millis(500),
    };

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A path heard from at `t0` with the given RTT in ms.
    fn p(kind: CandidateKind, rtt_ms: u64, t0: Instant) -> PathStats {
        PathStats {
            kind,
            rtt: Some(ms(rtt_ms)),
            last_heard: Some(t0),
            unanswered_since: None,
        }
    }

    #[test]
    fn better_table() {
        let t = Instant::now();
        use Ordering::*;
        let table = [
            // Same LAN first, even when slower.
            (p(Lan, 30, t), p(Reflexive, 2, t), Greater),
            (p(Observed, 1, t), p(Lan, 50, t), Less),
            // Then lowest RTT, whatever the kind.
            (p(Reflexive, 10, t), p(Mapped, 20, t), Greater),
            (p(Observed, 5, t), p(Reflexive, 6, t), Greater),
            (p(Lan, 3, t), p(Lan, 4, t), Greater),
            // Equal RTT: the more specific kind.
            (p(Mapped, 10, t), p(Reflexive, 10, t), Greater),
            (p(Observed, 10, t), p(Reflexive, 10, t), Less),
            (p(Reflexive, 10, t), p(Reflexive, 10, t), Equal),
        ];
        for (i, (a, b, want)) in table.iter().enumerate() {
            assert_eq!(better(a, b), *want, "row {i}: {a:?} vs {b:?}");
            assert_eq!(better(b, a), want.reverse(), "row {i} reversed");
        }
    }

    #[test]
    fn clearly_better_table() {
        let t = Instant::now();
        // (new, current, switch?)
        let table = [
            (p(Lan, 40, t), p(Reflexive, 2, t), true),
            (p(Reflexive, 2, t), p(Lan, 40, t), false),
            // 10 % and 1 ms: 100 → 91 is not enough, 100 → 90 is.
            (p(Reflexive, 91, t), p(Mapped, 100, t), false),
            (p(Reflexive, 90, t), p(Mapped, 100, t), true),
            // Small RTTs: 10 % of 4 ms is below 1 ms, so the 1 ms floor decides.
            (p(Reflexive, 3, t), p(Reflexive, 4, t), true),
            (
                PathStats {
                    rtt: Some(Duration::from_micros(3_500)),
                    ..p(Reflexive, 0, t)
                },
                p(Reflexive, 4, t),
                false,
            ),
            // Equal or worse never switches.
            (p(Mapped, 20, t), p(Reflexive, 20, t), false),
            (p(Lan, 5, t), p(Lan, 4, t), false),
            (p(Lan, 3, t), p(Lan, 5, t), true),
        ];
        for (i, (new, cur, want)) in table.iter().enumerate() {
            assert_eq!(clearly_better(new, cur), *want, "row {i}");
        }
    }

    #[test]
    fn proven_table() {
        let t = Instant::now();
        let s = |secs: u64| t + Duration::from_secs(secs);
        let heard = p(Reflexive, 10, t);
        let owing = |since: u64| PathStats {
            unanswered_since: Some(s(since)),
            ..heard
        };
        // (path, at, proven?)
        let table = [
            (heard, t, true),
            (heard, s(7), true),
            (heard, s(8), false), // not heard from within its trust window
            (PathStats::new(Reflexive), t, false),
            (PathStats { rtt: None, ..heard }, t, false), // heard (e.g. a ping), but never answered a ping of ours
            (owing(1), s(3), true),
            (owing(1), s(4), false), // owed an answer for 3 s
            (owing(6), s(8), false), // trust runs out first
        ];
        for (i, (path, at, want)) in table.iter().enumerate() {
            assert_eq!(is_proven(path, *at, L), *want, "row {i}");
        }
        assert_eq!(proven_until(&owing(1), L), Some(s(4)));
        assert_eq!(proven_until(&heard, L), Some(s(8)));
        assert_eq!(proven_until(&PathStats::new(Lan), L), None);
    }

    #[test]
    fn choose_table() {
        let t = Instant::now();
        let later = t + Duration::from_secs(9);
        let stale = p(Lan, 1, t - Duration::from_secs(9));
        // (case, paths, current, chosen)
        type Row = (&'static str, Vec<PathStats>, Option<usize>, Option<usize>);
        let table: [Row; 9] = [
            (
                "nothing proven",
                vec![PathStats::new(Lan), stale],
                None,
                None,
            ),
            ("empty", vec![], None, None),
            (
                "same LAN first",
                vec![p(Reflexive, 2, t), p(Lan, 30, t)],
                None,
                Some(1),
            ),
            (
                "lowest RTT among the rest",
                vec![p(Reflexive, 40, t), p(Mapped, 10, t), p(Observed, 25, t)],
                None,
                Some(1),
            ),
            (
                "current kept against a slightly faster path",
                vec![p(Reflexive, 20, t), p(Mapped, 19, t)],
                Some(0),
                Some(0),
            ),
            (
                "current replaced by a clearly faster path",
                vec![p(Reflexive, 20, t), p(Mapped, 10, t)],
                Some(0),
                Some(1),
            ),
            (
                "current not proven: best wins even if barely better",
                vec![stale, p(Reflexive, 20, t), p(Mapped, 19, t)],
                Some(0),
                Some(2),
            ),
            (
                "stale LAN loses to a live reflexive path",
                vec![stale, p(Reflexive, 50, t)],
                None,
                Some(1),
            ),
            (
                "equal paths: the earlier one",
                vec![p(Reflexive, 5, t), p(Reflexive, 5, t)],
                None,
                Some(0),
            ),
        ];
        for (name, paths, current, want) in table {
            assert_eq!(choose(&paths, current, t, L), want, "{name}");
        }
        // Everything times out eventually.
        assert_eq!(choose(&[p(Lan, 1, t)], Some(0), later, L), None);
    }

    #[test]
    fn suspect_table() {
        let t = Instant::now();
        let owing = |rtt_ms: u64, since_ms: u64| PathStats {
            unanswered_since: Some(t + ms(since_ms)),
            ..p(Reflexive, rtt_ms, t)
        };
        // (path, at ms, suspect?)
        let table = [
            (p(Reflexive, 10, t), 5_000, false), // owes nothing
            (owing(10, 0), 499, false),
            (owing(10, 0), 500, true),
            (owing(10, 100), 599, false),
            // A slow path gets three round trips.
            (owing(300, 0), 899, false),
            (owing(300, 0), 900, true),
            // Never answered a ping: suspect_after alone.
            (
                PathStats {
                    rtt: None,
                    ..owing(0, 0)
                },
                500,
                true,
            ),
        ];
        for (i, (path, at, want)) in table.iter().enumerate() {
            assert_eq!(is_suspect(path, t + ms(*at), L), *want, "row {i}");
        }
        assert_eq!(suspect_at(&owing(10, 100), L), Some(t + ms(600)));
        assert_eq!(suspect_at(&p(Lan, 1, t), L), None);
    }

    #[test]
    fn a_suspect_current_path_gives_way_to_any_healthy_one() {
        let t = Instant::now();
        let now = t + ms(800);
        // In use, owing an answer since t: suspect at `now`, still proven (3 s timeout).
        let dying = |kind| PathStats {
            unanswered_since: Some(t),
            ..p(kind, 5, t)
        };
        assert!(is_proven(&dying(Lan), now, L) && is_suspect(&dying(Lan), now, L));
        let fresh = p(Reflexive, 40, now);
        // Same class, slower, and still chosen: the current one is probably dead.
        assert_eq!(choose(&[dying(Reflexive), fresh], Some(0), now, L), Some(1));
        // Even a LAN path gives way to an internet path that answers.
        assert_eq!(choose(&[dying(Lan), fresh], Some(0), now, L), Some(1));
        // Nothing healthy: the suspect one is kept (it may only be slow).
        assert_eq!(
            choose(&[dying(Lan), dying(Reflexive)], Some(1), now, L),
            Some(1)
        );
        // A healthy current path is not replaced by a suspect better one.
        assert_eq!(choose(&[fresh, dying(Lan)], Some(0), now, L), Some(0));
        // Without a current path, healthy paths come first, suspect ones only if alone.
        assert_eq!(choose(&[dying(Lan), fresh], None, now, L), Some(1));
        assert_eq!(choose(&[dying(Lan)], None, now, L), Some(0));
        // Before it is suspect, hysteresis holds as usual.
        assert_eq!(
            choose(&[dying(Reflexive), fresh], Some(0), t + ms(400), L),
            Some(0)
        );
    }
}
