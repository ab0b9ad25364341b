//! The daemon's local API from the GUI: one-shot requests, and the `subscribe` connection that
//! the daemon pushes every status change on (a blocked read: no polling). The shared client
//! ([`warren_proto::api::client`]) does the talking; here its failures become words for a
//! person, with their code kept for the window to decide by.

use crate::view::Link;
use std::path::{Path, PathBuf};
use std::time::Duration;
use warren_proto::api::client::{CallError, Connection};
use warren_proto::api::{ApiError, ErrorCode, Request, Response};

/// What a person reads when the socket is not there (no terminal command: the service starts
/// with the computer, so a restart is the next step anyone can take).
pub const NOT_RUNNING: &str =
    "Warren service isn't running — restart the computer; if this stays, reinstall Warren";

/// `e` in the window's words; the daemon's own errors keep theirs.
fn words(e: CallError) -> ApiError {
    let code = e.code();
    let message = match e {
        CallError::Connect { socket, error } => match code {
            ErrorCode::NotRunning => NOT_RUNNING.to_string(),
            ErrorCode::PermissionDenied => refused(&socket),
            _ => format!(
                "Can't reach Warren's service at {}: {error}",
                socket.display()
            ),
        },
        CallError::Lost(error) => format!("Lost the connection to Warren's service: {error}"),
        CallError::Closed => "Warren's service closed the connection".into(),
        CallError::Garbled(error) => {
            format!("Warren's service answered something this window doesn't understand: {error}")
        }
        CallError::Daemon(refusal) => return refusal,
    };
    ApiError::new(code, message)
}

#[cfg(unix)]
fn refused(socket: &Path) -> String {
    format!(
        "You may not use Warren's service ({}) yet: ask whoever set up this computer \
         to add you to the group \"warren\", then log out and in again",
        socket.display()
    )
}

/// The pipe admits the account that installed Warren (and administrators, elevated).
#[cfg(windows)]
fn refused(socket: &Path) -> String {
    format!(
        "You may not use Warren's service ({}) from this account: only the account that \
         installed Warren may. Sign in with that one, or install Warren again from this one",
        socket.display()
    )
}

/// One request, one answer (blocking: call it off the UI thread).
pub fn call(socket: &Path, request: Request) -> Result<Response, ApiError> {
    let answer = || {
        let mut c = Connection::open(socket)?;
        // Join and create wait for the coordinator; ping and check have their own short limits.
        c.set_read_timeout(Some(Duration::from_secs(60)))?;
        c.call(request)
    };
    answer().map_err(words)
}

/// Keeps a `subscribe` connection open for ever, handing every pushed status (or why there is
/// none) to `sink`. Reconnects after the daemon goes away, waiting 1 s, then up to 5 s between
/// attempts; while connected it sleeps in `read`.
pub fn subscribe_forever(socket: PathBuf, sink: impl Fn(Link)) {
    let mut wait = Duration::from_secs(1);
    loop {
        let mut follow = || -> Result<std::convert::Infallible, CallError> {
            let mut c = Connection::open(&socket)?;
            c.send(Request::Subscribe)?;
            loop {
                if let Response::Status(s) = c.receive()? {
                    wait = Duration::from_secs(1);
                    sink(Link::Live(s));
                }
            }
        };
        let Err(e) = follow();
        sink(Link::Missing(missing_words(e)));
        std::thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

/// Why there is no status: a daemon that closed on us (restart, stop) looks like one that is
/// not running.
fn missing_words(e: CallError) -> String {
    if e.code() == ErrorCode::NotRunning {
        NOT_RUNNING.to_string()
    } else {
        words(e).message
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daemon_that_went_away_is_one_that_is_not_running() {
        let gone = [
            CallError::Closed,
            CallError::Lost(std::io::ErrorKind::ConnectionReset.into()),
            CallError::Connect {
                socket: "/run/warren/warrend.sock".into(),
                error: std::io::ErrorKind::NotFound.into(),
            },
        ];
        for e in gone {
            assert_eq!(missing_words(e), NOT_RUNNING);
        }
        let refused = CallError::Daemon(ApiError::new(
            ErrorCode::PermissionDenied,
            "bob may not use Warren on this computer yet",
        ));
        assert_eq!(
            missing_words(refused),
            "bob may not use Warren on this computer yet"
        );
    }

    #[test]
    fn a_refused_socket_says_whom_to_ask() {
        let e = words(CallError::Connect {
            socket: "/run/warren/warrend.sock".into(),
            error: std::io::ErrorKind::PermissionDenied.into(),
        });
        assert_eq!(e.code, ErrorCode::PermissionDenied);
        #[cfg(unix)]
        let whom = "group \"warren\"";
        #[cfg(windows)]
        let whom = "the account that installed Warren";
        assert!(e.message.contains(whom), "{}", e.message);
    }
}
