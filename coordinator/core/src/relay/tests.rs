use super::*;
use crate::testutil::key;
use warren_proto::relay::{write_ping, write_send_header, PING_LEN, SEND_HEADER_LEN};

const A: u32 = 1;
const B: u32 = 2;
const C: u32 = 3;
const BUF: usize = 2048;

fn addr(last: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([203, 0, 113, last], port))
}

fn token(i: u8) -> RelayToken {
    [i; 16]
}

fn ping(token: &RelayToken, tx: u8) -> Vec<u8> {
    let mut b = vec![0; PING_LEN];
    write_ping(&mut b, token, [tx; 8]);
    b
}

fn send_to_key(to: &NodeKey, payload: &[u8]) -> Vec<u8> {
    let mut b = vec![0; SEND_HEADER_LEN + payload.len()];
    write_send_header(&mut b, to);
    b[SEND_HEADER_LEN..].copy_from_slice(payload);
    b
}

fn send(to: u32, payload: &[u8]) -> Vec<u8> {
    send_to_key(&key(to), payload)
}

/// A key other than B's with B's key id.
fn b_twin() -> NodeKey {
    let mut k = key(B);
    k.0[31] = 1;
    assert_eq!(relay::key_id(&k), relay::key_id(&key(B)));
    k
}

fn a_and_b_share(a: &NodeKey, b: &NodeKey) -> bool {
    let ab = [key(A), key(B)];
    ab.contains(a) && ab.contains(b)
}

/// A relay with nodes A, B and C online (tokens 1, 2, 3) where A and B share a network
/// and C shares none; A and B have pinged from their addresses, C has not.
struct Harness {
    relay: Relay,
    now: Instant,
    out: [u8; BUF],
    shares: fn(&NodeKey, &NodeKey) -> bool,
}

impl Harness {
    fn new(config: RelayConfig) -> Self {
        let mut h = Self {
            relay: Relay::new(config, [0x5e; 32]),
            now: Instant::now(),
            out: [0; BUF],
            shares: a_and_b_share,
        };
        for i in [A, B, C] {
            h.relay.add_node(key(i), token(i as u8));
        }
        assert!(h.ping_in(addr(1, 1000), &token(1), 0).is_some());
        assert!(h.ping_in(addr(2, 2000), &token(2), 0).is_some());
        h
    }

    /// A node's ping from `from`, and the Register its challenge asks for: the node's
    /// address is then `from`. The last reply (a Pong), if any.
    fn ping_in(&mut self, from: SocketAddr, token: &RelayToken, tx: u8) -> Option<Vec<u8>> {
        let reply = self.input(from, &ping(token, tx))?.to_vec();
        let Ok(RelayFrame::Challenge { tx, cookie }) = relay::parse(&reply) else {
            return Some(reply);
        };
        let mut b = vec![0; relay::REGISTER_LEN];
        relay::write_register(&mut b, token, tx, &cookie);
        self.input(from, &b).map(|d| d.to_vec())
    }

    fn input(&mut self, from: SocketAddr, datagram: &[u8]) -> Option<&[u8]> {
        self.input_to(from, datagram).map(|(_, d)| d)
    }

    fn input_to(&mut self, from: SocketAddr, datagram: &[u8]) -> Option<(SocketAddr, &[u8])> {
        let t = self
            .relay
            .handle_datagram(self.now, from, datagram, self.shares, &mut self.out)?;
        check_invariants(&self.relay);
        Some((t.to, &self.out[..t.len]))
    }
}

fn check_invariants(r: &Relay) {
    assert_eq!(r.nodes.len(), r.by_token.len());
    for (id, key) in &r.by_token {
        assert_eq!(&relay::token_id(&r.nodes[key].token), id);
    }
    assert_eq!(
        r.by_addr.len(),
        r.nodes.values().filter(|n| n.addr.is_some()).count()
    );
    for (addr, key) in &r.by_addr {
        assert_eq!(r.nodes[key].addr, Some(*addr));
    }
}

