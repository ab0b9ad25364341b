//! A host with IPv6 turned off (`net.ipv6.conf.all.disable_ipv6=1`, as many users set it)
//! starts Warren with an IPv4-only overlay, says so once, and reaches a peer that has IPv6
//! (issue 17). Needs root and the workspace built.

use warren_lab as lab;

use lab::matrix::{first_reply_blocking, ping};
use lab::node::start_all;
use lab::site::SiteKind;
use lab::Lab;
use std::time::Instant;

#[test]
fn a_host_without_ipv6_gets_an_ipv4_overlay() {
    lab::needs_root!();
    let mut lab = Lab::start("noipv6");
    let (_sa, mut ha) = lab.add_site(SiteKind::PortRestricted, 1, "a");
    let (_sb, mut hb) = lab.add_site(SiteKind::FullCone, 1, "b");
    let (a, b) = (&mut ha[0], &mut hb[0]);
    for key in ["all", "default"] {
        lab::cmd::run_ok(
            "ip",
            &[
                "netns",
                "exec",
                &a.ns,
                "sysctl",
                "-qw",
                &format!("net.ipv6.conf.{key}.disable_ipv6=1"),
            ],
        );
    }
    start_all(&mut [&mut *a, &mut *b]);
    let st = a.status();
    assert!(st["self"]["overlay_ip6"].is_null(), "{st:#}");
    let log = std::fs::read_to_string(&a.log).unwrap();
    assert_eq!(
        log.matches("IPv6 is off on this host").count(),
        1,
        "said once: {log}"
    );
    let ip_a = a.up(&lab.coordinator);
    let ip_b = b.up(&lab.coordinator);
    a.warren_ok(&["create", "v4only", "--password", "pw"]);
    b.warren_ok(&["join", "v4only", "--password", "pw"]);
    first_reply_blocking(a, ip_b, Instant::now());
    assert!(
        ping(&b.ns, ip_a, 3, 2).received > 0,
        "b reaches the IPv4-only host"
    );
    assert!(b.status()["self"]["overlay_ip6"].is_string());
}
