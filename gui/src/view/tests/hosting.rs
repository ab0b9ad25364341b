//! The first run, the PC's own hosted network and the owner's controls.

use super::*;

fn hosting(state: ReachState, public: Option<&str>, message: &str) -> HostingStatus {
    HostingStatus {
        networks: vec!["game-night".into()],
        running: true,
        port: 7443,
        public_key: NodeKey([7; 32]),
        reachability: Reachability {
            state,
            public: public.map(|p| p.parse().unwrap()),
            lan: vec!["192.168.1.10:7443".parse().unwrap()],
            message: message.into(),
        },
    }
}

#[test]
fn first_run_asks_the_name_then_host_or_join() {
    let link = status(true, None, vec![]);
    let vm = model(&link, &UiState::default());
    assert_eq!(
        vm.first_run,
        Some(FirstRun::AskName {
            question: "Welcome to Warren! What name should your friends see?".into(),
            suggested: "alice-host".into(),
        })
    );
    assert!(vm.can_host);
    assert_eq!(vm.power, Some(true), "Join works on a fresh install");

    // The daemon took the name: Host or Join next.
    let named = UiState {
        name_chosen: true,
        ..Default::default()
    };
    let vm = model(&link, &named);
    match vm.first_run {
        Some(FirstRun::HostOrJoin { text }) => {
            assert!(text.contains("Host a network") && text.contains("invite code"))
        }
        other => panic!("{other:?}"),
    }

    // Also while off: a fresh install that was turned off is still a fresh install.
    let vm = model(&status(false, None, vec![]), &UiState::default());
    assert!(matches!(vm.first_run, Some(FirstRun::AskName { .. })));

    // A coordinator, or a network hosted here: no first run.
    let vm = model(
        &status(true, Some(coordinator(true, None, &[])), vec![]),
        &UiState::default(),
    );
    assert_eq!(vm.first_run, None);
    let mut link = status(true, None, vec![]);
    live(&mut link).hosting = Some(hosting(ReachState::Checking, None, ""));
    let vm = model(&link, &UiState::default());
    assert_eq!(vm.first_run, None);
    assert_eq!(vm.look, Look::Connecting);
    assert_eq!(vm.headline, "Starting your network…");
}

#[test]
fn hosting_reachable_lan_only_checking() {
    let mut link = status(true, Some(coordinator(true, None, &["game-night"])), vec![]);
    live(&mut link).hosting = Some(hosting(
        ReachState::Reachable,
        Some("203.0.113.7:40123"),
        "reachable from the internet at 203.0.113.7:40123",
    ));
    let h = model(&link, &UiState::default()).hosting.unwrap();
    assert_eq!(h.look, Look::Online);
    assert_eq!(
        h.headline,
        "Reachable from the internet at 203.0.113.7:40123"
    );
    assert_eq!(
        h.lan.as_deref(),
        Some("Friends on your network (LAN) reach it at 192.168.1.10:7443")
    );
    assert_eq!(h.networks, ["game-night"]);

    // No port mapping: the daemon's plain words, not an error look.
    let why = "Friends on the internet can't reach this PC: your router did not open the port. \
               Forward UDP and TCP port 7443 to 192.168.1.10 in your router's settings.";
    live(&mut link).hosting = Some(hosting(ReachState::LanOnly, None, why));
    let h = model(&link, &UiState::default()).hosting.unwrap();
    assert_eq!(h.look, Look::Connecting);
    assert_eq!(h.headline, why);
    // Without a message from the daemon, the window's own words.
    live(&mut link).hosting = Some(hosting(ReachState::LanOnly, None, ""));
    let h = model(&link, &UiState::default()).hosting.unwrap();
    assert!(
        h.headline.starts_with("Only friends on your own network"),
        "{}",
        h.headline
    );

    live(&mut link).hosting = Some(hosting(ReachState::Checking, None, ""));
    let h = model(&link, &UiState::default()).hosting.unwrap();
    assert_eq!(h.look, Look::Connecting);
    assert_eq!(
        h.headline,
        "Checking whether friends on the internet can reach this PC…"
    );

    let mut stopped = hosting(ReachState::Reachable, Some("203.0.113.7:40123"), "");
    stopped.running = false;
    live(&mut link).hosting = Some(stopped);
    let h = model(&link, &UiState::default()).hosting.unwrap();
    assert_eq!(h.headline, "Starting the host service on this PC…");

    live(&mut link).hosting = None;
    assert_eq!(model(&link, &UiState::default()).hosting, None);
}

