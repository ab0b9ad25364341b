//! Game discovery as real games do it (issue 16), in the NAT lab as root. Every program here
//! behaves as the game or tool it stands for: sockets bound to the wildcard address, no
//! `SO_BINDTODEVICE`, nothing bound to an overlay address, multicast joined with INADDR_ANY —
//! so the kernel sends their discovery out of the physical LAN, and Warren has to notice.
//!
//! `games_found_the_ordinary_way`: host A (behind a full-cone NAT, with a LAN neighbour that
//! runs no Warren) and host B (behind a port-restricted NAT) share a network.
//! - A Minecraft-Java-style LAN announcement (224.0.2.60:4445 from an unbound socket) is heard
//!   by B's listener (joined with INADDR_ANY) from A's overlay address;
//! - a Source-style A2S_INFO query broadcast to 255.255.255.255:27015 reaches B's server, whose
//!   unicast reply reaches A's querier through the overlay;
//! - a broadcast to A's LAN's own directed broadcast address on a game port reaches B;
//! - A's LAN neighbour still gets the original broadcasts;
//! - `warren games --json` counts them; a broadcast storm is cut to the rate limit (counted
//!   drops); switched off for the network, nothing goes;
//! - after `warren down` no rule or membership of Warren's is left in the kernel.

use warren_lab as lab;

use lab::netns::in_netns;
use lab::node::{start_all, Host};
use lab::site::SiteKind;
use lab::{Lab, TUN_NAME};
use serde_json::Value;
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

const MC_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 2, 60);
const MC_PORT: u16 = 4445;
const A2S_PORT: u16 = 27015;
const DIRECTED_PORT: u16 = 27016;
const A2S_QUERY: &[u8] = b"\xff\xff\xff\xffTSource Engine Query\0";
const A2S_REPLY: &[u8] = b"\xff\xff\xff\xffI\x11lab server\0";

/// A socket as games open them: UDP on the wildcard address, address reuse on.
fn game_socket(port: u16) -> UdpSocket {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    s.set_reuse_address(true).unwrap();
    s.set_broadcast(true).unwrap();
    s.bind(&SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)).into())
        .unwrap();
    let s: UdpSocket = s.into();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s
}

/// Sends `payload` to `to` every 300 ms until `listener` gets something from `from_ip`, up to
/// `limit`; returns what it got and from where.
fn until_heard(
    sender: &UdpSocket,
    to: SocketAddrV4,
    payload: &[u8],
    listener: &UdpSocket,
    from_ip: Ipv4Addr,
    limit: Duration,
) -> Option<(Vec<u8>, SocketAddr)> {
    let end = Instant::now() + limit;
    let mut buf = [0u8; 1500];
    while Instant::now() < end {
        sender.send_to(payload, to).unwrap();
        let stop = Instant::now() + Duration::from_millis(300);
        while Instant::now() < stop {
            if let Ok((n, from)) = listener.recv_from(&mut buf) {
                if from.ip() == from_ip {
                    return Some((buf[..n].to_vec(), from));
                }
            }
        }
    }
    None
}

fn games(h: &Host) -> Value {
    serde_json::from_str(&h.warren_ok(&["games", "--json"])).expect("games --json")
}

fn counter(st: &Value, port: u16, what: &str) -> u64 {
    st["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| {
            (p["port"].as_u64().unwrap()..=p["last"].as_u64().unwrap()).contains(&u64::from(port))
        })
        .map(|p| p[what].as_u64().unwrap_or(0))
        .sum()
}

fn lan_broadcast(h: &Host) -> Ipv4Addr {
    // The lab's LANs are /24s.
    let o = h.ip.octets();
    Ipv4Addr::new(o[0], o[1], o[2], 255)
}

fn nft_tables(ns: &str) -> String {
    lab::cmd::run_ok("ip", &["netns", "exec", ns, "nft", "list", "tables"]).stdout
}

fn warren_groups(ns: &str) -> String {
    lab::cmd::run_ok(
        "ip",
        &["netns", "exec", ns, "ip", "maddr", "show", "dev", TUN_NAME],
    )
    .stdout
}

