//! Direct TCP for UDP-blocked hosts (issue 18) in the NAT lab: a host whose network blocks UDP
//! reaches a public host and a port-mapped host over TCP to their listeners, and a host behind
//! NAT by TCP simultaneous open — path `direct`, transport `tcp`. Needs root and the workspace
//! built first (`cargo build --workspace`).

use warren_lab as lab;

use lab::matrix::{first_reply_blocking, ping};
use lab::node::{start_all, wait_path, Host};
use lab::site::SiteKind;
use lab::Lab;
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

/// A hotel guest (no UDP out) and a host with a public address: direct over TCP instead of the
/// relay (issue 18). `status` says `direct` with transport `tcp` and the peer's real address on
/// both sides; a ping and a checksummed TCP transfer go through; and when the stream is cut
/// (nftables resets TCP between them) traffic falls back to the relay.
#[test]
fn udp_blocked_reaches_a_public_host_over_tcp() {
    lab::needs_root!();
    let mut lab = Lab::start("udpb-tcp");
    let (_sa, mut ha) = lab.add_site(SiteKind::UdpBlocked, 1, "a");
    let (sb, mut hb) = lab.add_site(SiteKind::Public, 1, "b");
    let (a, b) = (&mut ha[0], &mut hb[0]);
    start_all(&mut [&mut *a, &mut *b]);
    let (_, ip_b) = direct_over_tcp(&lab, a, b, "udp_blocked-public", 0x7463_7000);
    let public = b.status()["self"]["listen_port"].as_u64().unwrap();
    let st = a.status();
    let p = Host::peer_in(&st, &b.name).expect("peer listed");
    assert!(
        p["endpoint"]
            .as_str()
            .is_some_and(|e| e.ends_with(&format!(":{public}"))),
        "the endpoint shown is the public host's TCP address: {p}"
    );
    // The stream breaks (TCP between the two reset from now on): the relay carries the pair.
    a.cut_tcp_with(sb.public_ip, "wtcpcut");
    wait_path(a, b, &["relay"], Duration::from_secs(15));
    let r = ping(&a.ns, ip_b, 3, 1);
    assert_eq!(
        r.received, 3,
        "through the relay after the cut:\n{}",
        r.output
    );
}

/// UDP-blocked ↔ a host behind a home router that maps ports (UPnP-IGD, NAT-PMP, PCP; issue
/// 18): the mapped host asks its router to forward its TCP listen port too and advertises the
/// mapping (`mapped_tcp`); the UDP-blocked host dials it. Direct over TCP on both sides, ping
/// and a checksummed transfer.
#[test]
fn udp_blocked_reaches_a_port_mapped_host_over_tcp() {
    lab::needs_root!();
    let mut lab = Lab::start("udpb-pmap");
    let (_sa, mut ha) = lab.add_site(SiteKind::UdpBlocked, 1, "a");
    let (sb, mut hb) = lab.add_site(SiteKind::PortRestrictedUpnp, 1, "b");
    let router = sb.router_ns.clone().expect("a router");
    let (a, b) = (&mut ha[0], &mut hb[0]);
    start_all(&mut [&mut *a, &mut *b]);
    let t0 = Instant::now();
    while !lab::upnp::forwards_tcp(&router, lab::WG_PORT) {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the router forwards the TCP listen port: {}",
            lab::upnp::redirects(&router)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    direct_over_tcp(&lab, a, b, "udp_blocked-port_restricted_upnp", 0x7463_7001);
    // B's router forwarded A's connection to B's listener.
    assert!(tcp_streams(b, "accepted") >= 1, "B accepted no TCP stream");
}

/// UDP-blocked ↔ a host behind a port-restricted NAT without port mapping (issue 18): nothing
/// listens at a public address, so both dial at once from their listen ports (the UDP-blocked
/// host asks the other through the relay): a TCP simultaneous open through both NATs.
#[test]
fn udp_blocked_reaches_a_natted_host_by_tcp_simultaneous_open() {
    lab::needs_root!();
    let mut lab = Lab::start("udpb-simo");
    let (_sa, mut ha) = lab.add_site(SiteKind::UdpBlocked, 1, "a");
    let (_sb, mut hb) = lab.add_site(SiteKind::PortRestricted, 1, "b");
    let (a, b) = (&mut ha[0], &mut hb[0]);
    start_all(&mut [&mut *a, &mut *b]);
    direct_over_tcp(&lab, a, b, "udp_blocked-port_restricted", 0x7463_7002);
    // Neither side's listener took the stream: both connect() calls met.
    for h in [&*a, &*b] {
        assert!(
            tcp_streams(h, "connected") >= 1,
            "{} connected no stream",
            h.name
        );
        assert_eq!(
            tcp_streams(h, "accepted"),
            0,
            "{} accepted a stream",
            h.name
        );
    }
}

/// How many TCP paths `h`'s daemon logged as `how` ("connected" or "accepted").
fn tcp_streams(h: &Host, how: &str) -> usize {
    std::fs::read_to_string(&h.log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&format!("direct path over TCP: {how}")))
        .count()
}

/// `a` (UDP-blocked) and `b` join one network; both see the other on a direct path over
/// TCP; pings both ways and a checksummed 8 MB transfer go through.
fn direct_over_tcp(
    lab: &Lab,
    a: &mut Host,
    b: &mut Host,
    pair: &str,
    seed: u64,
) -> (std::net::Ipv4Addr, std::net::Ipv4Addr) {
    let ip_a = a.up(&lab.coordinator);
    let ip_b = b.up(&lab.coordinator);
    a.warren_ok(&["create", "hotel", "--password", "pw-hotel"]);
    b.warren_ok(&["join", "hotel", "--password", "pw-hotel"]);
    let t0 = Instant::now();
    first_reply_blocking(a, ip_b, t0);
    wait_path(a, b, &["direct"], Duration::from_secs(40));
    eprintln!(
        "[{pair}] both sides direct {:.1} s after the first ping",
        t0.elapsed().as_secs_f64()
    );
    for (me, other) in [(&*a, &*b), (&*b, &*a)] {
        let st = me.status();
        let p = Host::peer_in(&st, &other.name)
            .expect("peer listed")
            .clone();
        assert_eq!(
            p["transport"], "tcp",
            "{}'s view of {}: {p}",
            me.name, other.name
        );
    }
    for (from, to) in [(&*a, ip_b), (&*b, ip_a)] {
        let r = ping(&from.ns, to, 3, 1);
        assert_eq!(
            r.received, 3,
            "{} -> {to} over TCP:\n{}",
            from.name, r.output
        );
    }
    let speed = lab::transfer_intact(
        &a.ns,
        &b.ns,
        SocketAddrV4::new(ip_b, 5201),
        8_000_000,
        seed,
        &format!("{pair} over the TCP path"),
    );
    eprintln!("[{pair}] TCP through the overlay over TCP: {speed:.1} MB/s");
    (ip_a, ip_b)
}
