//! The relays this node may send through: one per coordinator it follows (each relays only
//! between its own nodes), keyed by the shell's id for that coordinator, and the peer relays
//! (members of our networks that relay for the others, keyed by their node key). A peer lists
//! the coordinators' relays that can reach it (those of the coordinators it came from; none:
//! any); a peer relay reaches the peers it shares a network with. Among the relays that reach
//! a peer, the one that answers with the shortest round trip carries its traffic.

use crate::relay_client::RelayClient;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use warren_proto::key::NodeKey;
use warren_proto::relay::RelayToken;

/// The shell's id of the coordinator a relay belongs to.
pub type RelayId = u32;

/// Whose relay it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Coordinator(RelayId),
    /// A peer that relays for its networks: which networks those are (ours with it).
    Peer(NodeKey, Vec<String>),
}

/// What a peer needs of a relay: the coordinators that reach it, its key (a peer relays for
/// others, not for itself) and the networks we share with it.
pub struct Target<'a> {
    pub coordinators: &'a [RelayId],
    pub key: &'a NodeKey,
    pub networks: &'a [String],
}

#[derive(Debug, Default)]
pub struct Relays {
    list: Vec<(Owner, RelayClient)>,
    /// Where the next `poll_transmit` starts, so no relay's pings wait behind another's.
    cursor: usize,
}

impl Relays {
    /// Uses (or, with `None`, stops using) relay `id` at `server` with `token`.
    pub fn set(&mut self, now: Instant, id: RelayId, relay: Option<(SocketAddr, RelayToken)>) {
        self.list
            .retain(|(o, _)| !matches!(o, Owner::Coordinator(i) if *i == id));
        if let Some((server, token)) = relay {
            self.list.push((
                Owner::Coordinator(id),
                RelayClient::new(now, canonical(server), token),
            ));
        }
    }

    /// Uses (or, with `None`, stops using) peer `key` as a relay at `server` for the peers of
    /// `networks`. The same relay named again keeps its registration and round trip.
    pub fn set_peer(
        &mut self,
        now: Instant,
        key: NodeKey,
        relay: Option<(SocketAddr, RelayToken, Vec<String>)>,
    ) {
        let at = self
            .list
            .iter()
            .position(|(o, _)| matches!(o, Owner::Peer(k, _) if *k == key));
        match (at, relay) {
            (Some(i), Some((server, token, networks)))
                if self.list[i].1.server() == canonical(server)
                    && *self.list[i].1.token() == token =>
            {
                self.list[i].0 = Owner::Peer(key, networks);
            }
            (at, relay) => {
                if let Some(i) = at {
                    self.list.remove(i);
                }
                if let Some((server, token, networks)) = relay {
                    self.list.push((
                        Owner::Peer(key, networks),
                        RelayClient::new(now, canonical(server), token),
                    ));
                }
            }
        }
    }

    /// Stops using peer `key` as a relay (it left).
    pub fn remove_peer(&mut self, key: &NodeKey) {
        self.list
            .retain(|(o, _)| !matches!(o, Owner::Peer(k, _) if k == key));
    }

