//! The tray's menu and icon as every platform shows them.

use super::*;
use crate::view::{model, Link, UiState};
use warren_proto::api::fixtures::{CoordinatorBuilder, PeerBuilder, StatusBuilder};
use warren_proto::api::{JoinRequestInfo, PathKind};
use warren_proto::key::NodeKey;

fn item(label: &str, cmd: TrayCmd) -> Entry {
    Entry::Item(label.into(), cmd)
}

fn text(label: &str) -> Entry {
    Entry::Text(label.into())
}

#[test]
fn without_the_service_the_menu_says_why_and_still_opens_and_quits() {
    let view = model(&Link::Missing("No service".into()), &UiState::default());
    assert_eq!(
        menu(&view),
        vec![
            text("No service"),
            Entry::Separator,
            item("Open Warren", TrayCmd::Open),
            item("Quit", TrayCmd::Quit),
        ]
    );
}

#[test]
fn networks_list_online_members_and_requests_to_answer() {
    let mut c = CoordinatorBuilder::new("coord.example:7443")
        .leased("100.64.0.1")
        .connected(true)
        .networks(&["mine", "quiet"])
        .build();
    c.owned = vec!["mine".into()];
    c.locked = vec!["mine".into()];
    c.requests = vec![JoinRequestInfo {
        network: "mine".into(),
        name: "bob".into(),
        public_key: NodeKey([9; 32]),
        asked_at: 1_700_000_000,
    }];
    let peer = |name: &str, last: u8, online: bool| {
        PeerBuilder::new(name)
            .key(last)
            .ip(&format!("100.64.0.{last}"))
            .online(online)
            .path(PathKind::Direct)
            .networks(&["mine", "quiet"])
            .build()
    };
    let status = StatusBuilder::new()
        .up(true)
        .name("alice")
        .ip("100.64.0.1")
        .coordinator(c)
        .peers([peer("dave", 4, true), peer("erin", 5, false)])
        .build();
    let view = model(&Link::Live(Box::new(status)), &UiState::default());
    let m = menu(&view);

    assert_eq!(m[0], text(&view.headline));
    assert_eq!(m[1], item("Turn Warren off", TrayCmd::Power(false)));
    assert_eq!(m[2], Entry::Separator);
    let Entry::Sub(label, members) = &m[3] else {
        panic!("a submenu per network, got {:?}", m[3]);
    };
    assert_eq!(label, &format!("mine  ({})", view.networks[0].summary));
    let dave = &view.networks[0].members[0];
    assert_eq!(
        members,
        &vec![
            text(&format!("dave  100.64.0.4  ({})", dave.connection)),
            item("bob asks to join — open Warren to answer", TrayCmd::Open),
        ],
        "online members only, then who asks"
    );
    assert!(matches!(&m[4], Entry::Sub(l, _) if l.starts_with("quiet  (")));
    assert_eq!(
        m[5..],
        [
            Entry::Separator,
            item("Copy my IP (100.64.0.1)", TrayCmd::CopyIp),
            item("Host a network…", TrayCmd::Host),
            item("Open Warren", TrayCmd::Open),
            item("Quit", TrayCmd::Quit),
        ]
    );

    let off = StatusBuilder::new().up(false).name("alice").build();
    let view = model(&Link::Live(Box::new(off)), &UiState::default());
    assert_eq!(menu(&view)[1], item("Turn Warren on", TrayCmd::Power(true)));
}

#[test]
fn a_network_with_nobody_online_says_so() {
    let c = CoordinatorBuilder::new("coord.example:7443")
        .leased("100.64.0.1")
        .connected(true)
        .networks(&["lonely"])
        .build();
    let status = StatusBuilder::new().up(true).coordinator(c).build();
    let view = model(&Link::Live(Box::new(status)), &UiState::default());
    let subs: Vec<Vec<Entry>> = menu(&view)
        .into_iter()
        .filter_map(|e| match e {
            Entry::Sub(_, m) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(subs, vec![vec![text("Nobody else online")]]);
}

#[test]
fn the_dot_is_the_looks_colour_with_clear_corners() {
    let px = dot_rgba(Look::Online, 22);
    assert_eq!(px.len(), 22 * 22 * 4);
    assert_eq!(px[3], 0, "corner transparent");
    let mid = (11 * 22 + 11) * 4;
    assert_eq!(&px[mid..mid + 4], &[0x2e, 0xa0, 0x43, 255]);
    assert_ne!(dot_rgba(Look::Problem, 22)[mid..mid + 3], px[mid..mid + 3]);
}
