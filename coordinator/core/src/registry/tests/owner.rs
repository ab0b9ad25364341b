//! The owner's controls: who may use them, locks and requests, removal and bans, rename,
//! password, delete, invites until revoked, listing and revoking, and their restore.

use super::*;
use crate::invite::NEVER;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

fn secret(i: u8) -> [u8; SECRET_LEN] {
    [i; SECRET_LEN]
}

fn text(i: u8) -> String {
    URL_SAFE_NO_PAD.encode(secret(i))
}

/// alice owns "lan" (password "pw") with bob as a member; carol and dave are registered,
/// in no network.
fn owned_lan() -> (Registry, [NodeKey; 4]) {
    let mut reg = registry();
    let a = up(&mut reg, 1, "alice");
    let b = up(&mut reg, 2, "bob");
    let c = up(&mut reg, 3, "carol");
    let d = up(&mut reg, 4, "dave");
    reg.create_network(a, "lan", "pw", &SALT, T0).unwrap();
    reg.join_network(b, "lan", "pw", T0).unwrap();
    (reg, [a, b, c, d])
}

/// Restoring the snapshot gives the same state: every owner record is persisted.
fn assert_restores(reg: &Registry) {
    let back = Registry::from_snapshot(config(), reg.snapshot()).unwrap();
    assert_eq!(back.snapshot(), reg.snapshot());
}

#[test]
fn only_the_owner_may_use_the_controls_and_is_named() {
    let (mut reg, [_, b, _, d]) = owned_lan();
    let errs = [
        reg.rename_network(b, "lan", "x").unwrap_err(),
        reg.set_password(b, "lan", "x", &SALT).unwrap_err(),
        reg.set_locked(b, "lan", true).unwrap_err(),
        reg.answer_request(b, "lan", d, true, T0).unwrap_err(),
        reg.remove_member(b, "lan", d, true, T0).unwrap_err(),
        reg.delete_network(b, "lan").unwrap_err(),
    ];
    for e in errs {
        assert!(matches!(e, RegistryError::NotOwner { .. }), "{e:?}");
        assert!(
            e.to_string()
                .starts_with("only the owner of network lan (alice) can "),
            "{e}"
        );
    }
    assert_eq!(
        reg.set_locked(b, "lan", true).unwrap_err().to_string(),
        "only the owner of network lan (alice) can lock it: ask them"
    );
    assert!(matches!(
        reg.delete_network(b, "nope"),
        Err(RegistryError::NoSuchNetwork(_))
    ));
    assert_restores(&reg);
}

