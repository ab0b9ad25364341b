//! The coordinator's state in a PostgreSQL database (`--database postgres://…`), for
//! deployments that outgrow one machine's SQLite file.
//!
//! - The same tables, columns and meanings as [`super::SqliteStore`] (`locked` is a boolean
//!   here), created on first use in the connection's current schema (normally `public`), in one
//!   transaction under an advisory lock so two coordinators starting at once do not race.
//! - A database with other tables and no `schema_version`, or one from a newer schema, is
//!   refused with an error naming it, and nothing is written to it.
//! - One transaction per [`Storage::apply`]; [`Storage::load`] reads in one read-only
//!   repeatable-read transaction, so it sees one consistent state.
//! - The connection is plain (no TLS): a local socket, or a network the operator trusts. The
//!   database holds password hashes, as the SQLite file does: give it to the coordinator's
//!   role alone.
//! - Every write waits for PostgreSQL under the hub's lock, as SQLite's waits for the disk: a
//!   slow or distant database slows every control message.
//! - A broken connection is opened again on the next call: the call that found it broken fails
//!   (and the hub reloads, which reconnects), the coordinator keeps running.
//!
//! Why a thread of its own: the hub calls the store synchronously, under its mutex, from tasks
//! of the tokio runtime. The `postgres` crate's blocking client runs its own small runtime and
//! panics when called from inside another one, and `tokio::task::block_in_place` works only on
//! a multi-thread runtime (not in `#[tokio::test]`'s default one, nor outside any runtime). So
//! one plain thread owns the client, and [`PgStore`] sends it jobs and waits for each answer,
//! which keeps the store's API synchronous, as the SQLite store's is, in every context.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::mpsc;
use std::time::Duration;

use postgres::config::{Host, SslMode};
use postgres::types::ToSql;
use postgres::{Client, Config, IsolationLevel, NoTls, Statement, Transaction};
use warren_coordinator_core::records::{
    BanRecord, Change, InviteRecord, JoinRequestRecord, LeaseRecord, Membership, NetworkRecord,
    NodeRecord, RouteRecord, Snapshot,
};

use super::{to_sql_time, Decode, Storage, StoreError, CHILD_TABLES, SCHEMA_VERSION};

