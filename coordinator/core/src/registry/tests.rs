use super::*;
use crate::lease::LEASE_TTL;
use crate::password::test_params;
use crate::testutil::{colliding_pair, key};
use warren_proto::invite::SECRET_LEN;
use warren_proto::overlay::derive_v4;

const SALT: [u8; 16] = [7; 16];
const T0: u64 = 1_700_000_000;

fn config() -> RegistryConfig {
    RegistryConfig {
        hash_params: test_params(),
        ..Default::default()
    }
}

fn registry() -> Registry {
    Registry::new(config()).unwrap()
}

/// Registers key(i) as `name`.
fn up(reg: &mut Registry, i: u32, name: &str) -> NodeKey {
    let k = key(i);
    reg.register_node(k, name, None, T0).unwrap();
    k
}

fn names(peers: &[PeerInfo]) -> Vec<&str> {
    peers.iter().map(|p| p.name.as_str()).collect()
}

#[test]
fn register_create_join_changes() {
    let mut reg = registry();
    let a = key(1);
    let lease_a = LeaseRecord {
        node: a,
        addr: derive_v4(&a),
        renewed_at: T0,
    };
    assert_eq!(
        reg.register_node(a, "Alice", None, T0).unwrap(),
        vec![
            Change::NodeSaved(NodeRecord {
                key: a,
                name: "alice".into(),
                created_at: T0
            }),
            Change::LeaseGranted(lease_a),
        ]
    );
    // Registering again renews the lease, nothing else.
    assert_eq!(
        reg.register_node(a, "alice", None, T0 + 5).unwrap(),
        vec![Change::LeaseRenewed(LeaseRecord {
            renewed_at: T0 + 5,
            ..lease_a
        })]
    );

    let changes = reg
        .create_network(a, "LAN-Party", "hunter2", &SALT, T0 + 10)
        .unwrap();
    let [Change::NetworkCreated(net), Change::MemberAdded(m)] = changes.as_slice() else {
        panic!("unexpected changes {changes:?}");
    };
    assert_eq!(net.name, "lan-party");
    assert_eq!(net.owner, a);
    assert_eq!(net.created_at, T0 + 10);
    assert!(net.password_hash.starts_with("$argon2id$"));
    assert!(!net.password_hash.contains("hunter2"));
    assert_eq!(
        *m,
        Membership {
            network: "lan-party".into(),
            node: a,
            joined_at: T0 + 10
        }
    );

    let b = up(&mut reg, 2, "bob");
    assert_eq!(
        reg.join_network(b, "lan-PARTY", "hunter2", T0 + 20)
            .unwrap(),
        vec![Change::MemberAdded(Membership {
            network: "lan-party".into(),
            node: b,
            joined_at: T0 + 20
        })]
    );
    // Already a member: fine, nothing to do.
    assert_eq!(
        reg.join_network(b, "lan-party", "hunter2", T0 + 30)
            .unwrap(),
        vec![]
    );
    assert_eq!(reg.members_of("lan-party"), Some(vec![a, b]));
    assert_eq!(reg.networks_of(&b), vec!["lan-party".to_string()]);
}

