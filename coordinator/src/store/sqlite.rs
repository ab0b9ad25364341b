//! The embedded default store: one SQLite file, `coordinator.db`, in the state directory.
//!
//! [`SqliteStore::apply`] writes each batch in one transaction before the client is answered
//! (so an acknowledged join survives a crash of the coordinator; with `synchronous=NORMAL` in
//! WAL mode a power loss may take back the last transactions before the next checkpoint).
//!
//! - Tables: `nodes`, `leases`, `networks`, `memberships`, `invites` (one row per record of
//!   `warren_coordinator_core::records`), and `schema_version` (one row). Keys are stored as
//!   their base64 text, invite secret hashes as hex and addresses as dotted quads, so
//!   `sqlite3 coordinator.db` is readable.
//! - Tables added later (`invites`; `bans` and `join_requests` for the owner's controls) are
//!   created with `CREATE TABLE IF NOT EXISTS` on every open, and columns added later
//!   (`networks.locked`, default 0) with `ALTER TABLE … ADD COLUMN` when missing; both keep the
//!   schema version: an older build simply ignores them, so moving back and forth between
//!   versions keeps working (an older build does not enforce a lock or a ban, and never
//!   renames or deletes a network).
//! - An invite that lasts until revoked stores `expires` as the largest SQLite integer.
//! - WAL journal, foreign keys on. The file is created mode 0600: it holds password hashes.
//! - A file that is not a SQLite database, a SQLite database that is not ours, a damaged one
//!   or one from a newer schema is refused with an error naming the file, and left untouched.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use super::{to_sql_time, Decode, Storage, StoreError, CHILD_TABLES, SCHEMA_VERSION};
use warren_coordinator_core::records::{
    BanRecord, Change, InviteRecord, JoinRequestRecord, LeaseRecord, Membership, NetworkRecord,
    NodeRecord, RouteRecord, Snapshot,
};

pub const DB_FILE: &str = "coordinator.db";

