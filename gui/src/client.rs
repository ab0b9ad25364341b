//! The daemon's local API from the GUI: one-shot requests, and the `subscribe` connection that
//! the daemon pushes every status change on (a blocked read: no polling).

use crate::view::Link;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;
use warren_proto::api::{Request, RequestEnvelope, Response, ResponseEnvelope, API_VERSION};

/// What a person reads when the socket is not there (no terminal command: the service starts
/// with the computer, so a restart is the next step anyone can take).
pub const NOT_RUNNING: &str =
    "Warren service isn't running — restart the computer; if this stays, reinstall Warren";

fn connect(socket: &Path) -> Result<UnixStream, String> {
    UnixStream::connect(socket).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
            NOT_RUNNING.to_string()
        }
        std::io::ErrorKind::PermissionDenied => format!(
            "You may not use Warren's service ({}) yet: ask whoever set up this computer to \
             add you to the group \"warren\", then log out and in again",
            socket.display()
        ),
        _ => format!("Can't reach Warren's service at {}: {e}", socket.display()),
    })
}

fn send(stream: &UnixStream, request: Request) -> Result<(), String> {
    let mut line = serde_json::to_vec(&RequestEnvelope {
        v: API_VERSION,
        request,
    })
    .map_err(|e| e.to_string())?;
    line.push(b'\n');
    (&*stream)
        .write_all(&line)
        .map_err(|e| format!("Lost the connection to Warren's service: {e}"))
}

/// One answer; the daemon's `error` becomes `Err` with its own message.
fn receive(reader: &mut impl BufRead) -> Result<Response, String> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) => return Err("Warren's service closed the connection".into()),
        Ok(_) => {}
        Err(e) => return Err(format!("Lost the connection to Warren's service: {e}")),
    }
    let env: ResponseEnvelope = serde_json::from_str(&line).map_err(|e| {
        format!("Warren's service answered something this window doesn't understand: {e}")
    })?;
    match env.response {
        Response::Error { message } => Err(message),
        other => Ok(other),
    }
}

/// One request, one answer (blocking: call it off the UI thread).
pub fn call(socket: &Path, request: Request) -> Result<Response, String> {
    let stream = connect(socket)?;
    // Join and create wait for the coordinator; ping and check have their own short limits.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    send(&stream, request)?;
    receive(&mut BufReader::new(&stream))
}

/// Keeps a `subscribe` connection open for ever, handing every pushed status (or why there is
/// none) to `sink`. Reconnects after the daemon goes away, waiting 1 s, then up to 5 s between
/// attempts; while connected it sleeps in `read`.
pub fn subscribe_forever(socket: PathBuf, sink: impl Fn(Link)) {
    let mut wait = Duration::from_secs(1);
    loop {
        let err = match connect(&socket) {
            Ok(stream) => match send(&stream, Request::Subscribe) {
                Ok(()) => {
                    let mut reader = BufReader::new(&stream);
                    loop {
                        match receive(&mut reader) {
                            Ok(Response::Status(s)) => {
                                wait = Duration::from_secs(1);
                                sink(Link::Live(s));
                            }
                            Ok(_) => {}
                            Err(e) => break e,
                        }
                    }
                }
                Err(e) => e,
            },
            Err(e) => e,
        };
        // A daemon that closed on us (restart, stop) looks like one that is not running.
        let shown = if err.starts_with("Warren's service closed")
            || err.starts_with("Lost the connection")
        {
            NOT_RUNNING.to_string()
        } else {
            err
        };
        sink(Link::Missing(shown));
        std::thread::sleep(wait);
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}