#[test]
fn errors_table_and_failures_change_nothing() {
    let mut reg = registry();
    let a = up(&mut reg, 1, "alice");
    let b = up(&mut reg, 2, "bob");
    let twin = up(&mut reg, 3, "alice");
    let stranger = key(99); // never registered
    reg.create_network(a, "lan-party", "hunter2", &SALT, T0)
        .unwrap();
    reg.join_network(b, "lan-party", "hunter2", T0).unwrap();
    reg.create_network(twin, "other", "pw", &SALT, T0).unwrap();

    type Op = Box<dyn Fn(&mut Registry) -> Result<Vec<Change>, RegistryError>>;
    let cases: Vec<(&str, Op, RegistryError, &str)> = vec![
        (
            "bad network name",
            Box::new(move |r| r.create_network(a, "lan party", "pw", &SALT, T0)),
            RegistryError::InvalidName {
                kind: NameKind::Network,
                name: "lan party".into(),
                problem: NameProblem::BadChar(' '),
            },
            "invalid network name \"lan party\": ' ' is not allowed",
        ),
        (
            "bad node name",
            Box::new(move |r| r.register_node(key(4), "", None, T0)),
            RegistryError::InvalidName {
                kind: NameKind::Node,
                name: "".into(),
                problem: NameProblem::Empty,
            },
            "invalid host name \"\": it is empty",
        ),
        (
            "empty password",
            Box::new(move |r| r.create_network(a, "new", "", &SALT, T0)),
            RegistryError::EmptyPassword,
            "a network needs a password",
        ),
        (
            "duplicate network, any case",
            Box::new(move |r| r.create_network(b, "LAN-party", "x", &SALT, T0)),
            RegistryError::NetworkExists("lan-party".into()),
            "network lan-party already exists: join it with `warren join lan-party",
        ),
        (
            "unknown network",
            Box::new(move |r| r.join_network(b, "lan-partey", "hunter2", T0)),
            RegistryError::NoSuchNetwork("lan-partey".into()),
            "no network named lan-partey: check the name, or create it",
        ),
        (
            "wrong password",
            Box::new(move |r| r.join_network(twin, "lan-party", "hunter3", T0)),
            RegistryError::WrongPassword("lan-party".into()),
            "wrong password for network lan-party",
        ),
        (
            "wrong password from a member",
            Box::new(move |r| r.join_network(b, "lan-party", "nope", T0)),
            RegistryError::WrongPassword("lan-party".into()),
            "wrong password for network lan-party",
        ),
        (
            "name taken on join",
            Box::new(move |r| r.join_network(twin, "lan-party", "hunter2", T0)),
            RegistryError::NameTaken {
                name: "alice".into(),
                network: "lan-party".into(),
            },
            "the name alice is already used by another host in network lan-party: \
             pick another name with --name",
        ),
        (
            "name taken on rename",
            Box::new(move |r| r.register_node(b, "Alice", None, T0)),
            RegistryError::NameTaken {
                name: "alice".into(),
                network: "lan-party".into(),
            },
            "pick another name with --name",
        ),
        (
            "leave a network one is not in",
            Box::new(move |r| r.leave_network(twin, "lan-party")),
            RegistryError::NotAMember("lan-party".into()),
            "this host is not a member of network lan-party",
        ),
        (
            "leave an unknown network",
            Box::new(move |r| r.leave_network(a, "nowhere")),
            RegistryError::NoSuchNetwork("nowhere".into()),
            "no network named nowhere",
        ),
        (
            "unregistered creator",
            Box::new(move |r| r.create_network(stranger, "x", "pw", &SALT, T0)),
            RegistryError::UnknownNode(stranger),
            "has not registered with the coordinator yet",
        ),
        (
            "unregistered joiner",
            Box::new(move |r| r.join_network(stranger, "lan-party", "hunter2", T0)),
            RegistryError::UnknownNode(stranger),
            "has not registered",
        ),
        (
            "unregistered renewal",
            Box::new(move |r| r.renew_lease(stranger, T0)),
            RegistryError::UnknownNode(stranger),
            "has not registered",
        ),
    ];
    for (what, op, want, text) in cases {
        let before = reg.snapshot();
        let got = op(&mut reg).expect_err(what);
        assert_eq!(got, want, "{what}");
        let msg = got.to_string();
        assert!(msg.contains(text), "{what}: message {msg:?} lacks {text:?}");
        assert_eq!(reg.snapshot(), before, "{what} changed the state");
    }
}

