//! One request, one response: what each local API call does.

use super::{netcheck, owner, status, ApiState};
use crate::control::{Answer, Command, CoordinatorSettings, Reply};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;
use warren_proto::api::{
    find_peer, ApiError, ErrorCode, PingReply, Request, Response, PING_TIMEOUT_MS,
};
use warren_proto::control::msg::ClientMsg;
use warren_proto::invite::{self, Invite};
use warren_proto::key::NodeKey;

/// More addresses for `warren up`'s coordinator: only with an address, as many as an invite
/// carries, none repeated.
fn check_alternates(with_address: bool, alternates: &[String]) -> Result<(), String> {
    if alternates.is_empty() {
        return Ok(());
    }
    if !with_address {
        return Err(
            "more coordinator addresses need the first one and its key: give \
                    --coordinator HOST:PORT (repeated) and --coordinator-key KEY"
                .into(),
        );
    }
    let most = warren_proto::invite::MAX_ALTERNATES + 1;
    if alternates.len() + 1 > most {
        return Err(format!(
            "at most {most} --coordinator addresses (an invite carries no more); leave out \
             {}",
            alternates.len() + 1 - most
        ));
    }
    Ok(())
}

/// Longer than a connection attempt (10 s), so `warren up` reports how that went.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest invite the coordinator grants; asking for more is refused here with a reason.
const MAX_INVITE_TTL: u64 = 30 * 24 * 3600;

