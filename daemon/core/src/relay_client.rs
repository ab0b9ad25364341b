//! This node's side of the coordinator's relay: where it is, the token that lets us use it, and
//! the pings that register our address with it (answering its challenge with a proof keyed by
//! the token, which itself never leaves this host), keep our NAT mapping to it open and measure
//! its round-trip time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use warren_proto::relay::{self, RelayToken};

/// Pings to the relay this often: well inside common NAT UDP timeouts (30 s and up).
pub const PING_INTERVAL: Duration = Duration::from_secs(5);
/// Without a pong for this long, the relay counts as unreachable.
pub const ALIVE_FOR: Duration = Duration::from_secs(16);
/// A ping unanswered for this long (or two of the relay's round trips, if longer) is followed
/// by another: a relay that restarted, or lost our registration, learns our address again
/// within this of coming back, not at the next [`PING_INTERVAL`].
pub const RETRY_AFTER: Duration = Duration::from_millis(500);
/// After this long without a pong the retries slow down to [`SLOW_RETRY`]: a relay gone for
/// good costs two small pings a second for a minute, then one every few seconds.
pub const FAST_RETRIES_FOR: Duration = Duration::from_secs(60);
pub const SLOW_RETRY: Duration = Duration::from_secs(2);
/// While traffic goes through relays, each is pinged this often: a relay that dies under a
/// transfer is noticed (see [`RelayClient::is_suspect`]) and left for another within 2 s.
pub const ACTIVE_PING_INTERVAL: Duration = Duration::from_secs(1);
/// A ping unanswered for this long (or three of the relay's round trips, if longer) makes the
/// relay suspect: peers move to another relay that answers, if there is one.
pub const SUSPECT_AFTER: Duration = Duration::from_millis(600);
/// Pings whose pongs still count: a slow relay's answer to an earlier ping is not wasted.
const PINGS_REMEMBERED: usize = 4;

#[derive(Debug)]
pub struct RelayClient {
    server: SocketAddr,
    token: RelayToken,
    /// For a standalone relay: the coordinator's ticket for our token, shown in every ping
    /// (the relay may have restarted since the last one and know nothing of us).
    ticket: Option<Vec<u8>>,
    next_ping: Instant,
    /// A ping is due, since this instant.
    due: Option<Instant>,
    counter: u64,
    /// The last pings sent and not answered yet: their tx and when they left.
    outstanding: [Option<([u8; 8], Instant)>; PINGS_REMEMBERED],
    /// The relay's challenge to one of our pings, to answer with a Register.
    challenged: Option<([u8; 8], relay::Cookie)>,
    last_pong: Option<Instant>,
    rtt: Option<Duration>,
    created: Instant,
    /// Worth sending through: it answered within [`ALIVE_FOR`], or is new and not yet proven
    /// silent. Updated on every pong and timeout, so routing needs no clock.
    usable: bool,
    /// A ping went unanswered for [`SUSPECT_AFTER`]: the relay may have died. Updated like
    /// `usable`.
    suspect: bool,
    /// Traffic goes through relays: ping every [`ACTIVE_PING_INTERVAL`].
    active: bool,
}

impl RelayClient {
    /// The first ping goes out at once, so the relay knows our address before any peer needs it.
    pub fn new(now: Instant, server: SocketAddr, token: RelayToken) -> Self {
        Self {
            server,
            token,
            ticket: None,
            next_ping: now + PING_INTERVAL,
            due: Some(now),
            counter: 0,
            outstanding: [None; PINGS_REMEMBERED],
            challenged: None,
            last_pong: None,
            rtt: None,
            created: now,
            usable: true,
            suspect: false,
            active: false,
        }
    }

    /// Whether packets should go through the relay (see `usable`).
    pub fn is_usable(&self) -> bool {
        self.usable
    }

    /// Whether a ping of ours went unanswered for [`SUSPECT_AFTER`] (three round trips if
    /// longer): another relay that answers is the better choice until it answers again.
    pub fn is_suspect(&self) -> bool {
        self.suspect
    }

    /// Traffic goes through relays (or no longer does): ping faster, or at the usual pace.
    pub fn set_active(&mut self, now: Instant, active: bool) {
        if active == self.active {
            return;
        }
        self.active = active;
        if active {
            self.next_ping = self.next_ping.min(now + ACTIVE_PING_INTERVAL);
        }
    }

