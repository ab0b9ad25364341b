//! A port-restricted host against one behind a symmetric NAT with fully random ports, on the
//! simulated network of [`crate::path::sim`]: the plain probes fail, the birthday run finds a
//! direct path within its bounds.

use super::{role, BirthdayConfig, Role};
use crate::path::sim::{addr, ms, Iface, Sim};
use crate::path::{Candidate, CandidateKind};
use std::time::Duration;
use warren_proto::control::msg::NatKind;

const EASY_LAN: &str = "192.168.1.10:41820";
const EASY_WAN: &str = "203.0.113.1:41820";
const HARD_LAN: &str = "192.168.2.20:41820";
/// What STUN saw of the hard side (the coordinator passes it on); its port is one mapping
/// among many, useless to the easy side.
const HARD_WAN: &str = "198.51.100.2:40000";

const EASY: usize = 0;
const HARD: usize = 1;

fn sites() -> Sim {
    Sim::new(
        vec![Iface::natted(EASY_LAN, 1, EASY_WAN, 10)],
        vec![Iface::symmetric(HARD_LAN, 2, HARD_WAN, 15)],
    )
}

fn introduce(sim: &mut Sim) {
    let c = |lan: &str, wan: &str| {
        vec![
            Candidate::new(addr(lan), CandidateKind::Lan),
            Candidate::new(addr(wan), CandidateKind::Reflexive),
        ]
    };
    sim.call_me_maybe(EASY, &c(HARD_LAN, HARD_WAN));
    sim.call_me_maybe(HARD, &c(EASY_LAN, EASY_WAN));
}

#[test]
fn without_birthday_the_plain_probes_find_nothing() {
    let mut sim = sites();
    introduce(&mut sim);
    sim.run_until(Duration::from_secs(6));
    assert_eq!(sim.best(EASY), None);
    assert_eq!(sim.best(HARD), None);
}

/// Both sides were introduced, found no plain path, and run their birthday halves.
fn birthday_run(seed: u64) -> Sim {
    let mut sim = sites();
    sim.set_seed(seed);
    introduce(&mut sim);
    let easy = role(NatKind::EndpointIndependent, NatKind::Symmetric).unwrap();
    let hard = role(NatKind::Symmetric, NatKind::EndpointIndependent).unwrap();
    sim.start_birthday(EASY, easy, HARD_WAN, seed ^ 0xE);
    sim.start_birthday(HARD, hard, EASY_WAN, seed ^ 0x4);
    sim.run_until(Duration::from_secs(6));
    sim
}

#[test]
fn port_restricted_and_symmetric_meet_directly() {
    let c = BirthdayConfig::default();
    for seed in 1..=20 {
        let sim = birthday_run(seed);
        let (e, h) = (sim.best(EASY), sim.best(HARD));
        let e = e.unwrap_or_else(|| panic!("seed {seed}: the easy side found no path"));
        let h = h.unwrap_or_else(|| panic!("seed {seed}: the hard side found no path"));
        // The easy side reaches one of the hard side's random ports; the hard side reaches
        // the easy side's reflexive address from the side socket that won.
        assert_eq!(e.addr.ip(), addr(HARD_WAN).ip(), "seed {seed}");
        assert_eq!(h.addr, addr(EASY_WAN), "seed {seed}");
        assert_eq!(e.rtt, ms(50), "seed {seed}: 2 × (10 + 15) ms");
        let hard = &sim.hosts[HARD];
        let (k, to) = hard.kept.expect("a side socket won");
        assert_eq!(to, addr(EASY_WAN));
        assert_eq!(
            hard.side.iter().copied().collect::<Vec<_>>(),
            [k],
            "losers closed"
        );
        // Bounds: sockets, packets, and the time to a path.
        assert!(hard.side_peak <= c.sockets as usize);
        assert!(
            hard.birthday_out <= c.max_packets(Role::Hard),
            "seed {seed}"
        );
        assert!(
            sim.hosts[EASY].birthday_out <= c.max_packets(Role::Easy),
            "seed {seed}"
        );
        for host in &sim.hosts {
            let t = host.first_path_at.unwrap() - sim.start;
            assert!(
                t <= c.max_duration(Role::Easy),
                "seed {seed}: path after {t:?}"
            );
            assert!(host.birthday.as_ref().unwrap().is_over());
        }
    }
}

#[test]
fn the_winning_socket_carries_traffic_and_keepalives() {
    let mut sim = birthday_run(3);
    let (k, _) = sim.hosts[HARD].kept.unwrap();
    let before = sim.hosts[HARD].received[&Some(k)];
    sim.set_traffic(Some(ms(100)));
    sim.run_until(Duration::from_secs(30));
    assert!(sim.best(EASY).is_some() && sim.best(HARD).is_some());
    let after = sim.hosts[HARD].received[&Some(k)];
    assert!(after > before + 200, "{before} → {after}");
    // Idle: the keepalive pings go through the side socket too, and hold the path.
    sim.set_traffic(None);
    sim.run_until(Duration::from_secs(60));
    assert!(sim.best(EASY).is_some() && sim.best(HARD).is_some());
    assert_eq!(sim.hosts[EASY].paths.counters().paths_dropped, 0);
}

#[test]
fn a_plain_path_cancels_the_run_before_it_sends() {
    // The "easy" side is public after all (full cone / no NAT): the plain probes win, and
    // the birthday runs end without a packet or a socket.
    let mut sim = Sim::new(
        vec![Iface::public(EASY_WAN, 10)],
        vec![Iface::symmetric(HARD_LAN, 2, HARD_WAN, 15)],
    );
    sim.call_me_maybe(
        EASY,
        &[Candidate::new(addr(HARD_WAN), CandidateKind::Reflexive)],
    );
    sim.call_me_maybe(
        HARD,
        &[Candidate::new(addr(EASY_WAN), CandidateKind::Reflexive)],
    );
    sim.start_birthday(EASY, Role::Easy, HARD_WAN, 1);
    sim.start_birthday(HARD, Role::Hard, EASY_WAN, 2);
    sim.run_until(Duration::from_secs(6));
    assert!(sim.best(EASY).is_some() && sim.best(HARD).is_some());
    for h in [EASY, HARD] {
        assert_eq!(sim.hosts[h].birthday_out, 0, "host {h}");
        assert_eq!(sim.hosts[h].side_peak, 0, "host {h}");
    }
}
