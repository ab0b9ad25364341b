//! LAN gaming over the overlay (issue 7), in the NAT lab as root: real daemons behind NAT
//! routers, real programs' sockets in their namespaces.
//!
//! - `broadcast_and_multicast_reach_peers_only`: a host sends UDP to the overlay's directed
//!   broadcast address, to 255.255.255.255 on the Warren interface, to mDNS (224.0.0.251:5353)
//!   and to a game's own group; a peer behind another NAT receives each on sockets bound to the
//!   wildcard address / joined to the group on its Warren interface, with the sender's overlay
//!   address as source; a host that shares no network with the sender receives nothing.
//! - `ipv6_multicast_reaches_peers`: mDNS on ff02::fb and a site-scope group over the IPv6
//!   overlay, received with the sender's overlay IPv6 address as source.
//! - `peers_by_name`: a remote-desktop server (TCP 3389) on a host behind one NAT is reached
//!   from a host behind another by its name, `NAME.warren`, through the daemon's DNS server
//!   (the namespace's resolv.conf points at it, as systemd-resolved's `~warren` route would);
//!   `NAME.NETWORK.warren` works too, and other names are refused rather than answered.
//! - `port_doctor`: `warren check` gives each of its answers — reachable (a TCP server and a
//!   UDP listener), nothing listening, the peer's firewall drops it (an nftables rule on the
//!   peer's Warren interface), and the `--app` presets with `--json` (a closed optional port
//!   is reported, not failed).

use warren_lab as lab;

use lab::matrix::first_reply_blocking;
use lab::netns::in_netns;
use lab::node::{start_all, Host};
use lab::site::SiteKind;
use lab::{Lab, TUN_NAME};
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

const BCAST_PORT: u16 = 47_624; // a game's discovery port (DirectPlay's)
const MDNS: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(224, 0, 0, 251), 5353);
const GAME_GROUP: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(239, 77, 1, 2), 47_625);
const OVERLAY_BROADCAST: Ipv4Addr = Ipv4Addr::new(100, 127, 255, 255);

fn udp(bind: SocketAddrV4) -> Socket {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    s.set_reuse_address(true).unwrap();
    s.bind(&SocketAddr::V4(bind).into()).unwrap();
    s
}

/// The three listeners a game, an mDNS responder and a game with its own group would have in
/// `host`'s namespace, on the wildcard address; the group members joined on the Warren
/// interface (by its overlay address).
fn listeners(host: &Host, overlay: Ipv4Addr) -> Vec<(&'static str, UdpSocket)> {
    in_netns(&host.ns, move || {
        let any = |port| SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port);
        let bcast = udp(any(BCAST_PORT));
        let mdns = udp(any(MDNS.port()));
        mdns.join_multicast_v4(MDNS.ip(), &overlay).unwrap();
        let game = udp(any(GAME_GROUP.port()));
        game.join_multicast_v4(GAME_GROUP.ip(), &overlay).unwrap();
        [("broadcast", bcast), ("mdns", mdns), ("group", game)]
            .into_iter()
            .map(|(what, s)| {
                let s: UdpSocket = s.into();
                s.set_read_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                (what, s)
            })
            .collect()
    })
}

/// Everything the listeners got until `until`: payload → source.
fn collect(listeners: &[(&str, UdpSocket)], until: Instant) -> BTreeMap<String, SocketAddr> {
    let mut got = BTreeMap::new();
    let mut buf = [0u8; 1500];
    while Instant::now() < until {
        for (what, s) in listeners {
            if let Ok((n, from)) = s.recv_from(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).to_string();
                got.insert(format!("{what}:{text}"), from);
            }
        }
    }
    got
}

