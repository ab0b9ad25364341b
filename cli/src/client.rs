//! One request/response exchange with the daemon, with errors that say what to do.

use anyhow::{bail, Result};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use warren_proto::api::{Request, RequestEnvelope, Response, ResponseEnvelope, API_VERSION};

pub fn call(socket: &Path, request: Request) -> Result<Response> {
    let stream = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e) => match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => bail!(
                "the Warren daemon is not running (no socket at {}); start it with \
                 `sudo systemctl start warrend` or `sudo warrend`",
                socket.display()
            ),
            std::io::ErrorKind::PermissionDenied => bail!(
                "permission denied on {}: add yourself to group warren \
                 (`sudo usermod -aG warren $USER`, then log in again)",
                socket.display()
            ),
            _ => bail!("cannot reach the daemon at {}: {e}", socket.display()),
        },
    };
    let mut line = serde_json::to_vec(&RequestEnvelope {
        v: API_VERSION,
        request,
    })?;
    line.push(b'\n');
    (&stream).write_all(&line)?;
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply)?;
    if reply.is_empty() {
        bail!("the daemon closed the connection without answering");
    }
    let env: ResponseEnvelope = serde_json::from_str(&reply)?;
    match env.response {
        Response::Error { message } => bail!("{message}"),
        other => Ok(other),
    }
}