#[test]
fn a_locked_network_turns_joins_into_requests_the_owner_answers() {
    let (mut reg, [a, b, c, d]) = owned_lan();
    let (grant, _) = reg.create_invite(b, "lan", &secret(1), 3600, T0).unwrap();
    assert_eq!(
        reg.set_locked(a, "lan", true).unwrap(),
        vec![Change::NetworkLocked {
            network: "lan".into(),
            locked: true
        }]
    );
    assert_eq!(reg.set_locked(a, "lan", true).unwrap(), vec![]);
    // Right password: a request, not a membership. Wrong password: refused as ever.
    assert!(matches!(
        reg.join_network(c, "lan", "wrong", T0 + 1),
        Err(RegistryError::WrongPassword(_))
    ));
    assert_eq!(
        reg.join_network(c, "lan", "pw", T0 + 1).unwrap(),
        vec![Change::RequestAdded(JoinRequestRecord {
            network: "lan".into(),
            node: c,
            asked_at: T0 + 1
        })]
    );
    assert!(!reg.is_member(&c, "lan"));
    assert!(reg.peers_of(&c).is_empty());
    // Asking again changes nothing; an invite becomes a request too.
    assert_eq!(reg.join_network(c, "lan", "pw", T0 + 2).unwrap(), vec![]);
    assert!(matches!(
        reg.join_invite(d, "lan", &grant.secret, T0 + 3).unwrap()[..],
        [Change::RequestAdded(_)]
    ));
    // The owner sees both requests; each host sees what it waits for.
    let (nets, waiting) = reg.networks_state(&a);
    assert!(waiting.is_empty());
    assert_eq!(nets.len(), 1);
    assert!(nets[0].owned && nets[0].locked && nets[0].member);
    let asked: Vec<_> = nets[0].requests.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(asked, ["carol", "dave"]);
    assert_eq!(reg.networks_state(&c), (vec![], vec!["lan".to_string()]));
    // A member sees the lock but not the requests.
    let (nets, _) = reg.networks_state(&b);
    assert!(nets[0].locked && !nets[0].owned && nets[0].requests.is_empty());
    assert_restores(&reg);

    // Approve: a member at once, peers both ways.
    assert_eq!(
        reg.answer_request(a, "lan", c, true, T0 + 5).unwrap(),
        vec![
            Change::RequestRemoved {
                network: "lan".into(),
                node: c
            },
            Change::MemberAdded(Membership {
                network: "lan".into(),
                node: c,
                joined_at: T0 + 5
            })
        ]
    );
    assert_eq!(names(&reg.peers_of(&c)), ["alice", "bob"]);
    assert_eq!(reg.networks_state(&c).1, Vec::<String>::new());
    // Deny: the request is gone, nothing else.
    assert_eq!(
        reg.answer_request(a, "lan", d, false, T0 + 6).unwrap(),
        vec![Change::RequestRemoved {
            network: "lan".into(),
            node: d
        }]
    );
    assert!(!reg.is_member(&d, "lan"));
    assert!(matches!(
        reg.answer_request(a, "lan", d, true, T0 + 7),
        Err(RegistryError::NoSuchRequest(_))
    ));
    // The owner itself is never held back by its own lock.
    reg.leave_network(a, "lan").unwrap();
    assert!(matches!(
        reg.join_network(a, "lan", "pw", T0 + 8).unwrap()[..],
        [Change::MemberAdded(_)]
    ));
    assert_restores(&reg);
}

#[test]
fn unlocking_keeps_requests_and_a_new_join_admits() {
    let (mut reg, [a, _, c, d]) = owned_lan();
    reg.set_locked(a, "lan", true).unwrap();
    reg.join_network(c, "lan", "pw", T0).unwrap();
    reg.join_network(d, "lan", "pw", T0).unwrap();
    reg.set_locked(a, "lan", false).unwrap();
    assert_eq!(reg.waiting_for("lan"), {
        let mut w = vec![c, d];
        w.sort();
        w
    });
    let changes = reg.join_network(c, "lan", "pw", T0 + 1).unwrap();
    assert!(matches!(
        changes[..],
        [Change::RequestRemoved { .. }, Change::MemberAdded(_)]
    ));
    assert_eq!(reg.waiting_for("lan"), vec![d]);
    // Leaving withdraws a request; so does logging out.
    assert!(matches!(
        reg.leave_network(d, "lan").unwrap()[..],
        [Change::RequestRemoved { .. }]
    ));
    reg.set_locked(a, "lan", true).unwrap();
    reg.join_network(d, "lan", "pw", T0 + 2).unwrap();
    assert!(matches!(
        reg.logout(d).unwrap()[..],
        [Change::RequestRemoved { .. }]
    ));
    assert!(reg.waiting_for("lan").is_empty());
    assert_restores(&reg);
}

