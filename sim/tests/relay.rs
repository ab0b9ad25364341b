//! Relay fallback and return, through the real relay core: a new peer is reached through the
//! relay at once; a direct path, once proven, takes over; when it dies the same session goes
//! back to the relay within the reply timeout, and returns to direct when the path does.

use std::time::Duration;
use warren_daemon_core::path::PathConfig;
use warren_proto::datagram::{DatagramKind, WireGuardKind};
use warren_proto::relay::{parse, RelayFrame};
use warren_sim::world::relay_addr;
use warren_sim::{HostId, PathKind, SiteKind, World};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Two port-restricted sites whose direct UDP is cut from the start.
fn cut_pair(seed: u64) -> (World, HostId, HostId, [std::net::IpAddr; 2]) {
    let mut w = World::new(seed);
    let sa = w.add_site(SiteKind::PortRestricted, 1, "a");
    let sb = w.add_site(SiteKind::PortRestricted, 1, "b");
    w.cut(sa.public_ip, sb.public_ip);
    let (a, b) = (sa.hosts[0], sb.hosts[0]);
    w.trace();
    w.network(&[a, b], "r");
    (w, a, b, [sa.public_ip, sb.public_ip])
}

fn handshakes_sent(w: &World) -> usize {
    w.sent
        .as_deref()
        .unwrap_or(&[])
        .iter()
        .filter(|s| {
            matches!(
                s.kind,
                DatagramKind::WireGuard(WireGuardKind::HandshakeInit)
            )
        })
        .count()
}

#[test]
fn a_new_peer_is_relayed_at_once_then_direct_wins_and_loses() {
    let (mut w, a, b, [ip_a, ip_b]) = cut_pair(1);
    // No direct path: the first echo goes through the relay, handshake included.
    let first = w
        .ping(a, b, Duration::from_millis(50), secs(2))
        .expect("a reply");
    assert!(first < Duration::from_millis(500), "{first:?}");
    assert_eq!(
        (w.path(a, b), w.path(b, a)),
        (PathKind::Relay, PathKind::Relay)
    );
    let st = w.host(a).node.peer_status(w.now).remove(0);
    assert_eq!(st.relay, Some(relay_addr()));
    assert!(st.online);
    assert_ne!(
        st.endpoint,
        Some(relay_addr()),
        "relayed packets move no endpoint"
    );
    let relayed = w.coordinator.relay.counters().forwarded;
    assert!(
        relayed >= 4,
        "initiation, response and the echoes: {relayed}"
    );
    // A person's ping goes over the relay and says so.
    let key_b = w.host(b).key();
    let tx = w.on_node(a, |n, now| n.ping(now, &key_b)).unwrap();
    w.run_for(secs(1));
    let (answer, kind) = w
        .host_mut(a)
        .node
        .take_ping_answer(&key_b, &tx)
        .expect("pong");
    assert_eq!((answer.from, kind), (relay_addr(), PathKind::Relay));

    // The cut heals: the next probe round proves the direct path and traffic moves off the
    // relay, in the same session.
    w.heal();
    let handshakes = handshakes_sent(&w);
    let retry = PathConfig::default().retry_interval;
    assert!(
        w.run_until(retry + secs(2), |w| w.path(a, b) == PathKind::Direct
            && w.path(b, a) == PathKind::Direct)
    );
    let forwarded = w.coordinator.relay.counters().forwarded;
    assert_eq!(w.echoes(a, b, 10, Duration::from_millis(100), secs(1)), 10);
    assert_eq!(
        w.coordinator.relay.counters().forwarded,
        forwarded,
        "straight to B"
    );

    // The direct path dies: within the reply timeout both are back on the relay, and the
    // same session carries on.
    w.cut(ip_a, ip_b);
    let cut = w.now;
    let back = w.run_until(secs(8), |w| {
        w.path(a, b) == PathKind::Relay && w.path(b, a) == PathKind::Relay
    });
    assert!(back, "{:?}/{:?}", w.path(a, b), w.path(b, a));
    let took = w.now - cut;
    let cfg = PathConfig::default();
    assert!(
        took <= cfg.keepalive_interval + cfg.reply_timeout,
        "{took:?}"
    );
    assert_eq!(w.echoes(a, b, 10, Duration::from_millis(100), secs(1)), 10);
    assert_eq!(
        handshakes_sent(&w),
        handshakes,
        "no new handshake: one session throughout"
    );
}

#[test]
fn relayed_traffic_moves_to_direct_under_load_within_a_second_of_the_way_opening() {
    // Traffic flows through the relay while the cut heals: the probe round that follows a
    // coordinator's call (here: B's endpoints change, a new STUN answer) moves it.
    let (mut w, a, b, _) = cut_pair(2);
    assert_eq!(w.echoes(a, b, 20, Duration::from_millis(50), secs(1)), 20);
    assert_eq!(w.path(a, b), PathKind::Relay);
    w.heal();
    let healed = w.now;
    // Echoes every 50 ms until both are direct.
    let mut seq = 9_000_000;
    while !(w.path(a, b) == PathKind::Direct && w.path(b, a) == PathKind::Direct) {
        assert!(
            w.now - healed < PathConfig::default().retry_interval + secs(2),
            "never direct"
        );
        w.send_echo(a, b, seq);
        seq += 1;
        w.run_for(Duration::from_millis(50));
    }
    // Nothing was lost on the way over: every echo since the heal answered.
    assert_eq!(w.echoes(a, b, 20, Duration::from_millis(50), secs(1)), 20);
}

/// A host that follows two coordinators has two relays; a peer is relayed through the relay
/// of the coordinator that brought it. Here the second "coordinator" is a relay address that
/// never answers: the node pings both, sends a peer of the first through the first, and
/// through the silent one when told the peer came from there.
#[test]
fn a_peer_is_relayed_through_the_relay_of_its_own_coordinator() {
    let (mut w, a, b, _) = cut_pair(3);
    assert!(w.ping(a, b, Duration::from_millis(50), secs(2)).is_some());
    let silent: std::net::SocketAddr = "198.51.100.77:7446".parse().unwrap();
    let key_b = w.host(b).key();
    w.on_node(a, |n, now| {
        n.set_relay_of(now, 2, Some((silent, [9; 16])));
        n.set_peer_relays(&key_b, vec![1]);
    });
    w.run_for(secs(1));
    // Registration pings, or B's traffic (Send frames), from A to the silent relay.
    let to_silent = |w: &World, sends: bool| {
        w.sent
            .as_deref()
            .unwrap()
            .iter()
            .filter(|s| s.host == a && s.dst == silent)
            .filter(|s| sends == matches!(parse(&s.bytes), Ok(RelayFrame::Send { .. })))
            .count()
    };
    assert!(
        to_silent(&w, false) > 0,
        "both relays get registration pings"
    );
    assert_eq!(w.echoes(a, b, 5, Duration::from_millis(100), secs(1)), 5);
    assert_eq!(to_silent(&w, true), 0, "nothing for B to the other relay");
    // Known through the second coordinator only: its relay carries B's traffic (and loses it).
    w.host_mut(a).node.set_peer_relays(&key_b, vec![2]);
    assert_eq!(w.echoes(a, b, 5, Duration::from_millis(100), secs(1)), 0);
    assert!(to_silent(&w, true) >= 5);
}
