//! A friend in networks hosted by two different PCs at once (issue 15), and the overlay address
//! clash that two coordinators leasing independently can cause. Needs root and the workspace
//! built (`cargo build --workspace && cargo test -p warren-lab --test two_hosts`).
//!
//! Alice hosts `alpha` at home (port-restricted router with miniupnpd), Bert hosts `beta` on a
//! PC with a public address; Fred (behind a full-cone NAT) joins both with their invites. Bert's
//! daemon is made to claim Alice's overlay address before it hosts — the clash that two
//! coordinators could give by chance — so Fred sees two peers at one address. Fred asks the one
//! with the greater key to move (through its coordinator); it moves to a fresh address
//! everywhere, and Fred reaches both by IPv4 again. Alice and Bert share no network and do not
//! see each other.

use warren_lab as lab;

use lab::matrix::ping;
use lab::node::{start_all, wait_status, Host};
use lab::site::SiteKind;
use lab::Lab;
use serde_json::{json, Value};
use std::net::Ipv4Addr;
use std::time::Duration;

fn overlay(h: &Host) -> Ipv4Addr {
    Host::overlay_in(&h.status()).expect("an overlay address")
}

fn host_and_invite(pc: &Host, network: &str) -> String {
    let out = pc.warren_ok(&["host", network]);
    assert!(
        out.contains(&format!("this PC now hosts network {network}")),
        "{out}"
    );
    pc.warren_ok(&["invite", network]).trim().to_string()
}

fn peer_ip(st: &Value, name: &str) -> Option<String> {
    Host::peer_in(st, name).and_then(|p| p["overlay_ip"].as_str().map(str::to_string))
}

fn pings(from: &Host, to: Ipv4Addr) -> bool {
    ping(&from.ns, to, 3, 2).received > 0
}

#[test]
fn member_of_two_hosts_networks_and_a_forced_address_clash() {
    lab::needs_root!();
    let mut lab = Lab::start("twohost");
    let (_sa, mut a) = lab.add_site(SiteKind::PortRestrictedUpnp, 1, "alice");
    let (_sb, mut b) = lab.add_site(SiteKind::Public, 1, "bert");
    let (_sf, mut f) = lab.add_site(SiteKind::FullCone, 1, "fred");
    let (a, b, f) = (&mut a[0], &mut b[0], &mut f[0]);
    a.name_in_config();
    b.name_in_config();
    start_all(&mut [&mut *a, &mut *f]);
    let alpha = host_and_invite(a, "alpha");
    let taken = overlay(a);

    // Bert's daemon claims Alice's address: his own coordinator grants it (nobody there has
    // it), so two coordinators now lease one address to two hosts.
    std::fs::create_dir_all(&b.state_dir).unwrap();
    std::fs::write(
        b.state_dir.join("address.json"),
        json!({ "ipv4": taken.to_string() }).to_string(),
    )
    .unwrap();
    start_all(&mut [&mut *b]);
    let beta = host_and_invite(b, "beta");
    assert_eq!(overlay(b), taken, "Bert claimed Alice's address");

    // Fred joins both: he follows two coordinators at once and keeps both networks.
    for invite in [&alpha, &beta] {
        let out = f.warren_ok(&["join", invite, "--name", &f.name]);
        assert!(out.contains("joined network"), "{out}");
    }
    wait_status(
        f,
        Duration::from_secs(20),
        "in both hosts' networks",
        |st| {
            let coords = st["coordinators"].as_array().cloned().unwrap_or_default();
            coords.len() == 2
                && coords.iter().all(|c| c["connected"] == true)
                && coords.iter().any(|c| c["networks"] == json!(["alpha"]))
                && coords.iter().any(|c| c["networks"] == json!(["beta"]))
        },
    );

    // The clash is found and resolved: one of the two moved, to an address of its own.
    wait_status(
        f,
        Duration::from_secs(30),
        "both hosts at distinct addresses",
        |st| match (peer_ip(st, &a.name), peer_ip(st, &b.name)) {
            (Some(x), Some(y)) => {
                x != y
                    && st["peers"]
                        .as_array()
                        .is_some_and(|ps| ps.iter().all(|p| p["address_clash"] == false))
            }
            _ => false,
        },
    );
    let (sa, sb) = (a.status(), b.status());
    let moves = |st: &Value| st["self"]["address_moves"].as_u64().unwrap_or(0);
    assert_eq!(
        moves(&sa) + moves(&sb),
        1,
        "exactly one of them moved:\n{sa:#}\n{sb:#}"
    );
    let (ia, ib) = (overlay(a), overlay(b));
    assert_ne!(ia, ib);
    let st = f.status();
    assert_eq!(peer_ip(&st, &a.name), Some(ia.to_string()), "{st:#}");
    assert_eq!(peer_ip(&st, &b.name), Some(ib.to_string()), "{st:#}");

    // Fred reaches both by their IPv4 addresses, and both reach him.
    let fi = overlay(f);
    for (from, to, what) in [
        (&*f, ia, "fred -> alice"),
        (&*f, ib, "fred -> bert"),
        (&*a, fi, "alice -> fred"),
        (&*b, fi, "bert -> fred"),
    ] {
        assert!(pings(from, to), "{what} ({to})");
    }
    // Alice and Bert share no network: neither is the other's peer.
    assert!(Host::peer_in(&a.status(), &b.name).is_none());
    assert!(Host::peer_in(&b.status(), &a.name).is_none());

    // Fred leaves beta: Alice's network stays, Bert is no longer his peer.
    let out = f.warren_ok(&["leave", "beta"]);
    assert!(out.contains("left network beta"), "{out}");
    wait_status(f, Duration::from_secs(15), "bert gone, alice kept", |st| {
        Host::peer_in(st, &b.name).is_none() && Host::peer_in(st, &a.name).is_some()
    });
    assert!(pings(f, ia), "fred -> alice after leaving beta");
}
