//! The local API: newline-delimited JSON, one response per request, except `subscribe`, which
//! keeps answering with a fresh status whenever it changes. It runs over whatever the platform
//! listens on (`platform::api_listener`: a Unix socket, on Windows a named pipe); from the
//! accepted stream on, everything here is the same on both.

pub mod access;
mod answer;
mod check;
pub(crate) mod connection;
mod host;
mod netcheck;
mod owner;
mod set_name;
pub mod status;
mod subscribe;
mod wake;

use crate::control::ControlHandle;
use crate::dataplane::Dataplane;
use crate::platform::api_listener::{Listener, Peer, Stream};
use access::Role;
use anyhow::Result;
use connection::{serve_requests, Answers};
use std::sync::Arc;
use tokio::io::AsyncWrite;
use warren_proto::api::{ApiError, ErrorCode, OffloadStatus, Request, Response, SelfStatus};

/// The group whose members may use the API unless `--socket-group` names another.
pub const DEFAULT_GROUP: &str = "warren";

pub use crate::platform::api_listener::{bind, SocketGuard};

/// Who may use the API besides root or Administrators, as warrend was told: on Unix the
/// socket's group (`--socket-group`; operator users come from the state directory), on
/// Windows the users the pipe's ACL lets in (`--api-user`, the installer passes its user).
pub struct ApiAccess {
    /// A pipe has no group: Windows reads only `users`.
    #[cfg_attr(windows, allow(dead_code))]
    pub group: String,
    pub users: Vec<String>,
}

pub struct ApiState {
    pub dataplane: Arc<Dataplane>,
    pub self_status: SelfStatus,
    pub offload: OffloadStatus,
    pub control: ControlHandle,
    /// The router port mapping, for netcheck.
    pub portmap: crate::portmap::Handle,
    /// Networks this PC hosts: the coordinator it runs for them.
    pub hosting: Arc<crate::host::Hosting>,
    /// The name others see (chosen, else the config's or the host's).
    pub names: crate::host_name::Names,
    /// Who may use this API.
    pub access: access::Access,
    /// LAN game discovery (`warren games`).
    pub games: Arc<crate::games::Games>,
    /// Whether this host relays for others (`SetRelay`).
    pub relay_offer: Arc<crate::relay_offer::RelayOffer>,
    /// Subnet routes: what this host advertises, routes and forwards.
    pub subnets: Arc<crate::subnet_routes::SubnetRoutes>,
}

pub async fn serve(mut listener: Listener, state: Arc<ApiState>) -> Result<()> {
    loop {
        let (stream, peer) = listener.accept().await?;
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = handle_connection(stream, &peer, &state).await {
                tracing::debug!("API client: {e}");
            }
        });
    }
}

async fn handle_connection(stream: Stream, peer: &Peer, state: &ApiState) -> Result<()> {
    let role = match state.access.check(peer) {
        Ok(role) => role,
        Err(message) => {
            tracing::info!("refused an API connection: {message}");
            access::refuse(stream, message).await;
            return Ok(());
        }
    };
    serve_requests(stream, role, state).await
}

impl Answers for ApiState {
    async fn answer(&self, role: Role, request: Request) -> Response {
        match (access::allowed(role, &request), request) {
            (Err(message), _) => ApiError::new(ErrorCode::PermissionDenied, message).into(),
            (Ok(()), r @ (Request::SetOperator { .. } | Request::Operators)) => {
                access::answer(&self.access, r)
            }
            (Ok(()), Request::SetName { name }) => set_name::set_name(self, &name).await,
            (Ok(()), r) => answer::answer(r, self).await,
        }
    }

    async fn subscribe<W: AsyncWrite + Unpin + Send>(&self, writer: &mut W) -> Result<()> {
        subscribe::run(self, writer).await
    }
}
