//! The daemon's side of its coordinators, free of I/O.
//!
//! A host can be in networks of several coordinators at once (friends who each host one on
//! their PC). Each coordinator gets a [`client::Client`]: the requests in flight and their
//! replies, the networks it says this host is in, the peers it brings, and when to connect
//! again. [`peer_map::PeerMap`] merges the peers of all coordinators into what the data plane
//! routes, and finds overlay-address clashes between them; [`address::OwnAddress`] is the one
//! overlay IPv4 address this host claims from every coordinator, and moves it when it clashes.
//!
//! The shell (`warrend`'s `control` module) owns the connections: it feeds frames, connection
//! outcomes and time in, and carries out what `poll_transmit` and `poll_event` give back.

pub mod address;
pub mod answer;
pub mod apply;
pub mod client;
pub mod peer_map;

pub use address::OwnAddress;
pub use answer::Answer;
pub use client::{Client, Event};
pub use peer_map::{Clash, PeerChange, PeerMap};
