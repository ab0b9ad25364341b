use super::*;
use warren_proto::api::fixtures::{CoordinatorBuilder, GamesBuilder, PeerBuilder, StatusBuilder};
use warren_proto::api::StunAnswer;
use warren_proto::key::NodeKey;

fn peer(name: &str, ip: &str, networks: &[&str], online: bool, path: PathKind) -> PeerStatus {
    let p = PeerBuilder::new(name)
        .key(name.len() as u8)
        .ip(ip)
        .allowed(&format!("{ip}/32"))
        .online(online)
        .path(path)
        .traffic(1536, 3 << 20)
        .networks(networks);
    if online {
        p.endpoint("203.0.113.11:41820")
            .rtt_ms(12)
            .handshake_secs(5)
            .build()
    } else {
        p.build()
    }
}

/// Alice, seen at 203.0.113.10, connected over QUIC to a coordinator that has `networks`.
fn sample(peers: Vec<PeerStatus>, networks: &[&str]) -> Status {
    StatusBuilder::new()
        .reflexive("203.0.113.10:41820", NatKind::EndpointIndependent)
        .offload(64)
        .peers(peers)
        .coordinator(
            CoordinatorBuilder::new("203.0.113.1:7443")
                .networks(networks)
                .rtt_ms(3)
                .transport(ControlTransport::Quic),
        )
        .build()
}

#[test]
fn status_groups_peers_by_network_with_every_column() {
    let s = sample(
        vec![
            peer(
                "bob",
                "100.64.0.3",
                &["lan-party", "work"],
                true,
                PathKind::Direct,
            ),
            peer("carol", "100.64.0.4", &["work"], false, PathKind::None),
            peer("static1", "100.64.9.9", &[], true, PathKind::Lan),
        ],
        &["lan-party", "work", "empty-net"],
    );
    let text = status(&s);
    assert!(
        text.starts_with("alice 100.64.0.1 — Warren is up\n"),
        "{text}"
    );
    assert!(text.contains("coordinator 203.0.113.1:7443: connected over QUIC, RTT 3 ms"));
    assert!(text.contains("public address 203.0.113.10:41820 (endpoint-independent"));
    // Networks in name order, each with its count, then the static peers.
    let empty = text
        .find("network empty-net — 0 peers, 0 online")
        .expect(&text);
    let lan = text
        .find("network lan-party — 1 peer, 1 online")
        .expect(&text);
    let work = text.find("network work — 2 peers, 1 online").expect(&text);
    let statics = text.find(STATIC_GROUP).expect(&text);
    assert!(empty < lan && lan < work && work < statics, "{text}");
    for col in [
        "NAME",
        "OVERLAY IP",
        "ONLINE",
        "PATH",
        "ENDPOINT",
        "RTT",
        "HANDSHAKE",
        "RX",
        "TX",
    ] {
        assert!(text.contains(col), "column {col} missing:\n{text}");
    }
    // bob is listed under both of his networks.
    assert_eq!(text.matches("bob ").count(), 2, "{text}");
    let bob = text.lines().find(|l| l.contains("bob")).unwrap();
    for cell in [
        "100.64.0.3",
        "yes",
        "direct",
        "203.0.113.11:41820",
        "12 ms",
        "5 s ago",
        "1.5 KiB",
        "3.0 MiB",
    ] {
        assert!(bob.contains(cell), "{cell} missing in {bob:?}");
    }
    let carol = text.lines().find(|l| l.contains("carol")).unwrap();
    assert!(
        carol.contains(" no ") && carol.contains("never"),
        "{carol:?}"
    );
    assert!(text
        .lines()
        .any(|l| l.contains("static1") && l.contains("LAN")));

    let mut relayed = peer("dave", "100.64.0.5", &["work"], true, PathKind::Relay);
    relayed.relay = Some("203.0.113.1:7446".parse().unwrap());
    let text = status(&sample(vec![relayed], &["work"]));
    let dave = text.lines().find(|l| l.contains("dave")).unwrap();
    assert!(dave.contains("relay via 203.0.113.1:7446"), "{dave:?}");

    let mut over_tcp = peer("erin", "100.64.0.6", &["work"], true, PathKind::Direct);
    over_tcp.transport = Some("tcp".into());
    let text = status(&sample(vec![over_tcp], &["work"]));
    let erin = text.lines().find(|l| l.contains("erin")).unwrap();
    assert!(erin.contains("direct over TCP"), "{erin:?}");
}

