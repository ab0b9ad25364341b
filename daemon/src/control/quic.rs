//! QUIC client setup. TLS only carries the connection: the coordinator is authenticated by the
//! Noise handshake bound to this connection's exporter (see `warren_proto::control::auth`), so
//! the certificate is not checked against any authority, only for a valid signature.

use anyhow::{Context, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;
use std::time::Duration;
use warren_proto::control::frame::{encode, MAX_FRAME};
use warren_proto::control::ALPN;

#[derive(Debug)]
struct BoundByNoise(Arc<CryptoProvider>);

impl ServerCertVerifier for BoundByNoise {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

pub fn client_endpoint() -> Result<quinn::Endpoint> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(BoundByNoise(provider)))
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
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
    anyhow::ensure!(
        len <= MAX_FRAME,
        "frame of {len} bytes from the coordinator"
    );
    let mut buf = vec![0u8; len];
    recv.read_exact(&mut buf).await?;
    Ok(buf)
}
