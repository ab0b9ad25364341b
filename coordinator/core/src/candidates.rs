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

/// A reflexive address or port mapping the coordinator vouches for: its IP is one the
/// coordinator saw the member come from (`seen`: its control connection, or its recent STUN
/// requests). So the NAT kind a member claims can only ever make its peers probe or sweep
/// ports of the member's own public address.
pub fn vouched_public(a: Option<SocketAddr>, seen: impl Fn(IpAddr) -> bool) -> Option<SocketAddr> {
    public_candidate(a).filter(|a| seen(a.ip()))
}

/// The LAN candidates passed on: as [`lan_candidates`], and an IPv4 address outside the
/// private, shared and link-local ranges only when the coordinator saw the member come from
/// it (a host with a public address on its interface). IPv6 addresses cannot be checked so
/// (a host connected over IPv4 has global IPv6 addresses nobody vouches for, and they are its
/// best direct paths); each peer's probes to them stay bounded by the candidate cap and the
/// probe schedule.
pub fn vouched_lan(list: Vec<SocketAddr>, seen: impl Fn(IpAddr) -> bool) -> Vec<SocketAddr> {
    let mut list = lan_candidates(list);
    list.retain(|a| match a.ip() {
        IpAddr::V4(v4) => v4.is_private() || v4.is_link_local() || shared_v4(v4) || seen(a.ip()),
        IpAddr::V6(_) => true,
    });
    list
}

/// Whether a member that offers to relay for its peers (`offered`) may be named to them as a
/// relay: only one they can all reach unasked, through a port mapping or at a public address
/// on its own interface (its reflexive address is one of its LAN addresses: no NAT). Behind a
/// NAT without a mapping it would answer only those it wrote to first. The addresses are the
/// vouched ones, so a member cannot name someone else's address as its relay.
pub fn can_relay(
    offered: bool,
    lan: &[SocketAddr],
    reflexive: Option<SocketAddr>,
    mapped: Option<SocketAddr>,
) -> bool {
    offered
        && (mapped.is_some()
            || reflexive.is_some_and(|r| {
                lan.iter()
                    .any(|l| l.ip().to_canonical() == r.ip().to_canonical())
            }))
}

/// Whether a connection from `ip` comes from inside a LAN (loopback, private, shared,
/// link-local or unique-local): from there the coordinator cannot see the member's public
/// address.
pub fn inside_a_lan(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_private() || v4.is_link_local() || shared_v4(v4)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback() || first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfe80
        }
    }
}

/// RFC 6598's shared space (carrier-grade NAT), where many home routers' WAN sides live.
fn shared_v4(ip: std::net::Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    a == 100 && (64..128).contains(&b)
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
    fn only_a_member_others_can_reach_unasked_is_named_a_relay() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let public = a("203.0.113.5:41641");
        let lan = [a("192.168.1.5:41641"), a("203.0.113.5:41641")];
        // A public address on its own interface, or a port mapping: yes.
        assert!(can_relay(true, &lan, Some(public), None));
        assert!(can_relay(
            true,
            &lan[..1],
            None,
            Some(a("198.51.100.9:5000"))
        ));
        // Behind a NAT without a mapping: its reflexive address is none of its own.
        assert!(!can_relay(true, &lan[..1], Some(public), None));
        assert!(!can_relay(true, &lan[..1], None, None));
        // Not offered: never.
        assert!(!can_relay(false, &lan, Some(public), Some(public)));
    }

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
    fn only_addresses_the_coordinator_saw_are_vouched_for() {
        let member: IpAddr = "198.51.100.7".parse().unwrap();
        let seen = |ip: IpAddr| ip == member;
        let victim: SocketAddr = "192.0.2.80:53".parse().unwrap();
        let own: SocketAddr = "198.51.100.7:41820".parse().unwrap();
        assert_eq!(vouched_public(Some(victim), seen), None);
        assert_eq!(vouched_public(Some(own), seen), Some(own));
        let lan: Vec<SocketAddr> = [
            "192.168.1.5:41820",
            "10.0.0.2:41820",
            "100.70.1.2:41820",
            "169.254.3.4:41820",
            "192.0.2.80:53",
            "198.51.100.7:41820",
            "[2001:db8::5]:41820",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let kept = vouched_lan(lan.clone(), seen);
        assert!(!kept.contains(&victim), "{kept:?}");
        assert_eq!(kept.len(), lan.len() - 1, "{kept:?}");
    }

    #[test]
    fn connections_from_inside_a_lan_are_told_apart() {
        for lan in [
            "127.0.0.1",
            "192.168.1.3",
            "10.1.2.3",
            "100.64.0.1",
            "fd00::1",
            "fe80::1",
            "::1",
            "::ffff:192.168.1.3",
        ] {
            assert!(inside_a_lan(lan.parse().unwrap()), "{lan}");
        }
        for public in ["203.0.113.13", "2001:db8::1", "::ffff:198.51.100.1"] {
            assert!(!inside_a_lan(public.parse().unwrap()), "{public}");
        }
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
