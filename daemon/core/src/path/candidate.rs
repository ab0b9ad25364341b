//! Where a peer might be reached, and how we learned of the address.

use std::net::{IpAddr, SocketAddr};
use warren_proto::api::PathKind;

/// How an address of the peer became known; it decides the path's rank (same LAN first) and
/// breaks ties between equally fast paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CandidateKind {
    /// A private address of one of the peer's own interfaces (RFC 1918, ULA, link-local):
    /// when it answers, we share the peer's LAN.
    Lan,
    /// The peer's address as a STUN server saw it (its NAT's public side), or a globally
    /// routable address of one of its interfaces.
    Reflexive,
    /// A port mapping the peer obtained from its router (UPnP-IGD, NAT-PMP, PCP).
    Mapped,
    /// The source of an authenticated packet from the peer that no other source named.
    Observed,
}

impl CandidateKind {
    /// The kind of an address a peer lists among its interfaces' addresses: a private one
    /// (RFC 1918, shared 100.64/10, link-local, loopback; IPv6 unique-local and link-local)
    /// is on its LAN, anything else — a global IPv6 address, a public IPv4 one — is reached
    /// across the internet like a reflexive address, and must not be shown or ranked as "same
    /// LAN".
    pub fn of_interface_address(ip: IpAddr) -> CandidateKind {
        let lan = match ip.to_canonical() {
            IpAddr::V4(v4) => {
                v4.is_private()
                    || v4.is_link_local()
                    || v4.is_loopback()
                    || (v4.octets()[0] == 100 && v4.octets()[1] & 0xc0 == 64)
            }
            IpAddr::V6(v6) => {
                let first = v6.segments()[0];
                v6.is_loopback() || first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfe80
            }
        };
        if lan {
            CandidateKind::Lan
        } else {
            CandidateKind::Reflexive
        }
    }

    /// Higher is more specific. When two sources name one address, the more specific kind
    /// wins; between equally fast paths, the more specific one is used.
    pub fn preference(self) -> u8 {
        match self {
            CandidateKind::Lan => 3,
            CandidateKind::Mapped => 2,
            CandidateKind::Reflexive => 1,
            CandidateKind::Observed => 0,
        }
    }

    /// The kind to keep when `self` and `other` name the same address.
    pub fn merge(self, other: CandidateKind) -> CandidateKind {
        if other.preference() > self.preference() {
            other
        } else {
            self
        }
    }

    /// What the local API reports for a direct path of this kind.
    pub fn path_kind(self) -> PathKind {
        match self {
            CandidateKind::Lan => PathKind::Lan,
            _ => PathKind::Direct,
        }
    }
}

/// One address to probe, as the coordinator's "call me maybe" lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Candidate {
    pub addr: SocketAddr,
    pub kind: CandidateKind,
}

impl Candidate {
    pub fn new(addr: SocketAddr, kind: CandidateKind) -> Self {
        Self { addr, kind }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CandidateKind::*;

    #[test]
    fn merge_keeps_the_more_specific_kind() {
        let table = [
            (Observed, Lan, Lan),
            (Lan, Observed, Lan),
            (Reflexive, Mapped, Mapped),
            (Mapped, Reflexive, Mapped),
            (Observed, Reflexive, Reflexive),
            (Reflexive, Reflexive, Reflexive),
        ];
        for (a, b, want) in table {
            assert_eq!(a.merge(b), want, "{a:?} + {b:?}");
        }
    }

    #[test]
    fn only_lan_reports_as_lan() {
        assert_eq!(Lan.path_kind(), PathKind::Lan);
        for k in [Reflexive, Mapped, Observed] {
            assert_eq!(k.path_kind(), PathKind::Direct);
        }
    }

    /// Only private, shared, link-local and loopback addresses (and IPv6 unique-local and
    /// link-local ones) are "same LAN"; a global IPv6 address or a public IPv4 address on an
    /// interface is reached across the internet.
    #[test]
    fn only_private_interface_addresses_are_lan() {
        for lan in [
            "192.168.1.2",
            "10.0.0.1",
            "172.16.5.5",
            "100.100.1.1",
            "169.254.3.4",
            "127.0.0.1",
            "fd57:6172::1",
            "fe80::1",
            "::ffff:192.168.1.2",
        ] {
            let ip: IpAddr = lan.parse().unwrap();
            assert_eq!(
                CandidateKind::of_interface_address(ip),
                CandidateKind::Lan,
                "{lan}"
            );
        }
        for public in ["203.0.113.7", "100.128.0.1", "2001:db8::7", "2a01:4f8::1"] {
            let ip: IpAddr = public.parse().unwrap();
            assert_eq!(
                CandidateKind::of_interface_address(ip),
                CandidateKind::Reflexive,
                "{public}"
            );
        }
    }
}