pub async fn answer(req: Request, state: &ApiState) -> Response {
    match req {
        Request::Status => Response::Status(Box::new(status::build(state))),
        Request::Version => Response::Version {
            daemon: env!("CARGO_PKG_VERSION").to_string(),
        },
        Request::Up {
            coordinator,
            coordinator_key,
            name,
            alternates,
        } => {
            if let Err(e) = check_alternates(coordinator.is_some(), &alternates) {
                return refuse(ErrorCode::InvalidArgument, e);
            }
            if let Some(n) = &name {
                match super::set_name::remember(state, n) {
                    Ok(_) => {}
                    Err(e) => return refuse(ErrorCode::InvalidName, e),
                }
            }
            let name = name.map(|_| current_name(state));
            let settings = match (coordinator, coordinator_key) {
                (Some(address), Some(public_key)) => Some(CoordinatorSettings {
                    address,
                    public_key,
                    name: name.unwrap_or_else(|| current_name(state)),
                    alternates,
                }),
                (None, None) if name.is_some() => {
                    // A new name alone: reconnect to the remembered coordinator under it.
                    match remembered(state) {
                        Some(c) => Some(CoordinatorSettings {
                            name: name.expect("checked"),
                            ..c
                        }),
                        None => return refuse(ErrorCode::InvalidArgument, "--name needs a coordinator: give --coordinator and --coordinator-key too"),
                    }
                }
                // A name chosen while Warren was off: reconnect under it.
                (None, None) => super::set_name::rename(state),
                _ => {
                    return refuse(
                        ErrorCode::InvalidArgument,
                        "give both --coordinator HOST:PORT and --coordinator-key KEY, or neither",
                    )
                }
            };
            done(ask(state, |r| Command::Up(settings, r)).await)
        }
        Request::Down => done(ask(state, Command::Down).await),
        Request::Logout { force } => done(
            ask(state, |reply| Command::Logout {
                force,
                to: None,
                reply,
            })
            .await,
        ),
        Request::CreateNetwork { name, password } => done(
            request(
                state,
                ClientMsg::CreateNetwork {
                    id: 0,
                    name,
                    password,
                },
            )
            .await,
        ),
        Request::JoinNetwork { name, password } => done(
            request(
                state,
                ClientMsg::JoinNetwork {
                    id: 0,
                    name,
                    password,
                },
            )
            .await,
        ),
        Request::LeaveNetwork { name } => {
            done(request(state, ClientMsg::LeaveNetwork { id: 0, name }).await)
        }
        Request::JoinInvite { invite, name } => {
            if let Some(n) = &name {
                if let Err(e) = super::set_name::remember(state, n) {
                    return refuse(ErrorCode::InvalidName, e);
                }
            }
            let name = name.map(|_| current_name(state));
            join_invite(state, &invite, name).await
        }
        Request::CreateInvite { network, ttl_secs } => {
            create_invite(state, network, ttl_secs).await
        }
        Request::Games => Response::Games(state.games.status()),
        Request::AddGamePort { port } => text(state.games.add(port)),
        Request::RemoveGamePort { port } => text(state.games.remove(port)),
        Request::SetGameNetwork { network, enabled } => {
            text(state.games.set_network(&network, enabled))
        }
        Request::Ping { peer } => ping(state, &peer).await,
        Request::Check { peer, port, proto } => {
            super::check::check(state, &peer, port, proto).await
        }
        Request::Wake { mac, via } => super::wake::wake(state, mac, &via),
        Request::Netcheck => netcheck::run(state).await,
        Request::Subscribe => refuse(
            ErrorCode::BadRequest,
            "subscribe must be the first request on its connection",
        ),
        Request::ListInvites { network } => owner::list_invites(state, network).await,
        Request::RevokeInvite { network, invite } => done(
            request(
                state,
                ClientMsg::RevokeInvite {
                    id: 0,
                    network,
                    invite,
                },
            )
            .await,
        ),
        Request::RenameNetwork { network, new_name } => done(
            request(
                state,
                ClientMsg::RenameNetwork {
                    id: 0,
                    network,
                    new_name,
                },
            )
            .await,
        ),
        Request::SetPassword { network, password } => done(
            request(
                state,
                ClientMsg::SetPassword {
                    id: 0,
                    network,
                    password,
                },
            )
            .await,
        ),
        Request::LockNetwork { network, locked } => done(
            request(
                state,
                ClientMsg::LockNetwork {
                    id: 0,
                    network,
                    locked,
                },
            )
            .await,
        ),
        Request::JoinRequests => owner::join_requests(state),
        Request::AnswerRequest {
            network,
            who,
            approve,
        } => owner::answer_request(state, network, who, approve).await,
        Request::RemoveMember { network, who, ban } => {
            owner::remove_member(state, network, who, ban).await
        }
        Request::DeleteNetwork { network } => done(super::host::delete(state, network).await),
        Request::Host { network, password } => {
            done(super::host::host(state, &network, password).await)
        }
        Request::SetRelay { on } => set_relay(state, on),
        Request::SetAdvertisedRoutes { routes } => set_advertised_routes(state, &routes),
        Request::ApproveRoute {
            network,
            who,
            prefix,
            approve,
        } => owner::approve_route(state, network, who, prefix, approve).await,
        // Answered by `set_name` and `access` (they need the caller or their own state).
        Request::SetName { .. } | Request::SetOperator { .. } | Request::Operators => {
            refuse(ErrorCode::Internal, "not answered here")
        }
    }
}

/// `SetAdvertisedRoutes`: kept, and told to the coordinators at once.
fn set_advertised_routes(state: &ApiState, routes: &[String]) -> Response {
    match state.subnets.set_advertised(routes) {
        Ok(list) if list.is_empty() => Response::Done {
            message: "this host advertises no routes now".into(),
        },
        Ok(list) => Response::Done {
            message: format!(
                "this host now offers to route {} for its networks; each network's owner \
                 approves them (`warren routes approve NETWORK {} PREFIX`), then its members \
                 reach those addresses through this host",
                list.join(", "),
                state.names.chosen().unwrap_or_else(|| "THIS-HOST".into())
            ),
        },
        Err(e) => refuse(ErrorCode::InvalidArgument, e),
    }
}

/// `SetRelay`: the choice is kept; the coordinators hear of it with our endpoints.
fn set_relay(state: &ApiState, on: bool) -> Response {
    if let Err(e) = state.relay_offer.set(on, state.hosting.hosts_any()) {
        return refuse(
            ErrorCode::Internal,
            format!(
            "{e:#}; check that the disk is not full and that warrend can write its state directory"
        ),
        );
    }
    let message = if on {
        "this PC now relays for friends in your networks who cannot connect to each other \
         directly; they use it when they can reach this PC (a public address, or a port the \
         router forwards)"
    } else {
        "this PC no longer relays for others; friends who cannot connect directly use another \
         relay"
    };
    Response::Done {
        message: message.into(),
    }
}

