use super::*;

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn offer(k: u8, name: &str, prefix: &str) -> Offered {
    Offered {
        peer: NodeKey([k; 32]),
        name: name.into(),
        prefix: net(prefix),
    }
}

#[test]
fn a_route_overlapping_our_own_lan_is_not_used_and_says_why() {
    let lans = [LanPrefix {
        iface: "eth0".into(),
        net: net("192.168.1.0/24"),
    }];
    let p = plan(
        &[
            offer(1, "nas", "192.168.1.0/24"),
            offer(1, "nas", "192.168.50.0/24"),
            offer(2, "pi", "192.168.0.0/16"),
        ],
        &lans,
    );
    assert_eq!(p.routed, vec![(NodeKey([1; 32]), net("192.168.50.0/24"))]);
    assert_eq!(p.skipped.len(), 2);
    for (_, _, why) in &p.skipped {
        assert_eq!(*why, Skip::OwnLan(lans[0].clone()));
        assert!(why.to_string().contains("192.168.1.0/24 on eth0"), "{why}");
    }
}

#[test]
fn of_two_overlapping_routes_every_host_takes_the_same_one() {
    let a = [
        offer(2, "pi", "10.0.0.0/16"),
        offer(1, "nas", "10.0.5.0/24"),
    ];
    let b = [a[1].clone(), a[0].clone()];
    let (pa, pb) = (plan(&a, &[]), plan(&b, &[]));
    assert_eq!(pa, pb);
    assert_eq!(pa.through(&NodeKey([1; 32])), vec![net("10.0.5.0/24")]);
    assert_eq!(pa.skipped[0].2, Skip::RoutedBy("nas".into()));
}

#[test]
fn only_members_of_a_network_that_approved_a_route_may_enter_it() {
    let approved = [("home".to_string(), net("192.168.1.0/24"))];
    let (a, b): (IpAddr, IpAddr) = ("100.64.0.2".parse().unwrap(), "100.64.0.3".parse().unwrap());
    let a6: IpAddr = "fd7a:115c:a1e0::2".parse().unwrap();
    let peers = [
        (vec![a, a6], vec!["home".to_string()]),
        (vec![b], vec!["games".to_string()]),
    ];
    let f = forwarding(&approved, &peers);
    assert_eq!(
        f,
        vec![Forward {
            prefix: net("192.168.1.0/24"),
            sources: vec![a]
        }]
    );
    let rules = nft_ruleset("warren_routes", "warren0", &f);
    assert!(rules
        .contains("iifname \"warren0\" ip saddr { 100.64.0.2 } ip daddr 192.168.1.0/24 accept"));
    assert!(rules.contains("iifname \"warren0\" counter drop"));
    assert!(rules.contains("oifname \"warren0\" ct state established,related accept"));
    assert!(rules.contains("iifname \"warren0\" ip daddr 192.168.1.0/24 masquerade"));
    assert!(!rules.contains("100.64.0.3"));
}
