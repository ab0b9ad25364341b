//! Paths: disco probes that prove and choose them, pings, the relay as a path, and the node's keys.

use super::*;

#[test]
fn call_me_maybe_probes_proves_and_applies_a_path() {
    // Coordinator-style peers: keys and addresses known, no endpoint yet.
    let mut p = Pair::new();
    p.a = Node::new(secret(1), [1; 16]);
    p.b = Node::new(secret(2), [2; 16]);
    p.a.add_peer(peer(2, B_IP, None)).unwrap();
    p.b.add_peer(peer(1, A_IP, None)).unwrap();
    let now = p.now;
    assert!(p
        .a
        .handle_call_me_maybe(now, &key_of(2), &[p.b_addr], None, None));
    assert!(p
        .b
        .handle_call_me_maybe(now, &key_of(1), &[p.a_addr], None, None));
    assert!(!p
        .a
        .handle_call_me_maybe(now, &key_of(9), &[p.b_addr], None, None));
    let mut wire = Wire::new();
    drain(&mut p.a, p.a_addr, &mut wire);
    drain(&mut p.b, p.b_addr, &mut wire);
    assert!(
        wire.iter().all(|(_, _, d)| d.starts_with(b"WRNd")),
        "only disco pings before a path is proven"
    );
    assert!(!wire.is_empty());
    p.run(wire);
    for (n, other) in [(&p.a, p.b_addr), (&p.b, p.a_addr)] {
        let peer = n.peers().next().unwrap();
        assert_eq!(
            peer.endpoint(),
            Some(other),
            "the proven path became the endpoint"
        );
        // The pair's addresses are public ones (TEST-NET-1) listed as interface addresses.
        assert_eq!(n.peer_status(now)[0].path, PathKind::Direct);
    }
    // The handshake ran on the proven path as soon as it was proven, before any traffic.
    for n in [&p.a, &p.b] {
        let (since_handshake, ..) = n.peers().next().unwrap().session_stats();
        assert!(
            since_handshake.is_some(),
            "session established on the new path"
        );
    }
    // WireGuard now flows on it.
    let pkt = ipv4_udp(A_IP, B_IP, b"over the probed path");
    let wire = p.a_sends(&pkt);
    let (_, to_b) = p.run(wire);
    assert_eq!(to_b, vec![pkt]);
}

#[test]
fn a_replayed_ping_gets_no_pong_and_adds_no_path() {
    let mut p = Pair::established();
    let mut out = vec![0u8; 2048];
    p.b.handle_call_me_maybe(p.now, &key_of(1), &[p.a_addr], None, None);
    let t = p.b.poll_transmit(&mut out).expect("a ping");
    let ping = out[..t.len].to_vec();
    assert!(ping.starts_with(b"WRNd"));
    // The genuine ping is answered.
    p.a.handle_datagram(p.now, p.b_addr, &ping, &mut out);
    let pong = p.a.poll_transmit(&mut out).expect("a pong");
    assert_eq!(pong.dst, p.b_addr);
    // Captured and sent again from a spoofed source: no pong, no probing of that address.
    let spoofed = addr("198.51.100.66:4444");
    for from in [spoofed, p.b_addr] {
        assert_eq!(
            p.a.handle_datagram(p.now, from, &ping, &mut out),
            Inbound::Nothing
        );
        while let Some(t) = p.a.poll_transmit(&mut out) {
            assert_ne!(t.dst, spoofed, "nothing goes to the replay's source");
        }
    }
    assert_eq!(p.a.counters().dropped(DropReason::StaleDisco), 2);
    p.a.handle_timeout(p.now + Duration::from_secs(3));
    while let Some(t) = p.a.poll_transmit(&mut out) {
        assert_ne!(
            t.dst, spoofed,
            "the replay's source did not become a candidate"
        );
    }
    // A fresh ping from B, sealed later, is answered again.
    p.b.handle_call_me_maybe(
        p.now + Duration::from_secs(1),
        &key_of(1),
        &[p.a_addr],
        None,
        None,
    );
    let t = p.b.poll_transmit(&mut out).expect("a ping");
    let fresh = out[..t.len].to_vec();
    p.a.handle_datagram(p.now, p.b_addr, &fresh, &mut out);
    assert!(
        p.a.poll_transmit(&mut out).is_some(),
        "a pong for a fresh ping"
    );
}