const SCHEMA_V1: &str = "
CREATE TABLE schema_version (version INTEGER NOT NULL) STRICT;
CREATE TABLE nodes (
    key        TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE TABLE leases (
    node       TEXT PRIMARY KEY NOT NULL REFERENCES nodes(key),
    addr       TEXT NOT NULL UNIQUE,
    renewed_at INTEGER NOT NULL
) STRICT;
CREATE TABLE networks (
    name          TEXT PRIMARY KEY NOT NULL,
    password_hash TEXT NOT NULL,
    owner         TEXT NOT NULL REFERENCES nodes(key),
    created_at    INTEGER NOT NULL
) STRICT;
CREATE TABLE memberships (
    network   TEXT NOT NULL REFERENCES networks(name),
    node      TEXT NOT NULL REFERENCES nodes(key),
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (network, node)
) STRICT;
CREATE INDEX memberships_by_node ON memberships(node);
";

/// Added after version 1 shipped; run on every open, so older databases gain it.
const SCHEMA_ADDITIONS: &str = "
CREATE TABLE IF NOT EXISTS invites (
    hash       TEXT PRIMARY KEY NOT NULL,
    network    TEXT NOT NULL REFERENCES networks(name),
    created_by TEXT NOT NULL REFERENCES nodes(key),
    created_at INTEGER NOT NULL,
    expires    INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS bans (
    network   TEXT NOT NULL REFERENCES networks(name),
    node      TEXT NOT NULL REFERENCES nodes(key),
    banned_at INTEGER NOT NULL,
    PRIMARY KEY (network, node)
) STRICT;
CREATE TABLE IF NOT EXISTS join_requests (
    network  TEXT NOT NULL REFERENCES networks(name),
    node     TEXT NOT NULL REFERENCES nodes(key),
    asked_at INTEGER NOT NULL,
    PRIMARY KEY (network, node)
) STRICT;
CREATE TABLE IF NOT EXISTS routes (
    network TEXT NOT NULL REFERENCES networks(name),
    node    TEXT NOT NULL REFERENCES nodes(key),
    prefix  TEXT NOT NULL,
    PRIMARY KEY (network, node, prefix)
) STRICT;
";

/// Columns added after version 1 shipped: (table, column, definition), added when missing.
const COLUMN_ADDITIONS: &[(&str, &str, &str)] =
    &[("networks", "locked", "INTEGER NOT NULL DEFAULT 0")];

/// What a person does about a file this store refuses.
const UNUSABLE_NEXT: &str =
    "move it away to start with an empty state, or put a backup in its place";

pub struct SqliteStore {
    path: PathBuf,
    conn: Connection,
}

impl SqliteStore {
    /// Opens (or creates) `dir/coordinator.db`, creating `dir` (mode 0700) if needed.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let dir_err = |source| StoreError::Dir {
            path: dir.to_owned(),
            source,
        };
        if !dir.exists() {
            create_private_dir(dir).map_err(dir_err)?;
        }
        let path = dir.join(DB_FILE);
        if !path.exists() {
            // An empty file is an empty SQLite database; creating it ourselves sets its mode
            // (SQLite gives the -wal and -shm files the same one).
            create_private_file(&path).map_err(dir_err)?;
        }
        let conn = Connection::open(&path).map_err(|source| StoreError::Sqlite {
            path: path.clone(),
            source,
        })?;
        let store = Self { path, conn };
        // Look before writing anything: everything up to here only read the file.
        let version = store.check_existing()?;
        if let Some(found) = version.filter(|v| *v > SCHEMA_VERSION) {
            return Err(StoreError::NewerSchema {
                place: store.path.display().to_string(),
                found,
            });
        }
        store.configure()?;
        if version.is_none() {
            store.create_schema()?;
        }
        store
            .conn
            .execute_batch(SCHEMA_ADDITIONS)
            .map_err(store.sql_err())?;
        store.add_columns()?;
        Ok(store)
    }

    fn add_columns(&self) -> Result<(), StoreError> {
        for (table, column, definition) in COLUMN_ADDITIONS {
            let present: bool = self
                .conn
                .query_row(
                    &format!("SELECT count(*) FROM pragma_table_info('{table}') WHERE name = ?1"),
                    [column],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(self.sql_err())?
                > 0;
            if !present {
                self.conn
                    .execute_batch(&format!(
                        "ALTER TABLE {table} ADD COLUMN {column} {definition}"
                    ))
                    .map_err(self.sql_err())?;
            }
        }
        Ok(())
    }

    fn sql_err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn unusable(&self, reason: impl Into<String>) -> StoreError {
        StoreError::Unusable {
            place: self.path.display().to_string(),
            reason: reason.into(),
            next: UNUSABLE_NEXT,
        }
    }

    /// `None` for an empty database, else the stored schema version. Reads only.
    fn check_existing(&self) -> Result<Option<i64>, StoreError> {
        // The first read of the header: a file that is not SQLite fails here.
        let tables: Vec<String> = self
            .conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .map_err(|e| self.unusable(e.to_string()))?;
        if tables.is_empty() {
            return Ok(None);
        }
        // Reads every page once: cheap at the coordinator's size, and it turns a damaged file
        // into a clear error now instead of lost rows later.
        let check: Vec<String> = self
            .conn
            .prepare("PRAGMA quick_check(5)")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .map_err(|e| self.unusable(e.to_string()))?;
        if check != ["ok"] {
            let problems: Vec<&str> = check
                .iter()
                .flat_map(|row| row.lines())
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("***"))
                .collect();
            return Err(self.unusable(format!("it is damaged: {}", problems.join("; "))));
        }
        if !tables.iter().any(|t| t == "schema_version") {
            return Err(self.unusable(format!(
                "it has tables ({}) but no schema_version",
                tables.join(", ")
            )));
        }
        let version: Option<i64> = self
            .conn
            .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
            .optional()
            .map_err(|e| self.unusable(e.to_string()))?;
        match version {
            Some(v) if v >= 1 => Ok(Some(v)),
            _ => Err(self.unusable("its schema_version is missing or invalid")),
        }
    }

    fn configure(&self) -> Result<(), StoreError> {
        let mode: String = self
            .conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(self.sql_err())?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(self.unusable(format!("cannot switch it to WAL (journal mode {mode})")));
        }
        self.conn
            .pragma_update(None, "foreign_keys", true)
            .map_err(self.sql_err())?;
        self.conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(self.sql_err())?;
        Ok(())
    }

    fn create_schema(&self) -> Result<(), StoreError> {
        let sql = format!(
            "BEGIN; {SCHEMA_V1} INSERT INTO schema_version (version) VALUES ({SCHEMA_VERSION}); COMMIT;"
        );
        self.conn.execute_batch(&sql).map_err(self.sql_err())
    }
}

impl Storage for SqliteStore {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn load(&self) -> Result<Snapshot, StoreError> {
        let place = self.path.display().to_string();
        let d = Decode {
            place: &place,
            next: UNUSABLE_NEXT,
        };
        let e = self.sql_err();
        let mut snap = Snapshot::default();

