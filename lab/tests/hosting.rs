//! Hosting a network from a PC at home (issue 15): `warren host` makes a host's own `warrend`
//! run the coordinator and relay, its router is asked to forward the ports (miniupnpd in the
//! lab router), and friends join with nothing but the invite text. Needs root and the
//! workspace built (`cargo build --workspace && cargo test -p warren-lab --test
//! hosting`).
//!
//! - `host_at_home_friends_join_by_invite`: a PC behind a port-restricted router with
//!   miniupnpd hosts; friends behind a full-cone and a symmetric NAT and one on the host's own
//!   LAN join with the same invite and reach each other and the host; the host's daemon
//!   restarts (the network comes back by itself); the host PC goes off (daemon and
//!   coordinator killed) and the friends keep talking; it comes back and everything resumes.
//! - `router_without_port_mapping`: the plain-words report, nothing changed on the router,
//!   and a friend on the same LAN still joins.
//!
//! The lab's own central coordinator runs but nobody here uses it.

use warren_lab as lab;

use lab::matrix::{peer_path, ping};
use lab::node::{start_all, wait_status, Host};
use lab::site::SiteKind;
use lab::Lab;
use serde_json::Value;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const NET: &str = "party";
/// The hosted coordinator's control port ([`warrend`'s default).
const HOST_PORT: u16 = 7443;

fn reach_state(st: &Value) -> String {
    st["hosting"]["reachability"]["state"]
        .as_str()
        .unwrap_or("-")
        .to_string()
}

fn overlay(h: &Host) -> Ipv4Addr {
    Host::overlay_in(&h.status()).expect("an overlay address")
}

fn online(st: &Value, name: &str) -> bool {
    Host::peer_in(st, name).is_some_and(|p| p["online"] == true)
}

/// Waits until every host of `hosts` lists every other one as an online peer.
fn wait_all_online(hosts: &[&Host], limit: Duration) {
    for h in hosts {
        let others: Vec<String> = hosts
            .iter()
            .filter(|o| o.name != h.name)
            .map(|o| o.name.clone())
            .collect();
        wait_status(h, limit, &format!("{others:?} online"), |st| {
            others.iter().all(|o| online(st, o))
        });
    }
}

/// Every host pings every other over the overlay; panics naming the pairs that failed.
fn ping_all(hosts: &[&Host], what: &str) {
    let ips: Vec<Ipv4Addr> = hosts.iter().map(|h| overlay(h)).collect();
    let mut failed = Vec::new();
    for (i, a) in hosts.iter().enumerate() {
        for (j, b) in hosts.iter().enumerate() {
            if i == j {
                continue;
            }
            let r = ping(&a.ns, ips[j], 3, 2);
            if r.received == 0 {
                failed.push(format!("{} -> {}: {}", a.name, b.name, r.output.trim()));
            }
        }
    }
    assert!(
        failed.is_empty(),
        "{what}: pings failed:\n{}",
        failed.join("\n")
    );
}

fn join(h: &Host, invite: &str) {
    let out = h.warren_ok(&["join", invite, "--name", &h.name]);
    assert!(out.contains(&format!("joined network {NET}")), "{out}");
}

/// The pid of the coordinator `h` hosts (its state dir is the host's `host/`), if it runs.
fn hosted_coordinator(h: &Host) -> Option<u32> {
    let pattern = format!(
        "warren-coordinator --state-dir {}/host",
        h.state_dir.display()
    );
    let out = std::process::Command::new("pgrep")
        .args(["-f", &pattern])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
}

fn hosted_coordinator_running(h: &Host) -> bool {
    hosted_coordinator(h).is_some()
}

fn paths(hosts: &[&Host]) -> String {
    let mut out = String::new();
    for a in hosts {
        let st = a.status();
        for b in hosts {
            if a.name < b.name {
                out += &format!("{} - {}: {}\n", a.name, b.name, peer_path(&st, &b.name));
            }
        }
    }
    out
}

/// `warren host NET` on `pc`; returns what it printed.
fn host(pc: &Host) -> String {
    let out = pc.warren_ok(&["host", NET]);
    eprintln!("{}: warren host {NET}:\n{out}", pc.name);
    assert!(
        out.contains(&format!("this PC now hosts network {NET}")),
        "{out}"
    );
    assert!(out.contains(&format!("warren invite {NET}")), "{out}");
    // A hosting PC relays for its friends unless told otherwise (issue 18).
    wait_status(pc, Duration::from_secs(5), "relaying for others", |st| {
        st["self"]["relay_for_others"] == true
    });
    out
}

