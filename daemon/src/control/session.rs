//! The control task: connect, authenticate, follow the coordinator's peer map, carry requests;
//! reconnect with backoff when the connection fails.

use super::quic::{client_endpoint, read_frame, write_frame};
use super::{lan, Command, CoordinatorSettings};
use crate::dataplane::Dataplane;
use anyhow::{anyhow, Context, Result};
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use warren_daemon_core::peer::{PeerConfig, DEFAULT_KEEPALIVE_SECS};
use warren_proto::api::CoordinatorStatus;
use warren_proto::control::auth::{ClientHandshake, BINDING_LEN, EXPORTER_LABEL};
use warren_proto::control::msg::{ClientMsg, Hello, PeerInfo, ServerMsg, Welcome, CONTROL_VERSION};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub struct ControlContext {
    pub node_secret: [u8; 32],
    pub dataplane: Arc<Dataplane>,
    pub state_dir: PathBuf,
    pub tun: String,
    pub udp_port: u16,
    pub status: Arc<Mutex<Option<CoordinatorStatus>>>,
}

type Reply = oneshot::Sender<Result<String, String>>;

enum End {
    /// `warren up` named another coordinator (or name): connect to that now.
    NewSettings(CoordinatorSettings, Reply),
    Failed(String),
    /// The daemon is stopping.
    Closed,
}