#[test]
fn games_found_the_ordinary_way() {
    lab::needs_root!();
    let mut lab = Lab::start("gamedisc");
    let (_sa, mut ha) = lab.add_site(SiteKind::FullCone, 2, "a");
    let (_sb, mut hb) = lab.add_site(SiteKind::PortRestricted, 1, "b");
    let (a, rest) = ha.split_at_mut(1);
    let (a, neighbour) = (&mut a[0], &rest[0]);
    let b = &mut hb[0];
    start_all(&mut [&mut *a, &mut *b]);
    let ip_a = a.up(&lab.coordinator);
    let ip_b = b.up(&lab.coordinator);
    a.warren_ok(&["create", "party", "--password", "pw-party"]);
    b.warren_ok(&["join", "party", "--password", "pw-party"]);
    lab::matrix::first_reply_blocking(a, ip_b, Instant::now());

    // Minecraft Java: the LAN world's announcement, heard as Minecraft listens for it.
    let listener = in_netns(&b.ns, || {
        let s = game_socket(MC_PORT);
        s.join_multicast_v4(&MC_GROUP, &Ipv4Addr::UNSPECIFIED)
            .unwrap();
        s
    });
    let announcer = in_netns(&a.ns, || game_socket(0));
    let motd = b"[MOTD]Lab world[/MOTD][AD]25565[/AD]";
    let heard = until_heard(
        &announcer,
        SocketAddrV4::new(MC_GROUP, MC_PORT),
        motd,
        &listener,
        ip_a,
        Duration::from_secs(15),
    );
    let (got, from) = heard.expect("B's Minecraft heard A's LAN world from A's overlay address");
    assert_eq!(got, motd);
    assert_eq!(from.ip(), ip_a);
    assert!(
        warren_groups(&b.ns).contains(&MC_GROUP.to_string()),
        "B's daemon mirrors the group on its Warren interface"
    );

    // Source engine: the server browser's A2S_INFO broadcast, and the server's unicast reply.
    let server = in_netns(&b.ns, || game_socket(A2S_PORT));
    let lan_listener = in_netns(&neighbour.ns, || game_socket(A2S_PORT));
    let server_thread = std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if let Ok((n, from)) = server.recv_from(&mut buf) {
                if &buf[..n] == A2S_QUERY {
                    server.send_to(A2S_REPLY, from).unwrap();
                    return Some(from);
                }
            }
        }
        None
    });
    let browser = in_netns(&a.ns, || game_socket(0));
    let reply = until_heard(
        &browser,
        SocketAddrV4::new(Ipv4Addr::BROADCAST, A2S_PORT),
        A2S_QUERY,
        &browser,
        ip_b,
        Duration::from_secs(15),
    );
    let queried_from = server_thread.join().unwrap();
    assert_eq!(
        queried_from.map(|f| f.ip()),
        Some(std::net::IpAddr::V4(ip_a)),
        "B's server saw the query from A's overlay address"
    );
    let (got, from) = reply.expect("A's server browser got B's reply through the overlay");
    assert_eq!(got, A2S_REPLY);
    assert_eq!(from, SocketAddr::V4(SocketAddrV4::new(ip_b, A2S_PORT)));
    // The LAN next to A still got the original broadcast, from A's LAN address.
    let mut buf = [0u8; 1500];
    let (n, from) = lan_listener
        .recv_from(&mut buf)
        .expect("the LAN neighbour hears it");
    assert_eq!(
        (&buf[..n], from.ip()),
        (A2S_QUERY, std::net::IpAddr::V4(a.ip))
    );

    // A broadcast to A's own LAN's directed broadcast address.
    let listener = in_netns(&b.ns, || game_socket(DIRECTED_PORT));
    let heard = until_heard(
        &browser,
        SocketAddrV4::new(lan_broadcast(a), DIRECTED_PORT),
        b"directed",
        &listener,
        ip_a,
        Duration::from_secs(10),
    );
    assert!(heard.is_some(), "B hears A's LAN-directed broadcast");

    // The counters say so on both sides.
    let (ga, gb) = (games(a), games(b));
    assert_eq!(ga["active"], true, "{ga:#}");
    assert!(counter(&ga, A2S_PORT, "sent") > 0, "{ga:#}");
    assert!(counter(&gb, MC_PORT, "received") > 0, "{gb:#}");
    assert!(nft_tables(&a.ns).contains("warren_games_"));

    // A broadcast storm from A: cut to the per-host rate, the rest counted as dropped.
    let before = counter(&games(b), 27017, "received");
    // 5 000 a second for 1.2 s (paced, so the interface queue does not drop them first).
    for _ in 0..60 {
        for _ in 0..100 {
            let _ = browser.send_to(b"storm", SocketAddrV4::new(Ipv4Addr::BROADCAST, 27017));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_secs(2));
    let (ga, gb) = (games(a), games(b));
    let got = counter(&gb, 27017, "received") - before;
    assert!(counter(&ga, 27017, "dropped") > 0, "{ga:#}");
    // The limit: a burst of 2 000 copies, then 1 000 a second.
    assert!(got <= 4500, "B got {got} of 6000: the storm was cut");

    // Switched off for the network: A's discovery no longer reaches B.
    let out = a.warren_ok(&["games", "off", "party"]);
    assert!(out.contains("off for party"), "{out}");
    std::thread::sleep(Duration::from_secs(3));
    let heard = until_heard(
        &browser,
        SocketAddrV4::new(lan_broadcast(a), DIRECTED_PORT),
        b"switched off",
        &listener,
        ip_a,
        Duration::from_secs(3),
    );
    assert!(heard.is_none(), "nothing carried while switched off");
    a.warren_ok(&["games", "on", "party"]);

    // Off: nothing of Warren's stays in the kernel.
    for h in [&*a, &*b] {
        h.warren_ok(&["down"]);
    }
    std::thread::sleep(Duration::from_secs(3));
    for h in [&*a, &*b] {
        assert!(
            !nft_tables(&h.ns).contains("warren_games_"),
            "{}: rules left",
            h.name
        );
        assert!(
            !warren_groups(&h.ns).contains(&MC_GROUP.to_string()),
            "{}: membership left",
            h.name
        );
    }
    drop(listener);
}

