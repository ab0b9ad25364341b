use super::*;
use warren_proto::api::fixtures::{CoordinatorBuilder, PeerBuilder, StatusBuilder};
use warren_proto::api::{
    ApiError, CoordinatorStatus, ErrorCode, HostingStatus, InviteInfo, JoinRequestInfo, ReachState,
    Reachability, Status,
};
use warren_proto::key::NodeKey;

mod games;
mod hosting;

fn peer(name: &str, last: u8, online: bool, path: PathKind, nets: &[&str]) -> PeerStatus {
    PeerBuilder::new(name)
        .key(last)
        .ip(&format!("100.64.0.{last}"))
        .online(online)
        .path(path)
        .rtt_ms(u32::from(last))
        .networks(nets)
        .build()
}

fn coordinator(connected: bool, error: Option<&str>, nets: &[&str]) -> CoordinatorStatus {
    let c = CoordinatorBuilder::new("coord.example:7443")
        .leased("100.64.0.1")
        .connected(connected)
        .networks(nets);
    match error {
        Some(e) => c.last_error(e).build(),
        None => c.build(),
    }
}

fn status(up: bool, coord: Option<CoordinatorStatus>, peers: Vec<PeerStatus>) -> Link {
    let s = StatusBuilder::new()
        .up(up)
        .name("alice-host")
        .ip("100.100.1.1")
        .peers(peers);
    let s = match coord {
        Some(c) => s.coordinator(c),
        None => s,
    };
    Link::Live(Box::new(s.build()))
}

/// The daemon's refusal of the last action.
fn refused(code: ErrorCode, message: &str) -> Option<ApiError> {
    Some(ApiError::new(code, message))
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
    assert_eq!(vm.relay_for_others, Some(false));
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
    let vm = model(
        &status(false, Some(coordinator(false, None, &[])), vec![]),
        &UiState::default(),
    );
    assert_eq!(vm.look, Look::Off);
    assert_eq!(
        vm.empty_hint.as_deref(),
        Some("Turn Warren on to see your networks.")
    );
    // No coordinator: the daemon's own name and address.
    let vm = model(&status(false, None, vec![]), &UiState::default());
    assert_eq!(vm.me.unwrap().ip, "100.100.1.1");

    // On, never set up: the first run (see `first_run_asks_the_name_then_host_or_join`).
    let vm = model(&status(true, None, vec![]), &UiState::default());
    assert_eq!(vm.look, Look::Off, "a fresh install is not an error");
    assert_eq!(
        vm.headline,
        "Not set up yet: host a network, or join one with an invite code"
    );
    assert!(!vm.can_manage_networks);
    assert!(vm.can_host);
    assert_eq!(vm.empty_hint, None, "the first-run panel says what to do");
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
    assert_eq!(vm.relay_for_others, None, "no switch without a daemon");
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
        error: refused(ErrorCode::WrongPassword, "Wrong password for lan-party"),
        notice: Some("Copied 100.64.0.1".into()),
        ..Default::default()
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

fn live(link: &mut Link) -> &mut Status {
    match link {
        Link::Live(s) => s,
        _ => unreachable!(),
    }
}

const TAKEN: &str = "the name alice is already used by another host in network office: \
                     pick another name with --name (warren up --name NEW-NAME)";

#[test]
fn name_taken_offers_another_name_instead_of_the_flag() {
    // The window after an action the daemon refused with `code`, saying `message`.
    let after = |code, message| {
        let ui = UiState {
            error: refused(code, message),
            ..Default::default()
        };
        model(
            &status(true, Some(coordinator(true, None, &[])), vec![]),
            &ui,
        )
    };
    // A join refused for the name: the choice, and not the coordinator's sentence.
    let vm = after(ErrorCode::NameTaken, TAKEN);
    assert_eq!(
        vm.name_taken,
        Some(NameTaken {
            name: "alice".into(),
            message: "Someone in this network already uses the name \"alice\". Pick another \
                      name and try again."
                .into(),
            suggestion: "alice-2".into(),
        })
    );
    assert_eq!(vm.error, None, "the sentence naming --name is not shown");
    assert_eq!(vm.look, Look::Online);

    // Refused while connecting: the headline points at the window.
    let mut refusing = coordinator(false, Some(TAKEN), &["office"]);
    refusing.name_taken = true;
    let link = status(
        true,
        Some(refusing),
        vec![peer("bob", 2, true, PathKind::Direct, &["office"])],
    );
    let vm = model(&link, &UiState::default());
    assert_eq!(vm.look, Look::Problem);
    assert_eq!(
        vm.headline,
        "Your name is already used in this network: pick another one in the window"
    );
    assert_eq!(vm.name_taken.unwrap().name, "alice");

    // Other errors are shown as the daemon wrote them, and offer no rename.
    let vm = after(
        ErrorCode::WrongPassword,
        "wrong password for network office",
    );
    assert_eq!(vm.name_taken, None);
    assert_eq!(
        vm.error.as_deref(),
        Some("wrong password for network office")
    );

    // The code decides, not the words: the same sentence without it is shown as it is.
    let vm = after(ErrorCode::Other, TAKEN);
    assert_eq!(vm.name_taken, None);
    assert_eq!(vm.error.as_deref(), Some(TAKEN));
}

#[test]
fn invite_list_in_words() {
    let now = 1_800_000_000;
    let inv = |id: &str, created_at: u64, expires: Option<u64>| InviteInfo {
        id: id.into(),
        network: "lan".into(),
        created_by: "alice".into(),
        created_at,
        expires,
    };
    let rows = invite_rows(
        &[
            inv("old", now - 100, Some(now + 3 * 86400 + 5)),
            inv("new", now - 10, Some(now + 3599)),
            inv("forever", now - 50, None),
            inv("gone", now - 200, Some(now)),
        ],
        now,
    );
    let texts: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.id.as_str(), r.text.as_str()))
        .collect();
    assert_eq!(
        texts,
        [
            ("new", "Made by alice · expires in 59 minutes"),
            ("forever", "Made by alice · until you revoke it"),
            ("old", "Made by alice · expires in 3 days"),
            ("gone", "Made by alice · expired"),
        ]
    );
    assert_eq!(duration_words(3600), "1 hour");
    assert_eq!(duration_words(86399), "23 hours");
    assert_eq!(duration_words(86400), "1 day");
    assert_eq!(duration_words(20), "1 minute");
}

