use super::*;
use std::collections::BTreeMap;
use warren_proto::api::{
    BroadcastStatus, CoordinatorStatus, OffloadStatus, SelfStatus, Status, TunnelState,
};
use warren_proto::control::msg::NatKind;
use warren_proto::key::NodeKey;

fn peer(name: &str, last: u8, online: bool, path: PathKind, nets: &[&str]) -> PeerStatus {
    PeerStatus {
        name: name.into(),
        public_key: NodeKey([last; 32]),
        overlay_ip: Some(format!("100.64.0.{last}").parse().unwrap()),
        allowed_ips: vec![],
        online,
        path,
        endpoint: None,
        rtt_ms: Some(u32::from(last)),
        last_handshake_secs: None,
        rx_bytes: 0,
        tx_bytes: 0,
        networks: nets.iter().map(|n| n.to_string()).collect(),
        relay: None,
    }
}

fn coordinator(connected: bool, error: Option<&str>, nets: &[&str]) -> CoordinatorStatus {
    CoordinatorStatus {
        address: "coord.example:7443".into(),
        name: "alice".into(),
        overlay_ip: Some("100.64.0.1".parse().unwrap()),
        public_key: NodeKey([9; 32]),
        connected,
        last_error: error.map(String::from),
        name_taken: false,
        networks: nets.iter().map(|n| n.to_string()).collect(),
        rtt_ms: None,
        transport: None,
        owned: vec![],
        locked: vec![],
        requests: vec![],
        waiting: vec![],
    }
}

fn status(up: bool, coord: Option<CoordinatorStatus>, peers: Vec<PeerStatus>) -> Link {
    Link::Live(Box::new(Status {
        state: if up {
            TunnelState::Up
        } else {
            TunnelState::Down
        },
        self_: SelfStatus {
            name: "alice-host".into(),
            overlay_ip: "100.100.1.1".parse().unwrap(),
            overlay_ip6: None,
            public_key: NodeKey([1; 32]),
            listen_port: 41820,
            tun: "warren0".into(),
            mtu: 1420,
            reflexive: None,
            nat: NatKind::Unknown,
            mapped: None,
        },
        peers,
        dropped: BTreeMap::new(),
        offload: OffloadStatus {
            tun_vnet_hdr: false,
            tun_udp_gso: false,
            udp_gso_segments: 1,
            udp_gro_segments: 1,
        },
        coordinator: coord,
        broadcast: BroadcastStatus::default(),
        hosting: None,
    }))
}

fn connections(n: &NetworkView) -> Vec<(&str, &str, bool)> {
    n.members
        .iter()
        .map(|m| (m.name.as_str(), m.connection.as_str(), m.online))
        .collect()
}

#[test]
fn online_peers_by_path_online_first() {
    let link = status(
        true,
        Some(coordinator(true, None, &["lan-party"])),
        vec![
            peer("zed", 5, false, PathKind::None, &["lan-party"]),
            peer("bob", 2, true, PathKind::Direct, &["lan-party"]),
            peer("carol", 3, true, PathKind::Lan, &["lan-party"]),
            peer("dave", 4, true, PathKind::Relay, &["lan-party"]),
            peer("erin", 6, true, PathKind::None, &["lan-party"]),
        ],
    );
    let vm = model(&link, &UiState::default());
    assert_eq!(vm.look, Look::Online);
    assert_eq!(vm.headline, "Online");
    assert_eq!(
        vm.me,
        Some(Me {
            name: "alice".into(),
            ip: "100.64.0.1".into()
        })
    );
    assert_eq!(vm.power, Some(true));
    assert!(vm.can_manage_networks);
    assert_eq!(vm.empty_hint, None);
    assert_eq!(vm.networks.len(), 1);
    let net = &vm.networks[0];
    assert_eq!(net.name, "lan-party");
    assert_eq!(net.summary, "4 of 5 online");
    assert!(net.can_leave);
    assert_eq!(
        connections(net),
        vec![
            ("bob", "Direct connection", true),
            ("carol", "Same network (LAN)", true),
            ("dave", "Relayed (slower)", true),
            ("erin", "Connecting…", true),
            ("zed", "Offline", false),
        ]
    );
    assert_eq!(net.members[0].ip, "100.64.0.2");
    assert_eq!(net.members[0].rtt.as_deref(), Some("2 ms"));
    // No RTT for a peer without a path or offline.
    assert_eq!(net.members[3].rtt, None);
    assert_eq!(net.members[4].rtt, None);
}

