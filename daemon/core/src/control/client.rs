//! One coordinator as the daemon follows it: whether to be connected, when to try again, the
//! requests in flight, the networks it lists for this host and the peers it brought.
//!
//! Inputs are `handle_*` calls with the current time; outputs are drained in this order after
//! every input: [`Client::poll_transmit`] (messages for the live connection),
//! [`Client::poll_event`] (what the shell carries out), then [`Client::poll_timeout`] (when to
//! call [`Client::handle_timeout`]). Nothing here reads a clock or touches a socket.

use super::answer::{done_text, pending_text, Answer};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};
use warren_proto::api::{ApiError, ErrorCode, JoinRequestInfo};
use warren_proto::control::msg::{ClientMsg, NetworkState, PeerInfo, ServerMsg, Welcome};
use warren_proto::key::NodeKey;
use warren_proto::overlay::{OVERLAY_V4, OVERLAY_V6};

/// The first retry comes after about this; each failure doubles it up to [`MAX_BACKOFF`]. Each
/// wait is drawn from half to one and a half times that, so that the hosts of a coordinator
/// that restarted do not all come back in the same instant.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A connection that lasted this long is dialed again at once (within [`QUICK_REDIAL`]) when it
/// drops (the coordinator
/// restarted, and with it the relay our peers' traffic may be waiting for); one that drops
/// sooner waits the backoff, so a coordinator that keeps dropping us is not hammered.
pub const STABLE_FOR: Duration = Duration::from_secs(10);
/// About how soon such a connection is dialed again (drawn from half to one and a half times).
pub const QUICK_REDIAL: Duration = Duration::from_millis(300);

/// `d` times a factor drawn from [0.5, 1.5), from the splitmix64 state `rng` (advanced).
pub fn jitter(d: Duration, rng: &mut u64) -> Duration {
    *rng = rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *rng;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let millis = d.as_millis() as u64;
    Duration::from_millis(millis / 2 + z % millis.max(1))
}

/// Who waits for an answer: the shell's handle for a reply channel.
pub type Token = u64;

/// What the shell does for the client.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Dial the coordinator now; report with `handle_connected` or `handle_connect_failed`.
    Connect,
    /// Close the live connection (or abandon the attempt) with this reason.
    Close(&'static str),
    /// The answer for whoever waits on `token`.
    Reply {
        token: Token,
        result: Result<Answer, ApiError>,
    },
    /// A peer this coordinator brings appeared or changed.
    PeerUpsert(PeerInfo),
    /// A peer this coordinator brought is gone.
    PeerRemove(NodeKey),
    /// A message for the data plane: relay tickets, call-me-maybe, address clashes.
    Dataplane(ServerMsg),
    /// Logged out: the shell forgets this coordinator.
    LoggedOut,
    /// What `status` shows of this coordinator changed.
    Changed,
    /// What just happened to this host, in the coordinator's words (removed, turned away…):
    /// the one place such a host hears why, so the shell logs it.
    Note(String),
    /// Something the coordinator sent that this host refused, and why: logged loudly.
    Refused(String),
}

/// This host's networks on the coordinator, as it last said.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Networks {
    pub member: Vec<String>,
    pub owned: Vec<String>,
    pub locked: Vec<String>,
    pub requests: Vec<JoinRequestInfo>,
    pub waiting: Vec<String>,
    pub routes: Vec<warren_proto::api::RouteInfo>,
}

impl Networks {
    /// Whether `name` is one of this coordinator's networks for this host in any way.
    pub fn has(&self, name: &str) -> bool {
        let eq = |n: &String| n.eq_ignore_ascii_case(name);
        self.member.iter().any(eq) || self.owned.iter().any(eq) || self.waiting.iter().any(eq)
    }

