//! Where the coordinator has itself seen a member come from: the source addresses of recent
//! STUN requests. A member's reflexive address or port mapping is passed on to its peers only
//! when its IP is one of these or its control connection's, so a member cannot make its peers
//! probe (or sweep the ports of) an address it does not have.

use std::collections::HashMap;
use std::net::IpAddr;

/// How long a STUN request vouches for its source (seconds).
pub const SEEN_FOR_SECS: u64 = 600;
/// Sources remembered at most; past this, expired ones are forgotten, and if none are, new
/// ones are not remembered (a flood of spoofed requests cannot grow the coordinator).
pub const MAX_SOURCES: usize = 65_536;

#[derive(Debug, Default)]
pub struct SeenSources {
    last: HashMap<IpAddr, u64>,
}

impl SeenSources {
    /// A STUN request from `ip` at `now` (Unix seconds).
    pub fn saw(&mut self, ip: IpAddr, now: u64) {
        if self.last.len() >= MAX_SOURCES && !self.last.contains_key(&ip) {
            self.last
                .retain(|_, at| now.saturating_sub(*at) < SEEN_FOR_SECS);
            if self.last.len() >= MAX_SOURCES {
                return;
            }
        }
        self.last.insert(ip, now);
    }

    /// Whether a STUN request came from `ip` within [`SEEN_FOR_SECS`] of `now`.
    pub fn seen(&self, ip: IpAddr, now: u64) -> bool {
        self.last
            .get(&ip)
            .is_some_and(|at| now.saturating_sub(*at) < SEEN_FOR_SECS)
    }

    pub fn len(&self) -> usize {
        self.last.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_vouches_for_ten_minutes_and_memory_is_bounded() {
        let mut s = SeenSources::default();
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        assert!(!s.seen(ip, 1000));
        s.saw(ip, 1000);
        assert!(s.seen(ip, 1000 + SEEN_FOR_SECS - 1));
        assert!(!s.seen(ip, 1000 + SEEN_FOR_SECS));
        for i in 0..(MAX_SOURCES as u32 + 10) {
            s.saw(IpAddr::from(i.to_be_bytes()), 5000);
        }
        assert_eq!(s.len(), MAX_SOURCES);
        // Once the flood is old, room is made for new sources.
        let later: IpAddr = "203.0.113.9".parse().unwrap();
        s.saw(later, 5000 + SEEN_FOR_SECS);
        assert!(s.seen(later, 5000 + SEEN_FOR_SECS));
        assert!(s.len() < MAX_SOURCES);
    }
}
