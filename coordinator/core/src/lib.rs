//! The coordinator's state, free of I/O: networks, memberships, invites, node names, overlay
//! address leases, join rate limits, the relay and the STUN answer.
//!
//! Nothing here reads a clock or the OS RNG: every operation takes the time (`now`, unix
//! seconds, for anything persisted; `now_ms` for the rate limiter) and password salts and invite
//! secrets come from the caller. [`registry::Registry`] returns the [`records::Change`]s each
//! operation made; the shell persists them (SQLite, in `warren-coordinator`) and uses them to
//! decide which peer maps to push. [`registry::Registry::snapshot`] and
//! [`registry::Registry::from_snapshot`] move the whole state in and out of the store.

// The library may not read the clock, open sockets or start threads (clippy.toml); its
// unit tests may.
#![cfg_attr(test, allow(clippy::disallowed_methods, clippy::disallowed_types))]

pub mod candidates;
pub mod invite;
pub mod lease;
pub mod name;
pub mod outbox;
pub mod password;
pub mod ratelimit;
pub mod reachable;
pub mod records;
pub mod registry;
pub mod relay;
pub mod seen_sources;
pub mod stun_answer;

#[cfg(test)]
mod testutil;

pub use invite::{InviteProblem, SecretHash};
pub use lease::{ClaimRefused, Lease, LeaseError, LeasePool, LEASE_TTL, NO_NETWORK_LEASE_TTL};
pub use password::{HashParams, DEFAULT_HASH_PARAMS};
pub use ratelimit::{
    AttemptRefused, ClashLimiter, JoinLimiter, NewKeyLimiter, PasswordLimiter, RateLimitConfig,
    RateLimited, CLASH_INTERVAL,
};
pub use records::{
    BanRecord, Change, InviteRecord, JoinRequestRecord, LeaseRecord, Membership, NetworkRecord,
    NodeRecord, RouteRecord, Snapshot,
};
pub use registry::{
    ClashDropped, InviteGrant, PeerInfo, Registry, RegistryConfig, RegistryError, SnapshotError,
};
pub use relay::{Relay, RelayConfig, RelayCounters, Transmit};
