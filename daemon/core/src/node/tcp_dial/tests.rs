use super::super::test_peers::{addr, coordinator_peer, key_of, relayed_frames};
use super::super::*;

const RELAY: &str = "198.51.100.9:7446";

/// Node `me` with one coordinator peer `peer` at the public address `peer_public`, its STUN
/// run answered unless `blocked` (its UDP gets nowhere).
fn node_of(now: &mut Instant, me: u8, peer: u8, peer_public: &str, blocked: bool) -> Node {
    let mut n = Node::new([me; 32], [me; 16]);
    n.add_peer(coordinator_peer(peer)).unwrap();
    n.set_relay(*now, Some((addr(RELAY), [9; 16])));
    n.handle_call_me_maybe(*now, &key_of(peer), &[], Some(addr(peer_public)), None);
    let servers = [addr("198.51.100.9:7444"), addr("198.51.100.9:7445")];
    n.start_discovery(*now, servers);
    let mut out = vec![0u8; 2048];
    let end = *now + Duration::from_secs(20);
    while *now < end && n.discovery.result().is_none() {
        *now += Duration::from_millis(100);
        n.handle_timeout(*now);
        while let Some(t) = n.poll_transmit(&mut out) {
            if blocked || !servers.contains(&t.dst) {
                continue;
            }
            let request = out[..t.len].to_vec();
            let seen = addr("203.0.113.1:40000");
            let answer =
                crate::stun::tests::respond(&request, seen, crate::stun::tests::Reply::XorMapped);
            n.handle_datagram(*now, t.dst, &answer, &mut vec![0u8; 2048]);
        }
    }
    assert!(n.discovery.result().is_some(), "the STUN run ended");
    n
}

fn node(now: &mut Instant, blocked: bool) -> Node {
    node_of(now, 1, 2, "203.0.113.2:41820", blocked)
}

/// The disco messages `n` sends through the relay, as the relay would deliver them.
fn relayed(n: &mut Node) -> Vec<Vec<u8>> {
    relayed_frames(n, addr(RELAY))
}

/// A host whose UDP gets nowhere dials its relayed peers' public addresses over TCP, each at
/// most once per REDIAL_AFTER; a host whose STUN answered does not.
#[test]
fn only_a_udp_blocked_host_dials_and_not_too_often() {
    let mut now = Instant::now();
    let mut n = node(&mut now, true);
    assert!(n.udp_blocked());
    assert_eq!(
        n.poll_tcp_dials(now),
        vec![(key_of(2), addr("203.0.113.2:41820"))]
    );
    assert!(n.poll_tcp_dials(now + Duration::from_secs(1)).is_empty());
    assert_eq!(n.poll_tcp_dials(now + REDIAL_AFTER).len(), 1);

    let mut now = Instant::now();
    let mut open = node(&mut now, false);
    assert!(!open.udp_blocked());
    assert!(open.poll_tcp_dials(now).is_empty());
}

/// A peer whose router maps its TCP listen port to another public port than its UDP one is
/// dialed there too; a mapping withdrawn is not dialed any more.
#[test]
fn a_peers_tcp_port_mapping_is_dialed() {
    let mut now = Instant::now();
    let mut n = node(&mut now, true);
    let mapped = addr("203.0.113.2:50123");
    n.set_peer_mapped_tcp(&key_of(2), Some(mapped));
    n.set_peer_mapped_tcp(&key_of(7), Some(addr("192.0.2.1:1"))); // not a peer: ignored
    let dials = n.poll_tcp_dials(now);
    assert!(dials.contains(&(key_of(2), mapped)), "{dials:?}");
    assert!(dials.contains(&(key_of(2), addr("203.0.113.2:41820"))));
    assert_eq!(dials.len(), 2);
    n.set_peer_mapped_tcp(&key_of(2), None);
    assert_eq!(
        n.poll_tcp_dials(now + REDIAL_AFTER),
        vec![(key_of(2), addr("203.0.113.2:41820"))]
    );
}

