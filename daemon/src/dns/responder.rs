//! Who gets an answer, from what: queries are rate limited per source and in all, and answered
//! from a status snapshot at most [`SNAPSHOT_AGE`] old, so a flood of queries neither locks
//! the data plane once per query nor makes the daemon answer faster than a resolver needs.

use super::answer::{self, NameTable};
use std::net::IpAddr;
use std::time::{Duration, Instant};
use warren_daemon_core::buckets::Buckets;
use warren_proto::api::Status;

/// A snapshot older than this is rebuilt on the next query: names are at most this stale.
pub const SNAPSHOT_AGE: Duration = Duration::from_secs(1);
/// One source: a burst (a browser or game resolving several names at once), then 100 a second.
const SOURCE_BURST: u32 = 64;
const SOURCE_REFILL: Duration = Duration::from_millis(10);
/// All sources together.
const TOTAL_BURST: u32 = 512;
const TOTAL_REFILL: Duration = Duration::from_millis(1);
const SOURCES: usize = 1024;

/// What a query is answered from: the status, and this host's own addresses (a query from one
/// of them is a program on this host, which sees every name).
pub struct Snapshot {
    pub status: Status,
    pub local: Vec<IpAddr>,
}

pub struct Responder {
    snapshot: Option<(Instant, Snapshot)>,
    per_source: Buckets<IpAddr>,
    total: Buckets<()>,
    pub refused: u64,
}

impl Default for Responder {
    fn default() -> Self {
        Self {
            snapshot: None,
            per_source: Buckets::new(SOURCE_BURST, SOURCE_REFILL, SOURCES),
            total: Buckets::new(TOTAL_BURST, TOTAL_REFILL, 1),
            refused: 0,
        }
    }
}

impl Responder {
    /// The reply to `query` from `from` at `now`, if any; `snapshot` is called only when the
    /// one held is too old.
    pub fn respond(
        &mut self,
        now: Instant,
        from: IpAddr,
        query: &[u8],
        snapshot: impl FnOnce() -> Snapshot,
    ) -> Option<Vec<u8>> {
        if !self.per_source.take(now, from) || !self.total.take(now, ()) {
            self.refused += 1;
            return None;
        }
        let stale = self
            .snapshot
            .as_ref()
            .is_none_or(|(at, _)| now.saturating_duration_since(*at) >= SNAPSHOT_AGE);
        if stale {
            self.snapshot = Some((now, snapshot()));
        }
        let (_, snap) = self.snapshot.as_ref().expect("just built");
        let local = from.is_loopback() || snap.local.contains(&from);
        let table = NameTable::for_querier(&snap.status, (!local).then_some(from));
        answer::answer(query, &table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::answer::tests::{query, sample_status};
    use std::cell::Cell;

    #[test]
    fn a_flood_from_one_source_is_cut_to_its_rate_and_others_are_still_answered() {
        let mut r = Responder::default();
        let t0 = Instant::now();
        let builds = Cell::new(0);
        let snap = || {
            builds.set(builds.get() + 1);
            Snapshot {
                status: sample_status(),
                local: vec![],
            }
        };
        let flooder: IpAddr = "100.64.0.4".parse().unwrap();
        let q = query("bob.warren");
        let answered = (0..1000)
            .filter(|_| r.respond(t0, flooder, &q, snap).is_some())
            .count();
        assert_eq!(answered, SOURCE_BURST as usize);
        assert_eq!(r.refused, 1000 - SOURCE_BURST as u64);
        assert_eq!(builds.get(), 1, "one status snapshot for the whole burst");
        let other: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(r.respond(t0, other, &q, snap).is_some());
        // A second later: one more each 10 ms, and a fresh snapshot.
        let t1 = t0 + Duration::from_secs(1);
        assert!(r.respond(t1, flooder, &q, snap).is_some());
        assert_eq!(builds.get(), 2);
    }

    #[test]
    fn many_sources_together_are_capped() {
        let mut r = Responder::default();
        let t0 = Instant::now();
        let q = query("bob.warren");
        let snap = || Snapshot {
            status: sample_status(),
            local: vec![],
        };
        let answered = (0..2000u32)
            .filter(|i| {
                let from = IpAddr::from([100, 64, (i / 256) as u8, (i % 256) as u8]);
                (0..4).all(|_| r.respond(t0, from, &q, snap).is_some())
            })
            .count();
        assert!(answered * 4 <= TOTAL_BURST as usize, "{answered}");
    }
}
