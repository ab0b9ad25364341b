//! What the window and the tray show for a given daemon state: a plain function, no toolkit.
//!
//! [`model`] turns the daemon's last pushed [`Status`] (or why there is none) and the window's
//! own state (the last action's outcome) into a [`ViewModel`] of words and flags. The egui code
//! only lays it out, so everything a person reads is tested here without a display.

use serde::Serialize;
use std::collections::BTreeMap;
use warren_proto::api::games::GamesStatus;
use warren_proto::api::{ApiError, CoordinatorStatus, PathKind, PeerStatus, Status, TunnelState};

mod games;
mod hosting;
pub use games::{
    games_due, games_error_words, GameNetworkView, GamePortView, GamesView, GAMES_POLL,
    GAMES_TOO_OLD,
};
pub use hosting::{
    duration_words, invite_rows, FirstRun, HostingView, InviteRow, NameTaken, OwnerView,
    RequestView,
};

/// What the GUI knows about the daemon.
#[derive(Debug, Clone, PartialEq)]
pub enum Link {
    /// Not heard from it yet (the first connection is under way).
    Connecting,
    /// Its socket could not be used; the message says what to do.
    Missing(String),
    /// The status it pushed last.
    Live(Box<Status>),
}

/// The window's own state that the daemon does not know.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UiState {
    /// The daemon's answer to the last action that failed ("Wrong password for lan-party"),
    /// or what the form lacks.
    pub error: Option<ApiError>,
    /// What the last action did ("Joined lan-party"), or a copy confirmation.
    pub notice: Option<String>,
    /// The first run's name step is done (the daemon took the name): host or join next.
    pub name_chosen: bool,
    /// The daemon's last answer to `games` (asked while the LAN games panel is open), or why
    /// there is none; `None`: not asked yet.
    pub games: Option<Result<GamesStatus, ApiError>>,
}

/// The tray icon's four looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Look {
    Off,
    Connecting,
    Online,
    Problem,
}