#[test]
fn disco_from_strangers_and_forgeries_is_counted() {
    let mut p = Pair::established();
    let mut out = vec![0u8; 2048];
    // A ping sealed by a node A does not know.
    let mut c = Node::new(secret(3), [3; 16]);
    c.add_peer(peer(1, A_IP, None)).unwrap();
    c.handle_call_me_maybe(p.now, &key_of(1), &[p.a_addr], None, None);
    let t = c.poll_transmit(&mut out).expect("a ping");
    let stranger = out[..t.len].to_vec();
    assert_eq!(
        p.a.handle_datagram(p.now, addr("192.0.2.3:3"), &stranger, &mut out),
        Inbound::Nothing
    );
    assert_eq!(p.a.counters().dropped(DropReason::UnknownPeer), 1);
    // B's genuine ping with one byte flipped.
    p.b.handle_call_me_maybe(p.now, &key_of(1), &[p.a_addr], None, None);
    let t = p.b.poll_transmit(&mut out).expect("a ping");
    let mut forged = out[..t.len].to_vec();
    *forged.last_mut().unwrap() ^= 0x80;
    assert_eq!(
        p.a.handle_datagram(p.now, p.b_addr, &forged, &mut out),
        Inbound::Nothing
    );
    assert_eq!(p.a.counters().dropped(DropReason::DecryptFailed), 1);
    assert_eq!(p.a.poll_transmit(&mut out), None, "no pong for a forgery");
}

#[test]
fn discovery_requests_leave_from_the_node_socket() {
    let mut a = Node::new(secret(1), [1; 16]);
    let servers = [addr("192.0.2.50:7444"), addr("192.0.2.50:7445")];
    a.start_discovery(Instant::now(), servers);
    let mut out = vec![0u8; 2048];
    let mut seen = Vec::new();
    while let Some(t) = a.poll_transmit(&mut out) {
        assert_eq!(
            warren_proto::datagram::classify(&out[..t.len]),
            DatagramKind::Stun
        );
        seen.push(t.dst);
    }
    seen.sort();
    assert_eq!(seen, servers.to_vec());
    assert!(a.poll_timeout().is_some(), "a retransmit is scheduled");
}

#[test]
fn a_public_address_listed_as_lan_counts_as_direct() {
    // A host on the internet lists its interface address, which is also its reflexive one.
    let mut p = Pair::new();
    p.a = Node::new(secret(1), [1; 16]);
    p.b = Node::new(secret(2), [2; 16]);
    p.a.add_peer(peer(2, B_IP, None)).unwrap();
    p.b.add_peer(peer(1, A_IP, None)).unwrap();
    let now = p.now;
    p.a.handle_call_me_maybe(now, &key_of(2), &[p.b_addr], Some(p.b_addr), None);
    p.b.handle_call_me_maybe(now, &key_of(1), &[p.a_addr], Some(p.a_addr), None);
    let mut wire = Wire::new();
    drain(&mut p.a, p.a_addr, &mut wire);
    drain(&mut p.b, p.b_addr, &mut wire);
    p.run(wire);
    assert_eq!(p.a.peer_status(now)[0].path, PathKind::Direct);
    assert_eq!(p.b.peer_status(now)[0].path, PathKind::Direct);
}

#[test]
fn a_mapped_address_is_probed_and_proves_a_direct_path() {
    // B's only advertised candidate is a port mapping (here its real address, as a router
    // forwarding the mapped port would deliver it); a reflexive address equal to it is the
    // same candidate, not a second one.
    let mut p = Pair::new();
    p.a = Node::new(secret(1), [1; 16]);
    p.b = Node::new(secret(2), [2; 16]);
    p.a.add_peer(peer(2, B_IP, None)).unwrap();
    p.b.add_peer(peer(1, A_IP, None)).unwrap();
    let now = p.now;
    p.a.handle_call_me_maybe(now, &key_of(2), &[], Some(p.b_addr), Some(p.b_addr));
    let mut wire = Wire::new();
    drain(&mut p.a, p.a_addr, &mut wire);
    assert_eq!(wire.len(), 1, "one ping to the one candidate");
    p.run(wire);
    assert_eq!(p.a.peer_status(now)[0].path, PathKind::Direct);
    assert_eq!(p.b.peer_status(now)[0].path, PathKind::Direct);
}

#[test]
fn a_persons_ping_is_answered_on_the_current_path() {
    let mut p = Pair::new();
    assert_eq!(
        p.a.ping(p.now, &key_of(9)),
        Err(crate::node::PingError::UnknownPeer)
    );
    let tx = p.a.ping(p.now, &key_of(2)).unwrap();
    let mut wire = Wire::new();
    drain(&mut p.a, p.a_addr, &mut wire);
    assert_eq!(wire.len(), 1, "one ping: {wire:?}");
    assert_eq!(wire[0].1, p.b_addr, "sent to the peer's endpoint");
    assert!(wire[0].2.starts_with(b"WRNd"));
    assert_eq!(
        p.a.take_ping_answer(&key_of(2), &tx),
        None,
        "not answered yet"
    );
    p.now += Duration::from_millis(7);
    p.run(wire);
    let (answer, kind) = p.a.take_ping_answer(&key_of(2), &tx).expect("pong");
    assert_eq!(answer.from, p.b_addr);
    assert_eq!(answer.rtt, Duration::from_millis(7));
    assert_eq!(
        kind,
        PathKind::Direct,
        "a configured endpoint is a direct path"
    );
    assert_eq!(p.a.take_ping_answer(&key_of(2), &tx), None, "taken once");
    // The pong was the person's, not a path probe's: nothing counted as ignored.
    let paths = p.a.peers().next().unwrap().paths().counters();
    assert_eq!(paths.pongs_ignored, 0);

    // A peer with no endpoint cannot be pinged.
    let mut c = Node::new(secret(3), [3; 16]);
    c.add_peer(peer(2, B_IP, None)).unwrap();
    assert_eq!(
        c.ping(p.now, &key_of(2)),
        Err(crate::node::PingError::NoPath)
    );
}

