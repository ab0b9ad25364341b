//! The relay's state: which token belongs to which online node, which address each node
//! registered, and how many bytes each may still send. One datagram in, at most one out.
//!
//! Rules:
//! - A node's token is live from [`Relay::add_node`] (its control session started) until
//!   [`Relay::remove_node`] or [`Relay::remove_token`] (it ended). Adding a node again (a
//!   reconnect) replaces its token: the old one stops working at once, so a late "session
//!   ended" for the old connection, which presents the old token, removes nothing.
//! - A Ping names a live token by its id. From the node's registered address it is answered
//!   with a Pong; from any other it gets a Challenge, a cookie made of that address, the token
//!   id and the time (under a secret of the relay's, so it costs no state). A Register that
//!   returns the cookie with a proof keyed by the token registers the address it came from as
//!   the node's one address (see `warren_proto::relay`): whoever only sees the node's frames
//!   cannot make one, and replaying them from elsewhere brings a cookie for the wrong
//!   address. The latest Register wins both ways: a roaming node's next one moves it (its old
//!   address is forgotten), and an address another node registered before moves to the node
//!   that registered from it last (a NAT may give a port one node left to another).
//! - A Send carries no token: its sender is the node registered at the address it came from,
//!   its destination the one live node whose key starts with its key id. It is forwarded as a
//!   Deliver (the same payload, no sender: the payload names it) to the destination's
//!   registered address when the two share a network (asked of the caller, who owns the
//!   registry) and the sender is within its byte rate.
//! - Everything else is dropped and counted by reason in [`RelayCounters`].
//!
//! A registration is as strong as a UDP source address can be: a member who can forge source
//! addresses and read what is sent to them can register a victim's address as its own until
//! the victim's next Register. That misroutes only end-to-end encrypted payloads, and lets
//! the victim's packets through only where the forger could relay them anyway.
//!
//! Memory: one entry per node with a live token and at most one registered address per node,
//! so bounded by the online nodes; nothing is allocated per datagram (the caller owns the
//! output buffer). Maps are B-trees: no hasher seeded from the OS RNG in the core, and
//! O(log n) per datagram. Keys sort by their bytes, so the nodes whose keys share a key id
//! are neighbours in the node map: one range lookup finds a Send's destination, and sees
//! whether the id is ambiguous, without a second index to keep in step.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use blake2::digest::consts::U16;
use blake2::digest::Mac;
use blake2::Blake2sMac;
use warren_proto::key::NodeKey;
use warren_proto::relay::{
    self, Cookie, KeyId, RelayFrame, RelayToken, TokenId, CHALLENGE_LEN, DELIVER_HEADER_LEN,
    KEY_ID_LEN, PONG_LEN,
};
use warren_proto::relay_ticket::Ticket;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RelayConfig {
    /// Sustained rate each node may send through the relay, in bytes per second; 0: no
    /// limit per node (the total, if any, still applies).
    pub rate_bytes_per_sec: u64,
    /// Bytes a node may send at once after being quiet (unused when the rate is 0).
    pub burst_bytes: u64,
    /// What all nodes together may send, in bytes per second (a second's worth at once);
    /// `None`: no limit but each node's.
    pub total_bytes_per_sec: Option<u64>,
}

impl Default for RelayConfig {
    /// 8 MiB/s sustained per sending host (~67 Mbit/s) with a 16 MiB burst, no total. Sized
    /// for a relay on a home connection carrying two gamers and one remote desktop at once:
    /// a game sends ~1 Mbit/s, a remote desktop ~25 Mbit/s with bursts well above that when
    /// the screen changes a lot (a streamed game or video: up to ~50 Mbit/s), so one host's
    /// desktop plus its game fits with room for those bursts, while no single host can take
    /// a whole uplink. No total by default: the home's uplink is the real total, and only
    /// the operator knows it (`--relay-total-rate`).
    fn default() -> Self {
        Self {
            rate_bytes_per_sec: 8 << 20,
            burst_bytes: 16 << 20,
            total_bytes_per_sec: None,
        }
    }
}

/// What happened to the datagrams the relay saw, by reason. Read them for logs and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayCounters {
    /// Sends forwarded as Deliver frames, and the bytes of those Deliver frames.
    pub forwarded: u64,
    pub forwarded_bytes: u64,
    /// Pings answered.
    pub pongs: u64,
    /// Pings from an address not (yet) the node's, answered with a challenge.
    pub challenges: u64,
    /// Registers whose cookie is not the relay's for that address (stale, or replayed from
    /// elsewhere) or whose proof is not the token's.
    pub bad_proof: u64,
    /// A node pinged from a new address (first contact or roaming).
    pub address_changes: u64,
    /// Not a relay frame, another version, an unknown type, truncated, or from port 0.
    pub malformed: u64,
    /// Deliver or Pong frames sent to the relay: only the relay sends those.
    pub unexpected: u64,
    /// A Ping's or Register's token is not (or no longer) live.
    pub unknown_token: u64,
    /// A Send came from an address no live node registered (or one a node left).
    pub unregistered_source: u64,
    /// No live node has the Send's key id: offline, or never connected.
    pub unknown_destination: u64,
    /// Several live nodes have the Send's key id (64 bits of x25519 keys: never by chance).
    pub ambiguous_destination: u64,
    /// The destination is online but has not pinged the relay yet.
    pub no_destination_address: u64,
    /// Sender and destination share no network (or are the same node).
    pub no_shared_network: u64,
    /// The sender is over its byte rate.
    pub rate_limited: u64,
    /// All senders together are over the relay's total rate.
    pub total_rate_limited: u64,
    /// The caller's output buffer cannot hold the reply.
    pub too_large: u64,
    /// A standalone relay's TicketPing whose ticket is forged, expired, malformed, for
    /// another token, or older than the node's newest.
    pub bad_ticket: u64,
}

/// A datagram to send: `out[..len]` to `to`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub to: SocketAddr,
    pub len: usize,
}

struct NodeState {
    token: RelayToken,
    addr: Option<SocketAddr>,
    bucket: ByteBucket,
    /// The newest ticket the node showed a standalone relay.
    ticket: Option<Ticket>,
}