#[test]
fn broadcast_and_multicast_reach_peers_only() {
    lab::needs_root!();
    let mut lab = Lab::start("landisc");
    let (_sa, mut ha) = lab.add_site(SiteKind::PortRestricted, 1, "a");
    let (_sb, mut hb) = lab.add_site(SiteKind::FullCone, 1, "b");
    let (_sc, mut hc) = lab.add_site(SiteKind::PortRestricted, 1, "c");
    let (a, b, c) = (&mut ha[0], &mut hb[0], &mut hc[0]);
    start_all(&mut [&mut *a, &mut *b, &mut *c]);
    let ip_a = a.up(&lab.coordinator);
    let ip_b = b.up(&lab.coordinator);
    let ip_c = c.up(&lab.coordinator);
    a.warren_ok(&["create", "party", "--password", "pw-party"]);
    b.warren_ok(&["join", "party", "--password", "pw-party"]);
    c.warren_ok(&["create", "elsewhere", "--password", "pw-else"]);
    first_reply_blocking(a, ip_b, Instant::now());

    let on_b = listeners(b, ip_b);
    let on_c = listeners(c, ip_c);
    // A's sender: broadcast allowed, multicast out of the Warren interface, and a second
    // socket tied to that interface for the limited broadcast (255.255.255.255 goes out of
    // the interface a program names).
    let (sender, limited) = in_netns(&a.ns, move || {
        let s = udp(SocketAddrV4::new(ip_a, 0));
        s.set_broadcast(true).unwrap();
        s.set_multicast_if_v4(&ip_a).unwrap();
        let l = udp(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));
        l.set_broadcast(true).unwrap();
        l.bind_device(Some(TUN_NAME.as_bytes())).unwrap();
        (UdpSocket::from(s), UdpSocket::from(l))
    });
    let sends: [(&UdpSocket, SocketAddrV4, &str); 4] = [
        (
            &sender,
            SocketAddrV4::new(OVERLAY_BROADCAST, BCAST_PORT),
            "directed",
        ),
        (
            &limited,
            SocketAddrV4::new(Ipv4Addr::BROADCAST, BCAST_PORT),
            "limited",
        ),
        (&sender, MDNS, "mdns-query"),
        (&sender, GAME_GROUP, "game-announce"),
    ];
    // Discovery repeats itself; so does this, a few times over two seconds.
    for _ in 0..5 {
        for (s, to, text) in &sends {
            s.send_to(text.as_bytes(), to).unwrap();
        }
        std::thread::sleep(Duration::from_millis(400));
    }
    let got_b = collect(&on_b, Instant::now() + Duration::from_secs(1));
    let from_a = SocketAddr::V4(SocketAddrV4::new(ip_a, sender.local_addr().unwrap().port()));
    let from_a_limited = SocketAddr::V4(SocketAddrV4::new(
        ip_a,
        limited.local_addr().unwrap().port(),
    ));
    let want = [
        ("broadcast:directed", from_a),
        ("broadcast:limited", from_a_limited),
        ("mdns:mdns-query", from_a),
        ("group:game-announce", from_a),
    ];
    for (key, from) in want {
        assert_eq!(
            got_b.get(key),
            Some(&from),
            "{} should have received {key} from {from}; got {got_b:?}\nA: {}\nB: {}",
            b.name,
            a.status(),
            b.status()
        );
    }
    let got_c = collect(&on_c, Instant::now() + Duration::from_millis(500));
    assert!(
        got_c.is_empty(),
        "{} shares no network with {}, yet received {got_c:?}",
        c.name,
        a.name
    );
    let (st_a, st_b) = (a.status(), b.status());
    assert!(
        st_a["broadcast"]["sent"].as_u64().unwrap() >= 20,
        "{}",
        st_a["broadcast"]
    );
    assert!(
        st_b["broadcast"]["received"].as_u64().unwrap() >= 20,
        "{}",
        st_b["broadcast"]
    );
    assert_eq!(c.status()["broadcast"]["received"], 0);
}

/// `/etc/netns/NS/resolv.conf` (which `ip netns exec NS` puts over /etc/resolv.conf), removed
/// on drop.
struct NetnsResolvConf(std::path::PathBuf);

impl NetnsResolvConf {
    fn new(ns: &str, server: Ipv4Addr) -> Self {
        let dir = std::path::Path::new("/etc/netns").join(ns);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("resolv.conf"),
            format!("nameserver {server}\noptions timeout:1 attempts:2\n"),
        )
        .unwrap();
        NetnsResolvConf(dir)
    }
}

