//! Subnet routes: only the owner approves, only members' routes, approvals persist and go with
//! the membership.

use super::*;
use crate::registry::routes::route_prefix;

fn lan() -> (Registry, [NodeKey; 3]) {
    let mut reg = registry();
    let a = up(&mut reg, 1, "alice");
    let b = up(&mut reg, 2, "bob");
    let c = up(&mut reg, 3, "carol");
    reg.create_network(a, "lan", "pw", &SALT, T0).unwrap();
    reg.join_network(b, "lan", "pw", T0).unwrap();
    (reg, [a, b, c])
}

#[test]
fn the_owner_approves_a_members_route_and_it_persists() {
    let (mut reg, [a, b, c]) = lan();
    let nets = vec!["lan".to_string()];
    assert!(!reg.route_approved(&nets, &b, "192.168.1.0/24"));
    assert!(matches!(
        reg.approve_route(b, "lan", b, "192.168.1.0/24", true),
        Err(RegistryError::NotOwner { .. })
    ));
    assert!(matches!(
        reg.approve_route(a, "lan", c, "192.168.1.0/24", true),
        Err(RegistryError::NotAMember(_))
    ));
    let changes = reg
        .approve_route(a, "lan", b, "192.168.1.7/24", true)
        .unwrap();
    let record = RouteRecord {
        network: "lan".into(),
        node: b,
        prefix: "192.168.1.0/24".into(),
    };
    assert_eq!(changes, vec![Change::RouteApproved(record.clone())]);
    assert!(reg.route_approved(&nets, &b, "192.168.1.0/24"));
    assert!(reg
        .approve_route(a, "lan", b, "192.168.1.0/24", true)
        .unwrap()
        .is_empty());
    let back = Registry::from_snapshot(config(), reg.snapshot()).unwrap();
    assert!(back.route_approved(&nets, &b, "192.168.1.0/24"));
    assert_eq!(back.snapshot(), reg.snapshot());
    assert_eq!(
        reg.approve_route(a, "lan", b, "192.168.1.0/24", false)
            .unwrap(),
        vec![Change::RouteRevoked(record)]
    );
    assert!(!reg.route_approved(&nets, &b, "192.168.1.0/24"));
}

#[test]
fn a_member_that_leaves_loses_its_approvals() {
    let (mut reg, [a, b, _]) = lan();
    reg.approve_route(a, "lan", b, "10.1.0.0/16", true).unwrap();
    reg.leave_network(b, "lan").unwrap();
    reg.join_network(b, "lan", "pw", T0 + 1).unwrap();
    assert!(!reg.route_approved(&["lan".into()], &b, "10.1.0.0/16"));
    assert!(reg.approved_routes("lan").is_empty());
}

#[test]
fn only_lan_prefixes_are_routes() {
    assert_eq!(route_prefix("192.168.1.77/24").unwrap(), "192.168.1.0/24");
    assert_eq!(route_prefix(" 10.0.0.0/8 ").unwrap(), "10.0.0.0/8");
    assert_eq!(route_prefix("fd00:1::/64").unwrap(), "fd00:1::/64");
    for bad in [
        "0.0.0.0/0",
        "127.0.0.0/8",
        "224.0.0.0/4",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "100.100.0.0/16",
        "fe80::/64",
        "::/0",
        "192.168.1.0",
        "lan",
    ] {
        let e = route_prefix(bad).unwrap_err();
        assert!(e.contains("192.168.1.0/24"), "{bad}: {e}");
    }
}
