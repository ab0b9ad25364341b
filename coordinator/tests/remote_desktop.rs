//! Remote desktop to a home PC (issue 19), in the NAT lab as root, with real programs: xrdp
//! (and xrdp-sesman) as the server, FreeRDP 2's `xfreerdp` under Xvfb as the client, which must
//! complete the RDP connection sequence and show xrdp's login screen (a screenshot of it is kept
//! in `target/lab-artifacts/`).
//!
//! - `rdp_to_a_member_by_name`: xrdp on member B behind a symmetric NAT; FreeRDP on member A
//!   behind a port-restricted NAT connects to `B.warren` (the daemon's DNS) and reaches the login
//!   screen over the overlay; `warren check B --app rdp` says reachable.
//! - `rdp_to_a_lan_host_without_warren`: xrdp on a host of a site's LAN that runs no Warren,
//!   reached from the member on that LAN by its LAN address (the harness the subnet-route test
//!   builds on).

mod lab;

use lab::matrix::{first_reply_blocking, peer_path};
use lab::node::start_all;
use lab::rdp::{rdp_login_screen, rdp_peer_address, NetnsResolvConf, Xrdp};
use lab::site::SiteKind;
use lab::Lab;
use std::time::Instant;

#[test]
fn rdp_to_a_member_by_name() {
    let mut lab = Lab::start("rdpname");
    let (_sa, mut ha) = lab.add_site(SiteKind::PortRestricted, 1, "a");
    let (_sb, mut hb) = lab.add_site(SiteKind::Symmetric, 1, "b");
    let (a, b) = (&mut ha[0], &mut hb[0]);
    start_all(&mut [&mut *a, &mut *b]);
    let ip_a = a.up(&lab.coordinator);
    let ip_b = b.up(&lab.coordinator);
    a.warren_ok(&["create", "home", "--password", "pw-home"]);
    b.warren_ok(&["join", "home", "--password", "pw-home"]);
    first_reply_blocking(a, ip_b, Instant::now());
    eprintln!(
        "{} -> {}: path {}",
        a.name,
        b.name,
        peer_path(&a.status(), &b.name)
    );
    let _resolv = NetnsResolvConf::new(&a.ns, ip_a);

    let server = Xrdp::start(&b.ns, &b.dir);
    let target = format!("{}.warren", b.name);
    let shot = rdp_login_screen(a, &target, "member-by-name");
    assert!(shot.exists());
    assert_eq!(
        rdp_peer_address(a, "member-by-name"),
        Some(ip_b),
        "FreeRDP should have resolved {target} to B's overlay address"
    );
    assert_eq!(
        server.clients(),
        vec![ip_a],
        "xrdp should have been reached over the overlay, from A's overlay address only"
    );
    let o = a.warren(&["check", &b.name, "--app", "rdp"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(o.stdout.contains("3389/tcp: reachable"), "{o:?}");
    eprintln!("warren check {} --app rdp:\n{}", b.name, o.stdout.trim());
}

#[test]
fn rdp_to_a_lan_host_without_warren() {
    let mut lab = Lab::start("rdplan");
    let (site, mut hosts) = lab.add_site_with_lan_hosts(SiteKind::PortRestricted, 1, "home", 1);
    let pc = site.lan_hosts[0].clone();
    let member = &mut hosts[0];
    // No daemon anywhere: the LAN itself is what is tested.
    let server = Xrdp::start(&pc.ns, &pc.dir);
    rdp_login_screen(member, &pc.ip.to_string(), "lan-host");
    assert_eq!(rdp_peer_address(member, "lan-host"), Some(pc.ip));
    assert_eq!(server.clients(), vec![member.ip]);
}