/// The string literals of a Rust source before its tests (`//` comments skipped).
fn literals(src: &str) -> Vec<String> {
    let src = src.split("#[cfg(test)]").next().unwrap();
    let mut out = Vec::new();
    let mut chars = src.chars().peekable();
    let mut prev = ' ';
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            // A char literal such as '"' or '\''.
            '\'' if prev != 'b' => {
                let mut lit = String::new();
                while let Some(&n) = chars.peek() {
                    if lit.len() > 3 || (n == '\'' && !lit.ends_with('\\')) {
                        break;
                    }
                    lit.push(n);
                    chars.next();
                }
                if chars.peek() == Some(&'\'') && lit.len() <= 3 {
                    chars.next();
                }
            }
            '"' => {
                let mut lit = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(e) = chars.next() {
                                lit.push('\\');
                                lit.push(e);
                            }
                        }
                        '"' => break,
                        c => lit.push(c),
                    }
                }
                out.push(lit);
            }
            _ => {}
        }
        prev = c;
    }
    out
}

#[test]
fn the_gui_itself_never_names_a_flag_or_a_command() {
    let sources = [
        ("view.rs", include_str!("../view.rs")),
        ("view/hosting.rs", include_str!("hosting.rs")),
        ("view/games.rs", include_str!("games.rs")),
        ("app/games.rs", include_str!("../app/games.rs")),
        ("actions/games.rs", include_str!("../actions/games.rs")),
        ("app.rs", include_str!("../app.rs")),
        ("app/host.rs", include_str!("../app/host.rs")),
        ("app/owner.rs", include_str!("../app/owner.rs")),
        ("tray/mod.rs", include_str!("../tray/mod.rs")),
        ("tray/linux.rs", include_str!("../tray/linux.rs")),
        ("tray/windows.rs", include_str!("../tray/windows.rs")),
        ("actions.rs", include_str!("../actions.rs")),
        ("actions/forms.rs", include_str!("../actions/forms.rs")),
        ("client.rs", include_str!("../client.rs")),
    ];
    let banned = [
        "--",
        "`",
        "warren up",
        "warren host",
        "warren join",
        "warren invite",
        "warren create",
        "sudo",
        "systemctl",
        "usermod",
        "$USER",
    ];
    let mut seen = 0;
    for (file, src) in sources {
        for lit in literals(src) {
            seen += 1;
            for b in banned {
                assert!(
                    !lit.contains(b),
                    "{file}: a text the GUI shows names a command or flag ({b:?}): {lit:?}"
                );
            }
        }
    }
    assert!(seen > 100, "the scan found the texts ({seen})");
    // The scanner itself finds what it must.
    let bad = literals("let a = '\"'; let b = \"run `warren up --name X`\"; // \"--x\"\n");
    assert_eq!(bad, ["run `warren up --name X`"]);
}

