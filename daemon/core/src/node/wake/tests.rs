use super::super::test_peers::{addr, coordinator_peer, key_of, relayed_frames};
use super::super::*;
use super::*;

const RELAY: &str = "198.51.100.9:7446";
const PC: Mac = Mac([0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]);

/// Node `me` with peer `peer`, reached through the coordinator's relay.
fn node(now: Instant, me: u8, peer: u8) -> Node {
    let mut n = Node::new([me; 32], [me; 16]);
    n.add_peer(coordinator_peer(peer)).unwrap();
    n.set_relay(now, Some((addr(RELAY), [9; 16])));
    n
}

/// What `from` sends through the relay, delivered to `to` as the relay would.
fn carry(from: &mut Node, to: &mut Node, now: Instant) {
    let mut out = vec![0u8; 2048];
    for f in relayed_frames(from, addr(RELAY)) {
        to.handle_datagram(now, addr(RELAY), &f, &mut out);
    }
}

#[test]
fn the_magic_packet_is_six_ff_then_the_mac_sixteen_times() {
    let p = magic_packet(PC);
    assert_eq!(p.len(), 102);
    assert_eq!(p[..6], [0xff; 6]);
    for i in 0..16 {
        assert_eq!(p[6 + 6 * i..12 + 6 * i], PC.0, "repetition {i}");
    }
}

/// A asks B through the relay; B's shell gets the MAC once per request, at most one per second
/// from A, and nothing for a request it could not authenticate.
#[test]
fn a_peer_wakes_a_mac_through_a_member_at_most_once_a_second() {
    let now = Instant::now();
    let mut a = node(now, 1, 2);
    let mut b = node(now, 2, 1);
    a.ask_wake(now, &key_of(2), PC).unwrap();
    carry(&mut a, &mut b, now);
    assert_eq!(b.take_wake(), Some(PC));
    assert_eq!(b.take_wake(), None, "once");

    // Pressed again at once, and a flood: all dropped until a second has passed.
    for i in 0..5 {
        let t = now + Duration::from_millis(100 * i);
        a.ask_wake(t, &key_of(2), PC).unwrap();
        carry(&mut a, &mut b, t);
    }
    assert_eq!(b.take_wake(), None);
    assert_eq!(b.wakes_dropped(), 5);
    let later = now + WAKE_EVERY;
    a.ask_wake(later, &key_of(2), PC).unwrap();
    carry(&mut a, &mut b, later);
    assert_eq!(b.take_wake(), Some(PC));

    // A node that is not B's peer (shares no network with it) cannot make B wake anything.
    let mut stranger = node(now, 3, 2);
    let t = later + WAKE_EVERY * 2;
    stranger.ask_wake(t, &key_of(2), PC).unwrap();
    carry(&mut stranger, &mut b, t);
    assert_eq!(b.take_wake(), None);

    // Nobody to ask: an unknown member, or the tunnel down.
    assert_eq!(a.ask_wake(t, &key_of(9), PC), Err(PingError::UnknownPeer));
}

/// A broadcast or multicast "MAC" (a modified or buggy peer) is refused by the member.
#[test]
fn a_member_refuses_group_addresses() {
    let now = Instant::now();
    let mut a = node(now, 1, 2);
    let mut b = node(now, 2, 1);
    for (i, mac) in [[0xff; 6], [0x01, 0, 0x5e, 0, 0, 0xfb], [0; 6]]
        .into_iter()
        .enumerate()
    {
        let t = now + WAKE_EVERY * (i as u32 + 1) * 2;
        a.ask_wake(t, &key_of(2), Mac(mac)).unwrap();
        carry(&mut a, &mut b, t);
        assert_eq!(b.take_wake(), None, "{mac:x?}");
    }
    assert_eq!(b.wakes_dropped(), 3);
}
