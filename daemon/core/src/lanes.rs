//! Two queues in front of the crypto: a game's small packet goes before a download's bulk.
//!
//! The kernel queues in front of `warrend` (the TUN device's ring, the UDP socket's receive
//! buffer) are plain FIFOs of up to megabytes, and this kernel has no fq_codel to put in front of
//! them. So the data plane drains them as fast as it can read — reading costs a fraction of
//! encrypting — into these lanes, and serves the small lane first. The bulk lane is bounded: once
//! full, its oldest packets are dropped (counted as `queue_full`), which tells TCP to slow down
//! instead of letting the queue, and every game packet behind it, grow.
//!
//! Plaintext packets (TUN side) are classified per flow: a small packet of a flow that has bulk
//! packets waiting joins them at the back, so no flow is ever reordered. Encrypted datagrams (UDP
//! side) have no visible flow; a datagram on its own of at most [`SMALL_DATAGRAM`] bytes is small.
//! The sender already put small packets first, so the receiver seldom reorders a flow; and a
//! datagram overtakes only a bulk lane well inside WireGuard's replay window (1 024 counters),
//! so the datagrams it passed never look like replays. Dropping at the head keeps the waiting
//! datagrams the newest ones, so that distance is the lane's length.

use std::collections::VecDeque;

/// Largest inner IP packet that counts as small: a game's state update, a voice frame, a ping,
/// a TCP ACK. A download's segments are MTU-sized.
pub const SMALL_PACKET: usize = 512;
/// The same on the wire: [`SMALL_PACKET`] plus WireGuard's header and tag, plus a relay header.
pub const SMALL_DATAGRAM: usize = SMALL_PACKET + 32 + 32;

/// How many buckets flows are hashed into; a collision only makes a small packet wait as bulk.
const FLOW_BUCKETS: usize = 256;

/// What is queued: how many packets, whether it may go in the small lane, and its flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    packets: usize,
    bytes: usize,
    small: bool,
    flow: Option<u8>,
}

impl Kind {
    /// A received chunk of `bytes` in `packets` datagrams of `segment` bytes each (the last may
    /// be shorter). Only a chunk of one small datagram is small: a GRO chunk of many is a burst.
    pub fn datagrams(bytes: usize, packets: usize, segment: usize) -> Kind {
        Kind {
            packets,
            bytes,
            small: packets == 1 && segment <= SMALL_DATAGRAM,
            flow: None,
        }
    }
}

/// Where a packet waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Small,
    Bulk,
}

/// Limits of one set of lanes.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Entries in the small lane; past it small packets wait as bulk.
    pub small: usize,
    /// Bytes in the bulk lane: what bounds a download's queue (and so the wait of everything
    /// behind it). Past it the oldest bulk packets are dropped.
    pub bulk_bytes: usize,
    /// Packets in the bulk lane: what bounds a flood of tiny ones (and the buffers they hold).
    pub bulk_packets: usize,
    /// Small packets overtake the bulk lane only while its oldest packet arrived at most this
    /// many packets earlier, dropped ones included (encrypted datagrams: WireGuard's replay
    /// window is 1 024 counters, and a datagram that overtook more would make the ones it
    /// passed look like replays).
    pub overtake: usize,
}

struct Waiting<T> {
    item: T,
    /// How many packets had arrived before this one (its place in arrival order).
    arrival: u64,
    packets: usize,
    bytes: usize,
    flow: Option<u8>,
}

/// The two lanes. `T` is whatever holds the bytes (a buffer from the shell's pool), with the
/// number of packets it carries (a GRO chunk carries many).
pub struct Lanes<T> {
    small: VecDeque<T>,
    bulk: VecDeque<Waiting<T>>,
    bulk_packets: usize,
    bulk_bytes: usize,
    bulk_per_flow: [u32; FLOW_BUCKETS],
    /// Packets offered so far, queued or dropped: dropped ones still took counters.
    arrived: u64,
    limits: Limits,
}

impl<T> Lanes<T> {
    pub fn new(limits: Limits) -> Self {
        Lanes {
            small: VecDeque::with_capacity(limits.small),
            bulk: VecDeque::new(),
            bulk_packets: 0,
            bulk_bytes: 0,
            bulk_per_flow: [0; FLOW_BUCKETS],
            arrived: 0,
            limits,
        }
    }

    /// What `packet` (plaintext, from the TUN device) would be, given what waits now.
    pub fn kind_of_packet(&self, packet: &[u8]) -> Kind {
        let flow = flow_bucket(packet);
        let quiet = self.bulk_per_flow[flow as usize] == 0;
        Kind {
            packets: 1,
            bytes: packet.len(),
            small: packet.len() <= SMALL_PACKET && quiet,
            flow: Some(flow),
        }
    }

