//! A standalone relay: nodes come in by their tickets alone and reach each other only where
//! their tickets share a network.

use super::*;
use crate::testutil::key;
use warren_proto::relay::{write_send_header, write_ticket_ping, SEND_HEADER_LEN};
use warren_proto::relay_ticket::network_tag;

const SECRET: [u8; 32] = [9; 32];
const T0: u64 = 1_800_000_000;

fn addr(last: u8) -> SocketAddr {
    SocketAddr::from(([203, 0, 113, last], 4000 + u16::from(last)))
}

fn ticket(node: u32, serial: u64, expires: u64, networks: &[&str]) -> Ticket {
    Ticket {
        key: key(node),
        token: [node as u8; 16],
        serial,
        expires,
        tags: networks.iter().map(|n| network_tag(n)).collect(),
    }
}

fn ticket_ping(t: &Ticket, secret: &[u8; 32]) -> Vec<u8> {
    let sealed = t.seal(secret);
    let mut b = vec![0; 1024];
    let n = write_ticket_ping(&mut b, &t.token, [1; 8], &sealed).unwrap();
    b.truncate(n);
    b
}

fn send(to: u32) -> Vec<u8> {
    let mut b = vec![0; SEND_HEADER_LEN + 3];
    write_send_header(&mut b, &key(to));
    b[SEND_HEADER_LEN..].copy_from_slice(b"wg!");
    b
}

fn never(_: &NodeKey, _: &NodeKey) -> bool {
    panic!("a standalone relay has no registry to ask")
}

fn input(r: &mut Relay, from: SocketAddr, d: &[u8]) -> Option<SocketAddr> {
    let mut out = [0u8; 2048];
    r.handle_datagram(Instant::now(), from, d, never, &mut out)
        .map(|t| t.to)
}

/// A ping from `from`, and the Register its challenge asks for, as a node holding `token`
/// sends them; where the last reply went.
fn ping_in(r: &mut Relay, from: SocketAddr, d: &[u8], token: &RelayToken) -> Option<SocketAddr> {
    let mut out = [0u8; 2048];
    let t = r.handle_datagram(Instant::now(), from, d, never, &mut out)?;
    let Ok(RelayFrame::Challenge { tx, cookie }) = relay::parse(&out[..t.len]) else {
        return Some(t.to);
    };
    let mut b = [0u8; relay::REGISTER_LEN];
    relay::write_register(&mut b, token, tx, &cookie);
    input(r, from, &b)
}

#[test]
fn tickets_admit_nodes_and_shared_networks_decide_who_reaches_whom() {
    let mut r = Relay::standalone(RelayConfig::default(), SECRET, T0, [4; 32]);
    let (a, b, c) = (
        ticket(1, 10, T0 + 600, &["party", "home"]),
        ticket(2, 10, T0 + 600, &["party"]),
        ticket(3, 10, T0 + 600, &["work"]),
    );
    for (t, i) in [(&a, 1), (&b, 2), (&c, 3)] {
        assert_eq!(
            ping_in(&mut r, addr(i), &ticket_ping(t, &SECRET), &t.token),
            Some(addr(i))
        );
    }
    assert_eq!(r.len(), 3);
    assert_eq!(input(&mut r, addr(1), &send(2)), Some(addr(2)));
    assert_eq!(input(&mut r, addr(2), &send(1)), Some(addr(1)));
    assert_eq!(input(&mut r, addr(1), &send(3)), None);
    assert_eq!(input(&mut r, addr(3), &send(1)), None);
    assert_eq!(r.counters().no_shared_network, 2);
    assert_eq!(r.counters().forwarded, 2);

    // B leaves "party": its newer ticket takes effect, and its older one cannot be replayed.
    let b_left = ticket(2, 11, T0 + 600, &[]);
    assert!(ping_in(
        &mut r,
        addr(2),
        &ticket_ping(&b_left, &SECRET),
        &b_left.token
    )
    .is_some());
    assert_eq!(input(&mut r, addr(1), &send(2)), None);
    assert_eq!(
        ping_in(&mut r, addr(2), &ticket_ping(&b, &SECRET), &b.token),
        None
    );
    assert_eq!(r.counters().bad_ticket, 1);
    assert_eq!(input(&mut r, addr(1), &send(2)), None);
}

#[test]
fn forged_expired_and_mismatched_tickets_are_refused_and_expiry_forgets_nodes() {
    let mut r = Relay::standalone(RelayConfig::default(), SECRET, T0, [4; 32]);
    let a = ticket(1, 10, T0 + 60, &["party"]);
    assert_eq!(input(&mut r, addr(1), &ticket_ping(&a, &[8; 32])), None);
    let old = ticket(1, 10, T0, &["party"]);
    assert_eq!(
        ping_in(&mut r, addr(1), &ticket_ping(&old, &SECRET), &old.token),
        None
    );
    // The ticket names another token than the ping.
    let mut wrong = ticket_ping(&a, &SECRET);
    wrong[6] ^= 1;
    assert_eq!(input(&mut r, addr(1), &wrong), None);
    // A plain Ping carries no ticket: a standalone relay knows no token without one.
    let mut plain = [0u8; warren_proto::relay::PING_LEN];
    warren_proto::relay::write_ping(&mut plain, &a.token, [1; 8]);
    assert_eq!(input(&mut r, addr(1), &plain), None);
    assert_eq!(r.counters().bad_ticket, 3);
    assert_eq!(r.counters().unknown_token, 1);
    assert!(r.is_empty());

    let b = ticket(2, 10, T0 + 120, &["party"]);
    assert!(ping_in(&mut r, addr(1), &ticket_ping(&a, &SECRET), &a.token).is_some());
    assert!(ping_in(&mut r, addr(2), &ticket_ping(&b, &SECRET), &b.token).is_some());
    // Once admitted, plain pings keep the registration (and are answered).
    assert_eq!(input(&mut r, addr(1), &plain), Some(addr(1)));
    assert_eq!(input(&mut r, addr(1), &send(2)), Some(addr(2)));
    r.set_unix_time(T0 + 60);
    assert_eq!(r.len(), 1, "A's ticket expired");
    assert_eq!(input(&mut r, addr(1), &send(2)), None);
    assert_eq!(input(&mut r, addr(2), &send(1)), None);
    r.set_unix_time(T0 + 120);
    assert!(r.is_empty());
}

#[test]
fn the_coordinators_relay_ignores_tickets() {
    let mut r = Relay::new(RelayConfig::default(), [4; 32]);
    let a = ticket(1, 10, T0 + 60, &["party"]);
    // Not admitted by a ticket: the coordinator did not give it the token.
    assert_eq!(
        ping_in(&mut r, addr(1), &ticket_ping(&a, &SECRET), &a.token),
        None
    );
    assert_eq!(r.counters().unknown_token, 1);
    r.add_node(a.key, a.token);
    assert_eq!(
        ping_in(&mut r, addr(1), &ticket_ping(&a, &[0; 32]), &a.token),
        Some(addr(1))
    );
}
