//! The shell around a session's [`Outbox`]: the hub pushes into it under its lock without ever
//! waiting, the session's writer task awaits what is queued. All the queueing rules (the
//! bound, which message replaces which) are the core's.

use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use warren_coordinator_core::outbox::{Frame, Outbox, Overflow};

struct Shared {
    queue: Mutex<Outbox>,
    /// Wakes the writer: a message was queued, the queue overflowed, or the sender is gone.
    wake: Notify,
    /// Wakes the session when the queue overflowed: its writer may be stuck writing to the
    /// daemon that does not read, so it cannot be the one to notice.
    overflow: Notify,
    sender_gone: std::sync::atomic::AtomicBool,
}

/// The hub's end: one per online session.
pub struct OutboxTx(Arc<Shared>);

/// The writer task's end.
pub struct OutboxRx(Arc<Shared>);

/// What the writer gets next.
#[derive(Debug, PartialEq)]
pub enum Next {
    Msg(Frame),
    /// The daemon fell too far behind: end the session.
    Overflowed,
    /// The hub dropped the sender (a newer session of the node replaced this one).
    Closed,
}

pub fn outbox(capacity: usize) -> (OutboxTx, OutboxRx) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Outbox::new(capacity)),
        wake: Notify::new(),
        overflow: Notify::new(),
        sender_gone: Default::default(),
    });
    (OutboxTx(shared.clone()), OutboxRx(shared))
}

impl Shared {
    fn queue(&self) -> std::sync::MutexGuard<'_, Outbox> {
        self.queue.lock().expect("session queue poisoned")
    }
}

impl OutboxTx {
    /// Queues `msg` (never waits). On an overflow the writer is woken to end the session.
    pub fn send(&self, msg: impl Into<Frame>) -> Result<(), Overflow> {
        let r = self.0.queue().push(msg);
        self.0.wake.notify_one();
        if r.is_err() {
            self.0.overflow.notify_one();
        }
        r
    }

    /// Messages waiting to be written.
    pub fn len(&self) -> usize {
        self.0.queue().len()
    }
}

impl Drop for OutboxTx {
    fn drop(&mut self) {
        self.0
            .sender_gone
            .store(true, std::sync::atomic::Ordering::Release);
        self.0.wake.notify_one();
    }
}

/// Tells the session when its queue overflowed.
pub struct OverflowWatch(Arc<Shared>);

impl OverflowWatch {
    /// Returns once the queue has overflowed.
    pub async fn overflowed(&self) {
        while !self.0.queue().is_overflowed() {
            // A permit left by `notify_one` is not lost (one waiter: this session).
            self.0.overflow.notified().await;
        }
    }
}

impl OutboxRx {
    pub fn overflow_watch(&self) -> OverflowWatch {
        OverflowWatch(self.0.clone())
    }

    /// The next message to write; an overflow comes first, even before what is still queued.
    pub async fn next(&mut self) -> Next {
        loop {
            if let Some(next) = self.try_next() {
                return next;
            }
            // `notify_one` leaves a permit when nobody waits, so a push between the check
            // above and this await is not missed.
            self.0.wake.notified().await;
        }
    }

    /// [`OutboxRx::next`] without waiting: `None` while the queue is empty and live.
    pub fn try_next(&mut self) -> Option<Next> {
        let mut q = self.0.queue();
        if q.is_overflowed() {
            return Some(Next::Overflowed);
        }
        if let Some(m) = q.pop() {
            return Some(Next::Msg(m));
        }
        if self
            .0
            .sender_gone
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return Some(Next::Closed);
        }
        None
    }

    /// The next queued message, if any (tests read the queue with it).
    #[cfg(test)]
    pub fn try_recv(&mut self) -> Option<warren_proto::control::msg::ServerMsg> {
        match self.try_next()? {
            Next::Msg(m) => Some(m.into_msg()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_proto::control::msg::ServerMsg;

    #[tokio::test]
    async fn the_writer_wakes_for_a_message_an_overflow_and_a_gone_sender() {
        let (tx, mut rx) = outbox(2);
        let waiting = tokio::spawn(async move {
            let first = rx.next().await;
            (rx, first)
        });
        tokio::task::yield_now().await;
        tx.send(ServerMsg::Ok { id: 1 }).unwrap();
        let (mut rx, first) = waiting.await.unwrap();
        assert_eq!(first, Next::Msg(ServerMsg::Ok { id: 1 }.into()));

        for id in 2..4 {
            tx.send(ServerMsg::Ok { id }).unwrap();
        }
        let watch = rx.overflow_watch();
        let watching = tokio::spawn(async move { watch.overflowed().await });
        tokio::task::yield_now().await;
        assert!(!watching.is_finished());
        assert!(tx.send(ServerMsg::Ok { id: 4 }).is_err());
        tokio::time::timeout(std::time::Duration::from_secs(5), watching)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rx.next().await, Next::Overflowed);

        let (tx, mut rx) = outbox(2);
        drop(tx);
        assert_eq!(rx.next().await, Next::Closed);
    }
}
