//! The event queue: earliest first, and in the order queued among equal instants.

use crate::fabric::{Endpoint, HostId};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::Instant;
use warren_proto::control::msg::{ClientMsg, ServerMsg, Welcome};

/// Something that happens at an instant. `link` numbers a host's control connections: an
/// event of an older one is ignored.
#[derive(Debug)]
pub enum Ev {
    /// A datagram arrives.
    Udp {
        to: Endpoint,
        from: SocketAddr,
        bytes: Vec<u8>,
    },
    /// A datagram reaches router `n` (from inside when `outbound`).
    Hop {
        n: crate::fabric::NatId,
        outbound: bool,
        flight: crate::fabric::Flight,
        bytes: Vec<u8>,
    },
    /// A relay frame on a host's TCP control connection, to the relay or back.
    TcpToRelay {
        h: HostId,
        link: u64,
        bytes: Vec<u8>,
    },
    TcpFromRelay {
        h: HostId,
        link: u64,
        bytes: Vec<u8>,
    },
    /// A host's new connection (its handshake done) reaches the coordinator.
    Hello { h: HostId, link: u64 },
    /// The coordinator's welcome reaches the host.
    Welcome {
        h: HostId,
        link: u64,
        welcome: Box<Welcome>,
    },
    ToServer {
        h: HostId,
        link: u64,
        msg: ClientMsg,
    },
    ToHost {
        h: HostId,
        link: u64,
        msg: ServerMsg,
    },
    /// The host's dial failed.
    Refused { h: HostId, link: u64 },
    /// The host notices that its connection is gone.
    Lost { h: HostId, link: u64 },
    /// The coordinator notices that a host's connection is gone.
    ServerSeesClose { h: HostId, link: u64 },
    /// Echo requests both ways between `a` and `b`, again after `every` (while `stream` is
    /// the pair's current one).
    Traffic {
        a: HostId,
        b: HostId,
        every: std::time::Duration,
        stream: u64,
    },
}

struct Entry {
    at: Instant,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    // Reversed: the heap's greatest is the earliest.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

#[derive(Default)]
pub(crate) struct Queue {
    heap: BinaryHeap<Entry>,
    seq: u64,
}

impl Queue {
    pub fn push(&mut self, at: Instant, ev: Ev) {
        self.seq += 1;
        self.heap.push(Entry {
            at,
            seq: self.seq,
            ev,
        });
    }

    pub fn peek_time(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.at)
    }

    pub fn pop(&mut self) -> Option<Ev> {
        self.heap.pop().map(|e| e.ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn earliest_first_and_fifo_among_equals() {
        let t = Instant::now();
        let mut q = Queue::default();
        let ev = |h| Ev::Hello { h, link: 0 };
        q.push(t + Duration::from_millis(5), ev(1));
        q.push(t, ev(2));
        q.push(t + Duration::from_millis(5), ev(3));
        q.push(t, ev(4));
        let order: Vec<HostId> = std::iter::from_fn(|| q.pop())
            .map(|e| match e {
                Ev::Hello { h, .. } => h,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(order, [2, 4, 1, 3]);
    }
}