/// An error with no code more specific than `other`.
pub(super) fn error(message: impl Into<String>) -> Response {
    refuse(ErrorCode::Other, message)
}

pub(super) fn refuse(code: ErrorCode, message: impl Into<String>) -> Response {
    ApiError::new(code, message).into()
}

pub(super) fn done(r: Result<Answer, ApiError>) -> Response {
    match r {
        Ok(Answer::Done(message)) => Response::Done { message },
        Ok(Answer::Invite { network, .. }) => Response::Done {
            message: format!("invite for {network} made"),
        },
        Ok(Answer::Invites(list)) => Response::Done {
            message: format!("{} invites", list.len()),
        },
        Err(e) => e.into(),
    }
}

/// The first coordinator this host follows, as settings to connect to it again.
pub(super) fn remembered(state: &ApiState) -> Option<CoordinatorSettings> {
    let v = state.control.view.lock().expect("control view lock");
    v.settings.first().cloned()
}

/// The coordinator that has `network` for this host, else the first.
pub(super) fn settings_for(state: &ApiState, network: &str) -> Option<CoordinatorSettings> {
    let v = state.control.view.lock().expect("control view lock");
    let has = |c: &warren_proto::api::CoordinatorStatus| {
        c.networks
            .iter()
            .chain(&c.owned)
            .any(|n| n.eq_ignore_ascii_case(network))
    };
    let key = v.coordinators.iter().find(|c| has(c)).map(|c| c.public_key);
    match key {
        Some(k) => v.settings.iter().find(|s| s.public_key == k).cloned(),
        None => v.settings.first().cloned(),
    }
}

/// The coordinator with this key, when this host follows it.
pub(super) fn remembered_key(state: &ApiState, key: &NodeKey) -> Option<CoordinatorSettings> {
    let v = state.control.view.lock().expect("control view lock");
    v.settings.iter().find(|s| s.public_key == *key).cloned()
}

