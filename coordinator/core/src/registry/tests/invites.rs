//! Invites (create, join, expiry, pruning, bounds, restore) and logout.

use super::*;
use crate::invite::{MAX_LIVE_PER_NETWORK, MAX_TTL};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use warren_proto::invite::parse_secret;

/// An invite secret that differs per `i`.
fn secret(i: u8) -> [u8; SECRET_LEN] {
    [i; SECRET_LEN]
}

/// alice owns "lan" (password "pw"); bob and carol are registered, in no network.
fn lan_party() -> (Registry, NodeKey, NodeKey, NodeKey) {
    let mut reg = registry();
    let a = up(&mut reg, 1, "alice");
    let b = up(&mut reg, 2, "bob");
    let c = up(&mut reg, 3, "carol");
    reg.create_network(a, "lan", "pw", &SALT, T0).unwrap();
    (reg, a, b, c)
}

#[test]
fn invite_created_by_member_admits_several_hosts() {
    let (mut reg, a, b, c) = lan_party();
    let (grant, changes) = reg
        .create_invite(a, "LAN", &secret(1), 3600, T0 + 5)
        .unwrap();
    assert_eq!(grant.network, "lan");
    assert_eq!(grant.expires, T0 + 5 + 3600);
    // The secret goes back in the protocol's encoding, and only its hash is kept.
    assert_eq!(parse_secret(&grant.secret), Some(secret(1)));
    let record = InviteRecord {
        hash: SecretHash::of(&secret(1)),
        network: "lan".into(),
        created_by: a,
        created_at: T0 + 5,
        expires: T0 + 3605,
    };
    assert_eq!(changes, vec![Change::InviteCreated(record.clone())]);
    assert_eq!(reg.snapshot().invites, vec![record]);
    assert!(!format!("{:?}", reg.snapshot()).contains(&grant.secret));

    // Reusable: a LAN party shares one code.
    for (k, at) in [(b, T0 + 10), (c, T0 + 11)] {
        assert_eq!(
            reg.join_invite(k, "lan", &grant.secret, at).unwrap(),
            vec![Change::MemberAdded(Membership {
                network: "lan".into(),
                node: k,
                joined_at: at
            })]
        );
    }
    assert_eq!(names(&reg.peers_of(&a)), ["bob", "carol"]);
    // Already a member: fine, nothing to do; the creator may use its own invite too.
    assert_eq!(
        reg.join_invite(b, "lan", &grant.secret, T0 + 12),
        Ok(vec![])
    );
    assert_eq!(
        reg.join_invite(a, "lan", &grant.secret, T0 + 12),
        Ok(vec![])
    );
    // A member who joined by invite may invite others in turn.
    reg.create_invite(b, "lan", &secret(2), 60, T0 + 13)
        .unwrap();
}

#[test]
fn invite_lifetime_is_clamped_and_ends_after_its_last_second() {
    let (mut reg, a, b, c) = lan_party();
    // The shortest is one second (0 asks for "until revoked": see tests/owner.rs).
    let (short, _) = reg.create_invite(a, "lan", &secret(1), 1, T0).unwrap();
    assert_eq!(short.expires, T0 + 1);
    let (long, _) = reg
        .create_invite(a, "lan", &secret(2), u64::MAX, T0)
        .unwrap();
    assert_eq!(long.expires, T0 + MAX_TTL);
    assert_eq!(MAX_TTL, 30 * 24 * 3600);

    reg.join_invite(b, "lan", &short.secret, T0 + 1).unwrap();
    let err = reg
        .join_invite(c, "lan", &short.secret, T0 + 2)
        .unwrap_err();
    assert_eq!(
        err,
        RegistryError::InviteExpired {
            network: "lan".into(),
            expires: T0 + 1
        }
    );
    assert_eq!(
        err.to_string(),
        "this invite for network lan expired at 2023-11-14 22:13:21 UTC; \
         ask a member for a new one (`warren invite lan`)"
    );
    reg.join_invite(c, "lan", &long.secret, T0 + MAX_TTL)
        .unwrap();
}

