//! The `Node`'s birthday runs toward several peers: a host behind a symmetric NAT with peers
//! behind cone NATs starts a run toward each at once, announces it to each peer, and tries a
//! run that found nothing again seconds later.

use super::super::test_peers::{addr, coordinator_peer, key_of};
use super::super::*;
use crate::stun::tests::{respond, Reply};
use std::time::Duration;
use warren_proto::datagram::{classify, DatagramKind};

const RELAY: &str = "198.51.100.9:7446";
const STUN: [&str; 2] = ["198.51.100.9:7444", "198.51.100.9:7445"];

/// A node whose STUN run found a symmetric NAT (each server saw another public port).
fn symmetric_node(now: Instant) -> Node {
    let mut n = Node::new([1; 32], [1; 16]);
    n.start_discovery(now, STUN.map(addr));
    let mut out = vec![0u8; 2048];
    let mut requests = Vec::new();
    while let Some(t) = n.poll_transmit(&mut out) {
        if classify(&out[..t.len]) == DatagramKind::Stun {
            requests.push((t.dst, out[..t.len].to_vec()));
        }
    }
    assert_eq!(requests.len(), 2, "one request per STUN server");
    for (i, (server, request)) in requests.iter().enumerate() {
        let seen = SocketAddr::new("203.0.113.1".parse().unwrap(), 40000 + i as u16);
        let answer = respond(request, seen, Reply::XorMapped);
        n.handle_datagram(now, *server, &answer, &mut out);
    }
    assert_eq!(
        n.discovery.result().map(|d| d.nat),
        Some(NatKind::Symmetric)
    );
    n
}

/// Peers behind endpoint-independent NATs, introduced by the coordinator.
fn introduce(n: &mut Node, now: Instant, seeds: &[u8]) {
    n.set_relay(now, Some((addr(RELAY), [9; 16])));
    for &seed in seeds {
        n.add_peer(coordinator_peer(seed)).unwrap();
        n.set_peer_nat(&key_of(seed), NatKind::EndpointIndependent);
        let reflexive = addr(&format!("203.0.113.{seed}:41641"));
        assert!(n.handle_call_me_maybe(now, &key_of(seed), &[], Some(reflexive), None));
    }
}

/// Runs `n` until `until`, opening every side socket asked for and dropping what is sent;
/// returns the runs whose sockets were asked for, in order, and when.
fn run_until(n: &mut Node, now: &mut Instant, until: Instant) -> Vec<(u32, Instant)> {
    let mut opened = Vec::new();
    let mut out = vec![0u8; 2048];
    while *now < until {
        *now += Duration::from_millis(10);
        n.handle_timeout(*now);
        loop {
            while n.poll_transmit(&mut out).is_some() {}
            while n.poll_side_transmit(&mut out).is_some() {}
            let mut asked = Vec::new();
            while let Some(e) = n.poll_side_event() {
                if let SideEvent::Open { run, count, .. } = e {
                    asked.push((run, count));
                }
            }
            if asked.is_empty() {
                break;
            }
            for (run, count) in asked {
                opened.push((run, *now));
                n.side_sockets_opened(*now, run, count);
            }
        }
    }
    opened
}

/// Three cone-NAT peers introduced together: three runs at once (each with its side
/// sockets), not one now and the next a minute later.
#[test]
fn runs_toward_several_peers_go_together() {
    let mut now = Instant::now();
    let start = now;
    let mut n = symmetric_node(now);
    introduce(&mut n, now, &[2, 3, 4]);
    let opened = run_until(&mut n, &mut now, start + Duration::from_secs(2));
    assert_eq!(
        opened.len(),
        3,
        "runs whose side sockets were opened: {opened:?}"
    );
    assert!(opened
        .iter()
        .all(|(_, t)| *t - start <= Duration::from_millis(1100)));
}

/// Every run this host starts on its own is announced to its peer (through the relay, as
/// there is no direct path yet), so that both sides probe at the same time.
#[test]
fn each_run_is_announced_to_its_peer_through_the_relay() {
    let now = Instant::now();
    let mut n = symmetric_node(now);
    introduce(&mut n, now, &[2, 3]);
    let mut out = vec![0u8; 2048];
    let mut announced = Vec::new();
    while let Some(t) = n.poll_transmit(&mut out) {
        if t.dst != addr(RELAY) {
            continue;
        }
        let Ok(warren_proto::relay::RelayFrame::Send { to, payload }) =
            warren_proto::relay::parse(&out[..t.len])
        else {
            continue;
        };
        for seed in [2u8, 3] {
            if to != warren_proto::relay::key_id(&key_of(seed)) {
                continue;
            }
            let opened = warren_proto::disco::open(payload, &[seed; 32], |k| *k == key_of(1));
            if let Ok((_, DiscoMsg::Birthday { .. })) = opened {
                announced.push(seed);
            }
        }
    }
    announced.sort();
    assert_eq!(announced, [2, 3]);
}

/// A run that found nothing starts again seconds after it ended (and the attempts are
/// bounded): before, the next try waited a minute.
#[test]
fn a_run_that_found_nothing_is_tried_again_soon() {
    let mut now = Instant::now();
    let start = now;
    let mut n = symmetric_node(now);
    introduce(&mut n, now, &[2]);
    let opened = run_until(&mut n, &mut now, start + Duration::from_secs(40));
    let times: Vec<Duration> = opened.iter().map(|(_, t)| *t - start).collect();
    assert_eq!(
        times.len(),
        super::schedule::MAX_ATTEMPTS as usize,
        "runs at {times:?}"
    );
    assert!(
        times[1] < Duration::from_secs(10),
        "the second run came {:?} after the first",
        times[1] - times[0]
    );
}