/// The name chosen on this host, else the one it uses with its coordinator, else the config's
/// or the host's.
pub(super) fn current_name(state: &ApiState) -> String {
    if let Some(n) = state.names.chosen() {
        return n;
    }
    let v = state.control.view.lock().expect("control view lock");
    v.coordinator
        .as_ref()
        .map(|c| c.name.clone())
        .unwrap_or_else(|| state.names.current())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Hands a command to the control task and waits for its answer.
pub(super) async fn ask(
    state: &ApiState,
    make: impl FnOnce(Reply) -> Command,
) -> Result<Answer, ApiError> {
    let (tx, rx) = oneshot::channel();
    let asked = async {
        let stopped = "the daemon's coordinator task has stopped";
        if state.control.commands.send(make(tx)).await.is_err() {
            return Err(ApiError::new(ErrorCode::Internal, stopped));
        }
        let dropped = "the coordinator task dropped the request";
        rx.await
            .unwrap_or_else(|_| Err(ApiError::new(ErrorCode::Internal, dropped)))
    };
    let late = "no answer from the coordinator in time";
    tokio::time::timeout(ANSWER_TIMEOUT, asked)
        .await
        .unwrap_or_else(|_| Err(ApiError::new(ErrorCode::TimedOut, late)))
}

/// A request for the coordinator that has the network it names (else the first).
pub(super) async fn request(state: &ApiState, msg: ClientMsg) -> Result<Answer, ApiError> {
    ask(state, |reply| Command::Request {
        msg,
        to: None,
        reply,
    })
    .await
}

/// A request for the coordinator with this key.
pub(super) async fn request_to(
    state: &ApiState,
    key: NodeKey,
    msg: ClientMsg,
) -> Result<Answer, ApiError> {
    ask(state, |reply| Command::Request {
        msg,
        to: Some(key),
        reply,
    })
    .await
}

/// Connects to the invite's coordinator unless already connected to it, then joins.
async fn join_invite(state: &ApiState, code: &str, name: Option<String>) -> Response {
    let inv = match Invite::decode(code) {
        Ok(i) => i,
        Err(e) => return refuse(ErrorCode::InviteInvalid, e.to_string()),
    };
    // The coordinator has the last word; this only spares a round trip for a clearly old code.
    if inv.expires < unix_now() {
        return refuse(
            ErrorCode::InviteExpired,
            format!(
                "this invite for {} expired {}; ask a member for a new one (`warren invite {}`)",
                inv.network,
                ago(unix_now() - inv.expires),
                inv.network
            ),
        );
    }
    // The key names the coordinator; its addresses may differ (a host's own PC reaches the
    // coordinator it hosts through loopback, its friends at the router's address).
    let key = inv.coordinator_key;
    let known = remembered_key(state, &key);
    let connected = {
        let v = state.control.view.lock().expect("control view lock");
        v.by_key(&key).is_some_and(|c| c.connected)
    };
    let added = known.is_none();
    let up = state.dataplane.node().is_up();
    if !connected || !up || name.is_some() {
        let settings = match known {
            // A coordinator we know (our own, say): the addresses that work from here first,
            // then the invite's (its router may have a new public address).
            Some(known) => {
                let mut alternates = known.alternates.clone();
                for a in std::iter::once(&inv.coordinator).chain(&inv.alternates) {
                    if *a != known.address && !alternates.contains(a) {
                        alternates.push(a.clone());
                    }
                }
                alternates.truncate(warren_proto::invite::MAX_ALTERNATES);
                CoordinatorSettings {
                    name: name.unwrap_or_else(|| current_name(state)),
                    alternates,
                    ..known
                }
            }
            None => CoordinatorSettings {
                address: inv.coordinator.clone(),
                public_key: key,
                name: name.unwrap_or_else(|| current_name(state)),
                alternates: inv.alternates.clone(),
            },
        };
        if let Err(e) = ask(state, |r| Command::Up(Some(settings), r)).await {
            return forget_if_added(state, added, key, e).await.into();
        }
    }
    let joined = request_to(
        state,
        key,
        ClientMsg::JoinInvite {
            id: 0,
            network: inv.network.clone(),
            secret: inv.secret_text(),
        },
    )
    .await;
    match joined {
        Err(e) => forget_if_added(state, added, key, e).await.into(),
        ok => done(ok),
    }
}

/// An invite that did not work leaves no coordinator behind that this host did not follow
/// before; the networks of the others are untouched.
async fn forget_if_added(state: &ApiState, added: bool, key: NodeKey, e: ApiError) -> ApiError {
    if added {
        let _ = ask(state, |reply| Command::Forget { to: key, reply }).await;
    }
    e
}

fn text(r: Result<String, String>) -> Response {
    match r {
        Ok(message) => Response::Done { message },
        Err(message) => error(message),
    }
}

fn ago(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs} s ago"),
        120..=7199 => format!("{} min ago", secs / 60),
        7200..=172_799 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86400),
    }
}