fn payload_of(d: &[u8]) -> &[u8] {
    match relay::parse(d) {
        Ok(RelayFrame::Deliver { payload }) => payload,
        other => panic!("expected a Deliver, got {other:?}"),
    }
}

fn register_frame(token: &RelayToken, reply: &[u8]) -> Vec<u8> {
    let Ok(RelayFrame::Challenge { tx, cookie }) = relay::parse(reply) else {
        panic!("a challenge: {:?}", relay::parse(reply));
    };
    let mut b = vec![0; relay::REGISTER_LEN];
    relay::write_register(&mut b, token, tx, &cookie);
    b
}

#[test]
fn a_ping_from_a_new_address_is_challenged_and_the_register_moves_it() {
    let mut h = Harness::new(RelayConfig::default());
    assert_eq!(h.relay.address_of(&key(C)), None);
    let (to, reply) = h.input_to(addr(9, 9000), &ping(&token(3), 7)).unwrap();
    assert_eq!(to, addr(9, 9000));
    assert!(reply.len() <= PING_LEN, "no amplification");
    let register = register_frame(&token(3), reply);
    assert_eq!(
        h.relay.address_of(&key(C)),
        None,
        "a ping alone moves nothing"
    );
    let (to, pong) = h.input_to(addr(9, 9000), &register).unwrap();
    assert_eq!(to, addr(9, 9000));
    assert_eq!(relay::parse(pong), Ok(RelayFrame::Pong { tx: [7; 8] }));
    assert_eq!(h.relay.address_of(&key(C)), Some(addr(9, 9000)));
    assert_eq!(h.relay.by_addr.get(&addr(9, 9000)), Some(&key(C)));
    let c = h.relay.counters();
    assert_eq!((c.pongs, c.address_changes, c.challenges), (3, 3, 3));
    // From its address a ping is a keepalive: a pong, no challenge, no change.
    let pong = h.input(addr(9, 9000), &ping(&token(3), 8)).unwrap();
    assert_eq!(relay::parse(pong), Ok(RelayFrame::Pong { tx: [8; 8] }));
    let c = h.relay.counters();
    assert_eq!((c.address_changes, c.challenges), (3, 3));
    assert_eq!(h.relay.by_addr.len(), 3);
}

#[test]
fn what_an_observer_saw_cannot_take_a_nodes_address() {
    let mut h = Harness::new(RelayConfig::default());
    // B moves to a new port; someone on the path records its ping and register.
    let moved = addr(2, 2222);
    let ping_b = ping(&token(2), 5);
    let reply = h.input(moved, &ping_b).unwrap().to_vec();
    let register = register_frame(&token(2), &reply);
    assert!(h.input(moved, &register).is_some());
    assert_eq!(h.relay.address_of(&key(B)), Some(moved));
    // Replayed from the observer's address: a challenge for that address, and the
    // recorded register does not answer it.
    let observer = addr(66, 6666);
    let challenge = h.input(observer, &ping_b).unwrap().to_vec();
    assert!(matches!(
        relay::parse(&challenge),
        Ok(RelayFrame::Challenge { .. })
    ));
    assert!(h.input(observer, &register).is_none());
    // Nor does a register for the observer's own cookie without the token.
    let forged = register_frame(&token(99), &challenge);
    let mut with_b_id = forged.clone();
    with_b_id[6..14].copy_from_slice(&relay::token_id(&token(2)));
    assert!(h.input(observer, &with_b_id).is_none());
    assert_eq!(h.relay.counters().bad_proof, 2);
    assert_eq!(h.relay.address_of(&key(B)), Some(moved));
    assert!(
        h.input(observer, &send(A, b"x")).is_none(),
        "not registered"
    );
    // A cookie outlives its epoch by one more, no longer.
    h.now += COOKIE_EPOCH * 2;
    let reply = h.input(addr(2, 3333), &ping_b).unwrap().to_vec();
    let late = register_frame(&token(2), &reply);
    h.now += COOKIE_EPOCH * 2;
    assert!(h.input(addr(2, 3333), &late).is_none(), "a stale cookie");
    assert_eq!(h.relay.address_of(&key(B)), Some(moved));
}

