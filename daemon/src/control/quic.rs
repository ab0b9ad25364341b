//! QUIC client setup (see [`super::tls`] for why the certificate is not checked).

use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::Duration;

/// How often a quiet connection is checked, and how long it may stay silent before it counts
/// as dead: (keep-alive, idle timeout).
const PATIENT: (Duration, Duration) = (Duration::from_secs(5), Duration::from_secs(15));
/// For a coordinator with other addresses (several coordinators on one database): a dead one
/// is left within seconds for another, at the price of a keep-alive a second.
const QUICK: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(4));

/// The connection's (keep-alive, idle timeout): `elsewhere` when the coordinator has other
/// addresses to move to.
pub fn liveness(elsewhere: bool) -> (Duration, Duration) {
    if elsewhere {
        QUICK
    } else {
        PATIENT
    }
}

pub fn client_endpoint(elsewhere: bool) -> Result<quinn::Endpoint> {
    let tls = warren_proto::control::tls::client_config()?;
    let mut config = quinn::ClientConfig::new(Arc::new(
        quinn::crypto::rustls::QuicClientConfig::try_from(tls)?,
    ));
    let (keep_alive, idle) = liveness(elsewhere);
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(keep_alive));
    transport.max_idle_timeout(Some(idle.try_into()?));
    config.transport_config(Arc::new(transport));
    let bind: std::net::SocketAddr = "[::]:0".parse().expect("literal");
    let mut endpoint = quinn::Endpoint::client(bind)
        .or_else(|_| quinn::Endpoint::client("0.0.0.0:0".parse().expect("literal")))
        .context("cannot open the control socket")?;
    endpoint.set_default_client_config(config);
    Ok(endpoint)
}

/// A QUIC connection to the coordinator at `addr` and its control stream; `elsewhere`: the
/// coordinator has other addresses (see [`liveness`]).
pub async fn connect(addr: std::net::SocketAddr, elsewhere: bool) -> Result<super::link::Link> {
    use super::link::{FrameReader, FrameWriter, Link};
    use warren_proto::control::auth::{BINDING_LEN, EXPORTER_LABEL};
    let endpoint = client_endpoint(elsewhere)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// With another address to go to, a dead coordinator is left within seconds; the idle
    /// timeout still spans several keep-alives, so a lost packet or two is no reason.
    #[test]
    fn a_coordinator_with_other_addresses_is_left_sooner() {
        let (keep_alive, idle) = liveness(true);
        assert!(idle <= Duration::from_secs(4));
        assert!(idle >= keep_alive * 3);
        assert_eq!(liveness(false), PATIENT);
    }
}
