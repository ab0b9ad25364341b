//! One task per daemon connection: Noise handshake, registration, then requests in and peer
//! map updates out — the same over QUIC and over TCP+TLS ([`Link`]).

use crate::hub::{error_code, unix_now, Hub};
use crate::link::{FrameReader, Link};
use crate::outbox::{outbox, Next, OutboxTx};
use crate::relay::{Membership, RelayHandle, RelayLease};
use crate::relay_tickets::ExternalRelay;
use anyhow::{Context, Result};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use warren_coordinator_core::seen_sources::SeenSources;
use warren_coordinator_core::InviteGrant;
use warren_proto::control::auth::ServerHandshake;
use warren_proto::control::msg::RelayOffer;
use warren_proto::control::msg::{
    ClientMsg, ErrorCode, Hello, ServerMsg, Welcome, CONTROL_VERSION,
};
use warren_proto::invite::SECRET_LEN;
use warren_proto::key::NodeKey;
use warren_proto::relay::RelayToken;

pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Leases last 30 days (6 hours for a host in no network); renewing hourly while connected
/// keeps them far from expiry.
const RENEW_EVERY: Duration = Duration::from_secs(3600);

pub struct Server {
    pub secret: [u8; 32],
    pub stun_ports: Vec<u16>,
    /// `None` when the relay is off.
    pub relay: Option<RelayHandle>,
    /// A standalone relay to send nodes to instead (`--relay-at`); the built-in one is off.
    pub external_relay: Option<ExternalRelay>,
    /// Public addresses with other port numbers than the local ones (`--published`).
    pub published: Option<crate::published::PublishedFile>,
    pub hub: Mutex<Hub>,
    /// The hub's generation counter, readable without its lock (see [`Membership`]).
    generation: Arc<AtomicU64>,
    /// Messages a session's queue holds before its daemon counts as not reading.
    pub outbox_capacity: usize,
    /// Sessions ended because their daemon did not read (since start).
    pub slow_readers: AtomicU64,
    /// The blocking threads Argon2 may use at once ([`crate::passwords`]).
    pub hashers: tokio::sync::Semaphore,
    /// Passwords Argon2 found right ([`crate::password_memo`]).
    pub password_memo: crate::password_memo::PasswordMemo,
    /// Connections still handshaking, capped ([`crate::preauth`]).
    pub pre_auth: crate::preauth::PreAuthGate,
    /// Where STUN requests came from lately: what a member's reported public addresses are
    /// checked against.
    pub seen_sources: Arc<Mutex<SeenSources>>,
    /// The relay's counters for the metrics.
    pub relay_report: crate::metrics::RelayReport,
    /// The hub's membership index, for the relay.
    index: Arc<crate::membership_index::MembershipIndex>,
}

impl Server {
    pub fn new(
        secret: [u8; 32],
        stun_ports: Vec<u16>,
        relay: Option<RelayHandle>,
        hub: Hub,
    ) -> Self {
        Self {
            secret,
            stun_ports,
            relay,
            external_relay: None,
            published: None,
            generation: hub.generation_counter(),
            index: hub.index.clone(),
            hub: Mutex::new(hub),
            outbox_capacity: warren_coordinator_core::outbox::DEFAULT_CAPACITY,
            slow_readers: AtomicU64::new(0),
            hashers: tokio::sync::Semaphore::new(crate::passwords::HASHERS),
            password_memo: crate::password_memo::PasswordMemo::new(),
            pre_auth: Default::default(),
            seen_sources: Default::default(),
            relay_report: Default::default(),
        }
    }

    /// Whether the coordinator saw a member whose control connection comes from `control`
    /// come from `ip` (that connection, or a recent STUN request).
    /// A member on the coordinator's own machine or LAN (the PC that hosts, and the others
    /// at that home) is vouched for whatever it reports: the coordinator cannot see the
    /// public address of a LAN it is inside, and whoever shares it is not a stranger.
    pub(crate) fn saw(&self, control: IpAddr, ip: IpAddr) -> bool {
        warren_coordinator_core::candidates::inside_a_lan(control)
            || ip.to_canonical() == control.to_canonical()
            || self
                .seen_sources
                .lock()
                .expect("seen sources lock")
                .seen(ip.to_canonical(), unix_now())
    }

    pub(crate) fn hub(&self) -> std::sync::MutexGuard<'_, Hub> {
        self.hub.lock().expect("coordinator state poisoned")
    }
}

impl Membership for Server {
    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// From the membership index, never the hub's lock: relayed traffic does not wait for
    /// control work. The generation is read first, so an answer that raced a change is kept
    /// under the older generation and asked again.
    fn shares_network(&self, a: &NodeKey, b: &NodeKey) -> (bool, u64) {
        let generation = self.generation.load(Ordering::Acquire);
        (self.index.shares_network(a, b), generation)
    }

    fn report(&self, counters: warren_coordinator_core::RelayCounters, hosts: usize) {
        *self.relay_report.lock().expect("relay report lock") = Some((counters, hosts));
    }
}

pub async fn serve(endpoint: quinn::Endpoint, server: Arc<Server>) -> Result<()> {
    while let Some(incoming) = endpoint.accept().await {
        let server = server.clone();
        tokio::spawn(async move {
            let remote = incoming.remote_address();
            let Some(pre_auth) = server.pre_auth.enter().await else {
                tracing::debug!(%remote, "too many connections handshaking: refused");
                incoming.refuse();
                return;
            };
            let r = match crate::quic::accept(incoming, HANDSHAKE_TIMEOUT, pre_auth).await {
                Ok(link) => session(link, &server).await,
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                tracing::debug!(%remote, "connection ended: {e:#}");
            }
        });
    }
    Ok(())
}

/// One daemon's session on `link`, until the link or the daemon ends it.
pub async fn session(link: Link, server: &Server) -> Result<()> {
    let Link {
        transport,
        remote,
        binding,
        mut reader,
        writer: mut send,
        pre_auth,
        _io,
    } = link;
    let first = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        reader.read_frame_max(crate::preauth::PRE_AUTH_MAX_FRAME),
    )
    .await
    .context("no handshake")??;
    // Nothing is accepted from a node before its key is proven.
    let hs = ServerHandshake::accept(&server.secret, &binding, &first)?;
    pre_auth.authenticated();
    let node = hs.node;
    let hello: Hello = serde_json::from_slice(&hs.payload).context("bad hello")?;
    let answer = if hello.v != CONTROL_VERSION {
        Err((
            ErrorCode::Internal,
            format!(
                "this coordinator speaks control version {CONTROL_VERSION}, the daemon {}: \
                 update the older one",
                hello.v
            ),
        ))
    } else {
        register(server, node, remote, &hello)
    };
    // The node's relay token lives as long as this function: every way out of it, early
    // returns included, withdraws the token.
    let (answer, _relay_lease) = match answer {
        Ok(mut welcome) => {
            let (offer, lease) = offer_relay(server, node, &welcome.networks);
            welcome.relay = offer;
            if let Some(p) = &server.published {
                p.apply(hello.dialed, &mut welcome);
            }
            (Ok(welcome), lease)
        }
        Err(e) => (Err(e), None),
    };
    let payload = match &answer {
        Ok(welcome) => serde_json::to_vec(welcome)?,
        Err((code, message)) => serde_json::to_vec(&ServerMsg::Error {
            id: 0,
            code: *code,
            message: message.clone(),
        })?,
    };
    send.write_frame(&hs.reply(&payload)?).await?;
    if answer.is_err() {
        send.finish();
        tokio::time::sleep(Duration::from_millis(200)).await;
        return Ok(());
    }
    tracing::info!(%remote, ?transport, node = %node, name = %hello.name, "node connected");

    // A guess at the node's reflexive WireGuard endpoint until it reports a STUN answer: the
    // address its control connection comes from, with its UDP port. Right for public hosts and
    // for NATs that keep ports.
    let reflexive_guess = SocketAddr::new(remote.ip(), hello.udp_port);
    let (tx, mut rx) = outbox(server.outbox_capacity);
    let offer = answer.as_ref().ok().and_then(|w| w.relay.as_ref());
    let session = online(server, node, &hello, reflexive_guess, offer, tx);

    let overflow = rx.overflow_watch();
    let writer = tokio::spawn(async move {
        while let Next::Msg(msg) = rx.next().await {
            if send.write_frame(msg.json()).await.is_err() {
                break;
            }
        }
    });
    let result = tokio::select! {
        r = requests(server, node, remote, &mut reader) => r,
        () = overflow.overflowed() => {
            let n = server.slow_readers.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(
                node = %node, %remote, disconnected_so_far = n,
                "disconnecting a daemon that does not read what it is sent"
            );
            Err(anyhow::anyhow!("the daemon read too slowly: its queue overflowed"))
        }
    };
    writer.abort();
    let mut hub = server.hub();
    if hub.go_offline(&node, session) {
        tracing::info!(node = %node, "node disconnected");
        for peer in hub.peers(&node) {
            if let Some(info) = hub.peer_info(&peer, &node) {
                hub.send(
                    &peer,
                    ServerMsg::PeerUpsert {
                        peer: info,
                        call: false,
                    },
                );
            }
        }
        hub.cluster_offline(&node);
    }
    result
}