async fn create_invite(state: &ApiState, network: String, ttl_secs: u64) -> Response {
    // 0: until revoked (`warren invite NET --revoke ID`).
    if ttl_secs > MAX_INVITE_TTL {
        return refuse(
            ErrorCode::InvalidArgument,
            "an invite lasts from 1 second to 30 days, or until revoked (--expires never)",
        );
    }
    let Some(c) = settings_for(state, &network) else {
        return refuse(
            ErrorCode::CoordinatorUnreachable,
            "not connected to a coordinator: run `warren up --coordinator HOST:PORT \
             --coordinator-key KEY` first",
        );
    };
    let answer = request(
        state,
        ClientMsg::CreateInvite {
            id: 0,
            network,
            ttl_secs,
        },
    )
    .await;
    match answer {
        Ok(Answer::Invite {
            network,
            secret,
            expires,
        }) => {
            let Some(secret) = invite::parse_secret(&secret) else {
                return refuse(
                    ErrorCode::Internal,
                    "the coordinator sent an unreadable invite secret",
                );
            };
            // A network this PC hosts is reached at the router's address and the LAN's, not
            // at the loopback address this host itself uses.
            let hosted = state.hosting.status().map(|h| h.public_key) == Some(c.public_key);
            let (coordinator, alternates) = if hosted {
                match state.hosting.invite_addresses().await {
                    Ok(a) => a,
                    Err(e) => return error(e),
                }
            } else {
                (c.address, c.alternates)
            };
            let code = Invite {
                coordinator,
                alternates,
                coordinator_key: c.public_key,
                network: network.clone(),
                secret,
                expires,
            }
            .encode();
            match code {
                Ok(code) => Response::Invite {
                    code,
                    network,
                    expires,
                },
                Err(e) => refuse(ErrorCode::Internal, e.to_string()),
            }
        }
        Ok(Answer::Done(m)) => refuse(
            ErrorCode::Internal,
            format!("unexpected answer from the coordinator: {m}"),
        ),
        Ok(Answer::Invites(_)) => refuse(
            ErrorCode::Internal,
            "unexpected answer from the coordinator",
        ),
        Err(e) => e.into(),
    }
}

/// Why a ping could not be sent, with what to do about it.
pub(super) fn ping_error_text(e: &warren_daemon_core::node::PingError) -> &'static str {
    use warren_daemon_core::node::PingError;
    match e {
        PingError::Down => "the tunnel is down (`warren up` turns it on)",
        PingError::UnknownPeer => "no such peer (`warren status` lists them)",
        PingError::NoPath => "no path to this peer yet (is it online? `warren status` shows it)",
        PingError::NoDisco => "path messages are off for this peer's key (it was added by hand)",
    }
}

/// One disco ping on the peer's current path; the data plane threads carry it and its pong.
async fn ping(state: &ApiState, query: &str) -> Response {
    let peers = status::build(state).peers;
    let peer = match find_peer(&peers, query) {
        Ok(p) => p.clone(),
        Err(e) => return refuse(ErrorCode::NotFound, e),
    };
    let sent = {
        let mut node = state.dataplane.node();
        node.ping(std::time::Instant::now(), &peer.public_key)
    };
    let tx = match sent {
        Ok(tx) => tx,
        Err(e) => {
            return error(format!(
                "cannot ping {}: {}",
                peer.name,
                ping_error_text(&e)
            ))
        }
    };
    state.dataplane.flush_now();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(PING_TIMEOUT_MS);
    loop {
        let answer = state
            .dataplane
            .node()
            .take_ping_answer(&peer.public_key, &tx);
        if let Some((a, path)) = answer {
            return Response::Pong(PingReply {
                peer: peer.name,
                overlay_ip: peer.overlay_ip,
                path,
                endpoint: state
                    .control
                    .view
                    .lock()
                    .expect("control view lock")
                    .shown(a.from),
                rtt_us: a.rtt.as_micros() as u64,
            });
        }
        if tokio::time::Instant::now() >= deadline {
            state.dataplane.node().cancel_ping(&tx);
            return refuse(
                ErrorCode::TimedOut,
                format!("no pong from {} within {} ms", peer.name, PING_TIMEOUT_MS),
            );
        }
        // The pong is handled on the data plane's receive thread; look again shortly.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[cfg(test)]
mod alternates_tests {
    use super::check_alternates;

    #[test]
    fn alternates_need_an_address_and_fit_an_invite() {
        assert!(check_alternates(false, &[]).is_ok());
        assert!(check_alternates(true, &["b:7443".into()]).is_ok());
        let alone = check_alternates(false, &["b:7443".into()]).unwrap_err();
        assert!(alone.contains("--coordinator-key"), "{alone}");
        let many = vec!["b:7443".to_string(); warren_proto::invite::MAX_ALTERNATES + 1];
        let e = check_alternates(true, &many).unwrap_err();
        assert!(e.contains("leave out 1"), "{e}");
        assert!(check_alternates(true, &many[1..]).is_ok());
    }
}
