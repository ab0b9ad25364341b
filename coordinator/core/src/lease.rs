//! Overlay IPv4 address leases, DHCP style, from 100.64.0.0/10 ([`OVERLAY_V4`]).
//!
//! - A node's first lease is its preferred address, [`derive_v4`] of its key (the address it
//!   would have in manual mode), when that is free; otherwise the pool is probed upwards from
//!   there (wrapping around), and the first free address is taken. The outcome depends only on
//!   the keys and the order of requests, never on a clock or an RNG.
//! - Every [`LeasePool::acquire`] by a node that holds a lease renews it and keeps its address:
//!   the shell calls it (through `Registry::register_node`) on every connect and regularly while
//!   the node stays connected.
//! - A lease unrenewed for [`LEASE_TTL`] is *expired* but still held: its node gets the same
//!   address back when it returns, unless another node needed it in the meantime. Another node
//!   takes an expired lease only (a) when it is that node's preferred address, or (b) when no
//!   address is free at all: then the lease that expired first is taken.
//! - A node in no network has a short lease ([`NO_NETWORK_LEASE_TTL`]): any key can register
//!   for free, and such keys must not hold addresses for a month. The registry says which
//!   nodes are in a network ([`LeasePool::set_in_network`]).
//! - Finding an address costs O(log n), never a walk over the pool: the free addresses are
//!   kept as ranges, the leases by expiry time.
//! - A node in networks of several coordinators has one address with all of them, so it may
//!   *claim* an address on connect ([`LeasePool::claim`]): it gets the claimed address unless
//!   another node holds a live lease of it (an expired one is taken over, as for the preferred
//!   address). The claim must be a host address of [`OVERLAY_V4`], but may lie outside the
//!   pool's range, since another coordinator chose it. A node that holds another address
//!   *moves*: its old address is released at once. A refused claim changes nothing, and the
//!   node is leased an address as without a claim ([`LeasePool::acquire_claiming`]); the
//!   differing address tells it to move everywhere.
//! - Leases are part of the persisted state, so a node keeps its address across restarts of the
//!   coordinator and of the node.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use warren_proto::key::NodeKey;
use warren_proto::overlay::{derive_v4, OVERLAY_V4};

/// How long a lease stays reserved for its node without renewal: 30 days, in seconds.
pub const LEASE_TTL: u64 = 30 * 24 * 60 * 60;

/// The same for a node in no network: 6 hours (connected nodes renew every hour).
pub const NO_NETWORK_LEASE_TTL: u64 = 6 * 60 * 60;

/// A node's address and when it was last renewed (unix seconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease {
    pub addr: Ipv4Addr,
    pub renewed_at: u64,
}

/// What [`LeasePool::acquire`] or [`LeasePool::claim`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseEvent {
    /// The node kept its address; only `renewed_at` moved.
    Renewed(Lease),
    /// The node, which had no address, got one. `taken_from` is the node whose expired lease
    /// it was, which no longer has an address.
    Granted {
        lease: Lease,
        taken_from: Option<NodeKey>,
    },
    /// The node left its address `from` for the one it claimed; `taken_from` as for
    /// [`LeaseEvent::Granted`].
    Moved {
        lease: Lease,
        from: Ipv4Addr,
        taken_from: Option<NodeKey>,
    },
}

impl LeaseEvent {
    pub fn lease(&self) -> Lease {
        match self {
            LeaseEvent::Renewed(l)
            | LeaseEvent::Granted { lease: l, .. }
            | LeaseEvent::Moved { lease: l, .. } => *l,
        }
    }
}

