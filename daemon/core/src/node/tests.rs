//! Deterministic tests of the data-plane core: two (or three) nodes joined by in-memory queues.

use super::*;
use crate::ip::testpkt::ipv4_udp;
use crate::peer::PeerConfig;
use std::net::Ipv4Addr;

const A_IP: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
const B_IP: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 2);

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn secret(seed: u8) -> [u8; 32] {
    [seed; 32]
}

fn key_of(seed: u8) -> NodeKey {
    Node::new(secret(seed), [0; 16]).public_key()
}

fn peer(seed: u8, ip: Ipv4Addr, endpoint: Option<&str>) -> PeerConfig {
    PeerConfig {
        name: format!("n{seed}"),
        public_key: key_of(seed),
        allowed_ips: vec![format!("{ip}/32").parse().unwrap()],
        endpoint: endpoint.map(addr),
        persistent_keepalive: None,
        relay: false,
    }
}

struct Pair {
    a: Node,
    b: Node,
    now: Instant,
    a_addr: SocketAddr,
    b_addr: SocketAddr,
}

/// A datagram in flight: (from, to, bytes).
type Wire = Vec<(SocketAddr, SocketAddr, Vec<u8>)>;

impl Pair {
    fn new() -> Self {
        let a_addr = addr("192.0.2.1:1000");
        let b_addr = addr("192.0.2.2:2000");
        let mut a = Node::new(secret(1), [1; 16]);
        let mut b = Node::new(secret(2), [2; 16]);
        a.add_peer(peer(2, B_IP, Some("192.0.2.2:2000"))).unwrap();
        b.add_peer(peer(1, A_IP, Some("192.0.2.1:1000"))).unwrap();
        Self {
            a,
            b,
            now: Instant::now(),
            a_addr,
            b_addr,
        }
    }

    /// Sends `pkt` from A's TUN; returns the datagrams A put on the wire.
    fn a_sends(&mut self, pkt: &[u8]) -> Wire {
        let mut out = vec![0u8; 2048];
        let mut wire = Wire::new();
        if let Some(t) = self.a.handle_tun_packet(Instant::now(), pkt, &mut out) {
            wire.push((self.a_addr, t.dst, out[..t.len].to_vec()));
        }
        drain(&mut self.a, self.a_addr, &mut wire);
        wire
    }

    /// Delivers `wire` back and forth until quiet; returns what each TUN received.
    fn run(&mut self, mut wire: Wire) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let (mut to_a, mut to_b) = (vec![], vec![]);
        let mut out = vec![0u8; 2048];
        while let Some((from, to, bytes)) = (!wire.is_empty()).then(|| wire.remove(0)) {
            let (node, me, tun) = if to == self.b_addr {
                (&mut self.b, self.b_addr, &mut to_b)
            } else {
                (&mut self.a, self.a_addr, &mut to_a)
            };
            match node.handle_datagram(self.now, from, &bytes, &mut out) {
                Inbound::ToTun { len } => tun.push(out[..len].to_vec()),
                Inbound::Transmit(t) => wire.push((me, t.dst, out[..t.len].to_vec())),
                Inbound::Nothing => {}
            }
            drain(node, me, &mut wire);
        }
        (to_a, to_b)
    }

    fn established() -> Self {
        let mut p = Self::new();
        let pkt = ipv4_udp(A_IP, B_IP, b"hello");
        let wire = p.a_sends(&pkt);
        let (_, to_b) = p.run(wire);
        assert_eq!(to_b, vec![pkt], "queued packet arrives after the handshake");
        p
    }
}

fn drain(node: &mut Node, me: SocketAddr, wire: &mut Wire) {
    let mut out = vec![0u8; 2048];
    while let Some(t) = node.poll_transmit(&mut out) {
        wire.push((me, t.dst, out[..t.len].to_vec()));
    }
}

