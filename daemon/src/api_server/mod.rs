//! The local API on a Unix socket: newline-delimited JSON, one response per request, except
//! `subscribe`, which keeps answering with a fresh status whenever it changes.

pub mod access;
mod answer;
mod check;
mod host;
mod netcheck;
mod owner;
mod set_name;
pub mod status;
mod subscribe;
mod wake;

use crate::control::ControlHandle;
use crate::dataplane::Dataplane;
use anyhow::{bail, Context, Result};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use warren_proto::api::{
    ApiError, ErrorCode, OffloadStatus, Request, RequestEnvelope, Response, ResponseEnvelope,
    SelfStatus, API_VERSION,
};

/// Requests are small; a longer line is a confused or hostile client.
const MAX_REQUEST: u64 = 64 * 1024;

/// The group whose members may use the API unless `--socket-group` names another.
pub const DEFAULT_GROUP: &str = "warren";

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

/// Binds the socket, refusing to steal it from a live daemon. It is mode 0666, owned by root
/// and `group`: every local user may connect, and [`access`] admits root, the group's members
/// and operator users by their credentials, and tells anyone else what to do.
pub fn bind(path: &Path, group: &str) -> Result<UnixListener> {
    let gid = match group_id(group)? {
        Some(gid) => Some(gid),
        None if group == DEFAULT_GROUP => {
            tracing::info!(
                "group {group} does not exist: only root and operator users can use {} \
                 (create the group and restart warrend to let its members in)",
                path.display()
            );
            None
        }
        None => bail!("group {group} (from --socket-group) does not exist"),
    };
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
    // Anyone may connect (`access` decides per connection), so the socket is made 0666 and
    // given to the group inside a fresh directory only warrend's user can enter — where no symlink can
    // be swapped in — and then renamed into place. (A umask around the bind would change the
    // mode of everything other threads create meanwhile.)
    let dir = path.parent().unwrap_or(Path::new("."));
    let private = tempfile::Builder::new()
        .prefix(".warrend-socket-")
        .tempdir_in(dir)
        .with_context(|| format!("cannot create a directory in {}", dir.display()))?;
    let staged = private.path().join("sock");
    let listener = UnixListener::bind(&staged)
        .with_context(|| format!("cannot listen on {}", path.display()))?;
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o666))
        .with_context(|| format!("cannot open {} to local users", path.display()))?;
    if let Some(gid) = gid {
        let c = CString::new(staged.as_os_str().as_bytes())?;
        // SAFETY: c is a valid NUL-terminated path; uid -1 keeps the owner.
        if unsafe { libc::lchown(c.as_ptr(), u32::MAX, gid) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("cannot give {} to group {group}", path.display()));
        }
    }
    std::fs::rename(&staged, path)
        .with_context(|| format!("cannot listen on {}", path.display()))?;
    Ok(listener)
}

pub(crate) fn group_id(name: &str) -> Result<Option<libc::gid_t>> {
    let c = CString::new(name).context("group name contains NUL")?;
    // SAFETY: getgrnam returns NULL or a pointer to static storage we read immediately.
    let grp = unsafe { libc::getgrnam(c.as_ptr()) };
    Ok((!grp.is_null()).then(|| unsafe { (*grp).gr_gid }))
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
    let role = match state.access.check(&stream) {
        Ok(role) => role,
        Err(message) => {
            tracing::info!("refused an API connection: {message}");
            access::refuse(stream, message).await;
            return Ok(());
        }
    };
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader.take(MAX_REQUEST)).lines();
    while let Some(line) = lines.next_line().await? {
        let response = match serde_json::from_str::<RequestEnvelope>(&line) {
            Ok(req) if req.v == API_VERSION => {
                if req.request == Request::Subscribe {
                    return subscribe::run(state, &mut writer).await;
                }
                match (access::allowed(role, &req.request), req.request) {
                    (Err(message), _) => ApiError::new(ErrorCode::PermissionDenied, message).into(),
                    (Ok(()), r @ (Request::SetOperator { .. } | Request::Operators)) => {
                        access::answer(&state.access, r)
                    }
                    (Ok(()), Request::SetName { name }) => set_name::set_name(state, &name).await,
                    (Ok(()), r) => answer::answer(r, state).await,
                }
            }
            Ok(req) => ApiError::new(
                ErrorCode::UnsupportedVersion,
                format!(
                    "API version {} is not supported; this daemon speaks version {API_VERSION}",
                    req.v
                ),
            )
            .into(),
            Err(e) => ApiError::new(ErrorCode::BadRequest, format!("bad request: {e}")).into(),
        };
        write_response(&mut writer, response).await?;
    }
    Ok(())
}

async fn write_response(
    writer: &mut tokio::net::unix::OwnedWriteHalf,
    response: Response,
) -> Result<()> {
    let mut out = serde_json::to_vec(&ResponseEnvelope {
        v: API_VERSION,
        response,
    })?;
    out.push(b'\n');
    writer.write_all(&out).await?;
    Ok(())
}

/// Removes the socket file when the daemon stops.
pub struct SocketGuard(pub PathBuf);

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    /// The socket comes out 0666 from the bind itself, and a symlink left where it goes is
    /// replaced, never followed (its target keeps its mode).
    #[tokio::test]
    async fn the_socket_is_made_0666_without_following_links() {
        let d = std::env::temp_dir().join(format!("warren-sock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let target = d.join("precious");
        std::fs::write(&target, "x").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        let sock = d.join("warrend.sock");
        std::os::unix::fs::symlink(&target, &sock).unwrap();
        let _l = bind(&sock, DEFAULT_GROUP).unwrap();
        let meta = std::fs::symlink_metadata(&sock).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o666);
        let t = std::fs::metadata(&target).unwrap();
        assert_eq!(
            t.permissions().mode() & 0o777,
            0o600,
            "the link's target untouched"
        );
        let left: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            left.len(),
            2,
            "only the socket and the link's target: {left:?}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
