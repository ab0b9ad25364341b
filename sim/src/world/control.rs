//! The control connections between hosts and the coordinator: dialing, the welcome, messages
//! both ways (in order, after the fabric's one-way delay), and their end — a host closing,
//! a host moving, the coordinator crashing.
//!
//! Not simulated: QUIC or TCP themselves. A connection to a coordinator that is reachable
//! comes up after one round trip for the handshake (and 1 s more for a host whose UDP is
//! blocked: the daemon tries QUIC first, TCP after 1 s); a dead coordinator is noticed after
//! [`NOTICE_LOSS`] (the connection's keep-alive), a refused dial after [`DIAL_TIMEOUT`].

use super::{Ev, Link, World};
use crate::fabric::HostId;
use std::time::Duration;
use warren_proto::control::msg::{ClientMsg, ServerMsg};

/// How long a dial to an unreachable coordinator takes to fail.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a host takes to notice that its coordinator is gone.
pub const NOTICE_LOSS: Duration = Duration::from_secs(3);
/// The daemon's wait before it falls back from QUIC to TCP.
const TCP_FALLBACK: Duration = Duration::from_secs(1);

impl World {
    /// The host's client asks to connect.
    pub(crate) fn dial(&mut self, h: HostId) {
        let link = self.links[h].1 + 1;
        self.links[h] = (Link::Dialing, link);
        match self.fabric.control_path(h) {
            Some(d) => {
                let fallback = if self.fabric.udp_blocked(h) {
                    TCP_FALLBACK
                } else {
                    Duration::ZERO
                };
                self.queue
                    .push(self.now + 3 * d + fallback, Ev::Hello { h, link });
            }
            None => self
                .queue
                .push(self.now + DIAL_TIMEOUT, Ev::Refused { h, link }),
        }
    }

    /// The host's client closes its connection.
    pub(crate) fn hang_up(&mut self, h: HostId) {
        let (state, link) = self.links[h];
        self.links[h] = (Link::Closed, link + 1);
        if let (Link::Up { .. }, Some(d)) = (state, self.fabric.control_path(h)) {
            self.queue
                .push(self.now + d, Ev::ServerSeesClose { h, link });
        }
    }

    /// The connection breaks under the host (it moved, its uplink died): both ends notice.
    pub fn drop_link(&mut self, h: HostId) {
        let (state, link) = self.links[h];
        // A dial under way goes on from the new place.
        let Link::Up { .. } = state else {
            return;
        };
        self.links[h] = (Link::Closed, link + 1);
        self.queue.push(self.now, Ev::ServerSeesClose { h, link });
        self.queue.push(self.now, Ev::Lost { h, link });
    }

    pub(crate) fn send_to_coordinator(&mut self, h: HostId, msg: ClientMsg) {
        let (state, link) = self.links[h];
        if let (Link::Up { .. }, Some(d)) = (state, self.fabric.control_path(h)) {
            self.queue.push(self.now + d, Ev::ToServer { h, link, msg });
        }
    }

    pub(crate) fn send_to_host(&mut self, h: HostId, msg: ServerMsg) {
        let (state, link) = self.links[h];
        if let (Link::Up { .. }, Some(d)) = (state, self.fabric.control_path(h)) {
            self.queue.push(self.now + d, Ev::ToHost { h, link, msg });
        }
    }

    pub(super) fn control_event(&mut self, ev: Ev) {
        let now = self.now;
        let unix = self.unix();
        match ev {
            Ev::Hello { h, link } => {
                if self.links[h] != (Link::Dialing, link) {
                    return;
                }
                let (Some(ip), true) = (self.fabric.public_ip(h), self.server_up()) else {
                    self.queue.push(now + DIAL_TIMEOUT, Ev::Refused { h, link });
                    return;
                };
                let tcp = self.fabric.udp_blocked(h);
                let key = self.hosts[h].key();
                let hello = self.hosts[h].hello();
                let mut said = Vec::new();
                match self
                    .coordinator
                    .connect(unix, h, link, key, &hello, ip, &mut said)
                {
                    Ok(welcome) => {
                        self.links[h] = (Link::Up { tcp }, link);
                        let d = self.fabric.control_path(h).unwrap_or_default();
                        let welcome = Box::new(welcome);
                        self.queue.push(now + d, Ev::Welcome { h, link, welcome });
                        self.said(said);
                    }
                    Err(e) => panic!("{}: the coordinator refused it: {e}", self.hosts[h].name),
                }
            }
            Ev::Welcome { h, link, welcome } => {
                if self.links[h].1 == link {
                    let out = self.hosts[h].welcomed(now, &welcome);
                    self.carry(h, out);
                }
            }
            Ev::ToServer { h, link, msg } => {
                if matches!(self.links[h], (Link::Up { .. }, l) if l == link) && self.server_up() {
                    let key = self.hosts[h].key();
                    let mut said = Vec::new();
                    self.coordinator.message(unix, key, msg, &mut said);
                    self.said(said);
                }
            }
            Ev::ToHost { h, link, msg } => {
                if self.links[h].1 == link {
                    let out = self.hosts[h].message(now, msg);
                    self.carry(h, out);
                }
            }
            Ev::Refused { h, link } => {
                if self.links[h] == (Link::Dialing, link) {
                    self.links[h] = (Link::Closed, link + 1);
                    let out = self.hosts[h].connect_failed(now);
                    self.carry(h, out);
                }
            }
            Ev::Lost { h, .. } => {
                let out = self.hosts[h].disconnected(now);
                self.carry(h, out);
            }
            Ev::ServerSeesClose { h, link } => {
                if self.server_up() {
                    let key = self.hosts[h].key();
                    let mut said = Vec::new();
                    self.coordinator.disconnect(&key, link, &mut said);
                    self.said(said);
                }
            }
            Ev::Udp { .. }
            | Ev::Hop { .. }
            | Ev::TcpToRelay { .. }
            | Ev::TcpFromRelay { .. }
            | Ev::Traffic { .. } => {
                unreachable!("data, not control")
            }
        }
    }