#[test]
fn status_explains_empty_down_and_disconnected_states() {
    let mut s = sample(vec![], &[]);
    assert!(status(&s).contains("no networks yet: `warren create NET`"));
    s.coordinator.as_mut().unwrap().transport = Some(ControlTransport::Tcp);
    assert!(
        status(&s).contains("coordinator 203.0.113.1:7443: connected over TCP (no UDP"),
        "{}",
        status(&s)
    );
    s.state = TunnelState::Down;
    let c = s.coordinator.as_mut().unwrap();
    c.connected = false;
    c.last_error = Some("timed out".into());
    let text = status(&s);
    assert!(
        text.contains("Warren is DOWN (`warren up` turns it on)"),
        "{text}"
    );
    assert!(text.contains("disconnected while Warren is down"), "{text}");
    s.state = TunnelState::Up;
    assert!(status(&s).contains("not connected (timed out)"));
    s.coordinator = None;
    assert!(status(&s).contains("coordinator: none (`warren up --coordinator"));
}

#[test]
fn networks_lists_members_and_counts() {
    let s = sample(
        vec![
            peer("bob", "100.64.0.3", &["lan-party"], true, PathKind::Direct),
            peer("carol", "100.64.0.4", &["lan-party"], false, PathKind::None),
        ],
        &["lan-party"],
    );
    let text = networks(&s);
    let line = text.lines().nth(1).unwrap();
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cells[..3], ["lan-party", "2", "1"], "{text}");
    assert!(line.ends_with("bob, carol"), "{text}");
    let j = networks_json(&s);
    assert_eq!(j[0]["name"], "lan-party");
    assert_eq!(j[0]["online"], 1);
    assert_eq!(j[0]["peers"][1]["name"], "carol");
    assert!(networks(&sample(vec![], &[])).contains("not in any network"));
}

