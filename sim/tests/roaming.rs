//! Roaming under traffic (the lab's `roaming_to_a_new_lan_address`): a host moves to another
//! address, and its peer follows its authenticated packets; traffic stops for well under the
//! issue's 2 s, and the pair is direct again.

mod common;

use common::{longest_gap, stream};
use std::time::Duration;
use warren_sim::{seeds, Iface, PathKind, SiteKind, World};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn moving_to_a_new_lan_address_keeps_traffic_going() {
    for seed in seeds(1..=5) {
        let mut w = World::new(seed);
        let sa = w.add_site(SiteKind::PortRestricted, 1, "a");
        let b = w.add_site(SiteKind::PortRestricted, 1, "b").hosts[0];
        let a = sa.hosts[0];
        w.network(&[a, b], "roam");
        assert!(w.run_until(Duration::from_secs(5), |w| w.path(a, b) == PathKind::Direct));
        stream(&mut w, b, a, ms(50), Duration::from_secs(2));
        // A takes another address on its LAN: its router gives it another public port, the
        // old mapping still in place.
        let mut moved = w.fabric.hosts[a][0].clone();
        moved.ip = match w.fabric.hosts[a][0].ip {
            std::net::IpAddr::V4(v4) => {
                let o = v4.octets();
                std::net::IpAddr::V4(std::net::Ipv4Addr::new(o[0], o[1], o[2], 50))
            }
            v6 => v6,
        };
        let at = w.now;
        w.roam(a, vec![moved]);
        // Both directions: B's echoes find A at its new port, A's replies leave from it.
        let replies = stream(&mut w, b, a, ms(50), Duration::from_secs(8));
        let gap = longest_gap(&replies, at, w.now);
        assert!(
            gap < Duration::from_secs(2),
            "seed {seed}: traffic stopped for {gap:?}"
        );
        assert_eq!(
            (w.path(a, b), w.path(b, a)),
            (PathKind::Direct, PathKind::Direct),
            "seed {seed}"
        );
    }
}

#[test]
fn moving_to_another_network_keeps_traffic_going() {
    // From a port-restricted home to a full-cone café, under another public address.
    for seed in seeds(1..=5) {
        let mut w = World::new(seed);
        let home = w.add_site(SiteKind::PortRestricted, 1, "home");
        let cafe = w.add_site(SiteKind::FullCone, 0, "cafe");
        let b = w.add_site(SiteKind::PortRestricted, 1, "b").hosts[0];
        let a = home.hosts[0];
        w.network(&[a, b], "roam");
        assert!(w.run_until(Duration::from_secs(5), |w| w.path(a, b) == PathKind::Direct));
        stream(&mut w, b, a, ms(50), Duration::from_secs(2));
        let at = w.now;
        let iface = Iface {
            seg: cafe.lan.unwrap(),
            ip: "192.168.200.10".parse().unwrap(),
            gateway: cafe.router,
            latency: ms(1),
            up: true,
        };
        w.roam(a, vec![iface]);
        let replies = stream(&mut w, b, a, ms(50), Duration::from_secs(10));
        let gap = longest_gap(&replies, at, w.now);
        assert!(
            gap < Duration::from_secs(2),
            "seed {seed}: traffic stopped for {gap:?}"
        );
        assert_eq!(
            (w.path(a, b), w.path(b, a)),
            (PathKind::Direct, PathKind::Direct),
            "seed {seed}"
        );
        // B's path leads to the café now.
        let ep = w.host(b).node.peer_status(w.now)[0].endpoint.unwrap();
        assert_eq!(ep.ip(), cafe.public_ip, "seed {seed}");
    }
}
