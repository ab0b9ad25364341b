//! `warren check` between daemons: a host asks a peer what listens on one of its ports, in an
//! authenticated disco message on the peer's current path, and the peer's daemon answers from
//! its own socket table. The core only carries the questions and answers: reading the socket
//! table is the shell's (see `Node::take_port_question`).

use crate::buckets::Buckets;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};
use warren_proto::disco::{Listening, PortProto, TxId};

/// Questions from peers waiting for the shell, at most; more are dropped (a peer asking in a
/// loop cannot grow the daemon).
pub const MAX_QUESTIONS: usize = 16;
/// Answers we wait for, at most.
pub const MAX_ASKED: usize = 64;
/// Unclaimed answers older than this are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(10);
/// Questions one peer may ask at once, and how long each takes to earn back: enough for
/// `warren check --app` (a few ports), too few to scan this host's ports.
pub const PEER_BURST: u32 = 16;
pub const PEER_REFILL: Duration = Duration::from_millis(250);

/// A peer's question, for the shell to answer with `Node::answer_port_question`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortQuestion<R> {
    pub port: u16,
    pub proto: PortProto,
    pub(super) peer: usize,
    pub(super) route: R,
    pub(super) tx_id: TxId,
}

#[derive(Debug)]
pub struct PortChecks<R> {
    questions: VecDeque<PortQuestion<R>>,
    /// Our questions: when asked, and the answer once it came.
    asked: HashMap<TxId, (Instant, Option<Listening>)>,
    /// Each asking peer's bucket.
    budget: Buckets<usize>,
    pub dropped_questions: u64,
}

impl<R> Default for PortChecks<R> {
    fn default() -> Self {
        Self {
            questions: VecDeque::new(),
            asked: HashMap::new(),
            // Peers are few; a peer id that went away costs a few bytes until it is reused.
            budget: Buckets::new(PEER_BURST, PEER_REFILL, 4096),
            dropped_questions: 0,
        }
    }
}

impl<R> PortChecks<R> {
    pub fn asked(&mut self, now: Instant, tx_id: TxId) {
        self.asked
            .retain(|_, (at, _)| now.saturating_duration_since(*at) < FORGET_AFTER);
        if self.asked.len() >= MAX_ASKED {
            return;
        }
        self.asked.insert(tx_id, (now, None));
    }

    /// An answer arrived; only answers to our own questions count.
    pub fn answered(&mut self, tx_id: &TxId, listening: Listening) {
        if let Some((_, slot)) = self.asked.get_mut(tx_id) {
            slot.get_or_insert(listening);
        }
    }

    pub fn take_answer(&mut self, tx_id: &TxId) -> Option<Listening> {
        let answer = self.asked.get(tx_id)?.1?;
        self.asked.remove(tx_id);
        Some(answer)
    }

    pub fn cancel(&mut self, tx_id: &TxId) {
        self.asked.remove(tx_id);
    }

    /// A peer's question at `now`: queued unless the queue is full or the peer asked too
    /// much lately (a port scan through `warren check`).
    pub fn question(&mut self, now: Instant, q: PortQuestion<R>) {
        if self.questions.len() >= MAX_QUESTIONS || !self.budget.take(now, q.peer) {
            self.dropped_questions += 1;
            return;
        }
        self.questions.push_back(q);
    }

    pub fn take_question(&mut self) -> Option<PortQuestion<R>> {
        self.questions.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_match_questions_and_queues_are_bounded() {
        let mut c: PortChecks<()> = PortChecks::default();
        let now = Instant::now();
        c.asked(now, [1; 12]);
        c.answered(&[2; 12], Listening::Overlay);
        assert_eq!(c.take_answer(&[2; 12]), None, "not our question");
        assert_eq!(c.take_answer(&[1; 12]), None, "not answered yet");
        c.answered(&[1; 12], Listening::Nothing);
        c.answered(&[1; 12], Listening::Overlay);
        assert_eq!(
            c.take_answer(&[1; 12]),
            Some(Listening::Nothing),
            "the first answer"
        );
        assert_eq!(c.take_answer(&[1; 12]), None, "taken once");
        for i in 0..(MAX_QUESTIONS + 3) {
            c.question(
                now,
                PortQuestion {
                    port: i as u16,
                    proto: PortProto::Tcp,
                    peer: i % 3,
                    route: (),
                    tx_id: [0; 12],
                },
            );
        }
        assert_eq!(c.dropped_questions, 3);
        assert_eq!(
            std::iter::from_fn(|| c.take_question()).count(),
            MAX_QUESTIONS
        );
        // One peer scanning: its burst, then one question per refill period.
        let scan = |c: &mut PortChecks<()>, at: Instant, n: u16| {
            for port in 0..n {
                c.question(
                    at,
                    PortQuestion {
                        port,
                        proto: PortProto::Tcp,
                        peer: 9,
                        route: (),
                        tx_id: [0; 12],
                    },
                );
            }
            std::iter::from_fn(|| c.take_question()).count()
        };
        assert_eq!(scan(&mut c, now, 100), PEER_BURST as usize);
        assert_eq!(scan(&mut c, now + PEER_REFILL, 100), 1);
        assert_eq!(
            scan(&mut c, now + PEER_REFILL * 100, 100),
            PEER_BURST as usize
        );
        // Old unclaimed questions are forgotten.
        c.asked(now, [7; 12]);
        c.asked(now + FORGET_AFTER, [8; 12]);
        c.answered(&[7; 12], Listening::Overlay);
        assert_eq!(c.take_answer(&[7; 12]), None);
    }
}