    pub fn set_ticket(&mut self, now: Instant, id: RelayId, ticket: Option<Vec<u8>>) {
        if let Some((_, r)) = self
            .list
            .iter_mut()
            .find(|(o, _)| matches!(o, Owner::Coordinator(i) if *i == id))
        {
            r.set_ticket(now, ticket);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The relay for `target`: among those that reach it, one that answers and is not
    /// suspect, with the shortest round trip (the earliest listed among equals); else one that
    /// answers; else the first at all.
    pub fn for_peer(&self, target: &Target) -> Option<&RelayClient> {
        self.list
            .iter()
            .filter(|(owner, _)| reaches(owner, target))
            .map(|(_, r)| r)
            .min_by_key(|r| {
                let rank = match (r.is_usable(), r.is_suspect()) {
                    (true, false) => 0,
                    (true, true) => 1,
                    (false, _) => 2,
                };
                (rank, r.rtt().unwrap_or(Duration::MAX))
            })
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

    /// Traffic goes through relays (or no longer does): they are pinged faster meanwhile.
    pub fn set_active(&mut self, now: Instant, active: bool) {
        for (_, r) in &mut self.list {
            r.set_active(now, active);
        }
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

/// Datagrams arrive from plain IPv4 addresses; a v4-mapped server would never match.
fn canonical(server: SocketAddr) -> SocketAddr {
    SocketAddr::new(server.ip().to_canonical(), server.port())
}

fn reaches(owner: &Owner, target: &Target) -> bool {
    match owner {
        Owner::Coordinator(id) => {
            target.coordinators.is_empty() || target.coordinators.contains(id)
        }
        Owner::Peer(key, networks) => {
            key != target.key && networks.iter().any(|n| target.networks.contains(n))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(b: u8) -> RelayToken {
        [b; warren_proto::relay::TOKEN_LEN]
    }

    const NOBODY: NodeKey = NodeKey([0xee; 32]);

    fn via(r: &Relays, coordinators: &[RelayId]) -> Option<SocketAddr> {
        let target = Target {
            coordinators,
            key: &NOBODY,
            networks: &[],
        };
        r.for_peer(&target).map(|c| c.server())
    }

    /// Sends the due pings at `at`; each relay answers after its round trip in `rtts` (no
    /// entry: it is silent).
    fn ping_round(r: &mut Relays, at: Instant, rtts: &[(SocketAddr, u64)]) {
        for c in r.iter_mut() {
            c.handle_timeout(at);
        }
        let mut out = [0u8; 256];
        let mut pings = Vec::new();
        while let Some((to, n)) = r.poll_transmit(&mut out) {
            pings.push((to, out[..n].to_vec()));
        }
        for (to, ping) in pings {
            let Ok(warren_proto::relay::RelayFrame::Ping { tx, .. }) =
                warren_proto::relay::parse(&ping)
            else {
                panic!("not a ping")
            };
            if let Some((_, ms)) = rtts.iter().find(|(s, _)| *s == to) {
                let back = at + Duration::from_millis(*ms);
                r.by_server_mut(to).unwrap().handle_pong(back, to, tx);
            }
        }
    }

    #[test]
    fn the_relay_that_answers_fastest_carries_and_a_silent_one_is_left_within_two_seconds() {
        let t0 = Instant::now();
        let mut r = Relays::default();
        let coord: SocketAddr = "203.0.113.1:7446".parse().unwrap();
        let (p1, p2) = (NodeKey([1; 32]), NodeKey([2; 32]));
        let friend1: SocketAddr = "198.51.100.7:41641".parse().unwrap();
        let friend2: SocketAddr = "192.0.2.9:41641".parse().unwrap();
        r.set(t0, 1, Some((coord, token(1))));
        let games = vec!["games".to_string()];
        r.set_peer(t0, p1, Some((friend1, token(2), games.clone())));
        r.set_peer(t0, p2, Some((friend2, token(3), vec!["work".into()])));
        let all = [(coord, 40), (friend1, 8), (friend2, 2)];
        ping_round(&mut r, t0, &all);
        assert!(
            r.list.iter().all(|(_, c)| c.rtt().is_some()),
            "all pinged at once"
        );
        let t = t0 + Duration::from_secs(5);
        ping_round(&mut r, t, &all);
        let mate = NodeKey([9; 32]);
        let in_games = Target {
            coordinators: &[1],
            key: &mate,
            networks: &games,
        };
        assert_eq!(r.for_peer(&in_games).map(|c| c.server()), Some(friend1));
        // A peer relay does not relay for itself; then the coordinator's.
        let to_p1 = Target {
            coordinators: &[1],
            key: &p1,
            networks: &games,
        };
        assert_eq!(r.for_peer(&to_p1).map(|c| c.server()), Some(coord));
        // Traffic flows; friend1 dies. Within 2 s the games peer moves to the coordinator's.
        r.set_active(t, true);
        let died = t;
        loop {
            let next = r.poll_timeout().unwrap();
            ping_round(&mut r, next, &[(coord, 40), (friend2, 2)]);
            if r.for_peer(&in_games).map(|c| c.server()) == Some(coord) {
                assert!(next - died <= Duration::from_secs(2), "{:?}", next - died);
                break;
            }
            assert!(next - died < Duration::from_secs(4), "never left");
        }
        r.set_peer(t, p1, None);
        assert!(!r.is_server(friend1));
    }

    #[test]
    fn a_peer_uses_a_relay_of_its_own_coordinators_and_pings_reach_all() {
        let t = Instant::now();
        let mut r = Relays::default();
        let a: SocketAddr = "203.0.113.1:7446".parse().unwrap();
        let b: SocketAddr = "198.51.100.2:7446".parse().unwrap();
        r.set(t, 1, Some((a, token(1))));
        r.set(t, 2, Some((b, token(2))));
        assert_eq!(via(&r, &[2]), Some(b));
        assert_eq!(via(&r, &[1, 2]), Some(a));
        assert_eq!(via(&r, &[]), Some(a));
        assert!(via(&r, &[3]).is_none());
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
        assert_eq!(via(&r, &[1, 2]), Some(b));
        assert!(via(&r, &[1]).is_none());
    }
}