#[test]
fn pong_and_netcheck_say_path_and_nat() {
    let r = PingReply {
        peer: "bob".into(),
        overlay_ip: Some("100.64.0.3".parse().unwrap()),
        path: PathKind::Lan,
        endpoint: "192.168.1.3:41820".parse().unwrap(),
        rtt_us: 1234,
    };
    assert_eq!(
        pong(&r),
        "pong from bob (100.64.0.3) via 192.168.1.3:41820 (LAN) in 1.23 ms"
    );
    let mut n = NetcheckReport {
        udp: true,
        reflexive: Some("203.0.113.10:41820".parse().unwrap()),
        nat: NatKind::Symmetric,
        stun: vec![StunAnswer {
            server: "203.0.113.1:7444".parse().unwrap(),
            mapped: None,
        }],
        upnp: None,
        port_mapping: None,
        coordinator: Some("203.0.113.1:7443".into()),
        coordinator_rtt_ms: Some(4),
        relay: Some(warren_proto::api::RelayCheck {
            server: "203.0.113.1:7446".parse().unwrap(),
            reachable: true,
            rtt_ms: Some(5),
        }),
    };
    let text = netcheck(&n);
    for want in [
        "UDP:            yes",
        "public address: 203.0.113.10:41820",
        "symmetric NAT",
        "UPnP-IGD no",
        "RTT 4 ms",
        "saw nothing (no answer)",
        "relay:          203.0.113.1:7446, RTT 5 ms",
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    assert!(text.contains("mapped address: none"), "{text}");
    n.port_mapping = Some(warren_proto::api::PortMappingCheck {
        protocol: warren_proto::api::PortMapProtocol::Pcp,
        external: "198.20.0.2:41820".parse().unwrap(),
        lifetime_secs: 7200,
    });
    assert!(
        netcheck(&n).contains("mapped address: 198.20.0.2:41820 via PCP (lifetime 7200 s"),
        "{}",
        netcheck(&n)
    );
    n.stun.clear();
    assert!(netcheck(&n).contains("not checked"));
}

#[test]
fn bytes_are_human() {
    assert_eq!(human_bytes(0), "0 B");
    assert_eq!(human_bytes(1536), "1.5 KiB");
    assert_eq!(human_bytes(3 << 30), "3.0 GiB");
}

#[test]
fn status_shows_broadcast_counters_once_there_are_any() {
    let mut s = sample(vec![], &["lan"]);
    assert!(!status(&s).contains("broadcast"));
    s.broadcast.sent = 3;
    s.broadcast.copies = 6;
    s.broadcast.received = 2;
    assert!(status(&s).contains("broadcast/multicast: 3 sent (6 copies), 2 received\n"));
    s.broadcast.rate_limited = 9;
    assert!(status(&s).contains("2 received, 9 copies over the rate limit\n"));
}

#[test]
fn status_shows_owned_locked_requests_and_waits() {
    use warren_proto::api::JoinRequestInfo;
    let mut s = sample(vec![], &["lan", "work"]);
    let c = s.coordinator.as_mut().unwrap();
    c.owned = vec!["lan".into(), "gone".into()];
    c.locked = vec!["lan".into(), "work".into()];
    c.requests = vec![JoinRequestInfo {
        network: "lan".into(),
        name: "bob".into(),
        public_key: NodeKey([2; 32]),
        asked_at: 1,
    }];
    c.waiting = vec!["club".into()];
    let text = status(&s);
    assert!(
        text.contains("network lan — 0 peers, 0 online (yours, locked)"),
        "{text}"
    );
    assert!(
        text.contains("network work — 0 peers, 0 online (locked)"),
        "{text}"
    );
    assert!(
        text.contains("bob asks to join lan: `warren approve lan bob` or `warren deny lan bob`"),
        "{text}"
    );
    assert!(
        text.contains("waiting for the owner of club to approve this host"),
        "{text}"
    );
    assert!(
        text.contains("network gone is yours but this host left it"),
        "{text}"
    );
}

#[test]
fn requests_and_invites_as_tables_with_the_next_step() {
    use warren_proto::api::{InviteInfo, JoinRequestInfo};
    assert!(requests(&[], 100).contains("`warren lock NET`"));
    let list = [JoinRequestInfo {
        network: "lan".into(),
        name: "bob".into(),
        public_key: NodeKey([2; 32]),
        asked_at: 100,
    }];
    let text = requests(&list, 160);
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap(), "NETWORK  NAME  KEY        ASKED");
    assert_eq!(lines.next().unwrap(), "lan      bob   AgICAgIC…  60 s ago");
    assert!(lines.next().unwrap().contains("`warren approve NET NAME`"));

    assert!(invites("lan", &[], 0).contains("`warren invite lan` makes one"));
    let list = [
        InviteInfo {
            id: "a1b2c3d4e5f6".into(),
            network: "lan".into(),
            created_by: "alice".into(),
            created_at: 0,
            expires: None,
        },
        InviteInfo {
            id: "0f0f0f0f0f0f".into(),
            network: "lan".into(),
            created_by: "bob".into(),
            created_at: 0,
            expires: Some(7200),
        },
    ];
    let text = invites("lan", &list, 3600);
    assert!(
        text.contains("a1b2c3d4e5f6  alice    60 min ago  never (until revoked)"),
        "{text}"
    );
    assert!(
        text.contains("0f0f0f0f0f0f  bob      60 min ago  in 60 min"),
        "{text}"
    );
    assert!(text.contains("`warren invite lan --revoke ID`"), "{text}");
}

