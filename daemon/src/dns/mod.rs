//! The daemon's DNS server for `NAME.warren` (see [`answer`]): UDP on this host's overlay
//! address, port 53 by default (`--dns-port`, 0 turns it off). It follows the overlay address
//! when the coordinator's lease moves it, and registers with systemd-resolved while the tunnel
//! is up ([`resolved`]).

pub mod answer;
mod resolved;
mod responder;

use crate::api_server::{status, ApiState};
use resolved::Resolved;
use responder::{Responder, Snapshot};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;

/// How often the overlay address and the tunnel state are looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// `resolvectl`: `None` for the system's, when systemd-resolved runs.
pub async fn serve(state: Arc<ApiState>, tun: String, port: u16, resolvectl: Option<PathBuf>) {
    let resolved = match resolvectl {
        Some(path) => Some(Resolved::with(path)),
        None => Resolved::system(),
    };
    let mut socket: Option<(Ipv4Addr, UdpSocket)> = None;
    // The address we last tried to bind (a failure is logged once per address).
    let mut tried: Option<Ipv4Addr> = None;
    let mut registered: Option<Ipv4Addr> = None;
    let mut check = tokio::time::interval(CHECK_EVERY);
    let mut buf = vec![0u8; 4096];
    let mut responder = Responder::default();
    loop {
        tokio::select! {
            _ = check.tick() => {
                let ip = *state.dataplane.overlay_v4.lock().expect("overlay lock");
                let up = state.dataplane.node().is_up();
                if tried != Some(ip) {
                    tried = Some(ip);
                    socket = None;
                    match UdpSocket::bind(SocketAddr::from((ip, port))).await {
                        Ok(s) => {
                            tracing::info!(server = %SocketAddr::from((ip, port)), "DNS for *.warren");
                            socket = Some((ip, s));
                        }
                        Err(e) => tracing::warn!("no DNS for *.warren on {ip}:{port}: {e}"),
                    }
                }
                let want = socket.as_ref().filter(|_| up).map(|(ip, _)| *ip);
                // resolved asks port 53 only.
                let resolved = resolved.as_ref().filter(|_| port == 53);
                if let (true, Some(resolved)) = (want != registered, resolved) {
                    let result = match want {
                        Some(ip) => resolved.register(&tun, ip),
                        None => resolved.revert(&tun),
                    };
                    match result {
                        Ok(()) => tracing::info!(server = ?want, "systemd-resolved updated for ~warren"),
                        Err(e) => tracing::warn!("systemd-resolved: {e}"),
                    }
                    registered = want;
                }
            }
            received = recv(socket.as_ref().map(|(_, s)| s), &mut buf) => {
                let Ok((n, from)) = received else { continue };
                let reply = responder.respond(std::time::Instant::now(), from.ip(), &buf[..n], || snapshot(&state));
                if let (Some(reply), Some((_, s))) = (reply, &socket) {
                    let _ = s.send_to(&reply, from).await;
                }
            }
        }
    }
}

/// What queries are answered from; this host's own addresses tell a program on this host
/// (which sees every name) from a peer (which sees only its networks' names).
fn snapshot(state: &ApiState) -> Snapshot {
    let status = status::build(state);
    let mut local: Vec<std::net::IpAddr> = crate::platform::ifaddrs::list()
        .iter()
        .map(|a| a.ip)
        .collect();
    local.push(status.self_.overlay_ip);
    local.extend(status.self_.overlay_ip6);
    Snapshot { status, local }
}

async fn recv(socket: Option<&UdpSocket>, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr)> {
    match socket {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}
