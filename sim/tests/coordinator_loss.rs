//! The coordinator goes away (its machine crashes, its relay with it): direct paths do not
//! depend on it and keep working; relayed traffic stops until it is back and the hosts have
//! reconnected (the lab's `coordinator_with_its_relay_down_under_relayed_transfer`, < 15 s);
//! every host reconnects on its own.

mod common;

use common::{first_after, longest_gap, stream};
use std::time::Duration;
use warren_daemon_core::control::client::MAX_BACKOFF;
use warren_sim::SiteKind::*;
use warren_sim::{seeds, PathKind, World};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn existing_paths_keep_working_while_the_coordinator_is_down() {
    let mut w = World::new(warren_sim::seed_or(1));
    let a = w.add_site(PortRestricted, 1, "a").hosts[0];
    let b = w.add_site(Symmetric, 1, "b").hosts[0];
    let c = w.add_site(DoubleNat, 1, "c").hosts[0];
    let hosts = [a, b, c];
    w.network(&hosts, "cl");
    let direct = |w: &World| {
        hosts.iter().all(|&x| {
            hosts
                .iter()
                .all(|&y| x == y || w.path(x, y) == PathKind::Direct)
        })
    };
    assert!(w.run_until(secs(10), direct));
    w.crash_coordinator();
    let at = w.now;
    // A minute without it: every pair keeps answering, on the same direct paths.
    let ab = stream(&mut w, a, b, ms(100), secs(30));
    let bc = stream(&mut w, b, c, ms(100), secs(30));
    assert!(longest_gap(&ab, at, at + secs(30)) < ms(300));
    assert!(longest_gap(&bc, at + secs(30), w.now) < ms(300));
    assert!(direct(&w));
    assert!(hosts.iter().all(|&h| !w.connected(h)), "they noticed");
    w.restart_coordinator();
    let back = w.now;
    let all = w.run_until(MAX_BACKOFF * 3 / 2 + secs(1), |w| {
        hosts.iter().all(|&h| w.connected(h))
    });
    assert!(all, "every host reconnects within its longest backoff");
    assert!(w.now - back <= MAX_BACKOFF * 3 / 2 + secs(1));
    assert!(direct(&w));
}

#[test]
fn relayed_traffic_returns_after_the_coordinator_restarts() {
    for seed in seeds(1..=5) {
        let mut w = World::new(seed);
        let sa = w.add_site(PortRestricted, 1, "a");
        let sb = w.add_site(PortRestricted, 1, "b");
        w.cut(sa.public_ip, sb.public_ip);
        let (a, b) = (sa.hosts[0], sb.hosts[0]);
        w.network(&[a, b], "cr");
        assert!(w.run_until(secs(5), |w| w.path(a, b) == PathKind::Relay));
        stream(&mut w, a, b, ms(50), secs(15));
        w.crash_coordinator();
        stream(&mut w, a, b, ms(50), secs(10));
        w.restart_coordinator();
        let restarted = w.now;
        let replies = stream(&mut w, a, b, ms(50), secs(20));
        let back = first_after(&replies, restarted).expect("relayed traffic back");
        assert!(
            back < secs(15),
            "seed {seed}: back {back:?} after the restart"
        );
    }
}
