//! QUIC client setup (see [`super::tls`] for why the certificate is not checked).

use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::Duration;

pub fn client_endpoint() -> Result<quinn::Endpoint> {
    let tls = warren_proto::control::tls::client_config()?;
    let mut config = quinn::ClientConfig::new(Arc::new(
        quinn::crypto::rustls::QuicClientConfig::try_from(tls)?,
    ));
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(Duration::from_secs(5)));
    transport.max_idle_timeout(Some(Duration::from_secs(15).try_into()?));
    config.transport_config(Arc::new(transport));
    let bind: std::net::SocketAddr = "[::]:0".parse().expect("literal");
    let mut endpoint = quinn::Endpoint::client(bind)
        .or_else(|_| quinn::Endpoint::client("0.0.0.0:0".parse().expect("literal")))
        .context("cannot open the control socket")?;
    endpoint.set_default_client_config(config);
    Ok(endpoint)
}

/// A QUIC connection to the coordinator at `addr` and its control stream.
pub async fn connect(addr: std::net::SocketAddr) -> Result<super::link::Link> {
    use super::link::{FrameReader, FrameWriter, Link};
    use warren_proto::control::auth::{BINDING_LEN, EXPORTER_LABEL};
    let endpoint = client_endpoint()?;
    let conn = endpoint
        .connect(addr, "warren")?
        .await
        .with_context(|| format!("QUIC connection to {addr} failed"))?;
    let mut binding = [0u8; BINDING_LEN];
    conn.export_keying_material(&mut binding, EXPORTER_LABEL, b"")
        .map_err(|_| anyhow::anyhow!("TLS exporter unavailable"))?;
    let (send, recv) = conn.open_bi().await?;
    Ok(Link::quic(
        endpoint,
        conn,
        binding,
        FrameReader::Quic(recv),
        FrameWriter::Quic(send),
    ))
}
