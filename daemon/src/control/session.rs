//! The control task: connect, authenticate, follow the coordinator's peer map, carry requests;
//! reconnect with backoff when the connection fails.

use super::link::{FrameWriter, Link};
use super::{lan, Answer, Command, ControlView, CoordinatorSettings, Reply, TunnelState};
use crate::dataplane::Dataplane;
use anyhow::{anyhow, Context, Result};
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use warren_daemon_core::peer::{PeerConfig, DEFAULT_KEEPALIVE_SECS};
use warren_proto::api::CoordinatorStatus;
use warren_proto::control::msg::{ClientMsg, NatKind, PeerInfo, ServerMsg, Welcome};
use warren_proto::key::NodeKey;

/// QUIC's head start, a TCP attempt, and its handshake, with room to spare.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(12);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub struct ControlContext {
    pub node_secret: [u8; 32],
    pub dataplane: Arc<Dataplane>,
    pub state_dir: PathBuf,
    pub tun: String,
    pub udp_port: u16,
    pub view: Arc<Mutex<ControlView>>,
    pub changed: watch::Sender<u64>,
    /// The router port mapping task: told of `up`/`down` and of a new public address; its
    /// mapping is advertised with our other endpoints.
    pub portmap: crate::portmap::Handle,
}

impl ControlContext {
    /// Changes what the API reports and wakes its subscribers.
    fn publish(&self, f: impl FnOnce(&mut ControlView)) {
        f(&mut self.view.lock().expect("control view lock"));
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

enum End {
    /// A command that needs the connection closed first (new coordinator, down).
    Command(Command),
    /// Logged out: the coordinator is forgotten.
    LoggedOut,
    Failed(String),
    /// The daemon is stopping.
    Closed,
}

/// The control task's state between connections.
struct Control {
    settings: Option<CoordinatorSettings>,
    up: bool,
    /// `warren up` waiting to hear whether the connection worked.
    pending_up: Option<Reply>,
    backoff: Duration,
    last_error: Option<String>,
    /// The last attempt was refused because another member has this host's name.
    name_taken: bool,
}

pub async fn run(ctx: ControlContext, mut commands: mpsc::Receiver<Command>) {
    let settings = CoordinatorSettings::load(&ctx.state_dir).unwrap_or_else(|e| {
        tracing::error!("{e:#}; waiting for `warren up`");
        None
    });
    let up = TunnelState::load(&ctx.state_dir)
        .unwrap_or_else(|e| {
            tracing::error!("{e:#}; starting up");
            TunnelState { up: true }
        })
        .up;
    let mut c = Control {
        settings,
        up,
        pending_up: None,
        backoff: Duration::from_secs(1),
        last_error: None,
        name_taken: false,
    };
    ctx.dataplane.node().set_up(up);
    if !up {
        tracing::info!("Warren was turned off (`warren down`); waiting for `warren up`");
    }
    loop {
        c.publish_status(&ctx, false);
        let target = if c.up { c.settings.clone() } else { None };
        let Some(current) = target else {
            match commands.recv().await {
                Some(cmd) => {
                    c.command(&ctx, cmd);
                }
                None => return,
            }
            continue;
        };
        match session(&ctx, &current, &mut commands, &mut c).await {
            End::Command(cmd) => {
                c.command(&ctx, cmd);
                continue;
            }
            End::LoggedOut => continue,
            End::Closed => return,
            End::Failed(e) => {
                tracing::warn!(coordinator = %current.address, "{e}");
                c.last_error = Some(e.clone());
                // Before the answer, so whoever waited sees why (e.g. `name_taken`) in status.
                c.publish_status(&ctx, false);
                if let Some(reply) = c.pending_up.take() {
                    let _ = reply.send(Err(format!(
                        "cannot reach the coordinator at {}: {e} (will keep trying)",
                        current.address
                    )));
                }
            }
        }
        c.publish_status(&ctx, false);
        // Wait before retrying, still answering the local API.
        let retry = tokio::time::sleep(c.backoff);
        tokio::pin!(retry);
        loop {
            tokio::select! {
                _ = &mut retry => break,
                cmd = commands.recv() => match cmd {
                    Some(cmd) => {
                        if c.command(&ctx, cmd) {
                            break;
                        }
                    }
                    None => return,
                },
            }
        }
        c.backoff = (c.backoff * 2).min(MAX_BACKOFF);
    }
}

impl Control {
    /// Carries out a command while no connection is open; `true` when what to connect to
    /// changed, so the caller should act now instead of finishing a backoff.
    fn command(&mut self, ctx: &ControlContext, cmd: Command) -> bool {
        match cmd {
            Command::Up(Some(new), reply) => {
                let other = self.settings.as_ref().is_some_and(|old| {
                    old.address != new.address || old.public_key != new.public_key
                });
                if other {
                    // Another coordinator's peers and networks mean nothing to this one.
                    drop_coordinator_peers(ctx);
                }
                if let Err(e) = new.save(&ctx.state_dir) {
                    tracing::warn!("cannot remember the coordinator: {e:#}");
                }
                self.settings = Some(new);
                self.set_up(ctx, true);
                self.last_error = None;
                self.name_taken = false;
                self.wait_for_connection(reply);
                true
            }
            Command::Up(None, reply) => {
                self.set_up(ctx, true);
                match &self.settings {
                    None => {
                        let _ = reply.send(Ok(Answer::Done(
                            "Warren is up with static peers only (no coordinator yet: \
                             `warren up --coordinator HOST:PORT --coordinator-key KEY` or \
                             `warren up INVITE` to join networks)"
                                .into(),
                        )));
                        false
                    }
                    Some(_) => {
                        self.wait_for_connection(reply);
                        true
                    }
                }
            }
            Command::Down(reply) => {
                self.cancel_pending_up("cancelled by `warren down`");
                self.set_up(ctx, false);
                let _ = reply.send(Ok(Answer::Done(
                    "Warren is down: nothing is carried until `warren up` (identity, \
                     coordinator and networks are kept)"
                        .into(),
                )));
                true
            }
            Command::Logout { force, reply } => {
                let answer = match &self.settings {
                    None => Err("not logged in to a coordinator".into()),
                    Some(s) if !force => Err(format!(
                        "cannot log out while not connected to the coordinator at {} (it would \
                         keep this host in its networks): try again once `warren status` says \
                         connected, or `warren logout --force` to forget it on this host only",
                        s.address
                    )),
                    Some(s) => {
                        let text = format!(
                            "forgot coordinator {} on this host only; it still lists this host \
                             in its networks",
                            s.address
                        );
                        self.cancel_pending_up("cancelled by `warren logout`");
                        self.settings = None;
                        forget_coordinator(ctx);
                        Ok(Answer::Done(text))
                    }
                };
                let _ = reply.send(answer);
                true
            }
            Command::Request(_, reply) => {
                let why = if !self.up {
                    "Warren is down: run `warren up` first".to_string()
                } else if let Some(s) = &self.settings {
                    format!(
                        "the coordinator at {} is unreachable right now ({}); retrying",
                        s.address,
                        self.last_error.as_deref().unwrap_or("connecting")
                    )
                } else {
                    "not connected to a coordinator: run `warren up --coordinator HOST:PORT \
                     --coordinator-key KEY` or `warren up INVITE` first"
                        .to_string()
                };
                let _ = reply.send(Err(why));
                false
            }
        }
    }

    fn cancel_pending_up(&mut self, why: &str) {
        if let Some(r) = self.pending_up.take() {
            let _ = r.send(Err(why.to_string()));
        }
    }

    fn wait_for_connection(&mut self, reply: Reply) {
        if let Some(old) = self.pending_up.replace(reply) {
            let _ = old.send(Err("superseded by a newer `warren up`".into()));
        }
        self.backoff = Duration::from_secs(1);
    }

    fn set_up(&mut self, ctx: &ControlContext, up: bool) {
        self.up = up;
        if let Err(e) = (TunnelState { up }).save(&ctx.state_dir) {
            tracing::warn!(
                "cannot remember that Warren is {}: {e:#}",
                if up { "up" } else { "down" }
            );
        }
        ctx.dataplane.node().set_up(up);
        ctx.portmap.send(crate::portmap::Command::Enabled(up));
        tracing::info!(up, "tunnel state changed");
    }

    fn publish_status(&self, ctx: &ControlContext, connected: bool) {
        ctx.publish(|v| {
            v.coordinator = self.settings.as_ref().map(|s| {
                let old = v.coordinator.take();
                CoordinatorStatus {
                    address: s.address.clone(),
                    name: s.name.clone(),
                    overlay_ip: old.as_ref().and_then(|c| c.overlay_ip),
                    public_key: s.public_key,
                    connected,
                    last_error: if connected {
                        None
                    } else {
                        self.last_error.clone()
                    },
                    name_taken: !connected && self.name_taken,
                    rtt_ms: None,
                    transport: None,
                    owned: old.as_ref().map(|c| c.owned.clone()).unwrap_or_default(),
                    locked: old.as_ref().map(|c| c.locked.clone()).unwrap_or_default(),
                    requests: old.as_ref().map(|c| c.requests.clone()).unwrap_or_default(),
                    waiting: old.as_ref().map(|c| c.waiting.clone()).unwrap_or_default(),
                    networks: old.map(|c| c.networks).unwrap_or_default(),
                }
            });
            v.alternates = self
                .settings
                .as_ref()
                .map(|s| s.alternates.clone())
                .unwrap_or_default();
            if !connected {
                v.connection = None;
            }
        });
    }
}

/// Drops everything the coordinator brought: its peers, its networks, the remembered settings.
fn forget_coordinator(ctx: &ControlContext) {
    if let Err(e) = CoordinatorSettings::forget(&ctx.state_dir) {
        tracing::warn!("cannot forget the coordinator: {e:#}");
    }
    drop_coordinator_peers(ctx);
}

/// A standalone relay's ticket as the coordinator sends it (base64url); `None`, with a warning,
/// if it is not (then the relay will not admit us, and peers are reached directly only).
fn decode_ticket(ticket: &str) -> Option<Vec<u8>> {
    let sealed = warren_proto::relay_ticket::decode(ticket);
    if sealed.is_none() {
        tracing::warn!("unreadable relay ticket from the coordinator");
    }
    sealed
}

/// Removes the peers, networks and relay a coordinator brought.
fn drop_coordinator_peers(ctx: &ControlContext) {
    let keys: Vec<NodeKey> = ctx
        .view
        .lock()
        .expect("control view lock")
        .peer_networks
        .keys()
        .copied()
        .collect();
    {
        let mut node = ctx.dataplane.node();
        for k in &keys {
            node.remove_peer(k);
        }
        node.set_relay(std::time::Instant::now(), None);
    }
    ctx.publish(|v| *v = ControlView::default());
}

fn set_overlay_ip(ctx: &ControlContext, ip: std::net::IpAddr) {
    ctx.publish(|v| {
        if let Some(st) = v.coordinator.as_mut() {
            st.overlay_ip = Some(ip);
        }
    });
}

fn set_networks(ctx: &ControlContext, networks: Vec<String>) {
    ctx.publish(|v| {
        if let Some(st) = v.coordinator.as_mut() {
            st.networks = networks;
        }
    });
}

async fn resolve(address: &str) -> Result<SocketAddr> {
    tokio::net::lookup_host(address)
        .await
        .with_context(|| format!("cannot resolve {address}"))?
        .next()
        .ok_or_else(|| anyhow!("{address} has no address"))
}

async fn session(
    ctx: &ControlContext,
    s: &CoordinatorSettings,
    commands: &mut mpsc::Receiver<Command>,
    c: &mut Control,
) -> End {
    let connecting = tokio::time::timeout(CONNECT_TIMEOUT, connect(ctx, s));
    tokio::pin!(connecting);
    // Commands still get answers while a connection is being made.
    let connected = loop {
        tokio::select! {
            r = &mut connecting => break r,
            cmd = commands.recv() => match cmd {
                None => return End::Closed,
                Some(cmd @ (Command::Up(Some(_), _) | Command::Down(_) | Command::Logout { .. })) => {
                    return End::Command(cmd);
                }
                Some(cmd) => {
                    c.command(ctx, cmd);
                }
            },
        }
    };
    let connected = match connected {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            c.name_taken = e.is::<super::connect::NameTaken>();
            return End::Failed(format!("{e:#}"));
        }
        Err(_) => {
            c.name_taken = false;
            return End::Failed("timed out".into());
        }
    };
    let (mut link, welcome) = connected;
    tracing::info!(transport = ?link.transport(), remote = %link.remote, "control connection up");
    c.backoff = Duration::from_secs(1);
    c.last_error = None;
    c.name_taken = false;
    c.publish_status(ctx, true);
    ctx.publish(|v| v.connection = Some(link.info.clone()));
    set_networks(ctx, welcome.networks.clone());
    set_overlay_ip(ctx, welcome.overlay_ip);
    if let Err(e) = ctx.dataplane.use_overlay_ip(welcome.overlay_ip) {
        tracing::warn!("cannot move the interface to {}: {e:#}", welcome.overlay_ip);
    }
    tracing::info!(coordinator = %s.address, overlay = %welcome.overlay_ip, networks = ?welcome.networks, "connected to the coordinator");
    if let Some(reply) = c.pending_up.take() {
        let _ = reply.send(Ok(Answer::Done(format!(
            "connected to {} as {} ({})",
            s.address, s.name, welcome.overlay_ip
        ))));
    }
    if let [p1, p2, ..] = welcome.stun_ports[..] {
        let ip = link.remote.ip();
        let servers = [SocketAddr::new(ip, p1), SocketAddr::new(ip, p2)];
        ctx.publish(|v| v.stun_servers = Some(servers));
        ctx.dataplane
            .node()
            .start_discovery(std::time::Instant::now(), servers);
        ctx.dataplane.flush_now();
    }
    let relay = welcome.relay.as_ref().and_then(|r| {
        let token = warren_proto::relay::parse_token(&r.token)?;
        // A standalone relay has its own address; the coordinator's is where the link goes
        // (or, over TCP, the loopback shim that carries relay frames on the link).
        let server = r.address.unwrap_or_else(|| link.relay_server(r.port));
        Some((server, token))
    });
    if let Some((server, _)) = relay {
        tracing::info!(%server, transport = ?link.transport(), "relay offered");
    }
    {
        let now = std::time::Instant::now();
        let mut node = ctx.dataplane.node();
        node.set_relay(now, relay);
        let ticket = welcome.relay.as_ref().and_then(|r| r.ticket.as_deref());
        node.set_relay_ticket(now, ticket.and_then(decode_ticket));
    }
    ctx.dataplane.flush_now();
    let mut discovery_check = tokio::time::interval(Duration::from_millis(250));
    // A mapping held from before this connection is news to the coordinator (it forgets a
    // node's endpoints when the connection ends): advertise it at once.
    let mut mapping = ctx.portmap.current.clone();
    if mapping.borrow().is_some() {
        mapping.mark_changed();
    } else {
        mapping.mark_unchanged();
    }
    let mut reflexive = ctx.dataplane.node().discovery().and_then(|d| d.reflexive);
    let mut networks = welcome.networks;
    let mut pending: HashMap<u64, (Reply, ClientMsg)> = HashMap::new();
    let mut next_id = 1u64;
    loop {
        tokio::select! {
            frame = link.reader.read_frame() => {
                let frame = match frame {
                    Ok(f) => f,
                    Err(e) => {
                        for (_, (reply, _)) in pending.drain() {
                            let _ = reply.send(Err("the coordinator connection dropped; try again".into()));
                        }
                        return End::Failed(format!("connection lost: {e:#}"));
                    }
                };
                let msg: ServerMsg = match serde_json::from_slice(&frame) {
                    Ok(m) => m,
                    Err(e) => {
                        tracing::warn!("unintelligible message from the coordinator: {e}");
                        continue;
                    }
                };
                match msg {
                    ServerMsg::RelayTicket { ticket } => {
                        let ticket = decode_ticket(&ticket);
                        ctx.dataplane.node().set_relay_ticket(std::time::Instant::now(), ticket);
                        ctx.dataplane.flush_now();
                    }
                    ServerMsg::Ok { id } => {
                        let Some((reply, req)) = pending.remove(&id) else { continue };
                        let text = match &req {
                            ClientMsg::CreateNetwork { name, .. } => {
                                // The coordinator compares names case-insensitively, in lowercase.
                                networks.push(name.to_ascii_lowercase());
                                format!("created network {name} and joined it")
                            }
                            ClientMsg::JoinNetwork { name, .. } => {
                                networks.push(name.to_ascii_lowercase());
                                format!("joined network {name}")
                            }
                            ClientMsg::JoinInvite { network, .. } => {
                                networks.push(network.to_ascii_lowercase());
                                format!("joined network {network}")
                            }
                            ClientMsg::LeaveNetwork { name, .. } => {
                                networks.retain(|n| !n.eq_ignore_ascii_case(name));
                                format!("left network {name}")
                            }
                            ClientMsg::Logout { .. } => {
                                link.close(b"logged out");
                                c.settings = None;
                                forget_coordinator(ctx);
                                let left = if networks.is_empty() {
                                    String::new()
                                } else {
                                    format!(", left {}", networks.join(", "))
                                };
                                let _ = reply.send(Ok(Answer::Done(format!(
                                    "logged out of {}{left}; this host's identity is kept",
                                    s.address
                                ))));
                                for (_, (r, _)) in pending.drain() {
                                    let _ = r.send(Err("logged out".into()));
                                }
                                return End::LoggedOut;
                            }
                            other => super::owner::done_text(other),
                        };
                        networks.sort();
                        networks.dedup();
                        set_networks(ctx, networks.clone());
                        let _ = reply.send(Ok(Answer::Done(text)));
                    }
                    ServerMsg::Invite { id, network, secret, expires } => {
                        if let Some((reply, _)) = pending.remove(&id) {
                            let _ = reply.send(Ok(Answer::Invite { network, secret, expires }));
                        }
                    }
                    ServerMsg::JoinPending { id, network } => {
                        if let Some((reply, _)) = pending.remove(&id) {
                            super::owner::pending(reply, &network);
                        }
                    }
                    ServerMsg::Invites { id, invites } => {
                        if let Some((reply, _)) = pending.remove(&id) {
                            let _ = reply.send(Ok(Answer::Invites(invites)));
                        }
                    }
                    ServerMsg::Networks { networks: states, waiting, note } => {
                        ctx.publish(|v| {
                            super::owner::apply_networks(v, &mut networks, states, waiting, note)
                        });
                    }
                    ServerMsg::Error { id, message, .. } => {
                        if let Some((reply, _)) = pending.remove(&id) {
                            let _ = reply.send(Err(message));
                        }
                    }
                    ServerMsg::AddressClash { ip } => {
                        tracing::warn!(%ip, "a member sees another host at this host's address");
                    }
                    ServerMsg::PeerUpsert { peer } => upsert_peer(ctx, &peer),
                    ServerMsg::PeerRemove { key } => {
                        ctx.dataplane.node().remove_peer(&key);
                        ctx.publish(|v| {
                            v.peer_networks.remove(&key);
                        });
                    }
                    ServerMsg::CallMeMaybe { key, lan, reflexive, mapped } => {
                        tracing::debug!(peer = %key, ?lan, ?reflexive, ?mapped, "call me maybe");
                        let known = ctx.dataplane.node().handle_call_me_maybe(
                            std::time::Instant::now(),
                            &key,
                            &lan,
                            reflexive,
                            mapped,
                        );
                        if known {
                            // Probe at once: both sides were told at the same moment.
                            ctx.dataplane.flush_now();
                        }
                    }
                }
            }
            _ = discovery_check.tick() => {
                let event = ctx.dataplane.node().poll_discovery_event();
                if let Some(d) = event {
                    tracing::info!(reflexive = ?d.reflexive, nat = ?d.nat, "endpoint discovery");
                    if reflexive.is_some() && d.reflexive.is_some() && d.reflexive != reflexive {
                        // A new public address: a new uplink, or a router that restarted and
                        // may have forgotten our mapping.
                        ctx.portmap.send(crate::portmap::Command::NetworkChanged);
                    }
                    reflexive = d.reflexive.or(reflexive);
                    if let Err(e) = send_endpoints(ctx, &mut link.writer).await {
                        return End::Failed(e);
                    }
                    // Subscribers see the new reflexive address and NAT kind.
                    ctx.publish(|_| {});
                }
            }
            Ok(()) = mapping.changed() => {
                let m = *mapping.borrow_and_update();
                tracing::debug!(mapped = ?m.map(|m| m.external), "advertising the port mapping");
                if let Err(e) = send_endpoints(ctx, &mut link.writer).await {
                    return End::Failed(e);
                }
                ctx.publish(|_| {});
            }
            cmd = commands.recv() => match cmd {
                None => {
                    link.close(b"daemon stopping");
                    return End::Closed;
                }
                Some(Command::Up(Some(new), reply)) if new == *s => {
                    let _ = reply.send(Ok(Answer::Done(format!(
                        "already connected to {} as {}",
                        s.address, s.name
                    ))));
                }
                Some(Command::Up(None, reply)) => {
                    let _ = reply.send(Ok(Answer::Done(format!(
                        "Warren is up, connected to {} as {}",
                        s.address, s.name
                    ))));
                }
                Some(cmd @ (Command::Up(..) | Command::Down(_))) => {
                    link.close(b"reconfigured");
                    for (_, (r, _)) in pending.drain() {
                        let _ = r.send(Err("the coordinator connection was closed".into()));
                    }
                    return End::Command(cmd);
                }
                Some(Command::Logout { reply, .. }) => {
                    if let Err(e) = send_request(&mut link.writer, &mut pending, &mut next_id, ClientMsg::Logout { id: 0 }, reply).await {
                        return End::Failed(e);
                    }
                }
                Some(Command::Request(msg, reply)) => {
                    if let Err(e) = send_request(&mut link.writer, &mut pending, &mut next_id, msg, reply).await {
                        return End::Failed(e);
                    }
                }
            },
        }
    }
}

/// Tells the coordinator every candidate we know of now (LAN addresses, STUN's answer, the
/// router's port mapping).
async fn send_endpoints(ctx: &ControlContext, send: &mut FrameWriter) -> Result<(), String> {
    let discovery = ctx.dataplane.node().discovery();
    let msg = ClientMsg::Endpoints {
        lan: lan::lan_endpoints(ctx.udp_port, &ctx.tun),
        reflexive: discovery.and_then(|d| d.reflexive),
        nat: discovery.map(|d| d.nat).unwrap_or(NatKind::Unknown),
        mapped: ctx.portmap.current.borrow().map(|m| m.external),
    };
    let bytes = serde_json::to_vec(&msg).expect("serializable");
    send.write_frame(&bytes)
        .await
        .map_err(|e| format!("send failed: {e:#}"))
}

/// Sends a request under a fresh id and remembers who waits for its answer.
async fn send_request(
    send: &mut FrameWriter,
    pending: &mut HashMap<u64, (Reply, ClientMsg)>,
    next_id: &mut u64,
    msg: ClientMsg,
    reply: Reply,
) -> Result<(), String> {
    let msg = msg.with_id(*next_id);
    let bytes = serde_json::to_vec(&msg).expect("serializable");
    if let Err(e) = send.write_frame(&bytes).await {
        let _ = reply.send(Err(format!("cannot reach the coordinator: {e:#}")));
        return Err(format!("send failed: {e:#}"));
    }
    pending.insert(*next_id, (reply, msg));
    *next_id += 1;
    Ok(())
}

/// Connects to the coordinator at any of its addresses: all are tried at once, the first
/// that gets through the handshake is used.
async fn connect(ctx: &ControlContext, s: &CoordinatorSettings) -> Result<(Link, Welcome)> {
    if s.alternates.is_empty() {
        let addr = resolve(&s.address).await?;
        return super::connect::connect(ctx, s, addr).await;
    }
    let mut attempts: Vec<super::connect::Pending<'_, Result<(Link, Welcome)>>> = Vec::new();
    for a in std::iter::once(&s.address).chain(&s.alternates) {
        attempts.push(Box::pin(async move {
            let addr = resolve(a).await?;
            super::connect::connect(ctx, s, addr)
                .await
                .with_context(|| format!("at {a}"))
        }));
    }
    let mut errors = Vec::new();
    while !attempts.is_empty() {
        let (r, i) = super::connect::first_of(&mut attempts).await;
        drop(attempts.swap_remove(i));
        match r {
            Ok(connected) => return Ok(connected),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    Err(anyhow!(errors.join("; ")))
}

/// Adds or refreshes a peer the coordinator told us about. Until path probing lands, the
/// WireGuard endpoint starts at the peer's first LAN candidate (else its reflexive address)
/// and then follows authenticated packets (roaming).
fn upsert_peer(ctx: &ControlContext, info: &PeerInfo) {
    ctx.publish(|v| {
        v.peer_networks.insert(info.key, info.networks.clone());
    });
    let mut node = ctx.dataplane.node();
    // The coordinator leases IPv4; the IPv6 overlay address is the one derived from the key,
    // as every daemon derives its own (so IPv6, link-scope multicast included, works too).
    let allowed: Vec<IpNet> = vec![
        info.overlay_ip.into(),
        std::net::IpAddr::V6(warren_proto::overlay::derive_v6(&info.key)).into(),
    ];
    if let Some(id) = node.peer_id(&info.key) {
        let same = node.peer(id).is_some_and(|p| p.allowed_ips() == allowed);
        if same {
            node.rename_peer(&info.key, &info.name);
            node.set_peer_nat(&info.key, info.nat);
            if node.peer(id).is_some_and(|p| p.endpoint().is_none()) {
                if let Some(ep) = first_candidate(info) {
                    node.set_endpoint(&info.key, ep);
                }
            }
            return;
        }
        node.remove_peer(&info.key);
    }
    let config = PeerConfig {
        name: info.name.clone(),
        public_key: info.key,
        allowed_ips: allowed,
        endpoint: first_candidate(info),
        persistent_keepalive: Some(DEFAULT_KEEPALIVE_SECS),
        relay: true,
    };
    if let Err(e) = node.add_peer(config) {
        tracing::warn!(peer = %info.name, "cannot add peer from the coordinator: {e}");
    }
    node.set_peer_nat(&info.key, info.nat);
}

/// The endpoint WireGuard starts with before any probe answered: a port mapping is reachable
/// from anywhere, so it is the best guess; then the first LAN address, then STUN's answer.
fn first_candidate(info: &PeerInfo) -> Option<SocketAddr> {
    info.mapped
        .or_else(|| info.lan.first().copied())
        .or(info.reflexive)
}
