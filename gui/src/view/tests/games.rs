//! The LAN games panel.

use super::*;
use warren_proto::api::fixtures::GamesBuilder;
use warren_proto::api::games::{GamesStatus, PortSource};

fn games_status() -> GamesStatus {
    GamesBuilder::new()
        .port(
            "Minecraft Java LAN games",
            (4445, 4445),
            Some("224.0.2.60"),
            PortSource::Preset,
            [12, 30, 0],
        )
        .port("My game", (50000, 50010), None, PortSource::User, [3, 0, 2])
        .network("lan-party", true)
        .network("work", false)
        .mirrors("224.0.2.60")
        .build()
}

fn games_link() -> Link {
    status(true, Some(coordinator(true, None, &["lan-party"])), vec![])
}

#[test]
fn lan_games_ports_counters_and_switches() {
    let ui = UiState {
        games: Some(Ok(games_status())),
        ..Default::default()
    };
    let g = model(&games_link(), &ui).games.unwrap();
    assert_eq!(g.look, Look::Online);
    assert!(g.headline.starts_with("On — games that look for others"));
    assert!(g.can_change && !g.loading);
    let rows: Vec<(&str, &str, &str, &str, bool)> = g
        .ports
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.port.as_str(),
                p.how.as_str(),
                p.counters.as_str(),
                p.yours,
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                "Minecraft Java LAN games",
                "Port 4445",
                "Multicast group 224.0.2.60",
                "12 sent · 30 received",
                false
            ),
            (
                "My game",
                "Ports 50000–50010",
                "Broadcast",
                "3 sent · 0 received · 2 not passed on (too many at once)",
                true
            ),
        ]
    );
    // Remove sends the port as the daemon listed it.
    assert_eq!(g.ports[1].spec, games_status().ports[1].port);
    assert_eq!(
        g.networks,
        [
            GameNetworkView {
                network: "lan-party".into(),
                enabled: true
            },
            GameNetworkView {
                network: "work".into(),
                enabled: false
            }
        ]
    );
    assert_eq!(g.no_ports, None);
    assert_eq!(g.no_networks, None);
    assert!(g.groups.unwrap().contains("224.0.2.60"));
}

#[test]
fn lan_games_off_empty_loading_and_failing() {
    let mut answer = games_status();
    answer.active = false;
    answer.problem = Some("Warren is off".into());
    answer.ports.clear();
    answer.networks.clear();
    answer.mirrored_groups.clear();
    let ui = |games| UiState {
        games,
        ..Default::default()
    };
    let g = model(&games_link(), &ui(Some(Ok(answer)))).games.unwrap();
    assert_eq!(
        (g.look, g.headline.as_str()),
        (Look::Off, "Off: Warren is off")
    );
    assert!(g.no_ports.unwrap().contains("add the port your game uses"));
    assert!(g.no_networks.unwrap().starts_with("Host or join a network"));
    assert_eq!(g.groups, None);

    // Not answered yet: a spinner, nothing to change.
    let g = model(&games_link(), &ui(None)).games.unwrap();
    assert!(g.loading && !g.can_change);

    // An older service does not know the request: update, in words.
    let unknown = ApiError::new(
        ErrorCode::BadRequest,
        "bad request: unknown variant `games`, expected one of `status`, `version`",
    );
    let g = model(&games_link(), &ui(Some(Err(unknown)))).games.unwrap();
    assert_eq!(
        (g.look, g.headline.as_str()),
        (Look::Problem, GAMES_TOO_OLD)
    );
    assert!(!g.can_change);
    // The service's own plain words are shown as they are, whatever they say.
    for (code, said) in [
        (ErrorCode::NotRunning, crate::client::NOT_RUNNING),
        (
            ErrorCode::Other,
            "game discovery: unknown variant of the day",
        ),
    ] {
        let g = model(&games_link(), &ui(Some(Err(ApiError::new(code, said)))))
            .games
            .unwrap();
        assert_eq!(g.headline, said);
    }

    // No daemon: no panel (the headline says why).
    let gone = Link::Missing(crate::client::NOT_RUNNING.into());
    assert_eq!(model(&gone, &ui(Some(Ok(games_status())))).games, None);
}

#[test]
fn lan_games_asks_at_most_every_two_seconds_one_at_a_time() {
    let t0 = std::time::Instant::now();
    assert!(games_due(None, t0, false));
    assert!(!games_due(None, t0, true));
    assert!(!games_due(Some(t0), t0 + GAMES_POLL / 2, false));
    assert!(games_due(Some(t0), t0 + GAMES_POLL, false));
    assert!(!games_due(Some(t0), t0 + GAMES_POLL * 3, true));
}