#[test]
fn removing_and_banning_a_member() {
    let (mut reg, [a, b, c, _]) = owned_lan();
    let (by_b, _) = reg.create_invite(b, "lan", &secret(1), 3600, T0).unwrap();
    let (by_a, _) = reg.create_invite(a, "lan", &secret(2), 3600, T0).unwrap();
    // Without a ban the host may come back.
    assert_eq!(
        reg.remove_member(a, "lan", b, false, T0 + 1).unwrap(),
        vec![Change::MemberRemoved {
            network: "lan".into(),
            node: b
        }]
    );
    assert!(reg.peers_of(&a).is_empty());
    reg.join_network(b, "lan", "pw", T0 + 2).unwrap();
    // With a ban: out, its invites revoked, and every way back refused in plain words.
    let changes = reg.remove_member(a, "lan", b, true, T0 + 3).unwrap();
    assert_eq!(
        changes,
        vec![
            Change::MemberRemoved {
                network: "lan".into(),
                node: b
            },
            Change::InviteRemoved {
                hash: SecretHash::of(&secret(1))
            },
            Change::Banned(BanRecord {
                network: "lan".into(),
                node: b,
                banned_at: T0 + 3
            })
        ]
    );
    assert!(!reg.shares_network(&a, &b));
    for e in [
        reg.join_network(b, "lan", "pw", T0 + 4).unwrap_err(),
        reg.join_network(b, "lan", "wrong", T0 + 4).unwrap_err(),
        reg.join_invite(b, "lan", &by_a.secret, T0 + 4).unwrap_err(),
    ] {
        assert_eq!(e, RegistryError::Banned("lan".into()));
        assert!(e.to_string().contains("banned"), "{e}");
    }
    // The code b made no longer admits anyone else either.
    assert_eq!(
        reg.join_invite(c, "lan", &by_b.secret, T0 + 4),
        Err(RegistryError::InviteInvalid("lan".into()))
    );
    // A ban outlives a removal of a non-member; the owner cannot remove itself.
    assert!(matches!(
        reg.remove_member(a, "lan", c, false, T0),
        Err(RegistryError::NoSuchMember(_))
    ));
    assert!(matches!(
        reg.remove_member(a, "lan", a, true, T0),
        Err(RegistryError::RemoveOwner(_))
    ));
    assert_restores(&reg);
    let back = Registry::from_snapshot(config(), reg.snapshot()).unwrap();
    let mut back = back;
    assert_eq!(
        back.join_network(b, "lan", "pw", T0 + 9),
        Err(RegistryError::Banned("lan".into()))
    );
}

#[test]
fn a_waiting_host_can_be_banned() {
    let (mut reg, [a, _, c, _]) = owned_lan();
    reg.set_locked(a, "lan", true).unwrap();
    reg.join_network(c, "lan", "pw", T0).unwrap();
    let changes = reg.remove_member(a, "lan", c, true, T0 + 1).unwrap();
    assert!(matches!(
        changes[..],
        [Change::RequestRemoved { .. }, Change::Banned(_)]
    ));
    assert!(reg.waiting_for("lan").is_empty());
    assert!(matches!(
        reg.join_network(c, "lan", "pw", T0 + 2),
        Err(RegistryError::Banned(_))
    ));
}

#[test]
fn rename_keeps_members_invites_and_requests() {
    let (mut reg, [a, b, c, d]) = owned_lan();
    let (grant, _) = reg.create_invite(a, "lan", &secret(1), 3600, T0).unwrap();
    reg.set_locked(a, "lan", true).unwrap();
    reg.join_network(d, "lan", "pw", T0).unwrap();
    reg.create_network(c, "taken", "pw", &SALT, T0).unwrap();
    assert!(matches!(
        reg.rename_network(a, "lan", "taken"),
        Err(RegistryError::NetworkExists(_))
    ));
    assert!(matches!(
        reg.rename_network(a, "lan", "no spaces"),
        Err(RegistryError::InvalidName { .. })
    ));
    assert_eq!(
        reg.rename_network(a, "lan", "Party").unwrap(),
        vec![Change::NetworkRenamed {
            from: "lan".into(),
            to: "party".into()
        }]
    );
    assert_eq!(reg.members_of("lan"), None);
    assert_eq!(reg.members_of("party").unwrap().len(), 2);
    assert_eq!(reg.peers_of(&a)[0].networks, ["party"]);
    assert_eq!(reg.networks_of(&b), ["party"]);
    assert_eq!(reg.networks_state(&d).1, ["party"]);
    assert_eq!(reg.waiting_for("party"), vec![d]);
    // A code made before the rename names "lan": it still admits to "party" (as a request:
    // the lock moved too).
    reg.set_locked(a, "party", false).unwrap();
    assert!(matches!(
        reg.join_invite(c, "lan", &grant.secret, T0 + 1).unwrap()[..],
        [Change::MemberAdded(Membership { ref network, .. })] if network == "party"
    ));
    assert_eq!(reg.list_invites(a, "party", T0 + 1).unwrap().len(), 1);
    assert_restores(&reg);
}

