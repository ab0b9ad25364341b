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
mod tests;

#[cfg(test)]
mod standalone_tests;