impl Look {
    /// The one colour of each look, shared by the tray icon and the window's dots.
    pub fn rgb(self) -> (u8, u8, u8) {
        match self {
            Look::Off => (0x90, 0x90, 0x90),
            Look::Connecting => (0xd8, 0x9a, 0x1c),
            Look::Online => (0x2e, 0xa0, 0x43),
            Look::Problem => (0xd0, 0x3a, 0x2f),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViewModel {
    pub look: Look,
    /// One line at the top: "Online", "Warren is off", "Warren service isn't running — …".
    pub headline: String,
    /// This host: name and overlay IP, once the daemon answered.
    pub me: Option<Me>,
    /// Whether the on/off switch is on (the tunnel is up), `None` without a daemon.
    pub power: Option<bool>,
    /// Whether this PC relays for friends who cannot connect directly, `None` without a
    /// daemon.
    pub relay_for_others: Option<bool>,
    /// The switch that lets friends reach this PC's home network (subnet routes), when it is
    /// on one.
    pub share_lan: Option<ShareLan>,
    pub networks: Vec<NetworkView>,
    /// Shown instead of the network list when it is empty (and there is a daemon).
    pub empty_hint: Option<String>,
    /// Create/Join/Leave make sense (a daemon that is on and has a coordinator).
    pub can_manage_networks: bool,
    /// "Host a network…" makes sense (there is a daemon).
    pub can_host: bool,
    /// A fresh install: ask for the name, then offer Host or Join.
    pub first_run: Option<FirstRun>,
    /// The coordinator refused this host's name: offer to pick another one.
    pub name_taken: Option<NameTaken>,
    /// The networks this PC hosts and whether friends can reach them.
    pub hosting: Option<HostingView>,
    /// The LAN games panel, while there is a daemon.
    pub games: Option<GamesView>,
    pub error: Option<String>,
    pub notice: Option<String>,
}

/// "Let friends reach this PC's home network": its first private IPv4 network, whether it is
/// offered, and what happens with it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShareLan {
    pub prefix: String,
    pub on: bool,
    /// Everything this PC advertises now (the switch changes only `prefix` in it).
    pub advertised: Vec<String>,
    /// "Waiting for the network owner's approval" / "Friends can reach it now".
    pub note: Option<String>,
}

impl ShareLan {
    /// The advertised list with the switch turned to `on`.
    pub fn with(&self, on: bool) -> Vec<String> {
        let mut l: Vec<String> = self
            .advertised
            .iter()
            .filter(|p| **p != self.prefix)
            .cloned()
            .collect();
        if on {
            l.push(self.prefix.clone());
        }
        l
    }
}

fn share_lan(status: &Status) -> Option<ShareLan> {
    let prefix = status.self_.lans.iter().find(|l| {
        l.parse::<ipnet::Ipv4Net>()
            .is_ok_and(|n| n.addr().is_private() && n.prefix_len() >= 16)
    })?;
    let on = status.self_.advertised_routes.contains(prefix);
    let note = on.then(|| {
        if status.self_.forwarding.contains(prefix) {
            "Friends in your networks can reach it now".to_string()
        } else {
            "Waiting for the network owner to approve it".to_string()
        }
    });
    Some(ShareLan {
        prefix: prefix.clone(),
        on,
        advertised: status.self_.advertised_routes.clone(),
        note,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Me {
    pub name: String,
    pub ip: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkView {
    pub name: String,
    /// "2 of 3 online".
    pub summary: String,
    pub members: Vec<MemberView>,
    /// Peers from the config file belong to no network; they are listed under a group that
    /// cannot be left.
    pub can_leave: bool,
    /// "Invite friends…" makes sense (a network this host is in).
    pub can_invite: bool,
    /// This host asked to join and the network is locked: the owner has to let it in.
    pub waiting: bool,
    /// The owner's controls, when this host owns the network.
    pub owner: Option<OwnerView>,
    /// [`HOST_OFFLINE`] while Warren is on and this network's coordinator is not connected:
    /// with several coordinators the others' networks are fine, so the note goes here.
    pub host_offline: Option<String>,
    /// Members' home networks reachable through them (subnet routes), for everyone to see:
    /// "nas: 192.168.1.0/24".
    pub routes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberView {
    pub name: String,
    /// The overlay IP, or "" when the daemon does not know it yet.
    pub ip: String,
    pub online: bool,
    /// "Direct connection", "Same network (LAN)", "Relayed (slower)", "Connecting…", "Offline".
    pub connection: String,
    /// "12 ms", while online and measured.
    pub rtt: Option<String>,
}

/// The group of peers configured by hand (no network).
pub const CONFIGURED_PEERS: &str = "Configured peers";

/// The headline while the coordinator is away but members are known: not an error. Also the
/// note of each network whose coordinator is away.
pub const HOST_OFFLINE: &str = "Host offline — existing connections keep working";

/// A locked network this host asked to join.
pub const WAITING: &str = "Waiting for the owner to let you in";

/// A member whose address another member (from another host's network) had first.
pub const ADDRESS_CLASH: &str = "Same address as someone in another network: one of them moves \
                                 to a new one in a moment";

/// Every coordinator whose networks this host is in. An older daemon fills only
/// `coordinator`, so that one alone stands for the list then.
pub fn coordinators(status: &Status) -> Vec<&CoordinatorStatus> {
    if status.coordinators.is_empty() {
        status.coordinator.iter().collect()
    } else {
        status.coordinators.iter().collect()
    }
}

pub fn model(link: &Link, ui: &UiState) -> ViewModel {
    let mut vm = ViewModel {
        look: Look::Connecting,
        headline: String::new(),
        me: None,
        power: None,
        relay_for_others: None,
        share_lan: None,
        networks: Vec::new(),
        empty_hint: None,
        can_manage_networks: false,
        can_host: false,
        first_run: None,
        name_taken: None,
        hosting: None,
        games: games::games(link, ui.games.as_ref()),
        error: ui.error.as_ref().map(|e| e.message.clone()),
        notice: ui.notice.clone(),
    };
    let status = match link {
        Link::Connecting => {
            vm.headline = "Connecting to the Warren service…".into();
            return vm;
        }
        Link::Missing(why) => {
            vm.look = Look::Problem;
            vm.headline = why.clone();
            return vm;
        }
        Link::Live(s) => s,
    };
    let coords = coordinators(status);
    // This host claims one address in every coordinator's networks, so the first one's lease
    // is the address.
    let ip = coords
        .first()
        .and_then(|c| c.overlay_ip)
        .unwrap_or(status.self_.overlay_ip);
    let name = coords
        .first()
        .map(|c| c.name.clone())
        .unwrap_or_else(|| status.self_.name.clone());
    vm.me = Some(Me {
        name,
        ip: ip.to_string(),
    });
    let up = status.state == TunnelState::Up;
    vm.power = Some(up);
    vm.relay_for_others = Some(status.self_.relay_for_others);
    vm.share_lan = share_lan(status);
    vm.can_host = true;
    vm.first_run = hosting::first_run(status, ui.name_chosen);
    vm.hosting = status.hosting.as_ref().map(hosting::hosting);
    vm.name_taken = hosting::name_taken(
        &coords,
        ui.error.as_ref(),
        &vm.me.as_ref().map(|m| m.name.clone()).unwrap_or_default(),
    );
    if vm.name_taken.is_some() && ui.error.as_ref().is_some_and(hosting::is_name_taken) {
        // The window offers the choice instead of the coordinator's sentence (which names
        // command-line flags).
        vm.error = None;
    }
    // Members of networks (not peers from the config file) keep their paths while the
    // coordinator is away.
    let network_peers: Vec<&PeerStatus> = status
        .peers
        .iter()
        .filter(|p| !p.networks.is_empty())
        .collect();
    let away: Vec<&CoordinatorStatus> = coords.iter().copied().filter(|c| !c.connected).collect();
    (vm.look, vm.headline) = if !up {
        (Look::Off, "Warren is off".into())
    } else if coords.is_empty() {
        if status.hosting.is_some() {
            (Look::Connecting, "Starting your network…".into())
        } else if status.peers.is_empty() {
            (
                Look::Off,
                "Not set up yet: host a network, or join one with an invite code".into(),
            )
        } else {
            (Look::Online, "Online (configured peers only)".into())
        }
    } else if away.is_empty() {
        (Look::Online, "Online".into())
    } else if vm.name_taken.is_some() {
        (
            Look::Problem,
            "Your name is already used in this network: pick another one in the window".into(),
        )
    } else if away.len() < coords.len() {
        // Some coordinators answer: the away ones' networks carry the offline note. One with
        // no network to carry it (e.g. just added) is named here, or it would go unseen.
        match away.iter().find(|c| c.networks.is_empty()) {
            Some(c) => (
                Look::Online,
                match &c.last_error {
                    Some(e) => format!("Online — can't reach the coordinator {}: {e}", c.address),
                    None => format!("Online — connecting to {}…", c.address),
                },
            ),
            None => (Look::Online, "Online".into()),
        }
    } else if !network_peers.is_empty() {
        (
            if network_peers.iter().any(|p| p.online) {
                Look::Online
            } else {
                Look::Connecting
            },
            HOST_OFFLINE.into(),
        )
    } else {
        let c = away[0];
        match &c.last_error {
            Some(e) => (
                Look::Problem,
                format!("Can't reach the coordinator {}: {e}", c.address),
            ),
            None => (Look::Connecting, format!("Connecting to {}…", c.address)),
        }
    };
    vm.can_manage_networks = up && !coords.is_empty();

    // Networks of all coordinators together in name order: which host runs one matters only
    // while that host is away. A name two coordinators share is one entry, as the daemon's
    // actions name networks by name alone.
    let mut joined: BTreeMap<&str, Vec<&CoordinatorStatus>> = BTreeMap::new();
    for c in &coords {
        for net in &c.networks {
            joined.entry(net.as_str()).or_default().push(c);
        }
    }
    for (net, hosts) in &joined {
        let members = status
            .peers
            .iter()
            .filter(|p| p.networks.iter().any(|n| n == net))
            .map(|p| member(p, up))
            .collect();
        let mut view = network(net, members, true);
        view.can_invite = true;
        view.owner = hosts.iter().find_map(|c| hosting::owner(c, net));
        view.routes = hosts
            .iter()
            .flat_map(|c| c.routes.iter())
            .filter(|r| r.network == *net && r.approved)
            .map(|r| format!("{}'s home network: {}", r.name, r.prefix))
            .collect();
        view.host_offline = (up && hosts.iter().any(|c| !c.connected)).then(|| HOST_OFFLINE.into());
        vm.networks.push(view);
    }
    let mut waiting: Vec<&str> = Vec::new();
    for net in coords.iter().flat_map(|c| &c.waiting) {
        if !joined.contains_key(net.as_str()) && !waiting.contains(&net.as_str()) {
            waiting.push(net);
        }
    }
    for net in waiting {
        let mut view = network(net, Vec::new(), false);
        view.waiting = true;
        view.summary = WAITING.into();
        vm.networks.push(view);
    }
    let configured: Vec<MemberView> = status
        .peers
        .iter()
        .filter(|p| p.networks.is_empty())
        .map(|p| member(p, up))
        .collect();
    if !configured.is_empty() {
        vm.networks
            .push(network(CONFIGURED_PEERS, configured, false));
    }
    if vm.networks.is_empty() && vm.first_run.is_none() {
        vm.empty_hint = Some(if vm.can_manage_networks {
            "You're not in any network yet. Host one on this PC, or join one with an \
             invite code (or its name and password)."
                .into()
        } else if !up {
            "Turn Warren on to see your networks.".into()
        } else {
            "No networks yet.".into()
        });
    }
    vm
}

fn network(name: &str, mut members: Vec<MemberView>, can_leave: bool) -> NetworkView {
    // Online first, then by name: the people you can play with now are on top.
    members.sort_by(|a, b| b.online.cmp(&a.online).then_with(|| a.name.cmp(&b.name)));
    let online = members.iter().filter(|m| m.online).count();
    let summary = match members.len() {
        0 => "Only you so far".to_string(),
        n => format!("{online} of {n} online"),
    };
    NetworkView {
        name: name.to_string(),
        summary,
        members,
        can_leave,
        can_invite: false,
        waiting: false,
        owner: None,
        host_offline: None,
        routes: Vec::new(),
    }
}

fn member(p: &PeerStatus, up: bool) -> MemberView {
    let online = up && p.online;
    let connection = if up && p.address_clash {
        ADDRESS_CLASH
    } else if !online {
        "Offline"
    } else {
        match p.path {
            PathKind::Direct => "Direct connection",
            PathKind::Lan => "Same network (LAN)",
            PathKind::Relay => "Relayed (slower)",
            PathKind::None => "Connecting…",
        }
    };
    MemberView {
        name: p.name.clone(),
        ip: p.overlay_ip.map(|ip| ip.to_string()).unwrap_or_default(),
        online,
        connection: connection.into(),
        rtt: p
            .rtt_ms
            .filter(|_| online && p.path != PathKind::None && !p.address_clash)
            .map(|ms| format!("{ms} ms")),
    }
}

#[cfg(test)]
mod tests;
