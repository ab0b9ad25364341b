//! The daemon's protocol core, free of I/O.
//!
//! [`node::Node`] takes IP packets from the TUN side and datagrams from the UDP side, together
//! with the current time, and returns what to write where. The async shell in the `warrend`
//! crate owns the sockets and calls it. boringtun's `Tunn` is the one exception to "no clock
//! reads": it keeps its own timer clock, so the shell drives it with [`node::Node::handle_timeout`].

// The library may not read the clock, open sockets or start threads (clippy.toml); its
// unit tests may.
#![cfg_attr(test, allow(clippy::disallowed_methods, clippy::disallowed_types))]

pub mod buckets;
pub mod control;
pub mod counters;
pub mod ip;
pub mod lanes;
pub mod node;
pub mod path;
pub mod peer;
pub mod portmap;
pub mod relay_client;
pub mod route;
pub mod stun;
pub mod subnet;
pub mod tx_batch;
