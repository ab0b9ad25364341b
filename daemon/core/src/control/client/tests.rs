use super::*;
use warren_proto::api::ErrorCode as Code;
use warren_proto::control::msg::{ErrorCode, JoinRequest, NatKind};

fn drain(c: &mut Client) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn welcome(networks: &[&str]) -> Welcome {
    Welcome {
        v: 1,
        overlay_ip: "100.64.0.5".parse().unwrap(),
        networks: networks.iter().map(|s| s.to_string()).collect(),
        stun_ports: vec![],
        relay: None,
    }
}

/// A client that dialed and was welcomed, events drained.
fn connected(now: Instant) -> Client {
    let mut c = Client::new("203.0.113.1:7443", true, now, 7);
    c.handle_timeout(now);
    assert_eq!(drain(&mut c), [Event::Connect]);
    c.handle_connected(now, &welcome(&["lan"]), "me").unwrap();
    drain(&mut c);
    c
}

fn peer(k: u8) -> PeerInfo {
    PeerInfo {
        key: NodeKey([k; 32]),
        name: format!("p{k}"),
        overlay_ip: "100.64.0.9".parse().unwrap(),
        networks: vec!["lan".into()],
        online: true,
        lan: vec![],
        reflexive: None,
        nat: NatKind::Unknown,
        mapped: None,
        relay: false,
        routes: vec![],
        mapped_tcp: None,
    }
}

#[test]
fn an_enabled_client_dials_at_once_and_answers_the_waiting_up() {
    let t = Instant::now();
    let mut c = Client::new("203.0.113.1:7443", true, t, 7);
    assert_eq!(c.poll_timeout(), Some(t));
    c.wait_connected(7, t);
    c.handle_timeout(t);
    assert_eq!(drain(&mut c), [Event::Connect]);
    assert_eq!(c.poll_timeout(), None);
    c.handle_connected(t, &welcome(&["lan"]), "me").unwrap();
    let ev = drain(&mut c);
    assert!(
        matches!(&ev[0], Event::Reply { token: 7, result: Ok(Answer::Done(t)) } if t.contains("as me (100.64.0.5)"))
    );
    assert_eq!(c.networks().member, ["lan"]);
    assert!(c.is_connected());
}

#[test]
fn hosts_that_lost_the_same_coordinator_come_back_spread_out() {
    let t = Instant::now();
    let firsts: Vec<Duration> = (0..200u64)
        .map(|seed| {
            let mut c = Client::new("203.0.113.1:7443", true, t, seed);
            c.handle_timeout(t);
            c.handle_connected(t, &welcome(&["lan"]), "me").unwrap();
            c.handle_disconnected(t, "the coordinator restarted".into());
            c.poll_timeout().unwrap() - t
        })
        .collect();
    let (lo, hi) = (firsts.iter().min().unwrap(), firsts.iter().max().unwrap());
    assert!(*lo >= FIRST_BACKOFF / 2 && *hi < FIRST_BACKOFF * 3 / 2);
    assert!(
        *hi - *lo > FIRST_BACKOFF * 3 / 4,
        "spread over most of a second: {lo:?}..{hi:?}"
    );
    // No 10 ms slot holds more than a tenth of them.
    let mut slots = std::collections::HashMap::new();
    for f in &firsts {
        *slots.entry(f.as_millis() / 10).or_insert(0) += 1;
    }
    assert!(slots.values().all(|n| *n <= 20), "{slots:?}");
}

#[test]
fn failures_back_off_doubling_to_a_limit_and_tell_the_waiting_up_why() {
    let t = Instant::now();
    let mut c = Client::new("203.0.113.1:7443", true, t, 7);
    c.wait_connected(1, t);
    let mut now = t;
    let mut gaps = Vec::new();
    for i in 0..7 {
        c.handle_timeout(now);
        assert_eq!(drain(&mut c).first(), Some(&Event::Connect));
        c.handle_connect_failed(now, "timed out".into(), i == 0);
        drain(&mut c);
        let next = c.poll_timeout().unwrap();
        gaps.push((next - now).as_millis() as u64);
        now = next;
    }
    for (gap, base) in gaps.iter().zip([1, 2, 4, 8, 16, 30, 30]) {
        assert!(
            (base * 500..base * 1500).contains(gap),
            "{gap} ms for a {base} s backoff: {gaps:?}"
        );
    }
    assert_eq!(c.last_error(), Some("timed out"));
    // Only the first attempt said the name was taken.
    assert!(!c.name_taken());
    // Someone waiting again makes the next try immediate.
    c.wait_connected(2, now - Duration::from_secs(5));
    assert!(c.poll_timeout().unwrap() <= now);
}

