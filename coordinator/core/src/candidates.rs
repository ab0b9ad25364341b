//! What a member may say about where it can be reached. Its addresses go to every peer, which
//! probes each of them: a member must not be able to make the coordinator store an unbounded
//! list, nor make its peers probe addresses no host can have, nor flood them with updates.

use std::net::{IpAddr, SocketAddr};

/// LAN candidates kept per member (a PC has a handful of interfaces).
pub const MAX_LAN_CANDIDATES: usize = 16;
/// Endpoint updates a member may send at once, and how many seconds each one takes to earn
/// back: a daemon sends one at connect and on a new public address or port mapping.
pub const ENDPOINT_BURST: u32 = 10;
pub const ENDPOINT_REFILL_SECS: u64 = 2;

/// The usable part of a member's LAN candidate list: unicast addresses with a port, no
/// duplicates, at most [`MAX_LAN_CANDIDATES`].
pub fn lan_candidates(mut list: Vec<SocketAddr>) -> Vec<SocketAddr> {
    list.retain(|a| a.port() != 0 && probeable(a.ip()));
    let mut seen = std::collections::HashSet::new();
    list.retain(|a| seen.insert(*a));
    list.truncate(MAX_LAN_CANDIDATES);
    list
}

/// A port mapping or reflexive address worth passing on.
pub fn public_candidate(a: Option<SocketAddr>) -> Option<SocketAddr> {
    a.filter(|a| a.port() != 0 && probeable(a.ip()))
}

fn probeable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast() || v4.is_loopback())
        }
        IpAddr::V6(v6) => !(v6.is_unspecified() || v6.is_multicast() || v6.is_loopback()),
    }
}

/// A token bucket on one member's endpoint updates (whole seconds; a clock that goes back
/// refills nothing).
#[derive(Debug, Clone)]
pub struct EndpointLimiter {
    tokens: u32,
    last: u64,
}

impl EndpointLimiter {
    pub fn new(now: u64) -> Self {
        Self {
            tokens: ENDPOINT_BURST,
            last: now,
        }
    }

    /// Whether an update at `now` is allowed (and takes a token).
    pub fn allow(&mut self, now: u64) -> bool {
        let earned = now.saturating_sub(self.last) / ENDPOINT_REFILL_SECS;
        if earned > 0 {
            self.tokens = (self.tokens as u64 + earned).min(ENDPOINT_BURST as u64) as u32;
            self.last += earned * ENDPOINT_REFILL_SECS;
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_capped_deduplicated_and_only_probeable() {
        let mut list: Vec<SocketAddr> = (0..80_000u32)
            .map(|i| SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 41820)))
            .collect();
        list.insert(0, "224.0.0.1:41820".parse().unwrap());
        list.insert(0, "127.0.0.1:41820".parse().unwrap());
        list.insert(0, "192.168.1.5:0".parse().unwrap());
        list.insert(0, "192.168.1.5:41820".parse().unwrap());
        list.insert(0, "192.168.1.5:41820".parse().unwrap());
        let kept = lan_candidates(list);
        assert_eq!(kept.len(), MAX_LAN_CANDIDATES);
        assert_eq!(kept[0], "192.168.1.5:41820".parse().unwrap());
        assert_ne!(kept[1], kept[0]);
        assert!(kept
            .iter()
            .all(|a| !a.ip().is_loopback() && !a.ip().is_multicast()));
        assert_eq!(public_candidate(Some("0.0.0.0:1".parse().unwrap())), None);
        assert!(public_candidate(Some("203.0.113.5:1".parse().unwrap())).is_some());
    }

    #[test]
    fn updates_are_limited_to_a_burst_then_one_per_refill() {
        let mut l = EndpointLimiter::new(100);
        assert_eq!(
            (0..20).filter(|_| l.allow(100)).count(),
            ENDPOINT_BURST as usize
        );
        assert!(!l.allow(101));
        assert!(l.allow(102));
        assert!(!l.allow(102));
        assert_eq!(
            (0..20).filter(|_| l.allow(1000)).count(),
            ENDPOINT_BURST as usize
        );
        assert!(!l.allow(50), "a clock that went back earns nothing");
    }
}
