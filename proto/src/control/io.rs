//! The control channel's async I/O, the same at both ends (`io` feature: tokio and quinn; the
//! rest of this crate stays free of I/O). A channel is a QUIC stream or a TCP+TLS stream whose
//! reader and writer tasks pass frames through queues; [`FrameReader`] and [`FrameWriter`] hide
//! which, and [`write_frames`] is the TCP writer task's loop.

use super::frame::{encode, MAX_FRAME};
use super::stream::{header, Kind};
use anyhow::{anyhow, ensure, Result};
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;

pub async fn write_quic_frame(send: &mut quinn::SendStream, payload: &[u8]) -> Result<()> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    encode(payload, &mut out)?;
    send.write_all(&out).await?;
    Ok(())
}

pub async fn read_quic_frame(recv: &mut quinn::RecvStream) -> Result<Vec<u8>> {
    read_quic_frame_max(recv, MAX_FRAME).await
}

/// A frame of at most `max` bytes (a peer not yet authenticated gets little room).
pub async fn read_quic_frame_max(recv: &mut quinn::RecvStream, max: usize) -> Result<Vec<u8>> {
    let mut len = [0u8; 4];
    recv.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    ensure!(len <= max.min(MAX_FRAME), "control frame of {len} bytes");
    let mut buf = vec![0u8; len];
    recv.read_exact(&mut buf).await?;
    Ok(buf)
}

pub enum FrameReader {
    Quic(quinn::RecvStream),
    /// Control frames the TCP reader task took off the stream.
    Tcp(mpsc::Receiver<Vec<u8>>),
}

impl FrameReader {
    pub async fn read_frame(&mut self) -> Result<Vec<u8>> {
        self.read_frame_max(MAX_FRAME).await
    }

    /// A frame of at most `max` bytes (over TCP the reader task enforces its own limit).
    pub async fn read_frame_max(&mut self, max: usize) -> Result<Vec<u8>> {
        match self {
            FrameReader::Quic(recv) => read_quic_frame_max(recv, max).await,
            FrameReader::Tcp(frames) => frames
                .recv()
                .await
                .ok_or_else(|| anyhow!("the TCP connection closed")),
        }
    }
}

pub enum FrameWriter {
    Quic(quinn::SendStream),
    /// Control frames for the TCP writer task.
    Tcp(mpsc::Sender<Vec<u8>>),
}

impl FrameWriter {
    pub async fn write_frame(&mut self, payload: &[u8]) -> Result<()> {
        match self {
            FrameWriter::Quic(send) => write_quic_frame(send, payload).await,
            FrameWriter::Tcp(frames) => frames
                .send(payload.to_vec())
                .await
                .map_err(|_| anyhow!("the TCP connection closed")),
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

/// Writes frames until the control queue closes; flushes whenever both queues are empty, so
/// a burst goes out in few TLS records and a lone frame goes out at once.
pub async fn write_frames<W: AsyncWrite + Unpin>(
    write: &mut BufWriter<W>,
    control: &mut mpsc::Receiver<Vec<u8>>,
    relay: &mut mpsc::Receiver<Vec<u8>>,
) -> std::io::Result<()> {
    let mut relay_open = true;
    loop {
        let (kind, payload) = tokio::select! {
            biased;
            c = control.recv() => match c {
                Some(p) => (Kind::Control, p),
                None => break,
            },
            r = relay.recv(), if relay_open => match r {
                Some(p) => (Kind::Relay, p),
                None => {
                    relay_open = false;
                    continue;
                }
            },
        };
        let h = header(kind, payload.len())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        write.write_all(&h).await?;
        write.write_all(&payload).await?;
        if control.is_empty() && relay.is_empty() {
            write.flush().await?;
        }
    }
    write.flush().await
}