    fn from_states(states: Vec<NetworkState>, waiting: Vec<String>) -> Self {
        let names = |f: fn(&NetworkState) -> bool| -> Vec<String> {
            states
                .iter()
                .filter(|n| f(n))
                .map(|n| n.name.clone())
                .collect()
        };
        Networks {
            member: names(|n| n.member),
            owned: names(|n| n.owned),
            locked: names(|n| n.locked),
            requests: states
                .iter()
                .flat_map(|n| {
                    n.requests.iter().map(|r| JoinRequestInfo {
                        network: n.name.clone(),
                        name: r.name.clone(),
                        public_key: r.key,
                        asked_at: r.asked_at,
                    })
                })
                .collect(),
            waiting,
            routes: states
                .iter()
                .flat_map(|n| {
                    n.routes.iter().map(|r| warren_proto::api::RouteInfo {
                        network: n.name.clone(),
                        name: r.name.clone(),
                        public_key: r.key,
                        prefix: r.prefix.clone(),
                        advertised: r.advertised,
                        approved: r.approved,
                    })
                })
                .collect(),
        }
    }
}

#[derive(Debug)]
enum Conn {
    /// Turned off: nothing until `set_enabled(true)`.
    Off,
    /// Waiting to try again at `retry_at`.
    Waiting { retry_at: Instant },
    /// The shell is dialing.
    Connecting,
    Connected {
        /// When it was welcomed.
        since: Instant,
        /// Requests sent and not yet answered, by request id.
        pending: BTreeMap<u64, (Token, ClientMsg)>,
        next_id: u64,
    },
}

pub struct Client {
    /// How users know it (its address), for messages.
    label: String,
    conn: Conn,
    backoff: Duration,
    last_error: Option<String>,
    name_taken: bool,
    networks: Networks,
    overlay_ip: Option<IpAddr>,
    /// Peers this coordinator brought, so a logout or forget removes exactly them.
    peers: BTreeSet<NodeKey>,
    /// `warren up`s waiting to hear how the next connection attempt goes.
    waiting_up: Vec<Token>,
    /// The name the last welcome was for.
    connected_as: String,
    /// Peers refused for an address outside the overlay.
    refused: u64,
    transmits: VecDeque<ClientMsg>,
    events: VecDeque<Event>,
    /// Randomness for the jitter (splitmix64 state; injected, so tests are deterministic).
    rng: u64,
}

