//! The control connection over TCP+TLS, for networks that block UDP: one TLS 1.3 stream to the
//! coordinator carries the control channel and, through the loopback [`Shim`], the relay's
//! datagrams (framing: `warren_proto::control::stream`). TLS is configured as for QUIC (same
//! ALPN, certificate unchecked: the Noise handshake bound to the exporter authenticates the
//! coordinator).

use super::link::{FrameReader, FrameWriter, Link};
use super::relay_shim::Shim;
use crate::platform::tcp;
use anyhow::{anyhow, Context, Result};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use warren_proto::control::auth::{BINDING_LEN, EXPORTER_LABEL};
use warren_proto::control::io::write_frames;
use warren_proto::control::stream::{parse_header, Kind, HEADER_LEN};

const CONTROL_QUEUE: usize = 64;
/// Datagrams from the node waiting for the TLS stream; beyond this they are dropped.
const RELAY_QUEUE: usize = 512;
/// A dead connection is noticed within about this long, as QUIC's idle timeout does.
const DEAD_AFTER: Duration = Duration::from_secs(15);
const RTT_EVERY: Duration = Duration::from_secs(1);

/// The link's tasks and its relay shim; dropping it stops the tasks and closes the stream.
pub struct TcpIo {
    tasks: Vec<JoinHandle<()>>,
    pub shim: SocketAddr,
    pub rtt_us: Arc<AtomicU32>,
}

impl Drop for TcpIo {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Connects to the coordinator at `addr` over TCP+TLS, with a relay shim for the node's UDP
/// socket on `udp_port`.
pub async fn connect(addr: SocketAddr, udp_port: u16) -> Result<Link> {
    let tcp = TcpStream::connect(addr)
        .await
        .with_context(|| format!("TCP connection to {addr} failed"))?;
    tune(&tcp);
    let fd = tcp::raw(&tcp);
    let connector = TlsConnector::from(Arc::new(warren_proto::control::tls::client_config()?));
    let name = rustls::pki_types::ServerName::try_from("warren")?;
    let tls = connector
        .connect(name, tcp)
        .await
        .with_context(|| format!("TLS over TCP to {addr} failed"))?;
    let binding = tls
        .get_ref()
        .1
        .export_keying_material([0u8; BINDING_LEN], EXPORTER_LABEL, Some(b""))
        .map_err(|e| anyhow!("TLS exporter unavailable: {e}"))?;
    let shim = Arc::new(
        Shim::bind(udp_port)
            .await
            .context("cannot bind the relay shim")?,
    );
    let shim_addr = shim.addr()?;
    let rtt_us = Arc::new(AtomicU32::new(0));
    sample_rtt(fd, &rtt_us);
    let (read, write) = tokio::io::split(tls);
    let (control_in, control_rx) = mpsc::channel(CONTROL_QUEUE);
    let (control_tx, control_out) = mpsc::channel(CONTROL_QUEUE);
    let (relay_tx, relay_out) = mpsc::channel(RELAY_QUEUE);
    let io = TcpIo {
        tasks: vec![
            tokio::spawn(read_loop(
                read,
                control_in,
                shim.clone(),
                fd,
                rtt_us.clone(),
            )),
            tokio::spawn(write_loop(write, control_out, relay_out)),
            tokio::spawn(shim.forward(relay_tx)),
        ],
        shim: shim_addr,
        rtt_us,
    };
    Ok(Link::tcp(
        io,
        addr,
        binding,
        FrameReader::Tcp(control_rx),
        FrameWriter::Tcp(control_tx),
    ))
}

/// Keepalives and a user timeout, so a path that died without a FIN is noticed.
fn tune(tcp: &TcpStream) {
    let sock = socket2::SockRef::from(tcp);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(5))
        .with_interval(Duration::from_secs(3))
        .with_retries(3);
    let _ = sock.set_tcp_keepalive(&keepalive);
    tcp::set_user_timeout(&sock, DEAD_AFTER);
    let _ = tcp.set_nodelay(true);
}

/// The kernel's smoothed RTT of the connection on `fd`, kept in `out` (never 0 once known).
fn sample_rtt(fd: tcp::Raw, out: &AtomicU32) {
    if let Some(rtt) = tcp::rtt_us(fd) {
        out.store(rtt.max(1), Ordering::Relaxed);
    }
}

type Stream = TlsStream<TcpStream>;

async fn read_loop(
    read: ReadHalf<Stream>,
    control: mpsc::Sender<Vec<u8>>,
    shim: Arc<Shim>,
    fd: tcp::Raw,
    rtt_us: Arc<AtomicU32>,
) {
    let mut read = BufReader::new(read);
    let mut buf = Vec::new();
    let mut sampled = Instant::now();
    loop {
        let mut h = [0u8; HEADER_LEN];
        if let Err(e) = read.read_exact(&mut h).await {
            tracing::debug!("coordinator TCP stream ended: {e}");
            return;
        }
        let (kind, len) = match parse_header(&h) {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!("closing the TCP connection to the coordinator: {e}");
                return;
            }
        };
        buf.resize(len, 0);
        if let Err(e) = read.read_exact(&mut buf).await {
            tracing::debug!("coordinator TCP stream ended inside a frame: {e}");
            return;
        }
        match kind {
            Kind::Control => {
                if control.send(std::mem::take(&mut buf)).await.is_err() {
                    return;
                }
            }
            Kind::Relay => shim.deliver(&buf).await,
        }
        if sampled.elapsed() >= RTT_EVERY {
            sample_rtt(fd, &rtt_us);
            sampled = Instant::now();
        }
    }
}

async fn write_loop(
    write: WriteHalf<Stream>,
    mut control: mpsc::Receiver<Vec<u8>>,
    mut relay: mpsc::Receiver<Vec<u8>>,
) {
    let mut write = BufWriter::new(write);
    if let Err(e) = write_frames(&mut write, &mut control, &mut relay).await {
        tracing::debug!("coordinator TCP write: {e}");
        return;
    }
    let _ = write.shutdown().await;
}
