//! Two coordinators on one PostgreSQL (issue 22, "Beyond one machine"), in the NAT lab, with
//! a real PostgreSQL the test starts (`initdb` in a temporary directory, run as `nobody`: see
//! `lab/src/pg.rs`). Needs root and the workspace built:
//!
//! ```sh
//! cargo build -p warrend -p warren-coordinator -p warren-cli
//! cargo test -p warren-lab --test cluster -- --nocapture
//! ```
//!
//! Coordinators C1 (203.0.113.1) and C2 (203.0.113.2) share the database and the key. Four
//! hosts, each behind a NAT of its own (two full-cone, two port-restricted), know both
//! addresses; one of each kind names C1 first and the other C2, so each coordinator serves
//! one of each. A network is created through C1 and joined through C2 (by password and by an
//! invite that names both coordinators); every host pings every other. C1 is killed: its
//! hosts are on C2 within seconds (printed), a ping between the two sides goes on through the
//! kill, and a host that joins afterwards reaches everyone. C1 is started again: a host that
//! connects to it reaches the five on C2.
//!
//! Each coordinator's built-in relay knows only its own sessions, so every pair here is one
//! that finds a direct path (as in `nat_lab`'s matrix): a pair split across coordinators that
//! needs the relay has no path.

use warren_lab as lab;
use warren_lab::pg as test_pg;

use lab::matrix::ping;
use lab::node::{start_all, wait_status, Coordinator, Host};
use lab::site::SiteKind;
use lab::Lab;
use serde_json::Value;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const C2_IP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
const NETWORK: &str = "cluster";
const PASSWORD: &str = "pw-cluster";

/// The second coordinator, which prints its log if the test fails (the lab prints the first's).
struct Second(Coordinator);

impl Drop for Second {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.dump_log();
        }
        self.0.stop();
    }
}

/// `warren up` with every address in `addresses` (the first tried first); returns the
/// host's overlay address.
fn up(h: &Host, addresses: &[String], key: &str) -> Ipv4Addr {
    let mut args = vec!["up".to_string()];
    for a in addresses {
        args.extend(["--coordinator".to_string(), a.clone()]);
    }
    args.extend(["--coordinator-key".into(), key.into(), "--name".into()]);
    args.push(h.name.clone());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = h.warren_ok(&args);
    assert!(out.contains("connected to"), "{}: {out}", h.name);
    out.rsplit_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .and_then(|(ip, _)| ip.parse().ok())
        .unwrap_or_else(|| panic!("{}: no address in {out:?}", h.name))
}

/// The coordinator address `st`'s live connection goes to.
fn connected_to(st: &Value) -> Option<String> {
    let c = &st["coordinator"];
    (c["connected"] == true)
        .then(|| c["connected_to"].as_str().map(str::to_string))
        .flatten()
}

/// Waits until `from` gets a reply from `to`, or panics after `limit`.
fn pings(from: &Host, to: Ipv4Addr, limit: Duration) {
    let t0 = Instant::now();
    while ping(&from.ns, to, 3, 1).received == 0 {
        assert!(
            t0.elapsed() < limit,
            "{} got no ping reply from {to} within {limit:?}; status: {:#}",
            from.name,
            from.status()
        );
    }
}

fn everyone_pings_everyone(hosts: &[(&Host, Ipv4Addr)], limit: Duration) {
    for (from, _) in hosts {
        for (to, ip) in hosts {
            if from.name != to.name {
                pings(from, *ip, limit);
            }
        }
    }
}

/// Every other host of `hosts` is an online peer of `h`.
fn sees_all_online(h: &Host, others: &[&Host]) {
    wait_status(
        h,
        Duration::from_secs(20),
        "every other member online",
        |st| {
            others
                .iter()
                .all(|o| Host::peer_in(st, &o.name).is_some_and(|p| p["online"] == true))
        },
    );
}

