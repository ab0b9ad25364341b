//! The relay goes away under relayed traffic (the lab's `relay_down_under_relayed_transfer`):
//! traffic comes back within the 2 s of the relay's return, a direct pair does not
//! notice, and a relayed pair moves on to a direct path when one opens meanwhile.

mod common;

use common::{first_after, longest_gap, stream};
use std::time::Duration;
use warren_daemon_core::path::PathConfig;
use warren_sim::{seeds, HostId, PathKind, SiteKind, World};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Two port-restricted sites, in one network; their direct UDP cut when `cut`.
fn pair(seed: u64, cut: bool) -> (World, HostId, HostId, [std::net::IpAddr; 2]) {
    let mut w = World::new(seed);
    let sa = w.add_site(SiteKind::PortRestricted, 1, "a");
    let sb = w.add_site(SiteKind::PortRestricted, 1, "b");
    if cut {
        w.cut(sa.public_ip, sb.public_ip);
    }
    let (a, b) = (sa.hosts[0], sb.hosts[0]);
    w.network(&[a, b], "rl");
    let want = if cut {
        PathKind::Relay
    } else {
        PathKind::Direct
    };
    assert!(w.run_until(secs(5), |w| w.path(a, b) == want && w.path(b, a) == want));
    (w, a, b, [sa.public_ip, sb.public_ip])
}

#[test]
fn relayed_traffic_is_back_within_two_seconds_of_the_relays_return() {
    for seed in seeds(1..=5) {
        let (mut w, a, b, _) = pair(seed, true);
        stream(&mut w, a, b, ms(50), secs(3));
        w.set_relay_up(false);
        let gone = stream(&mut w, a, b, ms(50), secs(10));
        assert!(
            first_after(&gone, w.now - secs(9)).is_none(),
            "seed {seed}: nothing while it is down"
        );
        w.set_relay_up(true);
        let back_at = w.now;
        let replies = stream(&mut w, a, b, ms(50), secs(5));
        let back = first_after(&replies, back_at).expect("traffic back");
        assert!(
            back < secs(2),
            "seed {seed}: first reply {back:?} after the relay's return"
        );
        assert_eq!(w.path(a, b), PathKind::Relay, "seed {seed}");
    }
}

#[test]
fn a_direct_pair_does_not_notice_the_relay_going() {
    let (mut w, a, b, _) = pair(1, false);
    w.set_relay_up(false);
    let at = w.now;
    let replies = stream(&mut w, a, b, ms(50), secs(20));
    assert!(longest_gap(&replies, at, w.now) < ms(200));
    assert_eq!(
        (w.path(a, b), w.path(b, a)),
        (PathKind::Direct, PathKind::Direct)
    );
}

#[test]
fn with_the_relay_gone_traffic_moves_on_to_a_direct_path_when_one_opens() {
    let (mut w, a, b, _) = pair(1, true);
    stream(&mut w, a, b, ms(50), secs(2));
    w.set_relay_up(false);
    stream(&mut w, a, b, ms(50), secs(3));
    w.heal();
    let healed = w.now;
    let replies = stream(
        &mut w,
        a,
        b,
        ms(50),
        PathConfig::default().retry_interval + secs(3),
    );
    let back = first_after(&replies, healed).expect("a direct path");
    assert!(
        back <= PathConfig::default().retry_interval + secs(1),
        "{back:?}"
    );
    assert_eq!(
        (w.path(a, b), w.path(b, a)),
        (PathKind::Direct, PathKind::Direct)
    );
}
