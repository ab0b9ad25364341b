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
//! - `the_harness_fails_without_a_server`: with nothing listening, the helper fails (FreeRDP's
//!   log says why) instead of returning a screenshot.
//! - `wake_a_pc_through_a_member`: `warren wake MAC --via B` on A (behind another NAT) makes
//!   member B send the exact Wake-on-LAN magic packet as a broadcast on its LAN, where a PC
//!   without Warren (a UDP socket on port 9 bound to the LAN's broadcast address) receives it;
//!   a second request within a second is not carried out; the GUI's "Wake PC" does the same;
//!   a mistyped MAC gets an error that says what to type.

use warren_lab as lab;

use lab::matrix::{first_reply_blocking, peer_path};
use lab::netns::in_netns;
use lab::node::start_all;
use lab::rdp::{rdp_login_screen, rdp_peer_address, NetnsResolvConf, Xrdp};
use lab::site::SiteKind;
use lab::Lab;
use std::net::{SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};
use warren_gui::actions::Action;

#[test]
fn rdp_to_a_member_by_name() {
    lab::needs_root!();
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
    lab::needs_root!();
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

#[test]
fn wake_a_pc_through_a_member() {
    lab::needs_root!();
    let mut lab = Lab::start("wake");
    let (_sa, mut ha) = lab.add_site(SiteKind::PortRestricted, 1, "a");
    let (site, mut hb) = lab.add_site_with_lan_hosts(SiteKind::Symmetric, 1, "home", 1);
    let pc = site.lan_hosts[0].clone();
    let (a, b) = (&mut ha[0], &mut hb[0]);
    start_all(&mut [&mut *a, &mut *b]);
    a.up(&lab.coordinator);
    let ip_b = b.up(&lab.coordinator);
    a.warren_ok(&["create", "home", "--password", "pw-home"]);
    b.warren_ok(&["join", "home", "--password", "pw-home"]);
    first_reply_blocking(a, ip_b, Instant::now());

    // The sleeping PC's network card, as a socket: it gets what is broadcast on its LAN.
    let bcast = pc.broadcast;
    let card: UdpSocket = in_netns(&pc.ns, move || {
        UdpSocket::bind(SocketAddrV4::new(bcast, 9)).expect("bind the LAN's broadcast address")
    });
    let mac = [0x52, 0x54, 0x00, 0xab, 0xcd, 0xef];
    let mut magic = vec![0xff; 6];
    for _ in 0..16 {
        magic.extend_from_slice(&mac);
    }
    let receive = |wait: Duration| {
        card.set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0u8; 1500];
        card.recv_from(&mut buf)
            .ok()
            .map(|(n, from)| (buf[..n].to_vec(), from))
    };

    let t0 = Instant::now();
    let out = a.warren_ok(&["wake", "52-54-00-AB-CD-EF", "--via", &b.name]);
    assert!(out.contains(&format!("asked {}", b.name)), "{out}");
    let (got, from) = receive(Duration::from_secs(5)).expect("the magic packet on B's LAN");
    assert_eq!(got, magic, "6 x 0xff, then the MAC 16 times");
    assert_eq!(
        from.ip(),
        std::net::IpAddr::V4(b.ip),
        "sent by B, on its LAN"
    );
    eprintln!(
        "wake: {} bytes from {from} on {}'s LAN {:.0} ms after `warren wake` started",
        got.len(),
        b.name,
        t0.elapsed().as_secs_f64() * 1000.0
    );

    // Pressed again at once: B waits out its second.
    a.warren_ok(&["wake", "52:54:00:ab:cd:ef", "--via", &b.name]);
    assert_eq!(
        receive(Duration::from_millis(700)),
        None,
        "at most one wake a second"
    );
    std::thread::sleep(Duration::from_millis(400));
    a.warren_ok(&["wake", "525400abcdef", "--via", &b.name]);
    let (again, _) = receive(Duration::from_secs(5)).expect("a wake a second later");
    assert_eq!(again, magic);
    // The GUI's "Wake PC" beside member B, as the window's worker thread runs it.
    std::thread::sleep(Duration::from_millis(1100));
    let said = warren_gui::actions::run(
        &a.socket,
        &Action::Wake {
            via: b.name.clone(),
            mac: "52:54:00:AB:CD:EF".into(),
        },
    )
    .expect("Wake PC");
    assert!(said.contains(&format!("asked {}", b.name)), "{said}");
    let (from_gui, _) = receive(Duration::from_secs(5)).expect("the GUI's wake");
    assert_eq!(from_gui, magic);
    let wrong = warren_gui::actions::run(
        &a.socket,
        &Action::Wake {
            via: b.name.clone(),
            mac: "office pc".into(),
        },
    )
    .unwrap_err();
    assert!(wrong.message.contains("aa:bb:cc:dd:ee:ff"), "{wrong}");

    for bad in ["52:54:00:ab:cd", "52:54:00:ab:cd:zz", "office-pc"] {
        a.warren_err(
            &["wake", bad, "--via", &b.name],
            &["is not a MAC address", "aa:bb:cc:dd:ee:ff"],
        );
    }
    a.warren_err(
        &["wake", "ff:ff:ff:ff:ff:ff", "--via", &b.name],
        &["broadcast"],
    );
    a.warren_err(
        &["wake", "52:54:00:ab:cd:ef", "--via", "nobody"],
        &["nobody"],
    );
    assert_eq!(
        receive(Duration::from_millis(300)),
        None,
        "nothing sent for those"
    );
}

/// The harness itself can fail: with no RDP server at the address, FreeRDP gives up and the
/// helper says so rather than returning a screenshot.
#[test]
fn the_harness_fails_without_a_server() {
    lab::needs_root!();
    let mut lab = Lab::start("rdpnone");
    let (site, hosts) = lab.add_site_with_lan_hosts(SiteKind::PortRestricted, 1, "home", 1);
    let pc = site.lan_hosts[0].clone();
    let host = &hosts[0];
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rdp_login_screen(host, &pc.ip.to_string(), "no-server")
    }))
    .expect_err("a screenshot without an RDP server");
    let why = failed
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| failed.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(why.contains("before the connection was active"), "{why}");
}