#[test]
fn handshake_then_data_both_ways() {
    let mut p = Pair::established();
    let back = ipv4_udp(B_IP, A_IP, b"world");
    let mut out = vec![0u8; 2048];
    let t =
        p.b.handle_tun_packet(Instant::now(), &back, &mut out)
            .expect("session is up");
    assert_eq!(t.dst, p.a_addr);
    let (to_a, _) = p.run(vec![(p.b_addr, t.dst, out[..t.len].to_vec())]);
    assert_eq!(to_a, vec![back]);
    let now = p.now;
    for n in [&p.a, &p.b] {
        let s = &n.peer_status(now)[0];
        assert!(s.online);
        assert_eq!(s.path, PathKind::Direct);
        assert!(s.rx_bytes > 0 && s.tx_bytes > 0);
    }
}

#[test]
fn a_renamed_peer_keeps_its_session() {
    let mut p = Pair::established();
    let now = p.now;
    p.a.rename_peer(&key_of(2), "bobby");
    let s = &p.a.peer_status(now)[0];
    assert_eq!(s.name, "bobby");
    assert!(s.online, "the session survives a rename");
    let pkt = ipv4_udp(A_IP, B_IP, b"still there");
    let wire = p.a_sends(&pkt);
    let (_, to_b) = p.run(wire);
    assert_eq!(to_b, vec![pkt]);
}

#[test]
fn routing_by_overlay_address() {
    let mut p = Pair::established();
    let mut out = vec![0u8; 2048];
    // Nobody owns 100.64.0.99: dropped and counted.
    let stray = ipv4_udp(A_IP, Ipv4Addr::new(100, 64, 0, 99), b"x");
    assert_eq!(
        p.a.handle_tun_packet(Instant::now(), &stray, &mut out),
        None
    );
    assert_eq!(p.a.counters().dropped(DropReason::NoRoute), 1);
    assert_eq!(p.a.counters().dropped(DropReason::Multicast), 0);
    // Not an IP packet at all.
    assert_eq!(
        p.a.handle_tun_packet(Instant::now(), &[0x00; 30], &mut out),
        None
    );
    assert_eq!(p.a.counters().dropped(DropReason::Malformed), 1);
    // A peer whose endpoint is unknown.
    let c_ip = Ipv4Addr::new(100, 64, 0, 3);
    p.a.add_peer(peer(3, c_ip, None)).unwrap();
    assert_eq!(
        p.a.handle_tun_packet(Instant::now(), &ipv4_udp(A_IP, c_ip, b"x"), &mut out),
        None
    );
    assert_eq!(p.a.counters().dropped(DropReason::NoEndpoint), 1);
    // Output buffer too small for the packet: refused, not a panic.
    let big = ipv4_udp(A_IP, B_IP, &[0u8; 1400]);
    assert_eq!(
        p.a.handle_tun_packet(Instant::now(), &big, &mut out[..1400]),
        None
    );
    assert_eq!(p.a.counters().dropped(DropReason::Oversized), 1);
}

#[test]
fn config_conflicts_are_refused() {
    let mut a = Node::new(secret(1), [1; 16]);
    a.add_peer(peer(2, B_IP, None)).unwrap();
    assert_eq!(
        a.add_peer(peer(2, Ipv4Addr::new(100, 64, 0, 9), None)),
        Err(NodeError::DuplicatePeer(key_of(2)))
    );
    assert!(matches!(
        a.add_peer(peer(3, B_IP, None)),
        Err(NodeError::RouteConflict { .. })
    ));
    assert_eq!(
        a.add_peer(peer(1, A_IP, None)),
        Err(NodeError::OwnKey(key_of(1)))
    );
    // The refused peer left no routes behind.
    let mut out = vec![0u8; 2048];
    let to_c = ipv4_udp(A_IP, Ipv4Addr::new(100, 64, 0, 9), b"x");
    assert_eq!(a.handle_tun_packet(Instant::now(), &to_c, &mut out), None);
    assert_eq!(a.counters().dropped(DropReason::NoRoute), 1);
}

