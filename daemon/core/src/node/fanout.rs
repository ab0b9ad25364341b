//! Broadcast and multicast on an L3 overlay. LAN games, mDNS and SSDP find each other with
//! packets to 255.255.255.255, the overlay's directed broadcast address or a multicast group;
//! a TUN device has no link to flood them on, so the node copies each one it reads from the
//! TUN to every peer it can reach, sealed for each peer as its own WireGuard packet. The
//! receivers' kernels deliver them (source: the sender's overlay address) to the programs bound
//! to the wildcard address or joined to the group.
//!
//! - Only packets read from the TUN are copied, never packets from peers: no loops, and
//!   nothing goes back to its sender.
//! - The host's kernel chatter about groups (IGMP, and ICMPv6 router/neighbour discovery and
//!   MLD) is local to the link and not copied; interface-local IPv6 groups (ff01::/16) neither.
//! - A storm cannot take the overlay down: copies are limited per host ([`FanoutConfig`]), and
//!   the queue of copies waiting to be sealed is bounded.

use crate::ip;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use warren_proto::overlay::OVERLAY_V4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FanoutConfig {
    /// Sustained copies per second (one copy per peer per packet).
    pub copies_per_sec: u32,
    /// Copies allowed at once after a quiet spell.
    pub burst: u32,
    /// Copies waiting to be sealed at most; more are dropped as rate limited.
    pub max_queued: usize,
}

impl Default for FanoutConfig {
    /// Discovery traffic is a few packets a second per program; 1 000 copies a second lets a
    /// host announce to 50 peers 20 times a second, while a broadcast storm costs each peer at
    /// most that.
    fn default() -> Self {
        Self {
            copies_per_sec: 1000,
            burst: 2000,
            max_queued: 4096,
        }
    }
}

/// What the fan-out did, for `status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FanoutCounters {
    /// Broadcast/multicast packets read from the TUN and copied to at least one peer.
    pub sent: u64,
    /// Copies sealed for peers.
    pub copies: u64,
    /// Broadcast/multicast packets from peers, written to the TUN.
    pub received: u64,
    /// Copies not made: over the rate limit or the queue bound.
    pub rate_limited: u64,
    /// Link-local control packets (IGMP, MLD, neighbour discovery) not copied.
    pub not_copied: u64,
}

pub struct Fanout<P> {
    config: FanoutConfig,
    queue: VecDeque<(P, Arc<[u8]>)>,
    /// GCRA "theoretical arrival time" of the next copy; `None` when full.
    tat: Option<Instant>,
    pub counters: FanoutCounters,
}

/// Whether packets to `dst` are for every host on the link (and so for every peer).
pub fn is_group(dst: IpAddr) -> bool {
    match dst {
        IpAddr::V4(v4) => v4.is_multicast() || v4.is_broadcast() || v4 == OVERLAY_V4.broadcast(),
        IpAddr::V6(v6) => v6.is_multicast(),
    }
}

/// Group traffic that only makes sense on the sender's own link.
fn is_link_control(packet: &[u8], dst: IpAddr) -> bool {
    const IGMP: u8 = 2;
    const ICMPV6: u8 = 58;
    match dst {
        IpAddr::V4(_) => packet.get(9) == Some(&IGMP),
        IpAddr::V6(v6) => {
            // Interface-local scope: never leaves the host.
            if v6.segments()[0] & 0x000f == 1 {
                return true;
            }
            // Router/neighbour discovery and MLD, when ICMPv6 follows the fixed header (the
            // kernel puts MLD behind a hop-by-hop header: that counts as control too).
            const HOP_BY_HOP: u8 = 0;
            match packet.get(6) {
                Some(&HOP_BY_HOP) => true,
                Some(&ICMPV6) => matches!(packet.get(40), Some(130..=137 | 143)),
                _ => false,
            }
        }
    }
}

impl<P: Copy> Fanout<P> {
    pub fn new(config: FanoutConfig) -> Self {
        Self {
            config,
            queue: VecDeque::new(),
            tat: None,
            counters: FanoutCounters::default(),
        }
    }

    /// A group packet read from the TUN at `now`: queues one copy for each of `peers`, as far
    /// as the rate limit allows. Returns whether any copy was queued.
    pub fn offer(&mut self, now: Instant, packet: &[u8], peers: impl Iterator<Item = P>) -> bool {
        let Some(dst) = ip::destination(packet) else {
            return false;
        };
        if is_link_control(packet, dst) {
            self.counters.not_copied += 1;
            return false;
        }
        let shared: Arc<[u8]> = Arc::from(packet);
        let mut queued = false;
        for peer in peers {
            if self.queue.len() >= self.config.max_queued || !self.take(now) {
                self.counters.rate_limited += 1;
                continue;
            }
            self.queue.push_back((peer, shared.clone()));
            queued = true;
        }
        if queued {
            self.counters.sent += 1;
        }
        queued
    }

