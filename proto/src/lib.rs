//! Warren's wire formats and local API types.
//!
//! Everything here is pure data and codecs: no sockets, no async runtime, so the daemon core,
//! the CLI and the GUI can all share it. Two features add I/O for the shells only: `io` (the
//! control channel's async I/O, for the daemon and the coordinator) and `client` (the local
//! API's blocking client, [`api::client`], for the CLI and the GUI).

// The library may not read the clock, open sockets or start threads (clippy.toml); its
// unit tests may.
#![cfg_attr(test, allow(clippy::disallowed_methods, clippy::disallowed_types))]

pub mod api;
pub mod control;
pub mod datagram;
pub mod disco;
#[cfg(any(test, feature = "docs"))]
pub mod docs;
#[cfg(feature = "io")]
pub mod fdlimit;
pub mod invite;
pub mod key;
pub mod keyfile;
pub mod mac;
pub mod name;
pub mod overlay;
pub mod relay;
pub mod relay_ticket;
#[cfg(feature = "io")]
pub mod socket_buffers;
pub mod tx_batch;
#[cfg(windows)]
pub mod win_acl;
