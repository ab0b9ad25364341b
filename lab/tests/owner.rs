//! The network owner's controls with real daemons, the real coordinator and the `warren` CLI
//! (issue 15): lock, a join that waits, `warren requests`, approve (the host is in at once and
//! reaches the owner), invites until revoked, list and revoke, what non-owners are told, rename,
//! a new password, remove, remove and ban (the member reaches no one within seconds and cannot
//! come back), delete. Runs in the NAT lab's namespaces (see `lab/`), as root, after
//! `cargo build --workspace`:
//!
//! ```sh
//! cargo build --workspace && cargo test -p warren-lab --test owner -- --nocapture
//! ```

use warren_lab as lab;

use lab::matrix::{first_reply_blocking, ping};
use lab::node::{networks, start_all, wait_status, Host};
use lab::site::SiteKind;
use lab::Lab;
use serde_json::Value;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn overlay(h: &Host) -> Ipv4Addr {
    Host::overlay_in(&h.status()).expect("an overlay address")
}

/// Waits until `from` answers ICMP to `to` through the tunnel.
fn reaches(from: &Host, to: &Host) {
    first_reply_blocking(from, overlay(to), Instant::now());
}

#[test]
fn owner_locks_approves_removes_bans_renames_and_deletes() {
    lab::needs_root!();
    let t_start = Instant::now();
    let mut lab = Lab::start("owner");
    let (_sa, mut ha) = lab.add_site(SiteKind::Public, 1, "a");
    let (_sb, mut hb) = lab.add_site(SiteKind::Public, 1, "b");
    let (_sc, mut hc) = lab.add_site(SiteKind::Public, 1, "c");
    let (_sd, mut hd) = lab.add_site(SiteKind::Public, 1, "d");
    let (a, b, c, d) = (&mut ha[0], &mut hb[0], &mut hc[0], &mut hd[0]);
    start_all(&mut [&mut *a, &mut *b, &mut *c, &mut *d]);
    for h in [&*a, &*b, &*c, &*d] {
        h.up(&lab.coordinator);
    }
    let (an, bn, cn, dn) = (
        a.name.clone(),
        b.name.clone(),
        c.name.clone(),
        d.name.clone(),
    );

    // The owner creates and locks; status says so.
    a.warren_ok(&["create", "lan", "--password", "pw1"]);
    let out = a.warren_ok(&["lock", "lan"]);
    assert!(out.contains("wait for your approval"), "{out}");
    let st = a.status();
    assert_eq!(st["coordinator"]["owned"], serde_json::json!(["lan"]));
    assert_eq!(st["coordinator"]["locked"], serde_json::json!(["lan"]));
    assert!(a
        .warren_ok(&["status"])
        .contains("network lan — 0 peers, 0 online (yours, locked)"));

    // B's join waits, in plain words; the owner hears of it at once.
    let out = b.warren_ok(&["join", "lan", "--password", "pw1"]);
    assert!(out.contains("waits for its owner's approval"), "{out}");
    let st = b.status();
    assert_eq!(st["coordinator"]["waiting"], serde_json::json!(["lan"]));
    assert!(networks(&st).is_empty(), "{st}");
    assert!(b
        .warren_ok(&["status"])
        .contains("waiting for the owner of lan"));
    let t0 = Instant::now();
    wait_status(a, Duration::from_secs(3), "the request", |st| {
        st["coordinator"]["requests"][0]["name"] == bn.as_str()
    });
    eprintln!("owner told of the request after {:?}", t0.elapsed());
    let list = a.warren_ok(&["requests"]);
    assert!(
        list.contains(&bn) && list.contains("warren approve"),
        "{list}"
    );
    assert_eq!(
        json(&a.warren_ok(&["requests", "--json"]))[0]["network"],
        "lan"
    );
    assert!(a
        .warren_ok(&["status"])
        .contains(&format!("{bn} asks to join lan")));
    // Only the owner answers, and a non-owner is told who can.
    b.warren_err(
        &["unlock", "lan"],
        &[&format!(
            "only the owner of network lan ({an}) can unlock it"
        )],
    );

    // Approve: B is in without doing anything again, and reaches the owner.
    let t0 = Instant::now();
    let out = a.warren_ok(&["approve", "lan", &bn]);
    assert!(out.contains("approved"), "{out}");
    wait_status(b, Duration::from_secs(3), "membership", |st| {
        networks(st) == ["lan"] && st["coordinator"]["waiting"] == serde_json::json!([])
    });
    eprintln!("approved host in after {:?}", t0.elapsed());
    assert!(json(&a.warren_ok(&["requests", "--json"]))
        .as_array()
        .unwrap()
        .is_empty());
    reaches(b, a);
    b.warren_ok(&["ping", &an, "-c", "1"]);

    // Deny: D's request goes away on both sides; D is not let in.
    d.warren_ok(&["join", "lan", "--password", "pw1"]);
    wait_status(a, Duration::from_secs(3), "D's request", |st| {
        st["coordinator"]["requests"][0]["name"] == dn.as_str()
    });
    a.warren_err(
        &["deny", "lan", "nobody"],
        &["no host called nobody waits to join", &dn],
    );
    let out = a.warren_ok(&["deny", "lan", &dn.to_uppercase()]);
    assert!(out.contains("turned down"), "{out}");
    wait_status(d, Duration::from_secs(3), "the answer", |st| {
        st["coordinator"]["waiting"] == serde_json::json!([]) && networks(st).is_empty()
    });
    assert!(json(&a.warren_ok(&["requests", "--json"]))
        .as_array()
        .unwrap()
        .is_empty());

    // Invites: until revoked, listed, revoked; C joins with one once the network is open.
    a.warren_ok(&["unlock", "lan"]);
    let forever = json(&a.warren_ok(&["invite", "lan", "--expires", "never", "--json"]));
    assert!(forever["expires"].is_null(), "{forever}");
    let forever = forever["code"].as_str().unwrap().to_string();
    let hour = a.warren_ok(&["invite", "lan", "--expires", "1h"]);
    let hour = hour.trim().to_string();
    let list = json(&a.warren_ok(&["invite", "lan", "--list", "--json"]));
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    // Made in the same second: listed by id then, so find each by its expiry.
    let timed: Vec<_> = list.iter().filter(|i| i["expires"].is_u64()).collect();
    assert_eq!(timed.len(), 1, "{list:?}");
    assert!(a
        .warren_ok(&["invite", "lan", "--list"])
        .contains("never (until revoked)"));
    let id = timed[0]["id"].as_str().unwrap().to_string();
    let out = a.warren_ok(&["invite", "lan", "--revoke", &id[..6]]);
    assert!(out.contains("revoked"), "{out}");
    // (B tries it: joins are rate limited per address, 5 at once, and C needs its own later.)
    b.warren_err(&["join", &hour], &["not valid for network lan"]);
    let out = c.warren_ok(&["join", &forever]);
    assert!(out.contains("joined network lan"), "{out}");
    reaches(c, a);

    // Non-owners are told who can.
    b.warren_err(
        &["rename", "lan", "x"],
        &[&format!(
            "only the owner of network lan ({an}) can rename it"
        )],
    );
    b.warren_err(
        &["remove", "lan", &cn],
        &[&format!(
            "only the owner of network lan ({an}) can remove members"
        )],
    );

    // Rename: every member sees the new name at once.
    a.warren_ok(&["rename", "lan", "party"]);
    for h in [&*b, &*c] {
        wait_status(h, Duration::from_secs(3), "the new name", |st| {
            networks(st) == ["party"]
                && Host::peer_in(st, &an)
                    .is_some_and(|p| p["networks"] == serde_json::json!(["party"]))
        });
    }

    // A new password: members stay, the old one is refused, the new one works.
    a.warren_ok(&["password", "party", "--password", "pw2"]);
    a.warren_ok(&["remove", "party", &cn]);
    wait_status(c, Duration::from_secs(3), "removal", |st| {
        networks(st).is_empty()
    });
    assert_eq!(networks(&b.status()), ["party"]);
    c.warren_err(
        &["join", "party", "--password", "pw1"],
        &["wrong password for network party"],
    );
    c.warren_ok(&["join", "party", "--password", "pw2"]);
    reaches(c, b);

    // Remove and ban: within seconds C reaches no one, everyone dropped it, and it cannot
    // come back by password or by invite.
    let (ip_a, ip_b) = (overlay(a), overlay(b));
    reaches(c, a);
    let t0 = Instant::now();
    a.warren_ok(&["remove", "party", &cn, "--ban"]);
    let answered = t0.elapsed();
    wait_status(c, Duration::from_secs(5), "its peers gone", |st| {
        st["peers"].as_array().is_some_and(|p| p.is_empty())
    });
    let dropped = t0.elapsed();
    wait_status(a, Duration::from_secs(5), "the banned host gone", |st| {
        Host::peer_in(st, &cn).is_none()
    });
    eprintln!(
        "ban: `warren remove` answered after {answered:?}; the banned host had dropped its \
         peers {dropped:?} and the owner it {:?} after the command started",
        t0.elapsed()
    );
    let cut = loop {
        let (ra, rb) = (ping(&c.ns, ip_a, 1, 1), ping(&c.ns, ip_b, 1, 1));
        if ra.received == 0 && rb.received == 0 {
            break t0.elapsed();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{cn} still reaches the network 5 s after its ban"
        );
    };
    // Each probe that gets no reply waits 1 s: 2 s here means the very first ones failed.
    eprintln!("no reply to the banned host's probes to either member; done after {cut:?}");
    let st = c.status();
    assert!(
        networks(&st).is_empty() && st["peers"].as_array().unwrap().is_empty(),
        "{st}"
    );
    for h in [&*a, &*b] {
        wait_status(h, Duration::from_secs(2), "the banned host gone", |st| {
            Host::peer_in(st, &cn).is_none()
        });
    }
    c.warren_err(&["ping", &an, "-c", "1"], &["no peer called"]);
    // Nothing gets through from its side either, even sent straight at the old peers.
    assert_eq!(ping(&c.ns, ip_a, 2, 1).received, 0);
    c.warren_err(&["join", "party", "--password", "pw2"], &["banned"]);
    c.warren_err(&["join", &forever], &["banned"]);
    assert!(b.warren_ok(&["ping", &an, "-c", "1"]).contains("pong"));

    // Delete: every member drops the network and its peers.
    b.warren_err(&["delete", "party"], &["only the owner"]);
    a.warren_ok(&["delete", "party"]);
    for h in [&*a, &*b] {
        wait_status(h, Duration::from_secs(3), "the network gone", |st| {
            networks(st).is_empty() && st["peers"].as_array().is_some_and(|p| p.is_empty())
        });
    }
    let out = b.warren_ok(&["networks"]);
    assert!(!out.contains("party"), "{out}");
    eprintln!("owner test took {:?}", t_start.elapsed());
}