    fn interval(&self) -> Duration {
        if self.active {
            ACTIVE_PING_INTERVAL
        } else {
            PING_INTERVAL
        }
    }

    /// When the oldest unanswered ping makes the relay suspect.
    fn suspect_at(&self) -> Option<Instant> {
        let (_, sent) = self
            .outstanding
            .iter()
            .flatten()
            .min_by_key(|(_, at)| *at)?;
        Some(*sent + SUSPECT_AFTER.max(self.rtt.map_or(Duration::ZERO, |r| r * 3)))
    }

    pub fn server(&self) -> SocketAddr {
        self.server
    }

    pub fn token(&self) -> &RelayToken {
        &self.token
    }

    /// A new ticket from the coordinator (after a join or leave, or before the old one
    /// expires): the relay learns it at once.
    pub fn set_ticket(&mut self, now: Instant, ticket: Option<Vec<u8>>) {
        self.ticket = ticket;
        self.due = Some(now);
    }

    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// The relay answered recently.
    pub fn is_alive(&self, now: Instant) -> bool {
        self.last_pong
            .is_some_and(|t| now.saturating_duration_since(t) < ALIVE_FOR)
    }

    pub fn poll_timeout(&self) -> Instant {
        let suspect_at = self.suspect_at().filter(|_| !self.suspect);
        [self.retry_at(), suspect_at]
            .into_iter()
            .flatten()
            .fold(self.next_ping, Instant::min)
    }

    /// When the latest ping, if it is still unanswered, is followed by another.
    fn retry_at(&self) -> Option<Instant> {
        let (_, sent) = self
            .outstanding
            .iter()
            .flatten()
            .max_by_key(|(_, at)| *at)?;
        let heard = self.last_pong.unwrap_or(self.created);
        let wait = if sent.saturating_duration_since(heard) >= FAST_RETRIES_FOR {
            SLOW_RETRY
        } else {
            RETRY_AFTER.max(self.rtt.map_or(Duration::ZERO, |r| r * 2))
        };
        Some(*sent + wait)
    }

    /// Time passed: a ping is due when its interval is over, or when the last one went
    /// unanswered for [`RETRY_AFTER`].
    pub fn handle_timeout(&mut self, now: Instant) {
        let heard = self.last_pong.unwrap_or(self.created);
        self.usable = now.saturating_duration_since(heard) < ALIVE_FOR;
        self.suspect = self.suspect_at().is_some_and(|t| now >= t);
        if now >= self.next_ping || self.retry_at().is_some_and(|t| now >= t) {
            self.due = Some(now);
            self.next_ping = now + self.interval();
        }
    }

    /// The due ping or register, into `out`.
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> Option<usize> {
        if out.len() >= relay::REGISTER_LEN {
            if let Some((tx, cookie)) = self.challenged.take() {
                return Some(relay::write_register(out, &self.token, tx, &cookie));
            }
        }
        let needs = relay::PING_LEN + self.ticket.as_ref().map_or(0, Vec::len);
        if out.len() < needs {
            return None;
        }
        let at = self.due.take()?;
        self.counter += 1;
        let tx = self.counter.to_be_bytes();
        let slot = (self.counter as usize) % PINGS_REMEMBERED;
        self.outstanding[slot] = Some((tx, at));
        match &self.ticket {
            Some(ticket) => relay::write_ticket_ping(out, &self.token, tx, ticket),
            None => Some(relay::write_ping(out, &self.token, tx)),
        }
    }

    /// A pong from `from`; only the relay's answer to one of our last few pings counts. It
    /// answers the earlier pings too: nothing is outstanding afterwards.
    pub fn handle_pong(&mut self, now: Instant, from: SocketAddr, tx: [u8; 8]) -> bool {
        if from != self.server {
            return false;
        }
        let Some(at) = self
            .outstanding
            .iter()
            .flatten()
            .find(|(sent, _)| *sent == tx)
            .map(|(_, at)| *at)
        else {
            return false;
        };
        self.outstanding = [None; PINGS_REMEMBERED];
        self.last_pong = Some(now);
        self.rtt = Some(now.saturating_duration_since(at));
        self.usable = true;
        self.suspect = false;
        true
    }

