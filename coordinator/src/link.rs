//! One daemon's control channel, whatever carries it — a QUIC stream or a TCP+TLS stream —
//! as the session logic in [`crate::server`] uses it: frames in, frames out, the TLS exporter
//! the Noise handshake is bound to, and the address it comes from.

use crate::tcp::TcpIo;
use std::net::SocketAddr;
use warren_proto::api::ControlTransport;
use warren_proto::control::auth::BINDING_LEN;
pub use warren_proto::control::io::{FrameReader, FrameWriter};

pub struct Link {
    pub transport: ControlTransport,
    pub remote: SocketAddr,
    pub binding: [u8; BINDING_LEN],
    pub reader: FrameReader,
    pub writer: FrameWriter,
    /// Its slot among the connections still handshaking, until the handshake.
    pub pre_auth: std::sync::Arc<crate::preauth::PreAuth>,
    /// A TCP link's reader and writer tasks, stopped when this is dropped.
    pub _io: Option<TcpIo>,
}
