//! One request of a registered daemon: networks, invites, owner's controls, routes — each answered,
//! persisted, and pushed to the peers it changes.

use super::*;

pub(super) async fn handle(server: &Server, node: NodeKey, remote: SocketAddr, msg: ClientMsg) {
    let (id, outcome) = match msg {
        ClientMsg::CreateNetwork { id, name, password } => {
            let Some(salt) = salt(server, node, id) else {
                return;
            };
            let created = crate::passwords::create(server, node, remote, name, password, salt);
            (id, created.await)
        }
        ClientMsg::JoinNetwork { id, name, password } => {
            let joined = crate::passwords::join(server, node, remote, &name, password).await;
            return join_answered(server, node, id, &name, joined);
        }
        ClientMsg::SetPassword {
            id,
            network,
            password,
        } => {
            let Some(salt) = salt(server, node, id) else {
                return;
            };
            let reply =
                match crate::passwords::set(server, node, remote, network, password, salt).await {
                    Ok(_) => ServerMsg::Ok { id },
                    Err((code, message)) => ServerMsg::Error { id, code, message },
                };
            server.hub().send(&node, reply);
            return;
        }
        ClientMsg::JoinInvite {
            id,
            network,
            secret,
        } => {
            let joined = membership(server, node, Some(remote), |hub| {
                hub.registry
                    .join_invite(node, &network, &secret, unix_now())
            });
            return join_answered(server, node, id, &network, joined);
        }
        ClientMsg::AddressClash { ip, key } => {
            forward_clash(&mut server.hub(), node, ip, key);
            return;
        }
        msg @ (ClientMsg::ListInvites { .. }
        | ClientMsg::RevokeInvite { .. }
        | ClientMsg::RenameNetwork { .. }
        | ClientMsg::LockNetwork { .. }
        | ClientMsg::AnswerRequest { .. }
        | ClientMsg::RemoveMember { .. }
        | ClientMsg::ApproveRoute { .. }
        | ClientMsg::DeleteNetwork { .. }) => {
            crate::owner::handle(server, node, msg);
            return;
        }
        ClientMsg::AdvertiseRoutes { routes } => {
            crate::routes::advertise(server, node, routes);
            return;
        }
        ClientMsg::LeaveNetwork { id, name } => (
            id,
            membership(server, node, None, |hub| {
                hub.registry.leave_network(node, &name)
            }),
        ),
        ClientMsg::Logout { id } => (
            id,
            membership(server, node, None, |hub| hub.registry.logout(node)),
        ),
        ClientMsg::CreateInvite {
            id,
            network,
            ttl_secs,
        } => {
            let reply = match create_invite(server, node, &network, ttl_secs) {
                Ok(grant) => ServerMsg::Invite {
                    id,
                    network: grant.network,
                    secret: grant.secret,
                    expires: grant.expires,
                },
                Err((code, message)) => ServerMsg::Error { id, code, message },
            };
            server.hub().send(&node, reply);
            return;
        }
        ClientMsg::Endpoints {
            lan,
            reflexive,
            nat,
            mapped,
            relay,
            mapped_tcp,
        } => {
            let report = warren_coordinator_core::reachable::Reported {
                lan,
                reflexive,
                nat,
                mapped,
                relay,
                mapped_tcp,
            };
            let mut hub = server.hub();
            if let Some(o) = hub.online.get_mut(&node) {
                // Every update goes to every peer: a member that floods them is ignored.
                if !o.endpoint_limit.allow(unix_now()) {
                    tracing::debug!(node = %node, "endpoint update over the rate limit: ignored");
                    return;
                }
                // Only addresses the coordinator saw the member come from are passed on: a
                // member cannot make its peers probe someone else.
                o.reach.update(report, |ip| server.saw(remote.ip(), ip));
            }
            let peers = hub.peers(&node);
            hub.announce_moved(&node, &peers);
            hub.cluster_online(&node);
            return;
        }
    };
    let reply = match outcome {
        Ok(_) => ServerMsg::Ok { id },
        Err((code, message)) => ServerMsg::Error { id, code, message },
    };
    let hub = server.hub();
    hub.send(&node, reply);
    // After the reply, which older daemons read as "add this network to the list": the
    // pushed list is the coordinator's and wins.
    crate::owner::push_networks(&hub, &node, None);
}