/// The whole schema; every statement may run again on an existing database.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    key        TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
    node       TEXT PRIMARY KEY NOT NULL REFERENCES nodes(key),
    addr       TEXT NOT NULL UNIQUE,
    renewed_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS networks (
    name          TEXT PRIMARY KEY NOT NULL,
    password_hash TEXT NOT NULL,
    owner         TEXT NOT NULL REFERENCES nodes(key),
    created_at    BIGINT NOT NULL,
    locked        BOOLEAN NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS memberships (
    network   TEXT NOT NULL REFERENCES networks(name),
    node      TEXT NOT NULL REFERENCES nodes(key),
    joined_at BIGINT NOT NULL,
    PRIMARY KEY (network, node)
);
CREATE INDEX IF NOT EXISTS memberships_by_node ON memberships(node);
CREATE TABLE IF NOT EXISTS invites (
    hash       TEXT PRIMARY KEY NOT NULL,
    network    TEXT NOT NULL REFERENCES networks(name),
    created_by TEXT NOT NULL REFERENCES nodes(key),
    created_at BIGINT NOT NULL,
    expires    BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS bans (
    network   TEXT NOT NULL REFERENCES networks(name),
    node      TEXT NOT NULL REFERENCES nodes(key),
    banned_at BIGINT NOT NULL,
    PRIMARY KEY (network, node)
);
CREATE TABLE IF NOT EXISTS join_requests (
    network  TEXT NOT NULL REFERENCES networks(name),
    node     TEXT NOT NULL REFERENCES nodes(key),
    asked_at BIGINT NOT NULL,
    PRIMARY KEY (network, node)
);
CREATE TABLE IF NOT EXISTS routes (
    network TEXT NOT NULL REFERENCES networks(name),
    node    TEXT NOT NULL REFERENCES nodes(key),
    prefix  TEXT NOT NULL,
    PRIMARY KEY (network, node, prefix)
);
";

/// The advisory lock key under which the schema is checked and created ("WARREN").
const SCHEMA_LOCK: i64 = 0x5741_5252_454e;

/// A host that does not answer is given up on after this long, instead of hanging the start.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a person does about a database this store refuses.
const UNUSABLE_NEXT: &str = "give --database an empty database of its own (createdb -O USER \
                             NAME), or restore a backup of the coordinator's into this one";

const URL_FORM: &str = "it wants postgres://USER:PASSWORD@HOST[:PORT]/DATABASE, or for the \
                        local socket postgres://USER@%2Fvar%2Frun%2Fpostgresql/DATABASE; without \
                        --database the state is kept in SQLite in --state-dir";

/// The store's side of the connection thread: jobs go in, each waits for its own answer.
pub struct PgStore {
    place: String,
    jobs: mpsc::Sender<Job>,
}

type Job = Box<dyn FnOnce(&mut Conn) + Send>;

/// Owned by the connection thread.
struct Conn {
    config: Config,
    place: String,
    client: Option<Client>,
    /// Prepared once per connection: each write is then one round trip, not two.
    statements: HashMap<String, Statement>,
}

/// The error's whole chain: `postgres::Error` alone says only "db error".
fn chain_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Checks a `--database` URL without connecting. Errors never repeat the URL (it may hold a
/// password).
pub fn parse_url(url: &str) -> Result<Config, StoreError> {
    let bad = |reason: String| StoreError::BadUrl {
        reason: format!("{reason}; {URL_FORM}"),
    };
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(bad(
            "it does not start with postgres:// (only PostgreSQL is supported)".into(),
        ));
    }
    let mut config: Config = url
        .parse()
        .map_err(|e| bad(format!("it cannot be read ({})", chain_text(&e))))?;
    if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
        return Err(bad("it names no host".into()));
    }
    if config.get_ssl_mode() == SslMode::Require {
        return Err(bad(
            "it asks for TLS (sslmode=require), which warren-coordinator does not support yet: \
             use a local socket or a trusted network"
                .into(),
        ));
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("warren-coordinator");
    }
    // "relation … already exists, skipping" on every start is not news.
    config.notice_callback(|n| tracing::debug!("postgresql: {}: {}", n.severity(), n.message()));
    Ok(config)
}

/// "PostgreSQL database warren at db.example:5432 as warren": never the password.
fn describe(config: &Config) -> String {
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let at = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => format!("{h}:{port}"),
        // The postgres crate has Unix-socket hosts only on Unix.
        #[cfg(unix)]
        Some(Host::Unix(dir)) => format!("{}/.s.PGSQL.{port}", dir.display()),
        None => match config.get_hostaddrs().first() {
            Some(a) => format!("{a}:{port}"),
            None => "?".into(),
        },
    };
    let user = config.get_user().unwrap_or("(this system user)");
    let db = config.get_dbname().unwrap_or(user);
    format!("PostgreSQL database {db} at {at} as {user}")
}

impl PgStore {
    /// Connects to the database at `url`, then checks its schema, creating it in an empty
    /// database.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let config = parse_url(url)?;
        let place = describe(&config);
        let (jobs, inbox) = mpsc::channel::<Job>();
        let mut conn = Conn {
            config,
            place: place.clone(),
            client: None,
            statements: HashMap::new(),
        };
        std::thread::Builder::new()
            .name("warren-postgres".into())
            // Ends when the store is dropped (the sender goes, and with it the loop).
            .spawn(move || inbox.into_iter().for_each(|job| job(&mut conn)))
            .map_err(|_| StoreError::PgWorkerGone {
                place: place.clone(),
            })?;
        let store = Self { place, jobs };
        store.call(|c| c.open())?;
        Ok(store)
    }

    /// Runs `f` on the connection thread and waits for its answer.
    fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let gone = || StoreError::PgWorkerGone {
            place: self.place.clone(),
        };
        let (reply, answer) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |c| {
            let _ = reply.send(f(c));
        });
        self.jobs.send(job).map_err(|_| gone())?;
        // A job that panicked dropped its reply sender: the thread is gone with it.
        answer.recv().map_err(|_| gone())?
    }
}

impl Storage for PgStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        self.call(|c| c.load())
    }

    fn apply(&mut self, changes: &[Change]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let changes = changes.to_vec();
        self.call(move |c| c.apply(&changes))
    }

    fn describe(&self) -> String {
        self.place.clone()
    }

    /// The session's transactions become read-only: PostgreSQL itself refuses the writes.
    #[cfg(test)]
    fn fail_writes(&self, fail: bool) {
        let sql = if fail {
            "SET default_transaction_read_only = on"
        } else {
            "SET default_transaction_read_only = off"
        };
        self.call(move |c| {
            let place = c.place.clone();
            c.client()?
                .batch_execute(sql)
                .map_err(|e| pg_error(&place, e))
        })
        .expect("default_transaction_read_only");
    }
}