#[test]
fn same_name_is_fine_in_networks_that_do_not_meet() {
    let mut reg = registry();
    let a1 = up(&mut reg, 1, "alice");
    let a2 = up(&mut reg, 2, "alice");
    reg.create_network(a1, "one", "pw", &SALT, T0).unwrap();
    reg.create_network(a2, "two", "pw", &SALT, T0).unwrap();
    // a2 renames itself to a name free in its networks; then it can join "one".
    let changes = reg.register_node(a2, "alice2", None, T0 + 1).unwrap();
    assert!(
        matches!(&changes[0], Change::NodeSaved(n) if n.name == "alice2" && n.created_at == T0)
    );
    reg.join_network(a2, "one", "pw", T0 + 2).unwrap();
    assert_eq!(names(&reg.peers_of(&a1)), ["alice2"]);
    // Back to "alice" is now refused in "one".
    assert_eq!(
        reg.register_node(a2, "alice", None, T0 + 3),
        Err(RegistryError::NameTaken {
            name: "alice".into(),
            network: "one".into()
        })
    );
}

#[test]
fn leave_and_rejoin() {
    let mut reg = registry();
    let a = up(&mut reg, 1, "alice");
    let b = up(&mut reg, 2, "bob");
    reg.create_network(a, "lan", "pw", &SALT, T0).unwrap();
    reg.join_network(b, "lan", "pw", T0).unwrap();
    assert_eq!(names(&reg.peers_of(&a)), ["bob"]);

    assert_eq!(
        reg.leave_network(b, "LAN").unwrap(),
        vec![Change::MemberRemoved {
            network: "lan".into(),
            node: b
        }]
    );
    assert!(reg.peers_of(&a).is_empty());
    assert!(reg.peers_of(&b).is_empty());
    assert!(!reg.shares_network(&a, &b));
    assert_eq!(
        reg.leave_network(b, "lan"),
        Err(RegistryError::NotAMember("lan".into()))
    );

    // The last member leaves: the network stays, and its owner can come back.
    reg.leave_network(a, "lan").unwrap();
    assert_eq!(reg.members_of("lan"), Some(vec![]));
    assert_eq!(reg.network("lan").unwrap().owner, a);
    assert_eq!(
        reg.create_network(b, "lan", "other", &SALT, T0),
        Err(RegistryError::NetworkExists("lan".into()))
    );
    assert_eq!(
        reg.join_network(a, "lan", "wrong", T0),
        Err(RegistryError::WrongPassword("lan".into()))
    );
    reg.join_network(a, "lan", "pw", T0 + 1).unwrap();
    reg.join_network(b, "lan", "pw", T0 + 1).unwrap();
    assert_eq!(names(&reg.peers_of(&a)), ["bob"]);
    assert!(reg.shares_network(&a, &b));
}

#[test]
fn peers_only_across_shared_networks() {
    let mut reg = registry();
    let hub = up(&mut reg, 1, "hub");
    let b = up(&mut reg, 2, "bob");
    let c = up(&mut reg, 3, "carol");
    let d = up(&mut reg, 4, "dave");
    let e = up(&mut reg, 5, "erin");
    let loner = up(&mut reg, 6, "loner");
    reg.create_network(hub, "work", "pw", &SALT, T0).unwrap();
    reg.create_network(hub, "games", "pw", &SALT, T0).unwrap();
    reg.join_network(b, "work", "pw", T0).unwrap();
    reg.join_network(c, "games", "pw", T0).unwrap();
    reg.join_network(e, "work", "pw", T0).unwrap();
    reg.join_network(e, "games", "pw", T0).unwrap();
    reg.create_network(d, "elsewhere", "pw", &SALT, T0).unwrap();

    let peers = reg.peers_of(&hub);
    assert_eq!(names(&peers), ["bob", "carol", "erin"]);
    assert_eq!(peers[0].networks, ["work"]);
    assert_eq!(peers[1].networks, ["games"]);
    assert_eq!(peers[2].networks, ["games", "work"]);
    assert_eq!(peers[0].key, b);
    assert_eq!(peers[0].overlay_v4, reg.lease_of(&b).unwrap().addr);

    // bob (work) and carol (games) share nothing, though both talk to the hub.
    assert_eq!(names(&reg.peers_of(&b)), ["erin", "hub"]);
    assert_eq!(names(&reg.peers_of(&c)), ["erin", "hub"]);
    assert!(!reg.shares_network(&b, &c));
    assert!(reg.shares_network(&b, &hub));
    // A network of one, and a node in none, have no peers.
    assert!(reg.peers_of(&d).is_empty());
    assert!(reg.peers_of(&loner).is_empty());
    assert!(reg.peers_of(&key(99)).is_empty());
    assert!(!reg.shares_network(&hub, &hub));
}