#[test]
fn host_at_home_friends_join_by_invite() {
    lab::needs_root!();
    let mut lab = Lab::start("hosthome");
    let (home, mut home_hosts) = lab.add_site(SiteKind::PortRestrictedUpnp, 2, "home");
    let (_s2, mut f1) = lab.add_site(SiteKind::FullCone, 1, "ann");
    let (_s3, mut f2) = lab.add_site(SiteKind::Symmetric, 1, "bob");
    let (pc, rest) = home_hosts.split_at_mut(1);
    let (pc, neighbour) = (&mut pc[0], &mut rest[0]);
    let (f1, f2) = (&mut f1[0], &mut f2[0]);
    pc.name_in_config();
    start_all(&mut [&mut *pc, &mut *neighbour, &mut *f1, &mut *f2]);

    // Hosting: the router maps the coordinator's ports, and says so in plain words.
    let out = host(pc);
    let public = format!("{}:{HOST_PORT}", home.public_ip);
    assert!(
        out.contains(&format!("Reachable from the internet at {public}")),
        "{out}"
    );
    let st = pc.status();
    assert_eq!(reach_state(&st), "reachable", "{st:#}");
    assert_eq!(st["hosting"]["reachability"]["public"], public.as_str());
    assert_eq!(st["hosting"]["networks"][0], NET);
    assert_eq!(st["hosting"]["running"], true);
    assert_eq!(st["coordinator"]["connected"], true);
    let redirects = lab::upnp::redirects(home.router_ns.as_deref().unwrap());
    for port in HOST_PORT..HOST_PORT + 4 {
        assert!(
            redirects.contains(&format!("dport {port}")),
            "router forwards port {port}:\n{redirects}"
        );
    }

    // Friends behind other NATs and one on the host's own LAN: the same invite text for all.
    let invite = pc.warren_ok(&["invite", NET]).trim().to_string();
    let decoded = warren_proto::invite::Invite::decode(&invite).expect("an invite");
    assert_eq!(decoded.coordinator, public, "{decoded:?}");
    assert!(
        decoded
            .alternates
            .contains(&format!("{}:{HOST_PORT}", pc.ip)),
        "the LAN address is in the invite: {decoded:?}"
    );
    for f in [&*f1, &*f2, &*neighbour] {
        join(f, &invite);
    }
    // Rebuilt each time: the daemons are restarted in between (a mutable borrow).
    macro_rules! all {
        () => {
            [&*pc, &*neighbour, &*f1, &*f2]
        };
    }
    wait_all_online(&all!(), Duration::from_secs(20));
    ping_all(&all!(), "everyone hosted by a PC at home");
    eprintln!("paths:\n{}", paths(&all!()));
    // The friend next door reaches the coordinator at its LAN address (the router does not
    // loop the public one back); the others at the public one.
    let n = neighbour.status();
    assert_eq!(n["coordinator"]["connected"], true);

    // The host's daemon restarts: the network is back without anyone doing anything.
    pc.stop_daemon();
    assert!(
        !hosted_coordinator_running(pc),
        "the coordinator stops with warrend"
    );
    pc.start_daemon();
    pc.wait_api(Duration::from_secs(10));
    wait_status(pc, Duration::from_secs(20), "hosting again", |st| {
        st["hosting"]["running"] == true && st["coordinator"]["connected"] == true
    });
    wait_all_online(&all!(), Duration::from_secs(30));
    for f in [&*f1, &*f2, &*neighbour] {
        wait_status(
            f,
            Duration::from_secs(40),
            "the host's coordinator back",
            |st| st["coordinator"]["connected"] == true,
        );
    }
    ping_all(&all!(), "after the host's daemon restarted");

    // The coordinator dies under the daemon: it is started again, and friends reconnect.
    let old = hosted_coordinator(pc).expect("the hosted coordinator runs");
    // SAFETY: signalling a process by pid.
    unsafe { libc::kill(old as libc::pid_t, libc::SIGKILL) };
    let t0 = Instant::now();
    loop {
        match hosted_coordinator(pc) {
            Some(new) if new != old => break,
            _ => {}
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the hosted coordinator was not restarted after it died"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("hosted coordinator restarted after {:?}", t0.elapsed());
    for h in all!() {
        wait_status(
            h,
            Duration::from_secs(45),
            "reconnected to the restarted coordinator",
            |st| st["coordinator"]["connected"] == true,
        );
    }
    ping_all(&all!(), "after the hosted coordinator restarted");

    // The host PC goes off: daemon and coordinator killed at once.
    pc.kill_daemon();
    let t0 = Instant::now();
    while hosted_coordinator_running(pc) {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the hosted coordinator outlives a killed warrend"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    macro_rules! friends {
        () => {
            [&*neighbour, &*f1, &*f2]
        };
    }
    for f in friends!() {
        wait_status(f, Duration::from_secs(30), "the host offline", |st| {
            st["coordinator"]["connected"] == false
        });
    }
    ping_all(&friends!(), "friends while the host PC is off");
    eprintln!("paths with the host off:\n{}", paths(&friends!()));

    // Back on: everything resumes by itself.
    pc.start_daemon();
    pc.wait_api(Duration::from_secs(10));
    for f in friends!() {
        wait_status(
            f,
            Duration::from_secs(40),
            "the host's coordinator back",
            |st| st["coordinator"]["connected"] == true,
        );
    }
    wait_all_online(&all!(), Duration::from_secs(30));
    ping_all(&all!(), "after the host PC came back");

    // The owner deletes the network: the coordinator stops and the router forwards nothing.
    let out = pc.warren_ok(&["delete", NET]);
    assert!(out.contains("hosts nothing any more"), "{out}");
    let t0 = Instant::now();
    while hosted_coordinator_running(pc) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "coordinator still runs"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let st = pc.status();
    assert!(st["hosting"].is_null(), "{st:#}");
    assert!(st["coordinator"].is_null(), "{st:#}");
    let redirects = lab::upnp::redirects(home.router_ns.as_deref().unwrap());
    for port in HOST_PORT..HOST_PORT + 4 {
        assert!(
            !redirects.contains(&format!("dport {port}")),
            "the router still forwards port {port}:\n{redirects}"
        );
    }
    for f in friends!() {
        wait_status(f, Duration::from_secs(10), "the network gone", |st| {
            !Host::peer_in(st, &pc.name).is_some_and(|p| p["online"] == true)
                || st["coordinator"]["networks"] == serde_json::json!([])
        });
    }
}

#[test]
fn router_without_port_mapping() {
    lab::needs_root!();
    let mut lab = Lab::start("hostnomap");
    let (site, mut hosts) = lab.add_site(SiteKind::PortRestricted, 2, "flat");
    let (pc, rest) = hosts.split_at_mut(1);
    let (pc, neighbour) = (&mut pc[0], &mut rest[0]);
    pc.name_in_config();
    start_all(&mut [&mut *pc, &mut *neighbour]);
    let router = site.router_ns.clone().unwrap();
    let ruleset = || {
        lab::cmd::run_ok(
            "ip",
            &[
                "netns",
                "exec",
                &router,
                lab::nft_bin(),
                "-s",
                "list",
                "ruleset",
            ],
        )
        .stdout
    };
    let before = ruleset();

    let out = host(pc);
    for needle in [
        "Friends on the internet cannot reach this PC yet",
        "did not accept a port mapping",
        "Turn on UPnP in your router's settings",
        &format!(
            "forward UDP ports {HOST_PORT}-{} and TCP port {HOST_PORT} to {}",
            HOST_PORT + 3,
            pc.ip
        ),
        "Friends on your own network can join now",
    ] {
        assert!(out.contains(needle), "{needle:?} in:\n{out}");
    }
    let st = pc.status();
    assert_eq!(reach_state(&st), "lan_only", "{st:#}");
    assert!(st["hosting"]["reachability"]["public"].is_null());
    let human = pc.warren_ok(&["status"]);
    assert!(
        human.contains(&format!("hosting {NET} on this PC")) && human.contains("Turn on UPnP"),
        "{human}"
    );
    assert_eq!(ruleset(), before, "nothing was changed on the router");

    // Friends on the same LAN can join at once: the invite carries the LAN address only.
    let invite = pc.warren_ok(&["invite", NET]).trim().to_string();
    let decoded = warren_proto::invite::Invite::decode(&invite).unwrap();
    assert_eq!(decoded.coordinator, format!("{}:{HOST_PORT}", pc.ip));
    join(neighbour, &invite);
    let all = [&*pc, &*neighbour];
    wait_all_online(&all, Duration::from_secs(20));
    ping_all(&all, "host and neighbour");

    // A second hosted network, deleted again: the coordinator keeps running for the first.
    let out = pc.warren_ok(&["host", "second"]);
    assert!(out.contains("this PC now hosts network second"), "{out}");
    assert_eq!(
        pc.status()["hosting"]["networks"],
        serde_json::json!([NET, "second"])
    );
    let out = pc.warren_ok(&["delete", "second"]);
    assert!(!out.contains("hosts nothing"), "{out}");
    let st = pc.status();
    assert_eq!(st["hosting"]["networks"], serde_json::json!([NET]));
    assert_eq!(st["hosting"]["running"], true);
    assert!(hosted_coordinator_running(pc));
    ping_all(&all, "host and neighbour after the second network went");
}

/// Another host on the LAN already holds the coordinator's port numbers on the router, so the
/// router forwards other public ports to the PC that hosts: friends dial those, and the hosted
/// coordinator tells them the public STUN and relay ports (without that, their STUN requests
/// would go to the other host and they would never learn their public address).
#[test]
fn public_ports_differ_from_local_ones() {
    lab::needs_root!();
    let mut lab = Lab::start("hostports");
    let (home, mut home_hosts) = lab.add_site(SiteKind::PortRestrictedUpnp, 2, "home");
    let (friend_site, mut f1) = lab.add_site(SiteKind::FullCone, 1, "cat");
    let (pc, rest) = home_hosts.split_at_mut(1);
    let (pc, other) = (&mut pc[0], &rest[0]);
    let f1 = &mut f1[0];
    let other_ip = other.ip.to_string();
    for (port, proto) in [
        (HOST_PORT, "UDP"),
        (HOST_PORT, "TCP"),
        (HOST_PORT + 1, "UDP"),
        (HOST_PORT + 2, "UDP"),
        (HOST_PORT + 3, "UDP"),
    ] {
        let p = port.to_string();
        lab::cmd::run_ok(
            "ip",
            &[
                "netns", "exec", &other.ns, "upnpc", "-a", &other_ip, &p, &p, proto, "3600",
            ],
        );
    }
    pc.name_in_config();
    start_all(&mut [&mut *pc, &mut *f1]);

    let out = host(pc);
    let st = pc.status();
    assert_eq!(reach_state(&st), "reachable", "{out}\n{st:#}");
    let public: std::net::SocketAddr = st["hosting"]["reachability"]["public"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(public.ip(), std::net::IpAddr::V4(home.public_ip));
    assert_ne!(
        public.port(),
        HOST_PORT,
        "the router gave other ports: {st:#}"
    );
    let invite = pc.warren_ok(&["invite", NET]).trim().to_string();
    let decoded = warren_proto::invite::Invite::decode(&invite).unwrap();
    assert_eq!(decoded.coordinator, public.to_string());

    // The friend was in a network on another coordinator: it stays there too.
    f1.up(&lab.coordinator);
    f1.warren_ok(&["create", "elsewhere", "--password", "pw"]);
    let out = f1.warren_ok(&["join", &invite, "--name", &f1.name]);
    assert!(out.contains(&format!("joined network {NET}")), "{out}");
    wait_status(
        f1,
        Duration::from_secs(20),
        "in both coordinators' networks",
        |st| {
            let coords = st["coordinators"].as_array().cloned().unwrap_or_default();
            coords.len() == 2
                && coords.iter().all(|c| c["connected"] == true)
                && coords
                    .iter()
                    .any(|c| c["networks"] == serde_json::json!(["elsewhere"]))
                && coords
                    .iter()
                    .any(|c| c["networks"] == serde_json::json!([NET]))
        },
    );
    wait_all_online(&[&*pc, &*f1], Duration::from_secs(20));
    // STUN through the public STUN ports worked: the friend knows its public address.
    wait_status(f1, Duration::from_secs(15), "its public address", |st| {
        st["self"]["reflexive"]
            .as_str()
            .is_some_and(|r| r.starts_with(&format!("{}:", friend_site.public_ip)))
    });
    ping_all(&[&*pc, &*f1], "friend through other public ports");
}