/// A small deterministic generator so the junk is the same on every run.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn malformed_and_oversized_datagrams_are_dropped_and_counted() {
    let mut p = Pair::established();
    let from = p.b_addr;
    let mut out = vec![0u8; 2048];
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut junk = vec![0u8; 3000];
    for i in 0..5000 {
        let len = (rng.next() % 1600) as usize;
        for b in junk[..len].iter_mut() {
            *b = rng.next() as u8;
        }
        // Every few rounds, dress the junk up as a WireGuard message of each type.
        if i % 3 == 0 && len >= 4 {
            junk[0] = (i % 4 + 1) as u8;
            junk[1..4].fill(0);
        }
        let r = p.a.handle_datagram(p.now, from, &junk[..len], &mut out);
        assert_eq!(r, Inbound::Nothing);
    }
    let dropped: u64 = p.a.counters().dropped_map().values().sum();
    assert_eq!(dropped, 5000, "every junk datagram is counted");
    // The session survives junk and the endpoint was never moved by it.
    assert_eq!(p.a.peers().next().unwrap().endpoint(), Some(p.b_addr));

    // Larger than the output buffer.
    let mut big = vec![0u8; 4000];
    big[0] = 4;
    let before = p.a.counters().dropped(DropReason::Oversized);
    assert_eq!(
        p.a.handle_datagram(p.now, from, &big, &mut out),
        Inbound::Nothing
    );
    assert_eq!(p.a.counters().dropped(DropReason::Oversized), before + 1);
}

#[test]
fn unsolicited_stun_and_disco_junk_are_counted() {
    let mut a = Node::new(secret(1), [1; 16]);
    let mut out = vec![0u8; 2048];
    let mut stun = [0u8; 20];
    stun[1] = 1;
    stun[4..8].copy_from_slice(&warren_proto::datagram::STUN_MAGIC_COOKIE.to_be_bytes());
    let from = addr("192.0.2.9:9");
    // No discovery run asked anyone: a STUN message is not an answer to us.
    assert_eq!(
        a.handle_datagram(Instant::now(), from, &stun, &mut out),
        Inbound::Nothing
    );
    assert_eq!(a.counters().dropped(DropReason::Unhandled), 1);
    assert_eq!(
        a.handle_datagram(Instant::now(), from, b"WRNd\x01ping", &mut out),
        Inbound::Nothing
    );
    assert_eq!(a.counters().dropped(DropReason::Malformed), 1);
}

#[test]
fn roaming_follows_authenticated_packets_only() {
    let mut p = Pair::established();
    let mut out = vec![0u8; 2048];
    let pkt = ipv4_udp(B_IP, A_IP, b"from a new place");
    let t =
        p.b.handle_tun_packet(Instant::now(), &pkt, &mut out)
            .unwrap();
    let mut sealed = out[..t.len].to_vec();

    // A forged copy (one flipped bit) from an attacker's address does not move the endpoint.
    let attacker = addr("203.0.113.66:6666");
    let mut forged = sealed.clone();
    *forged.last_mut().unwrap() ^= 1;
    assert_eq!(
        p.a.handle_datagram(p.now, attacker, &forged, &mut out),
        Inbound::Nothing
    );
    assert_eq!(p.a.peers().next().unwrap().endpoint(), Some(p.b_addr));
    assert_eq!(p.a.counters().dropped(DropReason::DecryptFailed), 1);

    // The genuine packet from B's new address moves it.
    let roamed = addr("198.51.100.7:7777");
    assert_eq!(
        p.a.handle_datagram(p.now, roamed, &sealed, &mut out),
        Inbound::ToTun { len: pkt.len() }
    );
    assert_eq!(p.a.peers().next().unwrap().endpoint(), Some(roamed));
    // A's replies now go there.
    let reply = ipv4_udp(A_IP, B_IP, b"ok");
    assert_eq!(
        p.a.handle_tun_packet(Instant::now(), &reply, &mut out)
            .unwrap()
            .dst,
        roamed
    );

    // Replaying the same datagram from the old address is refused and does not move it back.
    sealed.truncate(t.len);
    assert_eq!(
        p.a.handle_datagram(p.now, p.b_addr, &sealed, &mut out),
        Inbound::Nothing
    );
    assert_eq!(p.a.counters().dropped(DropReason::Replay), 1);
    assert_eq!(p.a.peers().next().unwrap().endpoint(), Some(roamed));
}