    /// The coordinator's machine goes down: everything it knew but its database is lost, and
    /// its hosts notice after `NOTICE_LOSS` (3 s).
    pub fn crash_coordinator(&mut self) {
        if let Some(s) = &mut self.fabric.server {
            s.up = false;
        }
        self.coordinator.restart();
        // A dial under way fails by itself: its hello finds nobody.
        for h in 0..self.hosts.len() {
            let (state, link) = self.links[h];
            if let Link::Up { .. } = state {
                self.links[h] = (Link::Closed, link + 1);
                self.queue
                    .push(self.now + NOTICE_LOSS, Ev::Lost { h, link });
            }
        }
    }

    /// The coordinator's machine is back: hosts reconnect on their own schedule.
    pub fn restart_coordinator(&mut self) {
        if let Some(s) = &mut self.fabric.server {
            s.up = true;
        }
    }

    /// Starts host `h`'s daemon: it dials the coordinator.
    pub fn start(&mut self, h: HostId) {
        let now = self.now;
        self.hosts[h].client.set_enabled(true, now);
        self.hosts[h].client.handle_timeout(now);
        let out = self.hosts[h].drain_now(now);
        self.carry(h, out);
    }

    /// `warren create NET` on host `h` (password `pw-NET`).
    pub fn create(&mut self, h: HostId, net: &str) {
        let msg = ClientMsg::CreateNetwork {
            id: 0,
            name: net.into(),
            password: format!("pw-{net}"),
        };
        let out = self.hosts[h].request(self.now, msg);
        self.carry(h, out);
    }

    /// `warren join NET` on host `h`.
    pub fn join(&mut self, h: HostId, net: &str) {
        let msg = ClientMsg::JoinNetwork {
            id: 0,
            name: net.into(),
            password: format!("pw-{net}"),
        };
        let out = self.hosts[h].request(self.now, msg);
        self.carry(h, out);
    }

    /// Whether `h`'s control connection goes over TCP (its UDP does not get out).
    pub fn over_tcp(&self, h: HostId) -> bool {
        self.links[h].0 == (Link::Up { tcp: true })
    }

    /// Whether `h` is connected to the coordinator (its client says so).
    pub fn connected(&self, h: HostId) -> bool {
        self.hosts[h].client.is_connected()
    }
}

impl World {
    /// Starts `hosts`, lets them connect, and puts them all in network `net` (the first
    /// creates it, the others join in turn); returns once every join was answered.
    pub fn network(&mut self, hosts: &[HostId], net: &str) {
        for &h in hosts {
            self.start(h);
        }
        let all = hosts.to_vec();
        let up = self.run_until(Duration::from_secs(10), |w| {
            all.iter().all(|&h| w.connected(h))
        });
        assert!(
            up,
            "hosts did not connect to the coordinator (seed {})",
            self.seed()
        );
        for (i, &h) in hosts.iter().enumerate() {
            let before = self.hosts[h].replies.len();
            if i == 0 {
                self.create(h, net);
            } else {
                self.join(h, net);
            }
            let answered = self.run_until(Duration::from_secs(5), |w| {
                w.hosts[h].replies.len() > before
            });
            assert!(answered, "{}: no answer to its join", self.hosts[h].name);
            if let Err(e) = &self.hosts[h].replies[before] {
                panic!("{}: {e}", self.hosts[h].name);
            }
        }
    }
}