/// This host in networks of two coordinators: one connected with lan and alpha (and a request
/// to join lan), one away with beta (and a request to join beta, asked before it went away).
fn two_coordinators() -> Status {
    use warren_proto::api::JoinRequestInfo;
    let mut s = sample(
        vec![
            peer("bob", "100.64.0.3", &["lan"], true, PathKind::Direct),
            peer("carol", "100.64.0.4", &["alpha"], false, PathKind::None),
            peer("dave", "100.64.0.5", &["beta"], true, PathKind::Direct),
        ],
        &["lan", "alpha"],
    );
    let ask = |network: &str, name: &str| JoinRequestInfo {
        network: network.into(),
        name: name.into(),
        public_key: NodeKey([name.len() as u8; 32]),
        asked_at: 1,
    };
    let mut first = s.coordinator.clone().unwrap();
    first.owned = vec!["lan".into()];
    first.locked = vec!["lan".into()];
    first.requests = vec![ask("lan", "erin")];
    let mut second = first.clone();
    second.address = "198.51.100.7:7443".into();
    second.public_key = NodeKey([8; 32]);
    second.connected = false;
    second.last_error = Some("timed out".into());
    second.rtt_ms = None;
    second.transport = None;
    second.networks = vec!["beta".into()];
    second.owned = vec!["beta".into()];
    second.locked = vec!["beta".into()];
    second.requests = vec![ask("beta", "frank")];
    second.waiting = vec!["gamma".into()];
    s.coordinator = Some(first.clone());
    s.coordinators = vec![first, second];
    s
}

#[test]
fn status_shows_every_coordinator_and_all_their_networks() {
    let mut s = two_coordinators();
    let text = status(&s);
    assert!(
        text.contains("coordinator 203.0.113.1:7443: connected over QUIC, RTT 3 ms\n"),
        "{text}"
    );
    assert!(
        text.contains("coordinator 198.51.100.7:7443: not connected (timed out)\n"),
        "{text}"
    );
    let heading = |net: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("network {net} — ")))
            .unwrap_or_else(|| panic!("no {net} in:\n{text}"))
            .to_string()
    };
    // Name order across coordinators, each naming its own.
    let (alpha, beta, lan) = (heading("alpha"), heading("beta"), heading("lan"));
    assert!(
        text.find(&alpha) < text.find(&beta) && text.find(&beta) < text.find(&lan),
        "{text}"
    );
    assert_eq!(
        alpha,
        "network alpha — 1 peer, 0 online (coordinator 203.0.113.1:7443)"
    );
    assert_eq!(
        lan,
        "network lan — 1 peer, 1 online (yours, locked, coordinator 203.0.113.1:7443)"
    );
    // Only beta's coordinator is away.
    assert_eq!(
        beta,
        "network beta — 1 peer, 1 online (yours, locked, coordinator 198.51.100.7:7443 not \
         connected — existing connections keep working)"
    );
    assert_eq!(text.matches("not connected —").count(), 1, "{text}");
    // The owner's lines of both.
    for want in [
        "erin asks to join lan: `warren approve lan erin`",
        "frank asks to join beta: `warren approve beta frank`",
        "waiting for the owner of gamma to approve this host",
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    assert!(!text.contains("is yours but this host left it"), "{text}");
    for p in ["bob ", "carol ", "dave "] {
        assert_eq!(text.matches(p).count(), 1, "{p} in:\n{text}");
    }

    // While down, nothing is "not connected": every coordinator is away on purpose.
    s.state = TunnelState::Down;
    let text = status(&s);
    assert!(
        text.contains("coordinator 198.51.100.7:7443: disconnected while Warren is down"),
        "{text}"
    );
    assert!(!text.contains("not connected"), "{text}");
}

