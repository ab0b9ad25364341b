//! Node public keys as users see them: standard base64, as in WireGuard configs.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::fmt;
use std::str::FromStr;

/// A node's x25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeKey(pub [u8; 32]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyParseError {
    #[error("not valid base64")]
    Base64,
    #[error("a key is 32 bytes, this one has {0}")]
    Length(usize),
}

/// Decodes a base64 string of exactly 32 bytes; used for public and private keys alike.
pub fn decode_key32(s: &str) -> Result<[u8; 32], KeyParseError> {
    let bytes = STANDARD
        .decode(s.trim())
        .map_err(|_| KeyParseError::Base64)?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| KeyParseError::Length(bytes.len()))
}

/// The public key of a static x25519 secret: the same clamped x25519 WireGuard uses, so a
/// node's WireGuard key is also its identity toward the coordinator and for path messages.
pub fn public_key(secret: &[u8; 32]) -> NodeKey {
    use x25519_dalek::{PublicKey, StaticSecret};
    NodeKey(*PublicKey::from(&StaticSecret::from(*secret)).as_bytes())
}

pub fn encode_key32(key: &[u8; 32]) -> String {
    STANDARD.encode(key)
}

impl fmt::Display for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&encode_key32(&self.0))
    }
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Short form keeps logs readable; public keys are not secret.
        write!(f, "NodeKey({}…)", &self.to_string()[..8])
    }
}

impl FromStr for NodeKey {
    type Err = KeyParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        decode_key32(s).map(NodeKey)
    }
}

impl serde::Serialize for NodeKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for NodeKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let k = NodeKey([7u8; 32]);
        let s = k.to_string();
        assert_eq!(s.parse::<NodeKey>(), Ok(k));
        assert_eq!(format!(" {s}\n").parse::<NodeKey>(), Ok(k));
        assert_eq!("!!".parse::<NodeKey>(), Err(KeyParseError::Base64));
        assert_eq!("AAAA".parse::<NodeKey>(), Err(KeyParseError::Length(3)));
        let json = serde_json::to_string(&k).unwrap();
        assert_eq!(serde_json::from_str::<NodeKey>(&json).unwrap(), k);
    }
}