fn unusable(place: &str, reason: impl Into<String>) -> StoreError {
    StoreError::Unusable {
        place: place.to_owned(),
        reason: reason.into(),
        next: UNUSABLE_NEXT,
    }
}

/// Whether the connection is done for after `e` (cut, reset, or ended by the server), as
/// opposed to a refused statement, after which it is still good.
fn is_broken(e: &postgres::Error) -> bool {
    use postgres::error::Severity;
    use std::error::Error as _;
    if e.is_closed() {
        return true;
    }
    match e.as_db_error() {
        Some(db) => matches!(
            db.parsed_severity(),
            Some(Severity::Fatal | Severity::Panic)
        ),
        None => e.source().is_some_and(|s| s.is::<std::io::Error>()),
    }
}

/// [`pg_error`], noting in `broken` whether the connection is done for.
fn noted(place: &str, broken: &Cell<bool>, e: postgres::Error) -> StoreError {
    if is_broken(&e) {
        broken.set(true);
    }
    pg_error(place, e)
}

fn pg_error(place: &str, e: postgres::Error) -> StoreError {
    StoreError::Postgres {
        place: place.to_owned(),
        detail: chain_text(&e),
    }
}

impl Conn {
    /// The client, connecting (again) if there is none or it broke.
    fn client(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            let again = self.client.take().is_some();
            self.statements.clear();
            let client = self
                .config
                .connect(NoTls)
                .map_err(|e| StoreError::PgConnect {
                    place: self.place.clone(),
                    detail: chain_text(&e),
                })?;
            if again {
                tracing::info!("connected to {} again", self.place);
            }
            self.client = Some(client);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    /// Checks the schema, creating it in an empty database; refuses (writing nothing) a
    /// database that is not ours or is from a newer version.
    fn open(&mut self) -> Result<(), StoreError> {
        let place = self.place.clone();
        let e = |e| pg_error(&place, e);
        let mut tx = self.client()?.transaction().map_err(e)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .map_err(e)?;
        let tables: Vec<String> = tx
            .query(
                "SELECT table_name::text FROM information_schema.tables
                 WHERE table_schema = current_schema() ORDER BY 1",
                &[],
            )
            .map_err(e)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        // Refusals return before anything is written; dropping `tx` rolls it back.
        if !tables.is_empty() {
            if !tables.iter().any(|t| t == "schema_version") {
                return Err(unusable(
                    &place,
                    format!(
                        "it has tables ({}) but no schema_version",
                        tables.join(", ")
                    ),
                ));
            }
            let version = tx
                .query("SELECT version FROM schema_version", &[])
                .ok()
                .and_then(|rows| rows.first().and_then(|r| r.try_get::<_, i64>(0).ok()));
            match version {
                Some(found) if found > SCHEMA_VERSION => {
                    return Err(StoreError::NewerSchema {
                        place: place.clone(),
                        found,
                    })
                }
                Some(v) if v >= 1 => {}
                _ => return Err(unusable(&place, "its schema_version is missing or invalid")),
            }
        }
        // Tables added in later versions appear here too, as `CREATE TABLE IF NOT EXISTS`.
        tx.batch_execute(SCHEMA).map_err(e)?;
        if tables.is_empty() {
            tx.execute(
                "INSERT INTO schema_version (version) VALUES ($1)",
                &[&SCHEMA_VERSION],
            )
            .map_err(e)?;
        }
        tx.commit().map_err(e)
    }

    /// Reading is safe to repeat: a connection found broken is opened again and the read
    /// retried once (the hub reads right after a write that failed for that reason).
    fn load(&mut self) -> Result<Snapshot, StoreError> {
        let broken = Cell::new(false);
        let first = self.load_once(&broken);
        if first.is_ok() || !broken.get() {
            return first;
        }
        self.client = None;
        let broken = Cell::new(false);
        let second = self.load_once(&broken);
        if broken.get() {
            self.client = None;
        }
        second
    }

    fn load_once(&mut self, broken: &Cell<bool>) -> Result<Snapshot, StoreError> {
        let place = self.place.clone();
        let e = |e| noted(&place, broken, e);
        let d = Decode {
            place: &place,
            next: UNUSABLE_NEXT,
        };
        let mut snap = Snapshot::default();
        let client = self.client()?;
        // Every table as of one moment, whoever else writes meanwhile.
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(e)?;
        let mut rows = |sql: &str| tx.query(sql, &[]).map_err(e);

        for r in rows("SELECT key, name, created_at FROM nodes")? {
            snap.nodes.push(NodeRecord {
                key: d.key(r.get(0))?,
                name: r.get(1),
                created_at: d.time(r.get(2))?,
            });
        }
        for r in rows("SELECT node, addr, renewed_at FROM leases")? {
            snap.leases.push(LeaseRecord {
                node: d.key(r.get(0))?,
                addr: d.addr(r.get(1))?,
                renewed_at: d.time(r.get(2))?,
            });
        }
        for r in rows("SELECT name, password_hash, owner, created_at, locked FROM networks")? {
            snap.networks.push(NetworkRecord {
                name: r.get(0),
                password_hash: r.get(1),
                owner: d.key(r.get(2))?,
                created_at: d.time(r.get(3))?,
                locked: r.get(4),
            });
        }
        for r in rows("SELECT network, node, joined_at FROM memberships")? {
            snap.memberships.push(Membership {
                network: r.get(0),
                node: d.key(r.get(1))?,
                joined_at: d.time(r.get(2))?,
            });
        }
        for r in rows("SELECT hash, network, created_by, created_at, expires FROM invites")? {
            snap.invites.push(InviteRecord {
                hash: d.hash(r.get(0))?,
                network: r.get(1),
                created_by: d.key(r.get(2))?,
                created_at: d.time(r.get(3))?,
                expires: d.expires(r.get(4))?,
            });
        }
        for r in rows("SELECT network, node, banned_at FROM bans")? {
            snap.bans.push(BanRecord {
                network: r.get(0),
                node: d.key(r.get(1))?,
                banned_at: d.time(r.get(2))?,
            });
        }
        for r in rows("SELECT network, node, prefix FROM routes")? {
            snap.routes.push(RouteRecord {
                network: r.get(0),
                node: d.key(r.get(1))?,
                prefix: r.get(2),
            });
        }
        for r in rows("SELECT network, node, asked_at FROM join_requests")? {
            snap.requests.push(JoinRequestRecord {
                network: r.get(0),
                node: d.key(r.get(1))?,
                asked_at: d.time(r.get(2))?,
            });
        }
        tx.commit().map_err(e)?;
        snap.normalize();
        Ok(snap)
    }

    fn apply(&mut self, changes: &[Change]) -> Result<(), StoreError> {
        let place = self.place.clone();
        self.client()?;
        let client = self.client.as_mut().expect("connected above");
        let statements = &mut self.statements;
        let result = (|| {
            let mut tx = client.transaction()?;
            for change in changes {
                apply_one(&mut tx, statements, change)?;
            }
            tx.commit()
        })();
        result.map_err(|e| {
            // Statements prepared in a failed transaction are not trusted to have survived.
            self.statements.clear();
            if is_broken(&e) {
                // The next call connects again. This one is not repeated: whether a commit
                // that lost its answer happened is unknown, and the hub reloads anyway.
                self.client = None;
            }
            pg_error(&place, e)
        })
    }
}

/// Runs `sql`, prepared once per connection.
fn run(
    tx: &mut Transaction<'_>,
    statements: &mut HashMap<String, Statement>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, postgres::Error> {
    let statement = match statements.get(sql) {
        Some(s) => s.clone(),
        None => {
            let s = tx.prepare(sql)?;
            statements.insert(sql.to_owned(), s.clone());
            s
        }
    };
    tx.execute(&statement, params)
}

fn apply_one(
    tx: &mut Transaction<'_>,
    st: &mut HashMap<String, Statement>,
    change: &Change,
) -> Result<u64, postgres::Error> {
    match change {
        Change::NodeSaved(n) => run(
            tx,
            st,
            "INSERT INTO nodes (key, name, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET name = excluded.name",
            &[&n.key.to_string(), &n.name, &to_sql_time(n.created_at)],
        ),
        Change::LeaseGranted(l) | Change::LeaseRenewed(l) => run(
            tx,
            st,
            "INSERT INTO leases (node, addr, renewed_at) VALUES ($1, $2, $3)
             ON CONFLICT (node) DO UPDATE
             SET addr = excluded.addr, renewed_at = excluded.renewed_at",
            &[
                &l.node.to_string(),
                &l.addr.to_string(),
                &to_sql_time(l.renewed_at),
            ],
        ),
        Change::LeaseReleased { node, addr } => run(
            tx,
            st,
            "DELETE FROM leases WHERE node = $1 AND addr = $2",
            &[&node.to_string(), &addr.to_string()],
        ),
        Change::NetworkCreated(n) => run(
            tx,
            st,
            "INSERT INTO networks (name, password_hash, owner, created_at)
             VALUES ($1, $2, $3, $4)",
            &[
                &n.name,
                &n.password_hash,
                &n.owner.to_string(),
                &to_sql_time(n.created_at),
            ],
        ),
        Change::MemberAdded(m) => run(
            tx,
            st,
            "INSERT INTO memberships (network, node, joined_at) VALUES ($1, $2, $3)",
            &[&m.network, &m.node.to_string(), &to_sql_time(m.joined_at)],
        ),
        Change::MemberRemoved { network, node } => {
            // Its approved routes go with the membership.
            run(
                tx,
                st,
                "DELETE FROM routes WHERE network = $1 AND node = $2",
                &[network, &node.to_string()],
            )?;
            run(
                tx,
                st,
                "DELETE FROM memberships WHERE network = $1 AND node = $2",
                &[network, &node.to_string()],
            )
        }
        Change::RouteApproved(r) => run(
            tx,
            st,
            "INSERT INTO routes (network, node, prefix) VALUES ($1, $2, $3)",
            &[&r.network, &r.node.to_string(), &r.prefix],
        ),
        Change::RouteRevoked(r) => run(
            tx,
            st,
            "DELETE FROM routes WHERE network = $1 AND node = $2 AND prefix = $3",
            &[&r.network, &r.node.to_string(), &r.prefix],
        ),
        Change::InviteCreated(i) => run(
            tx,
            st,
            "INSERT INTO invites (hash, network, created_by, created_at, expires)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &i.hash.to_hex(),
                &i.network,
                &i.created_by.to_string(),
                &to_sql_time(i.created_at),
                &to_sql_time(i.expires),
            ],
        ),
        Change::InviteRemoved { hash } => run(
            tx,
            st,
            "DELETE FROM invites WHERE hash = $1",
            &[&hash.to_hex()],
        ),
        Change::NetworkRenamed { from, to } => {
            // As in SQLite: the rows that name the network point at it by a foreign key, so
            // copy the network under its new name, move them, then drop the old row.
            run(
                tx,
                st,
                "INSERT INTO networks (name, password_hash, owner, created_at, locked)
                 SELECT $2::text, password_hash, owner, created_at, locked
                 FROM networks WHERE name = $1",
                &[from, to],
            )?;
            for table in CHILD_TABLES {
                run(
                    tx,
                    st,
                    &format!("UPDATE {table} SET network = $2 WHERE network = $1"),
                    &[from, to],
                )?;
            }
            run(tx, st, "DELETE FROM networks WHERE name = $1", &[from])
        }
        Change::PasswordChanged {
            network,
            password_hash,
        } => run(
            tx,
            st,
            "UPDATE networks SET password_hash = $2 WHERE name = $1",
            &[network, password_hash],
        ),
        Change::NetworkLocked { network, locked } => run(
            tx,
            st,
            "UPDATE networks SET locked = $2 WHERE name = $1",
            &[network, locked],
        ),
        Change::RequestAdded(r) => run(
            tx,
            st,
            "INSERT INTO join_requests (network, node, asked_at) VALUES ($1, $2, $3)",
            &[&r.network, &r.node.to_string(), &to_sql_time(r.asked_at)],
        ),
        Change::RequestRemoved { network, node } => run(
            tx,
            st,
            "DELETE FROM join_requests WHERE network = $1 AND node = $2",
            &[network, &node.to_string()],
        ),
        Change::Banned(b) => run(
            tx,
            st,
            "INSERT INTO bans (network, node, banned_at) VALUES ($1, $2, $3)",
            &[&b.network, &b.node.to_string(), &to_sql_time(b.banned_at)],
        ),
        Change::NetworkDeleted { network } => {
            for table in CHILD_TABLES {
                run(
                    tx,
                    st,
                    &format!("DELETE FROM {table} WHERE network = $1"),
                    &[network],
                )?;
            }
            run(tx, st, "DELETE FROM networks WHERE name = $1", &[network])
        }
    }
}

#[cfg(test)]
mod tests;