/// Marks the welcomed `node` online and tells it and its peers about each other; its peers
/// learn its address here, a new one too (it moved to the address it claimed). Returns the
/// session number.
fn online(
    server: &Server,
    node: NodeKey,
    hello: &Hello,
    reflexive_guess: SocketAddr,
    relay: Option<&RelayOffer>,
    tx: OutboxTx,
) -> u64 {
    let lan = warren_coordinator_core::candidates::vouched_lan(hello.lan_endpoints.clone(), |ip| {
        server.saw(reflexive_guess.ip(), ip)
    });
    let mut hub = server.hub();
    let session = hub.go_online(node, tx, lan, Some(reflexive_guess));
    if let Some(o) = hub.online.get_mut(&node) {
        o.batch_calls = hello.calls;
    }
    if server.external_relay.is_some() {
        let token = relay.and_then(|r| warren_proto::relay::parse_token(&r.token));
        if let Some(o) = hub.online.get_mut(&node) {
            o.relay_token = token;
        }
    }
    let peers = hub.peers(&node);
    hub.announce(&node, &peers);
    hub.cluster_online(&node);
    // Owned and locked networks, requests and waits: what the Welcome does not carry.
    crate::owner::push_networks(&hub, &node, None);
    session
}

fn register(
    server: &Server,
    node: NodeKey,
    remote: SocketAddr,
    hello: &Hello,
) -> Result<Welcome, (ErrorCode, String)> {
    let mut hub = server.hub();
    hub.check_new_key(&node, remote.ip())
        .map_err(|m| (ErrorCode::RateLimited, m))?;
    let changes = hub
        .registry
        .register_node(node, &hello.name, hello.claim, unix_now())
        .map_err(|e| (error_code(&e), e.to_string()))?;
    hub.persist(&changes).map_err(storage_failed)?;
    hub.drop_taken_over(&node, &changes);
    let lease = hub
        .registry
        .lease_of(&node)
        .ok_or((ErrorCode::Internal, "no address lease".to_string()))?;
    if let Some(claim) = hello.claim.filter(|c| *c != lease.addr) {
        tracing::info!(
            node = %node, %claim, leased = %lease.addr,
            "claimed address refused: the node is told to move"
        );
    }
    Ok(Welcome {
        v: CONTROL_VERSION,
        overlay_ip: lease.addr.into(),
        networks: hub.registry.networks_of(&node),
        stun_ports: server.stun_ports.clone(),
        relay: None,
    })
}

/// The relay for `node`'s new session: a token registered with the built-in relay before the
/// Welcome that carries it goes out (live while the lease lives), or a token and ticket for the
/// standalone relay. A node without one still works wherever a direct path does.
fn offer_relay(
    server: &Server,
    node: NodeKey,
    networks: &[String],
) -> (Option<RelayOffer>, Option<RelayLease>) {
    if let Some(external) = &server.external_relay {
        let mut token = RelayToken::default();
        return match getrandom::getrandom(&mut token) {
            Ok(()) => (Some(external.offer(node, token, networks)), None),
            Err(e) => {
                tracing::warn!(node = %node, "no relay for this session: no random token: {e}");
                (None, None)
            }
        };
    }
    let Some(relay) = server.relay.as_ref() else {
        return (None, None);
    };
    match relay.admit(node) {
        Ok(lease) => (Some(lease.offer()), Some(lease)),
        Err(e) => {
            tracing::warn!(node = %node, "no relay for this session: {e:#}");
            (None, None)
        }
    }
}

/// Sends `node` a fresh ticket for the standalone relay, naming its networks now.
pub(crate) fn refresh_ticket(server: &Server, hub: &Hub, node: &NodeKey) {
    let Some(external) = &server.external_relay else {
        return;
    };
    let Some(token) = hub.online.get(node).and_then(|o| o.relay_token) else {
        return;
    };
    let ticket = external.ticket(*node, token, &hub.registry.networks_of(node));
    hub.send(node, ServerMsg::RelayTicket { ticket });
}

async fn requests(
    server: &Server,
    node: NodeKey,
    remote: SocketAddr,
    reader: &mut FrameReader,
) -> Result<()> {
    let mut renew = tokio::time::interval(RENEW_EVERY);
    renew.tick().await;
    loop {
        let frame = tokio::select! {
            f = reader.read_frame() => f?,
            _ = renew.tick() => {
                let mut hub = server.hub();
                if let Ok(changes) = hub.registry.renew_lease(node, unix_now()) {
                    hub.persist(&changes)?;
                }
                refresh_ticket(server, &hub, &node);
                continue;
            }
        };
        let msg: ClientMsg = match serde_json::from_slice(&frame) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(node = %node, "bad request: {e}");
                continue;
            }
        };
        handle(server, node, remote, msg).await;
    }
}