/// Why [`LeasePool::claim`] did not grant an address; nothing was changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClaimRefused {
    #[error("claimed address {0} is outside {OVERLAY_V4} or not a host address")]
    OutOfRange(Ipv4Addr),
    #[error("claimed address {addr} is leased to node {holder}")]
    Held { addr: Ipv4Addr, holder: NodeKey },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    #[error("no free overlay address left in {0}: every address is leased to a node seen lately (in the last 30 days, or 6 hours for a node in no network)")]
    Exhausted(Ipv4Net),
    #[error("the lease pool {0} must lie inside {OVERLAY_V4} and hold at least two addresses")]
    BadPool(Ipv4Net),
    #[error("lease {addr} of node {node} is outside {OVERLAY_V4} or not a host address")]
    OutOfRange { node: NodeKey, addr: Ipv4Addr },
    #[error("node {0} has two leases")]
    DuplicateNode(NodeKey),
    #[error("address {addr} is leased twice (nodes {first} and {second})")]
    DuplicateAddr {
        addr: Ipv4Addr,
        first: NodeKey,
        second: NodeKey,
    },
}

/// All leases, indexed both ways and by expiry, and the pool's free addresses.
#[derive(Clone, Debug)]
pub struct LeasePool {
    range: Ipv4Net,
    by_node: BTreeMap<NodeKey, Lease>,
    by_addr: BTreeMap<Ipv4Addr, NodeKey>,
    /// Host numbers of the pool no lease holds, as ranges `first => last` (inclusive).
    free: BTreeMap<u32, u32>,
    /// Nodes in no network (short leases).
    unjoined: BTreeSet<NodeKey>,
    /// Every lease as (when it expires, its node).
    by_expiry: BTreeSet<(u64, NodeKey)>,
}

impl Default for LeasePool {
    fn default() -> Self {
        Self::new(OVERLAY_V4).expect("the overlay range is a valid pool")
    }
}

impl LeasePool {
    /// A pool that hands out addresses from `range`, a part of [`OVERLAY_V4`] (the whole of it
    /// in production). Leases restored from a snapshot may lie anywhere in [`OVERLAY_V4`].
    pub fn new(range: Ipv4Net) -> Result<Self, LeaseError> {
        let range = range.trunc();
        if !OVERLAY_V4.contains(&range) || range.prefix_len() > 30 {
            return Err(LeaseError::BadPool(range));
        }
        let hosts = (1u32 << (32 - range.prefix_len())) - 2;
        Ok(Self {
            range,
            by_node: BTreeMap::new(),
            by_addr: BTreeMap::new(),
            free: BTreeMap::from([(1, hosts)]),
            unjoined: BTreeSet::new(),
            by_expiry: BTreeSet::new(),
        })
    }

    /// How long `node`'s lease lasts unrenewed.
    fn ttl(&self, node: &NodeKey) -> u64 {
        if self.unjoined.contains(node) {
            NO_NETWORK_LEASE_TTL
        } else {
            LEASE_TTL
        }
    }

    fn expiry(&self, node: &NodeKey, lease: &Lease) -> u64 {
        lease.renewed_at.saturating_add(self.ttl(node))
    }

    /// True once `node`'s lease has gone its TTL without renewal. A clock that went backwards
    /// never expires anything.
    pub fn is_expired(&self, node: &NodeKey, now: u64) -> bool {
        self.by_node
            .get(node)
            .is_some_and(|l| now.saturating_sub(l.renewed_at) >= self.ttl(node))
    }

    /// Whether `node` is in a network (a long lease) or not (a short one); nodes are taken
    /// to be in one until told otherwise.
    pub fn set_in_network(&mut self, node: NodeKey, member: bool) {
        if member != self.unjoined.contains(&node) {
            return; // no change
        }
        let lease = self.by_node.get(&node).copied();
        if let Some(l) = lease {
            self.by_expiry.remove(&(self.expiry(&node, &l), node));
        }
        if member {
            self.unjoined.remove(&node);
        } else {
            self.unjoined.insert(node);
        }
        if let Some(l) = lease {
            self.by_expiry.insert((self.expiry(&node, &l), node));
        }
    }

    /// The pool's host number of `addr`, if it is one of the pool's host addresses.
    fn host_of(&self, addr: Ipv4Addr) -> Option<u32> {
        let host = u32::from(addr) & self.host_mask();
        (self.range.contains(&addr) && host != 0 && host != self.host_mask()).then_some(host)
    }

