//! Mutual authentication of daemon and coordinator: Noise IK over x25519 (snow).
//!
//! The daemon (initiator) knows the coordinator's public key in advance (pinned from
//! `warren up --coordinator-key` or an invite) and proves it holds its own node key in the first
//! message; the coordinator proves it holds the pinned key in the second. The prologue is the
//! QUIC connection's TLS exporter value: a relay that terminates TLS toward each side sees two
//! different exporters, so the handshake fails instead of being relayed. Nothing else is
//! accepted on the stream before both messages have verified.
//!
//! Pure: bytes in, bytes out. (snow draws the ephemeral keys from its own RNG.)

use crate::key::NodeKey;
use snow::{Builder, HandshakeState};
use thiserror::Error;

pub const NOISE_PARAMS: &str = "Noise_IK_25519_ChaChaPoly_BLAKE2s";
/// Label for the TLS exporter value that binds the handshake to its QUIC connection.
pub const EXPORTER_LABEL: &[u8] = b"warren control v1";
pub const BINDING_LEN: usize = 32;
const MAX_MSG: usize = 65535;

#[derive(Debug, Error)]
pub enum AuthError {
    #[error("the coordinator could not prove it holds the expected key (wrong --coordinator-key, or someone in between)")]
    CoordinatorNotAuthenticated,
    #[error("the node's handshake did not verify")]
    NodeNotAuthenticated,
    #[error("handshake message too large")]
    TooLarge,
    #[error("noise: {0}")]
    Noise(#[from] snow::Error),
}

fn builder<'a>(
    params: &'a snow::params::NoiseParams,
    local: &'a [u8; 32],
    binding: &'a [u8],
) -> Result<Builder<'a>, AuthError> {
    Ok(Builder::new(params.clone())
        .local_private_key(local)?
        .prologue(binding)?)
}

fn params() -> snow::params::NoiseParams {
    NOISE_PARAMS.parse().expect("valid noise params")
}

/// The daemon's side.
pub struct ClientHandshake {
    hs: HandshakeState,
}

impl ClientHandshake {
    /// Starts the handshake; returns the first message, which carries `payload` encrypted.
    pub fn start(
        node_secret: &[u8; 32],
        coordinator: &NodeKey,
        binding: &[u8],
        payload: &[u8],
    ) -> Result<(Self, Vec<u8>), AuthError> {
        let p = params();
        let mut hs = builder(&p, node_secret, binding)?
            .remote_public_key(&coordinator.0)?
            .build_initiator()?;
        let mut msg = vec![0u8; MAX_MSG];
        let n = hs.write_message(payload, &mut msg)?;
        msg.truncate(n);
        Ok((Self { hs }, msg))
    }

    /// Verifies the coordinator's answer; returns its payload.
    pub fn finish(mut self, reply: &[u8]) -> Result<Vec<u8>, AuthError> {
        let mut payload = vec![0u8; MAX_MSG];
        let n = self
            .hs
            .read_message(reply, &mut payload)
            .map_err(|_| AuthError::CoordinatorNotAuthenticated)?;
        if !self.hs.is_handshake_finished() {
            return Err(AuthError::CoordinatorNotAuthenticated);
        }
        payload.truncate(n);
        Ok(payload)
    }
}

/// What the coordinator learns from a node's first message.
pub struct ServerHandshake {
    hs: HandshakeState,
    /// The node's long-term key, proven by the message.
    pub node: NodeKey,
    /// The node's payload (its hello).
    pub payload: Vec<u8>,
}

impl ServerHandshake {
    pub fn accept(
        coordinator_secret: &[u8; 32],
        binding: &[u8],
        first: &[u8],
    ) -> Result<Self, AuthError> {
        if first.len() > MAX_MSG {
            return Err(AuthError::TooLarge);
        }
        let p = params();
        let mut hs = builder(&p, coordinator_secret, binding)?.build_responder()?;
        let mut payload = vec![0u8; MAX_MSG];
        let n = hs
            .read_message(first, &mut payload)
            .map_err(|_| AuthError::NodeNotAuthenticated)?;
        payload.truncate(n);
        let remote = hs
            .get_remote_static()
            .ok_or(AuthError::NodeNotAuthenticated)?;
        let node = NodeKey(
            remote
                .try_into()
                .map_err(|_| AuthError::NodeNotAuthenticated)?,
        );
        Ok(Self { hs, node, payload })
    }