#[test]
fn owner_sees_requests_and_controls_of_owned_networks_only() {
    let mut c = coordinator(true, None, &["mine", "theirs"]);
    c.owned = vec!["mine".into()];
    c.locked = vec!["mine".into(), "theirs".into()];
    let ask = |name: &str, net: &str, key: u8| JoinRequestInfo {
        network: net.into(),
        name: name.into(),
        public_key: NodeKey([key; 32]),
        asked_at: 1_700_000_000,
    };
    c.requests = vec![ask("bob", "mine", 0xfb), ask("carol", "other", 3)];
    let link = status(
        true,
        Some(c),
        vec![peer("dave", 4, true, PathKind::Direct, &["mine", "theirs"])],
    );
    let vm = model(&link, &UiState::default());
    let mine = &vm.networks[0];
    assert_eq!(mine.name, "mine");
    assert!(mine.can_invite && mine.can_leave && !mine.waiting);
    let owner = mine.owner.as_ref().expect("owner controls");
    assert!(owner.locked);
    assert_eq!(
        owner.requests,
        vec![RequestView {
            name: "bob".into(),
            who: NodeKey([0xfb; 32]).to_string()[..12].to_string(),
            text: "bob asks to join".into(),
        }]
    );
    assert_eq!(owner.requests[0].who, "+/v7+/v7+/v7");
    let theirs = &vm.networks[1];
    assert_eq!(
        theirs.owner, None,
        "no owner controls in someone else's network"
    );
    assert!(theirs.can_invite);

    // Unlocked and nobody asking.
    let mut c = coordinator(true, None, &["mine"]);
    c.owned = vec!["mine".into()];
    let vm = model(&status(true, Some(c), vec![]), &UiState::default());
    assert_eq!(
        vm.networks[0].owner,
        Some(OwnerView {
            locked: false,
            requests: vec![],
            routes: vec![],
        })
    );
}

#[test]
fn waiting_for_the_owner() {
    let mut c = coordinator(true, None, &["open"]);
    c.waiting = vec!["locked-net".into()];
    let vm = model(&status(true, Some(c), vec![]), &UiState::default());
    let names: Vec<_> = vm.networks.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["open", "locked-net"]);
    let w = &vm.networks[1];
    assert!(w.waiting);
    assert_eq!(w.summary, "Waiting for the owner to let you in");
    assert!(!w.can_invite && !w.can_leave && w.owner.is_none());
    assert!(w.members.is_empty());
    assert!(!vm.networks[0].waiting);
}

#[test]
fn host_offline_is_not_an_error() {
    let c = coordinator(false, Some("timed out"), &["lan-party"]);
    let link = status(
        true,
        Some(c.clone()),
        vec![
            peer("bob", 2, true, PathKind::Direct, &["lan-party"]),
            peer("carol", 3, false, PathKind::None, &["lan-party"]),
        ],
    );
    let vm = model(&link, &UiState::default());
    assert_eq!(vm.look, Look::Online);
    assert_eq!(
        vm.headline,
        "Host offline — existing connections keep working"
    );
    assert_eq!(vm.headline, HOST_OFFLINE);
    assert_eq!(vm.networks[0].summary, "1 of 2 online");

    // Nobody online right now: amber, same words.
    let link = status(
        true,
        Some(c.clone()),
        vec![peer("carol", 3, false, PathKind::None, &["lan-party"])],
    );
    let vm = model(&link, &UiState::default());
    assert_eq!(vm.look, Look::Connecting);
    assert_eq!(vm.headline, HOST_OFFLINE);

    // Only peers from the config file: they do not need the host, and the coordinator's
    // error stays.
    let link = status(
        true,
        Some(c),
        vec![peer("static", 7, true, PathKind::Direct, &[])],
    );
    let vm = model(&link, &UiState::default());
    assert_eq!(vm.look, Look::Problem);
    assert!(vm.headline.starts_with("Can't reach the coordinator"));

    // The service missing stays as it was.
    let vm = model(
        &Link::Missing(crate::client::NOT_RUNNING.into()),
        &UiState::default(),
    );
    assert_eq!(vm.look, Look::Problem);
    assert!(vm.headline.starts_with("Warren service isn't running"));
}