/// What a standalone relay knows instead of a registry: the secret it shares with the
/// coordinator, and the wall clock tickets expire by.
struct TicketCheck {
    secret: [u8; 32],
    unix_now: u64,
}

/// A challenge's cookie is good for this long, and the one before it as long again.
const COOKIE_EPOCH: Duration = Duration::from_secs(120);

pub struct Relay {
    config: RelayConfig,
    nodes: BTreeMap<NodeKey, NodeState>,
    /// Invariant: `by_token[id] == k` exactly when `token_id(nodes[k].token) == id`.
    by_token: BTreeMap<TokenId, NodeKey>,
    cookie_secret: [u8; 32],
    /// When the cookie epochs count from (the first datagram).
    started: Option<Instant>,
    /// All senders' bytes, when [`RelayConfig::total_bytes_per_sec`] limits them.
    total: ByteBucket,
    /// Invariant: `by_addr[a] == k` exactly when `nodes[k].addr == Some(a)`.
    by_addr: BTreeMap<SocketAddr, NodeKey>,
    counters: RelayCounters,
    /// `Some` for a standalone relay: nodes come and go by their tickets, and may reach
    /// each other when their tickets share a network.
    tickets: Option<TicketCheck>,
}

impl Relay {
    /// `cookie_secret`: fresh randomness, which makes its challenges unforgeable.
    pub fn new(config: RelayConfig, cookie_secret: [u8; 32]) -> Self {
        Self {
            config,
            nodes: BTreeMap::new(),
            by_token: BTreeMap::new(),
            cookie_secret,
            started: None,
            total: ByteBucket::default(),
            by_addr: BTreeMap::new(),
            counters: RelayCounters::default(),
            tickets: None,
        }
    }

    /// A relay that runs apart from the coordinator: it admits nodes by the tickets sealed
    /// with `secret` in their TicketPings (see `warren_proto::relay_ticket`), not by
    /// [`Relay::add_node`], and asks no caller who shares a network. `unix_now` is the wall
    /// clock in seconds; keep it current with [`Relay::set_unix_time`].
    pub fn standalone(
        config: RelayConfig,
        secret: [u8; 32],
        unix_now: u64,
        cookie_secret: [u8; 32],
    ) -> Self {
        let mut relay = Self::new(config, cookie_secret);
        relay.tickets = Some(TicketCheck { secret, unix_now });
        relay
    }

