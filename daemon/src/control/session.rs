//! The control task: one sans-IO [`Client`] per coordinator this host follows, the merged peer
//! map and the host's own address ([`warren_daemon_core::control`]), driven from one loop that
//! owns the connections. Commands from the local API, frames and connection outcomes from the
//! connection tasks ([`super::dial`]) and timers are fed in; what the cores give back is sent,
//! answered or applied to the data plane.

mod commands;
mod status;
mod welcome;

use super::dial::{self, Input, Inputs, LiveLink};
use super::{ControlView, CoordinatorSettings, Reply, TunnelState};
use crate::dataplane::Dataplane;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use warren_daemon_core::control::address::Decision;
use warren_daemon_core::control::client::Token;
use warren_daemon_core::control::peer_map::CoordId;
use warren_daemon_core::control::{Client, Event, OwnAddress, PeerChange, PeerMap};
use warren_proto::api::{ApiError, ErrorCode};
use warren_proto::control::msg::{ClientMsg, NatKind, ServerMsg};
use warren_proto::key::NodeKey;
use warren_proto::relay::RelayToken;

pub struct ControlContext {
    pub node_secret: [u8; 32],
    pub node_key: NodeKey,
    pub dataplane: Arc<Dataplane>,
    pub state_dir: PathBuf,
    pub tun: String,
    pub udp_port: u16,
    pub view: Arc<Mutex<ControlView>>,
    pub changed: watch::Sender<u64>,
    /// The router port mapping task: told of `up`/`down` and of a new public address; its
    /// mapping is advertised with our other endpoints.
    pub portmap: crate::portmap::Handle,
    /// Whether we relay for others: told to each coordinator with our endpoints.
    pub relay_offer: Arc<crate::relay_offer::RelayOffer>,
    /// The LAN prefixes we advertise: told to each coordinator at connect and on change.
    pub subnets: Arc<crate::subnet_routes::SubnetRoutes>,
    /// The same for our TCP listen port (the same number as the UDP port): peers whose UDP is
    /// blocked dial its mapping.
    pub portmap_tcp: crate::portmap::Handle,
}

