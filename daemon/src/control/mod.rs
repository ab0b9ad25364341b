//! The daemon's side of the coordinator: one QUIC connection, authenticated with Noise, that
//! brings peers and network membership. The data plane keeps running with what it has when
//! the coordinator is away; this task reconnects with backoff.

mod lan;
mod quic;
pub mod session;
mod settings;

pub use session::run;
pub use settings::CoordinatorSettings;

use std::sync::Mutex;
use tokio::sync::{mpsc, oneshot};
use warren_proto::api::CoordinatorStatus;
use warren_proto::control::msg::ClientMsg;

/// What the local API asks of the control task; each answer is a message for the user.
pub enum Command {
    Up(CoordinatorSettings, oneshot::Sender<Result<String, String>>),
    /// A request to the coordinator (its `id` is filled in by the session).
    Request(ClientMsg, oneshot::Sender<Result<String, String>>),
}

/// The handle the local API holds.
pub struct ControlHandle {
    pub commands: mpsc::Sender<Command>,
    pub status: std::sync::Arc<Mutex<Option<CoordinatorStatus>>>,
}
