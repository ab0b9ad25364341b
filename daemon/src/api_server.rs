//! The local API on a Unix socket: newline-delimited JSON, one response per request.

use crate::control::{Command, ControlHandle, CoordinatorSettings};
use crate::dataplane::Dataplane;
use anyhow::{bail, Context, Result};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::oneshot;
use warren_proto::api::{
    OffloadStatus, Request, RequestEnvelope, Response, ResponseEnvelope, SelfStatus, Status,
    API_VERSION,
};
use warren_proto::control::msg::ClientMsg;

/// Requests are small; a longer line is a confused or hostile client.
const MAX_REQUEST: u64 = 64 * 1024;
/// Longer than a connection attempt (10 s), so `warren up` reports how that went.
const ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

pub struct ApiState {
    pub dataplane: Arc<Dataplane>,
    pub self_status: SelfStatus,
    pub offload: OffloadStatus,
    pub control: ControlHandle,
    pub default_name: String,
}

/// Binds the socket, refusing to steal it from a live daemon, and restricts it to root and the
/// `warren` group (or root alone when that group does not exist).
pub fn bind(path: &Path) -> Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create socket directory {}", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!(
                "another warrend is already serving {}; stop it or pass a different --socket",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove stale socket {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("cannot listen on {}", path.display()))?;
    let mode = match warren_group() {
        Some(gid) => {
            let c = CString::new(path.as_os_str().as_bytes())?;
            // SAFETY: c is a valid NUL-terminated path; uid -1 keeps the owner.
            unsafe { libc::chown(c.as_ptr(), u32::MAX, gid) };
            0o660
        }
        None => 0o600,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(listener)
}

fn warren_group() -> Option<libc::gid_t> {
    // SAFETY: getgrnam returns NULL or a pointer to static storage we read immediately.
    let grp = unsafe { libc::getgrnam(c"warren".as_ptr()) };
    (!grp.is_null()).then(|| unsafe { (*grp).gr_gid })
}

pub async fn serve(listener: UnixListener, state: Arc<ApiState>) -> Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = handle_connection(stream, &state).await {
                tracing::debug!("API client: {e}");
            }
        });
    }
}

async fn handle_connection(stream: UnixStream, state: &ApiState) -> Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader.take(MAX_REQUEST)).lines();
    while let Some(line) = lines.next_line().await? {
        let response = match serde_json::from_str::<RequestEnvelope>(&line) {
            Ok(req) if req.v == API_VERSION => answer(req.request, state).await,
            Ok(req) => Response::Error {
                message: format!(
                    "API version {} is not supported; this daemon speaks version {API_VERSION}",
                    req.v
                ),
            },
            Err(e) => Response::Error {
                message: format!("bad request: {e}"),
            },
        };
        let mut out = serde_json::to_vec(&ResponseEnvelope {
            v: API_VERSION,
            response,
        })?;
        out.push(b'\n');
        writer.write_all(&out).await?;
    }
    Ok(())
}

async fn answer(request: Request, state: &ApiState) -> Response {
    let to_coordinator = match request {
        Request::Status => {
            let coordinator = state.control.status.lock().expect("status lock").clone();
            let mut self_ = state.self_status.clone();
            if let Some(c) = &coordinator {
                self_.name = c.name.clone();
            }
            self_.overlay_ip = (*state.dataplane.overlay_v4.lock().expect("overlay lock")).into();
            let node = state.dataplane.node();
            if let Some(d) = node.discovery() {
                self_.reflexive = d.reflexive;
                self_.nat = d.nat;
            }
            return Response::Status(Box::new(Status {
                self_,
                peers: node.peer_status(Instant::now()),
                dropped: node.counters().dropped_map(),
                offload: state.offload.clone(),
                coordinator,
            }));
        }
        Request::Version => {
            return Response::Version {
                daemon: env!("CARGO_PKG_VERSION").to_string(),
            }
        }
        Request::Up {
            coordinator,
            coordinator_key,
            name,
        } => {
            let settings = CoordinatorSettings {
                address: coordinator,
                public_key: coordinator_key,
                name: name.unwrap_or_else(|| state.default_name.clone()),
            };
            return ask(state, |reply| Command::Up(settings, reply)).await;
        }
        Request::CreateNetwork { name, password } => ClientMsg::CreateNetwork {
            id: 0,
            name,
            password,
        },
        Request::JoinNetwork { name, password } => ClientMsg::JoinNetwork {
            id: 0,
            name,
            password,
        },
        Request::LeaveNetwork { name } => ClientMsg::LeaveNetwork { id: 0, name },
    };
    ask(state, |reply| Command::Request(to_coordinator, reply)).await
}

/// Hands a command to the control task and waits for its answer.
async fn ask(
    state: &ApiState,
    make: impl FnOnce(oneshot::Sender<Result<String, String>>) -> Command,
) -> Response {
    let (tx, rx) = oneshot::channel();
    if state.control.commands.send(make(tx)).await.is_err() {
        return Response::Error {
            message: "the daemon's coordinator task has stopped".into(),
        };
    }
    match tokio::time::timeout(ANSWER_TIMEOUT, rx).await {
        Ok(Ok(Ok(message))) => Response::Done { message },
        Ok(Ok(Err(message))) => Response::Error { message },
        Ok(Err(_)) => Response::Error {
            message: "the coordinator task dropped the request".into(),
        },
        Err(_) => Response::Error {
            message: "no answer from the coordinator in time".into(),
        },
    }
}

/// Removes the socket file when the daemon stops.
pub struct SocketGuard(pub PathBuf);

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
