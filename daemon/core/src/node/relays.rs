//! The relays this node may send through: one per coordinator it follows (each relays only
//! between its own nodes), keyed by the shell's id for that coordinator. A peer lists the
//! relays that can reach it (those of the coordinators it came from); a peer that lists none
//! (a single-coordinator setup, or tests) may use any.

use crate::relay_client::RelayClient;
use std::net::SocketAddr;
use std::time::Instant;
use warren_proto::relay::RelayToken;

/// The shell's id of the coordinator a relay belongs to.
pub type RelayId = u32;

#[derive(Debug, Default)]
pub struct Relays {
    list: Vec<(RelayId, RelayClient)>,
    /// Where the next `poll_transmit` starts, so no relay's pings wait behind another's.
    cursor: usize,
}

impl Relays {
    /// Uses (or, with `None`, stops using) relay `id` at `server` with `token`.
    pub fn set(&mut self, now: Instant, id: RelayId, relay: Option<(SocketAddr, RelayToken)>) {
        self.list.retain(|(i, _)| *i != id);
        if let Some((server, token)) = relay {
            // Datagrams arrive from plain IPv4 addresses; a v4-mapped server would never match.
            let server = SocketAddr::new(server.ip().to_canonical(), server.port());
            self.list.push((id, RelayClient::new(now, server, token)));
        }
    }

    pub fn set_ticket(&mut self, now: Instant, id: RelayId, ticket: Option<Vec<u8>>) {
        if let Some((_, r)) = self.list.iter_mut().find(|(i, _)| *i == id) {
            r.set_ticket(now, ticket);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The relay for a peer that `allowed` relays reach (any when empty): the first that
    /// answers, else the first at all.
    pub fn for_peer(&self, allowed: &[RelayId]) -> Option<&RelayClient> {
        let mut candidates = self
            .list
            .iter()
            .filter(|(id, _)| allowed.is_empty() || allowed.contains(id))
            .map(|(_, r)| r)
            .peekable();
        let first = candidates.peek().copied();
        candidates.find(|r| r.is_usable()).or(first)
    }

    /// The first relay, for what status and netcheck show of "the" relay.
    pub fn first(&self) -> Option<&RelayClient> {
        self.list.first().map(|(_, r)| r)
    }

    pub fn is_server(&self, addr: SocketAddr) -> bool {
        self.list.iter().any(|(_, r)| r.server() == addr)
    }

    pub fn by_server_mut(&mut self, addr: SocketAddr) -> Option<&mut RelayClient> {
        self.list
            .iter_mut()
            .map(|(_, r)| r)
            .find(|r| r.server() == addr)
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut RelayClient> {
        self.list.iter_mut().map(|(_, r)| r)
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.list.iter().map(|(_, r)| r.poll_timeout()).min()
    }

    /// The next ping of any relay: `(server, len)` written to `out`.
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> Option<(SocketAddr, usize)> {
        let n = self.list.len();
        for k in 0..n {
            let i = (self.cursor + k) % n;
            let r = &mut self.list[i].1;
            if let Some(len) = r.poll_transmit(out) {
                self.cursor = (i + 1) % n;
                return Some((r.server(), len));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(b: u8) -> RelayToken {
        [b; warren_proto::relay::TOKEN_LEN]
    }

    #[test]
    fn a_peer_uses_a_relay_of_its_own_coordinators_and_pings_reach_all() {
        let t = Instant::now();
        let mut r = Relays::default();
        let a: SocketAddr = "203.0.113.1:7446".parse().unwrap();
        let b: SocketAddr = "198.51.100.2:7446".parse().unwrap();
        r.set(t, 1, Some((a, token(1))));
        r.set(t, 2, Some((b, token(2))));
        assert_eq!(r.for_peer(&[2]).map(|c| c.server()), Some(b));
        assert_eq!(r.for_peer(&[1, 2]).map(|c| c.server()), Some(a));
        assert_eq!(r.for_peer(&[]).map(|c| c.server()), Some(a));
        assert!(r.for_peer(&[3]).is_none());
        assert!(r.is_server(b) && !r.is_server("192.0.2.1:1".parse().unwrap()));
        // Both relays get their first registration ping.
        let mut out = [0u8; 256];
        let mut to: Vec<SocketAddr> = std::iter::from_fn(|| r.poll_transmit(&mut out))
            .map(|(s, _)| s)
            .collect();
        to.sort();
        let mut both = vec![a, b];
        both.sort();
        assert_eq!(to, both);
        r.set(t, 1, None);
        assert_eq!(r.for_peer(&[1, 2]).map(|c| c.server()), Some(b));
        assert!(r.for_peer(&[1]).is_none());
    }
}