#[test]
fn two_coordinators_on_one_database_and_one_dies() {
    lab::needs_root!();
    let pg = test_pg::PgServer::start();
    let url = pg.url(&pg.new_database());
    let database = vec!["--database".to_string(), url];
    let mut lab = Lab::start_with("cluster", database.clone());
    let c2 = Second(lab.add_coordinator("coord2", C2_IP, database));
    let key = lab.coordinator.key.clone();
    let (c1_addr, c2_addr) = (lab.coordinator.address(), c2.0.address());
    let c1_first = vec![c1_addr.clone(), c2_addr.clone()];
    let c2_first = vec![c2_addr.clone(), c1_addr.clone()];

    // One host per site: two behind one NAT compete for its port, and the second then often
    // needs the relay, which does not cross coordinators (see the module doc).
    let mut site = |kind, label| {
        let (site, mut hosts) = lab.add_site(kind, 1, label);
        (site, hosts.pop().expect("one host"))
    };
    let (_sa1, mut a1) = site(SiteKind::FullCone, "a1");
    let (_sb1, mut b1) = site(SiteKind::PortRestricted, "b1");
    let (_sa2, mut a2) = site(SiteKind::FullCone, "a2");
    let (_sb2, mut b2) = site(SiteKind::PortRestricted, "b2");
    let (_sl, mut late) = site(SiteKind::Public, "late");
    let (_sk, mut back) = site(SiteKind::Public, "back");
    start_all(&mut [&mut a1, &mut a2, &mut b1, &mut b2, &mut late, &mut back]);

    // Each coordinator gets the hosts that name it first.
    let ip_a1 = up(&a1, &c1_first, &key);
    let ip_b1 = up(&b1, &c1_first, &key);
    let ip_a2 = up(&a2, &c2_first, &key);
    let ip_b2 = up(&b2, &c2_first, &key);
    for (h, want) in [
        (&a1, &c1_addr),
        (&b1, &c1_addr),
        (&a2, &c2_addr),
        (&b2, &c2_addr),
    ] {
        let st = h.status();
        assert_eq!(connected_to(&st).as_ref(), Some(want), "{}: {st:#}", h.name);
        assert_eq!(
            st["coordinator"]["alternates"].as_array().map(Vec::len),
            Some(1),
            "{}: the other address is remembered: {st:#}",
            h.name
        );
    }

    // Created through C1; joined through C2 by password and by an invite made at C1, and
    // through C1 by password.
    a1.warren_ok(&["create", NETWORK, "--password", PASSWORD]);
    let invite = a1.warren_ok(&["invite", NETWORK]).trim().to_string();
    let decoded = warren_proto::invite::Invite::decode(&invite).expect("an invite code");
    assert_eq!(decoded.coordinator, c1_addr, "the invite names C1 first");
    assert_eq!(decoded.alternates, vec![c2_addr.clone()], "and C2 after it");
    let out = b2.warren_ok(&["join", &invite]);
    assert!(out.contains("joined network"), "{out}");
    a2.warren_ok(&["join", NETWORK, "--password", PASSWORD]);
    b1.warren_ok(&["join", NETWORK, "--password", PASSWORD]);

    let four = [&a1, &a2, &b1, &b2];
    for h in four {
        let others: Vec<&Host> = four.into_iter().filter(|o| o.name != h.name).collect();
        sees_all_online(h, &others);
    }
    let members = [(&a1, ip_a1), (&a2, ip_a2), (&b1, ip_b1), (&b2, ip_b2)];
    let t0 = Instant::now();
    everyone_pings_everyone(&members, Duration::from_secs(30));
    eprintln!(
        "[cluster] 4 hosts on 2 coordinators: every pair pinged within {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    // C1 dies without a word; its hosts move to C2. Meanwhile a host of C1 pings one of C2
    // every 0.2 s for 10 s: their direct path never needed a coordinator.
    let across = {
        let ns = a1.ns.clone();
        std::thread::spawn(move || ping(&ns, ip_b2, 50, 1))
    };
    std::thread::sleep(Duration::from_secs(1));
    lab.coordinator.kill();
    let killed = Instant::now();
    let mut moved = Vec::new();
    for h in [&a1, &b1] {
        wait_status(h, Duration::from_secs(15), "connected to C2", |st| {
            connected_to(st).as_deref() == Some(c2_addr.as_str())
        });
        moved.push((h.name.clone(), killed.elapsed()));
    }
    for (name, after) in &moved {
        eprintln!(
            "[cluster] {name} on C2 {:.1} s after C1 was killed",
            after.as_secs_f64()
        );
        assert!(
            *after < Duration::from_secs(10),
            "{name} took {after:?} to move to C2"
        );
    }
    let across = across.join().expect("pinger");
    eprintln!(
        "[cluster] {} -> {}: {}/{} pings answered across the kill",
        a1.name, b2.name, across.received, across.transmitted
    );
    assert!(
        across.transmitted == 50 && across.received >= 45,
        "the ping across the kill: {}",
        across.output
    );
    everyone_pings_everyone(&members, Duration::from_secs(15));
    for h in four {
        let others: Vec<&Host> = four.into_iter().filter(|o| o.name != h.name).collect();
        sees_all_online(h, &others);
    }

    // A change after the kill reaches everyone: a host that names the dead C1 first joins.
    let ip_late = up(&late, &c1_first, &key);
    assert_eq!(
        connected_to(&late.status()).as_deref(),
        Some(c2_addr.as_str())
    );
    late.warren_ok(&["join", NETWORK, "--password", PASSWORD]);
    sees_all_online(&late, &four);
    for (h, ip) in members {
        sees_all_online(h, &[&late]);
        pings(h, ip_late, Duration::from_secs(20));
        pings(&late, ip, Duration::from_secs(20));
    }
    eprintln!("[cluster] a host joining after the kill reaches all four");

    // C1 comes back on the same database: a host connected to it reaches everyone on C2, and
    // they it (C1 learns who is online at C2 when it first hears from it).
    lab.coordinator.start();
    let ip_back = up(&back, &c1_first, &key);
    assert_eq!(
        connected_to(&back.status()).as_deref(),
        Some(c1_addr.as_str())
    );
    back.warren_ok(&["join", NETWORK, "--password", PASSWORD]);
    let five = [&a1, &a2, &b1, &b2, &late];
    sees_all_online(&back, &five);
    for h in five {
        sees_all_online(h, &[&back]);
        let ip = Host::overlay_in(&h.status()).expect("an overlay address");
        pings(h, ip_back, Duration::from_secs(20));
        pings(&back, ip, Duration::from_secs(20));
    }
    eprintln!("[cluster] C1 restarted: a host on it reaches the five on C2");
}
