//! Connections that have not proven a node key yet. Before the Noise handshake a connection
//! costs the coordinator a TLS session and buffers, and proves nothing: their number is
//! capped, what they may send is small (one handshake frame), and over TCP no relay frame is
//! taken from them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections between accept and a completed handshake, at most (QUIC and TCP together).
pub const MAX_UNAUTHENTICATED: usize = 256;
/// The largest frame taken before the handshake: the handshake with its Hello is far smaller.
pub const PRE_AUTH_MAX_FRAME: usize = 16 << 10;

pub struct PreAuthGate {
    slots: Arc<Semaphore>,
    refused: AtomicU64,
}

impl PreAuthGate {
    pub fn new(max: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max)),
            refused: AtomicU64::new(0),
        }
    }

    /// A slot for a new connection; `None` (counted) when every slot holds one still
    /// handshaking: the caller closes it at once.
    pub fn enter(&self) -> Option<Arc<PreAuth>> {
        match self.slots.clone().try_acquire_owned() {
            Ok(permit) => Some(Arc::new(PreAuth {
                permit: Mutex::new(Some(permit)),
                authenticated: AtomicBool::new(false),
            })),
            Err(_) => {
                let n = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::warn!(
                        refused_so_far = n,
                        "too many connections handshaking at once: new ones are closed until \
                         some finish (a flood, or very many hosts reconnecting)"
                    );
                }
                None
            }
        }
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

    #[test]
    fn slots_are_capped_and_given_back_by_the_handshake_or_the_end() {
        let gate = PreAuthGate::new(2);
        let a = gate.enter().unwrap();
        let b = gate.enter().unwrap();
        assert!(gate.enter().is_none(), "both slots handshaking");
        assert_eq!(gate.refused(), 1);
        assert_eq!(a.max_frame(1 << 20), PRE_AUTH_MAX_FRAME);
        a.authenticated();
        assert_eq!(a.max_frame(1 << 20), 1 << 20);
        let c = gate.enter().expect("a's slot is free again");
        drop(b);
        assert!(
            gate.enter().is_some(),
            "a connection that ended frees its slot"
        );
        drop(c);
    }
}
