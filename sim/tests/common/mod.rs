//! Traffic for the fault tests: echoes every few milliseconds, and the longest silence in
//! their replies.

// Each test file uses a part of this.
#![allow(dead_code)]

use std::time::{Duration, Instant};
use warren_sim::packet::Echo;
use warren_sim::{HostId, World};

/// Echo requests from `a` to `b` every `every` for `d`: the instants replies arrived.
pub fn stream(w: &mut World, a: HostId, b: HostId, every: Duration, d: Duration) -> Vec<Instant> {
    let start = w.now;
    let seen = w.host(a).arrivals.len();
    let mut seq = 5_000_000 + w.host(a).arrivals.len() as u64 * 7;
    while w.now - start < d {
        w.send_echo(a, b, seq);
        seq += 1;
        w.run_for(every);
    }
    w.host(a).arrivals[seen..]
        .iter()
        .filter(|x| matches!(x.echo, Echo::Reply(_)))
        .map(|x| x.at)
        .collect()
}

/// The longest time without a reply after `from` (from `from` itself to the first reply
/// counts, and from the last reply to `end`).
pub fn longest_gap(replies: &[Instant], from: Instant, end: Instant) -> Duration {
    let mut last = from;
    let mut gap = Duration::ZERO;
    for &t in replies.iter().filter(|&&t| t >= from) {
        gap = gap.max(t - last);
        last = t;
    }
    gap.max(end.saturating_duration_since(last))
}

/// The first reply at or after `from`.
pub fn first_after(replies: &[Instant], from: Instant) -> Option<Duration> {
    replies.iter().find(|&&t| t >= from).map(|&t| t - from)
}