#[test]
fn inner_source_must_belong_to_the_sending_peer() {
    let mut p = Pair::established();
    let mut out = vec![0u8; 2048];
    // B claims to be 100.64.0.50, which it does not own.
    let spoof = ipv4_udp(Ipv4Addr::new(100, 64, 0, 50), A_IP, b"spoof");
    let t =
        p.b.handle_tun_packet(Instant::now(), &spoof, &mut out)
            .unwrap();
    let sealed = out[..t.len].to_vec();
    assert_eq!(
        p.a.handle_datagram(p.now, p.b_addr, &sealed, &mut out),
        Inbound::Nothing
    );
    assert_eq!(p.a.counters().dropped(DropReason::SourceNotAllowed), 1);
}

#[test]
fn handshakes_from_unknown_keys_are_refused() {
    let mut p = Pair::new();
    // C knows B, but B does not know C.
    let mut c = Node::new(secret(3), [3; 16]);
    c.add_peer(peer(2, B_IP, Some("192.0.2.2:2000"))).unwrap();
    let mut out = vec![0u8; 2048];
    let t = c
        .handle_tun_packet(
            Instant::now(),
            &ipv4_udp(Ipv4Addr::new(100, 64, 0, 3), B_IP, b"x"),
            &mut out,
        )
        .expect("handshake initiation");
    let init = out[..t.len].to_vec();
    assert_eq!(
        p.b.handle_datagram(p.now, addr("192.0.2.3:3000"), &init, &mut out),
        Inbound::Nothing
    );
    assert_eq!(p.b.counters().dropped(DropReason::UnknownPeer), 1);
}

#[test]
fn timer_ticks_are_scheduled_and_idempotent() {
    let mut a = Node::new(secret(1), [1; 16]);
    a.add_peer(peer(2, B_IP, Some("192.0.2.2:2000"))).unwrap();
    assert_eq!(a.poll_timeout(), None);
    let t0 = Instant::now();
    a.handle_timeout(t0);
    assert_eq!(a.poll_timeout(), Some(t0 + TIMER_TICK));
    let mut out = vec![0u8; 2048];
    // A fresh peer with no traffic has nothing due.
    assert_eq!(a.poll_transmit(&mut out), None);
    // An early call does not move the schedule.
    a.handle_timeout(t0 + Duration::from_millis(10));
    assert_eq!(a.poll_timeout(), Some(t0 + TIMER_TICK));
    a.handle_timeout(t0 + TIMER_TICK);
    assert_eq!(a.poll_timeout(), Some(t0 + TIMER_TICK * 2));
}

#[test]
fn persistent_keepalive_is_sent_from_timers() {
    let mut p = Pair::new();
    // Rebuild A with a 1 s keepalive toward B.
    p.a = Node::new(secret(1), [1; 16]);
    let mut cfg = peer(2, B_IP, Some("192.0.2.2:2000"));
    cfg.persistent_keepalive = Some(1);
    p.a.add_peer(cfg).unwrap();
    let wire = p.a_sends(&ipv4_udp(A_IP, B_IP, b"x"));
    p.run(wire);
    // boringtun's timers read their own clock, so this one test waits in real time.
    std::thread::sleep(Duration::from_millis(1200));
    let now = p.now + Duration::from_millis(1200);
    p.a.handle_timeout(now);
    let mut out = vec![0u8; 2048];
    let t = p.a.poll_transmit(&mut out).expect("keepalive due");
    assert_eq!(t.dst, p.b_addr);
    assert_eq!(t.len, WG_OVERHEAD, "a keepalive is an empty data message");
    let ka = out[..t.len].to_vec();
    assert_eq!(
        p.b.handle_datagram(now, p.a_addr, &ka, &mut out),
        Inbound::Nothing
    );
    assert!(p.b.peers().next().unwrap().is_online(now));
}

#[test]
fn network_change_announces_our_new_address_to_every_peer() {
    let mut p = Pair::established();
    let c_ip = Ipv4Addr::new(100, 64, 0, 3);
    // A second peer with no endpoint is skipped, not an error.
    p.b.add_peer(peer(3, c_ip, None)).unwrap();
    let mut out = vec![0u8; 2048];
    assert_eq!(
        p.b.poll_transmit(&mut out),
        None,
        "nothing due before the change"
    );
    p.b.handle_network_change(p.now);
    let t = p.b.poll_transmit(&mut out).expect("a keepalive to A");
    assert_eq!((t.dst, t.len), (p.a_addr, WG_OVERHEAD));
    assert_eq!(
        p.b.poll_transmit(&mut out),
        None,
        "one announcement per peer"
    );
    // It arrives from B's new address, and A follows.
    let moved = addr("192.0.2.22:2000");
    let ka = out[..t.len].to_vec();
    assert_eq!(
        p.a.handle_datagram(p.now, moved, &ka, &mut out),
        Inbound::Nothing
    );
    assert_eq!(p.a.peers().next().unwrap().endpoint(), Some(moved));
}