#[test]
fn requests_get_ids_and_their_own_answers() {
    let t = Instant::now();
    let mut c = connected(t);
    c.request(
        ClientMsg::JoinNetwork {
            id: 0,
            name: "Party".into(),
            password: "pw".into(),
        },
        10,
    );
    c.request(
        ClientMsg::CreateInvite {
            id: 0,
            network: "lan".into(),
            ttl_secs: 60,
        },
        11,
    );
    let sent: Vec<ClientMsg> = std::iter::from_fn(|| c.poll_transmit()).collect();
    assert_eq!(sent.iter().map(|m| m.id()).collect::<Vec<_>>(), [1, 2]);
    // Answers in any order reach the right waiter.
    c.handle_message(ServerMsg::Invite {
        id: 2,
        network: "lan".into(),
        secret: "s".into(),
        expires: 9,
    });
    c.handle_message(ServerMsg::Ok { id: 1 });
    let ev = drain(&mut c);
    assert!(matches!(
        &ev[0],
        Event::Reply {
            token: 11,
            result: Ok(Answer::Invite { .. })
        }
    ));
    assert!(ev.iter().any(|e| matches!(e, Event::Reply { token: 10, result: Ok(Answer::Done(t)) } if t == "joined network Party")));
    assert_eq!(c.networks().member, ["lan", "party"]);
    // An answer to nothing, or twice, is ignored.
    c.handle_message(ServerMsg::Ok { id: 1 });
    c.handle_message(ServerMsg::Error {
        id: 99,
        code: ErrorCode::WrongPassword,
        message: "x".into(),
    });
    assert!(drain(&mut c).is_empty());
}

/// The local API answers with the coordinator's code, so no client reads its sentence.
#[test]
fn refusals_keep_the_coordinators_code() {
    let t = Instant::now();
    let mut c = connected(t);
    let join = ClientMsg::JoinNetwork {
        id: 0,
        name: "lan".into(),
        password: "no".into(),
    };
    c.request(join, 5);
    c.handle_message(ServerMsg::Error {
        id: 1,
        code: ErrorCode::WrongPassword,
        message: "wrong password for network lan".into(),
    });
    let refused = ApiError::new(Code::WrongPassword, "wrong password for network lan");
    assert_eq!(
        drain(&mut c),
        [Event::Reply {
            token: 5,
            result: Err(refused)
        }]
    );

    // Refused at the door for the name: whoever waits for `up` hears it as such.
    let mut c = Client::new("203.0.113.1:7443", true, t, 7);
    c.wait_connected(8, t);
    c.handle_timeout(t);
    drain(&mut c);
    c.handle_connect_failed(t, "the name me is already used".into(), true);
    let ev = drain(&mut c);
    assert!(
        matches!(&ev[0], Event::Reply { token: 8, result: Err(e) } if e.code == Code::NameTaken),
        "{ev:?}"
    );
}

#[test]
fn a_dropped_connection_fails_what_waits_and_requests_while_away_say_why() {
    let t = Instant::now();
    let mut c = connected(t);
    c.request(
        ClientMsg::LeaveNetwork {
            id: 0,
            name: "lan".into(),
        },
        3,
    );
    c.handle_disconnected(t, "reset".into());
    let ev = drain(&mut c);
    assert!(
        matches!(&ev[0], Event::Reply { token: 3, result: Err(e) } if e.message.contains("dropped") && e.code == Code::CoordinatorUnreachable)
    );
    c.request(
        ClientMsg::LeaveNetwork {
            id: 0,
            name: "lan".into(),
        },
        4,
    );
    assert!(c.poll_transmit().is_none());
    let ev = drain(&mut c);
    assert!(
        matches!(&ev[0], Event::Reply { token: 4, result: Err(e) } if e.message.contains("unreachable") && e.message.contains("reset"))
    );
    let retry = c.poll_timeout().unwrap() - t;
    assert!(
        retry >= FIRST_BACKOFF / 2 && retry < FIRST_BACKOFF * 3 / 2,
        "{retry:?}"
    );
}