/// Behind two NATs a simultaneous open needs both SYNs at once: the UDP-blocked host asks the
/// peer through the relay as it dials, and the peer (whose UDP works) dials back at the
/// blocked host's public address, as the coordinator gave it, at once and once.
#[test]
fn the_peer_is_asked_to_dial_back_and_does_so_once() {
    let mut now = Instant::now();
    let mut a = node_of(&mut now, 1, 2, "203.0.113.2:41820", true);
    let mut b = node_of(&mut now, 2, 1, "203.0.113.1:41820", false);
    assert!(b.poll_tcp_dials(now).is_empty(), "nobody asked yet");
    while a.poll_transmit(&mut vec![0u8; 2048]).is_some() {}
    assert_eq!(a.poll_tcp_dials(now).len(), 1);
    let asks = relayed(&mut a);
    assert!(!asks.is_empty(), "the ask goes through the relay");
    let mut out = vec![0u8; 2048];
    for frame in &asks {
        b.handle_datagram(now, addr(RELAY), frame, &mut out);
    }
    assert_eq!(
        b.poll_tcp_dials(now + Duration::from_millis(250)),
        vec![(key_of(1), addr("203.0.113.1:41820"))],
        "B dials A's public address back"
    );
    assert!(
        relayed(&mut b).is_empty(),
        "the answering side asks nothing back"
    );
    // Asked again at once (a peer that floods asks): B waits out its 30 s.
    for frame in &asks {
        b.handle_datagram(now, addr(RELAY), frame, &mut out);
    }
    assert!(b.poll_tcp_dials(now + Duration::from_secs(1)).is_empty());
    assert!(
        b.poll_tcp_dials(now + REDIAL_AFTER).is_empty(),
        "an ask older than ANSWER_WITHIN is dropped"
    );
}

/// An ask that comes a little before the peer is due (the two sides' 30 s started a relay
/// trip apart) is answered when it is due, not lost.
#[test]
fn an_ask_just_before_the_peer_is_due_is_answered_when_due() {
    let mut now = Instant::now();
    let mut a = node_of(&mut now, 1, 2, "203.0.113.2:41820", true);
    let mut b = node_of(&mut now, 2, 1, "203.0.113.1:41820", false);
    while a.poll_transmit(&mut vec![0u8; 2048]).is_some() {}
    let mut out = vec![0u8; 2048];
    let t0 = now;
    a.poll_tcp_dials(t0);
    for frame in relayed(&mut a) {
        b.handle_datagram(t0, addr(RELAY), &frame, &mut out);
    }
    let answered = t0 + Duration::from_millis(200);
    assert_eq!(b.poll_tcp_dials(answered).len(), 1);
    // A's next round, 30 s after its first: it reaches B 100 ms before B is due again.
    let t1 = t0 + REDIAL_AFTER;
    assert_eq!(a.poll_tcp_dials(t1).len(), 1);
    a.handle_timeout(t1);
    b.handle_timeout(t1 + Duration::from_millis(100));
    for frame in relayed(&mut a) {
        b.handle_datagram(
            t1 + Duration::from_millis(100),
            addr(RELAY),
            &frame,
            &mut out,
        );
    }
    assert!(b.poll_tcp_dials(t1 + Duration::from_millis(150)).is_empty());
    assert_eq!(
        b.poll_tcp_dials(answered + REDIAL_AFTER),
        vec![(key_of(1), addr("203.0.113.1:41820"))]
    );
}

/// A peer the coordinator did not introduce (no public address from it) is never dialed,
/// asked or not.
#[test]
fn a_peer_without_a_public_address_from_the_coordinator_is_not_dialed() {
    let mut now = Instant::now();
    let mut n = Node::new([1; 32], [1; 16]);
    n.add_peer(coordinator_peer(2)).unwrap();
    n.set_relay(now, Some((addr(RELAY), [9; 16])));
    let id = n.peer_id(&key_of(2)).unwrap();
    n.tcp_dial_requested(now, id);
    now += Duration::from_millis(100);
    assert!(n.poll_tcp_dials(now).is_empty());
}

/// The connected stream is probed as a candidate at once: a ping leaves for its address.
#[test]
fn a_connected_stream_is_probed_as_a_path() {
    let mut now = Instant::now();
    let mut n = node(&mut now, true);
    let link = addr("127.0.0.1:50001");
    assert!(n.tcp_link_up(now, &key_of(2), link));
    assert!(!n.tcp_link_up(now, &key_of(7), link), "not a peer");
    let mut out = vec![0u8; 2048];
    let mut to_link = 0;
    while let Some(t) = n.poll_transmit(&mut out) {
        if t.dst == link {
            to_link += 1;
        }
    }
    assert!(to_link >= 1, "a probe goes to the stream's address");
}
