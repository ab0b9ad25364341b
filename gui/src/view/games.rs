//! The "LAN games" panel: the discovery ports the daemon carries to friends (a game's "find
//! LAN games" broadcasts), their counters, and a switch per network. A plain function of the
//! daemon's last `games` answer, as in [`super::model`].

use super::{Link, Look};
use serde::Serialize;
use std::time::{Duration, Instant};
use warren_proto::api::games::{DiscoveryPort, GamesStatus, PortSource};
use warren_proto::api::{ApiError, ErrorCode};

/// How often the open panel asks the daemon again (the counters move while people play).
pub const GAMES_POLL: Duration = Duration::from_secs(2);

/// What an older Warren service, one without LAN games, is told (it does not know the
/// request: `bad_request`).
pub const GAMES_TOO_OLD: &str = "This Warren service can't share LAN games yet: update Warren \
                                 on this computer, then open this panel again";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GamesView {
    pub look: Look,
    /// "On — …", "Off: why", or what went wrong asking and what to do.
    pub headline: String,
    /// Not answered yet: a spinner.
    pub loading: bool,
    pub ports: Vec<GamePortView>,
    /// Shown instead of the ports when there are none.
    pub no_ports: Option<String>,
    pub networks: Vec<GameNetworkView>,
    /// Shown instead of the switches when there are no networks.
    pub no_networks: Option<String>,
    /// The groups this PC's games joined, which friends' announcements now reach.
    pub groups: Option<String>,
    /// The daemon answered: the switches and the Add form can be used.
    pub can_change: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GamePortView {
    /// What uses it, as the daemon names it.
    pub name: String,
    /// "Port 4445" or "Ports 27015–27020".
    pub port: String,
    /// "Broadcast" or "Multicast group 224.0.2.60".
    pub how: String,
    /// "12 sent · 30 received", and what was dropped.
    pub counters: String,
    /// Added by the user: it can be removed (presets are switched off per network).
    pub yours: bool,
    /// What Remove sends.
    pub spec: DiscoveryPort,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GameNetworkView {
    pub network: String,
    pub enabled: bool,
}

/// The daemon's error about a games request, in words with a next step: a service that does
/// not know the request answers with its parser's words, which say nothing to a person.
pub fn games_error_words(e: &ApiError) -> String {
    if e.code == ErrorCode::BadRequest {
        GAMES_TOO_OLD.to_string()
    } else {
        e.message.clone()
    }
}

/// Ask the daemon again: nothing asked yet, or the last question is older than
/// [`GAMES_POLL`], and none is under way.
pub fn games_due(last_asked: Option<Instant>, now: Instant, asking: bool) -> bool {
    !asking && last_asked.is_none_or(|t| now.saturating_duration_since(t) >= GAMES_POLL)
}

/// The panel for the daemon's last `games` answer (`None`: not asked yet); no panel without a
/// daemon (the headline says why already).
pub fn games(link: &Link, answer: Option<&Result<GamesStatus, ApiError>>) -> Option<GamesView> {
    if !matches!(link, Link::Live(_)) {
        return None;
    }
    let mut view = GamesView {
        look: Look::Connecting,
        headline: String::new(),
        loading: false,
        ports: Vec::new(),
        no_ports: None,
        networks: Vec::new(),
        no_networks: None,
        groups: None,
        can_change: false,
    };
    let g = match answer {
        None => {
            view.loading = true;
            view.headline = "Asking Warren which games it shares…".into();
            return Some(view);
        }
        Some(Err(e)) => {
            view.look = Look::Problem;
            view.headline = games_error_words(e);
            return Some(view);
        }
        Some(Ok(g)) => g,
    };
    view.can_change = true;
    (view.look, view.headline) = if g.active {
        (
            Look::Online,
            "On — games that look for others on the local network (LAN) find your friends' \
             games too"
                .into(),
        )
    } else {
        (
            Look::Off,
            match g.problem.as_deref().map(str::trim) {
                Some(p) if !p.is_empty() => format!("Off: {p}"),
                _ => "Off".into(),
            },
        )
    };
    view.ports = g
        .ports
        .iter()
        .map(|p| GamePortView {
            name: p.name.clone(),
            port: port_words(&p.port),
            how: match p.port.group {
                Some(ip) => format!("Multicast group {ip}"),
                None => "Broadcast".into(),
            },
            counters: counters(p.sent, p.received, p.dropped),
            yours: p.source == PortSource::User,
            spec: p.port.clone(),
        })
        .collect();
    if view.ports.is_empty() {
        view.no_ports = Some("No game ports yet: add the port your game uses below.".into());
    }
    view.networks = g
        .networks
        .iter()
        .map(|n| GameNetworkView {
            network: n.network.clone(),
            enabled: n.enabled,
        })
        .collect();
    if view.networks.is_empty() {
        view.no_networks = Some(
            "Host or join a network: LAN games are shared with the friends in your networks."
                .into(),
        );
    }
    if !g.mirrored_groups.is_empty() {
        let list: Vec<String> = g.mirrored_groups.iter().map(|ip| ip.to_string()).collect();
        view.groups = Some(format!(
            "Your games listen on {}: your friends' announcements there reach them too",
            list.join(", ")
        ));
    }
    Some(view)
}

fn port_words(p: &DiscoveryPort) -> String {
    if p.last > p.port {
        format!("Ports {}–{}", p.port, p.last)
    } else {
        format!("Port {}", p.port)
    }
}

fn counters(sent: u64, received: u64, dropped: u64) -> String {
    let mut out = format!("{sent} sent · {received} received");
    if dropped > 0 {
        out.push_str(&format!(" · {dropped} not passed on (too many at once)"));
    }
    out
}
