//! One simulated daemon: it connects (Noise handshake carrying its Hello), joins its network
//! (the first host of a network creates it and, for invite joins, asks for an invite its
//! network's other hosts then use), reports its endpoints, and reads everything the
//! coordinator sends, counting and timestamping it. When its connection drops it reconnects
//! as the daemon does (`warren_daemon_core::control::client`): at once (~0.3 s, jittered) after
//! a connection that had lasted, else after a backoff from 1 s doubling to 30 s, each wait
//! drawn from half to one and a half times.

use crate::link::{Dialer, Link, Transport};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use warren_proto::control::auth::ClientHandshake;
use warren_proto::control::msg::{
    ClientMsg, ErrorCode, Hello, NatKind, ServerMsg, Welcome, CONTROL_VERSION,
};
use warren_proto::key::NodeKey;

/// The UDP port every simulated host reports (there is no real socket behind it).
const UDP_PORT: u16 = 41820;
/// The LAN port a host reports after the endpoint change: how its peers recognise the upsert.
pub const MARKER_PORT: u16 = 41821;
/// The daemon's CONNECT_TIMEOUT (daemon/src/control/dial.rs).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(12);
use warren_daemon_core::control::client::{
    jitter, FIRST_BACKOFF, MAX_BACKOFF, QUICK_REDIAL, STABLE_FOR,
};

/// Tries at creating or joining a network the coordinator refuses over its rate limits.
const CREATE_ATTEMPTS: u32 = 10;