    /// The relay does not know our address as ours yet: it asks us to prove the token. Only a
    /// challenge to our ping in flight, from the relay, is answered (so a stranger cannot make
    /// us send registers).
    pub fn handle_challenge(
        &mut self,
        from: SocketAddr,
        tx: [u8; 8],
        cookie: relay::Cookie,
    ) -> bool {
        let ours = self
            .outstanding
            .iter()
            .flatten()
            .any(|(sent, _)| *sent == tx);
        if from != self.server || !ours {
            return false;
        }
        self.challenged = Some((tx, cookie));
        true
    }

    /// Our addresses changed: register the new one with the relay now.
    pub fn handle_network_change(&mut self, now: Instant) {
        self.due = Some(now);
        self.next_ping = now + self.interval();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_proto::relay::{parse, RelayFrame};

    #[test]
    fn pings_on_schedule_and_measures_rtt() {
        let t0 = Instant::now();
        let server: SocketAddr = "203.0.113.1:7446".parse().unwrap();
        let mut c = RelayClient::new(t0, server, [4; 16]);
        let mut out = [0u8; 64];
        let n = c.poll_transmit(&mut out).expect("first ping at once");
        let Ok(RelayFrame::Ping { token, tx }) = parse(&out[..n]) else {
            panic!("not a ping")
        };
        assert_eq!(token, relay::token_id(&[4; 16]));
        assert!(!c.is_alive(t0));
        let other: SocketAddr = "198.51.100.9:7446".parse().unwrap();
        assert!(
            !c.handle_pong(t0, other, tx),
            "only the relay's pong counts"
        );
        assert!(!c.handle_pong(t0, server, [0; 8]), "only our tx counts");
        assert!(c.handle_pong(t0 + Duration::from_millis(20), server, tx));
        assert_eq!(c.rtt(), Some(Duration::from_millis(20)));
        c.handle_timeout(t0 + Duration::from_secs(1));
        assert!(
            c.poll_transmit(&mut out).is_none(),
            "one per interval while the relay answers"
        );
        assert!(c.is_alive(t0 + Duration::from_secs(1)));
        assert!(!c.is_alive(t0 + ALIVE_FOR + Duration::from_secs(1)));
        assert!(c.is_usable());
        assert_eq!(c.poll_timeout(), t0 + PING_INTERVAL);
        c.handle_timeout(t0 + PING_INTERVAL);
        assert!(c.poll_transmit(&mut out).is_some());
        assert!(c.poll_transmit(&mut out).is_none());
        c.handle_network_change(t0 + PING_INTERVAL + Duration::from_secs(1));
        assert!(c.poll_transmit(&mut out).is_some());
    }
}

#[test]
fn a_relay_that_stops_answering_under_traffic_is_suspect_within_two_seconds() {
    use warren_proto::relay::{parse, RelayFrame};
    let t0 = Instant::now();
    let server: SocketAddr = "203.0.113.1:7451".parse().unwrap();
    let mut c = RelayClient::new(t0, server, [5; 16]);
    let answer = |c: &mut RelayClient, at: Instant| {
        let mut out = [0u8; 64];
        let n = c.poll_transmit(&mut out).expect("a ping is due");
        let Ok(RelayFrame::Ping { tx, .. }) = parse(&out[..n]) else {
            panic!("not a ping")
        };
        assert!(c.handle_pong(at + Duration::from_millis(10), server, tx));
    };
    answer(&mut c, t0);
    c.set_active(t0, true);
    // Pinged every second while traffic flows, and answered: never suspect.
    let mut t = t0;
    for _ in 0..5 {
        t = c.poll_timeout();
        assert!(t - t0 <= Duration::from_secs(5));
        c.handle_timeout(t);
        answer(&mut c, t);
        assert!(!c.is_suspect() && c.is_usable());
    }
    assert_eq!(t - t0, 5 * ACTIVE_PING_INTERVAL);
    // It dies right after a pong: the next ping goes unanswered.
    let died = t + Duration::from_millis(10);
    loop {
        let next = c.poll_timeout();
        c.handle_timeout(next);
        while c.poll_transmit(&mut [0u8; 64]).is_some() {}
        if c.is_suspect() {
            assert!(next - died <= Duration::from_secs(2), "{:?}", next - died);
            break;
        }
        assert!(next - died < Duration::from_secs(3), "never suspect");
    }
    assert!(
        c.is_usable(),
        "suspect is not dead: still a relay when it is the only one"
    );
    // Without traffic a relay is pinged at the usual pace.
    let mut idle = RelayClient::new(t0, server, [5; 16]);
    answer(&mut idle, t0);
    assert_eq!(idle.poll_timeout(), t0 + PING_INTERVAL);
}

#[test]
fn a_ticket_rides_in_every_ping_once_set() {
    use warren_proto::relay::{parse, RelayFrame};
    let t0 = Instant::now();
    let server: SocketAddr = "203.0.113.1:7450".parse().unwrap();
    let mut c = RelayClient::new(t0, server, [4; 16]);
    let mut out = [0u8; 256];
    assert!(c.poll_transmit(&mut out).is_some());
    c.set_ticket(t0, Some(b"sealed".to_vec()));
    let n = c
        .poll_transmit(&mut out)
        .expect("a new ticket is shown at once");
    let Ok(RelayFrame::TicketPing { token, ticket, .. }) = parse(&out[..n]) else {
        panic!("not a ticket ping")
    };
    assert_eq!((token, ticket), (relay::token_id(&[4; 16]), &b"sealed"[..]));
    c.handle_timeout(t0 + PING_INTERVAL);
    let n = c.poll_transmit(&mut out).unwrap();
    assert!(matches!(
        parse(&out[..n]),
        Ok(RelayFrame::TicketPing { .. })
    ));
}

/// Runs `c` from `from` to `until` in 10 ms steps; the relay answers each ping after 10 ms
/// unless `down` says it is down at the time the ping arrives. Returns the send times.
#[cfg(test)]
fn drive(
    c: &mut RelayClient,
    from: Instant,
    until: Instant,
    down: impl Fn(Instant) -> bool,
) -> Vec<Instant> {
    use warren_proto::relay::{parse, RelayFrame};
    let server = c.server();
    let mut out = [0u8; 64];
    let mut sent = Vec::new();
    let mut now = from;
    while now < until {
        c.handle_timeout(now);
        if let Some(n) = c.poll_transmit(&mut out) {
            let Ok(RelayFrame::Ping { tx, .. }) = parse(&out[..n]) else {
                panic!("not a ping")
            };
            sent.push(now);
            let at = now + Duration::from_millis(10);
            if !down(at) {
                assert!(c.handle_pong(at, server, tx));
            }
        }
        now += Duration::from_millis(10);
    }
    sent
}

#[test]
fn a_relay_back_from_an_outage_hears_from_us_within_half_a_second() {
    let t0 = Instant::now();
    let s = |ms: u64| t0 + Duration::from_millis(ms);
    let server: SocketAddr = "203.0.113.1:7446".parse().unwrap();
    let mut c = RelayClient::new(t0, server, [4; 16]);
    // Down from 2 s to 12 s (a restart: it knows nobody when it is back).
    let down = |t: Instant| t >= s(2_000) && t < s(12_000);
    let sent = drive(&mut c, t0, s(20_000), down);
    // Every 5 s while it answers; the first ping it misses is the one at 5 s, then one every
    // 500 ms until it is back.
    let during: Vec<_> = sent.iter().filter(|t| down(**t)).collect();
    assert_eq!(during.len(), 14);
    assert_eq!(*during[0], s(5_000));
    let first_after = sent.iter().find(|t| **t >= s(12_000)).unwrap();
    assert!(
        *first_after - s(12_000) <= RETRY_AFTER,
        "the relay heard from us {:?} after it came back",
        *first_after - s(12_000)
    );
    assert!(c.is_alive(s(20_000)));
    // Back to one ping per interval.
    assert_eq!(sent.iter().filter(|t| **t > s(13_000)).count(), 1);
}

#[test]
fn a_late_pong_to_an_earlier_ping_counts_and_a_long_outage_slows_the_retries() {
    use warren_proto::relay::{parse, RelayFrame};
    let t0 = Instant::now();
    let server: SocketAddr = "203.0.113.1:7446".parse().unwrap();
    let mut c = RelayClient::new(t0, server, [4; 16]);
    let mut out = [0u8; 64];
    let mut txs = Vec::new();
    let mut now = t0;
    // A slow relay (900 ms): the retry at 500 ms goes out before the first pong arrives.
    while now < t0 + Duration::from_millis(900) {
        c.handle_timeout(now);
        if let Some(n) = c.poll_transmit(&mut out) {
            let Ok(RelayFrame::Ping { tx, .. }) = parse(&out[..n]) else {
                panic!("not a ping")
            };
            txs.push(tx);
        }
        now += Duration::from_millis(10);
    }
    assert_eq!(txs.len(), 2);
    assert!(c.handle_pong(now, server, txs[0]), "the first ping's pong");
    assert_eq!(c.rtt(), Some(Duration::from_millis(900)));
    assert!(
        !c.handle_pong(now, server, txs[1]),
        "nothing outstanding now"
    );
    // The next ping is due 5 s after the retry (at 5.5 s); its RTT stretches the next retry
    // to 2 × 900 ms.
    let sent = drive(&mut c, now, t0 + Duration::from_millis(7_400), |_| true);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0], t0 + Duration::from_millis(5_500));
    assert_eq!(sent[1] - sent[0], Duration::from_millis(1_800));
    // Silent for more than a minute: a retry every 2 s.
    let from = now + Duration::from_secs(70);
    let sent = drive(&mut c, from, from + Duration::from_secs(10), |_| true);
    assert!((4..=6).contains(&sent.len()), "{}", sent.len());
}