#[test]
fn invite_errors_table_and_failures_change_nothing() {
    let (mut reg, a, b, c) = lan_party();
    let stranger = key(99); // never registered
    let twin = up(&mut reg, 4, "bob");
    reg.create_network(c, "other", "pw", &SALT, T0).unwrap();
    reg.join_network(b, "lan", "pw", T0).unwrap();
    let (lan, _) = reg.create_invite(a, "lan", &secret(1), 600, T0).unwrap();
    let (other, _) = reg.create_invite(c, "other", &secret(2), 600, T0).unwrap();
    let unknown = URL_SAFE_NO_PAD.encode(secret(3));
    let expired_at = T0 + 601;

    type Op = Box<dyn Fn(&mut Registry) -> Result<Vec<Change>, RegistryError>>;
    let create = |who: NodeKey, net: &'static str, s: u8| -> Op {
        Box::new(move |r| {
            r.create_invite(who, net, &secret(s), 60, T0)
                .map(|(_, c)| c)
        })
    };
    let join = |who: NodeKey, net: &'static str, sec: String, now: u64| -> Op {
        Box::new(move |r| r.join_invite(who, net, &sec, now))
    };
    let cases: Vec<(&str, Op, RegistryError, &str)> = vec![
        (
            "invite by a non-member",
            create(c, "lan", 9),
            RegistryError::NotAMember("lan".into()),
            "this host is not a member of network lan",
        ),
        (
            "invite to an unknown network",
            create(a, "nowhere", 9),
            RegistryError::NoSuchNetwork("nowhere".into()),
            "no network named nowhere",
        ),
        (
            "invite by an unregistered node",
            create(stranger, "lan", 9),
            RegistryError::UnknownNode(stranger),
            "has not registered",
        ),
        (
            "invite with a bad network name",
            create(a, "lan party", 9),
            RegistryError::InvalidName {
                kind: NameKind::Network,
                name: "lan party".into(),
                problem: NameProblem::BadChar(' '),
            },
            "invalid network name",
        ),
        (
            "a secret handed out before",
            create(a, "lan", 1),
            RegistryError::InviteSecretReused,
            "random source is broken",
        ),
        (
            "wrong secret",
            join(c, "lan", unknown.clone(), T0),
            RegistryError::InviteInvalid("lan".into()),
            "this invite is not valid for network lan (was it revoked or mistyped?)",
        ),
        (
            "mistyped secret",
            join(c, "lan", format!("{}x", &lan.secret[1..]), T0),
            RegistryError::InviteInvalid("lan".into()),
            "not valid for network lan",
        ),
        (
            "not base64 at all",
            join(c, "lan", "hunter2".into(), T0),
            RegistryError::InviteInvalid("lan".into()),
            "not valid for network lan",
        ),
        (
            "another network's secret",
            join(c, "lan", other.secret.clone(), T0),
            RegistryError::InviteInvalid("lan".into()),
            "not valid for network lan",
        ),
        (
            "this network's secret for another network",
            join(a, "other", lan.secret.clone(), T0),
            RegistryError::InviteInvalid("other".into()),
            "not valid for network other",
        ),
        (
            "expired",
            join(c, "lan", lan.secret.clone(), expired_at),
            RegistryError::InviteExpired {
                network: "lan".into(),
                expires: T0 + 600,
            },
            "this invite for network lan expired at 2023-11-14 22:23:20 UTC; \
             ask a member for a new one (`warren invite lan`)",
        ),
        (
            "expired, from a member",
            join(b, "lan", lan.secret.clone(), expired_at),
            RegistryError::InviteExpired {
                network: "lan".into(),
                expires: T0 + 600,
            },
            "expired at",
        ),
        (
            // (A known secret would find its network: codes survive a rename.)
            "unknown network",
            join(c, "lan-partey", URL_SAFE_NO_PAD.encode(secret(99)), T0),
            RegistryError::NoSuchNetwork("lan-partey".into()),
            "no network named lan-partey",
        ),
        (
            "unregistered joiner",
            join(stranger, "lan", lan.secret.clone(), T0),
            RegistryError::UnknownNode(stranger),
            "has not registered",
        ),
        (
            "name taken on invite join",
            join(twin, "lan", lan.secret.clone(), T0),
            RegistryError::NameTaken {
                name: "bob".into(),
                network: "lan".into(),
            },
            "the name bob is already used by another host in network lan",
        ),
        (
            "unregistered logout",
            Box::new(move |r| r.logout(stranger)),
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
    // And the good secret still works after all that.
    reg.join_invite(c, "lan", &lan.secret, T0).unwrap();
}

#[test]
fn expired_invites_are_pruned_by_the_next_creation() {
    let (mut reg, a, b, _) = lan_party();
    let (old, _) = reg.create_invite(a, "lan", &secret(1), 10, T0).unwrap();
    let (kept, _) = reg.create_invite(a, "lan", &secret(2), 1000, T0).unwrap();
    // Expired but not yet pruned: the joiner is told it expired.
    assert!(matches!(
        reg.join_invite(b, "lan", &old.secret, T0 + 50),
        Err(RegistryError::InviteExpired { .. })
    ));
    let (_, changes) = reg
        .create_invite(a, "lan", &secret(3), 10, T0 + 50)
        .unwrap();
    let [Change::InviteRemoved { hash }, Change::InviteCreated(new)] = changes.as_slice() else {
        panic!("unexpected changes {changes:?}");
    };
    assert_eq!(*hash, SecretHash::of(&secret(1)));
    assert_eq!(new.hash, SecretHash::of(&secret(3)));
    assert_eq!(reg.snapshot().invites.len(), 2);
    // Pruned: now it is just unknown.
    assert_eq!(
        reg.join_invite(b, "lan", &old.secret, T0 + 51),
        Err(RegistryError::InviteInvalid("lan".into()))
    );
    reg.join_invite(b, "lan", &kept.secret, T0 + 51).unwrap();
}

#[test]
fn live_invites_per_network_are_bounded() {
    let (mut reg, a, _, c) = lan_party();
    reg.create_network(c, "other", "pw", &SALT, T0).unwrap();
    let n = u8::try_from(MAX_LIVE_PER_NETWORK).unwrap();
    for i in 0..n {
        reg.create_invite(a, "lan", &secret(i), 100, T0).unwrap();
    }
    let before = reg.snapshot();
    assert_eq!(
        reg.create_invite(a, "lan", &secret(n), 100, T0 + 1),
        Err(RegistryError::TooManyInvites("lan".into()))
    );
    assert_eq!(reg.snapshot(), before);
    // Other networks are not affected.
    reg.create_invite(c, "other", &secret(n), 100, T0 + 1)
        .unwrap();
    // Once they expire there is room again, and the expired ones go.
    let (_, changes) = reg
        .create_invite(a, "lan", &secret(n + 1), 100, T0 + 101)
        .unwrap();
    assert_eq!(changes.len(), MAX_LIVE_PER_NETWORK + 1);
    assert_eq!(reg.snapshot().invites.len(), 2);
}

#[test]
fn logout_leaves_every_network_and_keeps_name_and_lease() {
    let mut reg = registry();
    let a = up(&mut reg, 1, "alice");
    let b = up(&mut reg, 2, "bob");
    let c = up(&mut reg, 3, "carol");
    reg.create_network(a, "work", "pw", &SALT, T0).unwrap();
    reg.create_network(a, "games", "pw", &SALT, T0).unwrap();
    reg.join_network(b, "work", "pw", T0).unwrap();
    reg.join_network(b, "games", "pw", T0).unwrap();
    reg.join_network(c, "games", "pw", T0).unwrap();
    let lease = reg.lease_of(&b).unwrap();

    assert_eq!(
        reg.logout(b).unwrap(),
        vec![
            Change::MemberRemoved {
                network: "games".into(),
                node: b
            },
            Change::MemberRemoved {
                network: "work".into(),
                node: b
            },
        ]
    );
    assert!(reg.networks_of(&b).is_empty());
    assert!(reg.peers_of(&b).is_empty());
    assert_eq!(names(&reg.peers_of(&a)), ["carol"]);
    assert_eq!(names(&reg.peers_of(&c)), ["alice"]);
    assert_eq!(reg.members_of("work"), Some(vec![a]));
    assert_eq!(reg.node_name(&b), Some("bob"));
    assert_eq!(reg.lease_of(&b), Some(lease));
    // The state is one a restart restores.
    let snap = reg.snapshot();
    assert_eq!(
        Registry::from_snapshot(config(), snap.clone())
            .unwrap()
            .snapshot(),
        snap
    );
    // Logging out again, or when in no network, is a no-op.
    assert_eq!(reg.logout(b), Ok(vec![]));
    // Back in with the same address.
    reg.join_network(b, "work", "pw", T0 + 1).unwrap();
    assert_eq!(reg.lease_of(&b), Some(lease));
    assert_eq!(names(&reg.peers_of(&a)), ["bob", "carol"]);
}

#[test]
fn invites_survive_snapshot_restore() {
    let (mut reg, a, b, c) = lan_party();
    let (live, _) = reg.create_invite(a, "lan", &secret(1), 100, T0).unwrap();
    let (dead, _) = reg.create_invite(a, "lan", &secret(2), 1, T0).unwrap();
    let snap = reg.snapshot();
    assert_eq!(snap.invites.len(), 2);
    let mut back = Registry::from_snapshot(config(), snap.clone()).unwrap();
    assert_eq!(back.snapshot(), snap);
    back.join_invite(b, "lan", &live.secret, T0 + 50).unwrap();
    assert!(matches!(
        back.join_invite(c, "lan", &dead.secret, T0 + 50),
        Err(RegistryError::InviteExpired { .. })
    ));
}