#[test]
fn snapshot_restore_keeps_leases_and_answers() {
    let mut reg = registry();
    let (x, y) = colliding_pair();
    let a = up(&mut reg, 1, "alice");
    reg.register_node(x, "x", None, T0).unwrap();
    reg.register_node(y, "y", None, T0).unwrap(); // probed past x's address
    reg.create_network(a, "lan", "pw", &SALT, T0).unwrap();
    reg.join_network(x, "lan", "pw", T0).unwrap();
    reg.join_network(y, "lan", "pw", T0).unwrap();
    reg.create_network(y, "solo", "pw2", &SALT, T0).unwrap();

    let snap = reg.snapshot();
    let mut back = Registry::from_snapshot(config(), snap.clone()).unwrap();
    assert_eq!(back.snapshot(), snap);
    for k in [a, x, y] {
        assert_eq!(back.peers_of(&k), reg.peers_of(&k));
        assert_eq!(back.lease_of(&k), reg.lease_of(&k));
    }
    // After the restart y registers again and keeps its probed address (not its derived one).
    let y_addr = reg.lease_of(&y).unwrap().addr;
    assert_ne!(y_addr, derive_v4(&y));
    assert_eq!(
        back.register_node(y, "y", None, T0 + 100).unwrap(),
        vec![Change::LeaseRenewed(LeaseRecord {
            node: y,
            addr: y_addr,
            renewed_at: T0 + 100
        })]
    );
    // Passwords survive too.
    back.leave_network(y, "solo").unwrap();
    back.join_network(y, "solo", "pw2", T0 + 200).unwrap();
}

#[test]
fn expired_lease_taken_over_then_owner_returns() {
    let mut reg = registry();
    let (x, y) = colliding_pair();
    let a = up(&mut reg, 1, "alice");
    reg.register_node(x, "x", None, T0).unwrap();
    reg.create_network(a, "lan", "pw", &SALT, T0).unwrap();
    reg.join_network(x, "lan", "pw", T0).unwrap();
    let pref = derive_v4(&x);

    // Keep alice alive; x goes quiet for the whole TTL; y arrives wanting x's address.
    let late = T0 + LEASE_TTL;
    reg.renew_lease(a, late).unwrap();
    let changes = reg.register_node(y, "y", None, late).unwrap();
    assert_eq!(
        changes[1..],
        [
            Change::LeaseReleased {
                node: x,
                addr: pref
            },
            Change::LeaseGranted(LeaseRecord {
                node: y,
                addr: pref,
                renewed_at: late
            }),
        ]
    );
    // x is still a member but has no address, so alice does not see it for now.
    assert_eq!(reg.lease_of(&x), None);
    assert_eq!(reg.members_of("lan"), Some(vec![a, x]));
    assert!(reg.peers_of(&a).is_empty());
    // x comes back: a new address, and alice sees it again.
    let changes = reg.register_node(x, "x", None, late + 1).unwrap();
    let [Change::LeaseGranted(l)] = changes.as_slice() else {
        panic!("{changes:?}");
    };
    assert_ne!(l.addr, pref);
    assert_eq!(names(&reg.peers_of(&a)), ["x"]);
    assert_eq!(reg.peers_of(&a)[0].overlay_v4, l.addr);
    // And the whole state still restores.
    Registry::from_snapshot(config(), reg.snapshot()).unwrap();
}