impl Drop for NetnsResolvConf {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sh_in(ns: &str, script: &str) -> lab::cmd::CmdOutput {
    let mut cmd = std::process::Command::new("ip");
    cmd.args(["netns", "exec", ns, "bash", "-c", script]);
    lab::cmd::run_timeout(&mut cmd, Duration::from_secs(20)).unwrap()
}

#[test]
fn peers_by_name() {
    lab::needs_root!();
    let mut lab = Lab::start("names");
    let (_sa, mut ha) = lab.add_site(SiteKind::PortRestricted, 1, "a");
    let (_sb, mut hb) = lab.add_site(SiteKind::FullCone, 1, "b");
    let (a, b) = (&mut ha[0], &mut hb[0]);
    // systemd-resolved does not run in the lab: a stand-in `resolvectl` records what the
    // daemon asks of it.
    let resolvectl_log = a.dir.join("resolvectl.log");
    let fake = a.dir.join("resolvectl");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", resolvectl_log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    a.extra_args = vec!["--resolvectl".into(), fake.display().to_string()];
    start_all(&mut [&mut *a, &mut *b]);
    let ip_a = a.up(&lab.coordinator);
    let ip_b = b.up(&lab.coordinator);
    // Waits until the log holds `want` (lines in a row) at its end.
    let resolved_said = |want: &str| {
        let t0 = Instant::now();
        loop {
            let log = std::fs::read_to_string(&resolvectl_log).unwrap_or_default();
            if log.ends_with(want) {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "resolvectl never got {want:?}: {log:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let registered = format!(
        "dns {TUN_NAME} {ip_a}\ndomain {TUN_NAME} ~warren\ndefault-route {TUN_NAME} false\n"
    );
    resolved_said(&registered);
    a.warren_ok(&["down"]);
    resolved_said(&format!("revert {TUN_NAME}\n"));
    a.warren_ok(&["up"]);
    resolved_said(&registered);
    a.warren_ok(&["create", "office", "--password", "pw-office"]);
    b.warren_ok(&["join", "office", "--password", "pw-office"]);
    first_reply_blocking(a, ip_b, Instant::now());
    let _resolv = NetnsResolvConf::new(&a.ns, ip_a);

    // The remote desktop "server": accepts on 3389 and greets.
    let listener = in_netns(&b.ns, || {
        std::net::TcpListener::bind("0.0.0.0:3389").unwrap()
    });
    let server = std::thread::spawn(move || {
        use std::io::Write;
        let (mut conn, from) = listener.accept().unwrap();
        conn.write_all(b"RDP-HELLO\n").unwrap();
        from
    });
    let name = format!("{}.warren", b.name);
    let o = sh_in(&a.ns, &format!("getent ahostsv4 {name}"));
    assert!(
        o.success() && o.stdout.starts_with(&format!("{ip_b} ")),
        "{name} should resolve to {ip_b}: {o:?}"
    );
    let o = sh_in(
        &a.ns,
        &format!(
            "exec 3<>/dev/tcp/{}/3389 && head -n1 <&3",
            name.to_uppercase()
        ),
    );
    assert_eq!(o.stdout.trim(), "RDP-HELLO", "{o:?}");
    let from = server.join().unwrap();
    assert_eq!(
        from.ip(),
        std::net::IpAddr::V4(ip_a),
        "the connection came over the overlay"
    );

    let o = sh_in(&a.ns, &format!("getent ahostsv4 {}.office.warren", b.name));
    assert!(o.stdout.starts_with(&format!("{ip_b} ")), "{o:?}");
    let o = sh_in(&a.ns, &format!("getent ahostsv4 {}.warren", a.name));
    assert!(
        o.stdout.starts_with(&format!("{ip_a} ")),
        "its own name: {o:?}"
    );
    for missing in ["nobody.warren", "example.com"] {
        let o = sh_in(&a.ns, &format!("getent ahostsv4 {missing}"));
        assert!(!o.success(), "{missing} must not resolve: {o:?}");
    }
}

#[test]
fn port_doctor() {
    lab::needs_root!();
    let mut lab = Lab::start("doctor");
    let (_sa, mut ha) = lab.add_site(SiteKind::PortRestricted, 1, "a");
    let (_sb, mut hb) = lab.add_site(SiteKind::FullCone, 1, "b");
    let (a, b) = (&mut ha[0], &mut hb[0]);
    start_all(&mut [&mut *a, &mut *b]);
    a.up(&lab.coordinator);
    let ip_b = b.up(&lab.coordinator);
    a.warren_ok(&["create", "lan", "--password", "pw-lan"]);
    b.warren_ok(&["join", "lan", "--password", "pw-lan"]);
    first_reply_blocking(a, ip_b, Instant::now());

    // On b: a remote desktop server (3389), a server behind its firewall (3391), a game's UDP
    // port (27015); nothing on 3390.
    let (rdp, hidden, _game) = in_netns(&b.ns, || {
        (
            std::net::TcpListener::bind("0.0.0.0:3389").unwrap(),
            std::net::TcpListener::bind("0.0.0.0:3391").unwrap(),
            UdpSocket::bind("0.0.0.0:27015").unwrap(),
        )
    });
    let _keep = (&rdp, &hidden);
    let nft = lab::nft_bin();
    for rule in [
        "add table inet doctor",
        "add chain inet doctor input { type filter hook input priority 0; policy accept; }",
        &format!("add rule inet doctor input iifname {TUN_NAME} tcp dport 3391 drop"),
    ] {
        let args: Vec<&str> = ["netns", "exec", &b.ns, nft]
            .into_iter()
            .chain(rule.split(' '))
            .collect();
        lab::cmd::run_ok("ip", &args);
    }

    let cases: [(&str, i32, &str); 5] = [
        ("3389", 0, "3389/tcp: reachable"),
        ("27015/udp", 0, "27015/udp: reachable"),
        (
            "3390",
            1,
            &format!("3390/tcp: nothing listening on {}", b.name),
        ),
        (
            "3390/udp",
            1,
            &format!("3390/udp: nothing listening on {}", b.name),
        ),
        (
            "3391",
            1,
            &format!("3391/tcp: {}'s firewall drops it", b.name),
        ),
    ];
    for (port, code, want) in cases {
        let o = a.warren(&["check", &b.name, port]);
        assert_eq!(o.status.code(), Some(code), "check {port}: {o:?}");
        assert!(
            o.stdout.starts_with(want),
            "check {port}: want {want:?}, got {o:?}"
        );
    }

    // A preset, as JSON: RDP is 3389 over TCP (served) and, optionally, UDP (nothing there,
    // as with xrdp): the check passes and says which port was optional.
    let o = a.warren(&["check", &b.name, "--app", "rdp", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let reports: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let verdicts: Vec<(u64, &str, &str, bool)> = reports
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["port"].as_u64().unwrap(),
                r["proto"].as_str().unwrap(),
                r["verdict"].as_str().unwrap(),
                r["required"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            (3389, "tcp", "reachable", true),
            (3389, "udp", "nothing_listening", false)
        ],
        "{reports}"
    );
    assert_eq!(reports[0]["peer_listening"], "overlay", "{reports}");
    let o = a.warren(&["check", &b.name, "--app", "rdp"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(
        o.stdout
            .contains("optional, not open: 3389/udp: nothing listening on"),
        "{o:?}"
    );
    // A required port that is closed still fails: Counter-Strike needs 27015/udp (served
    // above), not its RCON port 27015/tcp; nothing serves Call of Duty's 3074.
    let o = a.warren(&["check", &b.name, "--app", "counter-strike"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let o = a.warren(&["check", &b.name, "--app", "call-of-duty"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    a.warren_err(&["check", &b.name, "--app", "nope"], &["no preset", "rdp"]);
    a.warren_err(&["check", "nobody", "3389"], &["nobody"]);
}

fn if_index(ns: &str) -> u32 {
    in_netns(ns, || {
        let name = std::ffi::CString::new(TUN_NAME).unwrap();
        // SAFETY: a valid NUL-terminated name.
        unsafe { libc::if_nametoindex(name.as_ptr()) }
    })
}

#[test]
fn ipv6_multicast_reaches_peers() {
    lab::needs_root!();
    use std::net::{Ipv6Addr, SocketAddrV6};
    let mut lab = Lab::start("mcast6");
    let (_sa, mut ha) = lab.add_site(SiteKind::PortRestricted, 1, "a");
    let (_sb, mut hb) = lab.add_site(SiteKind::FullCone, 1, "b");
    let (a, b) = (&mut ha[0], &mut hb[0]);
    start_all(&mut [&mut *a, &mut *b]);
    a.up(&lab.coordinator);
    let ip_b = b.up(&lab.coordinator);
    a.warren_ok(&["create", "six", "--password", "pw-six"]);
    b.warren_ok(&["join", "six", "--password", "pw-six"]);
    first_reply_blocking(a, ip_b, Instant::now());
    let a6: Ipv6Addr = a.status()["self"]["overlay_ip6"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mdns6: Ipv6Addr = "ff02::fb".parse().unwrap();
    let group6: Ipv6Addr = "ff05::7761:726e".parse().unwrap();
    let (ia, ib) = (if_index(&a.ns), if_index(&b.ns));
    let receivers = in_netns(&b.ns, move || {
        [(mdns6, 5353u16), (group6, 47_626)]
            .into_iter()
            .map(|(group, port)| {
                let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).unwrap();
                s.set_only_v6(true).unwrap();
                s.set_reuse_address(true).unwrap();
                let any = SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0);
                s.bind(&SocketAddr::V6(any).into()).unwrap();
                s.join_multicast_v6(&group, ib).unwrap();
                let s: UdpSocket = s.into();
                s.set_read_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                s
            })
            .collect::<Vec<_>>()
    });
    let sender = in_netns(&a.ns, move || {
        let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        s.set_multicast_if_v6(ia).unwrap();
        UdpSocket::from(s)
    });
    for _ in 0..5 {
        sender
            .send_to(b"mdns6", SocketAddrV6::new(mdns6, 5353, 0, ia))
            .unwrap();
        sender
            .send_to(b"group6", SocketAddrV6::new(group6, 47_626, 0, ia))
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut buf = [0u8; 64];
    for (s, want) in receivers.iter().zip(["mdns6", "group6"]) {
        let deadline = Instant::now() + Duration::from_secs(2);
        let got = loop {
            if let Ok((n, from)) = s.recv_from(&mut buf) {
                break Some((String::from_utf8_lossy(&buf[..n]).to_string(), from));
            }
            if Instant::now() > deadline {
                break None;
            }
        };
        let (text, from) = got.unwrap_or_else(|| {
            panic!(
                "{} received no {want}\nA: {}\nB: {}",
                b.name,
                a.status(),
                b.status()
            )
        });
        assert_eq!(text, want);
        assert_eq!(
            from.ip(),
            std::net::IpAddr::V6(a6),
            "{want} should come from A's overlay IPv6"
        );
    }
}
