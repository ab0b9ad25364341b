//! Peer relays (issue 18) in the NAT lab: a member with a public address relays for the others
//! in its networks (`warren relay on`), still end-to-end WireGuard. Needs root and the
//! workspace built first (`cargo build --workspace`).
//!
//! - `a_peer_relay_carries_a_symmetric_pair`: the coordinator runs no relay; two hosts behind
//!   symmetric NATs (no direct path is possible) reach each other through a friend's PC.
//! - `traffic_moves_to_another_relay_when_one_dies`: two friends relay; the one in use is
//!   killed under a TCP transfer and a ping every 100 ms: the longest gap stays under 2 s and
//!   the transfer arrives intact.

use warren_lab as lab;

use lab::matrix::{first_reply_blocking, ping};
use lab::node::{start_all, wait_path, wait_status, Host};
use lab::site::SiteKind;
use lab::{Lab, WG_PORT};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::Command;
use std::time::{Duration, Instant};

/// Hosts up on the lab's coordinator (which runs no relay), all in network `net`; `relays`
/// switch relaying for others on.
fn form(lab: &Lab, hosts: &mut [&mut Host], relays: &[usize], net: &str) -> Vec<Ipv4Addr> {
    start_all(hosts);
    let ips: Vec<Ipv4Addr> = hosts.iter_mut().map(|h| h.up(&lab.coordinator)).collect();
    let pw = format!("pw-{net}");
    hosts[0].warren_ok(&["create", net, "--password", &pw]);
    for h in hosts[1..].iter() {
        h.warren_ok(&["join", net, "--password", &pw]);
    }
    for &i in relays {
        let said = hosts[i].warren_ok(&["relay", "on"]);
        assert!(said.contains("relays for friends"), "{said}");
        wait_status(hosts[i], Duration::from_secs(5), "relaying", |st| {
            st["self"]["relay_for_others"] == true
        });
    }
    ips
}

/// The relay `a` sends to `b` through, as its status shows it.
fn relay_of(a: &Host, b: &Host) -> Option<String> {
    let st = a.status();
    Host::peer_in(&st, &b.name)?["relay"]
        .as_str()
        .map(String::from)
}

fn relay_addr(ip: Ipv4Addr) -> String {
    format!("{ip}:{WG_PORT}")
}

#[test]
fn a_peer_relay_carries_a_symmetric_pair() {
    lab::needs_root!();
    let mut lab = Lab::start_with("prelay", vec!["--relay-port".into(), "0".into()]);
    let (_sa, mut ha) = lab.add_site(SiteKind::Symmetric, 1, "a");
    let (_sb, mut hb) = lab.add_site(SiteKind::Symmetric, 1, "b");
    let (sr, mut hr) = lab.add_site(SiteKind::Public, 1, "r");
    let (a, b, r) = (&mut ha[0], &mut hb[0], &mut hr[0]);
    let ips = form(&lab, &mut [&mut *a, &mut *b, &mut *r], &[2], "friends");
    let (ip_a, ip_b) = (ips[0], ips[1]);
    let t0 = Instant::now();
    let first = first_reply_blocking(a, ip_b, t0);
    eprintln!("[prelay] first reply through the peer relay after {first:?}");
    wait_path(a, b, &["relay"], Duration::from_secs(10));
    let via = relay_addr(sr.public_ip);
    assert_eq!(relay_of(a, b).as_deref(), Some(via.as_str()));
    assert_eq!(relay_of(b, a).as_deref(), Some(via.as_str()));
    for (from, to) in [(&*a, ip_b), (&*b, ip_a)] {
        let p = ping(&from.ns, to, 5, 1);
        assert_eq!(p.received, 5, "{} -> {to}:\n{}", from.name, p.output);
    }
    let speed = lab::transfer_intact(
        &a.ns,
        &b.ns,
        SocketAddrV4::new(ip_b, 5301),
        8_000_000,
        0x7072_6c79,
        "through the peer relay",
    );
    eprintln!("[prelay] TCP through the peer relay: {speed:.1} MB/s");
    let relayed = r.status()["self"]["relayed_bytes"].as_u64().unwrap();
    assert!(
        relayed >= 8_000_000,
        "the friend's PC counts what it relayed: {relayed}"
    );
    // Switched off, it relays nothing more: the pair has no path left.
    r.warren_ok(&["relay", "off"]);
    let stopped = Instant::now();
    wait_status(r, Duration::from_secs(5), "not relaying", |st| {
        st["self"]["relay_for_others"] == false
    });
    std::thread::sleep(Duration::from_secs(1).saturating_sub(stopped.elapsed()));
    let p = ping(&a.ns, ip_b, 3, 1);
    assert_eq!(p.received, 0, "relayed after `relay off`:\n{}", p.output);
}

