//! The one overlay IPv4 address this host has in all its networks, of every coordinator.
//!
//! Coordinators lease addresses independently, so the host *claims* its address from each
//! (`Hello.claim`); a coordinator grants it unless another of its nodes holds it. Two ways it
//! can clash, both resolved by this host moving to a fresh address everywhere (the shell then
//! reconnects to every coordinator with the new claim):
//! - a coordinator leases something else than the claim (another of its nodes holds it);
//! - a member that also knows another host at this address, through another coordinator,
//!   asks this host to move ([`warren_proto::control::msg::ServerMsg::AddressClash`]).
//!
//! Fresh addresses come from [`derive_v4_attempt`]: 22 hash bits each, so a second clash is as
//! unlikely as the first. A host that never had an address, or follows one coordinator only,
//! takes what the coordinator leases (what a single-coordinator host always did), so upgrading
//! moves nobody.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use warren_proto::key::NodeKey;
use warren_proto::overlay::derive_v4_attempt;

/// Past this many moves something is wrong beyond chance (a member who keeps claiming clashes,
/// say): stay put and let the coordinators' own leases stand.
pub const MAX_ATTEMPTS: u32 = 16;
/// Clash reports closer together than this are one clash seen by several members.
pub const CLASH_QUIET: Duration = Duration::from_secs(10);

/// What the host remembers of its address across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Saved {
    pub ip: Option<Ipv4Addr>,
    pub attempt: u32,
    pub moves: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to do.
    Keep,
    /// The host's first address: remember it.
    Adopt(Ipv4Addr),
    /// Move to this address: remember it and reconnect everywhere to claim it.
    Move(Ipv4Addr),
}

pub struct OwnAddress {
    key: NodeKey,
    saved: Saved,
    last_clash_move: Option<Instant>,
}

impl OwnAddress {
    pub fn new(key: NodeKey, saved: Saved) -> Self {
        OwnAddress {
            key,
            saved,
            last_clash_move: None,
        }
    }

    pub fn saved(&self) -> Saved {
        self.saved
    }

    /// What to claim in the next hello.
    pub fn claim(&self) -> Ipv4Addr {
        self.saved
            .ip
            .unwrap_or_else(|| derive_v4_attempt(&self.key, self.saved.attempt))
    }

    /// A coordinator welcomed this host with `leased`. `alone`: it is the only coordinator
    /// this host follows, so its lease cannot clash with another's and is simply taken (an
    /// older coordinator that ignores claims then moves nobody back and forth).
    pub fn welcomed(&mut self, leased: IpAddr, alone: bool) -> Decision {
        let IpAddr::V4(v4) = leased else {
            return Decision::Keep;
        };
        match self.saved.ip {
            Some(mine) if mine == v4 => Decision::Keep,
            Some(_) if !alone => self.move_on(),
            _ => {
                self.saved.ip = Some(v4);
                Decision::Adopt(v4)
            }
        }
    }

    /// A coordinator passed on a member's report that another host has `ip`.
    pub fn clash_reported(&mut self, now: Instant, ip: Ipv4Addr) -> Decision {
        if self.saved.ip != Some(ip) {
            // About an address this host already left.
            return Decision::Keep;
        }
        if self
            .last_clash_move
            .is_some_and(|t| now.saturating_duration_since(t) < CLASH_QUIET)
        {
            return Decision::Keep;
        }
        let d = self.move_on();
        if matches!(d, Decision::Move(_)) {
            self.last_clash_move = Some(now);
        }
        d
    }

    fn move_on(&mut self) -> Decision {
        if self.saved.attempt >= MAX_ATTEMPTS {
            return Decision::Keep;
        }
        self.saved.attempt += 1;
        self.saved.moves += 1;
        let next = derive_v4_attempt(&self.key, self.saved.attempt);
        self.saved.ip = Some(next);
        Decision::Move(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_proto::overlay::derive_v4;

    const K: NodeKey = NodeKey([7; 32]);

    #[test]
    fn a_new_host_claims_its_derived_address_and_keeps_the_first_lease() {
        let mut a = OwnAddress::new(K, Saved::default());
        assert_eq!(a.claim(), derive_v4(&K));
        // An older coordinator leased something else long ago: that is the host's address.
        let old: Ipv4Addr = "100.64.0.9".parse().unwrap();
        assert_eq!(a.welcomed(old.into(), false), Decision::Adopt(old));
        assert_eq!(a.claim(), old);
        assert_eq!(a.welcomed(old.into(), false), Decision::Keep);
        assert_eq!(a.saved().moves, 0);
        // Its only coordinator gives it another one (it ignores claims): taken, not a move.
        let other: Ipv4Addr = "100.64.0.10".parse().unwrap();
        assert_eq!(a.welcomed(other.into(), true), Decision::Adopt(other));
        assert_eq!(a.saved().moves, 0);
    }

    #[test]
    fn a_refused_claim_moves_the_host_to_a_fresh_address() {
        let mine: Ipv4Addr = "100.64.0.9".parse().unwrap();
        let mut a = OwnAddress::new(
            K,
            Saved {
                ip: Some(mine),
                ..Saved::default()
            },
        );
        let d = a.welcomed("100.64.3.3".parse::<IpAddr>().unwrap(), false);
        let Decision::Move(next) = d else {
            panic!("expected a move, got {d:?}")
        };
        assert_ne!(next, mine);
        assert_eq!(a.claim(), next);
        assert_eq!(a.saved().moves, 1);
    }

    #[test]
    fn clash_reports_move_once_per_quiet_period_and_only_for_the_current_address() {
        let mine: Ipv4Addr = "100.64.0.9".parse().unwrap();
        let t = Instant::now();
        let mut a = OwnAddress::new(
            K,
            Saved {
                ip: Some(mine),
                ..Saved::default()
            },
        );
        assert_eq!(
            a.clash_reported(t, "100.64.0.1".parse().unwrap()),
            Decision::Keep
        );
        let Decision::Move(next) = a.clash_reported(t, mine) else {
            panic!("a clash on the current address moves")
        };
        // A second member's report of the same clash, or of the new address at once: stay.
        assert_eq!(a.clash_reported(t, mine), Decision::Keep);
        assert_eq!(
            a.clash_reported(t + Duration::from_secs(1), next),
            Decision::Keep
        );
        assert!(matches!(
            a.clash_reported(t + CLASH_QUIET, next),
            Decision::Move(_)
        ));
    }

    #[test]
    fn a_host_stops_moving_after_too_many_attempts() {
        let mut a = OwnAddress::new(
            K,
            Saved {
                ip: Some("100.64.0.9".parse().unwrap()),
                attempt: MAX_ATTEMPTS,
                moves: 3,
            },
        );
        assert_eq!(
            a.welcomed("100.64.3.3".parse::<IpAddr>().unwrap(), false),
            Decision::Keep
        );
    }
}
