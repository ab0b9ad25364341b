//! Limits a busy or hostile daemon meets: slow readers, password attempts, new keys per source,
//! and a database that refuses a change.

use super::*;

/// A member that joined and then never reads: its peers' churn only refreshes what waits
/// for it (the queue stays within its bound), the replies it provokes overflow it, and then
/// it is disconnected while the others carry on.
#[tokio::test]
async fn a_daemon_that_never_reads_is_disconnected_and_the_others_keep_working() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut server, mut inbox) = setup(tmp.path());
    server.outbox_capacity = 16;
    let server = Arc::new(server);
    let (mallory, to_server, _unread, task) = connect(&server, [9; 32], "mallory").await;
    let frame = |m: &ClientMsg| serde_json::to_vec(m).unwrap();
    let join = ClientMsg::JoinNetwork {
        id: 1,
        name: "net".into(),
        password: "pw".into(),
    };
    to_server.send(frame(&join)).await.unwrap();
    until("mallory is a member", || {
        server.hub().registry.is_member(&mallory, "net")
    })
    .await;

    // Bob leaves and joins 100 times: each time mallory is sent bob's removal, his record
    // and a call: far more than 16 messages, all about bob.
    let bob = key(BOB);
    for round in 0..100u8 {
        let leave = ClientMsg::LeaveNetwork {
            id: 1,
            name: "net".into(),
        };
        handle(&server, bob, remote(round), leave).await;
        let rejoin = ClientMsg::JoinNetwork {
            id: 2,
            name: "net".into(),
            password: "pw".into(),
        };
        handle(&server, bob, remote(round), rejoin).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!task.is_finished(), "churn alone overflowed the queue");
    assert_eq!(server.slow_readers.load(Ordering::Relaxed), 0);

    // Replies cannot replace each other: 40 of them overflow it.
    for id in 10..50 {
        let list = ClientMsg::ListInvites {
            id,
            network: "net".into(),
        };
        if to_server.send(frame(&list)).await.is_err() {
            break;
        }
    }
    let ended = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the session ended")
        .unwrap();
    let why = format!("{:#}", ended.unwrap_err());
    assert!(why.contains("read too slowly"), "{why}");
    assert_eq!(server.slow_readers.load(Ordering::Relaxed), 1);

    // The others: alice hears mallory went offline and is still served.
    assert!(!server.hub().online.contains_key(&mallory));
    let got = drain(&mut inbox[0]);
    assert!(
        got.iter().any(
            |m| matches!(m, ServerMsg::PeerUpsert { peer, .. } if peer.key == mallory && !peer.online)
        ),
        "{got:?}"
    );
    let list = ClientMsg::ListInvites {
        id: 99,
        network: "net".into(),
    };
    handle(&server, key(ALICE), remote(1), list).await;
    assert!(matches!(
        drain(&mut inbox[0]).as_slice(),
        [ServerMsg::Invites { id: 99, .. }]
    ));
}

/// While Argon2 checks one host's password (made deliberately slow here), another
/// session's request is answered at once: the check holds no lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_check_does_not_hold_up_other_sessions() {
    use warren_coordinator_core::password::hash_password;
    let tmp = tempfile::tempdir().unwrap();
    let (server, mut inbox) = setup(tmp.path());
    let (alice, carol) = (key(ALICE), key(CAROL));
    let slow = HashParams::new(64 * 1024, 8, 1, None).unwrap();
    let t = std::time::Instant::now();
    let phc = hash_password(&slow, "right", &[1; 16]).unwrap();
    let cost = t.elapsed();
    {
        let mut hub = server.hub();
        let c = hub
            .registry
            .create_network_hashed(alice, "slow", phc, 1)
            .unwrap();
        hub.persist(&c).unwrap();
    }
    let server = Arc::new(server);
    let guess = tokio::spawn({
        let server = server.clone();
        async move {
            let join = ClientMsg::JoinNetwork {
                id: 1,
                name: "slow".into(),
                password: "wrong".into(),
            };
            handle(&server, carol, remote(3), join).await
        }
    });
    tokio::time::sleep(cost / 10).await;
    let t = std::time::Instant::now();
    let list = ClientMsg::ListInvites {
        id: 2,
        network: "net".into(),
    };
    handle(&server, alice, remote(1), list).await;
    let served = t.elapsed();
    assert!(
        served < cost / 4,
        "served in {served:?} while a hash takes {cost:?}"
    );
    assert!(
        !guess.is_finished(),
        "the guess ended first (a hash takes {cost:?}): the test proves nothing"
    );
    assert!(matches!(
        drain(&mut inbox[0]).as_slice(),
        [ServerMsg::Invites { id: 2, .. }]
    ));
    guess.await.unwrap();
    let (code, message) = error_of(&drain(&mut inbox[2]), 1);
    assert_eq!(
        (code, message.as_str()),
        (ErrorCode::WrongPassword, "wrong password for network slow")
    );
}

