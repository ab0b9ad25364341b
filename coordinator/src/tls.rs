//! The coordinator's TLS server config, shared by the QUIC and the TCP listener. Its
//! certificate is made fresh at each start and proves nothing by itself: clients authenticate
//! the coordinator by its Noise key, bound to the connection (see
//! `warren_proto::control::auth`).

use anyhow::Result;
use std::sync::Arc;
use warren_proto::control::ALPN;

pub fn server_config() -> Result<rustls::ServerConfig> {
    let cert = rcgen::generate_simple_self_signed(vec!["warren".to_string()])?;
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key.into())?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    Ok(tls)
}