impl ControlContext {
    /// Changes what the API reports and wakes its subscribers.
    fn publish(&self, f: impl FnOnce(&mut ControlView)) {
        f(&mut self.view.lock().expect("control view lock"));
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// One coordinator this host follows.
struct Slot {
    id: CoordId,
    settings: CoordinatorSettings,
    client: Client,
    /// Bumped with every dial and close: reports of older connections are ignored.
    generation: u64,
    dialing: Option<JoinHandle<()>>,
    link: Option<LiveLink>,
    /// The relay its welcome offered (for the peers it brings).
    relay: Option<(SocketAddr, RelayToken)>,
    ticket: Option<Vec<u8>>,
    stun: Option<[SocketAddr; 2]>,
}

/// Several answers that make one reply (a logout of every coordinator).
struct Group {
    remaining: usize,
    done: Vec<String>,
    failed: Vec<ApiError>,
    reply: Reply,
}

struct Session {
    ctx: Arc<ControlContext>,
    slots: Vec<Slot>,
    next_id: CoordId,
    up: bool,
    peers: PeerMap,
    address: OwnAddress,
    replies: HashMap<Token, Reply>,
    /// Tokens whose answers go to a group, and the groups by their own token.
    grouped: HashMap<Token, Token>,
    groups: HashMap<Token, Group>,
    next_token: Token,
    inputs: Inputs,
    /// Whose STUN servers the node uses.
    stun_owner: Option<CoordId>,
    reflexive: Option<SocketAddr>,
    /// Something status shows changed since the view was last published.
    dirty: bool,
    /// Answers held until the view is published, so that a client that asks for status
    /// after its reply sees what the command changed.
    outbox: Vec<(Reply, Result<super::Answer, ApiError>)>,
}

/// The failures of a group as one: every message, and their code when they share one.
fn joined(failed: &[ApiError]) -> ApiError {
    let code = failed[0].code;
    let same = failed.iter().all(|e| e.code == code);
    let words: Vec<&str> = failed.iter().map(|e| e.message.as_str()).collect();
    ApiError::new(if same { code } else { ErrorCode::Other }, words.join("; "))
}

/// How often the control session looks for a new STUN result to send the coordinator.
const DISCOVERY_CHECK: Duration = Duration::from_millis(100);

pub async fn run(ctx: ControlContext, mut commands: mpsc::Receiver<Command>) {
    let ctx = Arc::new(ctx);
    let (inputs_tx, mut inputs) = mpsc::unbounded_channel();
    let mut s = Session::start(ctx.clone(), inputs_tx, Instant::now());
    // A new reflexive address (a NAT rebinding the data plane just found) goes to the
    // coordinator, and from it to our peers, within this: part of how long traffic stops.
    let mut discovery_check = tokio::time::interval(DISCOVERY_CHECK);
    let mut mapping = ctx.portmap.current.clone();
    mapping.mark_unchanged();
    let mut relay_offer = ctx.relay_offer.subscribe();
    let mut advertised = ctx.subnets.subscribe();
    let mut mapping_tcp = ctx.portmap_tcp.current.clone();
    mapping_tcp.mark_unchanged();
    loop {
        s.drive(Instant::now());
        let deadline = s.poll_timeout();
        let wake = async move {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            cmd = commands.recv() => match cmd {
                Some(cmd) => s.command(cmd, Instant::now()),
                None => {
                    s.shutdown();
                    return;
                }
            },
            Some(input) = inputs.recv() => s.input(input, Instant::now()),
            _ = wake => s.timeout(Instant::now()),
            _ = discovery_check.tick() => s.discovery(),
            Ok(()) = mapping.changed() => {
                let m = *mapping.borrow_and_update();
                tracing::debug!(mapped = ?m.map(|m| m.external), "advertising the port mapping");
                s.send_endpoints();
                s.dirty = true;
            }
            Ok(()) = relay_offer.changed() => {
                relay_offer.mark_unchanged();
                s.send_endpoints();
            }
            Ok(()) = advertised.changed() => {
                advertised.mark_unchanged();
                s.send_routes();
            }
            Ok(()) = mapping_tcp.changed() => {
                let m = *mapping_tcp.borrow_and_update();
                tracing::debug!(mapped_tcp = ?m.map(|m| m.external), "advertising the TCP port mapping");
                s.send_endpoints();
            }
        }
    }
}

use super::Command;

impl Session {
    fn start(ctx: Arc<ControlContext>, inputs: Inputs, now: Instant) -> Self {
        let list = CoordinatorSettings::load_all(&ctx.state_dir).unwrap_or_else(|e| {
            tracing::error!("{e:#}; waiting for `warren up` (the file is left as it is)");
            Vec::new()
        });
        let up = TunnelState::load(&ctx.state_dir)
            .unwrap_or_else(|e| {
                tracing::error!("{e:#}; starting up");
                TunnelState { up: true }
            })
            .up;
        ctx.dataplane.node().set_up(up);
        if !up {
            tracing::info!("Warren was turned off (`warren down`); waiting for `warren up`");
        }
        let address = OwnAddress::new(ctx.node_key, super::address_file::load(&ctx.state_dir));
        if let (Some(ip), false) = (address.saved().ip, list.is_empty()) {
            // The address this host claims everywhere, on the interface before any welcome.
            if let Err(e) = ctx.dataplane.use_overlay_ip(ip.into()) {
                tracing::warn!("cannot move the interface to {ip}: {e:#}");
            }
        }
        let mut s = Session {
            ctx,
            slots: Vec::new(),
            next_id: 1,
            up,
            peers: PeerMap::new(),
            address,
            replies: HashMap::new(),
            grouped: HashMap::new(),
            groups: HashMap::new(),
            next_token: 1,
            inputs,
            stun_owner: None,
            reflexive: None,
            dirty: true,
            outbox: Vec::new(),
        };
        for settings in list {
            s.add_slot(settings, now);
        }
        s
    }

    fn add_slot(&mut self, settings: CoordinatorSettings, now: Instant) -> usize {
        let id = self.next_id;
        self.next_id += 1;
        self.slots.push(Slot {
            id,
            client: Client::new(settings.address.clone(), self.up, now, jitter_seed()),
            settings,
            generation: 0,
            dialing: None,
            link: None,
            relay: None,
            ticket: None,
            stun: None,
        });
        self.dirty = true;
        self.slots.len() - 1
    }

    fn slot_index(&self, id: CoordId) -> Option<usize> {
        self.slots.iter().position(|s| s.id == id)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter_map(|s| s.client.poll_timeout())
            .min()
    }

    fn timeout(&mut self, now: Instant) {
        for s in &mut self.slots {
            s.client.handle_timeout(now);
        }
    }

    /// Drains every core until none has anything more to say.
    fn drive(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            let mut i = 0;
            while i < self.slots.len() {
                let slot = &mut self.slots[i];
                while let Some(msg) = slot.client.poll_transmit() {
                    if let Some(link) = &slot.link {
                        link.send(&msg);
                    }
                }
                let id = slot.id;
                let events: Vec<Event> = std::iter::from_fn(|| slot.client.poll_event()).collect();
                progressed |= !events.is_empty();
                let mut gone = false;
                for ev in events {
                    gone |= self.event(id, ev, now);
                }
                if gone {
                    self.remove_slot(id);
                } else {
                    i += 1;
                }
            }
            while let Some(clash) = self.peers.poll_clash() {
                progressed = true;
                tracing::warn!(ip = %clash.ip, peer = %clash.mover, "two peers have the same overlay address; asking one to move");
                if let Some(i) = self.slot_index(clash.via) {
                    self.slots[i].client.notify(ClientMsg::AddressClash {
                        ip: clash.ip,
                        key: clash.mover,
                    });
                }
            }
            if !progressed {
                break;
            }
        }
        if std::mem::take(&mut self.dirty) {
            self.publish_status();
        }
        for (reply, result) in self.outbox.drain(..) {
            let _ = reply.send(result);
        }
    }

    fn reply(&mut self, reply: Reply, result: Result<super::Answer, ApiError>) {
        self.outbox.push((reply, result));
    }

    /// Carries out one event of coordinator `id`; `true` when the coordinator is forgotten.
    fn event(&mut self, id: CoordId, ev: Event, now: Instant) -> bool {
        let Some(i) = self.slot_index(id) else {
            return false;
        };
        match ev {
            Event::Connect => {
                let slot = &mut self.slots[i];
                slot.generation += 1;
                slot.dialing = Some(dial::dial(
                    self.ctx.clone(),
                    slot.settings.clone(),
                    self.address.claim(),
                    id,
                    slot.generation,
                    self.inputs.clone(),
                ));
            }
            Event::Close(reason) => self.close(i, reason),
            Event::Reply { token, result } => self.answer(token, result),
            Event::PeerUpsert(info) => {
                let changes = self.peers.upsert(id, info);
                self.apply(&changes);
            }
            Event::PeerRemove(key) => {
                let changes = self.peers.remove(id, &key);
                self.apply(&changes);
            }
            Event::Dataplane(msg) => self.dataplane_message(id, msg, now),
            Event::LoggedOut => return true,
            Event::Changed => self.dirty = true,
            Event::Refused(why) => {
                tracing::error!(coordinator = %self.slots[i].settings.address, "{why}")
            }
            Event::Note(note) => {
                tracing::info!(coordinator = %self.slots[i].settings.address, "coordinator: {note}")
            }
        }
        false
    }

    fn dataplane_message(&mut self, id: CoordId, msg: ServerMsg, now: Instant) {
        match msg {
            ServerMsg::RelayTicket { ticket } => {
                let ticket = decode_ticket(&ticket);
                if let Some(i) = self.slot_index(id) {
                    self.slots[i].ticket = ticket.clone();
                }
                self.ctx
                    .dataplane
                    .node()
                    .set_relay_ticket_of(now, id, ticket);
                self.ctx.dataplane.flush_now();
            }
            ServerMsg::CallMeMaybe {
                key,
                lan,
                reflexive,
                mapped,
                mapped_tcp,
            } => {
                tracing::debug!(peer = %key, ?lan, ?reflexive, ?mapped, ?mapped_tcp, "call me maybe");
                let known = {
                    let mut node = self.ctx.dataplane.node();
                    node.set_peer_mapped_tcp(&key, mapped_tcp);
                    node.handle_call_me_maybe(now, &key, &lan, reflexive, mapped)
                };
                if known {
                    // Probe at once: both sides were told at the same moment.
                    self.ctx.dataplane.flush_now();
                }
            }
            ServerMsg::Calls { keys } => {
                let mut known = false;
                for key in keys {
                    let Some(p) = self.peers.info_from(id, &key) else {
                        continue;
                    };
                    let mut node = self.ctx.dataplane.node();
                    node.set_peer_mapped_tcp(&key, p.mapped_tcp);
                    known |= node.handle_call_me_maybe(now, &key, &p.lan, p.reflexive, p.mapped);
                }
                if known {
                    // Probe at once: each of them was told at the same moment.
                    self.ctx.dataplane.flush_now();
                }
            }
            ServerMsg::AddressClash { ip } => {
                tracing::warn!(%ip, "a member sees another host at this host's overlay address");
                let decision = self.address.clash_reported(now, ip);
                self.address_decided(decision, now);
            }
            other => tracing::debug!(?other, "not a data-plane message"),
        }
    }

    /// Acts on what [`OwnAddress`] decided: remember it, move the interface, and on a move
    /// claim the new address from every coordinator.
    fn address_decided(&mut self, decision: Decision, now: Instant) {
        let ip = match decision {
            Decision::Keep => return,
            Decision::Adopt(ip) | Decision::Move(ip) => ip,
        };
        super::address_file::save(&self.ctx.state_dir, self.address.saved());
        if let Err(e) = self.ctx.dataplane.use_overlay_ip(ip.into()) {
            tracing::warn!("cannot move the interface to {ip}: {e:#}");
        }
        if let Decision::Move(_) = decision {
            tracing::warn!(new = %ip, "moving to a fresh overlay address: another host had this one");
            for s in &mut self.slots {
                s.client.reconnect(now);
            }
        }
        self.dirty = true;
    }

    fn apply(&mut self, changes: &[PeerChange]) {
        if changes.is_empty() {
            return;
        }
        let refused = warren_daemon_core::control::apply::apply(
            &mut self.ctx.dataplane.node(),
            changes,
            Instant::now(),
        );
        for (peer, e) in refused {
            tracing::warn!(%peer, "cannot add peer from the coordinator: {e}");
        }
        self.dirty = true;
    }

    fn input(&mut self, input: Input, now: Instant) {
        match input {
            Input::Dialed {
                id,
                generation,
                result,
            } => {
                let Some(i) = self
                    .slot_index(id)
                    .filter(|i| self.slots[*i].generation == generation)
                else {
                    // An attempt abandoned meanwhile; a link it made closes when dropped.
                    return;
                };
                self.slots[i].dialing = None;
                match result {
                    Ok(connected) => {
                        let (link, welcome) = *connected;
                        self.connected(i, link, welcome, now)
                    }
                    Err(e) => {
                        tracing::warn!(coordinator = %self.slots[i].settings.address, "{}", e.text);
                        self.slots[i]
                            .client
                            .handle_connect_failed(now, e.text, e.name_taken);
                    }
                }
            }
            Input::Frame {
                id,
                generation,
                frame,
            } => {
                let Some(i) = self.slot_index(id).filter(|i| {
                    self.slots[*i].generation == generation && self.slots[*i].link.is_some()
                }) else {
                    return;
                };
                match frame {
                    Ok(bytes) => match serde_json::from_slice::<ServerMsg>(&bytes) {
                        Ok(msg) => self.slots[i].client.handle_message(msg),
                        Err(e) => {
                            tracing::warn!("unintelligible message from the coordinator: {e}")
                        }
                    },
                    Err(e) => {
                        tracing::warn!(coordinator = %self.slots[i].settings.address, "connection lost: {e}");
                        self.drop_link(i);
                        self.slots[i].client.handle_disconnected(now, e);
                    }
                }
            }
        }
    }

    /// Closes what coordinator `i` has open (a link or an attempt).
    fn close(&mut self, i: usize, reason: &'static str) {
        let slot = &mut self.slots[i];
        slot.generation += 1;
        if let Some(d) = slot.dialing.take() {
            d.abort();
        }
        if let Some(link) = slot.link.take() {
            link.close(reason);
        }
        self.link_gone(i);
    }

    fn drop_link(&mut self, i: usize) {
        self.slots[i].link = None;
        self.link_gone(i);
    }

    /// A coordinator's connection ended. Its relay stays in the node: the relay may still
    /// carry packets, the node notices by itself when it stops answering, and the next welcome
    /// brings a new token.
    fn link_gone(&mut self, i: usize) {
        let key = self.slots[i].settings.public_key;
        self.ctx.publish(|v| {
            v.connections.remove(&key);
        });
        self.show_connection();
        self.dirty = true;
    }

    fn remove_slot(&mut self, id: CoordId) {
        let Some(i) = self.slot_index(id) else {
            return;
        };
        self.close(i, "logged out");
        let slot = self.slots.remove(i);
        self.ctx
            .dataplane
            .node()
            .set_relay_of(Instant::now(), id, None);
        let changes = self.peers.remove_coordinator(id);
        self.apply(&changes);
        if self.stun_owner == Some(id) {
            self.stun_owner = None;
        }
        self.save_list();
        tracing::info!(coordinator = %slot.settings.address, "coordinator forgotten");
        self.dirty = true;
    }

    fn save_list(&self) {
        let list: Vec<CoordinatorSettings> =
            self.slots.iter().map(|s| s.settings.clone()).collect();
        if let Err(e) = CoordinatorSettings::save_all(&self.ctx.state_dir, &list) {
            tracing::warn!("cannot remember the coordinators: {e:#}");
        }
    }

    fn token(&mut self, reply: Reply) -> Token {
        let t = self.next_token;
        self.next_token += 1;
        self.replies.insert(t, reply);
        t
    }

    fn answer(&mut self, token: Token, result: Result<super::Answer, ApiError>) {
        if let Some(group) = self.grouped.remove(&token) {
            let Some(g) = self.groups.get_mut(&group) else {
                return;
            };
            match result {
                Ok(super::Answer::Done(text)) => g.done.push(text),
                Ok(_) => {}
                Err(e) => g.failed.push(e),
            }
            g.remaining -= 1;
            if g.remaining == 0 {
                let g = self.groups.remove(&group).expect("present");
                let result = if g.failed.is_empty() {
                    Ok(super::Answer::Done(g.done.join("; ")))
                } else {
                    Err(joined(&g.failed))
                };
                self.reply(g.reply, result);
            }
            return;
        }
        if let Some(reply) = self.replies.remove(&token) {
            self.reply(reply, result);
        }
    }

    /// Tells every connected coordinator the candidates known now (LAN addresses, STUN's
    /// answer, the router's port mapping).
    fn send_endpoints(&mut self) {
        let msg = self.endpoints();
        for s in &mut self.slots {
            s.client.notify(msg.clone());
        }
    }

    /// Tells every connected coordinator the LAN prefixes we advertise.
    fn send_routes(&mut self) {
        let msg = self.routes_msg();
        for s in &mut self.slots {
            s.client.notify(msg.clone());
        }
    }

    fn routes_msg(&self) -> ClientMsg {
        ClientMsg::AdvertiseRoutes {
            routes: self.ctx.subnets.advertised(),
        }
    }

    fn endpoints(&self) -> ClientMsg {
        let discovery = self.ctx.dataplane.node().discovery();
        ClientMsg::Endpoints {
            lan: super::lan::lan_endpoints(self.ctx.udp_port, &self.ctx.tun),
            reflexive: discovery.and_then(|d| d.reflexive),
            nat: discovery.map(|d| d.nat).unwrap_or(NatKind::Unknown),
            mapped: self.ctx.portmap.current.borrow().map(|m| m.external),
            relay: self.ctx.relay_offer.is_on(),
            mapped_tcp: self.ctx.portmap_tcp.current.borrow().map(|m| m.external),
        }
    }

    fn discovery(&mut self) {
        let event = self.ctx.dataplane.node().poll_discovery_event();
        let Some(d) = event else {
            return;
        };
        tracing::info!(reflexive = ?d.reflexive, nat = ?d.nat, "endpoint discovery");
        if self.reflexive.is_some() && d.reflexive.is_some() && d.reflexive != self.reflexive {
            // A new public address: a new uplink, or a router that restarted and may have
            // forgotten our mapping.
            for portmap in [&self.ctx.portmap, &self.ctx.portmap_tcp] {
                portmap.send(crate::portmap::Command::NetworkChanged);
            }
        }
        self.reflexive = d.reflexive.or(self.reflexive);
        self.send_endpoints();
        // Subscribers see the new reflexive address and NAT kind.
        self.dirty = true;
    }

    fn shutdown(&mut self) {
        for i in 0..self.slots.len() {
            if let Some(link) = self.slots[i].link.take() {
                link.close("daemon stopping");
            }
        }
    }
}

/// Fresh randomness for a client's reconnect jitter (a fixed seed only makes every host
/// reconnect at the same moment as the others, never wrong).
fn jitter_seed() -> u64 {
    let mut seed = [0u8; 8];
    let _ = getrandom::getrandom(&mut seed);
    u64::from_le_bytes(seed)
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
