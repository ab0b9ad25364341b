//! The control protocol between a daemon and the coordinator.
//!
//! Transport: one bidirectional QUIC stream (quinn) per daemon, carrying length-prefixed frames
//! ([`frame`]). The first two frames are a Noise IK handshake ([`auth`]) that authenticates both
//! ends with their long-term x25519 keys (the node's WireGuard key; the coordinator's pinned
//! key) and is bound to the QUIC connection's TLS exporter, so a man in the middle who
//! terminates TLS cannot relay it. After that, frames are JSON [`msg`] messages.

pub mod auth;
pub mod frame;
pub mod msg;

/// ALPN of the control protocol on the coordinator's QUIC port.
pub const ALPN: &[u8] = b"warren-control/1";