/// Guesses at one network from many addresses, and password requests of any kind over
/// the whole coordinator, are limited, and the user is told which limit and how long.
#[tokio::test]
async fn password_attempts_are_limited_per_network_and_overall() {
    use warren_coordinator_core::ratelimit::{GLOBAL, PER_NETWORK};
    use warren_coordinator_core::{PasswordLimiter, RateLimitConfig};
    let tmp = tempfile::tempdir().unwrap();
    let (server, mut inbox) = setup(tmp.path());
    let carol = key(CAROL);
    let guess = |id| ClientMsg::JoinNetwork {
        id,
        name: "NET".into(),
        password: format!("guess{id}"),
    };
    for id in 0..PER_NETWORK.burst as u64 {
        handle(&server, carol, remote(100 + id as u8), guess(id)).await;
        assert_eq!(
            error_of(&drain(&mut inbox[2]), id).0,
            ErrorCode::WrongPassword
        );
    }
    handle(&server, carol, remote(99), guess(50)).await;
    let (code, message) = error_of(&drain(&mut inbox[2]), 50);
    assert_eq!(code, ErrorCode::RateLimited);
    assert_eq!(
        message,
        "too many password attempts for network net in the last minute: try again in 6 s"
    );
    // Another network is not affected, and neither is the right password elsewhere.
    let create = ClientMsg::CreateNetwork {
        id: 51,
        name: "other".into(),
        password: "pw".into(),
    };
    handle(&server, carol, remote(99), create).await;
    assert_eq!(drain(&mut inbox[2]), [ServerMsg::Ok { id: 51 }]);

    // Overall: three attempts a minute here, whatever the address or network.
    server.hub().passwords = PasswordLimiter::new(
        PER_NETWORK,
        RateLimitConfig {
            interval_ms: 60_000,
            burst: 3,
            ..GLOBAL
        },
    );
    let set = |id, network: &str| ClientMsg::SetPassword {
        id,
        network: network.into(),
        password: "new".into(),
    };
    handle(&server, carol, remote(98), set(60, "other")).await;
    handle(&server, key(ALICE), remote(97), set(61, "net")).await;
    let create = |id| ClientMsg::CreateNetwork {
        id,
        name: format!("n{id}"),
        password: "pw".into(),
    };
    handle(&server, key(BOB), remote(96), create(62)).await;
    handle(&server, key(BOB), remote(95), create(63)).await;
    assert!(drain(&mut inbox[2]).contains(&ServerMsg::Ok { id: 60 }));
    assert!(drain(&mut inbox[0]).contains(&ServerMsg::Ok { id: 61 }));
    let bob = drain(&mut inbox[1]);
    assert_eq!(bob[0], ServerMsg::Ok { id: 62 });
    let (code, message) = error_of(&bob[1..], 63);
    assert_eq!(code, ErrorCode::RateLimited);
    assert_eq!(
        message,
        "the coordinator is checking too many passwords at the moment: try again in 60 s"
    );
    assert!(!server
        .hub()
        .registry
        .networks_of(&key(BOB))
        .contains(&"n63".to_string()));
}

