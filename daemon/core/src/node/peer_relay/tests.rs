use super::super::test_peers::{addr, coordinator_peer, key_of};
use super::*;
use crate::ip::testpkt::ipv4_udp;
use std::net::Ipv4Addr;

/// Nodes joined by in-memory queues, addressed by their socket address.
struct Net {
    nodes: Vec<(SocketAddr, Node)>,
    now: Instant,
}

type Wire = Vec<(SocketAddr, SocketAddr, Vec<u8>)>;

impl Net {
    fn node(&mut self, seed: u8) -> &mut Node {
        &mut self.nodes[seed as usize - 1].1
    }

    fn addr(seed: u8) -> SocketAddr {
        addr(&format!("192.0.2.{seed}:4164{seed}"))
    }

    /// Everything every node wants to send, then delivered back and forth until quiet; what
    /// each node's TUN got, by seed.
    fn run(&mut self, mut wire: Wire) -> Vec<(u8, Vec<u8>)> {
        let mut tun = Vec::new();
        let mut out = vec![0u8; 2048];
        for (me, n) in &mut self.nodes {
            n.handle_timeout(self.now);
            while let Some(t) = n.poll_transmit(&mut out) {
                wire.push((*me, t.dst, out[..t.len].to_vec()));
            }
        }
        let mut hops = 0;
        while let Some((from, to, bytes)) = (!wire.is_empty()).then(|| wire.remove(0)) {
            hops += 1;
            assert!(hops < 10_000, "the datagrams never settle");
            let Some(i) = self.nodes.iter().position(|(a, _)| *a == to) else {
                continue;
            };
            let (me, node) = &mut self.nodes[i];
            match node.handle_datagram(self.now, from, &bytes, &mut out) {
                Inbound::ToTun { len } => tun.push((i as u8 + 1, out[..len].to_vec())),
                Inbound::Transmit(t) => wire.push((*me, t.dst, out[..t.len].to_vec())),
                Inbound::Nothing => {}
            }
            while let Some(t) = node.poll_transmit(&mut out) {
                wire.push((*me, t.dst, out[..t.len].to_vec()));
            }
        }
        tun
    }

    fn send(&mut self, from: u8, to: u8, payload: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let pkt = ipv4_udp(ip(from), ip(to), payload);
        let mut out = vec![0u8; 2048];
        let me = Self::addr(from);
        let mut wire = Wire::new();
        let now = self.now;
        if let Some(t) = self.node(from).handle_tun_packet(now, &pkt, &mut out) {
            wire.push((me, t.dst, out[..t.len].to_vec()));
        }
        self.run(wire)
    }
}

fn ip(seed: u8) -> Ipv4Addr {
    Ipv4Addr::new(100, 64, 0, seed)
}

/// A (1) and B (2) with no direct path, both in "games" with R (3), which relays; C (4) is
/// only in "work" with R. The coordinator offers no relay: R is the only one.
fn lab() -> Net {
    let now = Instant::now();
    let mut nodes: Vec<(SocketAddr, Node)> = (1..=4)
        .map(|s| (Net::addr(s), Node::new([s; 32], [s; 16])))
        .collect();
    let games = vec!["games".to_string()];
    let work = vec!["work".to_string()];
    let member_of = |s: u8| if s == 4 { &work } else { &games };
    for (me, (_, n)) in (1u8..).zip(nodes.iter_mut()) {
        for other in 1..=4u8 {
            let shared = match (me, other) {
                (m, o) if m == o => continue,
                (3, o) => member_of(o).clone(),
                (m, 3) => member_of(m).clone(),
                (m, o) if member_of(m) == member_of(o) => member_of(m).clone(),
                _ => continue,
            };
            let mut p = coordinator_peer(other);
            p.public_key = key_of(other);
            n.add_peer(p).unwrap();
            n.set_peer_networks(&key_of(other), shared);
        }
    }
    nodes[2].1.set_relaying(true, RelayConfig::default());
    for (_, n) in nodes.iter_mut() {
        if n.public_key() != key_of(3) {
            n.set_peer_relay(now, &key_of(3), Some(Net::addr(3)));
        }
    }
    Net { nodes, now }
}

#[test]
fn a_peer_relay_carries_two_members_that_cannot_meet_directly() {
    let mut net = lab();
    net.run(Wire::new());
    let got = net.send(1, 2, b"over the friend's relay");
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, 2);
    assert_eq!(got[0].1, ipv4_udp(ip(1), ip(2), b"over the friend's relay"));
    let back = net.send(2, 1, b"and back");
    assert_eq!(back.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [1]);
    let c = net.node(3).relaying_counters().unwrap();
    assert!(c.forwarded >= 4, "handshake and data both ways: {c:?}");
    // The peer that relays is reached straight, not through itself.
    let a = &net.nodes[0].1;
    let to_r = a.peer_id(&key_of(3)).unwrap();
    let via = a.peer(to_r).map(|p| crate::node::route_of(p, &a.relays));
    assert_eq!(
        via,
        Some(None),
        "no relay for the relay itself, and no endpoint"
    );
}

#[test]
fn a_peer_relay_forwards_only_within_its_networks_and_only_for_its_peers() {
    let mut net = lab();
    // C (work) is told R relays; it must not reach A (games) through R.
    let (a, c) = (key_of(1), key_of(4));
    let mut p = coordinator_peer(1);
    p.public_key = a;
    net.node(4).add_peer(p).unwrap();
    net.node(4).set_peer_networks(&a, vec!["work".into()]);
    net.run(Wire::new());
    let got = net.send(4, 1, b"not through the relay");
    assert!(got.is_empty(), "{got:?}");
    let counters = net.node(3).relaying_counters().unwrap();
    assert!(counters.no_shared_network > 0, "{counters:?}");
    // A stranger's frames are not served either, and off means off.
    net.node(3).remove_peer(&c);
    net.node(3).set_relaying(false, RelayConfig::default());
    assert!(net.node(3).relaying_counters().is_none());
    net.run(Wire::new());
    assert!(net.send(1, 2, b"relay is off").is_empty());
}