/// The wait a rate-limit message names ("… try again in 3 s"), at least 1 s.
fn retry_after(message: &str) -> Duration {
    let secs = message
        .rsplit_once("try again in ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(1);
    Duration::from_secs(secs.clamp(1, 60))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinMode {
    Password,
    Invite,
}

/// What the orchestrator tells every host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Run,
    /// Each network's changer reports new endpoints once.
    ChangeEndpoints,
    Stop,
}

/// One network of the scenario.
pub struct Net {
    pub name: String,
    pub password: String,
    pub size: usize,
    /// What its joiners need: the invite secret ("" for password joins), or why there is none.
    pub ready: watch::Sender<Option<Result<String, String>>>,
    /// When its changer sent its new endpoints.
    pub change_sent: Mutex<Option<Instant>>,
}

impl Net {
    pub fn new(index: usize, size: usize) -> Self {
        Self {
            name: format!("load-{index}"),
            password: format!("load-password-{index}"),
            size,
            ready: watch::channel(None).0,
            change_sent: Mutex::new(None),
        }
    }
}

/// What all hosts share.
pub struct World {
    pub coordinator: SocketAddr,
    pub key: NodeKey,
    pub join: JoinMode,
    pub nets: Vec<Net>,
    pub dialer: Dialer,
    pub phase: watch::Receiver<Phase>,
}

/// Everything a host records; read by the orchestrator (short locks only).
#[derive(Default)]
pub struct Record {
    pub connect_errors: Vec<String>,
    pub welcomes: Vec<Instant>,
    pub disconnects: Vec<String>,
    pub joined_at: Option<Instant>,
    pub join_error: Option<String>,
    /// Requests refused over a rate limit or cut off by a dropped connection, then retried.
    pub refusals: Vec<String>,
    /// A join's connection dropped before its answer.
    pub join_dropped: bool,
    /// The join's answer was an error or never came, yet a later Welcome lists the network.
    pub joined_after_error: bool,
    /// Peers as the coordinator told them since the last Welcome: key -> online.
    pub peers: HashMap<NodeKey, bool>,
    pub online_peers: usize,
    /// When all the network's other hosts were online, since the last Welcome / ever.
    pub full_at: Option<Instant>,
    pub first_full_at: Option<Instant>,
    /// When the changer's new endpoints arrived here.
    pub change_seen_at: Option<Instant>,
    pub received: BTreeMap<&'static str, u64>,
}

pub struct Host {
    pub index: usize,
    pub net: usize,
    /// The network's first host creates it and makes its invite.
    pub owner: bool,
    /// The host of its network that changes its endpoints.
    pub changer: bool,
    pub name: String,
    pub source: IpAddr,
    pub transport: Transport,
    secret: [u8; 32],
    pub record: Mutex<Record>,
}

impl Host {
    pub fn new(index: usize, net: usize, rank: usize, transport: Transport) -> Result<Self> {
        let mut secret = [0u8; 32];
        getrandom::getrandom(&mut secret)
            .map_err(|e| anyhow!("no random source for a node key: {e}"))?;
        Ok(Self {
            index,
            net,
            owner: rank == 0,
            changer: rank == 1,
            name: format!("n{net}-h{rank}"),
            source: IpAddr::V4(source_address(index)),
            transport,
            secret,
            record: Mutex::new(Record::default()),
        })
    }

    fn rec(&self) -> std::sync::MutexGuard<'_, Record> {
        self.record.lock().expect("host record")
    }

    /// The host's LAN candidate: a private address, which the coordinator passes on.
    fn lan(&self, port: u16) -> SocketAddr {
        let i = self.index as u32;
        SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8)),
            port,
        )
    }

    /// Connects and reconnects until the orchestrator says stop.
    pub async fn run(self: Arc<Self>, world: Arc<World>) {
        let mut phase = world.phase.clone();
        let mut backoff = FIRST_BACKOFF;
        let mut rng = [0u8; 8];
        // Without a random source the index alone still sets the hosts' waits apart.
        let _ = getrandom::getrandom(&mut rng);
        let mut rng = u64::from_le_bytes(rng) ^ self.index as u64;
        loop {
            if *phase.borrow() == Phase::Stop {
                return;
            }
            let attempt = tokio::time::timeout(CONNECT_TIMEOUT, self.connect(&world));
            let (link, welcome) = match attempt.await {
                Ok(Ok(connected)) => connected,
                Ok(Err(e)) => {
                    self.rec().connect_errors.push(format!("{e:#}"));
                    self.pause(&mut phase, &mut backoff, &mut rng).await;
                    continue;
                }
                Err(_) => {
                    self.rec()
                        .connect_errors
                        .push("no welcome within 12 s".into());
                    self.pause(&mut phase, &mut backoff, &mut rng).await;
                    continue;
                }
            };
            backoff = FIRST_BACKOFF;
            let since = Instant::now();
            match self.session(&world, link, welcome, &mut phase).await {
                Ok(()) => return,
                Err(e) => self.rec().disconnects.push(format!("{e:#}")),
            }
            if since.elapsed() >= STABLE_FOR {
                let mut quick = QUICK_REDIAL;
                self.pause(&mut phase, &mut quick, &mut rng).await;
            } else {
                self.pause(&mut phase, &mut backoff, &mut rng).await;
            }
        }
    }

    /// Waits `backoff` (jittered), then doubles it.
    async fn pause(
        &self,
        phase: &mut watch::Receiver<Phase>,
        backoff: &mut Duration,
        rng: &mut u64,
    ) {
        let wait = jitter(*backoff, rng);
        *backoff = (*backoff * 2).min(MAX_BACKOFF);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = phase.wait_for(|p| *p == Phase::Stop) => {}
        }
    }

    /// A link through the Noise handshake, and the coordinator's Welcome.
    async fn connect(&self, world: &World) -> Result<(Link, Welcome)> {
        let mut link = world
            .dialer
            .connect(self.transport, self.source, world.coordinator)
            .await?;
        let hello = Hello {
            v: CONTROL_VERSION,
            name: self.name.clone(),
            udp_port: UDP_PORT,
            lan_endpoints: vec![self.lan(UDP_PORT)],
            dialed: Some(world.coordinator),
            claim: None,
            calls: true,
        };
        let (hs, first) = ClientHandshake::start(
            &self.secret,
            &world.key,
            &link.binding,
            &serde_json::to_vec(&hello)?,
        )?;
        link.writer.write_frame(&first).await?;
        let answer = link
            .reader
            .read_frame()
            .await
            .context("the coordinator closed the connection during the handshake")?;
        let payload = hs.finish(&answer)?;
        if let Ok(ServerMsg::Error { message, .. }) = serde_json::from_slice(&payload) {
            bail!("refused: {message}");
        }
        let welcome = serde_json::from_slice(&payload).context("unintelligible welcome")?;
        Ok((link, welcome))
    }

    /// One connection's life; `Ok` when told to stop, `Err` when it dropped.
    async fn session(
        self: &Arc<Self>,
        world: &World,
        link: Link,
        welcome: Welcome,
        phase: &mut watch::Receiver<Phase>,
    ) -> Result<()> {
        let (reader, mut writer, _keep) = link.split();
        {
            let mut r = self.rec();
            r.welcomes.push(Instant::now());
            r.peers.clear();
            r.online_peers = 0;
            r.full_at = None;
        }
        let (replies_tx, mut replies) = mpsc::unbounded_channel();
        let reading = Abort(tokio::spawn(read_loop(
            self.clone(),
            world.nets[self.net].size.saturating_sub(1),
            reader,
            replies_tx,
        )));
        let mut next_id = 1u64;
        let net = &world.nets[self.net];
        let member = welcome.networks.contains(&net.name);
        self.join(world, member, &mut writer, &mut replies, &mut next_id)
            .await?;
        let endpoints = |port| ClientMsg::Endpoints {
            lan: vec![self.lan(port)],
            reflexive: None,
            nat: NatKind::Unknown,
            mapped: None,
            relay: false,
            mapped_tcp: None,
        };
        let mut changed = false;
        let mut current = UDP_PORT;
        send(&mut writer, &endpoints(current)).await?;
        loop {
            let p = *phase.borrow_and_update();
            match p {
                Phase::Stop => {
                    writer.finish();
                    drop(reading);
                    return Ok(());
                }
                Phase::ChangeEndpoints if self.changer && !changed => {
                    changed = true;
                    current = MARKER_PORT;
                    *net.change_sent.lock().expect("net") = Some(Instant::now());
                    send(&mut writer, &endpoints(current)).await?;
                }
                _ => {}
            }
            tokio::select! {
                r = phase.changed() => if r.is_err() { return Ok(()) },
                m = replies.recv() => match m {
                    Some(Reply::Ended(e)) => bail!("{e}"),
                    Some(Reply::Msg(_)) => {}
                    None => bail!("reader gone"),
                },
            }
        }
    }

    /// Creates or joins the host's network, unless the Welcome says it is a member already.
    async fn join(
        &self,
        world: &World,
        member: bool,
        writer: &mut warren_proto::control::io::FrameWriter,
        replies: &mut mpsc::UnboundedReceiver<Reply>,
        next_id: &mut u64,
    ) -> Result<()> {
        let net = &world.nets[self.net];
        if member {
            {
                let mut r = self.rec();
                if r.joined_at.is_none() {
                    r.joined_at = Some(Instant::now());
                    r.joined_after_error = r.join_error.is_some() || r.join_dropped;
                }
            }
            let unpublished = net.ready.borrow().is_none();
            if self.owner && unpublished {
                self.publish_ready(world, writer, replies, next_id).await?;
            }
            return Ok(());
        }
        if self.rec().join_error.is_some() {
            // A refused join is a result; a user would have to try again by hand.
            return Ok(());
        }
        if self.owner {
            // Creating a network hashes its password, under the coordinator's password limits:
            // a refusal with a wait is retried after it (as a person would), and counted.
            let mut attempts = 0;
            loop {
                attempts += 1;
                let create = ClientMsg::CreateNetwork {
                    id: take(next_id),
                    name: net.name.clone(),
                    password: net.password.clone(),
                };
                match request(writer, replies, create).await? {
                    ServerMsg::Ok { .. } => {
                        self.rec().joined_at = Some(Instant::now());
                        break;
                    }
                    ServerMsg::Error {
                        code: ErrorCode::RateLimited,
                        message,
                        ..
                    } if attempts < CREATE_ATTEMPTS => {
                        self.rec().refusals.push(format!("create: {message}"));
                        tokio::time::sleep(retry_after(&message)).await;
                    }
                    other => {
                        let why = describe(&other);
                        self.rec().join_error = Some(format!("create: {why}"));
                        net.ready.send_replace(Some(Err(format!(
                            "its first host could not create it: {why}"
                        ))));
                        return Ok(());
                    }
                }
            }
            return self.publish_ready(world, writer, replies, next_id).await;
        }
        let mut ready = net.ready.subscribe();
        let ticket = match ready.wait_for(|r| r.is_some()).await {
            Ok(r) => r.clone().expect("waited for"),
            Err(_) => return Err(anyhow!("scenario ended")),
        };
        let secret = match ticket {
            Ok(s) => s,
            Err(why) => {
                self.rec().join_error = Some(why);
                return Ok(());
            }
        };
        // A refusal with a wait ("… try again in 6 s") is tried again after it, as a person
        // would; any other refusal is the result.
        for attempt in 1..=CREATE_ATTEMPTS {
            let id = take(next_id);
            let msg = match world.join {
                JoinMode::Password => ClientMsg::JoinNetwork {
                    id,
                    name: net.name.clone(),
                    password: net.password.clone(),
                },
                JoinMode::Invite => ClientMsg::JoinInvite {
                    id,
                    network: net.name.clone(),
                    secret: secret.clone(),
                },
            };
            match request(writer, replies, msg).await {
                Ok(ServerMsg::Ok { .. }) => self.rec().joined_at = Some(Instant::now()),
                Ok(ServerMsg::Error {
                    code: ErrorCode::RateLimited,
                    message,
                    ..
                }) if attempt < CREATE_ATTEMPTS => {
                    self.rec().refusals.push(format!("join: {message}"));
                    tokio::time::sleep(retry_after(&message)).await;
                    continue;
                }
                Ok(other) => self.rec().join_error = Some(describe(&other)),
                Err(e) => {
                    // "the coordinator connection dropped; try again", as a daemon says: the
                    // user tries again, after the reconnect (the join may have taken effect).
                    let mut r = self.rec();
                    r.join_dropped = true;
                    r.refusals.push(format!("join: {e:#}"));
                    drop(r);
                    return Err(e);
                }
            }
            break;
        }
        Ok(())
    }

    /// The owner tells its network's joiners they may go: with an invite for invite joins.
    async fn publish_ready(
        &self,
        world: &World,
        writer: &mut warren_proto::control::io::FrameWriter,
        replies: &mut mpsc::UnboundedReceiver<Reply>,
        next_id: &mut u64,
    ) -> Result<()> {
        let net = &world.nets[self.net];
        if world.join == JoinMode::Password {
            net.ready.send_replace(Some(Ok(String::new())));
            return Ok(());
        }
        let ask = ClientMsg::CreateInvite {
            id: take(next_id),
            network: net.name.clone(),
            ttl_secs: 3600,
        };
        match request(writer, replies, ask).await? {
            ServerMsg::Invite { secret, .. } => {
                net.ready.send_replace(Some(Ok(secret)));
            }
            other => {
                net.ready.send_replace(Some(Err(format!(
                    "its first host got no invite: {}",
                    describe(&other)
                ))));
            }
        }
        Ok(())
    }
}