    fn addr_of(&self, host: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.range.network()) | host)
    }

    /// Marks `addr` leased in the free ranges.
    fn mark_taken(&mut self, addr: Ipv4Addr) {
        let Some(h) = self.host_of(addr) else {
            return;
        };
        let Some((&first, &last)) = self.free.range(..=h).next_back() else {
            return;
        };
        if last < h {
            return; // not free
        }
        self.free.remove(&first);
        if first < h {
            self.free.insert(first, h - 1);
        }
        if h < last {
            self.free.insert(h + 1, last);
        }
    }

    /// Marks `addr` free again, joining it to the free ranges around it.
    fn mark_free(&mut self, addr: Ipv4Addr) {
        let Some(h) = self.host_of(addr) else {
            return;
        };
        let (mut first, mut last) = (h, h);
        if let Some((&f, &l)) = self.free.range(..h).next_back() {
            if l >= h {
                return; // already free
            }
            if l + 1 == h {
                self.free.remove(&f);
                first = f;
            }
        }
        if let Some(l) = self.free.remove(&(h + 1)) {
            last = l;
        }
        self.free.insert(first, last);
    }

    /// The first free host number from `start` upwards, wrapping around the pool.
    fn first_free_from(&self, start: u32) -> Option<u32> {
        if let Some((_, &last)) = self.free.range(..=start).next_back() {
            if last >= start {
                return Some(start);
            }
        }
        self.free
            .range(start..)
            .next()
            .or_else(|| self.free.iter().next())
            .map(|(&first, _)| first)
    }

    /// Records `node`'s new lease in every index.
    fn insert(&mut self, node: NodeKey, lease: Lease) {
        self.by_node.insert(node, lease);
        self.by_addr.insert(lease.addr, node);
        self.mark_taken(lease.addr);
        self.by_expiry.insert((self.expiry(&node, &lease), node));
    }

    /// Drops `node`'s lease from every index; its address becomes free.
    fn remove(&mut self, node: &NodeKey) -> Option<Lease> {
        let lease = self.by_node.remove(node)?;
        self.by_addr.remove(&lease.addr);
        self.mark_free(lease.addr);
        self.by_expiry.remove(&(self.expiry(node, &lease), *node));
        Some(lease)
    }

    pub fn range(&self) -> Ipv4Net {
        self.range
    }

    pub fn get(&self, node: &NodeKey) -> Option<Lease> {
        self.by_node.get(node).copied()
    }

    pub fn holder(&self, addr: Ipv4Addr) -> Option<NodeKey> {
        self.by_addr.get(&addr).copied()
    }

    pub fn len(&self) -> usize {
        self.by_node.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_node.is_empty()
    }

    /// Every lease, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&NodeKey, &Lease)> {
        self.by_node.iter()
    }

    fn host_mask(&self) -> u32 {
        (1u32 << (32 - self.range.prefix_len())) - 1
    }

    /// The address a node asks for first: its [`derive_v4`] address, folded into the pool when
    /// the pool is smaller than the whole overlay range.
    pub fn preferred(&self, node: &NodeKey) -> Ipv4Addr {
        let mask = self.host_mask();
        let mut host = u32::from(derive_v4(node)) & mask;
        if host == 0 || host == mask {
            host = 1;
        }
        Ipv4Addr::from(u32::from(self.range.network()) | host)
    }

    /// Renews `node`'s lease, or gives it one (see the module docs for the order).
    pub fn acquire(&mut self, node: NodeKey, now: u64) -> Result<LeaseEvent, LeaseError> {
        if let Some(event) = self.renew(node, now) {
            return Ok(event);
        }
        let addr = self.find_addr(&node, now)?;
        let (lease, taken_from) = self.take(node, addr, now);
        Ok(LeaseEvent::Granted { lease, taken_from })
    }

    /// Gives `node` the address `addr` it uses with other coordinators, moving it there if it
    /// holds another one (see the module docs). Claiming its own address renews it.
    pub fn claim(
        &mut self,
        node: NodeKey,
        addr: Ipv4Addr,
        now: u64,
    ) -> Result<LeaseEvent, ClaimRefused> {
        if !is_overlay_host(addr) {
            return Err(ClaimRefused::OutOfRange(addr));
        }
        match self.by_addr.get(&addr) {
            Some(holder) if *holder == node => return Ok(self.renew(node, now).expect("held")),
            Some(holder) if !self.is_expired(holder, now) => {
                return Err(ClaimRefused::Held {
                    addr,
                    holder: *holder,
                })
            }
            _ => {}
        }
        let from = self.remove(&node).map(|old| old.addr);
        let (lease, taken_from) = self.take(node, addr, now);
        Ok(match from {
            Some(from) => LeaseEvent::Moved {
                lease,
                from,
                taken_from,
            },
            None => LeaseEvent::Granted { lease, taken_from },
        })
    }

    /// [`LeasePool::claim`] when there is a claim and it is granted, else
    /// [`LeasePool::acquire`]: a host that cannot have its claim still gets an address.
    pub fn acquire_claiming(
        &mut self,
        node: NodeKey,
        claim: Option<Ipv4Addr>,
        now: u64,
    ) -> Result<LeaseEvent, LeaseError> {
        if let Some(Ok(event)) = claim.map(|addr| self.claim(node, addr, now)) {
            return Ok(event);
        }
        self.acquire(node, now)
    }

    fn renew(&mut self, node: NodeKey, now: u64) -> Option<LeaseEvent> {
        let mut lease = self.remove(&node)?;
        lease.renewed_at = now;
        self.insert(node, lease);
        Some(LeaseEvent::Renewed(lease))
    }

    /// Leases `addr` to `node`, which holds nothing, taking it from its (expired) holder.
    fn take(&mut self, node: NodeKey, addr: Ipv4Addr, now: u64) -> (Lease, Option<NodeKey>) {
        let taken_from = self.by_addr.get(&addr).copied();
        if let Some(old) = taken_from {
            self.remove(&old);
        }
        let lease = Lease {
            addr,
            renewed_at: now,
        };
        self.insert(node, lease);
        (lease, taken_from)
    }

    /// The preferred address if it is free or expired, else the first free one from there
    /// upwards (wrapping), else the lease that expired first. O(log n) in the leases.
    fn find_addr(&self, node: &NodeKey, now: u64) -> Result<Ipv4Addr, LeaseError> {
        let preferred = self.preferred(node);
        if let Some(holder) = self.by_addr.get(&preferred) {
            if self.is_expired(holder, now) {
                return Ok(preferred);
            }
        }
        let start = u32::from(preferred) & self.host_mask();
        if let Some(host) = self.first_free_from(start) {
            return Ok(self.addr_of(host));
        }
        // Leases of addresses outside the pool (claimed from another coordinator's) are not
        // the pool's to give out; there are few of them.
        self.by_expiry
            .iter()
            .take_while(|(expires, _)| *expires <= now)
            .map(|(_, holder)| self.by_node[holder].addr)
            .find(|addr| self.host_of(*addr).is_some())
            .ok_or(LeaseError::Exhausted(self.range))
    }

    /// Puts back a lease from a snapshot, refusing anything the pool could not have produced.
    pub fn restore(&mut self, node: NodeKey, lease: Lease) -> Result<(), LeaseError> {
        if !is_overlay_host(lease.addr) {
            return Err(LeaseError::OutOfRange {
                node,
                addr: lease.addr,
            });
        }
        if self.by_node.contains_key(&node) {
            return Err(LeaseError::DuplicateNode(node));
        }
        if let Some(first) = self.by_addr.get(&lease.addr) {
            return Err(LeaseError::DuplicateAddr {
                addr: lease.addr,
                first: *first,
                second: node,
            });
        }
        self.insert(node, lease);
        Ok(())
    }
}

/// An address some coordinator's pool could have leased: a host address of [`OVERLAY_V4`].
fn is_overlay_host(addr: Ipv4Addr) -> bool {
    let v4 = OVERLAY_V4;
    v4.contains(&addr) && addr != v4.network() && addr != v4.broadcast()
}

#[cfg(test)]
mod tests;