impl Client {
    /// A coordinator to follow; it connects at once when `enabled`. `seed` should differ from
    /// host to host (fresh randomness): it spreads their reconnects.
    pub fn new(label: impl Into<String>, enabled: bool, now: Instant, seed: u64) -> Self {
        let mut c = Client {
            label: label.into(),
            conn: Conn::Off,
            backoff: FIRST_BACKOFF,
            last_error: None,
            name_taken: false,
            networks: Networks::default(),
            overlay_ip: None,
            peers: BTreeSet::new(),
            waiting_up: Vec::new(),
            connected_as: String::new(),
            refused: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            rng: seed,
        };
        c.set_enabled(enabled, now);
        c
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    /// A new address to show (the same coordinator, reached another way).
    pub fn set_label(&mut self, label: impl Into<String>) {
        self.label = label.into();
    }

    pub fn is_connected(&self) -> bool {
        matches!(self.conn, Conn::Connected { .. })
    }

    pub fn is_enabled(&self) -> bool {
        !matches!(self.conn, Conn::Off)
    }

    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    pub fn name_taken(&self) -> bool {
        self.name_taken
    }

    /// Peers refused because the coordinator gave them an address outside the overlay.
    pub fn refused_peers(&self) -> u64 {
        self.refused
    }

    pub fn networks(&self) -> &Networks {
        &self.networks
    }

    /// The address the coordinator leased this host at the last connection.
    pub fn overlay_ip(&self) -> Option<IpAddr> {
        self.overlay_ip
    }

    /// Turns following this coordinator on (connect now) or off (close, answer what waits).
    pub fn set_enabled(&mut self, on: bool, now: Instant) {
        match (on, &self.conn) {
            (true, Conn::Off) => {
                self.backoff = FIRST_BACKOFF;
                self.conn = Conn::Waiting { retry_at: now };
            }
            (true, _) => {}
            (false, Conn::Off) => {}
            (false, _) => {
                self.drop_connection("turned off", "Warren was turned off");
                self.conn = Conn::Off;
                self.answer_waiting_up(Err(ApiError::new(
                    ErrorCode::TunnelDown,
                    "cancelled: Warren was turned off",
                )));
            }
        }
    }

    /// Closes the connection and dials again at once (the name or the claimed address
    /// changed, which the coordinator only learns in a new hello).
    pub fn reconnect(&mut self, now: Instant) {
        if matches!(self.conn, Conn::Off) {
            return;
        }
        self.drop_connection("reconfigured", "the coordinator connection was reopened");
        self.backoff = FIRST_BACKOFF;
        self.conn = Conn::Waiting { retry_at: now };
    }

    /// `token` hears how the next connection attempt goes (at once when connected).
    pub fn wait_connected(&mut self, token: Token, now: Instant) {
        match self.conn {
            Conn::Connected { .. } => self.events.push_back(Event::Reply {
                token,
                result: Ok(Answer::Done(format!(
                    "Warren is up, connected to {} as {}",
                    self.label, self.connected_as
                ))),
            }),
            _ => {
                self.waiting_up.push(token);
                // Someone waits: try now rather than at the end of a long backoff.
                if let Conn::Waiting { retry_at } = &mut self.conn {
                    *retry_at = (*retry_at).min(now);
                }
                self.backoff = FIRST_BACKOFF;
            }
        }
    }

    /// Connected and welcomed, under the name `name`. A welcome with an address outside the
    /// overlay is refused (a hostile coordinator could route anything into the tunnel with
    /// it): `Err` says why, and the shell closes the connection.
    pub fn handle_connected(
        &mut self,
        now: Instant,
        welcome: &Welcome,
        name: &str,
    ) -> Result<(), String> {
        if !in_overlay(welcome.overlay_ip) {
            let why = format!(
                "the coordinator leased {}, outside Warren's overlay ({OVERLAY_V4}): refused \
                 (a coordinator that does this is broken or hostile)",
                welcome.overlay_ip
            );
            self.failed(now, why.clone());
            return Err(why);
        }
        self.connected_as = name.to_string();
        self.conn = Conn::Connected {
            since: now,
            pending: BTreeMap::new(),
            next_id: 1,
        };
        self.backoff = FIRST_BACKOFF;
        self.last_error = None;
        self.name_taken = false;
        self.overlay_ip = Some(welcome.overlay_ip);
        self.networks.member = welcome.networks.clone();
        let text = format!(
            "connected to {} as {name} ({})",
            self.label, welcome.overlay_ip
        );
        self.answer_waiting_up(Ok(Answer::Done(text)));
        self.events.push_back(Event::Changed);
        Ok(())
    }

    /// A connection attempt failed; `name_taken`: another member has this host's name.
    pub fn handle_connect_failed(&mut self, now: Instant, error: String, name_taken: bool) {
        if !matches!(self.conn, Conn::Connecting) {
            return;
        }
        self.name_taken = name_taken;
        self.failed(now, error);
    }

    /// The live connection ended: dialed again at once if it had lasted [`STABLE_FOR`], else
    /// after the backoff.
    pub fn handle_disconnected(&mut self, now: Instant, error: String) {
        let Conn::Connected { since, .. } = self.conn else {
            return;
        };
        self.fail_pending("the coordinator connection dropped; try again");
        // Unsent messages belonged to the old connection; the next hello says it all again.
        self.transmits.clear();
        self.failed(now, format!("connection lost: {error}"));
        if now.saturating_duration_since(since) >= STABLE_FOR {
            // Soon, but not all of a restarted coordinator's hosts in the same instant.
            let wait = self.jittered(QUICK_REDIAL);
            self.conn = Conn::Waiting {
                retry_at: now + wait,
            };
            self.backoff = FIRST_BACKOFF;
        }
    }

    fn failed(&mut self, now: Instant, error: String) {
        self.last_error = Some(error.clone());
        let wait = self.jittered(self.backoff);
        self.conn = Conn::Waiting {
            retry_at: now + wait,
        };
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        let code = if self.name_taken {
            ErrorCode::NameTaken
        } else {
            ErrorCode::CoordinatorUnreachable
        };
        self.answer_waiting_up(Err(ApiError::new(
            code,
            format!(
                "cannot reach the coordinator at {}: {error} (will keep trying)",
                self.label
            ),
        )));
        self.events.push_back(Event::Changed);
    }

    fn jittered(&mut self, d: Duration) -> Duration {
        jitter(d, &mut self.rng)
    }

    /// Sends `msg` under a fresh id, or answers at once why it cannot be sent.
    pub fn request(&mut self, msg: ClientMsg, token: Token) {
        match &mut self.conn {
            Conn::Connected {
                pending, next_id, ..
            } => {
                let msg = msg.with_id(*next_id);
                pending.insert(*next_id, (token, msg.clone()));
                *next_id += 1;
                self.transmits.push_back(msg);
            }
            _ => {
                let why = self.unreachable();
                self.events.push_back(Event::Reply {
                    token,
                    result: Err(why),
                });
            }
        }
    }

    /// A message that needs no answer (endpoints, clash reports); dropped while not connected,
    /// as the coordinator is told everything again at the next hello.
    pub fn notify(&mut self, msg: ClientMsg) {
        if self.is_connected() {
            self.transmits.push_back(msg);
        }
    }

    fn unreachable(&self) -> ApiError {
        match &self.conn {
            Conn::Off => ApiError::new(
                ErrorCode::TunnelDown,
                "Warren is down: run `warren up` first",
            ),
            _ => ApiError::new(
                ErrorCode::CoordinatorUnreachable,
                format!(
                    "the coordinator at {} is unreachable right now ({}); retrying",
                    self.label,
                    self.last_error.as_deref().unwrap_or("connecting")
                ),
            ),
        }
    }

    pub fn handle_message(&mut self, msg: ServerMsg) {
        match msg {
            ServerMsg::Ok { id } => {
                let Some((token, req)) = self.take_pending(id) else {
                    return;
                };
                self.accepted(token, &req);
            }
            ServerMsg::Error { id, message, code } => {
                if let Some((token, _)) = self.take_pending(id) {
                    self.reply(token, Err(ApiError::new(code.into(), message)));
                }
            }
            ServerMsg::Invite {
                id,
                network,
                secret,
                expires,
            } => {
                if let Some((token, _)) = self.take_pending(id) {
                    self.reply(
                        token,
                        Ok(Answer::Invite {
                            network,
                            secret,
                            expires,
                        }),
                    );
                }
            }
            ServerMsg::JoinPending { id, network } => {
                if let Some((token, _)) = self.take_pending(id) {
                    self.reply(token, Ok(Answer::Done(pending_text(&network))));
                }
            }
            ServerMsg::Invites { id, invites } => {
                if let Some((token, _)) = self.take_pending(id) {
                    self.reply(token, Ok(Answer::Invites(invites)));
                }
            }
            ServerMsg::Networks {
                networks,
                waiting,
                note,
            } => {
                if let Some(note) = note {
                    self.events.push_back(Event::Note(note));
                }
                self.networks = Networks::from_states(networks, waiting);
                self.events.push_back(Event::Changed);
            }
            ServerMsg::PeerUpsert { peer, .. } if !in_overlay(peer.overlay_ip) => {
                // Only overlay addresses are ever routed into the tunnel.
                self.refused += 1;
                self.events.push_back(Event::Refused(format!(
                    "refused peer {} at {}: outside Warren's overlay (the coordinator is \
                     broken or hostile)",
                    peer.name, peer.overlay_ip
                )));
            }
            ServerMsg::PeerUpsert { peer, call } => {
                self.peers.insert(peer.key);
                // The peer is known before it is probed.
                let probe = call.then(|| ServerMsg::CallMeMaybe {
                    key: peer.key,
                    lan: peer.lan.clone(),
                    reflexive: peer.reflexive,
                    mapped: peer.mapped,
                    mapped_tcp: peer.mapped_tcp,
                });
                self.events.push_back(Event::PeerUpsert(peer));
                if let Some(probe) = probe {
                    self.events.push_back(Event::Dataplane(probe));
                }
            }
            ServerMsg::PeerRemove { key } => {
                if self.peers.remove(&key) {
                    self.events.push_back(Event::PeerRemove(key));
                }
            }
            other @ (ServerMsg::RelayTicket { .. }
            | ServerMsg::CallMeMaybe { .. }
            | ServerMsg::Calls { .. }
            | ServerMsg::AddressClash { .. }) => self.events.push_back(Event::Dataplane(other)),
        }
    }

    /// Logs out (leaves every network of this coordinator, which forgets this host's
    /// memberships); answered when the coordinator confirms.
    pub fn logout(&mut self, token: Token) {
        if self.is_connected() {
            self.request(ClientMsg::Logout { id: 0 }, token);
        } else {
            let why = format!(
                "cannot log out while not connected to the coordinator at {} (it would \
                 keep this host in its networks): try again once `warren status` says \
                 connected, or `warren logout --force` to forget it on this host only",
                self.label
            );
            self.reply(
                token,
                Err(ApiError::new(ErrorCode::CoordinatorUnreachable, why)),
            );
        }
    }

    /// Forgets this coordinator here only: its peers go, the connection closes.
    pub fn forget(&mut self) {
        self.drop_connection("logged out", "logged out");
        self.conn = Conn::Off;
        self.answer_waiting_up(Err(ApiError::new(
            ErrorCode::Other,
            "cancelled: the coordinator was forgotten",
        )));
        for key in std::mem::take(&mut self.peers) {
            self.events.push_back(Event::PeerRemove(key));
        }
        self.networks = Networks::default();
        self.events.push_back(Event::LoggedOut);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.conn {
            Conn::Waiting { retry_at } => Some(retry_at),
            _ => None,
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Conn::Waiting { retry_at } = self.conn {
            if now >= retry_at {
                self.conn = Conn::Connecting;
                self.events.push_back(Event::Connect);
            }
        }
    }

    pub fn poll_transmit(&mut self) -> Option<ClientMsg> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn take_pending(&mut self, id: u64) -> Option<(Token, ClientMsg)> {
        match &mut self.conn {
            Conn::Connected { pending, .. } => pending.remove(&id),
            _ => None,
        }
    }

    fn accepted(&mut self, token: Token, req: &ClientMsg) {
        // The coordinator compares names case-insensitively, in lowercase; its `Networks`
        // push follows and has the last word.
        let member = &mut self.networks.member;
        match req {
            ClientMsg::CreateNetwork { name, .. } | ClientMsg::JoinNetwork { name, .. } => {
                member.push(name.to_ascii_lowercase())
            }
            ClientMsg::JoinInvite { network, .. } => member.push(network.to_ascii_lowercase()),
            ClientMsg::LeaveNetwork { name, .. } => {
                member.retain(|n| !n.eq_ignore_ascii_case(name))
            }
            ClientMsg::Logout { .. } => {
                let left = std::mem::take(&mut self.networks.member);
                let left = if left.is_empty() {
                    String::new()
                } else {
                    format!(", left {}", left.join(", "))
                };
                let text = format!(
                    "logged out of {}{left}; this host's identity is kept",
                    self.label
                );
                self.reply(token, Ok(Answer::Done(text)));
                self.forget();
                return;
            }
            _ => {}
        }
        member.sort();
        member.dedup();
        self.events.push_back(Event::Changed);
        self.reply(token, Ok(Answer::Done(done_text(req))));
    }

    fn reply(&mut self, token: Token, result: Result<Answer, ApiError>) {
        self.events.push_back(Event::Reply { token, result });
    }

    fn answer_waiting_up(&mut self, result: Result<Answer, ApiError>) {
        for token in std::mem::take(&mut self.waiting_up) {
            self.reply(token, result.clone());
        }
    }

    fn fail_pending(&mut self, why: &str) {
        if let Conn::Connected { pending, .. } = &mut self.conn {
            let tokens: Vec<Token> = std::mem::take(pending).into_values().map(|p| p.0).collect();
            for token in tokens {
                let e = ApiError::new(ErrorCode::CoordinatorUnreachable, why);
                self.reply(token, Err(e));
            }
        }
    }

    /// Ends a live connection or an attempt, telling whoever waits on a request.
    fn drop_connection(&mut self, reason: &'static str, why: &str) {
        match self.conn {
            Conn::Connected { .. } => {
                self.fail_pending(why);
                self.events.push_back(Event::Close(reason));
                self.events.push_back(Event::Changed);
            }
            Conn::Connecting => self.events.push_back(Event::Close(reason)),
            _ => {}
        }
        self.transmits.clear();
    }
}

/// Whether `ip` is one of Warren's overlay addresses (IPv4 /10 or the IPv6 ULA /64).
fn in_overlay(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            OVERLAY_V4.contains(&v4) && v4 != OVERLAY_V4.network() && v4 != OVERLAY_V4.broadcast()
        }
        IpAddr::V6(v6) => OVERLAY_V6.contains(&v6),
    }
}

#[cfg(test)]
mod tests;