    /// The next copy to seal, and for which peer.
    pub fn pop_copy(&mut self) -> Option<(P, Arc<[u8]>)> {
        let next = self.queue.pop_front();
        if next.is_some() {
            self.counters.copies += 1;
        }
        next
    }

    /// A token bucket on copies, in GCRA form (as the relay's byte bucket).
    fn take(&mut self, now: Instant) -> bool {
        let rate = u64::from(self.config.copies_per_sec.max(1));
        let step = Duration::from_nanos(1_000_000_000 / rate);
        let window = step * self.config.burst.max(1);
        let tat = self.tat.map_or(now, |t| t.max(now));
        let next = tat + step;
        if next.duration_since(now) > window {
            return false;
        }
        self.tat = Some(next);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn v4_udp(dst: Ipv4Addr) -> Vec<u8> {
        let mut p = vec![0u8; 28];
        p[0] = 0x45;
        p[9] = 17;
        p[12..16].copy_from_slice(&[100, 64, 0, 1]);
        p[16..20].copy_from_slice(&dst.octets());
        p
    }

    #[test]
    fn group_destinations() {
        for g in [
            "255.255.255.255",
            "100.127.255.255",
            "224.0.0.251",
            "239.255.255.250",
        ] {
            assert!(is_group(g.parse().unwrap()), "{g}");
        }
        for u in ["100.64.0.1", "100.127.255.254", "192.168.1.255"] {
            assert!(!is_group(u.parse().unwrap()), "{u}");
        }
        assert!(is_group("ff02::fb".parse().unwrap()));
        assert!(!is_group("fd57:6172:7265:6e00::1".parse().unwrap()));
    }

    #[test]
    fn one_copy_per_peer_and_link_control_stays_home() {
        let mut f = Fanout::new(FanoutConfig::default());
        let now = Instant::now();
        let mdns = v4_udp(Ipv4Addr::new(224, 0, 0, 251));
        assert!(f.offer(now, &mdns, [1u32, 2, 3].into_iter()));
        let peers: Vec<u32> = std::iter::from_fn(|| f.pop_copy())
            .map(|(p, _)| p)
            .collect();
        assert_eq!(peers, [1, 2, 3]);
        assert_eq!((f.counters.sent, f.counters.copies), (1, 3));

        let mut igmp = v4_udp(Ipv4Addr::new(224, 0, 0, 22));
        igmp[9] = 2;
        assert!(!f.offer(now, &igmp, [1u32].into_iter()));
        let mut mld = vec![0u8; 48];
        mld[0] = 0x60;
        mld[6] = 0;
        mld[24] = 0xff;
        mld[25] = 0x02;
        assert!(!f.offer(now, &mld, [1u32].into_iter()));
        let mut rs = mld.clone();
        rs[6] = 58;
        rs[40] = 133;
        assert!(!f.offer(now, &rs, [1u32].into_iter()));
        let mut mdns6 = rs.clone();
        mdns6[6] = 17;
        assert!(f.offer(now, &mdns6, [1u32].into_iter()));
        assert_eq!(f.counters.not_copied, 3);
    }

    #[test]
    fn a_storm_is_cut_to_the_rate_and_refills() {
        let config = FanoutConfig {
            copies_per_sec: 100,
            burst: 10,
            max_queued: 1000,
        };
        let mut f = Fanout::new(config);
        let t0 = Instant::now();
        let bcast = v4_udp(Ipv4Addr::BROADCAST);
        for _ in 0..100 {
            f.offer(t0, &bcast, [1u32, 2].into_iter());
        }
        assert_eq!(std::iter::from_fn(|| f.pop_copy()).count(), 10, "the burst");
        assert_eq!(f.counters.rate_limited, 190);
        // 100 copies a second: 50 ms later, 5 more; a long pause refills only the burst.
        for _ in 0..100 {
            f.offer(t0 + Duration::from_millis(50), &bcast, [1u32].into_iter());
        }
        assert_eq!(std::iter::from_fn(|| f.pop_copy()).count(), 5);
        for _ in 0..100 {
            f.offer(t0 + Duration::from_secs(60), &bcast, [1u32].into_iter());
        }
        assert_eq!(std::iter::from_fn(|| f.pop_copy()).count(), 10);
    }

    #[test]
    fn the_queue_is_bounded() {
        let config = FanoutConfig {
            copies_per_sec: 1_000_000,
            burst: 1_000_000,
            max_queued: 5,
        };
        let mut f = Fanout::new(config);
        let bcast = v4_udp(Ipv4Addr::BROADCAST);
        f.offer(Instant::now(), &bcast, 0u32..100);
        assert_eq!(std::iter::from_fn(|| f.pop_copy()).count(), 5);
        assert_eq!(f.counters.rate_limited, 95);
    }
}
