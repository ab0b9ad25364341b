//! The daemon's answers for the command line: the shared client
//! ([`warren_proto::api::client`]), its failures in words that say what to do. The daemon's
//! own errors stay [`ApiError`]s inside the `anyhow::Error`, so a caller can still read their
//! code.

use anyhow::{anyhow, Result};
use std::path::Path;
use warren_proto::api::client::{self, CallError};
use warren_proto::api::{ApiError, ErrorCode, Request, Response};

pub fn call(socket: &Path, request: Request) -> Result<Response> {
    client::call(socket, request).map_err(words)
}

/// The code of the daemon's refusal behind `e`, if that is what it is.
pub fn code(e: &anyhow::Error) -> Option<ErrorCode> {
    e.downcast_ref::<ApiError>().map(|a| a.code)
}

fn words(e: CallError) -> anyhow::Error {
    let code = e.code();
    match e {
        CallError::Connect { socket, error } => match code {
            ErrorCode::NotRunning => anyhow!("{}", not_running(&socket)),
            ErrorCode::PermissionDenied => anyhow!("{}", permission_hint(&socket)),
            _ => anyhow!("cannot reach the daemon at {}: {error}", socket.display()),
        },
        CallError::Lost(error) => error.into(),
        CallError::Closed => anyhow!("the daemon closed the connection without answering"),
        CallError::Garbled(error) => {
            anyhow!("unintelligible answer from the daemon (other version?): {error}")
        }
        CallError::Daemon(refusal) => refusal.into(),
    }
}

#[cfg(unix)]
fn not_running(socket: &Path) -> String {
    format!(
        "the Warren daemon is not running (no socket at {}); start it with \
         `sudo systemctl start warrend` or `sudo warrend`",
        socket.display()
    )
}

#[cfg(windows)]
fn not_running(socket: &Path) -> String {
    format!(
        "the Warren service is not running (no pipe at {}); start it with `sc start Warren` \
         in a terminal run as administrator, or reinstall Warren",
        socket.display()
    )
}

/// The pipe's ACL admits Administrators and the user who installed Warren.
#[cfg(windows)]
fn permission_hint(socket: &Path) -> String {
    format!(
        "permission denied on {}: only Administrators and the user who installed Warren may \
         use it; run the command in a terminal run as administrator",
        socket.display()
    )
}

/// Names the group that may use the socket, read from the socket itself.
#[cfg(unix)]
fn permission_hint(socket: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let group = std::fs::metadata(socket)
        .ok()
        .map(|m| m.gid())
        .filter(|gid| *gid != 0)
        .and_then(group_name);
    match group {
        Some(g) => format!(
            "permission denied on {}: add yourself to group {g} (`sudo usermod -aG {g} $USER`, \
             then log in again), or use sudo",
            socket.display()
        ),
        None => format!(
            "permission denied on {}: only root may use it; run with sudo, or create group \
             warren (`sudo groupadd --system warren`), restart warrend and add yourself to it",
            socket.display()
        ),
    }
}

#[cfg(unix)]
fn group_name(gid: u32) -> Option<String> {
    // SAFETY: getgrgid returns NULL or a pointer to static storage we copy from at once.
    unsafe {
        let g = libc::getgrgid(gid);
        if g.is_null() {
            return None;
        }
        Some(
            std::ffi::CStr::from_ptr((*g).gr_name)
                .to_string_lossy()
                .into_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_daemon_is_said_with_the_way_to_start_it() {
        let socket = std::env::temp_dir().join(format!("warren-cli-none-{}", std::process::id()));
        let e = call(&socket, Request::Status).unwrap_err();
        let text = format!("{e:#}");
        #[cfg(unix)]
        let (first, step) = (
            "the Warren daemon is not running (no socket at",
            "sudo systemctl start warrend",
        );
        #[cfg(windows)]
        let (first, step) = (
            "the Warren service is not running (no pipe at",
            "sc start Warren",
        );
        assert!(text.starts_with(first), "{text}");
        assert!(text.contains(step), "{text}");
        assert_eq!(code(&e), None, "not the daemon's refusal");
    }

    #[test]
    fn the_daemons_refusal_keeps_its_words_and_code() {
        let e = words(CallError::Daemon(ApiError::new(
            ErrorCode::TimedOut,
            "no pong from bob within 2000 ms",
        )));
        assert_eq!(format!("{e:#}"), "no pong from bob within 2000 ms");
        assert_eq!(code(&e), Some(ErrorCode::TimedOut));
    }
}
