//! The control connection, whatever carries it — QUIC, or TCP+TLS where UDP is blocked — as
//! the session uses it: frames in, frames out, the TLS exporter the Noise handshake is bound
//! to, where the relay is, and what status shows about it.

use super::tcp::TcpIo;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use warren_proto::api::ControlTransport;
use warren_proto::control::auth::BINDING_LEN;
pub use warren_proto::control::io::{FrameReader, FrameWriter};

pub struct Link {
    pub remote: SocketAddr,
    pub binding: [u8; BINDING_LEN],
    pub reader: FrameReader,
    pub writer: FrameWriter,
    pub info: LinkInfo,
    carrier: Carrier,
}

/// What must live as long as the link.
enum Carrier {
    Quic {
        _endpoint: quinn::Endpoint,
        conn: quinn::Connection,
    },
    /// Its tasks stop when it is dropped.
    Tcp(TcpIo),
}

impl Link {
    pub fn quic(
        endpoint: quinn::Endpoint,
        conn: quinn::Connection,
        binding: [u8; BINDING_LEN],
        reader: FrameReader,
        writer: FrameWriter,
    ) -> Link {
        let remote = conn.remote_address();
        Link {
            remote,
            binding,
            reader,
            writer,
            info: LinkInfo {
                transport: ControlTransport::Quic,
                remote,
                rtt: Rtt::Quic(conn.clone()),
                relay_alias: None,
            },
            carrier: Carrier::Quic {
                _endpoint: endpoint,
                conn,
            },
        }
    }

    pub fn tcp(
        io: TcpIo,
        remote: SocketAddr,
        binding: [u8; BINDING_LEN],
        reader: FrameReader,
        writer: FrameWriter,
    ) -> Link {
        Link {
            remote,
            binding,
            reader,
            writer,
            info: LinkInfo {
                transport: ControlTransport::Tcp,
                remote,
                rtt: Rtt::Tcp(io.rtt_us.clone()),
                relay_alias: Some((io.shim, remote)),
            },
            carrier: Carrier::Tcp(io),
        }
    }

    pub fn transport(&self) -> ControlTransport {
        self.info.transport
    }

    /// The frame streams apart from what keeps the connection alive, so each can go to its
    /// own task.
    pub fn split(self) -> (FrameReader, FrameWriter, Carried) {
        let carried = Carried {
            remote: self.remote,
            info: self.info,
            carrier: self.carrier,
        };
        (self.reader, self.writer, carried)
    }
}

/// A link without its frame streams: what must live as long as the connection, and what the
/// session still asks of it.
pub struct Carried {
    pub remote: SocketAddr,
    pub info: LinkInfo,
    carrier: Carrier,
}

impl Carried {
    /// Where the node sends relay frames: the coordinator's relay port over UDP, or, over TCP,
    /// the loopback shim that carries them over this connection.
    pub fn relay_server(&self, port: u16) -> SocketAddr {
        match &self.carrier {
            Carrier::Quic { .. } => SocketAddr::new(self.remote.ip().to_canonical(), port),
            Carrier::Tcp(io) => io.shim,
        }
    }

    /// Tells the coordinator why (QUIC); a TCP link just closes when dropped.
    pub fn close(&self, reason: &'static [u8]) {
        if let Carrier::Quic { conn, .. } = &self.carrier {
            conn.close(0u32.into(), reason);
        }
    }
}

/// What status and netcheck show about the link; cheap to clone.
#[derive(Clone)]
pub struct LinkInfo {
    pub transport: ControlTransport,
    /// The coordinator's address this link goes to.
    pub remote: SocketAddr,
    rtt: Rtt,
    /// Over TCP, the node's relay is the loopback shim: (shim, the coordinator's address), so
    /// users see where their traffic really goes.
    relay_alias: Option<(SocketAddr, SocketAddr)>,
}

#[derive(Clone)]
enum Rtt {
    Quic(quinn::Connection),
    /// The kernel's smoothed RTT of the TCP connection, in µs (0: not measured yet).
    Tcp(Arc<AtomicU32>),
}

impl LinkInfo {
    pub fn rtt(&self) -> Option<Duration> {
        match &self.rtt {
            Rtt::Quic(conn) => Some(conn.rtt()),
            Rtt::Tcp(us) => match us.load(Ordering::Relaxed) {
                0 => None,
                us => Some(Duration::from_micros(us.into())),
            },
        }
    }

    /// `addr` as users should see it: the coordinator instead of the loopback shim.
    pub fn shown(&self, addr: SocketAddr) -> SocketAddr {
        match self.relay_alias {
            Some((shim, real)) if shim == addr => real,
            _ => addr,
        }
    }
}
