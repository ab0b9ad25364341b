//! One simulated daemon's control connection, from its own loopback source address: QUIC (one
//! quinn endpoint per host, as each daemon has its own socket) or TCP+TLS (reader and writer
//! tasks, framing as `warren_proto::control::stream`). Thin glue like the daemon's
//! `control/{quic,tcp}.rs`, which live in a binary crate; the frames, the handshake and the
//! TCP writer loop come from `warren_proto`.

use anyhow::{anyhow, Context, Result};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use warren_proto::control::auth::{BINDING_LEN, EXPORTER_LABEL};
use warren_proto::control::io::{write_frames, FrameReader, FrameWriter};
use warren_proto::control::stream::{parse_header, Kind, HEADER_LEN};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Quic,
    Tcp,
}

/// What every host's connections share: the TLS configs, built once.
pub struct Dialer {
    quic: quinn::ClientConfig,
    tls: tokio_rustls::TlsConnector,
}

/// A connected, not yet authenticated channel. Dropping it closes the connection.
pub struct Link {
    pub reader: FrameReader,
    pub writer: FrameWriter,
    pub binding: [u8; BINDING_LEN],
    _keep: Keep,
}

/// What keeps a connection open: its endpoint or its I/O tasks.
pub struct Keep(KeepInner);

enum KeepInner {
    Quic(quinn::Endpoint, quinn::Connection),
    Tcp(Vec<JoinHandle<()>>),
}

impl Link {
    pub fn split(self) -> (FrameReader, FrameWriter, Keep) {
        (self.reader, self.writer, self._keep)
    }
}

impl Drop for Keep {
    fn drop(&mut self) {
        match &self.0 {
            KeepInner::Quic(endpoint, conn) => {
                conn.close(0u32.into(), b"load generator done");
                endpoint.close(0u32.into(), b"");
            }
            KeepInner::Tcp(tasks) => tasks.iter().for_each(|t| t.abort()),
        }
    }
}

impl Dialer {
    pub fn new() -> Result<Self> {
        let tls = warren_proto::control::tls::client_config()?;
        let mut quic = quinn::ClientConfig::new(Arc::new(
            quinn::crypto::rustls::QuicClientConfig::try_from(tls.clone())?,
        ));
        // The daemon's values (daemon/src/control/quic.rs): a dead coordinator is noticed
        // after the same 15 s a real host waits.
        let mut transport = quinn::TransportConfig::default();
        transport.keep_alive_interval(Some(Duration::from_secs(5)));
        transport.max_idle_timeout(Some(Duration::from_secs(15).try_into()?));
        quic.transport_config(Arc::new(transport));
        Ok(Self {
            quic,
            tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
        })
    }

    pub async fn connect(&self, how: Transport, from: IpAddr, to: SocketAddr) -> Result<Link> {
        match how {
            Transport::Quic => self.quic(from, to).await,
            Transport::Tcp => self.tcp(from, to).await,
        }
    }

    async fn quic(&self, from: IpAddr, to: SocketAddr) -> Result<Link> {
        let socket = std::net::UdpSocket::bind(SocketAddr::new(from, 0))
            .with_context(|| format!("cannot bind a UDP socket on {from}"))?;
        // quinn sizes each endpoint's receive buffer by the largest datagram it accepts (and
        // GRO, see `small_udp`): thousands of endpoints in one process want small ones.
        let mut config = quinn::EndpointConfig::default();
        config.max_udp_payload_size(1472)?;
        let mut endpoint = quinn::Endpoint::new_with_abstract_socket(
            config,
            None,
            crate::small_udp::NoGro::wrap(socket)?,
            Arc::new(quinn::TokioRuntime),
        )?;
        endpoint.set_default_client_config(self.quic.clone());
        let conn = endpoint
            .connect(to, "warren")?
            .await
            .with_context(|| format!("QUIC connection to {to} failed"))?;
        let mut binding = [0u8; BINDING_LEN];
        conn.export_keying_material(&mut binding, EXPORTER_LABEL, b"")
            .map_err(|_| anyhow!("TLS exporter unavailable"))?;
        let (send, recv) = conn.open_bi().await?;
        Ok(Link {
            reader: FrameReader::Quic(recv),
            writer: FrameWriter::Quic(send),
            binding,
            _keep: Keep(KeepInner::Quic(endpoint, conn)),
        })
    }

    async fn tcp(&self, from: IpAddr, to: SocketAddr) -> Result<Link> {
        let socket = match from {
            IpAddr::V4(_) => TcpSocket::new_v4()?,
            IpAddr::V6(_) => TcpSocket::new_v6()?,
        };
        socket
            .bind(SocketAddr::new(from, 0))
            .with_context(|| format!("cannot bind a TCP socket on {from}"))?;
        let tcp = socket
            .connect(to)
            .await
            .with_context(|| format!("TCP connection to {to} failed"))?;
        let _ = tcp.set_nodelay(true);
        let name = rustls::pki_types::ServerName::try_from("warren")?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .with_context(|| format!("TLS over TCP to {to} failed"))?;
        let binding = tls
            .get_ref()
            .1
            .export_keying_material([0u8; BINDING_LEN], EXPORTER_LABEL, Some(b""))
            .map_err(|e| anyhow!("TLS exporter unavailable: {e}"))?;
        let (read, write) = tokio::io::split(tls);
        let (control_in, control_rx) = mpsc::channel(64);
        let (control_tx, mut control_out) = mpsc::channel::<Vec<u8>>(64);
        let reader = tokio::spawn(async move {
            let mut read = BufReader::new(read);
            loop {
                let mut h = [0u8; HEADER_LEN];
                if read.read_exact(&mut h).await.is_err() {
                    return;
                }
                let Ok((kind, len)) = parse_header(&h) else {
                    return;
                };
                let mut buf = vec![0u8; len];
                if read.read_exact(&mut buf).await.is_err() {
                    return;
                }
                // No relay traffic is simulated: relay frames are not expected, and dropped.
                if kind == Kind::Control && control_in.send(buf).await.is_err() {
                    return;
                }
            }
        });
        let writer = tokio::spawn(async move {
            let mut write = BufWriter::new(write);
            // The relay queue stays empty (its sender is dropped at once).
            let (_, mut relay) = mpsc::channel(1);
            if write_frames(&mut write, &mut control_out, &mut relay)
                .await
                .is_ok()
            {
                let _ = write.shutdown().await;
            }
        });
        Ok(Link {
            reader: FrameReader::Tcp(control_rx),
            writer: FrameWriter::Tcp(control_tx),
            binding,
            _keep: Keep(KeepInner::Tcp(vec![reader, writer])),
        })
    }
}
