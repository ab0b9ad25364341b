//! Subnet routes (issue 19) in the NAT lab: a member at home advertises its LAN, the network's
//! owner approves it, and a member behind another NAT reaches a LAN host that runs no Warren.
//! Needs root and the workspace built first (`cargo build --workspace`).

use warren_lab as lab;

use lab::matrix::{first_reply_blocking, ping};
use lab::node::{start_all, wait_path, wait_status, Host};
use lab::site::SiteKind;
use lab::Lab;
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::Command;
use std::time::Duration;

/// `host`'s view of peer `peer`'s routes in `status --json`.
fn peer_routes(st: &Value, peer: &str) -> Vec<Value> {
    Host::peer_in(st, peer)
        .and_then(|p| p["routes"].as_array().cloned())
        .unwrap_or_default()
}

fn in_ns(ns: &str, args: &[&str]) -> (bool, String) {
    let o = Command::new("ip")
        .args(["netns", "exec", ns])
        .args(args)
        .output()
        .expect("run a command in a namespace");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr),
    )
}

/// Waits until `viewer` hears from the coordinator that `lan` is advertised.
fn wait_advertised(viewer: &Host, lan: &str) {
    wait_status(
        viewer,
        Duration::from_secs(10),
        "the route advertised",
        |st| {
            st["coordinator"]["routes"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["prefix"] == lan))
        },
    );
}

/// The owner (`owner`) approves `router`'s `lan` in network "home"; waits until the owner
/// routes it and the router forwards into it.
fn approve(owner: &Host, router: &Host, lan: &str) {
    owner.warren_ok(&["routes", "approve", "home", &router.name, lan]);
    wait_status(owner, Duration::from_secs(10), "the route in use", |st| {
        peer_routes(st, &router.name)
            .iter()
            .any(|r| r["prefix"] == lan && r["routed"] == true)
    });
    wait_status(router, Duration::from_secs(10), "forwarding", |st| {
        st["self"]["forwarding"]
            .as_array()
            .is_some_and(|f| f.iter().any(|p| p == lan))
    });
}

#[test]
fn a_member_reaches_a_lan_host_without_warren_through_an_approved_route() {
    lab::needs_root!();
    let mut lab = Lab::start("subnet");
    // Home: the NAS runs Warren, the PC (h2) runs nothing of ours, the TV (h3) runs Warren
    // on the same LAN. Away: the owner's laptop behind a symmetric NAT.
    let (home, mut home_hosts) = lab.add_site(SiteKind::PortRestricted, 3, "home");
    let (_away, mut away_hosts) = lab.add_site(SiteKind::Symmetric, 1, "away");
    let lan = format!("192.168.{}.0/24", home.index);
    let pc_ip: Ipv4Addr = home_hosts[1].ip;
    let (nas_pc_tv, laptop) = (&mut home_hosts, &mut away_hosts[0]);
    let (nas, rest) = nas_pc_tv.split_at_mut(1);
    let (pc, tv) = rest.split_at_mut(1);
    let (nas, pc, tv) = (&mut nas[0], &pc[0], &mut tv[0]);
    start_all(&mut [&mut *nas, &mut *tv, &mut *laptop]);
    for h in [&*nas, &*tv, &*laptop] {
        h.up(&lab.coordinator);
    }
    laptop.warren_ok(&["create", "home", "--password", "pw-home"]);
    nas.warren_ok(&["join", "home", "--password", "pw-home"]);
    tv.warren_ok(&["join", "home", "--password", "pw-home"]);

    // Advertised, not approved: listed as waiting, with the command that approves it; not
    // routed, so the PC stays out of reach.
    let said = nas.warren_ok(&["set", "--advertise-routes", &lan]);
    assert!(said.contains(&lan) && said.contains("approve"), "{said}");
    wait_advertised(laptop, &lan);
    let listed = laptop.warren_ok(&["routes"]);
    assert!(
        listed.contains("waiting for the owner's approval")
            && listed.contains(&format!("warren routes approve home {} {lan}", nas.name)),
        "{listed}"
    );
    let p = ping(&laptop.ns, pc_ip, 2, 1);
    assert_eq!(p.received, 0, "reached before approval:\n{}", p.output);

    // Only the owner approves.
    let refused = nas.warren(&["routes", "approve", "home", &nas.name, &lan]);
    assert!(!refused.success(), "a member approved its own route");
    approve(laptop, nas, &lan);
    let (_, routes) = in_ns(&laptop.ns, &["ip", "route", "show", "dev", "warren0"]);
    assert!(
        routes.contains(&lan),
        "no kernel route on the laptop:\n{routes}"
    );
    // The PC has no route to the overlay: its replies reach the laptop only because the NAS
    // masquerades what it forwards. (Once the laptop's path to the NAS has settled: a
    // symmetric NAT's birthday run may move it while the first packets fly.)
    wait_path(laptop, nas, &["direct"], Duration::from_secs(20));
    first_reply_blocking(laptop, pc_ip, std::time::Instant::now());
    let p = ping(&laptop.ns, pc_ip, 3, 2);
    assert_eq!(p.received, 3, "laptop -> the PC at home:\n{}", p.output);
    // `warren check` on the LAN host's address: nothing listens on 3389 yet, and it says so.
    let pc_s = pc_ip.to_string();
    let c = laptop.warren(&["check", &pc_s, "3389", "--json"]);
    let v: Value = serde_json::from_str(&c.stdout).unwrap_or_else(|e| panic!("{e}: {c:?}"));
    assert_eq!(v[0]["verdict"], "nothing_listening", "{v}");
    lab::transfer_intact(
        &laptop.ns,
        &pc.ns,
        SocketAddrV4::new(pc_ip, 3389),
        4_000_000,
        0x7375_626e,
        "to the LAN host through the route",
    );

    // The TV is on that LAN itself: it does not route it through the NAS, and says why.
    wait_status(tv, Duration::from_secs(10), "the overlap explained", |st| {
        peer_routes(st, &nas.name).iter().any(|r| {
            r["routed"] == false
                && r["note"]
                    .as_str()
                    .is_some_and(|n| n.contains("overlaps this host's own network"))
        })
    });
    let (_, tv_routes) = in_ns(&tv.ns, &["ip", "route", "show", "dev", "warren0"]);
    assert!(!tv_routes.contains(&lan), "{tv_routes}");

    // Turned off: the NAS forwards nothing more and its table is gone.
    nas.warren_ok(&["down"]);
    wait_status(nas, Duration::from_secs(5), "no forwarding", |st| {
        st["self"]["forwarding"]
            .as_array()
            .is_some_and(|f| f.is_empty())
    });
    let (exists, _) = in_ns(&nas.ns, &["nft", "list", "table", "inet", "warren_routes"]);
    assert!(!exists, "the forwarding table outlived `warren down`");
    // Withdrawn approval: the laptop stops routing it.
    nas.warren_ok(&["up"]);
    laptop.warren_ok(&["routes", "revoke", "home", &nas.name, &lan]);
    wait_status(
        laptop,
        Duration::from_secs(10),
        "the route withdrawn",
        |st| peer_routes(st, &nas.name).is_empty(),
    );
    let (_, routes) = in_ns(&laptop.ns, &["ip", "route", "show", "dev", "warren0"]);
    assert!(!routes.contains(&lan), "{routes}");
}