    /// The second message, carrying the coordinator's `payload`; the node is authenticated.
    pub fn reply(mut self, payload: &[u8]) -> Result<Vec<u8>, AuthError> {
        let mut msg = vec![0u8; MAX_MSG];
        let n = self.hs.write_message(payload, &mut msg)?;
        msg.truncate(n);
        Ok(msg)
    }
}

pub use crate::key::public_key;

#[cfg(test)]
mod tests {
    use super::*;

    const NODE: [u8; 32] = [1; 32];
    const COORD: [u8; 32] = [2; 32];
    const BINDING: [u8; 32] = [9; 32];

    #[test]
    fn both_sides_authenticate_and_exchange_payloads() {
        let (c, m1) =
            ClientHandshake::start(&NODE, &public_key(&COORD), &BINDING, b"hello").unwrap();
        let s = ServerHandshake::accept(&COORD, &BINDING, &m1).unwrap();
        assert_eq!(s.node, public_key(&NODE));
        assert_eq!(s.payload, b"hello");
        let m2 = s.reply(b"welcome").unwrap();
        assert_eq!(c.finish(&m2).unwrap(), b"welcome");
    }

    #[test]
    fn a_wrong_pinned_key_is_refused() {
        // The client pins a key the server does not hold: the server cannot even read message 1.
        let (_, m1) =
            ClientHandshake::start(&NODE, &public_key(&[3; 32]), &BINDING, b"hi").unwrap();
        assert!(matches!(
            ServerHandshake::accept(&COORD, &BINDING, &m1),
            Err(AuthError::NodeNotAuthenticated)
        ));
    }

    #[test]
    fn an_impostor_coordinator_is_refused() {
        // An impostor that knows the real coordinator's *public* key still cannot answer.
        let (c, m1) = ClientHandshake::start(&NODE, &public_key(&COORD), &BINDING, b"hi").unwrap();
        let impostor = ServerHandshake::accept(&[4; 32], &BINDING, &m1);
        assert!(impostor.is_err());
        // A reply made for another handshake does not verify either.
        let (_, other) =
            ClientHandshake::start(&NODE, &public_key(&COORD), &BINDING, b"x").unwrap();
        let m2 = ServerHandshake::accept(&COORD, &BINDING, &other)
            .unwrap()
            .reply(b"w")
            .unwrap();
        assert!(matches!(
            c.finish(&m2),
            Err(AuthError::CoordinatorNotAuthenticated)
        ));
    }

    #[test]
    fn a_relay_between_two_tls_sessions_breaks_the_binding() {
        let (_, m1) = ClientHandshake::start(&NODE, &public_key(&COORD), &[5; 32], b"hi").unwrap();
        assert!(ServerHandshake::accept(&COORD, &[6; 32], &m1).is_err());
    }

    #[test]
    fn public_key_matches_wireguard_derivation() {
        // RFC 7748 §6.1 test vector (Alice).
        let secret: [u8; 32] = [
            0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d, 0x3c, 0x16, 0xc1, 0x72, 0x51, 0xb2,
            0x66, 0x45, 0xdf, 0x4c, 0x2f, 0x87, 0xeb, 0xc0, 0x99, 0x2a, 0xb1, 0x77, 0xfb, 0xa5,
            0x1d, 0xb9, 0x2c, 0x2a,
        ];
        let expect: [u8; 32] = [
            0x85, 0x20, 0xf0, 0x09, 0x89, 0x30, 0xa7, 0x54, 0x74, 0x8b, 0x7d, 0xdc, 0xb4, 0x3e,
            0xf7, 0x5a, 0x0d, 0xbf, 0x3a, 0x0d, 0x26, 0x38, 0x1a, 0xf4, 0xeb, 0xa4, 0xa9, 0x8e,
            0xaa, 0x9b, 0x4e, 0x6a,
        ];
        assert_eq!(public_key(&secret).0, expect);
    }
}
