//! One daemon's control channel, whatever carries it — a QUIC stream or a TCP+TLS stream —
//! as the session logic in [`crate::server`] uses it: frames in, frames out, the TLS exporter
//! the Noise handshake is bound to, and the address it comes from.

use crate::quic;
use crate::tcp::TcpIo;
use anyhow::{anyhow, Result};
use std::net::SocketAddr;
use tokio::sync::mpsc;
use warren_proto::api::ControlTransport;
use warren_proto::control::auth::BINDING_LEN;

pub struct Link {
    pub transport: ControlTransport,
    pub remote: SocketAddr,
    pub binding: [u8; BINDING_LEN],
    pub reader: FrameReader,
    pub writer: FrameWriter,
    /// A TCP link's reader and writer tasks, stopped when this is dropped.
    pub _io: Option<TcpIo>,
}

pub enum FrameReader {
    Quic(quinn::RecvStream),
    /// Control frames the connection's reader task took off the stream.
    Tcp(mpsc::Receiver<Vec<u8>>),
}

impl FrameReader {
    pub async fn read_frame(&mut self) -> Result<Vec<u8>> {
        match self {
            FrameReader::Quic(recv) => quic::read_frame(recv).await,
            FrameReader::Tcp(frames) => frames
                .recv()
                .await
                .ok_or_else(|| anyhow!("connection closed")),
        }
    }
}

pub enum FrameWriter {
    Quic(quinn::SendStream),
    /// Control frames for the connection's writer task.
    Tcp(mpsc::Sender<Vec<u8>>),
}

impl FrameWriter {
    pub async fn write_frame(&mut self, payload: &[u8]) -> Result<()> {
        match self {
            FrameWriter::Quic(send) => quic::write_frame(send, payload).await,
            FrameWriter::Tcp(frames) => frames
                .send(payload.to_vec())
                .await
                .map_err(|_| anyhow!("connection closed")),
        }
    }

    /// No more frames: what was written still goes out.
    pub fn finish(self) {
        match self {
            FrameWriter::Quic(mut send) => {
                let _ = send.finish();
            }
            // The writer task flushes and shuts the stream down when its queue closes.
            FrameWriter::Tcp(frames) => drop(frames),
        }
    }
}