/// The peer's NAT rebinds while we send: its packets stop arriving on the proven path, then
/// come from a new port. A stray packet from elsewhere does not move a path that answers; once
/// the path is suspect, the peer's next packet from the new port carries our traffic there.
#[test]
fn traffic_follows_the_peer_to_its_new_port_once_the_old_path_is_suspect() {
    let mut p = Pair::new();
    p.a = Node::new(secret(1), [1; 16]);
    p.b = Node::new(secret(2), [2; 16]);
    p.a.add_peer(peer(2, B_IP, None)).unwrap();
    p.b.add_peer(peer(1, A_IP, None)).unwrap();
    p.a.handle_call_me_maybe(p.now, &key_of(2), &[p.b_addr], None, None);
    p.b.handle_call_me_maybe(p.now, &key_of(1), &[p.a_addr], None, None);
    let mut wire = Wire::new();
    drain(&mut p.a, p.a_addr, &mut wire);
    drain(&mut p.b, p.b_addr, &mut wire);
    p.run(wire);
    let mut out = vec![0u8; 2048];
    let mut from_b = |p: &mut Pair, what: &[u8]| {
        let pkt = ipv4_udp(B_IP, A_IP, what);
        let t =
            p.b.handle_tun_packet(p.now, &pkt, &mut out)
                .expect("sealed");
        out[..t.len].to_vec()
    };
    let moved = addr("198.51.100.7:50000");
    let mut a_out = vec![0u8; 2048];
    let mut a_sends = |p: &mut Pair| {
        let pkt = ipv4_udp(A_IP, B_IP, b"to b");
        let t =
            p.a.handle_tun_packet(p.now, &pkt, &mut a_out)
                .expect("sent");
        p.a.handle_timeout(p.now);
        let mut sink = Wire::new();
        drain(&mut p.a, p.a_addr, &mut sink);
        (t.dst, sink)
    };
    assert_eq!(a_sends(&mut p).0, p.b_addr);
    // 100 ms into the silence a packet of B's comes from elsewhere: A stays.
    p.now += Duration::from_millis(100);
    let early = from_b(&mut p, b"early");
    let mut sink = vec![0u8; 2048];
    assert!(matches!(
        p.a.handle_datagram(p.now, moved, &early, &mut sink),
        Inbound::ToTun { .. }
    ));
    assert_eq!(a_sends(&mut p).0, p.b_addr, "the path was not suspect yet");
    // Past the suspicion: B's next packet from its new port moves A's traffic at once.
    let deadline = p.now + crate::path::PathConfig::default().suspect_after;
    while p.a.peers().next().unwrap().paths.counters().suspicions == 0 {
        assert!(p.now < deadline, "never suspect");
        p.now += Duration::from_millis(50);
        a_sends(&mut p);
    }
    assert_eq!(a_sends(&mut p).0, p.b_addr, "suspect, but nothing else yet");
    let later = from_b(&mut p, b"from the new port");
    assert!(matches!(
        p.a.handle_datagram(p.now, moved, &later, &mut sink),
        Inbound::ToTun { .. }
    ));
    let (dst, _) = a_sends(&mut p);
    assert_eq!(dst, moved);
    let st = &p.a.peer_status(p.now)[0];
    assert_eq!((st.path, st.endpoint), (PathKind::Direct, Some(moved)));
}

#[test]
fn relay_frames_from_elsewhere_or_garbled_are_dropped() {
    let mut p = Pair::relayed();
    let mut out = vec![0u8; 2048];
    let mut frame = vec![0u8; DELIVER_HEADER_LEN + 4];
    warren_proto::relay::write_deliver_header(&mut frame);
    // Not from the relay: ignored.
    assert_eq!(
        p.a.handle_datagram(p.now, p.b_addr, &frame, &mut out),
        Inbound::Nothing
    );
    assert_eq!(p.a.counters().dropped(DropReason::Unhandled), 1);
    // From the relay, but the payload is no WireGuard or disco message.
    assert_eq!(
        p.a.handle_datagram(p.now, addr(RELAY), &frame, &mut out),
        Inbound::Nothing
    );
    assert_eq!(p.a.counters().dropped(DropReason::Malformed), 1);
    // Every truncation of a frame is handled without a panic.
    for len in 0..frame.len() {
        p.a.handle_datagram(p.now, addr(RELAY), &frame[..len], &mut out);
    }
}

#[test]
fn disco_keys_are_the_nodes_wireguard_keys() {
    for seed in [1u8, 7, 0xA1] {
        let secret = [seed; 32];
        assert_eq!(
            warren_proto::disco::public_key(&secret),
            Node::new(secret, [0; 16]).public_key()
        );
    }
}