/// What the reader passes to the session: answers to requests, or the end of the link.
enum Reply {
    Msg(Box<ServerMsg>),
    Ended(String),
}

struct Abort(tokio::task::JoinHandle<()>);

impl Drop for Abort {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn take(next: &mut u64) -> u64 {
    let id = *next;
    *next += 1;
    id
}

async fn send(writer: &mut warren_proto::control::io::FrameWriter, msg: &ClientMsg) -> Result<()> {
    writer
        .write_frame(&serde_json::to_vec(msg)?)
        .await
        .context("the connection dropped while sending")
}

/// Sends `msg` and waits for the answer with its id.
async fn request(
    writer: &mut warren_proto::control::io::FrameWriter,
    replies: &mut mpsc::UnboundedReceiver<Reply>,
    msg: ClientMsg,
) -> Result<ServerMsg> {
    let id = msg.id();
    send(writer, &msg).await?;
    loop {
        match replies.recv().await {
            Some(Reply::Msg(m)) if reply_id(&m) == Some(id) => return Ok(*m),
            Some(Reply::Msg(_)) => {}
            Some(Reply::Ended(e)) => bail!("the connection dropped before the answer ({e})"),
            None => bail!("the connection dropped before the answer"),
        }
    }
}

fn reply_id(m: &ServerMsg) -> Option<u64> {
    match m {
        ServerMsg::Ok { id }
        | ServerMsg::Error { id, .. }
        | ServerMsg::Invite { id, .. }
        | ServerMsg::JoinPending { id, .. }
        | ServerMsg::Invites { id, .. } => Some(*id),
        _ => None,
    }
}

fn describe(m: &ServerMsg) -> String {
    match m {
        ServerMsg::Error { code, message, .. } => format!("{code:?}: {message}"),
        ServerMsg::JoinPending { .. } => "pending (the network is locked)".into(),
        other => format!("unexpected answer {}", kind(other)),
    }
}

fn kind(m: &ServerMsg) -> &'static str {
    match m {
        ServerMsg::Ok { .. } => "ok",
        ServerMsg::Error { .. } => "error",
        ServerMsg::Invite { .. } => "invite",
        ServerMsg::JoinPending { .. } => "join_pending",
        ServerMsg::Invites { .. } => "invites",
        ServerMsg::Networks { .. } => "networks",
        ServerMsg::PeerUpsert { .. } => "peer_upsert",
        ServerMsg::PeerRemove { .. } => "peer_remove",
        ServerMsg::RelayTicket { .. } => "relay_ticket",
        ServerMsg::AddressClash { .. } => "address_clash",
        ServerMsg::Calls { .. } => "calls",
        ServerMsg::CallMeMaybe { .. } => "call_me_maybe",
    }
}