    /// The wall clock moved on (call it every second or so): nodes whose tickets expired are
    /// forgotten, as a coordinator's relay forgets a node whose session ended.
    pub fn set_unix_time(&mut self, unix_now: u64) {
        let Some(check) = self.tickets.as_mut() else {
            return;
        };
        check.unix_now = unix_now;
        let expired: Vec<NodeKey> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.ticket.as_ref().is_some_and(|t| t.expires <= unix_now))
            .map(|(k, _)| *k)
            .collect();
        for key in expired {
            self.drop_node(&key);
        }
    }

    pub fn counters(&self) -> RelayCounters {
        self.counters
    }

    /// Nodes with a live token.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Where the relay would send `key`'s Deliver frames now, and accepts its Sends from.
    pub fn address_of(&self, key: &NodeKey) -> Option<SocketAddr> {
        self.nodes.get(key).and_then(|n| n.addr)
    }

    /// Gives `key` the live token `token`, replacing any earlier one. The address is
    /// forgotten (the new session's first Ping registers it); the byte bucket is kept, so a
    /// reconnect does not refill it. Tokens are random 128-bit values; should one ever
    /// collide with another node's live token, that node loses it rather than the two
    /// sharing one.
    pub fn add_node(&mut self, key: NodeKey, token: RelayToken) {
        let id = relay::token_id(&token);
        if let Some(&other) = self.by_token.get(&id) {
            if other != key {
                self.drop_node(&other);
            }
        }
        match self.nodes.get_mut(&key) {
            Some(node) => {
                self.by_token.remove(&relay::token_id(&node.token));
                node.token = token;
                if let Some(addr) = node.addr.take() {
                    self.by_addr.remove(&addr);
                }
            }
            None => {
                self.nodes.insert(
                    key,
                    NodeState {
                        token,
                        addr: None,
                        bucket: ByteBucket::default(),
                        ticket: None,
                    },
                );
            }
        }
        self.by_token.insert(id, key);
    }

    /// Forgets `key`, its token and its address; false if it had no token.
    pub fn remove_node(&mut self, key: &NodeKey) -> bool {
        self.drop_node(key)
    }

    /// Forgets the node whose live token is `token`; false (and nothing changes) if the
    /// token is not live, e.g. because a newer session of the node replaced it.
    pub fn remove_token(&mut self, token: &RelayToken) -> bool {
        match self.by_token.get(&relay::token_id(token)) {
            Some(&key) if self.nodes[&key].token == *token => self.drop_node(&key),
            _ => false,
        }
    }

    fn drop_node(&mut self, key: &NodeKey) -> bool {
        let Some(node) = self.nodes.remove(key) else {
            return false;
        };
        self.by_token.remove(&relay::token_id(&node.token));
        if let Some(addr) = node.addr {
            self.by_addr.remove(&addr);
        }
        true
    }

    /// One datagram that arrived at `now` from `from`. Returns the datagram to send in
    /// reply, written into `out[..len]`, or `None` when it is dropped (see the counters).
    /// `shares(a, b)` says whether `a` and `b` are in a common network; it is asked only
    /// for a Send that passed every other check but the rate limit. An `out` as large as
    /// the receive buffer always fits: a reply is shorter than the frame it answers.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        shares: impl FnOnce(&NodeKey, &NodeKey) -> bool,
        out: &mut [u8],
    ) -> Option<Transmit> {
        if from.port() == 0 {
            self.counters.malformed += 1;
            return None;
        }
        self.started.get_or_insert(now);
        let frame = match relay::parse(datagram) {
            Ok(f) => f,
            Err(_) => {
                self.counters.malformed += 1;
                return None;
            }
        };
        match frame {
            RelayFrame::Ping { token, tx } | RelayFrame::TicketPing { token, tx, .. } => {
                if let RelayFrame::TicketPing { ticket, .. } = frame {
                    self.admit(&token, ticket)?;
                }
                let Some(&key) = self.by_token.get(&token) else {
                    self.counters.unknown_token += 1;
                    return None;
                };
                if self.nodes[&key].addr == Some(from) {
                    return self.pong(from, tx, out);
                }
                if out.len() < CHALLENGE_LEN {
                    self.counters.too_large += 1;
                    return None;
                }
                let cookie = self.cookie(now, from, &token, 0);
                self.counters.challenges += 1;
                Some(Transmit {
                    to: from,
                    len: relay::write_challenge(out, tx, &cookie),
                })
            }
            RelayFrame::Register {
                token,
                tx,
                cookie,
                proof,
            } => {
                let Some(&key) = self.by_token.get(&token) else {
                    self.counters.unknown_token += 1;
                    return None;
                };
                let fresh = (0..2).any(|back| self.cookie(now, from, &token, back) == cookie);
                if !fresh || !relay::proof_holds(&self.nodes[&key].token, tx, &cookie, &proof) {
                    self.counters.bad_proof += 1;
                    return None;
                }
                self.register(key, from);
                self.pong(from, tx, out)
            }
            RelayFrame::Send { to, payload } => {
                let Some(&src) = self.by_addr.get(&from) else {
                    self.counters.unregistered_source += 1;
                    return None;
                };
                self.forward(now, src, &to, payload, shares, out)
            }
            RelayFrame::Deliver { .. } | RelayFrame::Pong { .. } | RelayFrame::Challenge { .. } => {
                self.counters.unexpected += 1;
                None
            }
        }
    }

    /// A standalone relay takes the node in (or keeps it) on the strength of its ticket; the
    /// coordinator's relay, which learns tokens from the coordinator, ignores tickets.
    fn admit(&mut self, token: &TokenId, ticket: &[u8]) -> Option<()> {
        let Some(check) = &self.tickets else {
            return Some(());
        };
        let ticket = match Ticket::open(ticket, &check.secret, check.unix_now) {
            Ok(t) if relay::token_id(&t.token) == *token => t,
            _ => {
                self.counters.bad_ticket += 1;
                return None;
            }
        };
        let key = ticket.key;
        let newest = self
            .nodes
            .get(&key)
            .and_then(|n| n.ticket.as_ref())
            .map(|t| t.serial);
        if newest.is_some_and(|serial| serial > ticket.serial) {
            self.counters.bad_ticket += 1;
            return None;
        }
        if self.nodes.get(&key).map(|n| n.token) != Some(ticket.token) {
            self.add_node(key, ticket.token);
        }
        self.nodes.get_mut(&key).expect("just added").ticket = Some(ticket);
        Some(())
    }

    fn pong(&mut self, to: SocketAddr, tx: [u8; 8], out: &mut [u8]) -> Option<Transmit> {
        if out.len() < PONG_LEN {
            self.counters.too_large += 1;
            return None;
        }
        self.counters.pongs += 1;
        Some(Transmit {
            to,
            len: relay::write_pong(out, tx),
        })
    }

    /// The cookie for a Register of `token` from `from`, `back` epochs ago.
    fn cookie(&self, now: Instant, from: SocketAddr, token: &TokenId, back: u64) -> Cookie {
        let started = self.started.unwrap_or(now);
        let epoch = (now.saturating_duration_since(started).as_secs() / COOKIE_EPOCH.as_secs())
            .saturating_sub(back);
        let mut m =
            <Blake2sMac<U16> as Mac>::new_from_slice(&self.cookie_secret).expect("32-byte key");
        m.update(b"warren relay cookie v2\0");
        m.update(&epoch.to_be_bytes());
        match from.ip() {
            std::net::IpAddr::V4(ip) => m.update(&ip.to_ipv6_mapped().octets()),
            std::net::IpAddr::V6(ip) => m.update(&ip.octets()),
        }
        m.update(&from.port().to_be_bytes());
        m.update(token);
        m.finalize().into_bytes().into()
    }

    /// Registers `from` as the address of `key`, a live node.
    fn register(&mut self, key: NodeKey, from: SocketAddr) {
        let node = self.nodes.get_mut(&key).expect("by_token and nodes agree");
        if node.addr != Some(from) {
            if let Some(old) = node.addr.replace(from) {
                self.by_addr.remove(&old);
            }
            // The address was another node's: it is this one's now.
            if let Some(previous) = self.by_addr.insert(from, key) {
                self.nodes
                    .get_mut(&previous)
                    .expect("by_addr and nodes agree")
                    .addr = None;
            }
            self.counters.address_changes += 1;
        }
    }

    /// The live node whose key starts with `id`, with its address; `Err` when there are
    /// several.
    fn node_by_id(&self, id: &KeyId) -> Result<Option<(NodeKey, Option<SocketAddr>)>, ()> {
        let (mut lo, mut hi) = ([0u8; 32], [0xFF; 32]);
        lo[..KEY_ID_LEN].copy_from_slice(id);
        hi[..KEY_ID_LEN].copy_from_slice(id);
        let mut found = self.nodes.range(NodeKey(lo)..=NodeKey(hi));
        match (found.next(), found.next()) {
            (Some((&key, node)), None) => Ok(Some((key, node.addr))),
            (None, _) => Ok(None),
            (Some(_), Some(_)) => Err(()),
        }
    }

    fn forward(
        &mut self,
        now: Instant,
        src: NodeKey,
        dst: &KeyId,
        payload: &[u8],
        shares: impl FnOnce(&NodeKey, &NodeKey) -> bool,
        out: &mut [u8],
    ) -> Option<Transmit> {
        let (dst, to) = match self.node_by_id(dst) {
            Ok(Some(found)) => found,
            Ok(None) => {
                self.counters.unknown_destination += 1;
                return None;
            }
            Err(()) => {
                self.counters.ambiguous_destination += 1;
                return None;
            }
        };
        let Some(to) = to else {
            self.counters.no_destination_address += 1;
            return None;
        };
        // Checked here rather than left to `shares`, so a caller's answer for (a, a) cannot
        // turn the relay into a reflector of a node's traffic back at itself.
        let share = match &self.tickets {
            Some(_) => {
                let ticket = |k: &NodeKey| self.nodes.get(k).and_then(|n| n.ticket.as_ref());
                matches!((ticket(&src), ticket(&dst)), (Some(a), Some(b)) if a.shares_network(b))
            }
            None => src != dst && shares(&src, &dst),
        };
        if src == dst || !share {
            self.counters.no_shared_network += 1;
            return None;
        }
        let len = DELIVER_HEADER_LEN + payload.len();
        if out.len() < len {
            self.counters.too_large += 1;
            return None;
        }
        let bucket = &mut self.nodes.get_mut(&src).expect("sender is live").bucket;
        if self.config.rate_bytes_per_sec > 0 && !bucket.take(now, len as u64, &self.config) {
            self.counters.rate_limited += 1;
            return None;
        }
        if let Some(total) = self.config.total_bytes_per_sec {
            let all = RelayConfig {
                rate_bytes_per_sec: total,
                burst_bytes: total,
                total_bytes_per_sec: None,
            };
            if !self.total.take(now, len as u64, &all) {
                self.counters.total_rate_limited += 1;
                return None;
            }
        }
        relay::write_deliver_header(out);
        out[DELIVER_HEADER_LEN..len].copy_from_slice(payload);
        self.counters.forwarded += 1;
        self.counters.forwarded_bytes += len as u64;
        Some(Transmit { to, len })
    }
}