#[test]
fn forwards_between_nodes_that_share_a_network() {
    let mut h = Harness::new(RelayConfig::default());
    let (to, d) = h
        .input_to(addr(1, 1000), &send(B, b"wireguard bytes"))
        .unwrap();
    assert_eq!(to, addr(2, 2000));
    assert_eq!(d.len(), DELIVER_HEADER_LEN + 15);
    assert_eq!(payload_of(d), b"wireguard bytes");
    // And back.
    let (to, d) = h.input_to(addr(2, 2000), &send(A, b"reply")).unwrap();
    assert_eq!(to, addr(1, 1000));
    assert_eq!(payload_of(d), b"reply");
    let c = h.relay.counters();
    assert_eq!(c.forwarded, 2);
    assert_eq!(c.forwarded_bytes, (2 * DELIVER_HEADER_LEN + 20) as u64);
}

#[test]
fn a_send_from_an_unregistered_address_is_dropped() {
    let mut h = Harness::new(RelayConfig::default());
    // A stranger, A's IP from another port, and C (online, but it has not pinged).
    for from in [addr(7, 7), addr(1, 1001), addr(3, 3000)] {
        assert!(h.input(from, &send(B, b"x")).is_none());
    }
    let c = h.relay.counters();
    assert_eq!((c.unregistered_source, c.forwarded), (3, 0));
    // A Send teaches no address: only a Ping registers one.
    assert_eq!(h.relay.address_of(&key(C)), None);
    assert_eq!(h.relay.by_addr.len(), 2);
}

#[test]
fn refuses_without_a_shared_network() {
    let mut h = Harness::new(RelayConfig::default());
    h.ping_in(addr(3, 3000), &token(3), 0).unwrap();
    assert!(h.input(addr(1, 1000), &send(C, b"x")).is_none());
    assert!(h.input(addr(3, 3000), &send(A, b"x")).is_none());
    // Not even to itself, whatever the caller says.
    h.shares = |_, _| true;
    assert!(h.input(addr(1, 1000), &send(A, b"x")).is_none());
    let c = h.relay.counters();
    assert_eq!((c.no_shared_network, c.forwarded), (3, 0));
}

#[test]
fn shares_is_asked_only_for_otherwise_deliverable_sends() {
    let mut h = Harness::new(RelayConfig::default());
    h.relay.add_node(b_twin(), token(4));
    let mut asked = 0;
    for (from, d) in [
        (addr(7, 7), send(B, b"x")),         // unregistered source
        (addr(1, 1000), send(99, b"x")),     // unknown destination
        (addr(1, 1000), send(B, b"x")),      // B's key id is ambiguous
        (addr(1, 1000), send(C, b"x")),      // C has no address yet
        (addr(1, 1000), ping(&token(1), 0)), // not a Send
        (addr(1, 1000), ping(&token(9), 0)), // unknown token
    ] {
        h.relay.handle_datagram(
            h.now,
            from,
            &d,
            |_, _| {
                asked += 1;
                true
            },
            &mut h.out,
        );
    }
    assert_eq!(asked, 0);
    let c = h.relay.counters();
    assert_eq!(
        (
            c.unregistered_source,
            c.unknown_destination,
            c.ambiguous_destination,
            c.no_destination_address,
            c.unknown_token,
        ),
        (1, 1, 1, 1, 1)
    );
}