/// This host in networks of two coordinators: the first connected with lan and alpha (and a
/// request to join lan), the second away with beta (and a request to join beta, asked before
/// it went away, and a locked network gamma this host waits to enter).
fn two_coordinators() -> Link {
    let ask = |name: &str, net: &str, key: u8| JoinRequestInfo {
        network: net.into(),
        name: name.into(),
        public_key: NodeKey([key; 32]),
        asked_at: 1_700_000_000,
    };
    let mut first = coordinator(true, None, &["lan", "alpha"]);
    first.owned = vec!["lan".into()];
    first.locked = vec!["lan".into()];
    first.requests = vec![ask("erin", "lan", 5)];
    let mut second = coordinator(false, Some("timed out"), &["beta"]);
    second.address = "host2.example:7443".into();
    second.public_key = NodeKey([8; 32]);
    second.owned = vec!["beta".into()];
    second.requests = vec![ask("frank", "beta", 6)];
    second.waiting = vec!["gamma".into()];
    let mut link = status(
        true,
        Some(first.clone()),
        vec![
            peer("bob", 2, true, PathKind::Direct, &["lan"]),
            peer("carol", 3, false, PathKind::None, &["alpha"]),
            peer("dave", 4, true, PathKind::Direct, &["beta"]),
        ],
    );
    live(&mut link).coordinators = vec![first, second];
    link
}

#[test]
fn networks_of_every_coordinator_with_the_offline_note_on_the_away_ones_only() {
    let mut link = two_coordinators();
    let vm = model(&link, &UiState::default());
    let names: Vec<_> = vm.networks.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["alpha", "beta", "lan", "gamma"]);
    let net = |name: &str| vm.networks.iter().find(|n| n.name == name).unwrap();

    assert_eq!(net("beta").host_offline.as_deref(), Some(HOST_OFFLINE));
    assert_eq!(net("lan").host_offline, None);
    assert_eq!(net("alpha").host_offline, None);
    assert_eq!(net("gamma").host_offline, None);
    // beta's members keep their paths while its host is away.
    assert_eq!(
        connections(net("beta")),
        vec![("dave", "Direct connection", true)]
    );
    assert_eq!(net("alpha").summary, "0 of 1 online");
    assert!(net("gamma").waiting);

    // The owner's controls and requests of both coordinators.
    let requests = |name: &str| -> Vec<String> {
        net(name)
            .owner
            .as_ref()
            .expect("owner controls")
            .requests
            .iter()
            .map(|r| r.text.clone())
            .collect()
    };
    assert_eq!(requests("lan"), ["erin asks to join"]);
    assert_eq!(requests("beta"), ["frank asks to join"]);
    assert!(net("lan").owner.as_ref().unwrap().locked);
    assert!(!net("beta").owner.as_ref().unwrap().locked);
    assert_eq!(net("alpha").owner, None);

    // One host answers: online, not an error; the note says which networks wait for the other.
    assert_eq!(vm.look, Look::Online);
    assert_eq!(vm.headline, "Online");
    assert!(vm.can_manage_networks);
    assert_eq!(vm.first_run, None);

    // Both away: the headline says it as for one, and every network has the note.
    live(&mut link).coordinators[0].connected = false;
    let vm = model(&link, &UiState::default());
    assert_eq!(vm.headline, HOST_OFFLINE);
    assert_eq!(vm.look, Look::Online, "bob and dave are still online");
    for n in ["alpha", "beta", "lan"] {
        let n = vm.networks.iter().find(|v| v.name == n).unwrap();
        assert_eq!(n.host_offline.as_deref(), Some(HOST_OFFLINE), "{}", n.name);
    }

    // Off: everyone is away on purpose, so no note.
    live(&mut link).state = TunnelState::Down;
    let vm = model(&link, &UiState::default());
    assert!(vm.networks.iter().all(|n| n.host_offline.is_none()));
}