/// A token bucket on bytes in its GCRA form, like [`crate::ratelimit`]: one "theoretical
/// arrival time" that each sent byte pushes `1 / rate` seconds further; a send is allowed
/// while that time stays within `burst / rate` of now. Exact at any packet rate (no
/// fractional tokens lost to rounding between closely spaced packets), and a refused send
/// costs nothing.
#[derive(Clone, Copy, Debug, Default)]
struct ByteBucket {
    /// `None`: full (never used since the node was added).
    tat: Option<Instant>,
}

impl ByteBucket {
    fn take(&mut self, now: Instant, bytes: u64, config: &RelayConfig) -> bool {
        // A zero rate (which callers treat as "no limit" and never pass) would never refill,
        // and a burst below one datagram would block that datagram forever: raise both to
        // workable minimums.
        let rate = u128::from(config.rate_bytes_per_sec.max(1));
        let burst = u128::from(config.burst_bytes.max(u64::from(u16::MAX)));
        let nanos = |bytes: u128| Duration::from_nanos((bytes * 1_000_000_000 / rate) as u64);
        let tat = self.tat.map_or(now, |t| t.max(now));
        let next = tat + nanos(u128::from(bytes));
        if next.duration_since(now) > nanos(burst) {
            return false;
        }
        self.tat = Some(next);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::key;
    use warren_proto::relay::{write_ping, write_send_header, PING_LEN, SEND_HEADER_LEN};

    const A: u32 = 1;
    const B: u32 = 2;
    const C: u32 = 3;
    const BUF: usize = 2048;

    fn addr(last: u8, port: u16) -> SocketAddr {
        SocketAddr::from(([203, 0, 113, last], port))
    }

    fn token(i: u8) -> RelayToken {
        [i; 16]
    }

    fn ping(token: &RelayToken, tx: u8) -> Vec<u8> {
        let mut b = vec![0; PING_LEN];
        write_ping(&mut b, token, [tx; 8]);
        b
    }

    fn send_to_key(to: &NodeKey, payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0; SEND_HEADER_LEN + payload.len()];
        write_send_header(&mut b, to);
        b[SEND_HEADER_LEN..].copy_from_slice(payload);
        b
    }

    fn send(to: u32, payload: &[u8]) -> Vec<u8> {
        send_to_key(&key(to), payload)
    }

    /// A key other than B's with B's key id.
    fn b_twin() -> NodeKey {
        let mut k = key(B);
        k.0[31] = 1;
        assert_eq!(relay::key_id(&k), relay::key_id(&key(B)));
        k
    }

    fn a_and_b_share(a: &NodeKey, b: &NodeKey) -> bool {
        let ab = [key(A), key(B)];
        ab.contains(a) && ab.contains(b)
    }

    /// A relay with nodes A, B and C online (tokens 1, 2, 3) where A and B share a network
    /// and C shares none; A and B have pinged from their addresses, C has not.
    struct Harness {
        relay: Relay,
        now: Instant,
        out: [u8; BUF],
        shares: fn(&NodeKey, &NodeKey) -> bool,
    }

    impl Harness {
        fn new(config: RelayConfig) -> Self {
            let mut h = Self {
                relay: Relay::new(config, [0x5e; 32]),
                now: Instant::now(),
                out: [0; BUF],
                shares: a_and_b_share,
            };
            for i in [A, B, C] {
                h.relay.add_node(key(i), token(i as u8));
            }
            assert!(h.ping_in(addr(1, 1000), &token(1), 0).is_some());
            assert!(h.ping_in(addr(2, 2000), &token(2), 0).is_some());
            h
        }

        /// A node's ping from `from`, and the Register its challenge asks for: the node's
        /// address is then `from`. The last reply (a Pong), if any.
        fn ping_in(&mut self, from: SocketAddr, token: &RelayToken, tx: u8) -> Option<Vec<u8>> {
            let reply = self.input(from, &ping(token, tx))?.to_vec();
            let Ok(RelayFrame::Challenge { tx, cookie }) = relay::parse(&reply) else {
                return Some(reply);
            };
            let mut b = vec![0; relay::REGISTER_LEN];
            relay::write_register(&mut b, token, tx, &cookie);
            self.input(from, &b).map(|d| d.to_vec())
        }

        fn input(&mut self, from: SocketAddr, datagram: &[u8]) -> Option<&[u8]> {
            self.input_to(from, datagram).map(|(_, d)| d)
        }