/// 16 random bytes for a password salt, or `None` after telling the node that there are none
/// (a fixed salt would make the password's hash precomputable).
fn salt(server: &Server, node: NodeKey, id: u64) -> Option<[u8; 16]> {
    let mut salt = [0u8; 16];
    match getrandom::getrandom(&mut salt) {
        Ok(()) => Some(salt),
        Err(e) => {
            tracing::error!("no randomness for a password salt: {e}");
            server.hub().send(
                &node,
                ServerMsg::Error {
                    id,
                    code: ErrorCode::Internal,
                    message: "the coordinator has no random numbers for the password right \
                              now; try again"
                        .into(),
                },
            );
            None
        }
    }
}

/// Asks `target` to move off `ip` when `reporter` may ask it (`Registry::clash_report`);
/// an offline target is not asked, so its limit is left for when it is back.
fn forward_clash(hub: &mut Hub, reporter: NodeKey, ip: Ipv4Addr, target: NodeKey) {
    if !hub.online.contains_key(&target) {
        tracing::debug!(
            node = %reporter, %ip, peer = %target,
            "address clash report dropped: the peer is offline"
        );
        return;
    }
    match hub.registry.clash_report(reporter, target, ip, unix_now()) {
        Ok(()) => {
            tracing::info!(
                node = %reporter, %ip, peer = %target,
                "address clash: asking the peer to move"
            );
            hub.send(&target, ServerMsg::AddressClash { ip });
        }
        Err(why) => tracing::debug!(
            node = %reporter, %ip, peer = %target,
            "address clash report dropped: {why}"
        ),
    }
}

/// Answers a join by password or invite: `Ok`, `JoinPending` (locked network) or the error;
/// then the node's networks.
fn join_answered(
    server: &Server,
    node: NodeKey,
    id: u64,
    network: &str,
    joined: Result<Vec<warren_coordinator_core::Change>, (ErrorCode, String)>,
) {
    let reply = match joined {
        Ok(changes) => crate::owner::join_reply(server, node, id, network, &changes),
        Err((code, message)) => ServerMsg::Error { id, code, message },
    };
    let hub = server.hub();
    hub.send(&node, reply);
    crate::owner::push_networks(&hub, &node, None);
}

/// Makes an invite secret and records its hash. Not rate limited: it needs membership, and
/// the registry bounds the live invites per network.
fn create_invite(
    server: &Server,
    node: NodeKey,
    network: &str,
    ttl_secs: u64,
) -> Result<InviteGrant, (ErrorCode, String)> {
    let mut secret = [0u8; SECRET_LEN];
    // Unlike a salt, a secret from a failed RNG would be guessable: refuse instead.
    getrandom::getrandom(&mut secret).map_err(|e| {
        (
            ErrorCode::Internal,
            format!("the coordinator has no random source for the invite: {e}"),
        )
    })?;
    let mut hub = server.hub();
    let (grant, changes) = hub
        .registry
        .create_invite(node, network, &secret, ttl_secs, unix_now())
        .map_err(|e| (error_code(&e), e.to_string()))?;
    hub.persist(&changes).map_err(storage_failed)?;
    Ok(grant)
}

pub(crate) fn storage_failed(e: anyhow::Error) -> (ErrorCode, String) {
    (
        ErrorCode::Internal,
        format!("coordinator storage failed: {e:#}"),
    )
}

/// Runs a membership operation, persists it, and pushes the peers it gained or lost.
/// Invite-checking operations pass their source address for the per-source rate limit
/// (password ones are limited in [`crate::passwords`]).
pub(crate) fn membership(
    server: &Server,
    node: NodeKey,
    rate_limited: Option<SocketAddr>,
    op: impl FnOnce(
        &mut Hub,
    ) -> Result<
        Vec<warren_coordinator_core::Change>,
        warren_coordinator_core::RegistryError,
    >,
) -> Result<Vec<warren_coordinator_core::Change>, (ErrorCode, String)> {
    let mut hub = server.hub();
    if let Some(source) = rate_limited {
        hub.check_rate(source.ip())
            .map_err(|m| (ErrorCode::RateLimited, m))?;
    }
    let before = hub.peers(&node);
    let changes = op(&mut hub).map_err(|e| (error_code(&e), e.to_string()))?;
    hub.persist(&changes).map_err(storage_failed)?;
    // The node's new ticket goes out before its new peers hear of it, so the relay knows
    // the new network by the time they send through it.
    refresh_ticket(server, &hub, &node);
    hub.reconcile(&node, &before);
    if hub.cluster.is_some() {
        // Peers gained that are online at other coordinators: the node is asked to probe
        // them here, they are asked to probe it there (once their coordinator reads this back).
        // `before` came sorted from `peers`.
        let gained: Vec<NodeKey> = hub
            .peers(&node)
            .into_iter()
            .filter(|p| before.binary_search(p).is_err())
            .collect();
        hub.call_remote(&node, &gained);
    }
    Ok(changes)
}
