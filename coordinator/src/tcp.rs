//! The coordinator's TCP+TLS listener, for daemons on networks that block UDP. One TLS 1.3
//! stream per daemon carries both its control channel and its relayed datagrams, framed by
//! `warren_proto::control::stream`. The certificate and ALPN are the QUIC listener's; as over
//! QUIC, the coordinator is authenticated by the Noise handshake bound to this connection's
//! TLS exporter, so the certificate is never checked.
//!
//! Each connection has a reader task (frames off the stream: control frames to the session,
//! relay frames to the relay task under the connection's synthetic address) and a writer task
//! (the session's frames first, then what the relay queued for it). A malformed frame ends the
//! connection, and says why in the log. Until the Noise handshake the reader takes one small
//! control frame and no relay frame at all ([`crate::preauth`]): a connection that proved no
//! key cannot make the coordinator buffer a megabyte or the relay see its datagrams.

use crate::link::{FrameReader, FrameWriter, Link};
use crate::preauth::PreAuth;
use crate::relay::RelayHandle;
use crate::server::{self, Server};
use crate::tcp_links::synthetic_addr;
use anyhow::{anyhow, Context, Result};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use warren_proto::api::ControlTransport;
use warren_proto::control::auth::{BINDING_LEN, EXPORTER_LABEL};
use warren_proto::control::io::write_frames;
use warren_proto::control::stream::{parse_header, Kind, HEADER_LEN};

/// Each connection's read and write buffer: a few relayed packets or a burst of control
/// frames (half tokio's default: with tens of thousands of hosts these are much of the
/// coordinator's memory).
const IO_BUFFER: usize = 4096;
/// Control frames are few; a session that stops reading its queue stops the reader too.
const CONTROL_QUEUE: usize = 64;
/// Relayed datagrams waiting for one connection's writer; beyond this the relay drops them,
/// as a full UDP socket buffer would.
const RELAY_QUEUE: usize = 512;
/// A dead peer is noticed within about this long (TCP keepalive and user timeout), as QUIC's
/// idle timeout does.
#[cfg(target_os = "linux")]
const DEAD_AFTER: Duration = Duration::from_secs(15);

/// `--tcp-listen`: an address, or `off`.
pub fn parse_listen(s: &str) -> Result<Option<SocketAddr>, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|e| format!("{e}: expected IP:PORT or `off`"))
}

pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on TCP {addr} (--tcp-listen)"))
}

pub async fn serve(listener: TcpListener, tls: rustls::ServerConfig, server: Arc<Server>) {
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let mut next = 0u64;
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // E.g. out of descriptors: wait instead of spinning.
                tracing::warn!("TCP accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        next += 1;
        let (acceptor, server, synthetic) =
            (acceptor.clone(), server.clone(), synthetic_addr(next));
        tokio::spawn(async move {
            let Some(pre_auth) = server.pre_auth.enter().await else {
                tracing::debug!(%remote, "too many connections handshaking: refused");
                return;
            };
            if let Err(e) = connection(tcp, remote, synthetic, acceptor, &server, pre_auth).await {
                tracing::debug!(%remote, "TCP connection ended: {e:#}");
            }
        });
    }
}

async fn connection(
    tcp: TcpStream,
    remote: SocketAddr,
    synthetic: SocketAddr,
    acceptor: TlsAcceptor,
    server: &Server,
    pre_auth: Arc<PreAuth>,
) -> Result<()> {
    tune(&tcp);
    let tls = tokio::time::timeout(server::HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
        .await
        .context("no TLS handshake")??;
    let binding = tls
        .get_ref()
        .1
        .export_keying_material([0u8; BINDING_LEN], EXPORTER_LABEL, Some(b""))
        .map_err(|e| anyhow!("TLS exporter unavailable: {e}"))?;
    let (read, write) = tokio::io::split(tls);
    let (control_in, control_rx) = mpsc::channel(CONTROL_QUEUE);
    let (control_tx, control_out) = mpsc::channel(CONTROL_QUEUE);
    let (relay_tx, relay_out) = mpsc::channel(RELAY_QUEUE);
    let relay = server.relay.clone();
    if let Some(r) = &relay {
        r.attach(synthetic, relay_tx);
    }
    let io = TcpIo {
        reader: tokio::spawn(read_loop(
            read,
            control_in,
            relay.clone(),
            synthetic,
            remote,
            pre_auth.clone(),
        )),
        writer: tokio::spawn(write_loop(write, control_out, relay_out)),
        detach: relay.map(|r| (r, synthetic)),
    };
    let link = Link {
        transport: ControlTransport::Tcp,
        remote,
        binding,
        reader: FrameReader::Tcp(control_rx),
        writer: FrameWriter::Tcp(control_tx),
        pre_auth,
        _io: Some(io),
    };
    server::session(link, server).await
}

/// Keepalives and a user timeout, so a peer that vanished without a FIN is noticed.
pub fn tune(tcp: &TcpStream) {
    let sock = socket2::SockRef::from(tcp);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(5))
        .with_interval(Duration::from_secs(3))
        .with_retries(3);
    let _ = sock.set_tcp_keepalive(&keepalive);
    // TCP_USER_TIMEOUT is Linux's; elsewhere (Windows) the keepalives alone notice a dead
    // peer, after 5 + 3 × 3 s instead of DEAD_AFTER when data is unacknowledged.
    #[cfg(target_os = "linux")]
    let _ = sock.set_tcp_user_timeout(Some(DEAD_AFTER));
    let _ = tcp.set_nodelay(true);
}

