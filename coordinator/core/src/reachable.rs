//! Where a connected member can be reached, as its peers are told: what it reported of
//! itself, kept only where the coordinator vouches for it ([`crate::candidates`]). The
//! coordinator's sessions and the whole-system simulation keep one of these per online member.

use crate::candidates::{can_relay, lan_candidates, vouched_lan, vouched_public};
use std::net::{IpAddr, SocketAddr};
use warren_proto::control::msg::NatKind;

/// A member's addresses and abilities as its peers hear of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reachable {
    pub lan: Vec<SocketAddr>,
    pub reflexive: Option<SocketAddr>,
    pub nat: NatKind,
    /// A port mapping it holds on its router.
    pub mapped: Option<SocketAddr>,
    /// It relays for its peers, and they can reach it ([`can_relay`]).
    pub relay: bool,
    /// Its router's mapping of its TCP listen port.
    pub mapped_tcp: Option<SocketAddr>,
}

/// What a member says of itself in one endpoint update (`ClientMsg::Endpoints`).
#[derive(Clone, Debug, Default)]
pub struct Reported {
    pub lan: Vec<SocketAddr>,
    pub reflexive: Option<SocketAddr>,
    pub nat: NatKind,
    pub mapped: Option<SocketAddr>,
    /// It offers to relay for its peers.
    pub relay: bool,
    pub mapped_tcp: Option<SocketAddr>,
}

impl Reachable {
    /// A member that just connected: its hello's LAN candidates and the address its control
    /// connection came from, nothing else yet.
    pub fn at_connect(lan: Vec<SocketAddr>, reflexive: Option<SocketAddr>) -> Self {
        Self {
            lan: lan_candidates(lan),
            reflexive,
            nat: NatKind::Unknown,
            ..Self::default()
        }
    }

    /// Takes in an endpoint update. Only addresses the coordinator saw the member come from
    /// (`seen`) pass, so a member cannot make its peers probe someone else; a reflexive
    /// address is only ever replaced (a STUN answer stays true), while a mapping can be
    /// withdrawn — the router stopped answering or the daemon deleted it, and peers must stop
    /// trying it.
    pub fn update(&mut self, report: Reported, seen: impl Fn(IpAddr) -> bool) {
        self.lan = vouched_lan(report.lan, &seen);
        if let Some(r) = vouched_public(report.reflexive, &seen) {
            self.reflexive = Some(r);
        }
        self.nat = report.nat;
        self.mapped = vouched_public(report.mapped, &seen);
        self.relay = can_relay(report.relay, &self.lan, self.reflexive, self.mapped);
        self.mapped_tcp = vouched_public(report.mapped_tcp, &seen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// Unvouched addresses are dropped, a reflexive address survives an update without one,
    /// a mapping does not, and the relay offer holds only where peers can reach the member.
    #[test]
    fn an_update_keeps_what_the_coordinator_vouches_for() {
        let own: IpAddr = "203.0.113.7".parse().unwrap();
        let seen = |ip: IpAddr| ip == own;
        let mut r = Reachable::at_connect(vec![a("192.168.1.2:41820")], Some(a("203.0.113.7:1")));
        r.update(
            Reported {
                lan: vec![a("192.168.1.2:41820"), a("198.51.100.9:41820")],
                reflexive: Some(a("198.51.100.9:41820")),
                nat: NatKind::EndpointIndependent,
                mapped: Some(a("203.0.113.7:5000")),
                relay: true,
                mapped_tcp: Some(a("198.51.100.9:5000")),
            },
            seen,
        );
        assert_eq!(
            r.lan,
            vec![a("192.168.1.2:41820")],
            "someone else's address dropped"
        );
        assert_eq!(
            r.reflexive,
            Some(a("203.0.113.7:1")),
            "an unvouched one replaces nothing"
        );
        assert_eq!(r.mapped, Some(a("203.0.113.7:5000")));
        assert!(r.relay, "reachable through its mapping");
        assert_eq!(r.mapped_tcp, None);
        r.update(
            Reported {
                relay: true,
                ..Reported::default()
            },
            seen,
        );
        assert_eq!(
            r.reflexive,
            Some(a("203.0.113.7:1")),
            "kept without a new one"
        );
        assert_eq!(r.mapped, None, "a mapping can be withdrawn");
        assert!(!r.relay, "behind NAT without a mapping: not a relay");
    }
}