#[test]
fn peers_can_be_removed_and_slots_reused() {
    let mut p = Pair::established();
    let b_key = key_of(2);
    let mut out = vec![0u8; 2048];
    // A sealed packet from B, made while B is still A's peer.
    let t =
        p.b.handle_tun_packet(Instant::now(), &ipv4_udp(B_IP, A_IP, b"late"), &mut out)
            .unwrap();
    let late = out[..t.len].to_vec();
    assert!(p.a.remove_peer(&b_key));
    assert!(!p.a.remove_peer(&b_key));
    assert_eq!(
        p.a.handle_tun_packet(Instant::now(), &ipv4_udp(A_IP, B_IP, b"x"), &mut out),
        None
    );
    assert_eq!(p.a.counters().dropped(DropReason::NoRoute), 1);
    assert_eq!(
        p.a.handle_datagram(p.now, p.b_addr, &late, &mut out),
        Inbound::Nothing
    );
    assert_eq!(p.a.counters().dropped(DropReason::UnknownPeer), 1);
    // A new peer takes the free slot; B's stale session index must not reach it.
    let c_ip = Ipv4Addr::new(100, 64, 0, 3);
    assert_eq!(
        p.a.add_peer(peer(3, c_ip, Some("192.0.2.3:3000"))).unwrap(),
        0
    );
    assert_eq!(
        p.a.handle_datagram(p.now, p.b_addr, &late, &mut out),
        Inbound::Nothing
    );
    assert_eq!(p.a.peers().count(), 1);
    // B can come back and talk again.
    p.a.add_peer(peer(2, B_IP, Some("192.0.2.2:2000"))).unwrap();
    let wire = p.a_sends(&ipv4_udp(A_IP, B_IP, b"again"));
    let (_, to_b) = p.run(wire);
    assert_eq!(to_b.len(), 1);
}

#[test]
fn set_endpoint_moves_the_session() {
    let mut p = Pair::established();
    let elsewhere = addr("198.51.100.1:5555");
    assert!(p.a.set_endpoint(&key_of(2), elsewhere));
    assert!(!p.a.set_endpoint(&key_of(9), elsewhere));
    let mut out = vec![0u8; 2048];
    let t =
        p.a.handle_tun_packet(Instant::now(), &ipv4_udp(A_IP, B_IP, b"x"), &mut out)
            .unwrap();
    assert_eq!(t.dst, elsewhere);
}

#[test]
fn down_carries_nothing_and_up_resumes() {
    let mut p = Pair::established();
    p.a.set_up(false);
    assert!(!p.a.is_up());
    let pkt = ipv4_udp(A_IP, B_IP, b"while down");
    assert!(p.a_sends(&pkt).is_empty(), "nothing leaves a down tunnel");
    assert_eq!(
        p.a.ping(p.now, &key_of(2)),
        Err(crate::node::PingError::Down)
    );
    // B's packets to A are dropped and counted, not written to A's TUN.
    let mut out = vec![0u8; 2048];
    let back = ipv4_udp(B_IP, A_IP, b"to a down host");
    let t =
        p.b.handle_tun_packet(p.now, &back, &mut out)
            .expect("b sends");
    let bytes = out[..t.len].to_vec();
    let (to_a, _) = p.run(vec![(p.b_addr, p.a_addr, bytes)]);
    assert!(to_a.is_empty());
    assert_eq!(p.a.counters().dropped(DropReason::TunnelDown), 2);
    // Timers, keepalives and announcements stay quiet too.
    p.a.handle_network_change(p.now);
    for _ in 0..120 {
        p.now += Duration::from_millis(500);
        p.a.handle_timeout(p.now);
        let mut wire = Wire::new();
        drain(&mut p.a, p.a_addr, &mut wire);
        assert!(wire.is_empty(), "sent while down: {wire:?}");
    }
    p.a.set_up(true);
    let wire = p.a_sends(&pkt);
    let (_, to_b) = p.run(wire);
    assert_eq!(to_b, vec![pkt], "traffic resumes after up");
}

