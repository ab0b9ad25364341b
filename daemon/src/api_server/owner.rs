//! The network owner's requests (and listing and revoking invites): who WHO means is decided
//! here, among this host's peers and pending requests; what is allowed is the coordinator's
//! decision, and its refusals (e.g. "only the owner of network lan (alice) can …") reach the
//! user as they are.

use super::answer::{done, refuse, request};
use super::{status, ApiState};
use crate::control::Answer;
use warren_proto::api::{
    find_peer, ErrorCode, InviteInfo, JoinRequestInfo, Response, MIN_KEY_PREFIX,
};
use warren_proto::control::msg::ClientMsg;
use warren_proto::key::NodeKey;

pub async fn list_invites(state: &ApiState, network: String) -> Response {
    match request(state, ClientMsg::ListInvites { id: 0, network }).await {
        Ok(Answer::Invites(list)) => Response::Invites(
            list.into_iter()
                .map(|i| InviteInfo {
                    id: i.id,
                    network: i.network,
                    created_by: i.created_by,
                    created_at: i.created_at,
                    expires: i.expires,
                })
                .collect(),
        ),
        Ok(_) => refuse(
            ErrorCode::Internal,
            "unexpected answer from the coordinator",
        ),
        Err(e) => e.into(),
    }
}

/// The pending requests to join networks this host owns, as the coordinator last pushed them.
pub fn join_requests(state: &ApiState) -> Response {
    Response::JoinRequests(requests(state))
}

fn requests(state: &ApiState) -> Vec<JoinRequestInfo> {
    let v = state.control.view.lock().expect("control view lock");
    v.coordinators
        .iter()
        .flat_map(|c| c.requests.iter().cloned())
        .collect()
}

pub async fn answer_request(
    state: &ApiState,
    network: String,
    who: String,
    approve: bool,
) -> Response {
    let waiting: Vec<JoinRequestInfo> = requests(state)
        .into_iter()
        .filter(|r| r.network.eq_ignore_ascii_case(&network))
        .collect();
    let node = match find_request(&waiting, &who, &network) {
        Ok(k) => k,
        Err(e) => return refuse(ErrorCode::NotFound, e),
    };
    done(
        request(
            state,
            ClientMsg::AnswerRequest {
                id: 0,
                network,
                node,
                approve,
            },
        )
        .await,
    )
}

/// The peers that are members of `network` now.
fn members_of(state: &ApiState, network: &str) -> Vec<warren_proto::api::PeerStatus> {
    status::build(state)
        .peers
        .into_iter()
        .filter(|p| p.networks.iter().any(|n| n.eq_ignore_ascii_case(network)))
        .collect()
}

pub async fn remove_member(state: &ApiState, network: String, who: String, ban: bool) -> Response {
    let members = members_of(state, &network);
    let node = match find_peer(&members, &who) {
        Ok(p) => p.public_key,
        // A host still waiting can be removed (and banned) too.
        Err(e) => {
            let waiting: Vec<JoinRequestInfo> = requests(state)
                .into_iter()
                .filter(|r| r.network.eq_ignore_ascii_case(&network))
                .collect();
            match find_request(&waiting, &who, &network) {
                Ok(k) => k,
                Err(_) => {
                    return refuse(ErrorCode::NotFound, format!("{e} (in network {network})"))
                }
            }
        }
    };
    done(
        request(
            state,
            ClientMsg::RemoveMember {
                id: 0,
                network,
                node,
                ban,
            },
        )
        .await,
    )
}

/// Owner: approve (or withdraw) member `who`'s route `prefix` in `network`.
pub async fn approve_route(
    state: &ApiState,
    network: String,
    who: String,
    prefix: String,
    approve: bool,
) -> Response {
    let members = members_of(state, &network);
    let node = match find_peer(&members, &who) {
        Ok(p) => p.public_key,
        Err(e) => return refuse(ErrorCode::NotFound, format!("{e} (in network {network})")),
    };
    let prefix = match warren_daemon_core::subnet::route_prefix(&prefix) {
        Ok(p) => p,
        Err(e) => return refuse(ErrorCode::InvalidArgument, e),
    };
    done(
        request(
            state,
            ClientMsg::ApproveRoute {
                id: 0,
                network,
                node,
                prefix,
                approve,
            },
        )
        .await,
    )
}

/// The one request to join `network` that `who` names: a name (case-insensitive) or a key
/// prefix.
fn find_request(waiting: &[JoinRequestInfo], who: &str, network: &str) -> Result<NodeKey, String> {
    let who = who.trim();
    let by_name: Vec<_> = waiting
        .iter()
        .filter(|r| r.name.eq_ignore_ascii_case(who))
        .collect();
    let by_key: Vec<_> = waiting
        .iter()
        .filter(|r| who.len() >= MIN_KEY_PREFIX && r.public_key.to_string().starts_with(who))
        .collect();
    let found = if by_name.is_empty() { by_key } else { by_name };
    match found.as_slice() {
        [one] => Ok(one.public_key),
        [] if waiting.is_empty() => Err(format!(
            "no host waits to join {network} (`warren requests` lists who does)"
        )),
        [] => Err(format!(
            "no host called {who} waits to join {network} (waiting: {})",
            waiting
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        many => Err(format!(
            "{who} matches {} hosts waiting to join {network}: give more of the key",
            many.len()
        )),
    }
}