/// A password Argon2 found right is not checked (nor counted) again: friends joining with
/// it get in while guesses at the same network are refused by its limit; a wrong one, and
/// the old one after a password change, still are guesses.
#[tokio::test]
async fn the_right_password_again_costs_no_attempt() {
    use warren_coordinator_core::ratelimit::PER_NETWORK;
    let tmp = tempfile::tempdir().unwrap();
    let (server, mut inbox) = setup(tmp.path());
    let carol = key(CAROL);
    let join = |id, password: &str| ClientMsg::JoinNetwork {
        id,
        name: "net".into(),
        password: password.into(),
    };
    let leave = |id| ClientMsg::LeaveNetwork {
        id,
        name: "net".into(),
    };
    handle(&server, carol, remote(100), join(1, "pw")).await;
    assert!(drain(&mut inbox[2]).contains(&ServerMsg::Ok { id: 1 }));
    handle(&server, carol, remote(100), leave(2)).await;
    // The first check spent one attempt; the guesses spend the rest.
    for id in 1..PER_NETWORK.burst as u64 {
        handle(
            &server,
            carol,
            remote(101 + id as u8),
            join(10 + id, "guess"),
        )
        .await;
    }
    drain(&mut inbox[2]);
    handle(&server, carol, remote(99), join(50, "guess")).await;
    let (code, _) = error_of(&drain(&mut inbox[2]), 50);
    assert_eq!(code, ErrorCode::RateLimited, "the network's limit is spent");
    handle(&server, carol, remote(98), join(51, "pw")).await;
    assert!(drain(&mut inbox[2]).contains(&ServerMsg::Ok { id: 51 }));
    assert!(server.hub().registry.is_member(&carol, "net"));

    // A new password (the limits renewed): the old one is checked again, and is wrong.
    let set = ClientMsg::SetPassword {
        id: 60,
        network: "net".into(),
        password: "new".into(),
    };
    server.hub().passwords = Default::default();
    handle(&server, key(ALICE), remote(97), set).await;
    assert!(drain(&mut inbox[0]).contains(&ServerMsg::Ok { id: 60 }));
    handle(&server, carol, remote(98), leave(61)).await;
    handle(&server, carol, remote(98), join(62, "pw")).await;
    assert!(drain(&mut inbox[2]).iter().any(|m| matches!(
        m,
        ServerMsg::Error {
            id: 62,
            code: ErrorCode::WrongPassword,
            ..
        }
    )));
    assert!(!server.hub().registry.is_member(&carol, "net"));
}

/// Joins with a remembered password still count against their address's join limit:
/// someone who knows the password cannot join and leave as fast as they can send.
#[tokio::test]
async fn remembered_passwords_still_count_as_joins_from_their_address() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, mut inbox) = setup(tmp.path());
    let carol = key(CAROL);
    let mut refused = None;
    for round in 0..20u64 {
        let join = ClientMsg::JoinNetwork {
            id: 2 * round,
            name: "net".into(),
            password: "pw".into(),
        };
        handle(&server, carol, remote(100), join).await;
        let got = drain(&mut inbox[2]);
        if let Some(ServerMsg::Error { code, message, .. }) =
            got.iter().find(|m| matches!(m, ServerMsg::Error { .. }))
        {
            refused = Some((round, *code, message.clone()));
            break;
        }
        let leave = ClientMsg::LeaveNetwork {
            id: 2 * round + 1,
            name: "net".into(),
        };
        handle(&server, carol, remote(100), leave).await;
        drain(&mut inbox[2]);
    }
    let (round, code, message) = refused.expect("the address's join limit");
    assert!(round >= 2, "the first joins go through (round {round})");
    assert_eq!(code, ErrorCode::RateLimited);
    assert!(message.contains("from this address"), "{message}");
}

/// New keys from one address come at a rate and a refused one is not stored; keys the
/// coordinator knows, and other addresses, are not held up.
#[tokio::test]
async fn new_keys_are_limited_per_source() {
    use warren_coordinator_core::ratelimit::NEW_KEYS;
    use warren_coordinator_core::{NewKeyLimiter, RateLimitConfig};
    let tmp = tempfile::tempdir().unwrap();
    let (server, _inbox) = setup(tmp.path());
    server.hub().new_keys = NewKeyLimiter::new(RateLimitConfig {
        burst: 2,
        ..NEW_KEYS
    });
    let from = remote(40);
    for i in 10..12 {
        register(&server, key(i), from, &hello(&format!("n{i}"), None)).unwrap();
    }
    let (code, message) = register(&server, key(12), from, &hello("n12", None)).unwrap_err();
    assert_eq!(code, ErrorCode::RateLimited);
    assert!(
        message.contains("connect this host again in 30 s"),
        "{message}"
    );
    {
        let hub = server.hub();
        assert_eq!(hub.registry.node_name(&key(12)), None);
        assert_eq!(hub.registry.lease_of(&key(12)), None);
        assert_eq!(hub.store.load().unwrap(), hub.registry.snapshot());
    }
    // Known keys reconnect from there; a new key from elsewhere registers.
    register(&server, key(10), from, &hello("n10", None)).unwrap();
    register(&server, key(ALICE), from, &hello("alice", None)).unwrap();
    register(&server, key(12), remote(41), &hello("n12", None)).unwrap();
}

