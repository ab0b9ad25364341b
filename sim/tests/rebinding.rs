//! NAT rebinding under traffic (the lab's `nat_rebinding_mid_transfer`): a router forgets its
//! mappings and maps its host to a new port. The host notices once its path falls silent,
//! asks STUN where it is now, the coordinator passes that on, and the pair is direct again
//! with traffic stopped for well under the 2 s.

mod common;

use common::{longest_gap, stream};
use std::time::Duration;
use warren_daemon_core::node::RECHECK_INTERVAL;
use warren_daemon_core::path::PathConfig;
use warren_proto::datagram::DatagramKind;
use warren_sim::world::relay_addr;
use warren_sim::{seeds, PathKind, SiteKind, World};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn a_rebinding_mid_traffic_is_followed_within_two_seconds() {
    for seed in seeds(1..=5) {
        for kind in [SiteKind::PortRestricted, SiteKind::DoubleNat] {
            let mut w = World::new(seed);
            let sa = w.add_site(kind, 1, "a");
            let b = w.add_site(SiteKind::PortRestricted, 1, "b").hosts[0];
            let a = sa.hosts[0];
            w.network(&[a, b], "rb");
            assert!(w.run_until(Duration::from_secs(5), |w| w.path(a, b) == PathKind::Direct));
            stream(&mut w, a, b, ms(50), Duration::from_secs(2));
            // The outermost router forgets everything (for a double NAT: the carrier's).
            let router = sa.cgn.or(sa.router).unwrap();
            let at = w.now;
            w.rebind(router);
            let replies = stream(&mut w, a, b, ms(50), Duration::from_secs(10));
            let gap = longest_gap(&replies, at, w.now);
            assert!(
                gap < Duration::from_secs(2),
                "seed {seed} {kind:?}: traffic stopped for {gap:?}"
            );
            assert_eq!(
                (w.path(a, b), w.path(b, a)),
                (PathKind::Direct, PathKind::Direct),
                "seed {seed} {kind:?}"
            );
            assert!(
                w.host(a).node.mapping_rechecks() >= 1,
                "seed {seed} {kind:?}"
            );
        }
    }
}

/// A direct path that stops answering may mean that our own NAT mapping changed under us: once
/// the path is suspect the node asks STUN where it is seen from now and pings the relay from
/// its new port, long before the periodic STUN run and relay ping; at most once per
/// `RECHECK_INTERVAL`.
#[test]
fn a_silent_direct_path_makes_the_node_check_its_own_mapping() {
    let mut w = World::new(1);
    let sa = w.add_site(SiteKind::PortRestricted, 1, "a");
    let b = w.add_site(SiteKind::PortRestricted, 1, "b").hosts[0];
    let a = sa.hosts[0];
    w.network(&[a, b], "rc");
    assert!(w.run_until(Duration::from_secs(5), |w| w.path(a, b) == PathKind::Direct));
    stream(&mut w, a, b, ms(50), Duration::from_secs(8));
    assert_eq!(w.host(a).node.mapping_rechecks(), 0);
    w.trace();
    let at = w.now;
    w.rebind(sa.router.unwrap());
    stream(&mut w, a, b, ms(50), ms(1500));
    assert_eq!(w.host(a).node.mapping_rechecks(), 1, "once per interval");
    assert!(RECHECK_INTERVAL > ms(1500));
    let sent = w.sent.as_deref().unwrap();
    let from_a = |kind: DatagramKind| {
        sent.iter()
            .filter(move |s| s.host == a && s.kind == kind)
            .map(move |s| (s.at - at, s.dst))
    };
    // A run starts when the path became suspect: one request to each STUN server, and a ping
    // of the relay from the new port.
    let suspect = PathConfig::default().suspect_after;
    let stun: Vec<_> = from_a(DatagramKind::Stun).collect();
    assert_eq!(stun.len(), 2, "{stun:?}");
    for (t, _) in &stun {
        assert!(*t >= suspect && *t < suspect + ms(200), "STUN at {t:?}");
    }
    let relay = from_a(DatagramKind::Relay).find(|(_, d)| *d == relay_addr());
    assert_eq!(
        relay.map(|r| r.0),
        Some(stun[0].0),
        "the relay pinged with STUN"
    );
}