/// The relay the nodes are told of; nothing answers there (relaying through the real relay
/// core is tested in `sim/tests/relay.rs`).
const RELAY: &str = "198.51.100.1:7446";

use warren_proto::relay::DELIVER_HEADER_LEN;

impl Pair {
    /// Coordinator peers with no endpoint yet, both told of the relay.
    fn relayed() -> Self {
        let mut p = Pair::new();
        p.a = Node::new(secret(1), [1; 16]);
        p.b = Node::new(secret(2), [2; 16]);
        for (n, seed, ip) in [(&mut p.a, 2, B_IP), (&mut p.b, 1, A_IP)] {
            n.add_peer(PeerConfig {
                relay: true,
                ..peer(seed, ip, None)
            })
            .unwrap();
            n.set_relay(p.now, Some((addr(RELAY), [seed; 16])));
        }
        p
    }
}

/// Broadcast and multicast from A's TUN reach B's TUN unchanged (A's overlay source), one copy
/// per peer; B does not copy them on (no loops, nothing back to A); both count them.
#[test]
fn group_packets_are_copied_to_peers_and_no_further() {
    let mut p = Pair::established();
    let groups = [
        [224, 0, 0, 251],
        [255, 255, 255, 255],
        [100, 127, 255, 255],
        [239, 1, 2, 3],
    ];
    for dst in groups {
        let pkt = ipv4_udp(A_IP, Ipv4Addr::from(dst), b"discover");
        let wire = p.a_sends(&pkt);
        assert_eq!(wire.len(), 1, "one copy for the one peer");
        assert_eq!(wire[0].1, p.b_addr);
        let (to_a, to_b) = p.run(wire);
        assert_eq!(to_b, vec![pkt]);
        assert!(to_a.is_empty(), "B sends nothing back");
    }
    let (a, b) = (p.a.fanout_counters(), p.b.fanout_counters());
    assert_eq!((a.sent, a.copies, a.received), (4, 4, 0));
    assert_eq!((b.sent, b.copies, b.received), (0, 0, 4));
    assert_eq!(p.a.counters().dropped(DropReason::Multicast), 0);
}

/// `warren check`: A asks B what listens on a port; B's shell sees the question, answers it,
/// and A collects the answer. Questions from B to A for A's own answer are not mixed up.
#[test]
fn a_port_question_goes_to_the_peers_shell_and_back() {
    use warren_proto::disco::{Listening, PortProto};
    let mut p = Pair::established();
    let now = p.now;
    let key_b = p.b.public_key();
    let tx = p.a.ask_port(now, &key_b, 3389, PortProto::Tcp).unwrap();
    let mut wire = Wire::new();
    drain(&mut p.a, p.a_addr, &mut wire);
    p.run(wire);
    let q =
        p.b.take_port_question()
            .expect("B's shell gets the question");
    assert_eq!((q.port, q.proto), (3389, PortProto::Tcp));
    assert!(p.b.take_port_question().is_none());
    assert_eq!(p.a.take_port_answer(&tx), None, "not answered yet");
    p.b.answer_port_question(q, Listening::Overlay);
    let mut wire = Wire::new();
    drain(&mut p.b, p.b_addr, &mut wire);
    p.run(wire);
    assert_eq!(p.a.take_port_answer(&tx), Some(Listening::Overlay));
    assert_eq!(p.a.take_port_answer(&tx), None);
    assert!(
        p.a.take_port_question().is_none(),
        "an answer is not a question"
    );
    // A key nobody knows cannot be asked.
    assert!(p
        .a
        .ask_port(now, &NodeKey([9; 32]), 1, PortProto::Udp)
        .is_err());
}

