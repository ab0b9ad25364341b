//! The control protocol between a daemon and the coordinator.
//!
//! Transport: one bidirectional QUIC stream (quinn) per daemon, carrying length-prefixed frames
//! ([`frame`]). The first two frames are a Noise IK handshake ([`auth`]) that authenticates both
//! ends with their long-term x25519 keys (the node's WireGuard key; the coordinator's pinned
//! key) and is bound to the QUIC connection's TLS exporter, so a man in the middle who
//! terminates TLS cannot relay it. After that, frames are JSON [`msg`] messages.
//!
//! Where UDP is blocked the same frames go over TCP+TLS instead, on the coordinator's control
//! port (same ALPN), bound to that TLS connection's exporter the same way; the stream also
//! carries the relay's datagrams ([`stream`]).

pub mod auth;
pub mod frame;
#[cfg(feature = "io")]
pub mod io;
pub mod msg;
pub mod stream;
#[cfg(feature = "io")]
pub mod tls;

/// ALPN of the control protocol on the coordinator's QUIC and TCP ports.
pub const ALPN: &[u8] = b"warren-control/1";