        fn input_to(&mut self, from: SocketAddr, datagram: &[u8]) -> Option<(SocketAddr, &[u8])> {
            let t =
                self.relay
                    .handle_datagram(self.now, from, datagram, self.shares, &mut self.out)?;
            check_invariants(&self.relay);
            Some((t.to, &self.out[..t.len]))
        }
    }

    fn check_invariants(r: &Relay) {
        assert_eq!(r.nodes.len(), r.by_token.len());
        for (id, key) in &r.by_token {
            assert_eq!(&relay::token_id(&r.nodes[key].token), id);
        }
        assert_eq!(
            r.by_addr.len(),
            r.nodes.values().filter(|n| n.addr.is_some()).count()
        );
        for (addr, key) in &r.by_addr {
            assert_eq!(r.nodes[key].addr, Some(*addr));
        }
    }

    fn payload_of(d: &[u8]) -> &[u8] {
        match relay::parse(d) {
            Ok(RelayFrame::Deliver { payload }) => payload,
            other => panic!("expected a Deliver, got {other:?}"),
        }
    }

    fn register_frame(token: &RelayToken, reply: &[u8]) -> Vec<u8> {
        let Ok(RelayFrame::Challenge { tx, cookie }) = relay::parse(reply) else {
            panic!("a challenge: {:?}", relay::parse(reply));
        };
        let mut b = vec![0; relay::REGISTER_LEN];
        relay::write_register(&mut b, token, tx, &cookie);
        b
    }

    #[test]
    fn a_ping_from_a_new_address_is_challenged_and_the_register_moves_it() {
        let mut h = Harness::new(RelayConfig::default());
        assert_eq!(h.relay.address_of(&key(C)), None);
        let (to, reply) = h.input_to(addr(9, 9000), &ping(&token(3), 7)).unwrap();
        assert_eq!(to, addr(9, 9000));
        assert!(reply.len() <= PING_LEN, "no amplification");
        let register = register_frame(&token(3), reply);
        assert_eq!(
            h.relay.address_of(&key(C)),
            None,
            "a ping alone moves nothing"
        );
        let (to, pong) = h.input_to(addr(9, 9000), &register).unwrap();
        assert_eq!(to, addr(9, 9000));
        assert_eq!(relay::parse(pong), Ok(RelayFrame::Pong { tx: [7; 8] }));
        assert_eq!(h.relay.address_of(&key(C)), Some(addr(9, 9000)));
        assert_eq!(h.relay.by_addr.get(&addr(9, 9000)), Some(&key(C)));
        let c = h.relay.counters();
        assert_eq!((c.pongs, c.address_changes, c.challenges), (3, 3, 3));
        // From its address a ping is a keepalive: a pong, no challenge, no change.
        let pong = h.input(addr(9, 9000), &ping(&token(3), 8)).unwrap();
        assert_eq!(relay::parse(pong), Ok(RelayFrame::Pong { tx: [8; 8] }));
        let c = h.relay.counters();
        assert_eq!((c.address_changes, c.challenges), (3, 3));
        assert_eq!(h.relay.by_addr.len(), 3);
    }

    #[test]
    fn what_an_observer_saw_cannot_take_a_nodes_address() {
        let mut h = Harness::new(RelayConfig::default());
        // B moves to a new port; someone on the path records its ping and register.
        let moved = addr(2, 2222);
        let ping_b = ping(&token(2), 5);
        let reply = h.input(moved, &ping_b).unwrap().to_vec();
        let register = register_frame(&token(2), &reply);
        assert!(h.input(moved, &register).is_some());
        assert_eq!(h.relay.address_of(&key(B)), Some(moved));
        // Replayed from the observer's address: a challenge for that address, and the
        // recorded register does not answer it.
        let observer = addr(66, 6666);
        let challenge = h.input(observer, &ping_b).unwrap().to_vec();
        assert!(matches!(
            relay::parse(&challenge),
            Ok(RelayFrame::Challenge { .. })
        ));
        assert!(h.input(observer, &register).is_none());
        // Nor does a register for the observer's own cookie without the token.
        let forged = register_frame(&token(99), &challenge);
        let mut with_b_id = forged.clone();
        with_b_id[6..14].copy_from_slice(&relay::token_id(&token(2)));
        assert!(h.input(observer, &with_b_id).is_none());
        assert_eq!(h.relay.counters().bad_proof, 2);
        assert_eq!(h.relay.address_of(&key(B)), Some(moved));
        assert!(
            h.input(observer, &send(A, b"x")).is_none(),
            "not registered"
        );
        // A cookie outlives its epoch by one more, no longer.
        h.now += COOKIE_EPOCH * 2;
        let reply = h.input(addr(2, 3333), &ping_b).unwrap().to_vec();
        let late = register_frame(&token(2), &reply);
        h.now += COOKIE_EPOCH * 2;
        assert!(h.input(addr(2, 3333), &late).is_none(), "a stale cookie");
        assert_eq!(h.relay.address_of(&key(B)), Some(moved));
    }

    #[test]
    fn forwards_between_nodes_that_share_a_network() {
        let mut h = Harness::new(RelayConfig::default());
        let (to, d) = h
            .input_to(addr(1, 1000), &send(B, b"wireguard bytes"))
            .unwrap();
        assert_eq!(to, addr(2, 2000));
        assert_eq!(d.len(), DELIVER_HEADER_LEN + 15);
        assert_eq!(payload_of(d), b"wireguard bytes");
        // And back.
        let (to, d) = h.input_to(addr(2, 2000), &send(A, b"reply")).unwrap();
        assert_eq!(to, addr(1, 1000));
        assert_eq!(payload_of(d), b"reply");
        let c = h.relay.counters();
        assert_eq!(c.forwarded, 2);
        assert_eq!(c.forwarded_bytes, (2 * DELIVER_HEADER_LEN + 20) as u64);
    }

