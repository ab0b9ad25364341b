//! Claimed addresses (one address with several coordinators) and address-clash reports.

use super::*;

/// alice and bob are in "lan"; carol is registered, in no network.
fn lan() -> (Registry, NodeKey, NodeKey, NodeKey) {
    let mut reg = registry();
    let a = up(&mut reg, 1, "alice");
    let b = up(&mut reg, 2, "bob");
    let c = up(&mut reg, 3, "carol");
    reg.create_network(a, "lan", "pw", &SALT, T0).unwrap();
    reg.join_network(b, "lan", "pw", T0).unwrap();
    (reg, a, b, c)
}

fn addr(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn a_new_node_gets_its_claim() {
    let mut reg = registry();
    let a = key(1);
    let claim = addr("100.90.1.2");
    let changes = reg.register_node(a, "alice", Some(claim), T0).unwrap();
    assert_eq!(
        changes[1..],
        [Change::LeaseGranted(LeaseRecord {
            node: a,
            addr: claim,
            renewed_at: T0
        })]
    );
}

#[test]
fn a_member_moves_to_its_claim_and_its_peers_see_the_new_address() {
    let (mut reg, a, b, _) = lan();
    let old = reg.lease_of(&a).unwrap().addr;
    let claim = addr("100.90.1.2");
    let changes = reg.register_node(a, "alice", Some(claim), T0 + 1).unwrap();
    assert_eq!(
        changes,
        [
            Change::LeaseReleased { node: a, addr: old },
            Change::LeaseGranted(LeaseRecord {
                node: a,
                addr: claim,
                renewed_at: T0 + 1
            })
        ]
    );
    assert_eq!(reg.peers_of(&b)[0].overlay_v4, claim);
    Registry::from_snapshot(config(), reg.snapshot()).unwrap();
}

#[test]
fn a_claim_held_by_a_live_peer_is_refused_and_the_node_keeps_its_address() {
    let (mut reg, a, b, _) = lan();
    let (a_addr, b_addr) = (
        reg.lease_of(&a).unwrap().addr,
        reg.lease_of(&b).unwrap().addr,
    );
    let changes = reg.register_node(a, "alice", Some(b_addr), T0 + 1).unwrap();
    assert_eq!(
        changes,
        [Change::LeaseRenewed(LeaseRecord {
            node: a,
            addr: a_addr,
            renewed_at: T0 + 1
        })]
    );
    // A newcomer claiming it is leased as without a claim.
    let d = key(4);
    reg.register_node(d, "dave", Some(b_addr), T0 + 1).unwrap();
    assert_eq!(reg.lease_of(&d).unwrap().addr, derive_v4(&d));
    assert_eq!(reg.lease_of(&b).unwrap().addr, b_addr);
}

#[test]
fn only_a_peer_may_ask_a_host_to_move_off_its_own_address() {
    let (mut reg, a, b, c) = lan();
    let a_addr = reg.lease_of(&a).unwrap().addr;
    let c_addr = reg.lease_of(&c).unwrap().addr;
    // None of these count against a's limit.
    assert_eq!(
        reg.clash_report(c, a, a_addr, T0),
        Err(ClashDropped::NotAPeer)
    );
    assert_eq!(
        reg.clash_report(a, a, a_addr, T0),
        Err(ClashDropped::NotAPeer)
    );
    assert_eq!(
        reg.clash_report(b, a, c_addr, T0),
        Err(ClashDropped::NotItsAddress)
    );
    assert_eq!(
        reg.clash_report(b, key(99), a_addr, T0),
        Err(ClashDropped::NotAPeer)
    );
    assert_eq!(reg.clash_report(b, a, a_addr, T0), Ok(()));
    // Once a minute per host, whoever asks.
    assert_eq!(
        reg.clash_report(b, a, a_addr, T0 + 59),
        Err(ClashDropped::RateLimited(1))
    );
    assert_eq!(
        reg.clash_report(a, b, reg.lease_of(&b).unwrap().addr, T0 + 59),
        Ok(())
    );
    assert_eq!(reg.clash_report(b, a, a_addr, T0 + 60), Ok(()));
    // Carol joins: now she may ask too (after the minute).
    reg.join_network(c, "lan", "pw", T0 + 61).unwrap();
    assert_eq!(
        reg.clash_report(c, a, a_addr, T0 + 61),
        Err(ClashDropped::RateLimited(59))
    );
    assert_eq!(reg.clash_report(c, a, a_addr, T0 + 120), Ok(()));
}