#[test]
fn an_older_daemon_without_the_list_counts_as_its_one_coordinator() {
    let mut s = sample(vec![], &["lan"]);
    s.coordinator.as_mut().unwrap().owned = vec!["lan".into()];
    assert!(s.coordinators.is_empty());
    assert_eq!(coordinators(&s).len(), 1);
    let text = status(&s);
    // One coordinator: its networks' headings do not repeat it.
    assert!(
        text.contains("network lan — 0 peers, 0 online (yours)\n"),
        "{text}"
    );
    assert_eq!(text.matches("203.0.113.1:7443").count(), 1, "{text}");
    // The same coordinator in the list reads the same.
    s.coordinators = vec![s.coordinator.clone().unwrap()];
    assert_eq!(status(&s), text);
    s.coordinator = None;
    s.coordinators.clear();
    assert!(coordinators(&s).is_empty());
}

#[test]
fn networks_names_the_coordinators_when_there_are_several() {
    let s = two_coordinators();
    let text = networks(&s);
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap().split_whitespace().collect::<Vec<_>>(),
        ["NETWORK", "PEERS", "ONLINE", "COORDINATOR", "MEMBERS"],
        "{text}"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        rows,
        [
            vec!["alpha", "1", "0", "203.0.113.1:7443", "carol"],
            vec![
                "beta",
                "1",
                "1",
                "198.51.100.7:7443",
                "(not",
                "connected)",
                "dave"
            ],
            vec!["lan", "1", "1", "203.0.113.1:7443", "bob"],
        ],
        "{text}"
    );
    let j = networks_json(&s);
    assert_eq!(j[1]["name"], "beta");
    assert_eq!(
        j[1]["coordinators"],
        serde_json::json!(["198.51.100.7:7443"])
    );
    // One coordinator: no column.
    let one = networks(&sample(vec![], &["lan"]));
    assert!(!one.contains("COORDINATOR"), "{one}");
}

#[test]
fn status_explains_an_address_clash_and_moves() {
    let mut clashing = peer("bob", "100.64.0.3", &["lan"], false, PathKind::None);
    clashing.address_clash = true;
    let mut s = sample(
        vec![
            clashing,
            peer("carol", "100.64.0.3", &["lan"], true, PathKind::Direct),
        ],
        &["lan"],
    );
    let text = status(&s);
    assert!(
        text.contains(
            "  bob: address clash with another peer: not reachable until one of them moves"
        ),
        "{text}"
    );
    assert!(!text.contains("carol: address clash"), "{text}");
    assert!(!text.contains("moved to a new overlay address"), "{text}");
    s.self_.address_moves = 2;
    assert!(
        status(&s).contains("moved to a new overlay address 2 times (another host had this one)"),
        "{}",
        status(&s)
    );
}

#[test]
fn a_network_only_peers_name_has_no_coordinator_to_show() {
    let mut s = two_coordinators();
    // E.g. a peer's list is newer than the coordinator's: the network shows, "-" for whose.
    s.peers
        .push(peer("gus", "100.64.0.7", &["zeta"], true, PathKind::Lan));
    let text = networks(&s);
    let zeta = text.lines().find(|l| l.starts_with("zeta ")).expect(&text);
    assert!(zeta.contains(" - "), "{text}");
}

fn games_sample() -> warren_proto::api::games::GamesStatus {
    use warren_proto::api::games::PortSource::{Preset, User};
    GamesBuilder::new()
        .port(
            "Minecraft Java LAN games",
            (4445, 4445),
            Some("224.0.2.60"),
            Preset,
            [12, 30, 0],
        )
        .port("Source engine", (27015, 27020), None, Preset, [0, 1234, 0])
        .port("my game", (50000, 50000), None, User, [3, 0, 0])
        .network("lan-party", true)
        .network("work", false)
        .mirrors("224.0.2.60")
        .build()
}