    #[test]
    fn a_send_from_an_unregistered_address_is_dropped() {
        let mut h = Harness::new(RelayConfig::default());
        // A stranger, A's IP from another port, and C (online, but it has not pinged).
        for from in [addr(7, 7), addr(1, 1001), addr(3, 3000)] {
            assert!(h.input(from, &send(B, b"x")).is_none());
        }
        let c = h.relay.counters();
        assert_eq!((c.unregistered_source, c.forwarded), (3, 0));
        // A Send teaches no address: only a Ping registers one.
        assert_eq!(h.relay.address_of(&key(C)), None);
        assert_eq!(h.relay.by_addr.len(), 2);
    }

    #[test]
    fn refuses_without_a_shared_network() {
        let mut h = Harness::new(RelayConfig::default());
        h.ping_in(addr(3, 3000), &token(3), 0).unwrap();
        assert!(h.input(addr(1, 1000), &send(C, b"x")).is_none());
        assert!(h.input(addr(3, 3000), &send(A, b"x")).is_none());
        // Not even to itself, whatever the caller says.
        h.shares = |_, _| true;
        assert!(h.input(addr(1, 1000), &send(A, b"x")).is_none());
        let c = h.relay.counters();
        assert_eq!((c.no_shared_network, c.forwarded), (3, 0));
    }

    #[test]
    fn shares_is_asked_only_for_otherwise_deliverable_sends() {
        let mut h = Harness::new(RelayConfig::default());
        h.relay.add_node(b_twin(), token(4));
        let mut asked = 0;
        for (from, d) in [
            (addr(7, 7), send(B, b"x")),         // unregistered source
            (addr(1, 1000), send(99, b"x")),     // unknown destination
            (addr(1, 1000), send(B, b"x")),      // B's key id is ambiguous
            (addr(1, 1000), send(C, b"x")),      // C has no address yet
            (addr(1, 1000), ping(&token(1), 0)), // not a Send
            (addr(1, 1000), ping(&token(9), 0)), // unknown token
        ] {
            h.relay.handle_datagram(
                h.now,
                from,
                &d,
                |_, _| {
                    asked += 1;
                    true
                },
                &mut h.out,
            );
        }
        assert_eq!(asked, 0);
        let c = h.relay.counters();
        assert_eq!(
            (
                c.unregistered_source,
                c.unknown_destination,
                c.ambiguous_destination,
                c.no_destination_address,
                c.unknown_token,
            ),
            (1, 1, 1, 1, 1)
        );
    }

    #[test]
    fn unknown_tokens_and_offline_nodes_are_dropped() {
        let mut h = Harness::new(RelayConfig::default());
        assert!(h.ping_in(addr(7, 7), &token(42), 0).is_none());
        assert_eq!(h.relay.counters().unknown_token, 1);
        assert_eq!(h.relay.address_of(&key(A)), Some(addr(1, 1000)));
        // B's session ends: A can no longer reach it, B's address is no longer anyone's,
        // and B's token is dead.
        assert!(h.relay.remove_node(&key(B)));
        assert!(!h.relay.remove_node(&key(B)));
        check_invariants(&h.relay);
        assert!(h.input(addr(1, 1000), &send(B, b"x")).is_none());
        assert!(h.input(addr(2, 2000), &send(A, b"x")).is_none());
        assert!(h.ping_in(addr(2, 2000), &token(2), 0).is_none());
        let c = h.relay.counters();
        assert_eq!(
            (
                c.unknown_destination,
                c.unregistered_source,
                c.unknown_token
            ),
            (1, 1, 2)
        );
        assert_eq!(h.relay.len(), 2);
        assert_eq!(h.relay.by_addr.len(), 1);
    }

    #[test]
    fn a_reconnect_kills_the_old_token_and_the_old_sessions_end_removes_nothing() {
        let mut h = Harness::new(RelayConfig::default());
        h.relay.add_node(key(B), token(20));
        check_invariants(&h.relay);
        assert_eq!(h.relay.len(), 3);
        // The old token is dead, and the address waits for the new session's first Ping:
        // B can neither be reached nor send until then.
        assert!(h.ping_in(addr(2, 2000), &token(2), 0).is_none());
        assert_eq!(h.relay.address_of(&key(B)), None);
        assert!(h.input(addr(1, 1000), &send(B, b"x")).is_none());
        assert!(h.input(addr(2, 2000), &send(A, b"x")).is_none());
        let c = h.relay.counters();
        assert_eq!((c.no_destination_address, c.unregistered_source), (1, 1));
        h.ping_in(addr(2, 2001), &token(20), 0).unwrap();
        // The old connection ends late: its token is no longer B's, so B stays.
        assert!(!h.relay.remove_token(&token(2)));
        let (to, _) = h.input_to(addr(1, 1000), &send(B, b"x")).unwrap();
        assert_eq!(to, addr(2, 2001));
        assert!(h.input(addr(2, 2001), &send(A, b"x")).is_some());
        // The new session's end removes B and its address.
        assert!(h.relay.remove_token(&token(20)));
        check_invariants(&h.relay);
        assert!(h.input(addr(1, 1000), &send(B, b"x")).is_none());
        assert!(h.input(addr(2, 2001), &send(A, b"x")).is_none());
        assert_eq!(h.relay.len(), 2);
        assert_eq!(h.relay.by_token.len(), 2);
        assert_eq!(h.relay.by_addr.len(), 1);
    }

    #[test]
    fn a_colliding_token_moves_rather_than_being_shared() {
        let mut h = Harness::new(RelayConfig::default());
        h.relay.add_node(key(C), token(1));
        check_invariants(&h.relay);
        assert_eq!(h.relay.len(), 2);
        assert_eq!(h.relay.by_token.len(), 2);
        // A went with its address.
        assert!(h.input(addr(1, 1000), &send(B, b"x")).is_none());
        assert!(!h.relay.remove_node(&key(A)));
        assert!(h.relay.remove_token(&token(1)));
        assert_eq!(h.relay.len(), 1);
        check_invariants(&h.relay);
    }