#[test]
fn unknown_tokens_and_offline_nodes_are_dropped() {
    let mut h = Harness::new(RelayConfig::default());
    assert!(h.ping_in(addr(7, 7), &token(42), 0).is_none());
    assert_eq!(h.relay.counters().unknown_token, 1);
    assert_eq!(h.relay.address_of(&key(A)), Some(addr(1, 1000)));
    // B's session ends: A can no longer reach it, B's address is no longer anyone's,
    // and B's token is dead.
    assert!(h.relay.remove_node(&key(B)));
    assert!(!h.relay.remove_node(&key(B)));
    check_invariants(&h.relay);
    assert!(h.input(addr(1, 1000), &send(B, b"x")).is_none());
    assert!(h.input(addr(2, 2000), &send(A, b"x")).is_none());
    assert!(h.ping_in(addr(2, 2000), &token(2), 0).is_none());
    let c = h.relay.counters();
    assert_eq!(
        (
            c.unknown_destination,
            c.unregistered_source,
            c.unknown_token
        ),
        (1, 1, 2)
    );
    assert_eq!(h.relay.len(), 2);
    assert_eq!(h.relay.by_addr.len(), 1);
}

#[test]
fn a_reconnect_kills_the_old_token_and_the_old_sessions_end_removes_nothing() {
    let mut h = Harness::new(RelayConfig::default());
    h.relay.add_node(key(B), token(20));
    check_invariants(&h.relay);
    assert_eq!(h.relay.len(), 3);
    // The old token is dead, and the address waits for the new session's first Ping:
    // B can neither be reached nor send until then.
    assert!(h.ping_in(addr(2, 2000), &token(2), 0).is_none());
    assert_eq!(h.relay.address_of(&key(B)), None);
    assert!(h.input(addr(1, 1000), &send(B, b"x")).is_none());
    assert!(h.input(addr(2, 2000), &send(A, b"x")).is_none());
    let c = h.relay.counters();
    assert_eq!((c.no_destination_address, c.unregistered_source), (1, 1));
    h.ping_in(addr(2, 2001), &token(20), 0).unwrap();
    // The old connection ends late: its token is no longer B's, so B stays.
    assert!(!h.relay.remove_token(&token(2)));
    let (to, _) = h.input_to(addr(1, 1000), &send(B, b"x")).unwrap();
    assert_eq!(to, addr(2, 2001));
    assert!(h.input(addr(2, 2001), &send(A, b"x")).is_some());
    // The new session's end removes B and its address.
    assert!(h.relay.remove_token(&token(20)));
    check_invariants(&h.relay);
    assert!(h.input(addr(1, 1000), &send(B, b"x")).is_none());
    assert!(h.input(addr(2, 2001), &send(A, b"x")).is_none());
    assert_eq!(h.relay.len(), 2);
    assert_eq!(h.relay.by_token.len(), 2);
    assert_eq!(h.relay.by_addr.len(), 1);
}

#[test]
fn a_colliding_token_moves_rather_than_being_shared() {
    let mut h = Harness::new(RelayConfig::default());
    h.relay.add_node(key(C), token(1));
    check_invariants(&h.relay);
    assert_eq!(h.relay.len(), 2);
    assert_eq!(h.relay.by_token.len(), 2);
    // A went with its address.
    assert!(h.input(addr(1, 1000), &send(B, b"x")).is_none());
    assert!(!h.relay.remove_node(&key(A)));
    assert!(h.relay.remove_token(&token(1)));
    assert_eq!(h.relay.len(), 1);
    check_invariants(&h.relay);
}