/// A game's broadcast sent the ordinary way (out of the LAN) and copied to the TUN by the
/// kernel arrives at B from A's overlay address, to 255.255.255.255; a multicast announcement
/// keeps its group. Per-port counters follow, and a peer with discovery off gets nothing.
#[test]
fn lan_discovery_copies_reach_peers_from_the_overlay_address() {
    let mut p = Pair::established();
    let lan = Ipv4Addr::new(192, 168, 1, 20);
    p.a.set_own_v4(A_IP);
    p.a.set_lan_broadcasts(vec![Ipv4Addr::new(192, 168, 1, 255)]);
    for (dst, port, want) in [
        (Ipv4Addr::BROADCAST, 27015u16, Ipv4Addr::BROADCAST),
        (Ipv4Addr::new(192, 168, 1, 255), 27016, Ipv4Addr::BROADCAST),
        (
            Ipv4Addr::new(224, 0, 2, 60),
            4445,
            Ipv4Addr::new(224, 0, 2, 60),
        ),
    ] {
        let mut pkt = ipv4_udp(lan, dst, b"who is there");
        pkt[22..24].copy_from_slice(&port.to_be_bytes());
        let wire = p.a_sends(&pkt);
        assert_eq!(wire.len(), 1, "one copy for B");
        let (_, to_b) = p.run(wire);
        assert_eq!(to_b.len(), 1);
        assert_eq!(&to_b[0][12..16], &A_IP.octets(), "from A's overlay address");
        assert_eq!(&to_b[0][16..20], &want.octets());
    }
    assert_eq!(p.a.discovery_counters(27015, 27020).sent, 2);
    assert_eq!(p.b.discovery_counters(4445, 4445).received, 1);
    // Switched off for B: nothing goes, and B refuses A's if A still sends.
    p.a.set_peer_discovery(&key_of(2), false);
    let mut pkt = ipv4_udp(lan, Ipv4Addr::BROADCAST, b"x");
    pkt[22..24].copy_from_slice(&27015u16.to_be_bytes());
    assert!(p.a_sends(&pkt).is_empty());
    p.a.set_peer_discovery(&key_of(2), true);
    p.b.set_peer_discovery(&key_of(1), false);
    let wire = p.a_sends(&pkt);
    let (_, to_b) = p.run(wire);
    assert!(to_b.is_empty());
}

/// Handshakes are checked for their mac1 before any X25519 work, and a flood of them (spoofed
/// sources, unknown keys) is answered with cookies past the limit instead of being worked on.
#[test]
fn a_handshake_flood_gets_cookies_and_bad_macs_are_dropped_first() {
    let now = Instant::now();
    let mut a = Node::new(secret(1), [1; 16]);
    let a_public = PublicKey::from(&StaticSecret::from(secret(1)));
    let mut stranger = Tunn::new(
        StaticSecret::from(secret(77)),
        a_public,
        None,
        None,
        1,
        None,
    );
    let mut init = vec![0u8; 256];
    let mut out = vec![0u8; 2048];
    let from: SocketAddr = "198.51.100.9:5000".parse().unwrap();
    let mut make = |buf: &mut Vec<u8>| match stranger.format_handshake_initiation(buf, true) {
        TunnResult::WriteToNetwork(p) => p.len(),
        _ => panic!("an initiation"),
    };

    // A broken mac1: dropped as it is, counted.
    let n = make(&mut init);
    let mut bad = init[..n].to_vec();
    let last = bad.len() - 20;
    bad[last] ^= 1;
    assert_eq!(
        a.handle_datagram(now, from, &bad, &mut out),
        Inbound::Nothing
    );
    assert_eq!(a.counters().dropped(DropReason::DecryptFailed), 1);

    // Valid ones from a key A does not know: refused, until the limit, then cookies.
    let mut cookies = 0;
    for _ in 0..(HANDSHAKE_LIMIT + 50) {
        let n = make(&mut init);
        if let Inbound::Transmit(t) = a.handle_datagram(now, from, &init[..n], &mut out) {
            assert_eq!(t.dst, from);
            assert_eq!(out[0], 3, "a cookie reply");
            cookies += 1;
        }
    }
    assert!(cookies >= 49, "{cookies} cookies");
    assert_eq!(a.counters().dropped(DropReason::UnderLoad), cookies);
    assert!(a.counters().dropped(DropReason::UnknownPeer) <= HANDSHAKE_LIMIT + 1);
}

mod paths;