#[test]
fn address_exhaustion_is_an_error_and_changes_nothing() {
    let mut reg = Registry::new(RegistryConfig {
        hash_params: test_params(),
        lease_pool: "100.64.0.0/30".parse().unwrap(),
    })
    .unwrap();
    up(&mut reg, 1, "a");
    up(&mut reg, 2, "b");
    let before = reg.snapshot();
    let err = reg.register_node(key(3), "c", None, T0).unwrap_err();
    assert!(matches!(
        err,
        RegistryError::Lease(LeaseError::Exhausted(_))
    ));
    assert_eq!(reg.snapshot(), before);
    assert_eq!(reg.node_name(&key(3)), None);
}

#[test]
fn from_snapshot_refuses_inconsistent_state() {
    let mut reg = registry();
    let a = up(&mut reg, 1, "alice");
    let b = up(&mut reg, 2, "bob");
    reg.create_network(a, "lan", "pw", &SALT, T0).unwrap();
    reg.join_network(b, "lan", "pw", T0).unwrap();
    reg.create_invite(a, "lan", &[5; SECRET_LEN], 60, T0)
        .unwrap();
    let good = reg.snapshot();

    type Damage = fn(&mut Snapshot);
    type Expect = fn(&SnapshotError) -> bool;
    let cases: &[(&str, Damage, Expect)] = &[
        (
            "uppercase node name",
            |s| s.nodes[0].name = "Alice".into(),
            |e| matches!(e, SnapshotError::BadName { .. }),
        ),
        (
            "duplicate node",
            |s| s.nodes.push(s.nodes[0].clone()),
            |e| matches!(e, SnapshotError::DuplicateNode(_)),
        ),
        (
            "lease of unknown node",
            |s| s.leases[0].node = key(50),
            |e| matches!(e, SnapshotError::LeaseForUnknownNode(_)),
        ),
        (
            "two nodes one address",
            |s| s.leases[1].addr = s.leases[0].addr,
            |e| matches!(e, SnapshotError::Lease(LeaseError::DuplicateAddr { .. })),
        ),
        (
            "address outside overlay",
            |s| s.leases[0].addr = Ipv4Addr::new(10, 0, 0, 1),
            |e| matches!(e, SnapshotError::Lease(LeaseError::OutOfRange { .. })),
        ),
        (
            "bad hash",
            |s| s.networks[0].password_hash = "plaintext".into(),
            |e| matches!(e, SnapshotError::BadPasswordHash { .. }),
        ),
        (
            "unknown owner",
            |s| s.networks[0].owner = key(50),
            |e| matches!(e, SnapshotError::UnknownOwner { .. }),
        ),
        (
            "duplicate network",
            |s| s.networks.push(s.networks[0].clone()),
            |e| matches!(e, SnapshotError::DuplicateNetwork(_)),
        ),
        (
            "member of unknown network",
            |s| s.memberships[0].network = "gone".into(),
            |e| {
                matches!(
                    e,
                    SnapshotError::DanglingMembership {
                        missing: "network",
                        ..
                    }
                )
            },
        ),
        (
            "unknown member",
            |s| s.memberships[0].node = key(50),
            |e| {
                matches!(
                    e,
                    SnapshotError::DanglingMembership {
                        missing: "node",
                        ..
                    }
                )
            },
        ),
        (
            "duplicate membership",
            |s| s.memberships.push(s.memberships[0].clone()),
            |e| matches!(e, SnapshotError::DuplicateMembership { .. }),
        ),
        (
            "name clash",
            |s| s.nodes[1].name = s.nodes[0].name.clone(),
            |e| matches!(e, SnapshotError::NameClash { .. }),
        ),
        (
            "invite to unknown network",
            |s| s.invites[0].network = "gone".into(),
            |e| {
                matches!(
                    e,
                    SnapshotError::DanglingInvite {
                        missing: "network",
                        ..
                    }
                )
            },
        ),
        (
            "invite by unknown node",
            |s| s.invites[0].created_by = key(50),
            |e| {
                matches!(
                    e,
                    SnapshotError::DanglingInvite {
                        missing: "creator",
                        ..
                    }
                )
            },
        ),
        (
            "duplicate invite",
            |s| s.invites.push(s.invites[0].clone()),
            |e| matches!(e, SnapshotError::DuplicateInvite(_)),
        ),
    ];
    for (what, damage, want) in cases {
        let mut snap = good.clone();
        damage(&mut snap);
        let err = Registry::from_snapshot(config(), snap).expect_err(what);
        assert!(want(&err), "{what}: got {err:?}");
    }
}

