//! Direct paths to peers: candidate addresses, probing and the choice of path, free of I/O.
//!
//! The coordinator tells two peers about each other at the same time ("call me maybe"); each
//! side's [`PeerPaths`] then pings every candidate address of the other from the daemon's one
//! UDP socket, so the pings of both sides open their NATs for each other (hole punching). A
//! pong proves a path; [`select`] ranks the proven ones (same LAN first, then lowest RTT, with
//! hysteresis), and the winner becomes the peer's WireGuard endpoint. Keepalive pings hold the
//! chosen path's NAT mappings open; a path that stops answering is dropped and probing starts
//! again. The messages themselves (sealed pings and pongs) are `warren_proto::disco`.

pub mod birthday;
pub mod candidate;
pub mod peer_paths;
pub mod select;

pub use candidate::{Candidate, CandidateKind};
pub use peer_paths::{BestPath, PathConfig, PathCounters, PathInfo, PeerPaths, MAX_PATHS};
pub use select::{Liveness, PathStats};