        let mut st = self
            .conn
            .prepare("SELECT key, name, created_at FROM nodes")
            .map_err(&e)?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)));
        for row in rows.map_err(&e)? {
            let (k, name, created_at): (String, String, i64) = row.map_err(&e)?;
            snap.nodes.push(NodeRecord {
                key: d.key(k)?,
                name,
                created_at: d.time(created_at)?,
            });
        }

        let mut st = self
            .conn
            .prepare("SELECT node, addr, renewed_at FROM leases")
            .map_err(&e)?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)));
        for row in rows.map_err(&e)? {
            let (node, addr, renewed_at): (String, String, i64) = row.map_err(&e)?;
            snap.leases.push(LeaseRecord {
                node: d.key(node)?,
                addr: d.addr(addr)?,
                renewed_at: d.time(renewed_at)?,
            });
        }

        let mut st = self
            .conn
            .prepare("SELECT name, password_hash, owner, created_at, locked FROM networks")
            .map_err(&e)?;
        let rows = st.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        });
        for row in rows.map_err(&e)? {
            let (name, password_hash, owner, created_at, locked): (
                String,
                String,
                String,
                i64,
                i64,
            ) = row.map_err(&e)?;
            snap.networks.push(NetworkRecord {
                name,
                password_hash,
                owner: d.key(owner)?,
                created_at: d.time(created_at)?,
                locked: locked != 0,
            });
        }

        let mut st = self
            .conn
            .prepare("SELECT network, node, joined_at FROM memberships")
            .map_err(&e)?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)));
        for row in rows.map_err(&e)? {
            let (network, node, joined_at): (String, String, i64) = row.map_err(&e)?;
            snap.memberships.push(Membership {
                network,
                node: d.key(node)?,
                joined_at: d.time(joined_at)?,
            });
        }

        let mut st = self
            .conn
            .prepare("SELECT hash, network, created_by, created_at, expires FROM invites")
            .map_err(&e)?;
        let rows = st.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        });
        for row in rows.map_err(&e)? {
            let (hash, network, created_by, created_at, expires): (
                String,
                String,
                String,
                i64,
                i64,
            ) = row.map_err(&e)?;
            snap.invites.push(InviteRecord {
                hash: d.hash(hash)?,
                network,
                created_by: d.key(created_by)?,
                created_at: d.time(created_at)?,
                expires: d.expires(expires)?,
            });
        }

        for (table, at) in [("bans", "banned_at"), ("join_requests", "asked_at")] {
            let mut st = self
                .conn
                .prepare(&format!("SELECT network, node, {at} FROM {table}"))
                .map_err(&e)?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)));
            for row in rows.map_err(&e)? {
                let (network, node, at): (String, String, i64) = row.map_err(&e)?;
                let (node, at) = (d.key(node)?, d.time(at)?);
                if table == "bans" {
                    snap.bans.push(BanRecord {
                        network,
                        node,
                        banned_at: at,
                    });
                } else {
                    snap.requests.push(JoinRequestRecord {
                        network,
                        node,
                        asked_at: at,
                    });
                }
            }
        }

        let mut st = self
            .conn
            .prepare("SELECT network, node, prefix FROM routes")
            .map_err(&e)?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)));
        for row in rows.map_err(&e)? {
            let (network, node, prefix): (String, String, String) = row.map_err(&e)?;
            snap.routes.push(RouteRecord {
                network,
                node: d.key(node)?,
                prefix,
            });
        }

        snap.normalize();
        Ok(snap)
    }

    /// As on a full disk: SQLite itself refuses the writes.
    #[cfg(test)]
    fn fail_writes(&self, fail: bool) {
        self.conn
            .pragma_update(None, "query_only", fail)
            .expect("query_only");
    }

    fn apply(&mut self, changes: &[Change]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let e = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(e)?;
        for change in changes {
            apply_one(&tx, change).map_err(e)?;
        }
        tx.commit().map_err(e)
    }
}