#[test]
fn the_relays_challenge_to_our_ping_is_answered_with_a_proof_no_one_elses() {
    use warren_proto::relay::{parse, proof_holds, RelayFrame};
    let t0 = Instant::now();
    let server: SocketAddr = "203.0.113.1:7446".parse().unwrap();
    let mut c = RelayClient::new(t0, server, [4; 16]);
    let mut out = [0u8; 64];
    let n = c.poll_transmit(&mut out).unwrap();
    let Ok(RelayFrame::Ping { tx, .. }) = parse(&out[..n]) else {
        panic!("a ping")
    };
    let stranger: SocketAddr = "198.51.100.9:7446".parse().unwrap();
    assert!(!c.handle_challenge(stranger, tx, [1; 16]));
    assert!(
        !c.handle_challenge(server, [9; 8], [1; 16]),
        "not our ping's"
    );
    assert!(c.poll_transmit(&mut out).is_none());
    assert!(c.handle_challenge(server, tx, [1; 16]));
    let n = c.poll_transmit(&mut out).expect("the register at once");
    let Ok(RelayFrame::Register {
        tx: rtx,
        cookie,
        proof,
        ..
    }) = parse(&out[..n])
    else {
        panic!("a register: {:?}", parse(&out[..n]))
    };
    assert_eq!((rtx, cookie), (tx, [1; 16]));
    assert!(proof_holds(&[4; 16], tx, &cookie, &proof));
    assert!(
        c.poll_transmit(&mut out).is_none(),
        "one register per challenge"
    );
    // The pong to the register proves the relay alive as a pong to the ping would.
    assert!(c.handle_pong(t0, server, tx));
}

#[test]
fn a_silent_relay_stops_being_used_and_comes_back_with_a_pong() {
    let t0 = Instant::now();
    let server: SocketAddr = "203.0.113.1:7446".parse().unwrap();
    let mut c = RelayClient::new(t0, server, [4; 16]);
    assert!(c.is_usable(), "used at once, before any answer");
    let mut out = [0u8; 64];
    let mut now = t0;
    let mut last_tx = None;
    while now < t0 + ALIVE_FOR + PING_INTERVAL {
        c.handle_timeout(now);
        if let Some(n) = c.poll_transmit(&mut out) {
            if let Ok(warren_proto::relay::RelayFrame::Ping { tx, .. }) =
                warren_proto::relay::parse(&out[..n])
            {
                last_tx = Some(tx);
            }
        }
        now += Duration::from_secs(1);
    }
    assert!(!c.is_usable(), "no pong for {ALIVE_FOR:?}");
    assert!(c.handle_pong(now, server, last_tx.unwrap()));
    assert!(c.is_usable());
}
