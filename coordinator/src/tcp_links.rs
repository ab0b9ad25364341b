//! TCP connections as the relay sees them. The relay core knows a node by the address its
//! datagrams come from; a daemon that can only reach us over TCP+TLS gets a synthetic address
//! for its connection, from the discard-only prefix 100::/64 (RFC 6666): no legitimate UDP
//! packet comes from it and nothing routes to it, so the core needs no change and a UDP
//! datagram claiming such a source is dropped before the core sees it. What the core sends to
//! a synthetic address goes to that connection's writer through a bounded queue; a full queue
//! drops the frame (counted), because the relay's one task must never wait on a slow TCP peer.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::Sender;

const PREFIX: [u16; 4] = [0x100, 0, 0, 0];
/// Any port but 0, which the core refuses as malformed; 9 is the discard port.
const PORT: u16 = 9;

/// The synthetic address of TCP connection number `n`.
pub fn synthetic_addr(n: u64) -> SocketAddr {
    let ip = Ipv6Addr::new(
        PREFIX[0],
        PREFIX[1],
        PREFIX[2],
        PREFIX[3],
        (n >> 48) as u16,
        (n >> 32) as u16,
        (n >> 16) as u16,
        n as u16,
    );
    SocketAddr::new(IpAddr::V6(ip), PORT)
}

pub fn is_synthetic(addr: &SocketAddr) -> bool {
    match addr.ip() {
        IpAddr::V6(ip) => ip.segments()[..4] == PREFIX,
        IpAddr::V4(_) => false,
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TcpLinkCounters {
    pub sent: u64,
    /// The connection's queue was full: it reads slower than its peers send.
    pub dropped_full: u64,
    /// No such connection (any more).
    pub dropped_gone: u64,
}

/// The live TCP connections' queues, by synthetic address.
#[derive(Default)]
pub struct TcpLinks {
    links: HashMap<SocketAddr, Sender<Vec<u8>>>,
    pub counters: TcpLinkCounters,
}

impl TcpLinks {
    pub fn attach(&mut self, addr: SocketAddr, queue: Sender<Vec<u8>>) {
        self.links.insert(addr, queue);
    }

    pub fn detach(&mut self, addr: &SocketAddr) {
        self.links.remove(addr);
    }

    pub fn len(&self) -> usize {
        self.links.len()
    }

    /// Queues `frame` for the connection at `to`, or drops it; never waits.
    pub fn send(&mut self, to: &SocketAddr, frame: &[u8]) {
        let Some(queue) = self.links.get(to) else {
            self.counters.dropped_gone += 1;
            return;
        };
        match queue.try_send(frame.to_vec()) {
            Ok(()) => self.counters.sent += 1,
            Err(TrySendError::Full(_)) => self.counters.dropped_full += 1,
            Err(TrySendError::Closed(_)) => {
                self.links.remove(to);
                self.counters.dropped_gone += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc::channel;

    #[test]
    fn synthetic_addresses_are_distinct_and_recognised() {
        let a = synthetic_addr(1);
        let b = synthetic_addr(u64::MAX);
        assert_ne!(a, b);
        assert_eq!(a.to_string(), "[100::1]:9");
        assert_eq!(b.to_string(), "[100::ffff:ffff:ffff:ffff]:9");
        assert_ne!(a.port(), 0, "the relay core refuses port 0");
        assert_ne!(synthetic_addr(1 << 16), synthetic_addr(1));
        assert!(is_synthetic(&a) && is_synthetic(&b));
        for real in [
            "203.0.113.5:7446",
            "[2001:db8::1]:41820",
            "[::ffff:100.0.0.1]:1",
            "[100:0:0:1::1]:0",
        ] {
            assert!(!is_synthetic(&real.parse().unwrap()), "{real}");
        }
    }

    #[test]
    fn frames_reach_their_connection_and_a_full_or_gone_one_drops() {
        let mut links = TcpLinks::default();
        let (tx1, mut rx1) = channel(2);
        let (tx2, rx2) = channel(2);
        let (a, b) = (synthetic_addr(1), synthetic_addr(2));
        links.attach(a, tx1);
        links.attach(b, tx2);
        links.send(&a, b"one");
        links.send(&a, b"two");
        links.send(&a, b"three: the queue is full");
        assert_eq!(rx1.try_recv().unwrap(), b"one");
        assert_eq!(rx1.try_recv().unwrap(), b"two");
        assert!(rx1.try_recv().is_err());
        assert_eq!(links.counters.sent, 2);
        assert_eq!(links.counters.dropped_full, 1);

        // The connection's writer is gone: its entry goes too.
        drop(rx2);
        links.send(&b, b"to nobody");
        assert_eq!(links.len(), 1);
        links.detach(&a);
        links.send(&a, b"after detach");
        links.send(&synthetic_addr(3), b"never attached");
        assert_eq!(links.counters.dropped_gone, 3);
        assert_eq!(links.len(), 0);
    }
}