#[test]
fn games_lists_ports_counters_networks_and_groups() {
    let g = games_sample();
    let out = games(&g);
    let want = "\
LAN game discovery: on

NAME                      UDP PORT     GROUP       SOURCE  SENT  RECEIVED  DROPPED
Minecraft Java LAN games  4445         224.0.2.60  preset    12        30        0
Source engine             27015-27020  broadcast   preset     0      1234        0
my game                   50000        broadcast   user       3         0        0

NETWORK    GAMES
lan-party  on
work       off
mirrored groups: 224.0.2.60
add a game's port: `warren games add PORT[-LAST] [--group A.B.C.D]`; per network: `warren games on|off NET`
";
    assert_eq!(out, want, "\n{out}");
    // The JSON is the proto's own form, the contract for scripts.
    let v = serde_json::to_value(&g).unwrap();
    assert_eq!(v["ports"][0]["group"], "224.0.2.60");
    assert_eq!(v["ports"][0]["source"], "preset");
    assert_eq!(v["ports"][1]["last"], 27020);
    assert!(v["ports"][1].get("group").is_none());
    assert_eq!(v["networks"][1]["enabled"], false);
}

#[test]
fn games_says_why_it_is_off_and_what_was_dropped() {
    let mut g = games_sample();
    g.active = false;
    g.problem = Some("Warren is off (`warren up` turns it on)".into());
    g.ports[2].dropped = 7;
    let out = games(&g);
    assert!(
        out.starts_with("LAN game discovery: OFF — Warren is off (`warren up` turns it on)\n"),
        "{out}"
    );
    assert!(
        out.contains("DROPPED: packets over the rate limit"),
        "{out}"
    );
    g.problem = None;
    g.ports.clear();
    g.networks.clear();
    g.mirrored_groups.clear();
    let out = games(&g);
    assert!(out.contains("OFF — the daemon gave no reason"), "{out}");
    assert!(out.contains("no discovery ports carried"), "{out}");
    assert!(out.contains("no networks: "), "{out}");
    assert!(out.contains("mirrored groups: none\n"), "{out}");
}

#[test]
fn an_optional_port_that_is_not_open_says_so() {
    use warren_proto::api::{CheckReport, Verdict};
    use warren_proto::disco::{Listening, PortProto};
    let r = |proto, verdict| CheckReport {
        peer: "bob".into(),
        overlay_ip: Some("100.64.0.3".parse().unwrap()),
        port: 3389,
        proto,
        verdict,
        peer_listening: Some(Listening::Nothing),
        detail: "nothing listens on 3389/udp on bob".into(),
    };
    let closed = r(PortProto::Udp, Verdict::NothingListening);
    assert_eq!(
        check_line(&closed, false),
        "optional, not open: 3389/udp: nothing listening on bob — nothing listens on 3389/udp \
         on bob"
    );
    // Required, or open: the line scripts and the lab test look for, unchanged.
    assert!(check_line(&closed, true).starts_with("3389/udp: nothing listening on bob"));
    let open = r(PortProto::Tcp, Verdict::Reachable);
    assert!(check_line(&open, false).starts_with("3389/tcp: reachable — "));
}

#[test]
fn status_says_which_other_address_of_the_coordinator_it_went_through() {
    let mut s = sample(vec![], &["home"]);
    let c = s.coordinator.as_mut().unwrap();
    c.alternates = vec!["203.0.113.2:7443".into()];
    c.connected_to = Some("203.0.113.1:7443".into());
    let text = status(&s);
    assert!(
        text.contains("coordinator 203.0.113.1:7443: connected over QUIC, RTT 3 ms\n"),
        "{text}"
    );
    let c = s.coordinator.as_mut().unwrap();
    c.connected_to = Some("203.0.113.2:7443".into());
    let text = status(&s);
    assert!(
        text.contains(
            "coordinator 203.0.113.1:7443: connected through 203.0.113.2:7443 over QUIC, RTT 3 ms\n"
        ),
        "{text}"
    );
}