/// Invites and logout.
mod claims;
mod invites;
mod owner;
mod routes;

/// A password is checked without the registry (the shell runs Argon2 outside its lock); what
/// changed meanwhile decides: a new password makes the checked one wrong, a ban or a deleted
/// network refuses, a network created by someone else meanwhile cannot be created again.
#[test]
fn a_password_checked_outside_sees_what_changed_meanwhile() {
    let mut reg = registry();
    let (a, b) = (up(&mut reg, 1, "alice"), up(&mut reg, 2, "bob"));
    reg.create_network(a, "net", "pw", &SALT, T0).unwrap();

    let old = reg.hash_to_verify(b, "NET").unwrap();
    let right = crate::password::verify_password(&old, "pw").unwrap();
    assert!(right);
    reg.set_password(a, "net", "new", &[8; 16]).unwrap();
    assert_eq!(
        reg.join_verified(b, "net", &old, right, T0),
        Err(RegistryError::WrongPassword("net".into()))
    );
    assert!(!reg.is_member(&b, "net"));
    let new = reg.hash_to_verify(b, "net").unwrap();
    assert_eq!(
        reg.join_verified(b, "net", &new, false, T0),
        Err(RegistryError::WrongPassword("net".into()))
    );
    reg.join_verified(b, "net", &new, true, T0).unwrap();
    assert!(reg.is_member(&b, "net"));

    // Checked, then banned.
    let c = up(&mut reg, 3, "carol");
    let phc = reg.hash_to_verify(c, "net").unwrap();
    reg.join_network(c, "net", "new", T0).unwrap();
    reg.remove_member(a, "net", c, true, T0).unwrap();
    assert_eq!(
        reg.join_verified(c, "net", &phc, true, T0),
        Err(RegistryError::Banned("net".into()))
    );

    // Created meanwhile: the second creation is refused, not merged.
    let name = reg.check_create(b, "Other", "pw").unwrap();
    assert_eq!(name, "other");
    let hash = Registry::hash_new_password(reg.hash_params(), "pw", &SALT).unwrap();
    reg.create_network(a, "other", "x", &SALT, T0).unwrap();
    assert_eq!(
        reg.create_network_hashed(b, "other", hash.clone(), T0),
        Err(RegistryError::NetworkExists("other".into()))
    );
    // Not the owner any more (here: never was) when the new hash arrives.
    assert!(matches!(
        reg.set_password_hashed(b, "other", hash),
        Err(RegistryError::NotOwner { .. })
    ));
    assert!(reg
        .set_password_hashed(a, "other", "not a hash".into())
        .is_err());
}

