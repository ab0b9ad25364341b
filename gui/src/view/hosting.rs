//! The parts of the view for issue 15: the first run (name, then host or join), a name that
//! another member already uses, the networks this PC hosts and how friends reach them, the
//! owner's controls, and the invite list. Plain functions of the daemon's status, as in
//! [`super::model`].

use super::Look;
use serde::Serialize;
use warren_proto::api::{
    ApiError, CoordinatorStatus, ErrorCode, HostingStatus, InviteInfo, JoinRequestInfo, ReachState,
    Status,
};

/// The first run: the daemon has neither a coordinator nor a network of its own.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum FirstRun {
    /// Step 1: the name others will see, prefilled with this user's or machine's name.
    AskName { question: String, suggested: String },
    /// Step 2: host a network here, or join a friend's with an invite code.
    HostOrJoin { text: String },
}

/// The coordinator refused this host's name: another member of the network has it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NameTaken {
    pub name: String,
    /// What the window says, with the next step.
    pub message: String,
    /// A free-looking name to start from.
    pub suggestion: String,
}

/// The coordinator this PC runs for its own networks, and how friends reach it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostingView {
    pub look: Look,
    /// "Reachable from the internet at 203.0.113.7:7443", or why not and what to do.
    pub headline: String,
    /// Where friends on the same network (LAN) connect, when known.
    pub lan: Option<String>,
    pub networks: Vec<String>,
}

/// The owner's controls of one network.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OwnerView {
    /// New members wait for the owner's approval.
    pub locked: bool,
    pub requests: Vec<RequestView>,
    /// Members' home networks to let the others reach (subnet routes).
    pub routes: Vec<RouteView>,
}

/// A member's LAN that the owner may let the others reach.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteView {
    /// A key prefix of the member (names may clash).
    pub who: String,
    pub prefix: String,
    pub approved: bool,
    /// "bob's home network 192.168.1.0/24: members can reach it".
    pub text: String,
}

/// Someone asking to join a locked network.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestView {
    pub name: String,
    /// How the daemon is told whom Approve/Deny means: a prefix of the key (names may clash).
    pub who: String,
    /// "bob asks to join".
    pub text: String,
}

/// One invite in the Invite friends dialog.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InviteRow {
    /// What Revoke sends.
    pub id: String,
    /// "Made by alice · expires in 23 hours" / "… · until you revoke it".
    pub text: String,
}

/// The coordinator refused the name because another member has it.
pub fn is_name_taken(e: &ApiError) -> bool {
    e.code == ErrorCode::NameTaken
}

/// The refused name, as the coordinator's sentence "the name X is already used …" gives it
/// (the name only: whether it is that refusal, the code says).
fn taken_name(message: &str) -> Option<String> {
    if let Some(i) = message.find("is already called ") {
        let rest = &message[i + "is already called ".len()..];
        return Some(rest.split(':').next()?.trim().to_string());
    }
    let rest = &message[message.find("the name ")? + "the name ".len()..];
    let name = &rest[..rest.find(" is already used")?];
    Some(name.to_string())
}

pub(super) fn first_run(status: &Status, name_chosen: bool) -> Option<FirstRun> {
    if !super::coordinators(status).is_empty() || status.hosting.is_some() {
        return None;
    }
    Some(if name_chosen {
        FirstRun::HostOrJoin {
            text: "Host a network on this PC and invite your friends, or join a friend's \
                   network with the invite code they sent you."
                .into(),
        }
    } else {
        FirstRun::AskName {
            question: "Welcome to Warren! What name should your friends see?".into(),
            suggested: status.self_.name.clone(),
        }
    })
}

/// The name-taken choice, from the last action's error or the coordinator's last refusal.
pub(super) fn name_taken(
    coordinators: &[&CoordinatorStatus],
    action_error: Option<&ApiError>,
    my_name: &str,
) -> Option<NameTaken> {
    // The action's refusal says so by its code; the connection's, by the coordinator's flag.
    let flagged = coordinators
        .iter()
        .find(|c| c.name_taken && !c.connected)
        .map(|c| c.last_error.as_deref().unwrap_or_default());
    let refusal = action_error
        .filter(|e| is_name_taken(e))
        .map(|e| e.message.as_str())
        .or(flagged)?;
    let name = taken_name(refusal).unwrap_or_else(|| my_name.to_string());
    Some(NameTaken {
        message: format!(
            "Someone in this network already uses the name \"{name}\". Pick another name \
             and try again."
        ),
        suggestion: format!("{name}-2"),
        name,
    })
}