/// A real program nobody here wrote: Samba's `nmblookup` on host A (behind a full-cone NAT)
/// finds the NetBIOS name that `nmbd` holds on host B (behind a port-restricted NAT). Both run
/// as Debian ships them, configured for nothing but their own directories: `nmblookup`
/// broadcasts its query to A's LAN, Warren carries it, and `nmbd`'s unicast answer comes back
/// through the overlay. With discovery switched off for the network it is not found.
#[test]
fn nmblookup_finds_a_name_nmbd_holds_behind_another_nat() {
    lab::needs_root!();
    lab::discovery_apps::require_samba();
    let mut lab = Lab::start("nmbdisc");
    let (_sa, mut ha) = lab.add_site(SiteKind::FullCone, 1, "a");
    let (_sb, mut hb) = lab.add_site(SiteKind::PortRestricted, 1, "b");
    let (a, b) = (&mut ha[0], &mut hb[0]);
    start_all(&mut [&mut *a, &mut *b]);
    let ip_a = a.up(&lab.coordinator);
    let ip_b = b.up(&lab.coordinator);
    a.warren_ok(&["create", "party", "--password", "pw-party"]);
    b.warren_ok(&["join", "party", "--password", "pw-party"]);
    lab::matrix::first_reply_blocking(a, ip_b, Instant::now());

    let nmbd = lab::discovery_apps::Nmbd::start(&b.ns, "labfileserver", &b.dir.join("nmbd"));
    let found = lab::discovery_apps::find_name(
        &a.ns,
        "labfileserver",
        &a.dir.join("nmblookup"),
        Duration::from_secs(20),
    );
    assert!(found.found, "nmblookup found nothing: {}", found.output);
    eprintln!(
        "nmblookup found {:?} after {} tries, {:?}",
        found.addresses, found.tries, found.elapsed
    );
    // The answer carries B's LAN address, as nmbd gives it; the question came over Warren.
    assert_eq!(found.addresses, vec![b.ip]);
    assert!(
        nmbd.name_queries().iter().any(|q| q.from == ip_a),
        "nmbd saw the query from A's overlay address: {:?}",
        nmbd.name_queries()
    );

    // Switched off for the network: the same lookup finds nothing.
    a.warren_ok(&["games", "off", "party"]);
    std::thread::sleep(Duration::from_secs(3));
    let again = lab::discovery_apps::find_name(
        &a.ns,
        "labfileserver",
        &a.dir.join("nmblookup"),
        Duration::from_secs(3),
    );
    assert!(!again.found, "found while switched off: {}", again.output);
}