#[test]
fn a_connection_that_lasted_is_dialed_again_at_once_when_it_drops() {
    let t = Instant::now();
    let within = |c: &Client, from: Instant, base: Duration| {
        let wait = c.poll_timeout().unwrap() - from;
        assert!(
            wait >= base / 2 && wait < base * 3 / 2,
            "{wait:?} for {base:?}"
        );
        from + wait
    };
    // Up for a minute, then reset (the coordinator restarted): dial again within a few
    // hundred milliseconds, not in a second or more.
    let mut c = connected(t);
    let lost = t + Duration::from_secs(60);
    c.handle_disconnected(lost, "reset by peer".into());
    let redial = within(&c, lost, QUICK_REDIAL);
    c.handle_timeout(redial);
    assert!(drain(&mut c).contains(&Event::Connect));
    // Still down: the usual backoff from there.
    c.handle_connect_failed(redial, "refused".into(), false);
    within(&c, redial, FIRST_BACKOFF);
    // A connection dropped right after its welcome waits the backoff.
    let mut c = connected(t);
    let early = t + STABLE_FOR - Duration::from_millis(1);
    c.handle_disconnected(early, "reset by peer".into());
    within(&c, early, FIRST_BACKOFF);
}

#[test]
fn pushed_networks_replace_the_list_and_notes_reach_the_shell() {
    let t = Instant::now();
    let mut c = connected(t);
    c.handle_message(ServerMsg::Networks {
        networks: vec![
            NetworkState {
                name: "lan".into(),
                member: true,
                owned: true,
                locked: true,
                requests: vec![JoinRequest {
                    key: NodeKey([2; 32]),
                    name: "bob".into(),
                    asked_at: 5,
                }],
                routes: vec![],
            },
            NetworkState {
                name: "left".into(),
                member: false,
                owned: true,
                locked: false,
                requests: vec![],
                routes: vec![],
            },
        ],
        waiting: vec!["club".into()],
        note: Some("you were let in".into()),
    });
    let n = c.networks();
    assert_eq!(n.member, ["lan"]);
    assert_eq!(n.owned, ["lan", "left"]);
    assert_eq!(n.locked, ["lan"]);
    assert_eq!(n.waiting, ["club"]);
    assert_eq!(n.requests[0].name, "bob");
    assert!(n.has("CLUB") && n.has("left") && !n.has("other"));
    assert!(drain(&mut c).contains(&Event::Note("you were let in".into())));
}

#[test]
fn logout_removes_exactly_this_coordinators_peers() {
    let t = Instant::now();
    let mut c = connected(t);
    c.handle_message(ServerMsg::PeerUpsert {
        peer: peer(1),
        call: false,
    });
    c.handle_message(ServerMsg::PeerUpsert {
        peer: peer(2),
        call: false,
    });
    c.handle_message(ServerMsg::PeerRemove {
        key: NodeKey([2; 32]),
    });
    // A removal of a peer it never brought is not passed on.
    c.handle_message(ServerMsg::PeerRemove {
        key: NodeKey([3; 32]),
    });
    drain(&mut c);
    c.logout(20);
    let msg = c.poll_transmit().unwrap();
    assert!(matches!(msg, ClientMsg::Logout { .. }));
    c.handle_message(ServerMsg::Ok { id: msg.id() });
    let ev = drain(&mut c);
    assert!(
        matches!(&ev[0], Event::Reply { token: 20, result: Ok(Answer::Done(t)) } if t.contains("left lan"))
    );
    assert!(ev.contains(&Event::Close("logged out")));
    assert!(ev.contains(&Event::PeerRemove(NodeKey([1; 32]))));
    assert!(!ev.contains(&Event::PeerRemove(NodeKey([2; 32]))));
    assert_eq!(ev.last(), Some(&Event::LoggedOut));
    assert!(!c.is_enabled());
}