const CALL_ME_MAYBE: &[u8] = br#"{"type":"call_me_maybe","#;

/// Reads every frame: peer updates go into the host's record, answers to the session.
async fn read_loop(
    host: Arc<Host>,
    expected_peers: usize,
    mut reader: warren_proto::control::io::FrameReader,
    replies: mpsc::UnboundedSender<Reply>,
) {
    loop {
        let frame = match reader.read_frame().await {
            Ok(f) => f,
            Err(e) => {
                let _ = replies.send(Reply::Ended(format!("connection lost: {e:#}")));
                return;
            }
        };
        // The most frequent message, whose content nothing here uses: counted unparsed, so the
        // load generator leaves more of the two cores to the coordinator. (serde writes the
        // tag first; anything else is parsed as usual.)
        if frame.starts_with(CALL_ME_MAYBE) {
            *host.rec().received.entry("call_me_maybe").or_default() += 1;
            continue;
        }
        let msg: ServerMsg = match serde_json::from_slice(&frame) {
            Ok(m) => m,
            Err(e) => {
                let _ = replies.send(Reply::Ended(format!("unintelligible message: {e}")));
                return;
            }
        };
        let now = Instant::now();
        let mut r = host.rec();
        *r.received.entry(kind(&msg)).or_default() += 1;
        match &msg {
            ServerMsg::PeerUpsert { peer, .. } => {
                if peer.lan.iter().any(|a| a.port() == MARKER_PORT) && r.change_seen_at.is_none() {
                    r.change_seen_at = Some(now);
                }
                let was = r.peers.insert(peer.key, peer.online).unwrap_or(false);
                match (was, peer.online) {
                    (false, true) => r.online_peers += 1,
                    (true, false) => r.online_peers -= 1,
                    _ => {}
                }
            }
            ServerMsg::PeerRemove { key } if r.peers.remove(key) == Some(true) => {
                r.online_peers -= 1;
            }
            _ => {}
        }
        if r.online_peers >= expected_peers && r.full_at.is_none() {
            r.full_at = Some(now);
            r.first_full_at.get_or_insert(now);
        }
        drop(r);
        if reply_id(&msg).is_some() && replies.send(Reply::Msg(Box::new(msg))).is_err() {
            return;
        }
    }
}

/// Host `i`'s own loopback address, 127.c.b.a with every byte in 1..=250 (Linux routes all of
/// 127/8 to lo): the coordinator limits new keys per source address.
pub fn source_address(i: usize) -> Ipv4Addr {
    let a = (i % 250 + 1) as u8;
    let rest = i / 250;
    let b = (rest % 250 + 1) as u8;
    let c = (rest / 250 + 1) as u8;
    Ipv4Addr::new(127, c, b, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_waits_are_read_from_the_message() {
        let m = "the coordinator is checking too many passwords at the moment: try again in 3 s";
        assert_eq!(retry_after(m), Duration::from_secs(3));
        assert_eq!(retry_after("no number here"), Duration::from_secs(1));
        assert_eq!(retry_after("try again in 0 s"), Duration::from_secs(1));
    }

    #[test]
    fn source_addresses_are_distinct_and_avoid_the_coordinator() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..62_500 {
            let a = source_address(i);
            assert!(a.is_loopback() && a != Ipv4Addr::LOCALHOST, "{a}");
            assert!(a.octets()[1..].iter().all(|b| (1..=250).contains(b)), "{a}");
            assert!(seen.insert(a), "{i} -> {a} twice");
        }
    }
}
