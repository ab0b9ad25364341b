//! Which of a peer's disco messages are fresh: a replayed ping from a spoofed source must not
//! get a pong nor add a candidate path.
//!
//! Every sealed disco message carries its sender's clock in the first bytes of its nonce
//! (authenticated as part of the AEAD's header, see `warren_proto::disco::sent_at`). A message
//! is fresh when it is no older than [`SLACK`] behind the newest one seen from that peer and
//! its nonce was not seen before — WireGuard's rule for handshake timestamps plus a window,
//! because pings sent together on several paths arrive in any order. The peers' clocks are
//! never compared with ours, so a PC with a wrong clock still works.

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use warren_proto::disco::NONCE_LEN;

/// How far behind the newest message a later-arriving one may be.
pub const SLACK: Duration = Duration::from_secs(10);
/// Nonces remembered per peer; past this the oldest is forgotten and nothing at or before its
/// time is accepted any more, so memory stays bounded however fast a peer pings.
pub const REMEMBERED: usize = 512;

#[derive(Debug, Default)]
pub struct DiscoFreshness {
    newest_ms: Option<u64>,
    /// Messages are accepted only after this time (ms, the sender's clock).
    floor_ms: Option<u64>,
    seen: BTreeSet<(u64, [u8; NONCE_LEN])>,
}

impl DiscoFreshness {
    /// Whether a message sent at `sent_ms` (the sender's clock) with `nonce` is fresh; if so
    /// it is remembered, so the same message is refused the next time.
    pub fn accept(&mut self, sent_ms: u64, nonce: [u8; NONCE_LEN]) -> bool {
        let slack = SLACK.as_millis() as u64;
        if let Some(newest) = self.newest_ms {
            if sent_ms.saturating_add(slack) < newest {
                return false;
            }
        }
        if self.floor_ms.is_some_and(|floor| sent_ms <= floor) {
            return false;
        }
        if !self.seen.insert((sent_ms, nonce)) {
            return false;
        }
        if self.newest_ms.is_none_or(|n| sent_ms > n) {
            self.newest_ms = Some(sent_ms);
            // What has fallen out of the window is refused by time alone.
            let behind = sent_ms.saturating_sub(slack);
            self.seen = self.seen.split_off(&(behind, [0; NONCE_LEN]));
        }
        while self.seen.len() > REMEMBERED {
            let oldest = self.seen.pop_first().expect("non-empty");
            self.floor_ms = Some(oldest.0);
        }
        true
    }
}

/// The clock a node writes into its disco nonces: the wall clock the shell gives once at
/// start, moved on by the `now`s the node is driven with, so it never goes back while the
/// process runs. Without a wall clock (tests) it counts from the first `Instant` any node in the
/// process saw, so that a node restarted in a simulation still sends later times.
#[derive(Debug, Default)]
pub struct SenderClock {
    wall: Option<(Instant, u64)>,
    latest: Option<Instant>,
}

impl SenderClock {
    pub fn set_wall_clock(&mut self, now: Instant, unix_ms: u64) {
        self.wall = Some((now, unix_ms));
        self.note(now);
    }

    /// Called with every `now` the node gets; messages are stamped with the latest.
    pub fn note(&mut self, now: Instant) {
        if self.latest.is_none_or(|l| now > l) {
            self.latest = Some(now);
        }
    }

    pub fn now_ms(&self) -> u64 {
        static ANCHOR: OnceLock<Instant> = OnceLock::new();
        // Every entry point notes its `now` before anything is sealed; without one there is
        // no time to tell yet.
        let Some(latest) = self.latest else {
            return self.wall.map_or(0, |(_, ms)| ms);
        };
        let (base, base_ms) = self
            .wall
            .unwrap_or_else(|| (*ANCHOR.get_or_init(|| latest), 0));
        base_ms.saturating_add(latest.saturating_duration_since(base).as_millis() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nonce(n: u8) -> [u8; NONCE_LEN] {
        [n; NONCE_LEN]
    }

    #[test]
    fn a_message_is_accepted_once() {
        let mut f = DiscoFreshness::default();
        assert!(f.accept(1_000, nonce(1)));
        assert!(!f.accept(1_000, nonce(1)), "the same message again");
        assert!(
            f.accept(1_000, nonce(2)),
            "another message of the same millisecond"
        );
    }

    #[test]
    fn late_arrivals_within_the_slack_are_fresh_older_ones_are_not() {
        let mut f = DiscoFreshness::default();
        assert!(f.accept(50_000, nonce(1)));
        assert!(
            f.accept(45_000, nonce(2)),
            "sent 5 s earlier, arrived later"
        );
        assert!(
            !f.accept(39_999, nonce(3)),
            "more than 10 s behind the newest"
        );
        assert!(f.accept(60_000, nonce(4)));
        assert!(!f.accept(45_000, nonce(5)), "now 15 s behind");
    }

    #[test]
    fn a_replay_after_the_window_moved_on_is_refused_by_time() {
        let mut f = DiscoFreshness::default();
        assert!(f.accept(1_000, nonce(1)));
        assert!(f.accept(100_000, nonce(2)));
        assert!(!f.accept(1_000, nonce(1)));
        assert!(f.seen.len() == 1, "forgotten nonces: {}", f.seen.len());
    }

    #[test]
    fn memory_is_bounded_and_forgotten_nonces_stay_refused() {
        let mut f = DiscoFreshness::default();
        let nonce_of = |i: u32| {
            let mut n = [0u8; NONCE_LEN];
            n[..4].copy_from_slice(&i.to_be_bytes());
            n
        };
        // A birthday burst: thousands of pings within one second.
        for i in 0..2_000u32 {
            assert!(f.accept(5_000 + u64::from(i / 4), nonce_of(i)));
        }
        assert!(f.seen.len() <= REMEMBERED);
        assert!(!f.accept(5_000, nonce_of(0)), "forgotten, yet refused");
        assert!(!f.accept(5_100, nonce_of(400)));
        assert!(
            f.accept(5_600, nonce_of(9_999)),
            "a new message still passes"
        );
    }

    #[test]
    fn the_sender_clock_moves_with_now_and_never_back() {
        let t0 = Instant::now();
        let mut c = SenderClock::default();
        c.set_wall_clock(t0, 1_000_000);
        assert_eq!(c.now_ms(), 1_000_000);
        c.note(t0 + Duration::from_millis(250));
        assert_eq!(c.now_ms(), 1_000_250);
        c.note(t0 + Duration::from_millis(100));
        assert_eq!(c.now_ms(), 1_000_250, "an older now does not move it back");
    }

    #[test]
    fn a_sender_whose_clock_is_far_from_ours_works() {
        let mut f = DiscoFreshness::default();
        // Nothing compares with the receiver's clock: a sender in 1970 is as good as any.
        assert!(f.accept(3, nonce(1)));
        assert!(f.accept(4, nonce(2)));
    }
}
