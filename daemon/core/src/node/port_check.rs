//! `warren check` between daemons: a host asks a peer what listens on one of its ports, in an
//! authenticated disco message on the peer's current path, and the peer's daemon answers from
//! its own socket table. The core only carries the questions and answers: reading the socket
//! table is the shell's (see `Node::take_port_question`).

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
    pub dropped_questions: u64,
}

impl<R> Default for PortChecks<R> {
    fn default() -> Self {
        Self {
            questions: VecDeque::new(),
            asked: HashMap::new(),
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

    pub fn question(&mut self, q: PortQuestion<R>) {
        if self.questions.len() >= MAX_QUESTIONS {
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
            c.question(PortQuestion {
                port: i as u16,
                proto: PortProto::Tcp,
                peer: 0,
                route: (),
                tx_id: [0; 12],
            });
        }
        assert_eq!(c.dropped_questions, 3);
        assert_eq!(
            std::iter::from_fn(|| c.take_question()).count(),
            MAX_QUESTIONS
        );
        // Old unclaimed questions are forgotten.
        c.asked(now, [7; 12]);
        c.asked(now + FORGET_AFTER, [8; 12]);
        c.answered(&[7; 12], Listening::Overlay);
        assert_eq!(c.take_answer(&[7; 12]), None);
    }
}
