//! Pings a person asked for (`warren ping`): sent like path probes, on the peer's current path,
//! but matched here so the answer says which path it took and how long it was.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use warren_proto::disco::TxId;

/// Outstanding pings kept at most; a flood of `warren ping` calls forgets the oldest.
pub const MAX_OUTSTANDING: usize = 64;
/// Unanswered pings older than this are forgotten.
pub const FORGET_AFTER: Duration = Duration::from_secs(10);

/// A pong that answered a person's ping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingAnswer {
    /// Where the pong came from.
    pub from: SocketAddr,
    pub rtt: Duration,
}

#[derive(Debug)]
struct Outstanding {
    sent: Instant,
    answer: Option<PingAnswer>,
}

#[derive(Debug, Default)]
pub struct UserPings {
    pings: HashMap<TxId, Outstanding>,
}

impl UserPings {
    pub fn sent(&mut self, now: Instant, tx_id: TxId) {
        self.pings
            .retain(|_, p| now.saturating_duration_since(p.sent) < FORGET_AFTER);
        if self.pings.len() >= MAX_OUTSTANDING {
            if let Some(oldest) = self
                .pings
                .iter()
                .min_by_key(|(_, p)| p.sent)
                .map(|(k, _)| *k)
            {
                self.pings.remove(&oldest);
            }
        }
        self.pings.insert(
            tx_id,
            Outstanding {
                sent: now,
                answer: None,
            },
        );
    }

    /// `true` if the pong answered a person's ping (the first answer counts).
    pub fn pong(&mut self, now: Instant, from: SocketAddr, tx_id: &TxId) -> bool {
        match self.pings.get_mut(tx_id) {
            Some(p) => {
                if p.answer.is_none() {
                    p.answer = Some(PingAnswer {
                        from,
                        rtt: now.saturating_duration_since(p.sent),
                    });
                }
                true
            }
            None => false,
        }
    }

    /// The answer, once; the ping is forgotten when answered.
    pub fn take(&mut self, tx_id: &TxId) -> Option<PingAnswer> {
        let answer = self.pings.get(tx_id)?.answer?;
        self.pings.remove(tx_id);
        Some(answer)
    }

    /// The caller gave up waiting.
    pub fn cancel(&mut self, tx_id: &TxId) {
        self.pings.remove(tx_id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.pings.len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.pings.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "198.51.100.7:41820".parse().unwrap()
    }

    #[test]
    fn answer_carries_rtt_and_source_once() {
        let t0 = Instant::now();
        let mut u = UserPings::default();
        u.sent(t0, [1; 12]);
        assert_eq!(u.take(&[1; 12]), None, "no answer yet");
        assert!(!u.pong(t0, addr(), &[2; 12]), "unknown tx id");
        assert!(u.pong(t0 + Duration::from_millis(30), addr(), &[1; 12]));
        // A duplicate pong does not change the measurement.
        assert!(u.pong(t0 + Duration::from_millis(90), addr(), &[1; 12]));
        assert_eq!(
            u.take(&[1; 12]),
            Some(PingAnswer {
                from: addr(),
                rtt: Duration::from_millis(30)
            })
        );
        assert_eq!(u.take(&[1; 12]), None);
        assert!(u.is_empty());
    }

    #[test]
    fn bounded_and_forgetful() {
        let t0 = Instant::now();
        let mut u = UserPings::default();
        for i in 0..(MAX_OUTSTANDING as u8 + 10) {
            u.sent(t0 + Duration::from_millis(i as u64), [i; 12]);
        }
        assert_eq!(u.len(), MAX_OUTSTANDING);
        assert!(!u.pong(t0, addr(), &[0; 12]), "the oldest was evicted");
        u.sent(t0 + FORGET_AFTER + Duration::from_secs(1), [200; 12]);
        assert_eq!(u.len(), 1, "old unanswered pings are forgotten");
        u.cancel(&[200; 12]);
        assert!(u.is_empty());
    }
}