/// A TCP link's tasks; dropping it stops them and tells the relay the address is gone.
pub struct TcpIo {
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
    detach: Option<(RelayHandle, SocketAddr)>,
}

impl Drop for TcpIo {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
        if let Some((relay, addr)) = &self.detach {
            relay.detach(*addr);
        }
    }
}

type Stream = TlsStream<TcpStream>;

async fn read_loop<R: AsyncRead + Unpin>(
    read: R,
    control: mpsc::Sender<Vec<u8>>,
    relay: Option<RelayHandle>,
    synthetic: SocketAddr,
    remote: SocketAddr,
    pre_auth: Arc<PreAuth>,
) {
    let mut read = BufReader::with_capacity(IO_BUFFER, read);
    loop {
        let mut h = [0u8; HEADER_LEN];
        if let Err(e) = read.read_exact(&mut h).await {
            tracing::debug!(%remote, "TCP stream ended: {e}");
            return;
        }
        let (kind, len) = match parse_header(&h) {
            Ok(k) => k,
            Err(e) => {
                tracing::info!(%remote, "closing a TCP control connection: {e}");
                return;
            }
        };
        if !pre_auth.is_authenticated() && (kind == Kind::Relay || len > pre_auth.max_frame(len)) {
            tracing::info!(%remote, "closing a TCP connection that sent {kind:?} ({len} bytes) before its handshake");
            return;
        }
        let mut payload = vec![0u8; len];
        if let Err(e) = read.read_exact(&mut payload).await {
            tracing::debug!(%remote, "TCP stream ended inside a frame: {e}");
            return;
        }
        match kind {
            Kind::Control => {
                if control.send(payload).await.is_err() {
                    return;
                }
            }
            Kind::Relay => match &relay {
                Some(r) => r.frame_from_tcp(synthetic, payload).await,
                None => tracing::trace!(%remote, "relay frame while the relay is off"),
            },
        }
    }
}

async fn write_loop(
    write: WriteHalf<Stream>,
    mut control: mpsc::Receiver<Vec<u8>>,
    mut relay: mpsc::Receiver<Vec<u8>>,
) {
    let mut write = BufWriter::with_capacity(IO_BUFFER, write);
    if let Err(e) = write_frames(&mut write, &mut control, &mut relay).await {
        tracing::debug!("TCP write: {e}");
        return;
    }
    let _ = write.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preauth::{PreAuthGate, PRE_AUTH_MAX_FRAME};
    use warren_proto::control::stream::encode;

    /// Runs the reader over `bytes` (the stream ends after them); what reached the session and
    /// the relay.
    async fn read_all(bytes: Vec<u8>, pre_auth: Arc<PreAuth>) -> (usize, usize) {
        let (mut far, near) = tokio::io::duplex(1 << 21);
        let (handle, mut inbox) = crate::relay::channel(1);
        let (control, mut control_rx) = mpsc::channel(64);
        let remote: SocketAddr = "192.0.2.1:1".parse().unwrap();
        let reader = tokio::spawn(read_loop(
            near,
            control,
            Some(handle),
            synthetic_addr(1),
            remote,
            pre_auth,
        ));
        far.write_all(&bytes).await.unwrap();
        drop(far);
        reader.await.unwrap();
        let mut control_frames = 0;
        while control_rx.try_recv().is_ok() {
            control_frames += 1;
        }
        (control_frames, inbox.tcp_frames_waiting())
    }

    fn frames(list: &[(Kind, usize)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (kind, len) in list {
            encode(*kind, &vec![7; *len], &mut out).unwrap();
        }
        out
    }

    #[tokio::test]
    async fn before_its_handshake_a_connection_sends_one_small_frame_and_no_relay_frame() {
        let gate = PreAuthGate::new(4);
        // A relay frame first: the connection ends there, the relay never sees it.
        let stream = frames(&[(Kind::Relay, 40), (Kind::Control, 10)]);
        assert_eq!(read_all(stream, gate.enter().await.unwrap()).await, (0, 0));
        // A handshake-sized frame passes; a large one ends the connection unread.
        let stream = frames(&[
            (Kind::Control, 300),
            (Kind::Control, PRE_AUTH_MAX_FRAME + 1),
        ]);
        assert_eq!(read_all(stream, gate.enter().await.unwrap()).await, (1, 0));
        // Once authenticated, both kinds and full-size frames are carried.
        let done = gate.enter().await.unwrap();
        done.authenticated();
        let stream = frames(&[(Kind::Control, PRE_AUTH_MAX_FRAME + 1), (Kind::Relay, 40)]);
        assert_eq!(read_all(stream, done).await, (1, 1));
    }
}