#[test]
fn an_away_coordinator_without_networks_is_named_in_the_headline() {
    let mut link = two_coordinators();
    let s = live(&mut link);
    s.coordinators[1].networks.clear();
    let vm = model(&link, &UiState::default());
    assert_eq!(vm.look, Look::Online);
    assert_eq!(
        vm.headline,
        "Online — can't reach the coordinator host2.example:7443: timed out"
    );
}

#[test]
fn an_older_daemon_without_the_list_counts_as_its_one_coordinator() {
    let link = status(
        true,
        Some(coordinator(false, Some("timed out"), &["lan-party"])),
        vec![peer("bob", 2, true, PathKind::Direct, &["lan-party"])],
    );
    assert_eq!(coordinators(live(&mut link.clone())).len(), 1);
    let vm = model(&link, &UiState::default());
    assert_eq!(vm.headline, HOST_OFFLINE);
    assert_eq!(vm.networks[0].host_offline.as_deref(), Some(HOST_OFFLINE));
    // The same coordinator in the list reads the same.
    let mut listed = link.clone();
    let c = live(&mut listed).coordinator.clone().unwrap();
    live(&mut listed).coordinators = vec![c];
    assert_eq!(model(&listed, &UiState::default()), vm);
}

#[test]
fn a_name_refused_by_the_second_coordinator_is_offered_too() {
    let mut link = two_coordinators();
    let second = &mut live(&mut link).coordinators[1];
    second.name_taken = true;
    second.last_error = Some(TAKEN.into());
    let vm = model(&link, &UiState::default());
    assert_eq!(vm.name_taken.unwrap().name, "alice");
    assert_eq!(vm.look, Look::Problem);
}

#[test]
fn a_member_with_a_clashing_address_says_so() {
    let mut clash = peer("bob", 2, true, PathKind::Direct, &["lan"]);
    clash.address_clash = true;
    let link = status(true, Some(coordinator(true, None, &["lan"])), vec![clash]);
    let vm = model(&link, &UiState::default());
    let bob = &vm.networks[0].members[0];
    assert_eq!(bob.connection, ADDRESS_CLASH);
    assert_eq!(bob.rtt, None);
}

#[test]
fn the_home_network_switch_and_the_owners_route_approvals() {
    use warren_proto::api::RouteInfo;
    let mut c = coordinator(true, None, &["home"]);
    c.owned = vec!["home".into()];
    c.routes = vec![RouteInfo {
        network: "home".into(),
        name: "nas".into(),
        public_key: warren_proto::key::NodeKey([9; 32]),
        prefix: "192.168.1.0/24".into(),
        advertised: true,
        approved: false,
    }];
    let Link::Live(mut st) = status(true, Some(c), vec![]) else {
        unreachable!()
    };
    st.self_.lans = vec!["10.0.0.0/8".into(), "192.168.7.0/24".into()];
    st.self_.advertised_routes = vec!["10.9.0.0/16".into()];
    let vm = model(&Link::Live(st.clone()), &UiState::default());
    let share = vm.share_lan.clone().expect("a home network to share");
    assert_eq!((share.prefix.as_str(), share.on), ("192.168.7.0/24", false));
    assert_eq!(share.with(true), ["10.9.0.0/16", "192.168.7.0/24"]);
    st.self_.advertised_routes = share.with(true);
    let share = model(&Link::Live(st.clone()), &UiState::default())
        .share_lan
        .unwrap();
    assert!(share.on);
    assert_eq!(
        share.note.as_deref(),
        Some("Waiting for the network owner to approve it")
    );
    assert_eq!(share.with(false), ["10.9.0.0/16"], "other routes stay");
    assert!(
        vm.networks[0].routes.is_empty(),
        "not approved: not listed for members"
    );
    let owner = vm.networks[0].owner.clone().expect("owner controls");
    assert_eq!(owner.routes.len(), 1);
    assert!(!owner.routes[0].approved);
    assert_eq!(
        owner.routes[0].text,
        "nas offers its home network 192.168.1.0/24 to the members"
    );
    // Approved: every member sees where the home network is.
    if let Some(c) = st.coordinator.as_mut() {
        c.routes[0].approved = true;
    }
    let vm = model(&Link::Live(st.clone()), &UiState::default());
    assert_eq!(
        vm.networks[0].routes,
        ["nas's home network: 192.168.1.0/24"]
    );
    // No LAN: no switch.
    st.self_.lans.clear();
    assert!(model(&Link::Live(st.clone()), &UiState::default())
        .share_lan
        .is_none());
}