/// A key that registered and joined nothing holds its address for hours; a member for a
/// month; and a restored registry knows which is which.
#[test]
fn hosts_in_no_network_hold_their_address_for_hours() {
    use crate::lease::NO_NETWORK_LEASE_TTL;
    let (a, b) = colliding_pair();
    let pref = derive_v4(&a);

    let mut reg = registry();
    reg.register_node(a, "idle", None, T0).unwrap();
    let later = T0 + NO_NETWORK_LEASE_TTL;
    reg.register_node(b, "newcomer", None, later).unwrap();
    assert_eq!(reg.lease_of(&b).unwrap().addr, pref);
    assert_eq!(reg.lease_of(&a), None);

    // The same as a member (of a network it created), and after a restore.
    for restored in [false, true] {
        let mut reg = registry();
        reg.register_node(a, "member", None, T0).unwrap();
        reg.create_network(a, "net", "pw", &SALT, T0).unwrap();
        if restored {
            reg = Registry::from_snapshot(config(), reg.snapshot()).unwrap();
        }
        reg.register_node(b, "newcomer", None, later).unwrap();
        assert_ne!(reg.lease_of(&b).unwrap().addr, pref, "restored: {restored}");
        assert_eq!(reg.lease_of(&a).unwrap().addr, pref);
        // It leaves: from now on its lease is a short one.
        reg.logout(a).unwrap();
        reg.renew_lease(a, later).unwrap();
        let d = (1000..)
            .map(key)
            .find(|k| reg.leases.preferred(k) == pref)
            .unwrap();
        reg.register_node(d, "fourth", None, later + NO_NETWORK_LEASE_TTL)
            .unwrap();
        assert_eq!(reg.lease_of(&d).unwrap().addr, pref, "restored: {restored}");
    }
}

#[test]
fn a_host_is_in_at_most_as_many_networks_as_a_relay_ticket_names() {
    let mut reg = registry();
    let a = up(&mut reg, 1, "alice");
    let b = up(&mut reg, 2, "bob");
    for i in 0..MAX_NETWORKS_PER_HOST {
        reg.create_network(a, &format!("net{i}"), "pw", &SALT, T0)
            .unwrap();
    }
    let err = reg
        .create_network(a, "one-more", "pw", &SALT, T0)
        .unwrap_err();
    assert_eq!(err, RegistryError::TooManyNetworks);
    assert!(err.to_string().contains("warren leave"), "{err}");
    reg.create_network(b, "bobs", "pw", &SALT, T0).unwrap();
    assert_eq!(
        reg.join_network(a, "bobs", "pw", T0),
        Err(RegistryError::TooManyNetworks)
    );
    assert_eq!(reg.networks_of(&a).len(), MAX_NETWORKS_PER_HOST);
    reg.leave_network(a, "net0").unwrap();
    reg.join_network(a, "bobs", "pw", T0).unwrap();
}

/// The fan-out's cheap views agree with the full records: the peers' keys (sorted, each
/// once though shared in two networks) and the networks two hosts share.
#[test]
fn peer_keys_and_shared_networks_match_the_records() {
    let mut reg = registry();
    let a = up(&mut reg, 1, "a");
    let b = up(&mut reg, 2, "b");
    let c = up(&mut reg, 3, "c");
    let d = up(&mut reg, 4, "d");
    reg.create_network(a, "one", "pw", &SALT, T0).unwrap();
    reg.create_network(a, "two", "pw", &SALT, T0).unwrap();
    reg.join_network(b, "one", "pw", T0).unwrap();
    reg.join_network(b, "two", "pw", T0).unwrap();
    reg.join_network(c, "two", "pw", T0).unwrap();
    reg.create_network(d, "three", "pw", &SALT, T0).unwrap();
    for k in [a, b, c, d] {
        let want: Vec<NodeKey> = reg.peers_of(&k).iter().map(|p| p.key).collect();
        assert_eq!(reg.peer_keys(&k), want, "peers of {k:?}");
        for p in reg.peers_of(&k) {
            assert_eq!(reg.shared_networks(&k, &p.key), p.networks);
        }
    }
    assert_eq!(reg.peer_keys(&a), {
        let mut v = vec![b, c];
        v.sort();
        v
    });
    assert!(reg.peer_keys(&d).is_empty());
    assert!(reg.shared_networks(&a, &d).is_empty());
    assert!(reg.peer_keys(&key(99)).is_empty());
}