    /// Queues a plaintext packet from the TUN device; returns its lane and what was dropped
    /// to make room.
    pub fn push_packet(&mut self, item: T, packet: &[u8]) -> (Lane, Vec<T>) {
        let kind = self.kind_of_packet(packet);
        self.push_collecting(item, kind)
    }

    /// Queues a received chunk of datagrams (see [`Kind::datagrams`]), like `push_packet`.
    pub fn push_datagrams(
        &mut self,
        item: T,
        bytes: usize,
        packets: usize,
        segment: usize,
    ) -> (Lane, Vec<T>) {
        self.push_collecting(item, Kind::datagrams(bytes, packets, segment))
    }

    fn push_collecting(&mut self, item: T, kind: Kind) -> (Lane, Vec<T>) {
        let mut dropped = Vec::new();
        let lane = self.push(item, kind, |d, _| dropped.push(d));
        (lane, dropped)
    }

    /// Queues `item` as `kind` says. When the bulk lane is full, its oldest packets make room
    /// and go to `dropped` with the number of packets each held: dropping at the head tells a
    /// TCP sender of the loss a queue's length sooner than dropping the newest would, and never
    /// refuses a small packet that has to wait as bulk.
    pub fn push(&mut self, item: T, kind: Kind, mut dropped: impl FnMut(T, usize)) -> Lane {
        let arrival = self.arrived;
        self.arrived += kind.packets as u64;
        // What a small packet would overtake counts from the oldest bulk packet waiting.
        let passes = self.bulk.front().map_or(0, |w| arrival - w.arrival);
        if kind.small
            && self.small.len() < self.limits.small
            && passes <= self.limits.overtake as u64
        {
            self.small.push_back(item);
            return Lane::Small;
        }
        // A chunk bigger than the whole limit empties the lane and still gets in.
        while !self.bulk.is_empty()
            && (self.bulk_packets + kind.packets > self.limits.bulk_packets
                || self.bulk_bytes + kind.bytes > self.limits.bulk_bytes)
        {
            let w = self.bulk.front().expect("not empty");
            let packets = w.packets;
            let item = self.pop_bulk().expect("not empty");
            dropped(item, packets);
        }
        self.bulk_packets += kind.packets;
        self.bulk_bytes += kind.bytes;
        if let Some(f) = kind.flow {
            self.bulk_per_flow[f as usize] += 1;
        }
        self.bulk.push_back(Waiting {
            item,
            arrival,
            packets: kind.packets,
            bytes: kind.bytes,
            flow: kind.flow,
        });
        Lane::Bulk
    }

    /// The next item to work on: every small one before any bulk one.
    pub fn pop(&mut self) -> Option<T> {
        if let Some(item) = self.small.pop_front() {
            return Some(item);
        }
        self.pop_bulk()
    }

    /// The next small item only (a round serves the small lane before taking bulk).
    pub fn pop_small(&mut self) -> Option<T> {
        self.small.pop_front()
    }

    pub fn pop_bulk(&mut self) -> Option<T> {
        let w = self.bulk.pop_front()?;
        self.bulk_packets -= w.packets;
        self.bulk_bytes -= w.bytes;
        if let Some(f) = w.flow {
            self.bulk_per_flow[f as usize] -= 1;
        }
        Some(w.item)
    }

    pub fn is_empty(&self) -> bool {
        self.small.is_empty() && self.bulk.is_empty()
    }

    pub fn has_small(&self) -> bool {
        !self.small.is_empty()
    }

    /// Packets waiting in the bulk lane.
    pub fn bulk_packets(&self) -> usize {
        self.bulk_packets
    }

    /// Bytes waiting in the bulk lane.
    pub fn bulk_bytes(&self) -> usize {
        self.bulk_bytes
    }
}

/// A packet's flow (addresses, protocol and for TCP/UDP the ports) hashed into a bucket.
/// Anything that is not IPv4 or IPv6 hashes to bucket 0.
pub fn flow_bucket(packet: &[u8]) -> u8 {
    let (addrs, proto, l4) = match packet.first().map(|b| b >> 4) {
        Some(4) if packet.len() >= 20 => {
            let ihl = ((packet[0] & 0x0f) as usize) * 4;
            (&packet[12..20], packet[9], packet.get(ihl..ihl + 4))
        }
        Some(6) if packet.len() >= 40 => (&packet[8..40], packet[6], packet.get(40..44)),
        _ => return 0,
    };
    // FNV-1a: cheap, and good enough to keep a download and a game in different buckets.
    let mut h: u32 = 0x811c_9dc5;
    let ports: &[u8] = match proto {
        6 | 17 => l4.unwrap_or(&[]),
        _ => &[],
    };
    for b in addrs.iter().chain(std::iter::once(&proto)).chain(ports) {
        h ^= *b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    (h ^ (h >> 8) ^ (h >> 16) ^ (h >> 24)) as u8
}

#[cfg(test)]
mod tests;
