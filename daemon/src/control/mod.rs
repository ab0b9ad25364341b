//! The daemon's side of its coordinators: for each, one QUIC connection (or TCP+TLS where UDP
//! is blocked), authenticated with Noise, that brings peers and network membership. A host
//! can be in networks of several coordinators at once. The protocol logic is the sans-IO
//! `warren_daemon_core::control`; this module dials, pumps frames and applies what the core
//! decides to the data plane. The data plane keeps running with what it has while a
//! coordinator is away; its client reconnects with backoff.

mod address_file;
mod connect;
mod dial;
mod lan;
pub mod link;
mod quic;
mod relay_shim;
pub mod session;
mod settings;
mod tcp;
mod tunnel_state;

pub use lan::lan_endpoints;
pub use session::run;
pub use settings::CoordinatorSettings;
pub use tunnel_state::TunnelState;
pub use warren_daemon_core::control::Answer;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, watch};
use warren_proto::api::{ApiError, CoordinatorStatus};
use warren_proto::control::msg::ClientMsg;
use warren_proto::key::NodeKey;

pub type Reply = oneshot::Sender<Result<Answer, ApiError>>;

/// What the local API asks of the control task.
pub enum Command {
    /// Turn on. With settings: follow that coordinator too (one already followed — the same
    /// key — gets the new addresses and name); every coordinator uses the settings' name.
    Up(Option<CoordinatorSettings>, Reply),
    /// Turn off: disconnect and stop carrying packets, also after a restart.
    Down(Reply),
    /// Leave every network of a coordinator (`to`), or of all, and forget it; `force`
    /// forgets locally even when the coordinator cannot be told.
    Logout {
        force: bool,
        to: Option<NodeKey>,
        reply: Reply,
    },
    /// Stop following a coordinator on this host only (an invite to it did not work out).
    Forget { to: NodeKey, reply: Reply },
    /// A request to a coordinator: `to`, else the one that has the network the request
    /// names, else the first. Its `id` is filled in by the session.
    Request {
        msg: ClientMsg,
        to: Option<NodeKey>,
        reply: Reply,
    },
}

/// What the control task knows, for status and netcheck.
#[derive(Default)]
pub struct ControlView {
    /// The first coordinator (`Status.coordinator`); all of them are in `coordinators`.
    pub coordinator: Option<CoordinatorStatus>,
    pub coordinators: Vec<CoordinatorStatus>,
    /// What each coordinator is followed with (addresses, name), in the same order.
    pub settings: Vec<CoordinatorSettings>,
    /// The networks each coordinator peer shares with this host.
    pub peer_networks: HashMap<NodeKey, Vec<String>>,
    /// Each coordinator peer's approved subnet routes (see `subnet_routes`).
    pub peer_routes: HashMap<NodeKey, Vec<String>>,
    /// Peers not routed by IPv4 because another one has their address (see `PeerMap`).
    pub clashing: Vec<NodeKey>,
    /// The STUN servers in use (the first connected coordinator's), once connected.
    pub stun_servers: Option<[SocketAddr; 2]>,
    /// The live control connection of the coordinator whose relay the node uses.
    pub connection: Option<link::LinkInfo>,
    /// Every live control connection, by coordinator key.
    pub connections: HashMap<NodeKey, link::LinkInfo>,
    /// Times this host moved to a fresh overlay address.
    pub address_moves: u64,
}

impl ControlView {
    /// `addr` as users should see it: over TCP a relay is a loopback shim, shown as the
    /// coordinator connection it really goes through.
    pub fn shown(&self, addr: SocketAddr) -> SocketAddr {
        self.connections
            .values()
            .map(|l| l.shown(addr))
            .find(|a| *a != addr)
            .unwrap_or(addr)
    }

    /// The coordinator with this key, when followed.
    pub fn by_key(&self, key: &NodeKey) -> Option<&CoordinatorStatus> {
        self.coordinators.iter().find(|c| c.public_key == *key)
    }
}

/// The handle the local API holds.
pub struct ControlHandle {
    pub commands: mpsc::Sender<Command>,
    pub view: Arc<Mutex<ControlView>>,
    /// Bumped whenever the view changes, so subscribers push at once.
    pub changed: watch::Receiver<u64>,
}