    #[test]
    fn a_roaming_node_is_followed_by_its_next_ping() {
        let mut h = Harness::new(RelayConfig::default());
        // B moves: its Ping from the new address replaces the old one.
        h.ping_in(addr(2, 5555), &token(2), 0).unwrap();
        assert_eq!(h.relay.address_of(&key(B)), Some(addr(2, 5555)));
        assert_eq!(h.relay.by_addr.len(), 2);
        let (to, _) = h.input_to(addr(1, 1000), &send(B, b"x")).unwrap();
        assert_eq!(to, addr(2, 5555));
        assert!(h.input(addr(2, 5555), &send(A, b"x")).is_some());
        // The old address is nobody's any more.
        assert!(h.input(addr(2, 2000), &send(A, b"x")).is_none());
        assert_eq!(h.relay.counters().unregistered_source, 1);
        // A Send from yet another address does not move it: only a Ping does.
        assert!(h.input(addr(2, 6666), &send(A, b"x")).is_none());
        assert_eq!(h.relay.address_of(&key(B)), Some(addr(2, 5555)));
        // Nor does a Ping with a dead token.
        assert!(h.ping_in(addr(2, 7777), &token(99), 0).is_none());
        assert_eq!(h.relay.address_of(&key(B)), Some(addr(2, 5555)));
        assert_eq!(h.relay.counters().address_changes, 3);
    }

    #[test]
    fn an_address_belongs_to_the_node_that_pinged_from_it_last() {
        let mut h = Harness::new(RelayConfig::default());
        // C pings from the address B registered (say B left it and a NAT reused it).
        h.ping_in(addr(2, 2000), &token(3), 0).unwrap();
        assert_eq!(h.relay.address_of(&key(C)), Some(addr(2, 2000)));
        assert_eq!(h.relay.address_of(&key(B)), None);
        // Sends from there are C's now (and C shares nothing with A), and B is unreachable
        // until it pings again.
        assert!(h.input(addr(2, 2000), &send(A, b"x")).is_none());
        assert!(h.input(addr(1, 1000), &send(B, b"x")).is_none());
        let c = h.relay.counters();
        assert_eq!((c.no_shared_network, c.no_destination_address), (1, 1));
        h.ping_in(addr(2, 2001), &token(2), 0).unwrap();
        let (to, _) = h.input_to(addr(1, 1000), &send(B, b"x")).unwrap();
        assert_eq!(to, addr(2, 2001));
        assert_eq!(h.relay.by_addr.len(), 3);
    }

    #[test]
    fn a_key_id_shared_by_two_live_nodes_is_not_forwarded_to() {
        let mut h = Harness::new(RelayConfig::default());
        h.shares = |a, b| a != b;
        let twin = b_twin();
        h.relay.add_node(twin, token(4));
        h.ping_in(addr(4, 4000), &token(4), 0).unwrap();
        assert!(h.input(addr(1, 1000), &send(B, b"x")).is_none());
        assert_eq!(h.relay.counters().ambiguous_destination, 1);
        // Both can still send: a sender is known by its address, not its id.
        assert!(h.input(addr(4, 4000), &send(A, b"x")).is_some());
        assert!(h.input(addr(2, 2000), &send(A, b"x")).is_some());
        // Once one of them is gone, the id is the other's again.
        assert!(h.relay.remove_node(&key(B)));
        let (to, _) = h.input_to(addr(1, 1000), &send(B, b"x")).unwrap();
        assert_eq!(to, addr(4, 4000));
        // Ids are prefixes: the neighbours on either side of an id do not match it.
        let mut below = key(B);
        below.0[7] = 0xFF;
        below.0[6] = 1;
        assert!(h.input(addr(1, 1000), &send_to_key(&below, b"x")).is_none());
        assert_eq!(h.relay.counters().unknown_destination, 1);
    }

    #[test]
    fn rate_limit_kicks_in_and_refills_with_time() {
        let config = RelayConfig {
            rate_bytes_per_sec: 100_000,
            burst_bytes: 200_000,
            total_bytes_per_sec: None,
        };
        let mut h = Harness::new(config);
        let payload = [0u8; 1000 - DELIVER_HEADER_LEN];
        let frame = send(B, &payload);
        // 200 frames of 1000 bytes: the burst, then nothing.
        for i in 0..200 {
            assert!(h.input(addr(1, 1000), &frame).is_some(), "frame {i}");
        }
        assert!(h.input(addr(1, 1000), &frame).is_none());
        assert_eq!(h.relay.counters().rate_limited, 1);
        // Another sender has its own bucket.
        assert!(h.input(addr(2, 2000), &send(A, &payload)).is_some());
        // 10 ms at 100 kB/s is one frame, and only one.
        h.now += Duration::from_millis(10);
        assert!(h.input(addr(1, 1000), &frame).is_some());
        assert!(h.input(addr(1, 1000), &frame).is_none());
        // A steady 100 kB/s is never refused.
        for _ in 0..500 {
            h.now += Duration::from_millis(10);
            assert!(h.input(addr(1, 1000), &frame).is_some());
        }
        // Quiet time refills the whole burst, and no more.
        h.now += Duration::from_secs(5);
        for _ in 0..200 {
            assert!(h.input(addr(1, 1000), &frame).is_some());
        }
        assert!(h.input(addr(1, 1000), &frame).is_none());
        // Neither a reconnect nor a move refills it.
        h.relay.add_node(key(A), token(11));
        h.ping_in(addr(1, 1001), &token(11), 0).unwrap();
        assert!(h.input(addr(1, 1001), &frame).is_none());
        // Pings are never rate limited: the node stays reachable while it is throttled.
        assert!(h.ping_in(addr(1, 1001), &token(11), 1).is_some());
        assert_eq!(h.relay.counters().rate_limited, 4);
    }

    #[test]
    fn a_bucket_smaller_than_a_datagram_still_passes_it() {
        let mut h = Harness::new(RelayConfig {
            rate_bytes_per_sec: 1,
            burst_bytes: 0,
            total_bytes_per_sec: None,
        });
        assert!(h.input(addr(1, 1000), &send(B, &[1; 1400])).is_some());
    }