pub async fn run(ctx: ControlContext, mut commands: mpsc::Receiver<Command>) {
    let mut settings = match CoordinatorSettings::load(&ctx.state_dir) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e:#}; waiting for `warren up`");
            None
        }
    };
    let mut pending_up: Option<Reply> = None;
    let mut backoff = Duration::from_secs(1);
    loop {
        let Some(current) = settings.clone() else {
            match commands.recv().await {
                Some(Command::Up(new, reply)) => {
                    settings = Some(adopt(&ctx, new));
                    pending_up = Some(reply);
                }
                Some(Command::Request(_, reply)) => {
                    let _ = reply.send(Err(
                        "not connected to a coordinator: run `warren up --coordinator HOST:PORT \
                         --coordinator-key KEY` first"
                            .into(),
                    ));
                }
                None => return,
            }
            continue;
        };
        set_status(&ctx, &current, false, None);
        match session(&ctx, &current, &mut commands, &mut pending_up, &mut backoff).await {
            End::NewSettings(new, reply) => {
                settings = Some(adopt(&ctx, new));
                pending_up = Some(reply);
                backoff = Duration::from_secs(1);
                continue;
            }
            End::Closed => return,
            End::Failed(e) => {
                tracing::warn!(coordinator = %current.address, "{e}");
                set_status(&ctx, &current, false, Some(e.clone()));
                if let Some(reply) = pending_up.take() {
                    let _ = reply.send(Err(format!(
                        "cannot reach the coordinator at {}: {e} (will keep trying)",
                        current.address
                    )));
                }
            }
        }
        // Wait before retrying, still answering the local API.
        let retry = tokio::time::sleep(backoff);
        tokio::pin!(retry);
        loop {
            tokio::select! {
                _ = &mut retry => break,
                cmd = commands.recv() => match cmd {
                    Some(Command::Up(new, reply)) => {
                        settings = Some(adopt(&ctx, new));
                        pending_up = Some(reply);
                        backoff = Duration::from_secs(1);
                        break;
                    }
                    Some(Command::Request(_, reply)) => {
                        let _ = reply.send(Err(format!(
                            "the coordinator at {} is unreachable right now; retrying",
                            current.address
                        )));
                    }
                    None => return,
                },
            }
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn adopt(ctx: &ControlContext, new: CoordinatorSettings) -> CoordinatorSettings {
    if let Err(e) = new.save(&ctx.state_dir) {
        tracing::warn!("cannot remember the coordinator: {e:#}");
    }
    new
}

fn set_status(
    ctx: &ControlContext,
    s: &CoordinatorSettings,
    connected: bool,
    last_error: Option<String>,
) {
    let mut st = ctx.status.lock().expect("status lock");
    let networks = st.as_ref().map(|c| c.networks.clone()).unwrap_or_default();
    let overlay_ip = st.as_ref().and_then(|c| c.overlay_ip);
    *st = Some(CoordinatorStatus {
        address: s.address.clone(),
        name: s.name.clone(),
        overlay_ip,
        public_key: s.public_key,
        connected,
        last_error,
        networks,
    });
}

fn set_overlay_ip(ctx: &ControlContext, ip: std::net::IpAddr) {
    if let Some(st) = ctx.status.lock().expect("status lock").as_mut() {
        st.overlay_ip = Some(ip);
    }
}

fn set_networks(ctx: &ControlContext, networks: Vec<String>) {
    if let Some(st) = ctx.status.lock().expect("status lock").as_mut() {
        st.networks = networks;
    }
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
    pending_up: &mut Option<Reply>,
    backoff: &mut Duration,
) -> End {
    let connected = match tokio::time::timeout(CONNECT_TIMEOUT * 2, connect(ctx, s)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return End::Failed(format!("{e:#}")),
        Err(_) => return End::Failed("timed out".into()),
    };
    let (_endpoint, conn, mut send, mut recv, welcome) = connected;
    *backoff = Duration::from_secs(1);
    set_status(ctx, s, true, None);
    set_networks(ctx, welcome.networks.clone());
    set_overlay_ip(ctx, welcome.overlay_ip);
    if let Err(e) = ctx.dataplane.use_overlay_ip(welcome.overlay_ip) {
        tracing::warn!("cannot move the interface to {}: {e:#}", welcome.overlay_ip);
    }
    tracing::info!(coordinator = %s.address, overlay = %welcome.overlay_ip, networks = ?welcome.networks, "connected to the coordinator");
    if let Some(reply) = pending_up.take() {
        let _ = reply.send(Ok(format!(
            "connected to {} as {} ({})",
            s.address, s.name, welcome.overlay_ip
        )));
    }
    if let [p1, p2, ..] = welcome.stun_ports[..] {
        let ip = conn.remote_address().ip();
        let servers = [SocketAddr::new(ip, p1), SocketAddr::new(ip, p2)];
        ctx.dataplane
            .node()
            .start_discovery(std::time::Instant::now(), servers);
        ctx.dataplane.flush_now();
    }
    let mut discovery_check = tokio::time::interval(Duration::from_millis(250));
    let mut networks = welcome.networks;
    let mut pending: HashMap<u64, (Reply, ClientMsg)> = HashMap::new();
    let mut next_id = 1u64;
    loop {
        tokio::select! {
            frame = read_frame(&mut recv) => {
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
                    ServerMsg::Ok { id } => {
                        if let Some((reply, req)) = pending.remove(&id) {
                            let text = match &req {
                                ClientMsg::CreateNetwork { name, .. } => {
                                    networks.push(name.clone());
                                    format!("created network {name} and joined it")
                                }
                                ClientMsg::JoinNetwork { name, .. } => {
                                    if !networks.contains(name) {
                                        networks.push(name.clone());
                                    }
                                    format!("joined network {name}")
                                }
                                ClientMsg::LeaveNetwork { name, .. } => {
                                    networks.retain(|n| n != name);
                                    format!("left network {name}")
                                }
                                ClientMsg::Endpoints { .. } => "ok".into(),
                            };
                            networks.sort();
                            set_networks(ctx, networks.clone());
                            let _ = reply.send(Ok(text));
                        }
                    }
                    ServerMsg::Error { id, message, .. } => {
                        if let Some((reply, _)) = pending.remove(&id) {
                            let _ = reply.send(Err(message));
                        }
                    }
                    ServerMsg::PeerUpsert { peer } => upsert_peer(ctx, &peer),
                    ServerMsg::PeerRemove { key } => {
                        ctx.dataplane.node().remove_peer(&key);
                    }
                    ServerMsg::CallMeMaybe { key, lan, reflexive } => {
                        tracing::debug!(peer = %key, ?lan, ?reflexive, "call me maybe");
                        let known = ctx.dataplane.node().handle_call_me_maybe(
                            std::time::Instant::now(),
                            &key,
                            &lan,
                            reflexive,
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
                    let msg = ClientMsg::Endpoints {
                        lan: lan::lan_endpoints(ctx.udp_port, &ctx.tun),
                        reflexive: d.reflexive,
                        nat: d.nat,
                    };
                    let bytes = serde_json::to_vec(&msg).expect("serializable");
                    if let Err(e) = write_frame(&mut send, &bytes).await {
                        return End::Failed(format!("send failed: {e:#}"));
                    }
                }
            }
            cmd = commands.recv() => match cmd {
                None => {
                    conn.close(0u32.into(), b"daemon stopping");
                    return End::Closed;
                }
                Some(Command::Up(new, reply)) => {
                    conn.close(0u32.into(), b"new coordinator");
                    return End::NewSettings(new, reply);
                }
                Some(Command::Request(msg, reply)) => {
                    let msg = with_id(msg, next_id);
                    let bytes = serde_json::to_vec(&msg).expect("serializable");
                    if let Err(e) = write_frame(&mut send, &bytes).await {
                        let _ = reply.send(Err(format!("cannot reach the coordinator: {e:#}")));
                        return End::Failed(format!("send failed: {e:#}"));
                    }
                    pending.insert(next_id, (reply, msg));
                    next_id += 1;
                }
            },
        }
    }
}

type Connected = (
    quinn::Endpoint,
    quinn::Connection,
    quinn::SendStream,
    quinn::RecvStream,
    Welcome,
);

async fn connect(ctx: &ControlContext, s: &CoordinatorSettings) -> Result<Connected> {
    let addr = resolve(&s.address).await?;
    let endpoint = client_endpoint()?;
    let conn = tokio::time::timeout(CONNECT_TIMEOUT, endpoint.connect(addr, "warren")?)
        .await
        .map_err(|_| anyhow!("no answer from {addr}"))?
        .with_context(|| format!("QUIC connection to {addr} failed"))?;
    let mut binding = [0u8; BINDING_LEN];
    conn.export_keying_material(&mut binding, EXPORTER_LABEL, b"")
        .map_err(|_| anyhow!("TLS exporter unavailable"))?;
    let (mut send, mut recv) = conn.open_bi().await?;
    let hello = Hello {
        v: CONTROL_VERSION,
        name: s.name.clone(),
        udp_port: ctx.udp_port,
        lan_endpoints: lan::lan_endpoints(ctx.udp_port, &ctx.tun),
    };
    let (hs, first) = ClientHandshake::start(
        &ctx.node_secret,
        &s.public_key,
        &binding,
        &serde_json::to_vec(&hello)?,
    )?;
    write_frame(&mut send, &first).await?;
    let answer = read_frame(&mut recv).await.context(
        "the coordinator closed the connection during the handshake (is --coordinator-key right?)",
    )?;
    let payload = hs.finish(&answer)?;
    // Before the welcome, the coordinator may answer with an error (e.g. a name clash).
    if let Ok(ServerMsg::Error { message, .. }) = serde_json::from_slice::<ServerMsg>(&payload) {
        return Err(anyhow!(message));
    }
    let welcome: Welcome =
        serde_json::from_slice(&payload).context("unintelligible welcome from the coordinator")?;
    Ok((endpoint, conn, send, recv, welcome))
}

fn with_id(msg: ClientMsg, id: u64) -> ClientMsg {
    match msg {
        ClientMsg::CreateNetwork { name, password, .. } => {
            ClientMsg::CreateNetwork { id, name, password }
        }
        ClientMsg::JoinNetwork { name, password, .. } => {
            ClientMsg::JoinNetwork { id, name, password }
        }
        ClientMsg::LeaveNetwork { name, .. } => ClientMsg::LeaveNetwork { id, name },
        other => other,
    }
}

/// Adds or refreshes a peer the coordinator told us about. Until path probing lands, the
/// WireGuard endpoint starts at the peer's first LAN candidate (else its reflexive address)
/// and then follows authenticated packets (roaming).
fn upsert_peer(ctx: &ControlContext, info: &PeerInfo) {
    let mut node = ctx.dataplane.node();
    let allowed: IpNet = info.overlay_ip.into();
    if let Some(id) = node.peer_id(&info.key) {
        let same = node.peer(id).is_some_and(|p| p.allowed_ips() == [allowed]);
        if same {
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
        allowed_ips: vec![allowed],
        endpoint: first_candidate(info),
        persistent_keepalive: Some(DEFAULT_KEEPALIVE_SECS),
    };
    if let Err(e) = node.add_peer(config) {
        tracing::warn!(peer = %info.name, "cannot add peer from the coordinator: {e}");
    }
}

fn first_candidate(info: &PeerInfo) -> Option<SocketAddr> {
    info.lan.first().copied().or(info.reflexive)
}
