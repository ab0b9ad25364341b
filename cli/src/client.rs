//! One request/response exchange with the daemon, with errors that say what to do.

use anyhow::{anyhow, bail, Result};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use warren_proto::api::{Request, RequestEnvelope, Response, ResponseEnvelope, API_VERSION};

pub fn connect(socket: &Path) -> Result<UnixStream> {
    UnixStream::connect(socket).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => anyhow!(
            "the Warren daemon is not running (no socket at {}); start it with \
             `sudo systemctl start warrend` or `sudo warrend`",
            socket.display()
        ),
        std::io::ErrorKind::PermissionDenied => anyhow!("{}", permission_hint(socket)),
        _ => anyhow!("cannot reach the daemon at {}: {e}", socket.display()),
    })
}

/// Names the group that may use the socket, read from the socket itself.
fn permission_hint(socket: &Path) -> String {
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

pub fn send(stream: &UnixStream, request: Request) -> Result<()> {
    let mut line = serde_json::to_vec(&RequestEnvelope {
        v: API_VERSION,
        request,
    })?;
    line.push(b'\n');
    (&*stream).write_all(&line)?;
    Ok(())
}

/// Reads one response; the daemon's errors become `Err` with its message.
pub fn receive(reader: &mut impl BufRead) -> Result<Response> {
    let mut reply = String::new();
    reader.read_line(&mut reply)?;
    if reply.is_empty() {
        bail!("the daemon closed the connection without answering");
    }
    let env: ResponseEnvelope = serde_json::from_str(&reply)
        .map_err(|e| anyhow!("unintelligible answer from the daemon (other version?): {e}"))?;
    match env.response {
        Response::Error { message } => bail!("{message}"),
        other => Ok(other),
    }
}

pub fn call(socket: &Path, request: Request) -> Result<Response> {
    let stream = connect(socket)?;
    send(&stream, request)?;
    receive(&mut BufReader::new(&stream))
}