#[test]
fn a_roaming_node_is_followed_by_its_next_ping() {
    let mut h = Harness::new(RelayConfig::default());
    // B moves: its Ping from the new address replaces the old one.
    h.ping_in(addr(2, 5555), &token(2), 0).unwrap();
    assert_eq!(h.relay.address_of(&key(B)), Some(addr(2, 5555)));
    assert_eq!(h.relay.by_addr.len(), 2);
    let (to, _) = h.input_to(addr(1, 1000), &send(B, b"x")).unwrap();
    assert_eq!(to, addr(2, 5555));
    assert!(h.input(addr(2, 5555), &send(A, b"x")).is_some());
    // The old address is nobody's any more.
    assert!(h.input(addr(2, 2000), &send(A, b"x")).is_none());
    assert_eq!(h.relay.counters().unregistered_source, 1);
    // A Send from yet another address does not move it: only a Ping does.
    assert!(h.input(addr(2, 6666), &send(A, b"x")).is_none());
    assert_eq!(h.relay.address_of(&key(B)), Some(addr(2, 5555)));
    // Nor does a Ping with a dead token.
    assert!(h.ping_in(addr(2, 7777), &token(99), 0).is_none());
    assert_eq!(h.relay.address_of(&key(B)), Some(addr(2, 5555)));
    assert_eq!(h.relay.counters().address_changes, 3);
}

#[test]
fn an_address_belongs_to_the_node_that_pinged_from_it_last() {
    let mut h = Harness::new(RelayConfig::default());
    // C pings from the address B registered (say B left it and a NAT reused it).
    h.ping_in(addr(2, 2000), &token(3), 0).unwrap();
    assert_eq!(h.relay.address_of(&key(C)), Some(addr(2, 2000)));
    assert_eq!(h.relay.address_of(&key(B)), None);
    // Sends from there are C's now (and C shares nothing with A), and B is unreachable
    // until it pings again.
    assert!(h.input(addr(2, 2000), &send(A, b"x")).is_none());
    assert!(h.input(addr(1, 1000), &send(B, b"x")).is_none());
    let c = h.relay.counters();
    assert_eq!((c.no_shared_network, c.no_destination_address), (1, 1));
    h.ping_in(addr(2, 2001), &token(2), 0).unwrap();
    let (to, _) = h.input_to(addr(1, 1000), &send(B, b"x")).unwrap();
    assert_eq!(to, addr(2, 2001));
    assert_eq!(h.relay.by_addr.len(), 3);
}

#[test]
fn a_key_id_shared_by_two_live_nodes_is_not_forwarded_to() {
    let mut h = Harness::new(RelayConfig::default());
    h.shares = |a, b| a != b;
    let twin = b_twin();
    h.relay.add_node(twin, token(4));
    h.ping_in(addr(4, 4000), &token(4), 0).unwrap();
    assert!(h.input(addr(1, 1000), &send(B, b"x")).is_none());
    assert_eq!(h.relay.counters().ambiguous_destination, 1);
    // Both can still send: a sender is known by its address, not its id.
    assert!(h.input(addr(4, 4000), &send(A, b"x")).is_some());
    assert!(h.input(addr(2, 2000), &send(A, b"x")).is_some());
    // Once one of them is gone, the id is the other's again.
    assert!(h.relay.remove_node(&key(B)));
    let (to, _) = h.input_to(addr(1, 1000), &send(B, b"x")).unwrap();
    assert_eq!(to, addr(4, 4000));
    // Ids are prefixes: the neighbours on either side of an id do not match it.
    let mut below = key(B);
    below.0[7] = 0xFF;
    below.0[6] = 1;
    assert!(h.input(addr(1, 1000), &send_to_key(&below, b"x")).is_none());
    assert_eq!(h.relay.counters().unknown_destination, 1);
}