#[test]
fn a_peer_in_two_networks_is_listed_in_both_and_config_peers_apart() {
    let link = status(
        true,
        Some(coordinator(true, None, &["a", "b", "empty"])),
        vec![
            peer("bob", 2, true, PathKind::Direct, &["a", "b"]),
            peer("static", 7, true, PathKind::Direct, &[]),
        ],
    );
    let vm = model(&link, &UiState::default());
    let names: Vec<_> = vm.networks.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "empty", CONFIGURED_PEERS]);
    assert_eq!(vm.networks[0].members[0].name, "bob");
    assert_eq!(vm.networks[1].members[0].name, "bob");
    assert_eq!(vm.networks[2].summary, "Only you so far");
    assert!(!vm.networks[3].can_leave);
    assert_eq!(vm.networks[3].members[0].name, "static");
}

#[test]
fn off_shows_everyone_offline() {
    let link = status(
        false,
        Some(coordinator(false, None, &["lan-party"])),
        vec![peer("bob", 2, true, PathKind::Direct, &["lan-party"])],
    );
    let vm = model(&link, &UiState::default());
    assert_eq!(vm.look, Look::Off);
    assert_eq!(vm.headline, "Warren is off");
    assert_eq!(vm.power, Some(false));
    assert!(!vm.can_manage_networks);
    assert_eq!(
        connections(&vm.networks[0]),
        vec![("bob", "Offline", false)]
    );
    assert_eq!(vm.networks[0].members[0].rtt, None);
}

#[test]
fn empty_states() {
    // Connected, no networks: say what to do.
    let vm = model(
        &status(true, Some(coordinator(true, None, &[])), vec![]),
        &UiState::default(),
    );
    assert_eq!(vm.look, Look::Online);
    assert!(vm.networks.is_empty());
    assert!(vm.empty_hint.unwrap().contains("not in any network yet"));

    // Off, no networks.
    let vm = model(&status(false, None, vec![]), &UiState::default());
    assert_eq!(vm.look, Look::Off);
    assert_eq!(
        vm.empty_hint.as_deref(),
        Some("Turn Warren on to see your networks.")
    );
    // No coordinator: the daemon's own name and address.
    assert_eq!(vm.me.unwrap().ip, "100.100.1.1");

    // On, never set up.
    let vm = model(&status(true, None, vec![]), &UiState::default());
    assert_eq!(vm.look, Look::Problem);
    assert!(vm.headline.contains("warren up --coordinator"));
    assert!(vm.headline.contains("invite code"), "{}", vm.headline);
    assert!(!vm.can_manage_networks);
}

#[test]
fn coordinator_not_connected() {
    let vm = model(
        &status(true, Some(coordinator(false, None, &["x"])), vec![]),
        &UiState::default(),
    );
    assert_eq!(vm.look, Look::Connecting);
    assert_eq!(vm.headline, "Connecting to coord.example:7443…");

    let vm = model(
        &status(
            true,
            Some(coordinator(false, Some("connection refused"), &["x"])),
            vec![],
        ),
        &UiState::default(),
    );
    assert_eq!(vm.look, Look::Problem);
    assert_eq!(
        vm.headline,
        "Can't reach the coordinator coord.example:7443: connection refused"
    );
}

#[test]
fn daemon_missing_and_not_yet_heard() {
    let why = "Warren service isn't running — start it with `sudo systemctl start warrend`";
    let vm = model(&Link::Missing(why.into()), &UiState::default());
    assert_eq!(vm.look, Look::Problem);
    assert_eq!(vm.headline, why);
    assert_eq!(vm.me, None);
    assert_eq!(vm.power, None);
    assert!(vm.networks.is_empty());
    assert_eq!(vm.empty_hint, None);
    assert!(!vm.can_manage_networks);

    let vm = model(&Link::Connecting, &UiState::default());
    assert_eq!(vm.look, Look::Connecting);
    assert_eq!(vm.power, None);
}

#[test]
fn action_errors_and_notices_are_shown_as_the_daemon_said_them() {
    let ui = UiState {
        error: Some("Wrong password for lan-party".into()),
        notice: Some("Copied 100.64.0.1".into()),
    };
    let vm = model(
        &status(true, Some(coordinator(true, None, &[])), vec![]),
        &ui,
    );
    assert_eq!(vm.error.as_deref(), Some("Wrong password for lan-party"));
    assert_eq!(vm.notice.as_deref(), Some("Copied 100.64.0.1"));
    // Also without a daemon.
    let vm = model(&Link::Missing("gone".into()), &ui);
    assert_eq!(vm.error.as_deref(), Some("Wrong password for lan-party"));
}