#[test]
fn a_new_password_keeps_members_and_refuses_the_old_one() {
    let (mut reg, [a, b, c, d]) = owned_lan();
    assert!(matches!(
        reg.set_password(a, "lan", "", &SALT),
        Err(RegistryError::EmptyPassword)
    ));
    let changes = reg.set_password(a, "lan", "new", &SALT).unwrap();
    assert!(matches!(&changes[..], [Change::PasswordChanged { network, .. }] if network == "lan"));
    assert!(reg.is_member(&b, "lan"));
    assert_eq!(
        reg.join_network(c, "lan", "pw", T0),
        Err(RegistryError::WrongPassword("lan".into()))
    );
    reg.join_network(d, "lan", "new", T0).unwrap();
    assert!(reg.is_member(&d, "lan"));
    assert_restores(&reg);
}

#[test]
fn delete_drops_everything_that_names_the_network() {
    let (mut reg, [a, b, c, _]) = owned_lan();
    reg.create_network(a, "other", "pw", &SALT, T0).unwrap();
    reg.join_network(b, "other", "pw", T0).unwrap();
    reg.create_invite(b, "lan", &secret(1), 0, T0).unwrap();
    reg.set_locked(a, "lan", true).unwrap();
    reg.join_network(c, "lan", "pw", T0).unwrap();
    assert_eq!(
        reg.delete_network(a, "lan").unwrap(),
        vec![Change::NetworkDeleted {
            network: "lan".into()
        }]
    );
    assert_eq!(reg.networks_of(&b), ["other"]);
    // Still peers through "other", now sharing only it.
    assert_eq!(reg.peers_of(&a)[0].networks, ["other"]);
    assert!(reg.networks_state(&c).1.is_empty());
    let snap = reg.snapshot();
    assert!(snap.invites.is_empty() && snap.requests.is_empty());
    assert!(snap.memberships.iter().all(|m| m.network == "other"));
    // The name is free again.
    reg.create_network(c, "lan", "x", &SALT, T0).unwrap();
    assert_restores(&reg);
}

#[test]
fn invites_until_revoked_listed_and_revoked() {
    let (mut reg, [a, b, c, d]) = owned_lan();
    let (forever, changes) = reg.create_invite(b, "lan", &secret(1), 0, T0).unwrap();
    assert_eq!(forever.expires, NEVER);
    assert!(matches!(&changes[..], [Change::InviteCreated(r)] if r.expires == NEVER));
    reg.create_invite(a, "lan", &secret(2), 60, T0 + 1).unwrap();
    // Until revoked: still good a century later, and not pruned.
    let later = T0 + 100 * 365 * 86_400;
    reg.create_invite(a, "lan", &secret(3), 60, later).unwrap();
    let list = reg.list_invites(b, "lan", later).unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0].id, SecretHash::of(&secret(1)).short_id());
    assert_eq!(list[0].id.len(), 12);
    assert_eq!(list[0].created_by, "bob");
    assert_eq!(list[0].expires, None);
    assert_eq!(list[1].expires, Some(later + 60));
    assert!(matches!(
        reg.list_invites(c, "lan", later),
        Err(RegistryError::NotAMember(_))
    ));
    // Revoke: a prefix is enough; too short or unknown is refused; a member may revoke only
    // what it made.
    let id_a = list[1].id.clone();
    assert!(matches!(
        reg.revoke_invite(b, "lan", &id_a),
        Err(RegistryError::NotOwner { .. })
    ));
    assert!(matches!(
        reg.revoke_invite(a, "lan", &id_a[..3]),
        Err(RegistryError::NoSuchInvite { .. })
    ));
    assert!(matches!(
        reg.revoke_invite(a, "lan", "ffffffffffff"),
        Err(RegistryError::NoSuchInvite { .. })
    ));
    assert_eq!(
        reg.revoke_invite(b, "lan", &list[0].id[..6]).unwrap(),
        vec![Change::InviteRemoved {
            hash: SecretHash::of(&secret(1))
        }]
    );
    assert_eq!(
        reg.join_invite(d, "lan", &text(1), later),
        Err(RegistryError::InviteInvalid("lan".into()))
    );
    // The owner lists and revokes even after leaving its network.
    reg.leave_network(a, "lan").unwrap();
    assert_eq!(reg.list_invites(a, "lan", later).unwrap().len(), 1);
    reg.revoke_invite(a, "lan", &id_a.to_uppercase()).unwrap();
    assert!(reg.list_invites(a, "lan", later).unwrap().is_empty());
    assert_restores(&reg);
}