/// The remote desktop, for real: a home PC that runs no Warren but xrdp, reached by
/// FreeRDP on a laptop behind a symmetric NAT through the NAS's approved route, to xrdp's
/// login screen (screenshot in `target/lab-artifacts/rdp-subnet-route.png`); xrdp sees the
/// NAS's LAN address (masqueraded); `warren check ADDRESS --app rdp` says reachable.
#[test]
fn rdp_to_a_home_pc_without_warren_through_a_subnet_route() {
    lab::needs_root!();
    let mut lab = Lab::start("subrdp");
    let (home, mut home_hosts) =
        lab.add_site_with_lan_hosts(SiteKind::PortRestricted, 1, "home", 1);
    let (_away, mut away_hosts) = lab.add_site(SiteKind::Symmetric, 1, "away");
    let pc = home.lan_hosts[0].clone();
    let lan = format!("192.168.{}.0/24", home.index);
    let (nas, laptop) = (&mut home_hosts[0], &mut away_hosts[0]);
    start_all(&mut [&mut *nas, &mut *laptop]);
    nas.up(&lab.coordinator);
    laptop.up(&lab.coordinator);
    laptop.warren_ok(&["create", "home", "--password", "pw-home"]);
    nas.warren_ok(&["join", "home", "--password", "pw-home"]);
    nas.warren_ok(&["set", "--advertise-routes", &lan]);
    wait_advertised(laptop, &lan);
    approve(laptop, nas, &lan);
    let server = lab::rdp::Xrdp::start(&pc.ns, &pc.dir);
    let shot = lab::rdp::rdp_login_screen(laptop, &pc.ip.to_string(), "subnet-route");
    eprintln!(
        "[subrdp] xrdp's login screen through the route: {}",
        shot.display()
    );
    assert_eq!(
        server.clients(),
        vec![nas.ip],
        "the PC sees the NAS's LAN address (masqueraded)"
    );
    let c = laptop.warren(&["check", &pc.ip.to_string(), "--app", "rdp"]);
    assert!(
        c.success() && c.stdout.contains("reachable"),
        "warren check through the route: {c:?}"
    );
}
