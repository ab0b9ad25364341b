//! Direct paths over TCP (issue 18): a host whose network lets no UDP out (a hotel, an office)
//! talks straight over TCP instead of through the relay, as EasyTier does, to a peer with a
//! public address, a router port mapping of its TCP port (`portmap`, advertised as
//! `mapped_tcp`), or a NAT that keeps ports (simultaneous open, below).
//!
//! Every host listens on TCP at its UDP port, and dials from that same port (SO_REUSEPORT on
//! the listener and on every dialer): behind a NAT that keeps ports, the peer then knows where
//! our SYNs come from, and its SYN to our public address at that port meets ours — a TCP
//! simultaneous open, the TCP form of hole punching. The core says whom to dial and when
//! (`Node::poll_tcp_dials`: peers the coordinator introduced, each at most every 30 s; see
//! `node/tcp_dial.rs`). A stream — dialed or accepted — gets a UDP socket on loopback (the
//! relay-over-TCP trick, `control::relay_shim`): what the node's UDP socket sends to that
//! socket goes onto the stream, what comes off the stream is sent from it to the node. So the
//! core sees the peer at a loopback address and proves, chooses and drops the path with its
//! usual disco pings, never knowing TCP is involved; WireGuard and disco authenticate every
//! datagram, so a stranger's stream carries nothing the core accepts.
//!
//! Frames on the stream: a 2-byte big-endian length, then one datagram.

use crate::dataplane::Dataplane;
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};

/// Streams at once, dialed and accepted together: each costs a socket pair and two tasks.
const MAX_LINKS: usize = 64;
/// A stream that carries nothing for this long is closed (a live path pings every 5 s).
const IDLE: Duration = Duration::from_secs(30);
/// Long enough for a simultaneous open: the peer's SYN follows a relay trip after ours, and
/// the first of ours may have been dropped by its NAT (the kernel sends it again after 1 s).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the core is asked whom to dial: a peer's ask to dial it back (its SYNs are in
/// flight now) waits at most this.
const DIAL_EVERY: Duration = Duration::from_millis(250);

/// The streams in use: the loopback address the core sees each at, and the peer's real one.
#[derive(Default)]
pub struct TcpPaths {
    links: Mutex<HashMap<SocketAddr, SocketAddr>>,
}

impl TcpPaths {
    /// The peer's real address when `addr` is one of our streams' loopback addresses.
    pub fn remote_of(&self, addr: SocketAddr) -> Option<SocketAddr> {
        self.links.lock().expect("tcp links").get(&addr).copied()
    }

    fn len(&self) -> usize {
        self.links.lock().expect("tcp links").len()
    }
}

/// Listens on TCP at `port` and dials what the core asks for, until the runtime ends.
pub fn spawn(dp: Arc<Dataplane>, port: u16) {
    let listener = listen((Ipv6Addr::UNSPECIFIED, port).into())
        .or_else(|_| listen((Ipv4Addr::UNSPECIFIED, port).into()));
    match listener {
        Ok(l) => {
            tokio::spawn(accept(dp.clone(), l, port));
        }
        // Only peers whose UDP is blocked lose something: they stay on the relay.
        Err(e) => tracing::warn!(
            port,
            "cannot listen on TCP port {port} for direct paths: {e}"
        ),
    }
    tokio::spawn(dial(dp, port));
}

/// A listener that dialers may share its port with (dual-stack when `at` is IPv6).
fn listen(at: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(at), Type::STREAM, None)?;
    if at.is_ipv6() {
        s.set_only_v6(false)?;
    }
    crate::platform::tcp::share_port(&socket2::SockRef::from(&s))?;
    s.bind(&at.into())?;
    s.listen(128)?;
    s.set_nonblocking(true)?;
    TcpListener::from_std(s.into())
}

/// Connects to `remote` from our listen `port` (see the module's comment).
async fn connect(remote: SocketAddr, port: u16) -> std::io::Result<TcpStream> {
    let (socket, local) = match remote {
        SocketAddr::V4(_) => (
            TcpSocket::new_v4()?,
            SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)),
        ),
        SocketAddr::V6(_) => (
            TcpSocket::new_v6()?,
            SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)),
        ),
    };
    crate::platform::tcp::share_port(&socket2::SockRef::from(&socket))?;
    socket.bind(local)?;
    socket.connect(remote).await
}