pub(super) fn hosting(h: &HostingStatus) -> HostingView {
    let r = &h.reachability;
    let said = |fallback: &str| {
        if r.message.trim().is_empty() {
            fallback.to_string()
        } else {
            r.message.clone()
        }
    };
    let (look, headline) = if !h.running {
        (
            Look::Connecting,
            "Starting the host service on this PC…".to_string(),
        )
    } else {
        match (r.state, r.public) {
            (ReachState::Reachable, Some(public)) => (
                Look::Online,
                format!("Reachable from the internet at {public}"),
            ),
            (ReachState::Reachable, None) => (Look::Online, said("Reachable from the internet")),
            (ReachState::Checking, _) => (
                Look::Connecting,
                said("Checking whether friends on the internet can reach this PC…"),
            ),
            (ReachState::LanOnly, _) => (
                Look::Connecting,
                said(
                    "Only friends on your own network can join: your router did not open \
                     a port for Warren",
                ),
            ),
        }
    };
    let lan = (!r.lan.is_empty()).then(|| {
        let addrs: Vec<String> = r.lan.iter().map(|a| a.to_string()).collect();
        format!(
            "Friends on your network (LAN) reach it at {}",
            addrs.join(", ")
        )
    });
    HostingView {
        look,
        headline,
        lan,
        networks: h.networks.clone(),
    }
}

/// The owner's controls of `network`, when this host owns it.
pub(super) fn owner(c: &CoordinatorStatus, network: &str) -> Option<OwnerView> {
    if !c.owned.iter().any(|n| n == network) {
        return None;
    }
    Some(OwnerView {
        locked: c.locked.iter().any(|n| n == network),
        requests: c
            .requests
            .iter()
            .filter(|r| r.network == network)
            .map(request)
            .collect(),
        routes: c
            .routes
            .iter()
            .filter(|r| r.network == network)
            .map(|r| {
                let key = r.public_key.to_string();
                RouteView {
                    who: key[..12.min(key.len())].to_string(),
                    prefix: r.prefix.clone(),
                    approved: r.approved,
                    text: if r.approved {
                        format!(
                            "{}'s home network {}: members can reach it",
                            r.name, r.prefix
                        )
                    } else {
                        format!(
                            "{} offers its home network {} to the members",
                            r.name, r.prefix
                        )
                    },
                }
            })
            .collect(),
    })
}

fn request(r: &JoinRequestInfo) -> RequestView {
    let key = r.public_key.to_string();
    RequestView {
        name: r.name.clone(),
        who: key[..12.min(key.len())].to_string(),
        text: format!("{} asks to join", r.name),
    }
}

/// The invites of one network as the Invite friends dialog lists them, soonest to expire
/// last; `now` in Unix seconds.
pub fn invite_rows(invites: &[InviteInfo], now: u64) -> Vec<InviteRow> {
    let mut rows: Vec<&InviteInfo> = invites.iter().collect();
    rows.sort_by_key(|i| std::cmp::Reverse(i.created_at));
    rows.into_iter()
        .map(|i| InviteRow {
            id: i.id.clone(),
            text: format!(
                "Made by {} · {}",
                i.created_by,
                match i.expires {
                    None => "until you revoke it".to_string(),
                    Some(t) if t <= now => "expired".to_string(),
                    Some(t) => format!("expires in {}", duration_words(t - now)),
                }
            ),
        })
        .collect()
}

/// "45 minutes", "23 hours", "6 days" (rounded down, at least "1 minute").
pub fn duration_words(secs: u64) -> String {
    let (n, unit) = if secs >= 86400 {
        (secs / 86400, "day")
    } else if secs >= 3600 {
        (secs / 3600, "hour")
    } else {
        ((secs / 60).max(1), "minute")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}
