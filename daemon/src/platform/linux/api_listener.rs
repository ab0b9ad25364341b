//! The local API's Unix socket: mode 0666, given to the socket's group, put in place by a rename
//! from a private directory; each connection comes with the kernel's word on who made it
//! (SO_PEERCRED), which `api_server::access` judges.

use crate::api_server::{ApiAccess, DEFAULT_GROUP};
use anyhow::{bail, Context, Result};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tokio::net::unix::UCred;
use tokio::net::{UnixListener, UnixStream};

pub type Stream = UnixStream;

/// Who is at the other end: the kernel's credentials, or why they could not be read.
pub type Peer = std::io::Result<UCred>;

pub struct Listener(UnixListener);

impl Listener {
    pub async fn accept(&mut self) -> std::io::Result<(Stream, Peer)> {
        let (stream, _) = self.0.accept().await?;
        let peer = stream.peer_cred();
        Ok((stream, peer))
    }
}

/// Binds the socket, refusing to steal it from a live daemon. It is mode 0666, owned by root
/// and `who.group`: every local user may connect, and `api_server::access` admits root, the
/// group's members and operator users by their credentials, and tells anyone else what to do.
pub fn bind(path: &Path, who: &ApiAccess) -> Result<Listener> {
    let group = who.group.as_str();
    if !who.users.is_empty() {
        tracing::warn!(
            "--api-user is for Windows; here the socket's group and the operator users \
             (`warrend operator add`) decide who may use Warren"
        );
    }
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
    Ok(Listener(listener))
}

pub(crate) fn group_id(name: &str) -> Result<Option<libc::gid_t>> {
    let c = CString::new(name).context("group name contains NUL")?;
    // SAFETY: getgrnam returns NULL or a pointer to static storage we read immediately.
    let grp = unsafe { libc::getgrnam(c.as_ptr()) };
    Ok((!grp.is_null()).then(|| unsafe { (*grp).gr_gid }))
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
        let who = ApiAccess {
            group: DEFAULT_GROUP.into(),
            users: Vec::new(),
        };
        let _l = bind(&sock, &who).unwrap();
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