/// When the database refuses a change, memory does not keep it: the client is told, its
/// peers hear nothing, and the registry is what the database holds.
#[tokio::test]
async fn a_change_the_database_refuses_is_not_kept_in_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, mut inbox) = setup(tmp.path());
    let (alice, carol) = (key(ALICE), key(CAROL));
    let before = server.hub().registry.snapshot();
    server.hub().store.fail_writes(true);

    let join = ClientMsg::JoinNetwork {
        id: 1,
        name: "net".into(),
        password: "pw".into(),
    };
    handle(&server, carol, remote(3), join.clone()).await;
    let (code, message) = error_of(&drain(&mut inbox[2]), 1);
    assert_eq!(code, ErrorCode::Internal);
    assert!(
        message.starts_with("coordinator storage failed"),
        "{message}"
    );
    let create = ClientMsg::CreateNetwork {
        id: 2,
        name: "new".into(),
        password: "pw".into(),
    };
    handle(&server, carol, remote(3), create).await;
    assert_eq!(error_of(&drain(&mut inbox[2]), 2).0, ErrorCode::Internal);
    let invite = ClientMsg::CreateInvite {
        id: 3,
        network: "net".into(),
        ttl_secs: 60,
    };
    handle(&server, alice, remote(1), invite).await;
    assert_eq!(error_of(&drain(&mut inbox[0]), 3).0, ErrorCode::Internal);
    let newcomer = register(&server, key(20), remote(20), &hello("dave", None));
    assert_eq!(newcomer.unwrap_err().0, ErrorCode::Internal);
    for i in [0, 1] {
        assert!(drain(&mut inbox[i]).is_empty(), "member {i} heard of it");
    }
    {
        let hub = server.hub();
        assert_eq!(hub.registry.snapshot(), before);
        assert!(!hub.registry.is_member(&carol, "net"));
        assert_eq!(hub.registry.node_name(&key(20)), None);
        assert!(hub.registry.peers_of(&carol).is_empty());
    }

    // The database works again: so does the join, and both agree.
    server.hub().store.fail_writes(false);
    handle(&server, carol, remote(3), join).await;
    assert!(drain(&mut inbox[2]).contains(&ServerMsg::Ok { id: 1 }));
    let hub = server.hub();
    assert!(hub.registry.is_member(&carol, "net"));
    assert_eq!(hub.store.load().unwrap(), hub.registry.snapshot());
}

#[tokio::test]
async fn invite_joins_are_rate_limited_per_source() {
    let tmp = tempfile::tempdir().unwrap();
    let (server, mut inbox) = setup(tmp.path());
    let guess = |id| ClientMsg::JoinInvite {
        id,
        network: "net".into(),
        secret: URL_SAFE_NO_PAD.encode([id as u8; 16]),
    };
    let mut codes = Vec::new();
    for id in 1..=8 {
        handle(&server, key(CAROL), remote(9), guess(id)).await;
        codes.push(error_of(&drain(&mut inbox[2]), id).0);
    }
    let burst = warren_coordinator_core::RateLimitConfig::default().burst as usize;
    assert!(codes[..burst]
        .iter()
        .all(|c| *c == ErrorCode::InviteInvalid));
    assert!(codes[burst..].iter().all(|c| *c == ErrorCode::RateLimited));
    // Another source is not affected.
    handle(&server, key(CAROL), remote(10), guess(9)).await;
    assert_eq!(
        error_of(&drain(&mut inbox[2]), 9).0,
        ErrorCode::InviteInvalid
    );
}