#[test]
fn rate_limit_kicks_in_and_refills_with_time() {
    let config = RelayConfig {
        rate_bytes_per_sec: 100_000,
        burst_bytes: 200_000,
        total_bytes_per_sec: None,
    };
    let mut h = Harness::new(config);
    let payload = [0u8; 1000 - DELIVER_HEADER_LEN];
    let frame = send(B, &payload);
    // 200 frames of 1000 bytes: the burst, then nothing.
    for i in 0..200 {
        assert!(h.input(addr(1, 1000), &frame).is_some(), "frame {i}");
    }
    assert!(h.input(addr(1, 1000), &frame).is_none());
    assert_eq!(h.relay.counters().rate_limited, 1);
    // Another sender has its own bucket.
    assert!(h.input(addr(2, 2000), &send(A, &payload)).is_some());
    // 10 ms at 100 kB/s is one frame, and only one.
    h.now += Duration::from_millis(10);
    assert!(h.input(addr(1, 1000), &frame).is_some());
    assert!(h.input(addr(1, 1000), &frame).is_none());
    // A steady 100 kB/s is never refused.
    for _ in 0..500 {
        h.now += Duration::from_millis(10);
        assert!(h.input(addr(1, 1000), &frame).is_some());
    }
    // Quiet time refills the whole burst, and no more.
    h.now += Duration::from_secs(5);
    for _ in 0..200 {
        assert!(h.input(addr(1, 1000), &frame).is_some());
    }
    assert!(h.input(addr(1, 1000), &frame).is_none());
    // Neither a reconnect nor a move refills it.
    h.relay.add_node(key(A), token(11));
    h.ping_in(addr(1, 1001), &token(11), 0).unwrap();
    assert!(h.input(addr(1, 1001), &frame).is_none());
    // Pings are never rate limited: the node stays reachable while it is throttled.
    assert!(h.ping_in(addr(1, 1001), &token(11), 1).is_some());
    assert_eq!(h.relay.counters().rate_limited, 4);
}

#[test]
fn a_bucket_smaller_than_a_datagram_still_passes_it() {
    let mut h = Harness::new(RelayConfig {
        rate_bytes_per_sec: 1,
        burst_bytes: 0,
        total_bytes_per_sec: None,
    });
    assert!(h.input(addr(1, 1000), &send(B, &[1; 1400])).is_some());
}

#[test]
fn a_zero_rate_is_no_limit_per_node_but_the_total_still_holds() {
    let mut h = Harness::new(RelayConfig {
        rate_bytes_per_sec: 0,
        burst_bytes: 0,
        total_bytes_per_sec: None,
    });
    // 100 MB in the same instant: far past any bucket a rate of 0 could be rounded to.
    let frame = send(B, &[1; 1000]);
    for i in 0..100_000 {
        assert!(h.input(addr(1, 1000), &frame).is_some(), "frame {i}");
    }
    assert_eq!(h.relay.counters().rate_limited, 0);
    let mut h = Harness::new(RelayConfig {
        rate_bytes_per_sec: 0,
        burst_bytes: 0,
        total_bytes_per_sec: Some(100_000),
    });
    let passed = (0..200)
        .filter(|_| h.input(addr(1, 1000), &frame).is_some())
        .count();
    assert!((90..=100).contains(&passed), "{passed} frames of ~1 kB");
    assert_eq!(h.relay.counters().total_rate_limited, 200 - passed as u64);
}

#[test]
fn a_total_rate_limits_all_senders_together() {
    let mut h = Harness::new(RelayConfig {
        total_bytes_per_sec: Some(100_000),
        ..RelayConfig::default()
    });
    let payload = [0u8; 1000 - DELIVER_HEADER_LEN];
    // A second's worth at once, shared by A and B however they take turns.
    let passed = (0..200)
        .filter(|i| {
            let (from, to) = if i % 2 == 0 {
                (addr(1, 1000), B)
            } else {
                (addr(2, 2000), A)
            };
            h.input(from, &send(to, &payload)).is_some()
        })
        .count();
    assert_eq!(passed, 100);
    assert_eq!(h.relay.counters().total_rate_limited, 100);
    assert_eq!(
        h.relay.counters().rate_limited,
        0,
        "each is far below its own"
    );
    h.now += Duration::from_millis(10);
    assert!(h.input(addr(2, 2000), &send(A, &payload)).is_some());
    assert!(h.input(addr(1, 1000), &send(B, &payload)).is_none());
}