fn apply_one(tx: &rusqlite::Transaction<'_>, change: &Change) -> rusqlite::Result<()> {
    match change {
        Change::NodeSaved(n) => tx
            .prepare_cached(
                "INSERT INTO nodes (key, name, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET name = excluded.name",
            )?
            .execute(params![
                n.key.to_string(),
                n.name,
                to_sql_time(n.created_at)
            ]),
        Change::LeaseGranted(l) | Change::LeaseRenewed(l) => tx
            .prepare_cached(
                "INSERT INTO leases (node, addr, renewed_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (node) DO UPDATE
                 SET addr = excluded.addr, renewed_at = excluded.renewed_at",
            )?
            .execute(params![
                l.node.to_string(),
                l.addr.to_string(),
                to_sql_time(l.renewed_at)
            ]),
        Change::LeaseReleased { node, addr } => tx
            .prepare_cached("DELETE FROM leases WHERE node = ?1 AND addr = ?2")?
            .execute(params![node.to_string(), addr.to_string()]),
        Change::NetworkCreated(n) => tx
            .prepare_cached(
                "INSERT INTO networks (name, password_hash, owner, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                n.name,
                n.password_hash,
                n.owner.to_string(),
                to_sql_time(n.created_at)
            ]),
        Change::MemberAdded(m) => tx
            .prepare_cached(
                "INSERT INTO memberships (network, node, joined_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![
                m.network,
                m.node.to_string(),
                to_sql_time(m.joined_at)
            ]),
        Change::MemberRemoved { network, node } => {
            // Its approved routes go with the membership.
            tx.prepare_cached("DELETE FROM routes WHERE network = ?1 AND node = ?2")?
                .execute(params![network, node.to_string()])?;
            tx.prepare_cached("DELETE FROM memberships WHERE network = ?1 AND node = ?2")?
                .execute(params![network, node.to_string()])
        }
        Change::RouteApproved(r) => tx
            .prepare_cached("INSERT INTO routes (network, node, prefix) VALUES (?1, ?2, ?3)")?
            .execute(params![r.network, r.node.to_string(), r.prefix]),
        Change::RouteRevoked(r) => tx
            .prepare_cached("DELETE FROM routes WHERE network = ?1 AND node = ?2 AND prefix = ?3")?
            .execute(params![r.network, r.node.to_string(), r.prefix]),
        Change::InviteCreated(i) => tx
            .prepare_cached(
                "INSERT INTO invites (hash, network, created_by, created_at, expires)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                i.hash.to_hex(),
                i.network,
                i.created_by.to_string(),
                to_sql_time(i.created_at),
                to_sql_time(i.expires)
            ]),
        Change::InviteRemoved { hash } => tx
            .prepare_cached("DELETE FROM invites WHERE hash = ?1")?
            .execute(params![hash.to_hex()]),
        Change::NetworkRenamed { from, to } => {
            // The rows that name the network point at it by a foreign key: copy the network
            // under its new name, move them, then drop the old row.
            tx.prepare_cached(
                "INSERT INTO networks (name, password_hash, owner, created_at, locked)
                 SELECT ?2, password_hash, owner, created_at, locked FROM networks WHERE name = ?1",
            )?
            .execute(params![from, to])?;
            for table in CHILD_TABLES {
                tx.prepare_cached(&format!(
                    "UPDATE {table} SET network = ?2 WHERE network = ?1"
                ))?
                .execute(params![from, to])?;
            }
            tx.prepare_cached("DELETE FROM networks WHERE name = ?1")?
                .execute(params![from])
        }
        Change::PasswordChanged {
            network,
            password_hash,
        } => tx
            .prepare_cached("UPDATE networks SET password_hash = ?2 WHERE name = ?1")?
            .execute(params![network, password_hash]),
        Change::NetworkLocked { network, locked } => tx
            .prepare_cached("UPDATE networks SET locked = ?2 WHERE name = ?1")?
            .execute(params![network, i64::from(*locked)]),
        Change::RequestAdded(r) => tx
            .prepare_cached(
                "INSERT INTO join_requests (network, node, asked_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![
                r.network,
                r.node.to_string(),
                to_sql_time(r.asked_at)
            ]),
        Change::RequestRemoved { network, node } => tx
            .prepare_cached("DELETE FROM join_requests WHERE network = ?1 AND node = ?2")?
            .execute(params![network, node.to_string()]),
        Change::Banned(b) => tx
            .prepare_cached("INSERT INTO bans (network, node, banned_at) VALUES (?1, ?2, ?3)")?
            .execute(params![
                b.network,
                b.node.to_string(),
                to_sql_time(b.banned_at)
            ]),
        Change::NetworkDeleted { network } => {
            for table in CHILD_TABLES {
                tx.prepare_cached(&format!("DELETE FROM {table} WHERE network = ?1"))?
                    .execute(params![network])?;
            }
            tx.prepare_cached("DELETE FROM networks WHERE name = ?1")?
                .execute(params![network])
        }
    }
    .map(|_| ())
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

fn create_private_file(path: &Path) -> io::Result<()> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    match opts.open(path) {
        Ok(_) => Ok(()),
        // Someone else created it meanwhile: fine, SQLite will look at it.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests;
