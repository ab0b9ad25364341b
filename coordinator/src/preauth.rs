//! Connections that have not proven a node key yet. Before the Noise handshake a connection
//! costs the coordinator a TLS session and buffers, and proves nothing: their number is
//! capped, what they may send is small (one handshake frame), and over TCP no relay frame is
//! taken from them.
//!
//! A connection over the cap waits in line for a slot (a bounded line, for a bounded time)
//! before it is closed: when thousands of hosts come at once (a restart, a large network
//! starting up) they are served in turn at the pace the handshakes go, instead of being turned
//! away and coming back in waves after their backoff.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections between accept and a completed handshake, at most (QUIC and TCP together).
/// Connections over it wait in line. (1 024 slots made a restart with 10 000 hosts slower in
/// the benchmark, not faster: more handshakes at once, each slower, more of them past the
/// daemons' connect timeout.)
pub const MAX_UNAUTHENTICATED: usize = 256;
/// Connections waiting for a slot, at most: holding one costs a socket (and for QUIC its first
/// packet), not a TLS session.
pub const MAX_WAITING: usize = 16384;
/// How long a connection waits for a slot: within a daemon's 12 s connect timeout. (A daemon
/// that knows several addresses of its coordinator gives up on QUIC after 4 s and tries them
/// again; a connection it left is closed by the handshake's own deadline.)
pub const MAX_WAIT: Duration = Duration::from_secs(8);
/// The largest frame taken before the handshake: the handshake with its Hello is far smaller.
pub const PRE_AUTH_MAX_FRAME: usize = 16 << 10;

pub struct PreAuthGate {
    slots: Arc<Semaphore>,
    refused: AtomicU64,
    waiting: AtomicUsize,
    max_waiting: usize,
    max_wait: Duration,
}

impl PreAuthGate {
    pub fn new(max: usize) -> Self {
        Self::with_line(max, MAX_WAITING, MAX_WAIT)
    }

    /// `max` handshaking, up to `max_waiting` more waiting for at most `max_wait` each.
    pub fn with_line(max: usize, max_waiting: usize, max_wait: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max)),
            refused: AtomicU64::new(0),
            waiting: AtomicUsize::new(0),
            max_waiting,
            max_wait,
        }
    }

    /// A slot for a new connection, after waiting in line if every slot holds one still
    /// handshaking; `None` (counted) when the line is full too or the wait ran out: the
    /// caller closes the connection then.
    pub async fn enter(&self) -> Option<Arc<PreAuth>> {
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                // Counted while in line, also if the connection's task is dropped meanwhile.
                let _in_line = InLine::join(&self.waiting);
                if self.waiting.load(Ordering::Acquire) > self.max_waiting {
                    None
                } else {
                    tokio::time::timeout(self.max_wait, self.slots.clone().acquire_owned())
                        .await
                        .ok()
                        .and_then(Result::ok)
                }
            }
        };
        let Some(permit) = permit else {
            let n = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(
                    refused_so_far = n,
                    "too many connections handshaking at once: new ones are closed until \
                     some finish (a flood, or very many hosts reconnecting)"
                );
            }
            return None;
        };
        Some(Arc::new(PreAuth {
            permit: Mutex::new(Some(permit)),
            authenticated: AtomicBool::new(false),
        }))
    }

    /// Connections waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Connections closed because too many were handshaking.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

impl Default for PreAuthGate {
    fn default() -> Self {
        Self::new(MAX_UNAUTHENTICATED)
    }
}

/// A place in the line, given up when dropped.
struct InLine<'a>(&'a AtomicUsize);

impl<'a> InLine<'a> {
    fn join(waiting: &'a AtomicUsize) -> Self {
        waiting.fetch_add(1, Ordering::AcqRel);
        InLine(waiting)
    }
}

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One connection's standing: its slot until the handshake, then authenticated.
pub struct PreAuth {
    permit: Mutex<Option<OwnedSemaphorePermit>>,
    authenticated: AtomicBool,
}

impl PreAuth {
    /// The node proved its key: the slot goes back to the gate.
    pub fn authenticated(&self) {
        self.authenticated.store(true, Ordering::Release);
        self.permit.lock().expect("pre-auth lock").take();
    }

    pub fn is_authenticated(&self) -> bool {
        self.authenticated.load(Ordering::Acquire)
    }

    /// The largest frame the connection may send now.
    pub fn max_frame(&self, after: usize) -> usize {
        if self.is_authenticated() {
            after
        } else {
            PRE_AUTH_MAX_FRAME.min(after)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slots_are_capped_and_given_back_by_the_handshake_or_the_end() {
        let gate = PreAuthGate::with_line(2, 0, MAX_WAIT);
        let a = gate.enter().await.unwrap();
        let b = gate.enter().await.unwrap();
        assert!(gate.enter().await.is_none(), "both slots handshaking");
        assert_eq!(gate.refused(), 1);
        assert_eq!(a.max_frame(1 << 20), PRE_AUTH_MAX_FRAME);
        a.authenticated();
        assert_eq!(a.max_frame(1 << 20), 1 << 20);
        let c = gate.enter().await.expect("a's slot is free again");
        drop(b);
        assert!(
            gate.enter().await.is_some(),
            "a connection that ended frees its slot"
        );
        drop(c);
    }

    /// Over the cap a connection waits for a slot: it gets the first one freed, in turn; the
    /// line is bounded in length and in time.
    #[tokio::test(start_paused = true)]
    async fn connections_over_the_cap_wait_in_a_bounded_line() {
        let gate = Arc::new(PreAuthGate::with_line(1, 2, Duration::from_secs(6)));
        let first = gate.enter().await.unwrap();
        let g = gate.clone();
        let second = tokio::spawn(async move { g.enter().await });
        let g = gate.clone();
        let third = tokio::spawn(async move { g.enter().await });
        tokio::task::yield_now().await;
        assert_eq!(gate.waiting(), 2);
        assert!(gate.enter().await.is_none(), "the line is full");
        assert_eq!(gate.refused(), 1);
        tokio::time::sleep(Duration::from_secs(1)).await;
        first.authenticated();
        let second = second.await.unwrap().expect("the freed slot");
        assert!(!third.is_finished());
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(third.await.unwrap().is_none(), "waited too long");
        assert_eq!(gate.refused(), 2);
        assert_eq!(gate.waiting(), 0);

        // A connection whose task ends while in line gives its place up.
        let g = gate.clone();
        let gone = tokio::spawn(async move { g.enter().await });
        tokio::task::yield_now().await;
        assert_eq!(gate.waiting(), 1);
        gone.abort();
        let _ = gone.await;
        assert_eq!(gate.waiting(), 0);
        drop(second);
    }
}