    #[test]
    fn a_zero_rate_is_no_limit_per_node_but_the_total_still_holds() {
        let mut h = Harness::new(RelayConfig {
            rate_bytes_per_sec: 0,
            burst_bytes: 0,
            total_bytes_per_sec: None,
        });
        // 100 MB in the same instant: far past any bucket a rate of 0 could be rounded to.
        let frame = send(B, &[1; 1000]);
        for i in 0..100_000 {
            assert!(h.input(addr(1, 1000), &frame).is_some(), "frame {i}");
        }
        assert_eq!(h.relay.counters().rate_limited, 0);
        let mut h = Harness::new(RelayConfig {
            rate_bytes_per_sec: 0,
            burst_bytes: 0,
            total_bytes_per_sec: Some(100_000),
        });
        let passed = (0..200)
            .filter(|_| h.input(addr(1, 1000), &frame).is_some())
            .count();
        assert!((90..=100).contains(&passed), "{passed} frames of ~1 kB");
        assert_eq!(h.relay.counters().total_rate_limited, 200 - passed as u64);
    }

    #[test]
    fn a_total_rate_limits_all_senders_together() {
        let mut h = Harness::new(RelayConfig {
            total_bytes_per_sec: Some(100_000),
            ..RelayConfig::default()
        });
        let payload = [0u8; 1000 - DELIVER_HEADER_LEN];
        // A second's worth at once, shared by A and B however they take turns.
        let passed = (0..200)
            .filter(|i| {
                let (from, to) = if i % 2 == 0 {
                    (addr(1, 1000), B)
                } else {
                    (addr(2, 2000), A)
                };
                h.input(from, &send(to, &payload)).is_some()
            })
            .count();
        assert_eq!(passed, 100);
        assert_eq!(h.relay.counters().total_rate_limited, 100);
        assert_eq!(
            h.relay.counters().rate_limited,
            0,
            "each is far below its own"
        );
        h.now += Duration::from_millis(10);
        assert!(h.input(addr(2, 2000), &send(A, &payload)).is_some());
        assert!(h.input(addr(1, 1000), &send(B, &payload)).is_none());
    }

    #[test]
    fn frames_only_the_relay_sends_are_dropped() {
        let mut h = Harness::new(RelayConfig::default());
        let mut d = [0u8; DELIVER_HEADER_LEN + 1];
        relay::write_deliver_header(&mut d);
        assert!(h.input(addr(1, 1000), &d).is_none());
        let mut p = [0u8; PONG_LEN];
        relay::write_pong(&mut p, [0; 8]);
        assert!(h.input(addr(1, 1000), &p).is_none());
        assert_eq!(h.relay.counters().unexpected, 2);
    }

    #[test]
    fn a_small_output_buffer_drops_instead_of_panicking() {
        let mut h = Harness::new(RelayConfig::default());
        let mut small = [0u8; PONG_LEN - 1];
        let payload = [0u8; PONG_LEN - DELIVER_HEADER_LEN];
        let t = h.relay.handle_datagram(
            h.now,
            addr(1, 1000),
            &send(B, &payload),
            a_and_b_share,
            &mut small,
        );
        assert!(t.is_none());
        let t = h.relay.handle_datagram(
            h.now,
            addr(1, 1000),
            &ping(&token(1), 0),
            a_and_b_share,
            &mut small,
        );
        assert!(t.is_none());
        assert_eq!(h.relay.counters().too_large, 2);
    }

    #[test]
    fn malformed_input_never_panics() {
        let mut h = Harness::new(RelayConfig::default());
        let good = [
            (addr(1, 1000), send(B, b"payload")),
            (addr(1, 1000), ping(&token(1), 3)),
            (addr(2, 2000), send(A, &[0xAB; 300])),
        ];
        // Every truncation of a good frame: forwarded, answered or counted, never a panic.
        for (from, frame) in &good {
            for len in 0..=frame.len() {
                h.input(*from, &frame[..len]);
            }
        }
        // A Send up to its bare header, a Ping short of its last byte.
        let c = h.relay.counters();
        assert_eq!(
            c.malformed,
            2 * (SEND_HEADER_LEN as u64 + 1) + PING_LEN as u64
        );
        assert_eq!(c.forwarded, 7 + 300);
        // Random bytes, bare and behind a valid prefix, with a live token or key id.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut d = [0u8; 400];
        for i in 0..50_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 400) as usize;
            for (k, b) in d[..len].iter_mut().enumerate() {
                *b = (x >> (k % 57)) as u8 ^ k as u8;
            }
            if i % 2 == 0 && len >= 6 {
                d[..4].copy_from_slice(b"WRNr");
                d[4] = relay::RELAY_VERSION;
                d[5] = (x >> 60) as u8 % 8;
                if len >= 14 && i % 4 == 0 {
                    d[6..14].copy_from_slice(&relay::token_id(&token((i % 3) as u8 + 1)));
                } else if len >= 14 && i % 4 == 2 {
                    d[6..14].copy_from_slice(&relay::key_id(&key(i % 3 + 1)));
                }
            }
            // Registers never pass by chance: half the noise comes from A's and B's addresses.
            let from = match x % 4 {
                0 => addr(1, 1000),
                1 => addr(2, 2000),
                _ => addr((x % 3) as u8 + 1, 1 + (x % 5) as u16),
            };
            if let Some(t) =
                h.relay
                    .handle_datagram(h.now, from, &d[..len], |_, _| true, &mut h.out)
            {
                assert!(t.len <= len, "a reply never exceeds its request");
            }
        }
        let c = h.relay.counters();
        // The fuzzing reached every path, not only the parser's errors.
        assert!(
            c.forwarded > 307 + 100
                && c.pongs > 100
                && c.challenges > 100
                && c.bad_proof > 100
                && c.unregistered_source > 1000,
            "{c:?}"
        );
        check_invariants(&h.relay);
        // A source port of 0 cannot be answered.
        assert!(h.ping_in(addr(1, 0), &token(1), 0).is_none());
        check_invariants(&h.relay);
    }
}

#[cfg(test)]
#[path = "relay_standalone_tests.rs"]
mod standalone_tests;
