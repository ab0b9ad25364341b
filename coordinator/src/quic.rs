//! The coordinator's QUIC listener: one bidirectional stream per daemon, the control channel.

use crate::link::{FrameReader, FrameWriter, Link};
use anyhow::{anyhow, Context, Result};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use warren_proto::api::ControlTransport;
use warren_proto::control::auth::{BINDING_LEN, EXPORTER_LABEL};
use warren_proto::control::frame::{encode, MAX_FRAME};

pub fn server_endpoint(listen: SocketAddr, tls: rustls::ServerConfig) -> Result<quinn::Endpoint> {
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(
        quinn::crypto::rustls::QuicServerConfig::try_from(tls)?,
    ));
    let mut transport = quinn::TransportConfig::default();
    transport.max_idle_timeout(Some(Duration::from_secs(15).try_into()?));
    config.transport_config(Arc::new(transport));
    quinn::Endpoint::server(config, listen).with_context(|| format!("cannot listen on {listen}"))
}

/// Completes an incoming connection and accepts its control stream.
pub async fn accept(incoming: quinn::Incoming, timeout: Duration) -> Result<Link> {
    let conn = incoming.await?;
    let mut binding = [0u8; BINDING_LEN];
    conn.export_keying_material(&mut binding, EXPORTER_LABEL, b"")
        .map_err(|_| anyhow!("TLS exporter unavailable"))?;
    let (send, recv) = tokio::time::timeout(timeout, conn.accept_bi())
        .await
        .context("no control stream")??;
    Ok(Link {
        transport: ControlTransport::Quic,
        remote: conn.remote_address(),
        binding,
        reader: FrameReader::Quic(recv),
        writer: FrameWriter::Quic(send),
        _io: None,
    })
}

pub async fn write_frame(send: &mut quinn::SendStream, payload: &[u8]) -> Result<()> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    encode(payload, &mut out)?;
    send.write_all(&out).await?;
    Ok(())
}

pub async fn read_frame(recv: &mut quinn::RecvStream) -> Result<Vec<u8>> {
    let mut len = [0u8; 4];
    recv.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    anyhow::ensure!(len <= MAX_FRAME, "frame of {len} bytes");
    let mut buf = vec![0u8; len];
    recv.read_exact(&mut buf).await?;
    Ok(buf)
}
