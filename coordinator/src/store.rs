//! Where the coordinator remembers its state: a [`Storage`], SQLite in the state directory by
//! default ([`SqliteStore`]) or a PostgreSQL database given with `--database` ([`PgStore`]).
//!
//! The registry (`warren-coordinator-core`) is the truth while the process runs; the store only
//! remembers it. On start the shell opens one, calls [`Storage::load`] and
//! `Registry::from_snapshot`; after every registry operation it hands the returned changes to
//! [`Storage::apply`], which writes them in one transaction, before it answers the client. When
//! the write fails the shell reloads the registry from the store, so memory never holds what was
//! not stored.
//!
//! Both stores keep the same tables with the same meanings: `nodes`, `leases`, `networks`,
//! `memberships`, `invites`, `bans`, `join_requests` (one row per record of
//! `warren_coordinator_core::records`), and `schema_version` (one row). Keys are stored as their
//! base64 text, invite secret hashes as hex, addresses as dotted quads, times as Unix seconds;
//! an invite that lasts until revoked stores `expires` as the largest 64-bit integer.

use std::net::Ipv4Addr;

use warren_coordinator_core::invite::NEVER;
use warren_coordinator_core::records::{Change, Snapshot};
use warren_coordinator_core::SecretHash;
use warren_proto::key::NodeKey;

mod postgres;
mod sqlite;

pub(crate) use self::postgres::parse_url;
pub use self::postgres::PgStore;
pub use self::sqlite::SqliteStore;

// The lab's PostgreSQL is a Unix program started as a Unix user: the Windows build (tested
// under Wine) runs the SQLite half of the store tests only.
#[cfg(all(test, unix))]
pub use warren_lab::pg as test_pg;
#[cfg(test)]
pub mod tests;

/// The schema this build writes; older ones are migrated when a store opens them.
pub const SCHEMA_VERSION: i64 = 1;

/// The tables whose rows name a network (by a foreign key on `network`).
const CHILD_TABLES: [&str; 5] = ["memberships", "invites", "bans", "join_requests", "routes"];

/// One place the coordinator's state is kept. `Send`: the hub that owns it moves between the
/// runtime's threads (under its mutex).
pub trait Storage: Send {
    /// The whole stored state, in the canonical order of [`Snapshot::normalize`].
    fn load(&self) -> Result<Snapshot, StoreError>;
    /// Writes `changes` in order, all or nothing.
    fn apply(&mut self, changes: &[Change]) -> Result<(), StoreError>;
    /// Where the state is, for logs and errors (never a password).
    fn describe(&self) -> String;
    /// From now on every write fails, refused by the database itself, or works again: for
    /// tests of what the coordinator does when the database refuses a change.
    #[cfg(test)]
    fn fail_writes(&self, fail: bool);
}

impl<S: Storage + 'static> From<S> for Box<dyn Storage> {
    fn from(store: S) -> Self {
        Box::new(store)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use the state directory {path}: {source}")]
    Dir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{place} is not a usable Warren coordinator database ({reason}); it was left untouched: \
         {next}"
    )]
    Unusable {
        place: String,
        reason: String,
        /// What a person does about it, which depends on the kind of store.
        next: &'static str,
    },
    #[error(
        "{place} has schema version {found} but this warren-coordinator knows only up to \
         {SCHEMA_VERSION}: it was written by a newer version; run that version, or a newer one"
    )]
    NewerSchema { place: String, found: i64 },
    #[error("{path}: {source}")]
    Sqlite {
        path: std::path::PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "cannot connect to {place}: {detail}; check that PostgreSQL runs there, that the \
         database exists (createdb -O USER NAME) and that the user and password in --database \
         are right"
    )]
    PgConnect { place: String, detail: String },
    #[error("{place}: {detail}")]
    Postgres { place: String, detail: String },
    #[error("--database: {reason}")]
    BadUrl { reason: String },
    #[error(
        "the connection to {place} stopped working inside warren-coordinator; restart \
         warren-coordinator"
    )]
    PgWorkerGone { place: String },
}

/// Stored text and integers back into record fields, the same way in every store: a value
/// that does not read makes the store unusable, with an error naming it.
struct Decode<'a> {
    place: &'a str,
    next: &'static str,
}

impl Decode<'_> {
    fn bad(&self, what: &str, value: &dyn std::fmt::Debug) -> StoreError {
        StoreError::Unusable {
            place: self.place.to_owned(),
            reason: format!("bad {what} {value:?}"),
            next: self.next,
        }
    }

    fn key(&self, s: String) -> Result<NodeKey, StoreError> {
        s.parse().map_err(|_| self.bad("node key", &s))
    }

    fn time(&self, t: i64) -> Result<u64, StoreError> {
        u64::try_from(t).map_err(|_| self.bad("timestamp", &t))
    }

    /// An invite's expiry: the largest integer stands for "until revoked".
    fn expires(&self, t: i64) -> Result<u64, StoreError> {
        if t == i64::MAX {
            Ok(NEVER)
        } else {
            self.time(t)
        }
    }

    fn addr(&self, s: String) -> Result<Ipv4Addr, StoreError> {
        s.parse().map_err(|_| self.bad("lease address", &s))
    }

    fn hash(&self, s: String) -> Result<SecretHash, StoreError> {
        SecretHash::from_hex(&s).ok_or_else(|| self.bad("invite hash", &s))
    }
}

/// Unix seconds as 64-bit SQL integers; nothing real comes near i64::MAX, so clamping is
/// harmless (and it is how "never" is stored).
fn to_sql_time(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}
