//! The coordinator's QUIC listener: one bidirectional stream per daemon, the control channel.

use crate::link::{FrameReader, FrameWriter, Link};
use anyhow::{anyhow, Context, Result};
use quinn_proto::HashedConnectionIdGenerator;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use warren_proto::api::ControlTransport;
use warren_proto::control::auth::{BINDING_LEN, EXPORTER_LABEL};

/// Connection IDs and stateless resets must survive a restart: a daemon whose connection the
/// previous process held is then told at its next keep-alive that the connection is gone (a
/// stateless reset it can verify, sent only for a connection ID this coordinator's key could
/// have made) instead of waiting out the idle timeout, so it reconnects — and its relayed
/// traffic resumes — within seconds. Both keys are derived from the coordinator's secret.
fn endpoint_config(secret: &[u8; 32]) -> quinn::EndpointConfig {
    let derive = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let reset = ring::hmac::sign(&derive, b"warren quic stateless reset v1");
    let cid = ring::hmac::sign(&derive, b"warren quic connection id v1");
    let cid_key = u64::from_le_bytes(cid.as_ref()[..8].try_into().expect("8 of 32 bytes"));
    let mut config = quinn::EndpointConfig::new(Arc::new(ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        reset.as_ref(),
    )));
    config.cid_generator(move || Box::new(HashedConnectionIdGenerator::from_key(cid_key)));
    config
}

pub fn server_endpoint(
    listen: SocketAddr,
    tls: rustls::ServerConfig,
    secret: &[u8; 32],
) -> Result<quinn::Endpoint> {
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(
        quinn::crypto::rustls::QuicServerConfig::try_from(tls)?,
    ));
    let mut transport = quinn::TransportConfig::default();
    transport.max_idle_timeout(Some(Duration::from_secs(15).try_into()?));
    // A control connection is one stream of small frames, and there may be tens of thousands
    // of them: no other streams, no datagrams, small windows (each connection's buffers and
    // stream state are what the coordinator's memory grows with).
    transport.max_concurrent_bidi_streams(1u32.into());
    transport.max_concurrent_uni_streams(0u32.into());
    transport.datagram_receive_buffer_size(None);
    transport.stream_receive_window((256u32 << 10).into());
    transport.receive_window((256u32 << 10).into());
    transport.send_window(512 << 10);
    // A batch buffer of several packets per connection is kept once used; control traffic
    // does not need batches, nor packets larger than the first.
    transport.enable_segmentation_offload(false);
    transport.mtu_discovery_config(None);
    config.transport_config(Arc::new(transport));
    let socket =
        std::net::UdpSocket::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
    // Thousands of hosts connecting at once (a restart) send their first packets together.
    warren_proto::socket_buffers::enlarge(&socket, 8 << 20);
    Ok(quinn::Endpoint::new(
        endpoint_config(secret),
        Some(config),
        socket,
        Arc::new(quinn::TokioRuntime),
    )?)
}

/// Completes an incoming connection and accepts its control stream.
pub async fn accept(
    incoming: quinn::Incoming,
    timeout: Duration,
    pre_auth: std::sync::Arc<crate::preauth::PreAuth>,
) -> Result<Link> {
    // A client that left while its connection waited for a slot holds the slot no longer than
    // this, not for the whole idle timeout.
    let conn = tokio::time::timeout(timeout, incoming)
        .await
        .context("no QUIC handshake")??;
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
        pre_auth,
        _io: None,
    })
}