#[test]
fn frames_only_the_relay_sends_are_dropped() {
    let mut h = Harness::new(RelayConfig::default());
    let mut d = [0u8; DELIVER_HEADER_LEN + 1];
    relay::write_deliver_header(&mut d);
    assert!(h.input(addr(1, 1000), &d).is_none());
    let mut p = [0u8; PONG_LEN];
    relay::write_pong(&mut p, [0; 8]);
    assert!(h.input(addr(1, 1000), &p).is_none());
    assert_eq!(h.relay.counters().unexpected, 2);
}

#[test]
fn a_small_output_buffer_drops_instead_of_panicking() {
    let mut h = Harness::new(RelayConfig::default());
    let mut small = [0u8; PONG_LEN - 1];
    let payload = [0u8; PONG_LEN - DELIVER_HEADER_LEN];
    let t = h.relay.handle_datagram(
        h.now,
        addr(1, 1000),
        &send(B, &payload),
        a_and_b_share,
        &mut small,
    );
    assert!(t.is_none());
    let t = h.relay.handle_datagram(
        h.now,
        addr(1, 1000),
        &ping(&token(1), 0),
        a_and_b_share,
        &mut small,
    );
    assert!(t.is_none());
    assert_eq!(h.relay.counters().too_large, 2);
}

#[test]
fn malformed_input_never_panics() {
    let mut h = Harness::new(RelayConfig::default());
    let good = [
        (addr(1, 1000), send(B, b"payload")),
        (addr(1, 1000), ping(&token(1), 3)),
        (addr(2, 2000), send(A, &[0xAB; 300])),
    ];
    // Every truncation of a good frame: forwarded, answered or counted, never a panic.
    for (from, frame) in &good {
        for len in 0..=frame.len() {
            h.input(*from, &frame[..len]);
        }
    }
    // A Send up to its bare header, a Ping short of its last byte.
    let c = h.relay.counters();
    assert_eq!(
        c.malformed,
        2 * (SEND_HEADER_LEN as u64 + 1) + PING_LEN as u64
    );
    assert_eq!(c.forwarded, 7 + 300);
    // Random bytes, bare and behind a valid prefix, with a live token or key id.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut d = [0u8; 400];
    for i in 0..50_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 400) as usize;
        for (k, b) in d[..len].iter_mut().enumerate() {
            *b = (x >> (k % 57)) as u8 ^ k as u8;
        }
        if i % 2 == 0 && len >= 6 {
            d[..4].copy_from_slice(b"WRNr");
            d[4] = relay::RELAY_VERSION;
            d[5] = (x >> 60) as u8 % 8;
            if len >= 14 && i % 4 == 0 {
                d[6..14].copy_from_slice(&relay::token_id(&token((i % 3) as u8 + 1)));
            } else if len >= 14 && i % 4 == 2 {
                d[6..14].copy_from_slice(&relay::key_id(&key(i % 3 + 1)));
            }
        }
        // Registers never pass by chance: half the noise comes from A's and B's addresses.
        let from = match x % 4 {
            0 => addr(1, 1000),
            1 => addr(2, 2000),
            _ => addr((x % 3) as u8 + 1, 1 + (x % 5) as u16),
        };
        if let Some(t) = h
            .relay
            .handle_datagram(h.now, from, &d[..len], |_, _| true, &mut h.out)
        {
            assert!(t.len <= len, "a reply never exceeds its request");
        }
    }
    let c = h.relay.counters();
    // The fuzzing reached every path, not only the parser's errors.
    assert!(
        c.forwarded > 307 + 100
            && c.pongs > 100
            && c.challenges > 100
            && c.bad_proof > 100
            && c.unregistered_source > 1000,
        "{c:?}"
    );
    check_invariants(&h.relay);
    // A source port of 0 cannot be answered.
    assert!(h.ping_in(addr(1, 0), &token(1), 0).is_none());
    check_invariants(&h.relay);
}