async fn handle(server: &Server, node: NodeKey, remote: SocketAddr, msg: ClientMsg) {
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
            use warren_coordinator_core::candidates::{can_relay, vouched_lan, vouched_public};
            // Only addresses the coordinator saw the member come from are passed on: a
            // member cannot make its peers probe someone else.
            let saw = |ip| server.saw(remote.ip(), ip);
            let (lan, reflexive, mapped, mapped_tcp) = (
                vouched_lan(lan, saw),
                vouched_public(reflexive, saw),
                vouched_public(mapped, saw),
                vouched_public(mapped_tcp, saw),
            );
            let mut hub = server.hub();
            if let Some(o) = hub.online.get_mut(&node) {
                // Every update goes to every peer: a member that floods them is ignored.
                if !o.endpoint_limit.allow(unix_now()) {
                    tracing::debug!(node = %node, "endpoint update over the rate limit: ignored");
                    return;
                }
                o.lan = lan;
                if let Some(r) = reflexive {
                    o.reflexive = Some(r);
                }
                o.nat = nat;
                // Unlike a STUN answer, a mapping can be withdrawn (`None`): the router
                // stopped answering or the daemon deleted it, and peers must stop trying it.
                o.mapped = mapped;
                o.relay = can_relay(relay, &o.lan, o.reflexive, o.mapped);
                o.mapped_tcp = mapped_tcp;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Hub;
    use crate::outbox::{outbox, OutboxRx};
    use crate::store::SqliteStore as Store;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use warren_coordinator_core::outbox::DEFAULT_CAPACITY;
    use warren_coordinator_core::{HashParams, Registry, RegistryConfig};
    use warren_proto::invite::parse_secret;

    fn key(i: u32) -> NodeKey {
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(&i.to_be_bytes());
        k[31] = 7;
        NodeKey(k)
    }

    const ALICE: u32 = 0;
    const BOB: u32 = 1;
    const CAROL: u32 = 2;

    /// alice created "net" and bob joined it; carol is registered but in no network. All three
    /// are online; returns their inboxes in that order.
    fn setup(dir: &std::path::Path) -> (Server, Vec<OutboxRx>) {
        let config = RegistryConfig {
            hash_params: HashParams::new(HashParams::MIN_M_COST, 1, 1, None).unwrap(),
            ..Default::default()
        };
        let mut hub = Hub::new(Registry::new(config).unwrap(), Store::open(dir).unwrap());
        let mut inboxes = Vec::new();
        for (i, name) in ["alice", "bob", "carol"].into_iter().enumerate() {
            let k = key(i as u32);
            let c = hub.registry.register_node(k, name, None, 1).unwrap();
            hub.persist(&c).unwrap();
            let (tx, rx) = outbox(DEFAULT_CAPACITY);
            hub.go_online(k, tx, vec![], None);
            inboxes.push(rx);
        }
        let c = hub
            .registry
            .create_network(key(ALICE), "net", "pw", &[7; 16], 1)
            .unwrap();
        hub.persist(&c).unwrap();
        let c = hub.registry.join_network(key(BOB), "net", "pw", 1).unwrap();
        hub.persist(&c).unwrap();
        (Server::new([0; 32], vec![], None, hub), inboxes)
    }

    /// Everything pushed to an inbox but the network lists (see `owner_controls_…`).
    fn drain(rx: &mut OutboxRx) -> Vec<ServerMsg> {
        drain_all(rx)
            .into_iter()
            .filter(|m| !matches!(m, ServerMsg::Networks { .. }))
            .collect()
    }

    fn drain_all(rx: &mut OutboxRx) -> Vec<ServerMsg> {
        std::iter::from_fn(|| rx.try_recv()).collect()
    }

    /// The last network list pushed: (networks, waiting, note).
    fn last_networks(
        msgs: &[ServerMsg],
    ) -> Option<(
        Vec<warren_proto::control::msg::NetworkState>,
        Vec<String>,
        Option<String>,
    )> {
        msgs.iter().rev().find_map(|m| match m {
            ServerMsg::Networks {
                networks,
                waiting,
                note,
            } => Some((networks.clone(), waiting.clone(), note.clone())),
            _ => None,
        })
    }

    /// The routes `msgs`' last upsert about `about` carries: (prefix, approved).
    fn routes_in(msgs: &[ServerMsg], about: NodeKey) -> Option<Vec<(String, bool)>> {
        msgs.iter().rev().find_map(|m| match m {
            ServerMsg::PeerUpsert { peer, .. } if peer.key == about => Some(
                peer.routes
                    .iter()
                    .map(|r| (r.prefix.clone(), r.approved))
                    .collect(),
            ),
            _ => None,
        })
    }

    /// Bob advertises a LAN: alice (the owner) sees it unapproved in her peer map and her
    /// network list; only she may approve it; then her peer map carries it approved, and a
    /// bad prefix never reaches anyone.
    #[tokio::test]
    async fn an_advertised_route_reaches_peers_and_is_used_once_the_owner_approves() {
        let tmp = tempfile::tempdir().unwrap();
        let (server, mut inbox) = setup(tmp.path());
        let (alice, bob) = (key(ALICE), key(BOB));
        let lan = "192.168.1.0/24".to_string();
        let advertise = ClientMsg::AdvertiseRoutes {
            routes: vec!["192.168.1.9/24".into(), "0.0.0.0/0".into(), "nope".into()],
        };
        handle(&server, bob, remote(2), advertise).await;
        let got = drain_all(&mut inbox[0]);
        assert_eq!(routes_in(&got, bob), Some(vec![(lan.clone(), false)]));
        let (nets, _, _) = last_networks(&got).expect("a network list");
        assert_eq!(nets[0].routes.len(), 1, "{nets:?}");
        assert!(nets[0].routes[0].advertised && !nets[0].routes[0].approved);
        assert!(
            drain_all(&mut inbox[2]).is_empty(),
            "carol shares no network"
        );
        drain_all(&mut inbox[1]);

        let approve = |id| ClientMsg::ApproveRoute {
            id,
            network: "net".into(),
            node: bob,
            prefix: lan.clone(),
            approve: true,
        };
        handle(&server, bob, remote(2), approve(1)).await;
        assert_eq!(error_of(&drain(&mut inbox[1]), 1).0, ErrorCode::NotOwner);
        handle(&server, alice, remote(1), approve(2)).await;
        let got = drain_all(&mut inbox[0]);
        assert!(got.contains(&ServerMsg::Ok { id: 2 }));
        assert_eq!(routes_in(&got, bob), Some(vec![(lan.clone(), true)]));
        let (nets, _, _) = last_networks(&drain_all(&mut inbox[1])).expect("bob's list");
        assert!(nets[0].routes[0].approved, "bob sees his route approved");
    }

    /// Lock, a join that waits, the owner told at once, approve, remove and ban, all through
    /// the control channel, with the pushes each affected host gets.
    #[tokio::test]
    async fn owner_controls_push_to_every_affected_host() {
        let tmp = tempfile::tempdir().unwrap();
        let (server, mut inbox) = setup(tmp.path());
        let (alice, bob, carol) = (key(ALICE), key(BOB), key(CAROL));
        let lock = ClientMsg::LockNetwork {
            id: 1,
            network: "net".into(),
            locked: true,
        };
        // A member may not; the owner may, and both members see the lock.
        handle(&server, bob, remote(2), lock.clone()).await;
        let (code, message) = error_of(&drain(&mut inbox[1]), 1);
        assert_eq!(code, ErrorCode::NotOwner);
        assert_eq!(
            message,
            "only the owner of network net (alice) can lock it: ask them"
        );
        handle(&server, alice, remote(1), lock).await;
        for i in [0, 1] {
            let got = drain_all(&mut inbox[i]);
            let (nets, _, _) = last_networks(&got).expect("a network list");
            assert!(nets[0].locked, "{got:?}");
        }

        // Carol's join waits; alice hears of it at once.
        let join = ClientMsg::JoinNetwork {
            id: 2,
            name: "net".into(),
            password: "pw".into(),
        };
        handle(&server, carol, remote(3), join).await;
        let got = drain_all(&mut inbox[2]);
        assert!(got.contains(&ServerMsg::JoinPending {
            id: 2,
            network: "net".into()
        }));
        assert_eq!(last_networks(&got).unwrap().1, ["net"]);
        let got = drain_all(&mut inbox[0]);
        let (nets, _, note) = last_networks(&got).unwrap();
        assert_eq!(nets[0].requests[0].key, carol);
        assert!(note.unwrap().contains("warren approve net carol"));
        assert!(drain(&mut inbox[1]).is_empty(), "bob learns nothing yet");

        // Approve: carol is in, with both peers, without asking again.
        let approve = ClientMsg::AnswerRequest {
            id: 3,
            network: "net".into(),
            node: carol,
            approve: true,
        };
        handle(&server, alice, remote(1), approve).await;
        let got = drain_all(&mut inbox[2]);
        for k in [alice, bob] {
            assert!(
                got.iter()
                    .any(|m| matches!(m, ServerMsg::PeerUpsert { peer, .. } if peer.key == k)),
                "{got:?}"
            );
        }
        let (nets, waiting, note) = last_networks(&got).unwrap();
        assert_eq!((nets[0].name.as_str(), waiting.len()), ("net", 0));
        assert!(note.unwrap().contains("let this host in"));
        assert!(drain(&mut inbox[0]).contains(&ServerMsg::Ok { id: 3 }));
        assert!(drain(&mut inbox[1])
            .iter()
            .any(|m| matches!(m, ServerMsg::PeerUpsert { peer, .. } if peer.key == carol)));

        // Remove and ban bob: everyone drops him, he drops everyone, and cannot come back.
        let remove = ClientMsg::RemoveMember {
            id: 4,
            network: "net".into(),
            node: bob,
            ban: true,
        };
        handle(&server, alice, remote(1), remove).await;
        assert!(drain(&mut inbox[0]).contains(&ServerMsg::PeerRemove { key: bob }));
        assert!(drain(&mut inbox[2]).contains(&ServerMsg::PeerRemove { key: bob }));
        let got = drain_all(&mut inbox[1]);
        for k in [alice, carol] {
            assert!(got.contains(&ServerMsg::PeerRemove { key: k }), "{got:?}");
        }
        let (nets, _, note) = last_networks(&got).unwrap();
        assert!(nets.is_empty());
        assert!(note.unwrap().contains("banned"));
        let back = ClientMsg::JoinNetwork {
            id: 5,
            name: "net".into(),
            password: "pw".into(),
        };
        handle(&server, bob, remote(2), back).await;
        assert_eq!(error_of(&drain(&mut inbox[1]), 5).0, ErrorCode::Banned);
        let hub = server.hub();
        assert!(!hub.registry.shares_network(&alice, &bob));
        assert_eq!(hub.store.load().unwrap(), hub.registry.snapshot());
    }

    fn hello(name: &str, claim: Option<Ipv4Addr>) -> Hello {
        Hello {
            v: CONTROL_VERSION,
            name: name.into(),
            udp_port: 41641,
            lan_endpoints: vec![],
            dialed: None,
            claim,
            calls: true,
        }
    }

    fn welcomed_at(server: &Server, node: NodeKey, hello: &Hello) -> Ipv4Addr {
        match register(server, node, remote(9), hello).unwrap().overlay_ip {
            std::net::IpAddr::V4(a) => a,
            other => panic!("{other}"),
        }
    }

    /// A claim of a live lease is refused, of an expired one granted (and its old holder's
    /// peers drop it), of a free one granted with a move that the mover's peers see.
    #[tokio::test]
    async fn claims_in_the_hello_and_what_the_peers_see() {
        let tmp = tempfile::tempdir().unwrap();
        let (server, mut inbox) = setup(tmp.path());
        let (alice, bob, carol) = (key(ALICE), key(BOB), key(CAROL));
        let addr = |k| server.hub().registry.lease_of(&k).unwrap().addr;
        let (alice_at, bob_at, carol_at) = (addr(alice), addr(bob), addr(carol));
        // The setup's leases date from 1970: only bob's is live.
        let c = server.hub().registry.renew_lease(bob, unix_now()).unwrap();
        server.hub().persist(&c).unwrap();

        assert_eq!(
            welcomed_at(&server, carol, &hello("carol", Some(bob_at))),
            carol_at
        );
        assert_eq!(addr(bob), bob_at);

        assert_eq!(
            welcomed_at(&server, carol, &hello("carol", Some(alice_at))),
            alice_at
        );
        assert_eq!(server.hub().registry.lease_of(&alice), None);
        assert_eq!(drain(&mut inbox[1]), [ServerMsg::PeerRemove { key: alice }]);

        let claim = Ipv4Addr::new(100, 100, 0, 9);
        let alice_hello = hello("alice", Some(claim));
        assert_eq!(welcomed_at(&server, alice, &alice_hello), claim);
        let (tx, _alice_inbox) = outbox(DEFAULT_CAPACITY);
        online(&server, alice, &alice_hello, remote(1), None, tx);
        let got = drain(&mut inbox[1]);
        assert!(
            got.iter()
                .any(|m| matches!(m, ServerMsg::PeerUpsert { peer, .. }
                if peer.key == alice && peer.overlay_ip == std::net::IpAddr::V4(claim))),
            "{got:?}"
        );
        assert!(drain(&mut inbox[2]).is_empty(), "carol is not alice's peer");
        let hub = server.hub();
        assert_eq!(hub.store.load().unwrap(), hub.registry.snapshot());
    }

    #[tokio::test]
    async fn address_clashes_reach_only_a_peer_at_that_address_once_a_minute() {
        let tmp = tempfile::tempdir().unwrap();
        let (server, mut inbox) = setup(tmp.path());
        let (alice, bob, carol) = (key(ALICE), key(BOB), key(CAROL));
        let alice_at = server.hub().registry.lease_of(&alice).unwrap().addr;
        let bob_at = server.hub().registry.lease_of(&bob).unwrap().addr;
        let clash = |ip, key| ClientMsg::AddressClash { ip, key };

        handle(&server, carol, remote(3), clash(alice_at, alice)).await;
        handle(&server, bob, remote(2), clash(bob_at, alice)).await;
        assert!(
            drain(&mut inbox[0]).is_empty(),
            "not a peer, not its address"
        );

        handle(&server, bob, remote(2), clash(alice_at, alice)).await;
        assert_eq!(
            drain(&mut inbox[0]),
            [ServerMsg::AddressClash { ip: alice_at }]
        );
        handle(&server, bob, remote(2), clash(alice_at, alice)).await;
        assert!(
            drain(&mut inbox[0]).is_empty(),
            "asked less than a minute ago"
        );
        for i in [1, 2] {
            assert!(drain(&mut inbox[i]).is_empty());
        }
    }

    /// A member cannot make the coordinator keep, or its peers probe, an unbounded list, nor
    /// flood its peers with updates.
    #[tokio::test]
    async fn endpoint_updates_are_capped_and_rate_limited() {
        use warren_coordinator_core::candidates::{ENDPOINT_BURST, MAX_LAN_CANDIDATES};
        let tmp = tempfile::tempdir().unwrap();
        let (server, mut inbox) = setup(tmp.path());
        let (alice, bob) = (key(ALICE), key(BOB));
        let update = |lan| ClientMsg::Endpoints {
            lan,
            reflexive: Some("0.0.0.0:9".parse().unwrap()),
            nat: warren_proto::control::msg::NatKind::Unknown,
            mapped: Some("224.0.0.1:9".parse().unwrap()),
            relay: false,
            mapped_tcp: Some("224.0.0.1:9".parse().unwrap()),
        };
        let flood: Vec<SocketAddr> = (0..80_000u32)
            .map(|i| SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 41820)))
            .collect();
        handle(&server, bob, remote(2), update(flood)).await;
        {
            let hub = server.hub();
            let o = &hub.online[&bob];
            assert_eq!(o.lan.len(), MAX_LAN_CANDIDATES);
            assert_eq!(o.mapped, None, "a multicast 'mapping' is not passed on");
            assert_eq!(o.mapped_tcp, None, "nor a multicast TCP mapping");
            assert_ne!(o.reflexive, Some("0.0.0.0:9".parse().unwrap()));
        }
        drain(&mut inbox[0]);
        for _ in 0..50 {
            handle(&server, bob, remote(2), update(vec![])).await;
        }
        let heard = drain(&mut inbox[0])
            .iter()
            .filter(|m| matches!(m, ServerMsg::PeerUpsert { peer, .. } if peer.key == bob))
            .count();
        assert!(heard > 0, "updates within the limit reach the peers");
        assert!(
            heard < ENDPOINT_BURST as usize,
            "{heard} of 50 updates reached alice"
        );
        let _ = alice;
    }

    /// The relay asks who shares a network without the hub's lock: a commit or a fan-out
    /// holding it does not hold up relayed traffic.
    #[test]
    fn the_relay_asks_about_memberships_without_the_hub_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let (server, _inbox) = setup(tmp.path());
        let server = Arc::new(server);
        let held = server.hub();
        let (tx, rx) = std::sync::mpsc::channel();
        let s = server.clone();
        std::thread::spawn(move || {
            let _ = tx.send((
                Membership::shares_network(&*s, &key(ALICE), &key(BOB)).0,
                Membership::shares_network(&*s, &key(ALICE), &key(CAROL)).0,
            ));
        });
        let answer = rx.recv_timeout(Duration::from_secs(5));
        drop(held);
        assert_eq!(
            answer,
            Ok((true, false)),
            "answered while the hub was locked"
        );
    }

    /// A member reports addresses it does not have (someone else's public address as its
    /// reflexive address, port mapping and LAN address): its peers are not told to probe them.
    /// Its own address (its control connection's, or a STUN source) is passed on.
    #[tokio::test]
    async fn only_addresses_the_coordinator_saw_a_member_come_from_reach_its_peers() {
        let tmp = tempfile::tempdir().unwrap();
        let (server, mut inbox) = setup(tmp.path());
        let bob = key(BOB);
        let victim: SocketAddr = "192.0.2.53:53".parse().unwrap();
        let own = SocketAddr::new(remote(2).ip(), 41820);
        let lan_home: SocketAddr = "192.168.1.20:41820".parse().unwrap();
        let report = |reflexive, mapped| ClientMsg::Endpoints {
            lan: vec![victim, lan_home],
            reflexive: Some(reflexive),
            nat: warren_proto::control::msg::NatKind::Symmetric,
            mapped: Some(mapped),
            relay: false,
            mapped_tcp: Some(SocketAddr::new(mapped.ip(), 41821)),
        };
        handle(&server, bob, remote(2), report(victim, victim)).await;
        {
            let hub = server.hub();
            let o = &hub.online[&bob];
            assert_eq!(o.lan, vec![lan_home]);
            assert_ne!(o.reflexive, Some(victim));
            assert_eq!(o.mapped, None);
            assert_eq!(o.mapped_tcp, None, "nor the TCP mapping");
        }
        drain(&mut inbox[0]);
        // Its control connection's address, and an address whose STUN request was answered.
        let stun_seen: SocketAddr = "203.0.113.77:41820".parse().unwrap();
        server
            .seen_sources
            .lock()
            .unwrap()
            .saw(stun_seen.ip(), unix_now());
        handle(&server, bob, remote(2), report(stun_seen, own)).await;
        let hub = server.hub();
        let o = &hub.online[&bob];
        assert_eq!((o.reflexive, o.mapped), (Some(stun_seen), Some(own)));
        let own_tcp = SocketAddr::new(own.ip(), 41821);
        assert_eq!(o.mapped_tcp, Some(own_tcp), "the TCP mapping is passed on");
        let alice = key(ALICE);
        let info = hub.peer_info(&alice, &bob).expect("they share a network");
        assert_eq!(info.mapped_tcp, Some(own_tcp), "peers see the TCP mapping");
    }

    /// A daemon at the end of an in-memory link: it completes the handshake as `name` with
    /// `secret`, and returns (its key, the frames it may send, the frames it was sent).
    async fn connect(
        server: &Arc<Server>,
        secret: [u8; 32],
        name: &str,
    ) -> (
        NodeKey,
        tokio::sync::mpsc::Sender<Vec<u8>>,
        tokio::sync::mpsc::Receiver<Vec<u8>>,
        tokio::task::JoinHandle<Result<()>>,
    ) {
        use warren_proto::control::auth::{public_key, ClientHandshake};
        let (to_server, frames_in) = tokio::sync::mpsc::channel(64);
        // One frame of room on the way out: a daemon that stops reading stops the writer at
        // once, as a full socket buffer would, only sooner.
        let (frames_out, from_server) = tokio::sync::mpsc::channel(1);
        let binding = [3u8; warren_proto::control::auth::BINDING_LEN];
        let link = Link {
            transport: warren_proto::api::ControlTransport::Tcp,
            remote: remote(77),
            binding,
            reader: FrameReader::Tcp(frames_in),
            writer: crate::link::FrameWriter::Tcp(frames_out),
            pre_auth: server.pre_auth.enter().await.expect("a handshake slot"),
            _io: None,
        };
        let hello = serde_json::to_vec(&hello(name, None)).unwrap();
        let (hs, first) =
            ClientHandshake::start(&secret, &public_key(&server.secret), &binding, &hello).unwrap();
        let task = tokio::spawn({
            let server = server.clone();
            async move { session(link, &server).await }
        });
        to_server.send(first).await.unwrap();
        let mut from_server = from_server;
        let reply = from_server.recv().await.unwrap();
        let welcome: Welcome = serde_json::from_slice(&hs.finish(&reply).unwrap()).unwrap();
        assert_eq!(welcome.v, CONTROL_VERSION);
        let node = warren_proto::key::public_key(&secret);
        (node, to_server, from_server, task)
    }

    async fn until(what: &str, mut cond: impl FnMut() -> bool) {
        for _ in 0..500 {
            if cond() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting until {what}");
    }

    /// A member that joined and then never reads: its peers' churn only refreshes what waits
    /// for it (the queue stays within its bound), the replies it provokes overflow it, and then
    /// it is disconnected while the others carry on.
    #[tokio::test]
    async fn a_daemon_that_never_reads_is_disconnected_and_the_others_keep_working() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut server, mut inbox) = setup(tmp.path());
        server.outbox_capacity = 16;
        let server = Arc::new(server);
        let (mallory, to_server, _unread, task) = connect(&server, [9; 32], "mallory").await;
        let frame = |m: &ClientMsg| serde_json::to_vec(m).unwrap();
        let join = ClientMsg::JoinNetwork {
            id: 1,
            name: "net".into(),
            password: "pw".into(),
        };
        to_server.send(frame(&join)).await.unwrap();
        until("mallory is a member", || {
            server.hub().registry.is_member(&mallory, "net")
        })
        .await;

        // Bob leaves and joins 100 times: each time mallory is sent bob's removal, his record
        // and a call: far more than 16 messages, all about bob.
        let bob = key(BOB);
        for round in 0..100u8 {
            let leave = ClientMsg::LeaveNetwork {
                id: 1,
                name: "net".into(),
            };
            handle(&server, bob, remote(round), leave).await;
            let rejoin = ClientMsg::JoinNetwork {
                id: 2,
                name: "net".into(),
                password: "pw".into(),
            };
            handle(&server, bob, remote(round), rejoin).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!task.is_finished(), "churn alone overflowed the queue");
        assert_eq!(server.slow_readers.load(Ordering::Relaxed), 0);

        // Replies cannot replace each other: 40 of them overflow it.
        for id in 10..50 {
            let list = ClientMsg::ListInvites {
                id,
                network: "net".into(),
            };
            if to_server.send(frame(&list)).await.is_err() {
                break;
            }
        }
        let ended = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the session ended")
            .unwrap();
        let why = format!("{:#}", ended.unwrap_err());
        assert!(why.contains("read too slowly"), "{why}");
        assert_eq!(server.slow_readers.load(Ordering::Relaxed), 1);

        // The others: alice hears mallory went offline and is still served.
        assert!(!server.hub().online.contains_key(&mallory));
        let got = drain(&mut inbox[0]);
        assert!(
            got.iter().any(
                |m| matches!(m, ServerMsg::PeerUpsert { peer, .. } if peer.key == mallory && !peer.online)
            ),
            "{got:?}"
        );
        let list = ClientMsg::ListInvites {
            id: 99,
            network: "net".into(),
        };
        handle(&server, key(ALICE), remote(1), list).await;
        assert!(matches!(
            drain(&mut inbox[0]).as_slice(),
            [ServerMsg::Invites { id: 99, .. }]
        ));
    }

    /// While Argon2 checks one host's password (made deliberately slow here), another
    /// session's request is answered at once: the check holds no lock.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_password_check_does_not_hold_up_other_sessions() {
        use warren_coordinator_core::password::hash_password;
        let tmp = tempfile::tempdir().unwrap();
        let (server, mut inbox) = setup(tmp.path());
        let (alice, carol) = (key(ALICE), key(CAROL));
        let slow = HashParams::new(64 * 1024, 8, 1, None).unwrap();
        let t = std::time::Instant::now();
        let phc = hash_password(&slow, "right", &[1; 16]).unwrap();
        let cost = t.elapsed();
        {
            let mut hub = server.hub();
            let c = hub
                .registry
                .create_network_hashed(alice, "slow", phc, 1)
                .unwrap();
            hub.persist(&c).unwrap();
        }
        let server = Arc::new(server);
        let guess = tokio::spawn({
            let server = server.clone();
            async move {
                let join = ClientMsg::JoinNetwork {
                    id: 1,
                    name: "slow".into(),
                    password: "wrong".into(),
                };
                handle(&server, carol, remote(3), join).await
            }
        });
        tokio::time::sleep(cost / 10).await;
        let t = std::time::Instant::now();
        let list = ClientMsg::ListInvites {
            id: 2,
            network: "net".into(),
        };
        handle(&server, alice, remote(1), list).await;
        let served = t.elapsed();
        assert!(
            served < cost / 4,
            "served in {served:?} while a hash takes {cost:?}"
        );
        assert!(
            !guess.is_finished(),
            "the guess ended first (a hash takes {cost:?}): the test proves nothing"
        );
        assert!(matches!(
            drain(&mut inbox[0]).as_slice(),
            [ServerMsg::Invites { id: 2, .. }]
        ));
        guess.await.unwrap();
        let (code, message) = error_of(&drain(&mut inbox[2]), 1);
        assert_eq!(
            (code, message.as_str()),
            (ErrorCode::WrongPassword, "wrong password for network slow")
        );
    }

    /// Guesses at one network from many addresses, and password requests of any kind over
    /// the whole coordinator, are limited, and the user is told which limit and how long.
    #[tokio::test]
    async fn password_attempts_are_limited_per_network_and_overall() {
        use warren_coordinator_core::ratelimit::{GLOBAL, PER_NETWORK};
        use warren_coordinator_core::{PasswordLimiter, RateLimitConfig};
        let tmp = tempfile::tempdir().unwrap();
        let (server, mut inbox) = setup(tmp.path());
        let carol = key(CAROL);
        let guess = |id| ClientMsg::JoinNetwork {
            id,
            name: "NET".into(),
            password: format!("guess{id}"),
        };
        for id in 0..PER_NETWORK.burst as u64 {
            handle(&server, carol, remote(100 + id as u8), guess(id)).await;
            assert_eq!(
                error_of(&drain(&mut inbox[2]), id).0,
                ErrorCode::WrongPassword
            );
        }
        handle(&server, carol, remote(99), guess(50)).await;
        let (code, message) = error_of(&drain(&mut inbox[2]), 50);
        assert_eq!(code, ErrorCode::RateLimited);
        assert_eq!(
            message,
            "too many password attempts for network net in the last minute: try again in 6 s"
        );
        // Another network is not affected, and neither is the right password elsewhere.
        let create = ClientMsg::CreateNetwork {
            id: 51,
            name: "other".into(),
            password: "pw".into(),
        };
        handle(&server, carol, remote(99), create).await;
        assert_eq!(drain(&mut inbox[2]), [ServerMsg::Ok { id: 51 }]);

        // Overall: three attempts a minute here, whatever the address or network.
        server.hub().passwords = PasswordLimiter::new(
            PER_NETWORK,
            RateLimitConfig {
                interval_ms: 60_000,
                burst: 3,
                ..GLOBAL
            },
        );
        let set = |id, network: &str| ClientMsg::SetPassword {
            id,
            network: network.into(),
            password: "new".into(),
        };
        handle(&server, carol, remote(98), set(60, "other")).await;
        handle(&server, key(ALICE), remote(97), set(61, "net")).await;
        let create = |id| ClientMsg::CreateNetwork {
            id,
            name: format!("n{id}"),
            password: "pw".into(),
        };
        handle(&server, key(BOB), remote(96), create(62)).await;
        handle(&server, key(BOB), remote(95), create(63)).await;
        assert!(drain(&mut inbox[2]).contains(&ServerMsg::Ok { id: 60 }));
        assert!(drain(&mut inbox[0]).contains(&ServerMsg::Ok { id: 61 }));
        let bob = drain(&mut inbox[1]);
        assert_eq!(bob[0], ServerMsg::Ok { id: 62 });
        let (code, message) = error_of(&bob[1..], 63);
        assert_eq!(code, ErrorCode::RateLimited);
        assert_eq!(
            message,
            "the coordinator is checking too many passwords at the moment: try again in 60 s"
        );
        assert!(!server
            .hub()
            .registry
            .networks_of(&key(BOB))
            .contains(&"n63".to_string()));
    }

    /// A password Argon2 found right is not checked (nor counted) again: friends joining with
    /// it get in while guesses at the same network are refused by its limit; a wrong one, and
    /// the old one after a password change, still are guesses.
    #[tokio::test]
    async fn the_right_password_again_costs_no_attempt() {
        use warren_coordinator_core::ratelimit::PER_NETWORK;
        let tmp = tempfile::tempdir().unwrap();
        let (server, mut inbox) = setup(tmp.path());
        let carol = key(CAROL);
        let join = |id, password: &str| ClientMsg::JoinNetwork {
            id,
            name: "net".into(),
            password: password.into(),
        };
        let leave = |id| ClientMsg::LeaveNetwork {
            id,
            name: "net".into(),
        };
        handle(&server, carol, remote(100), join(1, "pw")).await;
        assert!(drain(&mut inbox[2]).contains(&ServerMsg::Ok { id: 1 }));
        handle(&server, carol, remote(100), leave(2)).await;
        // The first check spent one attempt; the guesses spend the rest.
        for id in 1..PER_NETWORK.burst as u64 {
            handle(
                &server,
                carol,
                remote(101 + id as u8),
                join(10 + id, "guess"),
            )
            .await;
        }
        drain(&mut inbox[2]);
        handle(&server, carol, remote(99), join(50, "guess")).await;
        let (code, _) = error_of(&drain(&mut inbox[2]), 50);
        assert_eq!(code, ErrorCode::RateLimited, "the network's limit is spent");
        handle(&server, carol, remote(98), join(51, "pw")).await;
        assert!(drain(&mut inbox[2]).contains(&ServerMsg::Ok { id: 51 }));
        assert!(server.hub().registry.is_member(&carol, "net"));

        // A new password (the limits renewed): the old one is checked again, and is wrong.
        let set = ClientMsg::SetPassword {
            id: 60,
            network: "net".into(),
            password: "new".into(),
        };
        server.hub().passwords = Default::default();
        handle(&server, key(ALICE), remote(97), set).await;
        assert!(drain(&mut inbox[0]).contains(&ServerMsg::Ok { id: 60 }));
        handle(&server, carol, remote(98), leave(61)).await;
        handle(&server, carol, remote(98), join(62, "pw")).await;
        assert!(drain(&mut inbox[2]).iter().any(|m| matches!(
            m,
            ServerMsg::Error {
                id: 62,
                code: ErrorCode::WrongPassword,
                ..
            }
        )));
        assert!(!server.hub().registry.is_member(&carol, "net"));
    }

    /// Joins with a remembered password still count against their address's join limit:
    /// someone who knows the password cannot join and leave as fast as they can send.
    #[tokio::test]
    async fn remembered_passwords_still_count_as_joins_from_their_address() {
        let tmp = tempfile::tempdir().unwrap();
        let (server, mut inbox) = setup(tmp.path());
        let carol = key(CAROL);
        let mut refused = None;
        for round in 0..20u64 {
            let join = ClientMsg::JoinNetwork {
                id: 2 * round,
                name: "net".into(),
                password: "pw".into(),
            };
            handle(&server, carol, remote(100), join).await;
            let got = drain(&mut inbox[2]);
            if let Some(ServerMsg::Error { code, message, .. }) =
                got.iter().find(|m| matches!(m, ServerMsg::Error { .. }))
            {
                refused = Some((round, *code, message.clone()));
                break;
            }
            let leave = ClientMsg::LeaveNetwork {
                id: 2 * round + 1,
                name: "net".into(),
            };
            handle(&server, carol, remote(100), leave).await;
            drain(&mut inbox[2]);
        }
        let (round, code, message) = refused.expect("the address's join limit");
        assert!(round >= 2, "the first joins go through (round {round})");
        assert_eq!(code, ErrorCode::RateLimited);
        assert!(message.contains("from this address"), "{message}");
    }

    /// New keys from one address come at a rate and a refused one is not stored; keys the
    /// coordinator knows, and other addresses, are not held up.
    #[tokio::test]
    async fn new_keys_are_limited_per_source() {
        use warren_coordinator_core::ratelimit::NEW_KEYS;
        use warren_coordinator_core::{NewKeyLimiter, RateLimitConfig};
        let tmp = tempfile::tempdir().unwrap();
        let (server, _inbox) = setup(tmp.path());
        server.hub().new_keys = NewKeyLimiter::new(RateLimitConfig {
            burst: 2,
            ..NEW_KEYS
        });
        let from = remote(40);
        for i in 10..12 {
            register(&server, key(i), from, &hello(&format!("n{i}"), None)).unwrap();
        }
        let (code, message) = register(&server, key(12), from, &hello("n12", None)).unwrap_err();
        assert_eq!(code, ErrorCode::RateLimited);
        assert!(
            message.contains("connect this host again in 30 s"),
            "{message}"
        );
        {
            let hub = server.hub();
            assert_eq!(hub.registry.node_name(&key(12)), None);
            assert_eq!(hub.registry.lease_of(&key(12)), None);
            assert_eq!(hub.store.load().unwrap(), hub.registry.snapshot());
        }
        // Known keys reconnect from there; a new key from elsewhere registers.
        register(&server, key(10), from, &hello("n10", None)).unwrap();
        register(&server, key(ALICE), from, &hello("alice", None)).unwrap();
        register(&server, key(12), remote(41), &hello("n12", None)).unwrap();
    }

    /// When the database refuses a change, memory does not keep it: the client is told, its
    /// peers hear nothing, and the registry is what the database holds.
    #[tokio::test]
    async fn a_change_the_database_refuses_is_not_kept_in_memory() {
        let tmp = tempfile::tempdir().unwrap();
        let (server, mut inbox) = setup(tmp.path());
        let (alice, carol) = (key(ALICE), key(CAROL));
        let before = server.hub().registry.snapshot();
        server.hub().store.fail_writes(true);

        let join = ClientMsg::JoinNetwork {
            id: 1,
            name: "net".into(),
            password: "pw".into(),
        };
        handle(&server, carol, remote(3), join.clone()).await;
        let (code, message) = error_of(&drain(&mut inbox[2]), 1);
        assert_eq!(code, ErrorCode::Internal);
        assert!(
            message.starts_with("coordinator storage failed"),
            "{message}"
        );
        let create = ClientMsg::CreateNetwork {
            id: 2,
            name: "new".into(),
            password: "pw".into(),
        };
        handle(&server, carol, remote(3), create).await;
        assert_eq!(error_of(&drain(&mut inbox[2]), 2).0, ErrorCode::Internal);
        let invite = ClientMsg::CreateInvite {
            id: 3,
            network: "net".into(),
            ttl_secs: 60,
        };
        handle(&server, alice, remote(1), invite).await;
        assert_eq!(error_of(&drain(&mut inbox[0]), 3).0, ErrorCode::Internal);
        let newcomer = register(&server, key(20), remote(20), &hello("dave", None));
        assert_eq!(newcomer.unwrap_err().0, ErrorCode::Internal);
        for i in [0, 1] {
            assert!(drain(&mut inbox[i]).is_empty(), "member {i} heard of it");
        }
        {
            let hub = server.hub();
            assert_eq!(hub.registry.snapshot(), before);
            assert!(!hub.registry.is_member(&carol, "net"));
            assert_eq!(hub.registry.node_name(&key(20)), None);
            assert!(hub.registry.peers_of(&carol).is_empty());
        }

        // The database works again: so does the join, and both agree.
        server.hub().store.fail_writes(false);
        handle(&server, carol, remote(3), join).await;
        assert!(drain(&mut inbox[2]).contains(&ServerMsg::Ok { id: 1 }));
        let hub = server.hub();
        assert!(hub.registry.is_member(&carol, "net"));
        assert_eq!(hub.store.load().unwrap(), hub.registry.snapshot());
    }

    fn remote(last: u8) -> SocketAddr {
        SocketAddr::from(([198, 51, 100, last], 40000))
    }

    fn error_of(msgs: &[ServerMsg], want_id: u64) -> (ErrorCode, String) {
        match msgs {
            [ServerMsg::Error { id, code, message }] if *id == want_id => (*code, message.clone()),
            other => panic!("expected one error for request {want_id}, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn invite_join_and_logout_through_the_control_channel() {
        let tmp = tempfile::tempdir().unwrap();
        let (server, mut inbox) = setup(tmp.path());
        let (alice, bob, carol) = (key(ALICE), key(BOB), key(CAROL));

        // Only a member may invite.
        let ask = |id| ClientMsg::CreateInvite {
            id,
            network: "net".into(),
            ttl_secs: 3600,
        };
        handle(&server, carol, remote(3), ask(1)).await;
        let (code, message) = error_of(&drain(&mut inbox[2]), 1);
        assert_eq!(code, ErrorCode::NotAMember);
        assert_eq!(message, "this host is not a member of network net");

        let before = unix_now();
        handle(&server, alice, remote(1), ask(2)).await;
        let secret = match drain(&mut inbox[0]).as_slice() {
            [ServerMsg::Invite {
                id: 2,
                network,
                secret,
                expires,
            }] => {
                assert_eq!(network, "net");
                assert!((before + 3600..=unix_now() + 3600).contains(expires));
                assert!(parse_secret(secret).is_some(), "{secret}");
                secret.clone()
            }
            other => panic!("{other:?}"),
        };

        let join = |id, secret: &str| ClientMsg::JoinInvite {
            id,
            network: "net".into(),
            secret: secret.into(),
        };
        let wrong = URL_SAFE_NO_PAD.encode([0u8; 16]);
        handle(&server, carol, remote(3), join(3, &wrong)).await;
        let (code, message) = error_of(&drain(&mut inbox[2]), 3);
        assert_eq!(code, ErrorCode::InviteInvalid);
        assert!(message.contains("not valid for network net"), "{message}");

        // Carol joins: she learns both members, each of them learns her, then her Ok.
        handle(&server, carol, remote(3), join(4, &secret)).await;
        let got = drain(&mut inbox[2]);
        let upserts: Vec<NodeKey> = got
            .iter()
            .filter_map(|m| match m {
                ServerMsg::PeerUpsert { peer, .. } => Some(peer.key),
                _ => None,
            })
            .collect();
        assert_eq!(upserts, [alice, bob]);
        assert_eq!(got.last(), Some(&ServerMsg::Ok { id: 4 }));
        for i in [0, 1] {
            assert!(
                drain(&mut inbox[i])
                    .iter()
                    .any(|m| matches!(m, ServerMsg::PeerUpsert { peer, .. } if peer.key == carol)),
                "member {i} was not told about carol"
            );
        }
        // The invite is reusable and a repeated join is fine.
        handle(&server, carol, remote(3), join(5, &secret)).await;
        assert_eq!(drain(&mut inbox[2]), [ServerMsg::Ok { id: 5 }]);

        // Logout: both sides drop each other; carol keeps her address.
        let addr = server.hub().registry.lease_of(&carol).unwrap();
        handle(&server, carol, remote(3), ClientMsg::Logout { id: 6 }).await;
        let got = drain(&mut inbox[2]);
        assert_eq!(
            got,
            [
                ServerMsg::PeerRemove { key: alice },
                ServerMsg::PeerRemove { key: bob },
                ServerMsg::Ok { id: 6 }
            ]
        );
        for i in [0, 1] {
            assert_eq!(drain(&mut inbox[i]), [ServerMsg::PeerRemove { key: carol }]);
        }
        let hub = server.hub();
        assert!(hub.registry.networks_of(&carol).is_empty());
        assert_eq!(hub.registry.lease_of(&carol), Some(addr));
        // And it was persisted: the store agrees with the registry.
        assert_eq!(hub.store.load().unwrap(), hub.registry.snapshot());
    }

    #[tokio::test]
    async fn invite_joins_are_rate_limited_per_source() {
        let tmp = tempfile::tempdir().unwrap();
        let (server, mut inbox) = setup(tmp.path());
        let guess = |id| ClientMsg::JoinInvite {
            id,
            network: "net".into(),
            secret: URL_SAFE_NO_PAD.encode([id as u8; 16]),
        };
        let mut codes = Vec::new();
        for id in 1..=8 {
            handle(&server, key(CAROL), remote(9), guess(id)).await;
            codes.push(error_of(&drain(&mut inbox[2]), id).0);
        }
        let burst = warren_coordinator_core::RateLimitConfig::default().burst as usize;
        assert!(codes[..burst]
            .iter()
            .all(|c| *c == ErrorCode::InviteInvalid));
        assert!(codes[burst..].iter().all(|c| *c == ErrorCode::RateLimited));
        // Another source is not affected.
        handle(&server, key(CAROL), remote(10), guess(9)).await;
        assert_eq!(
            error_of(&drain(&mut inbox[2]), 9).0,
            ErrorCode::InviteInvalid
        );
    }

    #[tokio::test]
    async fn the_relay_stops_at_a_leave() {
        let tmp = tempfile::tempdir().unwrap();
        let (server, _inbox) = setup(tmp.path());
        let (alice, bob, carol) = (key(ALICE), key(BOB), key(CAROL));
        let mut cache = crate::relay::SharesCache::default();
        assert!(cache.shares(&server, &alice, &bob));
        assert!(!cache.shares(&server, &alice, &carol));
        // Answered from the cache until the registry changes.
        assert!(cache.shares(&server, &bob, &alice));
        let leave = ClientMsg::LeaveNetwork {
            id: 1,
            name: "net".into(),
        };
        handle(&server, bob, remote(2), leave).await;
        assert!(!cache.shares(&server, &alice, &bob));
    }

    #[tokio::test]
    async fn a_session_gets_a_relay_token_only_when_the_relay_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut server, _inbox) = setup(tmp.path());
        assert!(matches!(
            offer_relay(&server, key(ALICE), &[]),
            (None, None)
        ));
        let (handle, mut inbox) = crate::relay::channel(7446);
        server.relay = Some(handle);
        let (offer, lease) = offer_relay(&server, key(ALICE), &[]);
        let (offer, lease) = (offer.unwrap(), lease.unwrap());
        assert_eq!(offer, lease.offer());
        assert_eq!(offer.port, 7446);
        assert_eq!((offer.address, offer.ticket), (None, None));
        let token: [u8; 16] = URL_SAFE_NO_PAD
            .decode(&offer.token)
            .unwrap()
            .try_into()
            .unwrap();
        assert!(matches!(
            inbox.commands.try_recv(),
            Ok(crate::relay::Command::Add { node, token: t }) if node == key(ALICE) && t == token
        ));
        drop(lease);
        assert!(matches!(
            inbox.commands.try_recv(),
            Ok(crate::relay::Command::Remove { token: t }) if t == token
        ));
    }

    /// With `--relay-at`, a session is sent to the standalone relay with a ticket naming its
    /// networks, and every join or leave brings a fresh ticket before the peers hear of it.
    #[tokio::test]
    async fn a_standalone_relay_gets_tickets_that_follow_the_networks() {
        use warren_proto::relay_ticket::{self, network_tag, Ticket};
        let tmp = tempfile::tempdir().unwrap();
        let (mut server, mut inbox) = setup(tmp.path());
        let secret = [5u8; 32];
        let at: SocketAddr = "192.0.2.9:7450".parse().unwrap();
        server.external_relay = Some(ExternalRelay::new(at, secret));
        let open = |t: &str| Ticket::open(&relay_ticket::decode(t).unwrap(), &secret, unix_now());

        let carol = key(CAROL);
        let (offer, lease) = offer_relay(&server, carol, &[]);
        assert!(lease.is_none(), "the built-in relay is not involved");
        let offer = offer.unwrap();
        assert_eq!((offer.address, offer.port), (Some(at), 7450));
        let first = open(offer.ticket.as_deref().unwrap()).unwrap();
        assert_eq!(first.key, carol);
        assert!(first.tags.is_empty());
        assert_eq!(
            Some(first.token),
            warren_proto::relay::parse_token(&offer.token)
        );
        server.hub().online.get_mut(&carol).unwrap().relay_token = Some(first.token);

        let join = ClientMsg::JoinNetwork {
            id: 1,
            name: "net".into(),
            password: "pw".into(),
        };
        handle(&server, carol, remote(3), join).await;
        let msgs = drain(&mut inbox[2]);
        let ticket = match &msgs[..] {
            [ServerMsg::RelayTicket { ticket }, .., ServerMsg::Ok { id: 1 }] => {
                open(ticket).unwrap()
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(ticket.token, first.token);
        assert_eq!(ticket.tags, vec![network_tag("net")]);
        assert!(ticket.serial >= first.serial);

        handle(
            &server,
            carol,
            remote(3),
            ClientMsg::LeaveNetwork {
                id: 2,
                name: "net".into(),
            },
        )
        .await;
        match &drain(&mut inbox[2])[..] {
            [ServerMsg::RelayTicket { ticket }, .., ServerMsg::Ok { id: 2 }] => {
                assert!(open(ticket).unwrap().tags.is_empty())
            }
            other => panic!("{other:?}"),
        }
    }
}
