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

mod requests;

use requests::handle;
pub(crate) use requests::{membership, storage_failed};

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

#[cfg(test)]
mod tests;