#[test]
fn turning_off_closes_and_turning_on_dials_again() {
    let t = Instant::now();
    let mut c = connected(t);
    c.set_enabled(false, t);
    assert!(drain(&mut c).contains(&Event::Close("turned off")));
    assert_eq!(c.poll_timeout(), None);
    c.logout(1);
    assert!(
        matches!(&drain(&mut c)[0], Event::Reply { result: Err(e), .. } if e.message.contains("--force"))
    );
    c.set_enabled(true, t);
    c.handle_timeout(t);
    assert_eq!(drain(&mut c), [Event::Connect]);
    // A reconnect while dialing abandons the attempt and dials again.
    c.reconnect(t);
    c.handle_timeout(t);
    assert_eq!(
        drain(&mut c),
        [Event::Close("reconfigured"), Event::Connect]
    );
}

#[test]
fn data_plane_messages_pass_through() {
    let t = Instant::now();
    let mut c = connected(t);
    let m = ServerMsg::AddressClash {
        ip: "100.64.0.5".parse().unwrap(),
    };
    c.handle_message(m.clone());
    assert_eq!(drain(&mut c), [Event::Dataplane(m)]);
}

#[test]
fn a_coordinator_cannot_route_addresses_outside_the_overlay() {
    let t = Instant::now();
    let mut c = Client::new("203.0.113.1:7443", true, t, 7);
    c.wait_connected(1, t);
    c.handle_timeout(t);
    drain(&mut c);
    let mut w = welcome(&["lan"]);
    w.overlay_ip = "8.8.8.8".parse().unwrap();
    let e = c.handle_connected(t, &w, "me").unwrap_err();
    assert!(e.contains("outside Warren's overlay"), "{e}");
    assert!(!c.is_connected());
    assert!(
        matches!(&drain(&mut c)[0], Event::Reply { token: 1, result: Err(e) } if e.message.contains("8.8.8.8"))
    );
    // Connected properly, a peer at a public address is refused; an overlay one is taken.
    let mut c = connected(t);
    let mut evil = peer(7);
    evil.overlay_ip = "1.1.1.1".parse().unwrap();
    c.handle_message(ServerMsg::PeerUpsert {
        peer: evil,
        call: false,
    });
    let mut six = peer(8);
    six.overlay_ip = "2001:db8::1".parse().unwrap();
    c.handle_message(ServerMsg::PeerUpsert {
        peer: six,
        call: false,
    });
    c.handle_message(ServerMsg::PeerUpsert {
        peer: peer(9),
        call: false,
    });
    let ev = drain(&mut c);
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, Event::PeerUpsert(_)))
            .count(),
        1,
        "{ev:?}"
    );
    assert_eq!(c.refused_peers(), 2);
}

/// An upsert that carries the call to probe becomes the peer, then the probe, in that order
/// (the data plane probes only peers it knows); one without it is only the peer.
#[test]
fn an_upsert_with_a_call_is_the_peer_then_its_probe() {
    let t = Instant::now();
    let mut c = connected(t);
    drain(&mut c);
    let mut p = peer(1);
    p.reflexive = Some("198.51.100.7:41820".parse().unwrap());
    p.lan = vec!["192.168.1.7:41820".parse().unwrap()];
    p.mapped_tcp = Some("198.51.100.7:41821".parse().unwrap());
    c.handle_message(ServerMsg::PeerUpsert {
        peer: p.clone(),
        call: true,
    });
    let ev = drain(&mut c);
    assert_eq!(
        ev,
        vec![
            Event::PeerUpsert(p.clone()),
            Event::Dataplane(ServerMsg::CallMeMaybe {
                key: p.key,
                lan: p.lan.clone(),
                reflexive: p.reflexive,
                mapped: None,
                mapped_tcp: p.mapped_tcp,
            }),
        ]
    );
    c.handle_message(ServerMsg::PeerUpsert {
        peer: p.clone(),
        call: false,
    });
    assert_eq!(drain(&mut c), vec![Event::PeerUpsert(p)]);
}

/// A round of calls goes to the data plane as it is (the session looks up each peer).
#[test]
fn a_round_of_calls_goes_to_the_data_plane() {
    let t = Instant::now();
    let mut c = connected(t);
    drain(&mut c);
    let calls = ServerMsg::Calls {
        keys: vec![NodeKey([1; 32]), NodeKey([2; 32])],
    };
    c.handle_message(calls.clone());
    assert_eq!(drain(&mut c), vec![Event::Dataplane(calls)]);
}
