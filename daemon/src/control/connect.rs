//! Reaching the coordinator, happy-eyeballs style: QUIC first; if it has not connected within
//! [`TCP_AFTER`], TCP+TLS too — to the coordinator's IP on the same port number, and on 443 —
//! and whichever gets through the Noise handshake first is used, the others dropped. Every
//! reconnect starts over in the same order, so a host that left a UDP-blocked network is back
//! on QUIC at its next connection.

use super::lan;
use super::link::Link;
use super::session::ControlContext;
use super::CoordinatorSettings;
use super::{quic, tcp};
use anyhow::{anyhow, Context, Result};
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::time::Duration;
use warren_proto::api::ControlTransport;
use warren_proto::control::auth::ClientHandshake;
use warren_proto::control::msg::{ErrorCode, Hello, ServerMsg, Welcome, CONTROL_VERSION};

/// QUIC's head start.
pub const TCP_AFTER: Duration = Duration::from_secs(1);
/// One attempt, from the first packet to the welcome.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// The port networks that block UDP (and most else) still let out.
const HTTPS_PORT: u16 = 443;

/// The coordinator refused this host's name: another member of one of its networks has it.
/// Recognised by the session (`anyhow::Error::is`) so status can say so to clients.
#[derive(Debug)]
pub struct NameTaken(pub String);

impl std::fmt::Display for NameTaken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NameTaken {}

/// Why an attempt failed.
enum Failure {
    /// The coordinator was not reached: another transport may do better.
    Unreachable(anyhow::Error),
    /// The coordinator answered (a wrong key, a refused name…): any transport would hear the
    /// same, so this ends the whole connection attempt.
    Answered(anyhow::Error),
}

/// A future in a race of several.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
type Attempt<'a> = Pending<'a, Result<(Link, Welcome), Failure>>;

/// Connects to the coordinator at `addr` over whichever transport gets through first.
pub async fn connect(
    ctx: &ControlContext,
    s: &CoordinatorSettings,
    claim: Ipv4Addr,
    addr: SocketAddr,
) -> Result<(Link, Welcome)> {
    let mut quic = Some(attempt(ctx, s, claim, ControlTransport::Quic, addr));
    let mut tcp: Vec<Attempt<'_>> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let head_start = tokio::time::sleep(TCP_AFTER);
    tokio::pin!(head_start);
    let mut tcp_started = false;
    loop {
        if !tcp_started && (quic.is_none() || head_start.is_elapsed()) {
            tcp_started = true;
            for port in tcp_ports(addr.port()) {
                let target = SocketAddr::new(addr.ip(), port);
                tcp.push(attempt(ctx, s, claim, ControlTransport::Tcp, target));
            }
        }
        if quic.is_none() && tcp.is_empty() {
            return Err(anyhow!(errors.join("; ")));
        }
        let outcome = tokio::select! {
            r = async { quic.as_mut().expect("guarded").await }, if quic.is_some() => {
                quic = None;
                r
            }
            (r, i) = first_of(&mut tcp), if !tcp.is_empty() => {
                drop(tcp.swap_remove(i));
                r
            }
            _ = &mut head_start, if !tcp_started => continue,
        };
        match outcome {
            Ok(connected) => return Ok(connected),
            Err(Failure::Answered(e)) => return Err(e),
            Err(Failure::Unreachable(e)) => errors.push(format!("{e:#}")),
        }
    }
}

/// The ports to try over TCP: the control port, then 443.
fn tcp_ports(control: u16) -> Vec<u16> {
    if control == HTTPS_PORT {
        vec![control]
    } else {
        vec![control, HTTPS_PORT]
    }
}

/// Waits for the first of `attempts` to finish: its result and index.
pub async fn first_of<T>(attempts: &mut [Pending<'_, T>]) -> (T, usize) {
    std::future::poll_fn(|cx| {
        for (i, a) in attempts.iter_mut().enumerate() {
            if let std::task::Poll::Ready(r) = a.as_mut().poll(cx) {
                return std::task::Poll::Ready((r, i));
            }
        }
        std::task::Poll::Pending
    })
    .await
}

fn attempt<'a>(
    ctx: &'a ControlContext,
    s: &'a CoordinatorSettings,
    claim: Ipv4Addr,
    transport: ControlTransport,
    addr: SocketAddr,
) -> Attempt<'a> {
    Box::pin(async move {
        let over = match transport {
            ControlTransport::Quic => "QUIC",
            ControlTransport::Tcp => "TCP",
        };
        let link = async {
            match transport {
                ControlTransport::Quic => quic::connect(addr, !s.alternates.is_empty()).await,
                ControlTransport::Tcp => tcp::connect(addr, ctx.udp_port).await,
            }
        };
        let mut link = match tokio::time::timeout(ATTEMPT_TIMEOUT, link).await {
            Err(_) => {
                return Err(Failure::Unreachable(anyhow!(
                    "no answer from {addr} over {over}"
                )))
            }
            Ok(Err(e)) => return Err(Failure::Unreachable(e)),
            Ok(Ok(link)) => link,
        };
        match tokio::time::timeout(ATTEMPT_TIMEOUT, handshake(ctx, s, claim, addr, &mut link)).await
        {
            Err(_) => Err(Failure::Unreachable(anyhow!(
                "{addr} over {over} did not finish the handshake"
            ))),
            Ok(Err(e)) => Err(Failure::Answered(e)),
            Ok(Ok(welcome)) => Ok((link, welcome)),
        }
    })
}

/// The Noise handshake bound to the link's TLS exporter, carrying our hello; the coordinator's
/// welcome.
async fn handshake(
    ctx: &ControlContext,
    s: &CoordinatorSettings,
    claim: Ipv4Addr,
    dialed: SocketAddr,
    link: &mut Link,
) -> Result<Welcome> {
    let hello = Hello {
        v: CONTROL_VERSION,
        name: s.name.clone(),
        udp_port: ctx.udp_port,
        lan_endpoints: lan::lan_endpoints(ctx.udp_port, &ctx.tun),
        dialed: Some(dialed),
        claim: Some(claim),
        calls: true,
    };
    let (hs, first) = ClientHandshake::start(
        &ctx.node_secret,
        &s.public_key,
        &link.binding,
        &serde_json::to_vec(&hello)?,
    )?;
    link.writer.write_frame(&first).await?;
    let answer = link.reader.read_frame().await.context(
        "the coordinator closed the connection during the handshake (is --coordinator-key right?)",
    )?;
    let payload = hs.finish(&answer)?;
    // Before the welcome, the coordinator may answer with an error (e.g. a name clash).
    if let Ok(ServerMsg::Error { message, code, .. }) =
        serde_json::from_slice::<ServerMsg>(&payload)
    {
        if code == ErrorCode::NameTaken {
            return Err(NameTaken(message).into());
        }
        return Err(anyhow!(message));
    }
    serde_json::from_slice(&payload).context("unintelligible welcome from the coordinator")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_goes_to_the_control_port_then_443() {
        assert_eq!(tcp_ports(7443), [7443, 443]);
        assert_eq!(tcp_ports(443), [443]);
    }
}
