use super::super::test_peers::{addr, coordinator_peer, key_of};
use super::super::*;

/// A node with one coordinator peer at a public address, its STUN run answered unless
/// `blocked` (its UDP gets nowhere).
fn node(now: &mut Instant, blocked: bool) -> Node {
    let mut n = Node::new([1; 32], [1; 16]);
    n.add_peer(coordinator_peer(2)).unwrap();
    n.set_relay(*now, Some((addr("198.51.100.9:7446"), [9; 16])));
    n.handle_call_me_maybe(*now, &key_of(2), &[], Some(addr("203.0.113.2:41820")), None);
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
