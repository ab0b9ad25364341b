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
    // quinn's default (one reset per 20 ms for the whole endpoint) answers 50 of the thousands
    // of keep-alives that reach a restarted coordinator each second, and fewer still under
    // load: the datagrams of one read share one instant, so any interval answers only the first
    // of them. The rest wait out their idle timeout. The interval guards against garbage
    // floods; here only a packet whose connection ID this key made earns a reset (the
    // generator validates them), and each reset is smaller than the packet that asked for it.
    config.min_reset_interval(RESET_INTERVAL);
    config
}

/// No pause between stateless resets (see [`endpoint_config`]).
const RESET_INTERVAL: Duration = Duration::ZERO;

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
    Ok(quinn::Endpoint::new_with_abstract_socket(
        endpoint_config(secret),
        Some(config),
        udp_socket(socket)?,
        Arc::new(quinn::TokioRuntime),
    )?)
}

/// `socket` for quinn: through quinn-udp, or on Windows, where quinn-udp may fail to set it up
/// (under Wine), as a plain socket (see `plain_udp`).
fn udp_socket(socket: std::net::UdpSocket) -> std::io::Result<Arc<dyn quinn::AsyncUdpSocket>> {
    #[cfg(windows)]
    {
        // quinn-udp closes the socket it fails on; a copy of the handle keeps it.
        let copy = socket.try_clone()?;
        match quinn::Runtime::wrap_udp_socket(&quinn::TokioRuntime, socket) {
            Ok(socket) => Ok(socket),
            Err(e) => {
                tracing::warn!("QUIC without quinn-udp (one datagram per call, no ECN): {e}");
                Ok(crate::plain_udp::PlainUdp::new(copy)?)
            }
        }
    }
    #[cfg(not(windows))]
    quinn::Runtime::wrap_udp_socket(&quinn::TokioRuntime, socket)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A client whose keep-alives reach a restarted coordinator: told by a stateless reset
    /// (which the client can verify only if the new process derives the same reset key) rather
    /// than left to its idle timeout.
    async fn client(server: SocketAddr, keep_alive: Duration, idle: Duration) -> quinn::Connection {
        let tls = warren_proto::control::tls::client_config().unwrap();
        let mut config = quinn::ClientConfig::new(Arc::new(
            quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap(),
        ));
        let mut transport = quinn::TransportConfig::default();
        transport.keep_alive_interval(Some(keep_alive));
        transport.max_idle_timeout(Some(idle.try_into().unwrap()));
        config.transport_config(Arc::new(transport));
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut endpoint = quinn::Endpoint::new_with_abstract_socket(
            quinn::EndpointConfig::default(),
            None,
            udp_socket(socket).unwrap(),
            Arc::new(quinn::TokioRuntime),
        )
        .unwrap();
        endpoint.set_default_client_config(config);
        endpoint.connect(server, "warren").unwrap().await.unwrap()
    }

    /// Many hosts at once learn that the coordinator restarted from the reset its new process
    /// sends, none from its idle timeout: with quinn's default of one reset per 20 ms, 200
    /// hosts with keep-alives every 100 ms (2 000 a second) would mostly time out.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_host_hears_of_a_restart_by_a_stateless_reset() {
        let secret = [7u8; 32];
        // The old process runs on a runtime of its own, so that it can die without a word (as
        // a crash or SIGKILL would): no connection is closed, nothing more is sent.
        let old = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let first = {
            let _on_old = old.enter();
            server_endpoint(
                "127.0.0.1:0".parse().unwrap(),
                crate::tls::server_config().unwrap(),
                &secret,
            )
            .unwrap()
        };
        let addr = first.local_addr().unwrap();
        old.spawn(async move {
            let mut kept = Vec::new();
            while let Some(incoming) = first.accept().await {
                if let Ok(conn) = incoming.await {
                    kept.push(conn);
                }
            }
        });
        let mut clients = Vec::new();
        for _ in 0..200 {
            clients.push(client(addr, Duration::from_millis(100), Duration::from_secs(3)).await);
        }
        old.shutdown_background();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let second = server_endpoint(addr, crate::tls::server_config().unwrap(), &secret).unwrap();
        let mut reasons = std::collections::BTreeMap::<String, usize>::new();
        for conn in clients {
            let reason = match conn.closed().await {
                quinn::ConnectionError::Reset => "reset".to_string(),
                other => format!("{other}"),
            };
            *reasons.entry(reason).or_default() += 1;
        }
        drop(second);
        assert_eq!(
            reasons.get("reset"),
            Some(&200),
            "why the hosts' connections ended: {reasons:?}"
        );
    }
}