/// Pings `to` every 100 ms for `secs`; the longest run of lost replies, in seconds.
fn ping_gaps(ns: &str, to: Ipv4Addr, secs: u32) -> std::thread::JoinHandle<(f64, String)> {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        let count = (secs * 10).to_string();
        let out = Command::new("ip")
            .args(["netns", "exec", &ns, "ping", "-n", "-i", "0.1", "-W", "1"])
            .args(["-c", &count, &to.to_string()])
            .output()
            .expect("run ping");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let mut seqs: Vec<u32> = text
            .lines()
            .filter_map(|l| l.split("icmp_seq=").nth(1))
            .filter_map(|s| s.split_whitespace().next()?.parse().ok())
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        let mut longest = 0u32;
        let mut last = 0u32;
        for s in &seqs {
            longest = longest.max(s.saturating_sub(last + 1));
            last = *s;
        }
        (f64::from(longest) * 0.1, text)
    })
}

#[test]
fn traffic_moves_to_another_relay_when_one_dies() {
    lab::needs_root!();
    let mut lab = Lab::start_with("prfail", vec!["--relay-port".into(), "0".into()]);
    let (_sa, mut ha) = lab.add_site(SiteKind::Symmetric, 1, "a");
    let (_sb, mut hb) = lab.add_site(SiteKind::Symmetric, 1, "b");
    let (s1, mut h1) = lab.add_site(SiteKind::Public, 1, "r1");
    let (s2, mut h2) = lab.add_site(SiteKind::Public, 1, "r2");
    let (a, b, r1, r2) = (&mut ha[0], &mut hb[0], &mut h1[0], &mut h2[0]);
    let ips = form(
        &lab,
        &mut [&mut *a, &mut *b, &mut *r1, &mut *r2],
        &[2, 3],
        "failover",
    );
    let ip_b = ips[1];
    first_reply_blocking(a, ip_b, Instant::now());
    wait_path(a, b, &["relay"], Duration::from_secs(10));
    let (via1, via2) = (relay_addr(s1.public_ip), relay_addr(s2.public_ip));
    let used = relay_of(a, b).expect("a relay in use");
    assert!(used == via1 || used == via2, "{used}");
    // A transfer of ~12 s and pings every 100 ms, then the relay in use dies after 4 s.
    let xfer = lab::traffic::TcpTransfer::start(
        &a.ns,
        &b.ns,
        SocketAddrV4::new(ip_b, 5302),
        24_000_000,
        Some(2_000_000.0),
        0x6661_696c,
    );
    let pings = ping_gaps(&a.ns, ip_b, 10);
    std::thread::sleep(Duration::from_secs(4));
    let (dead, other, survivor) = if used == via1 {
        (&mut *r1, via2.clone(), &*r2)
    } else {
        (&mut *r2, via1.clone(), &*r1)
    };
    dead.kill_daemon();
    eprintln!("[prfail] killed the relay at {used}");
    let (gap, text) = pings.join().expect("pinger");
    eprintln!("[prfail] longest gap in replies: {gap:.1} s");
    assert!(gap < 2.0, "traffic stopped for {gap:.1} s:\n{text}");
    assert_eq!(relay_of(a, b).as_deref(), Some(other.as_str()));
    let x = xfer.finish(Duration::from_secs(60));
    assert_eq!(
        (x.received.bytes, x.received.hash),
        (x.sent.bytes, x.sent.hash),
        "the transfer across the relay failover arrived damaged"
    );
    let relayed = survivor.status()["self"]["relayed_bytes"].as_u64().unwrap();
    assert!(relayed > 0, "the other friend carried the rest");
}
