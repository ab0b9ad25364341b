//! The daemon's side of the coordinator: one QUIC connection (or TCP+TLS where UDP is
//! blocked), authenticated with Noise, that brings peers and network membership. The data
//! plane keeps running with what it has when the coordinator is away; this task reconnects
//! with backoff.

mod connect;
mod lan;
pub mod link;
mod owner;
mod quic;
mod relay_shim;
pub mod session;
mod settings;
mod tcp;
mod tls;
mod tunnel_state;

pub use lan::lan_endpoints;
pub use session::run;
pub use settings::CoordinatorSettings;
pub use tunnel_state::TunnelState;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, watch};
use warren_proto::api::CoordinatorStatus;
use warren_proto::control::msg::ClientMsg;
use warren_proto::key::NodeKey;

/// What a carried-out command gives back.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A message for the user.
    Done(String),
    /// A join secret the coordinator made.
    Invite {
        network: String,
        secret: String,
        expires: u64,
    },
    /// A network's invites, as the coordinator lists them.
    Invites(Vec<warren_proto::control::msg::InviteEntry>),
}

pub type Reply = oneshot::Sender<Result<Answer, String>>;

/// What the local API asks of the control task.
pub enum Command {
    /// Turn on: connect to these settings (remembered), or to the remembered ones (`None`).
    Up(Option<CoordinatorSettings>, Reply),
    /// Turn off: disconnect and stop carrying packets, also after a restart.
    Down(Reply),
    /// Leave every network and forget the coordinator; `force` forgets it locally even when
    /// the coordinator cannot be told.
    Logout { force: bool, reply: Reply },
    /// A request to the coordinator (its `id` is filled in by the session).
    Request(ClientMsg, Reply),
}

/// What the control task knows, for status and netcheck.
#[derive(Default)]
pub struct ControlView {
    pub coordinator: Option<CoordinatorStatus>,
    /// The networks each coordinator peer shares with this host.
    pub peer_networks: HashMap<NodeKey, Vec<String>>,
    /// The coordinator's two STUN servers, once connected.
    pub stun_servers: Option<[SocketAddr; 2]>,
    /// The live control connection (its transport and RTT).
    pub connection: Option<link::LinkInfo>,
    /// The coordinator's other addresses (from its invite), tried with its main one.
    pub alternates: Vec<String>,
}

impl ControlView {
    /// `addr` as users should see it: over TCP the relay is a loopback shim, shown as the
    /// coordinator connection it really goes through.
    pub fn shown(&self, addr: SocketAddr) -> SocketAddr {
        match &self.connection {
            Some(link) => link.shown(addr),
            None => addr,
        }
    }
}

/// The handle the local API holds.
pub struct ControlHandle {
    pub commands: mpsc::Sender<Command>,
    pub view: Arc<Mutex<ControlView>>,
    /// Bumped whenever the view changes, so subscribers push at once.
    pub changed: watch::Receiver<u64>,
}
