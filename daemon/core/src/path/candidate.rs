//! Where a peer might be reached, and how we learned of the address.

use std::net::SocketAddr;
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
}