async fn accept(dp: Arc<Dataplane>, listener: TcpListener, port: u16) {
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!("TCP accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if dp.tcp.len() >= MAX_LINKS {
            tracing::debug!(%remote, "too many TCP paths: refused");
            continue;
        }
        // The dual-stack listener names IPv4 peers as ::ffff:a.b.c.d.
        let remote = SocketAddr::new(remote.ip().to_canonical(), remote.port());
        match link(dp.clone(), stream, remote, port).await {
            Ok(at) => tracing::info!(%remote, %at, "direct path over TCP: accepted"),
            Err(e) => tracing::debug!(%remote, "TCP path: {e:#}"),
        }
    }
}

async fn dial(dp: Arc<Dataplane>, port: u16) {
    let mut tick = tokio::time::interval(DIAL_EVERY);
    loop {
        tick.tick().await;
        let dials = dp.node().poll_tcp_dials(Instant::now());
        for (key, remote) in dials {
            if dp.tcp.len() >= MAX_LINKS {
                break;
            }
            let dp = dp.clone();
            tokio::spawn(async move {
                let connected = tokio::time::timeout(CONNECT_TIMEOUT, connect(remote, port))
                    .await
                    .map_err(|_| anyhow::anyhow!("no answer within {CONNECT_TIMEOUT:?}"))
                    .and_then(|r| r.map_err(Into::into));
                let at = match connected {
                    Ok(stream) => link(dp.clone(), stream, remote, port).await,
                    Err(e) => Err(e),
                };
                match at {
                    Ok(at) => {
                        tracing::info!(%remote, %at, "direct path over TCP: connected");
                        dp.node().tcp_link_up(Instant::now(), &key, at);
                        dp.flush_now();
                    }
                    Err(e) => tracing::debug!(%remote, "no direct TCP path: {e:#}"),
                }
            });
        }
    }
}

/// Puts `stream` behind a loopback UDP socket; returns that socket's address.
async fn link(
    dp: Arc<Dataplane>,
    stream: TcpStream,
    remote: SocketAddr,
    node_port: u16,
) -> Result<SocketAddr> {
    stream.set_nodelay(true)?;
    let shim = Arc::new(
        UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("no loopback socket for a TCP path")?,
    );
    let at = shim.local_addr()?;
    let node = SocketAddr::from((Ipv4Addr::LOCALHOST, node_port));
    dp.tcp.links.lock().expect("tcp links").insert(at, remote);
    let (mut rx, mut tx) = stream.into_split();
    let to_stream = {
        let shim = shim.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 65_535];
            let mut frame = Vec::with_capacity(65_537);
            loop {
                let Ok((n, from)) = shim.recv_from(&mut buf).await else {
                    return;
                };
                // Only the node's own socket may send on this stream.
                if from != node {
                    continue;
                }
                frame.clear();
                frame.extend_from_slice(&(n as u16).to_be_bytes());
                frame.extend_from_slice(&buf[..n]);
                if tx.write_all(&frame).await.is_err() {
                    return;
                }
            }
        })
    };
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        loop {
            let mut len = [0u8; 2];
            let read = async {
                rx.read_exact(&mut len).await?;
                let n = u16::from_be_bytes(len) as usize;
                rx.read_exact(&mut buf[..n]).await?;
                Ok::<usize, std::io::Error>(n)
            };
            match tokio::time::timeout(IDLE, read).await {
                Ok(Ok(n)) => {
                    // A full node socket loses the datagram, as the network might.
                    let _ = shim.send_to(&buf[..n], node).await;
                }
                _ => break,
            }
        }
        to_stream.abort();
        dp.tcp.links.lock().expect("tcp links").remove(&at);
        tracing::info!(%remote, "direct path over TCP: closed");
    });
    Ok(at)
}

// Not under Wine: it maps Windows' SO_REUSEADDR to Linux's, which refuses a second bind to a
// listening port.
#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A dialer leaves from the port the listener holds (what a simultaneous open through a
    /// NAT that keeps ports needs), while the listener still accepts.
    #[tokio::test]
    async fn dialers_share_the_listen_port() {
        let listener = listen((Ipv6Addr::UNSPECIFIED, 0).into())
            .or_else(|_| listen((Ipv4Addr::UNSPECIFIED, 0).into()))
            .expect("a listener");
        let port = listener.local_addr().unwrap().port();
        let other = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let to = other.local_addr().unwrap();
        let dialed = connect(to, port).await.expect("dial from the listen port");
        assert_eq!(dialed.local_addr().unwrap().port(), port);
        let (_, from) = other.accept().await.unwrap();
        assert_eq!(from.port(), port, "the peer sees our listen port");
        // The listener is still the one that takes new connections to the port.
        let _c = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .unwrap();
        let accepted = tokio::time::timeout(Duration::from_secs(2), listener.accept()).await;
        assert!(matches!(accepted, Ok(Ok(_))));
    }
}
