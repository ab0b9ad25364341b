//! What every store does, each test run against both: SQLite in a temporary directory, and a
//! database of its own in a real PostgreSQL ([`super::test_pg`]). What only one of them does
//! (files, modes, old SQLite schemas; URLs, connections) is tested next to it.

#[cfg(unix)]
use super::test_pg;
use super::*;
use std::collections::HashMap;
use warren_coordinator_core::records::{Membership, NodeRecord};
use warren_coordinator_core::{HashParams, Registry, RegistryConfig, SecretHash};
use warren_proto::key::NodeKey;
use warren_proto::overlay::derive_v4;

pub const SALT: [u8; 16] = [3; 16];
pub const T0: u64 = 1_700_000_000;
pub const TTL: u64 = warren_coordinator_core::LEASE_TTL;

pub fn config() -> RegistryConfig {
    RegistryConfig {
        // Argon2's smallest costs keep the tests fast; production uses the crate defaults.
        hash_params: HashParams::new(HashParams::MIN_M_COST, 1, 1, None).unwrap(),
        ..Default::default()
    }
}

pub fn key(i: u32) -> NodeKey {
    let mut k = [0u8; 32];
    k[..4].copy_from_slice(&i.to_be_bytes());
    NodeKey(k)
}

/// Two keys with the same preferred overlay address.
pub fn colliding_pair() -> (NodeKey, NodeKey) {
    let mut seen = HashMap::new();
    (1000..)
        .map(key)
        .find_map(|k| seen.insert(derive_v4(&k), k).map(|first| (first, k)))
        .unwrap()
}

/// Runs a registry through every kind of change, persisting as it goes.
pub fn populate(store: &mut dyn Storage) -> Registry {
    let mut reg = Registry::new(config()).unwrap();
    let mut run = |changes: Vec<Change>| store.apply(&changes).unwrap();
    let (a, b, c, d) = (key(1), key(2), key(3), key(4));
    let (x, y) = colliding_pair();
    run(reg.register_node(a, "alice", None, T0).unwrap());
    run(reg.register_node(b, "bob", None, T0).unwrap());
    run(reg.register_node(c, "carol", None, T0).unwrap());
    run(reg.register_node(d, "dave", None, T0).unwrap());
    run(reg.register_node(x, "xavier", None, T0).unwrap());
    run(reg.create_network(a, "work", "pw1", &SALT, T0 + 1).unwrap());
    run(reg
        .create_network(a, "games", "pw2", &SALT, T0 + 2)
        .unwrap());
    run(reg
        .create_network(d, "alone", "pw3", &SALT, T0 + 3)
        .unwrap());
    run(reg.join_network(b, "work", "pw1", T0 + 4).unwrap());
    run(reg.join_network(c, "games", "pw2", T0 + 5).unwrap());
    run(reg.join_network(x, "games", "pw2", T0 + 5).unwrap());
    run(reg.register_node(b, "bobby", None, T0 + 6).unwrap()); // rename
    run(reg.leave_network(b, "work").unwrap());
    run(reg.join_network(b, "work", "pw1", T0 + 7).unwrap());
    run(reg.leave_network(d, "alone").unwrap()); // an empty network stays
    run(reg
        .create_invite(a, "work", &[1; 16], 100, T0 + 8)
        .unwrap()
        .1);
    // x stays away past the TTL; y takes its address over; x returns with a new one.
    let late = T0 + TTL + 10;
    for k in [a, b, c, d] {
        run(reg.renew_lease(k, late).unwrap());
    }
    let takeover = reg.register_node(y, "yvonne", None, late).unwrap();
    assert!(matches!(takeover[1], Change::LeaseReleased { .. }));
    run(takeover);
    run(reg.register_node(x, "xavier", None, late + 1).unwrap());
    // Prunes the expired "work" invite.
    let (_, changes) = reg.create_invite(a, "work", &[8; 16], 100, late).unwrap();
    assert!(matches!(changes[0], Change::InviteRemoved { .. }));
    run(changes);
    run(reg
        .create_invite(c, "games", &[2; 16], u64::MAX, late)
        .unwrap()
        .1);
    run(reg
        .join_invite(d, "games", &secret_text(2), late + 1)
        .unwrap());
    run(reg.logout(d).unwrap());
    // The owner's controls: a lock and a request, one approved; a deleted network with an
    // invite until revoked; a rename; a new password; a ban; an invite until revoked.
    let e = key(5);
    run(reg.register_node(e, "erin", None, late).unwrap());
    run(reg.set_locked(a, "games", true).unwrap());
    run(reg.join_network(d, "games", "pw2", late + 2).unwrap());
    run(reg.join_network(e, "games", "pw2", late + 2).unwrap());
    run(reg.answer_request(a, "games", e, true, late + 3).unwrap());
    run(reg
        .create_network(a, "temp", "pw4", &SALT, late + 2)
        .unwrap());
    run(reg.join_network(b, "temp", "pw4", late + 2).unwrap());
    // Approved routes: one kept through the rename, one that goes with its member's removal,
    // one with the deleted network, one taken back.
    run(reg
        .approve_route(a, "games", e, "192.168.7.0/24", true)
        .unwrap());
    run(reg
        .approve_route(a, "games", x, "10.9.0.0/16", true)
        .unwrap());
    run(reg
        .approve_route(a, "temp", b, "10.8.0.0/16", true)
        .unwrap());
    run(reg
        .approve_route(a, "games", e, "10.7.0.0/16", true)
        .unwrap());
    run(reg
        .approve_route(a, "games", e, "10.7.0.0/16", false)
        .unwrap());
    run(reg
        .create_invite(a, "temp", &[3; 16], 0, late + 2)
        .unwrap()
        .1);
    run(reg.delete_network(a, "temp").unwrap());
    run(reg.rename_network(a, "games", "party").unwrap());
    run(reg.set_password(a, "party", "pw5", &SALT).unwrap());
    run(reg.remove_member(a, "party", x, true, late + 3).unwrap());
    assert_eq!(
        reg.approved_routes("party"),
        vec![(e, "192.168.7.0/24".to_string())]
    );
    run(reg
        .create_invite(a, "work", &[4; 16], 0, late + 3)
        .unwrap()
        .1);
    reg
}

/// The control protocol's text form of an invite secret of 16 bytes `b`.
pub fn secret_text(b: u8) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([b; 16])
}

/// A store to test, reopened as a restart of the coordinator would, and reached behind its
/// back as someone else would.
pub trait Backend {
    fn open(&self) -> Result<Box<dyn Storage>, StoreError>;
    /// Runs SQL (statements separated by `;`) on a connection of its own.
    fn exec(&self, sql: &str);
    /// The first column of each row, as text.
    fn texts(&self, sql: &str) -> Vec<String>;
    /// The names of the tables there, sorted.
    fn tables(&self) -> Vec<String>;
}

pub struct Sqlite(pub tempfile::TempDir);

impl Sqlite {
    pub fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }

    fn conn(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.0.path().join(sqlite::DB_FILE)).unwrap()
    }
}

impl Backend for Sqlite {
    fn open(&self) -> Result<Box<dyn Storage>, StoreError> {
        Ok(Box::new(SqliteStore::open(self.0.path())?))
    }
    fn exec(&self, sql: &str) {
        self.conn().execute_batch(sql).unwrap();
    }
    fn texts(&self, sql: &str) -> Vec<String> {
        let conn = self.conn();
        let mut st = conn.prepare(sql).unwrap();
        let rows = st.query_map([], |r| r.get(0)).unwrap();
        rows.collect::<Result<_, _>>().unwrap()
    }
    fn tables(&self) -> Vec<String> {
        self.texts("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1")
    }
}

/// A database of its own in the test binary's PostgreSQL (a Unix one: see `test_pg`).
#[cfg(unix)]
pub struct Pg {
    db: String,
}

#[cfg(unix)]
impl Pg {
    pub fn new() -> Self {
        Self {
            db: test_pg::shared().new_database(),
        }
    }

    pub fn url(&self) -> String {
        test_pg::shared().url(&self.db)
    }

    pub fn client(&self) -> ::postgres::Client {
        test_pg::shared().client(&self.db).unwrap()
    }
}

#[cfg(unix)]
impl Backend for Pg {
    fn open(&self) -> Result<Box<dyn Storage>, StoreError> {
        Ok(Box::new(PgStore::connect(&self.url())?))
    }
    fn exec(&self, sql: &str) {
        self.client().batch_execute(sql).unwrap();
    }
    fn texts(&self, sql: &str) -> Vec<String> {
        let rows = self.client().query(sql, &[]).unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    }
    fn tables(&self) -> Vec<String> {
        self.texts(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() ORDER BY 1",
        )
    }
}

/// `both!(f)`: tests `f::sqlite` and `f::postgres`, each calling `f(&backend)`.
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(&super::Sqlite::new());
            }
            #[cfg(unix)]
            #[test]
            fn postgres() {
                super::$name(&super::Pg::new());
            }
        }
    )*};
}

both!(
    apply_reopen_load_round_trip,
    apply_is_all_or_nothing,
    refused_writes_change_nothing,
    someone_elses_database_is_refused,
    a_newer_schema_is_refused,
    a_damaged_invite_row_is_refused,
);

fn apply_reopen_load_round_trip(b: &dyn Backend) {
    let mut store = b.open().unwrap();
    assert_eq!(store.load().unwrap(), Snapshot::default());
    let reg = populate(store.as_mut());
    let want = reg.snapshot();
    assert_eq!(store.load().unwrap(), want);
    drop(store);

    // A restart of the coordinator.
    let store = b.open().unwrap();
    let loaded = store.load().unwrap();
    assert_eq!(loaded, want);
    let back = Registry::from_snapshot(config(), loaded.clone()).unwrap();
    let (x, y) = colliding_pair();
    for k in [key(1), key(2), key(3), key(4), x, y] {
        assert_eq!(back.peers_of(&k), reg.peers_of(&k), "peers of {k:?}");
        assert_eq!(back.lease_of(&k), reg.lease_of(&k), "lease of {k:?}");
    }
    assert_eq!(back.lease_of(&y).unwrap().addr, derive_v4(&x));
    assert_eq!(back.members_of("alone"), Some(vec![]));
    // The invites too: the unexpired ones, pruned ones gone, only hashes stored.
    let hashes: Vec<_> = loaded.invites.iter().map(|i| i.hash).collect();
    let mut want_hashes = vec![
        SecretHash::of(&[2; 16]),
        SecretHash::of(&[4; 16]),
        SecretHash::of(&[8; 16]),
    ];
    want_hashes.sort();
    assert_eq!(hashes, want_hashes);
    let mut stored = b.texts("SELECT hash FROM invites");
    stored.sort();
    let hex: Vec<String> = want_hashes.iter().map(SecretHash::to_hex).collect();
    assert_eq!(stored, hex);
    let mut back = back;
    let late = T0 + TTL + 20;
    back.register_node(key(5), "erin", None, late).unwrap();
    back.join_invite(key(5), "work", &secret_text(8), late)
        .unwrap();
    assert!(back
        .join_invite(key(5), "work", &secret_text(1), late)
        .is_err());
    assert_eq!(
        b.texts("SELECT CAST(version AS TEXT) FROM schema_version"),
        [SCHEMA_VERSION.to_string()]
    );
}

fn apply_is_all_or_nothing(b: &dyn Backend) {
    let mut store = b.open().unwrap();
    let node = NodeRecord {
        key: key(9),
        name: "nina".into(),
        created_at: T0,
    };
    let batch = [
        Change::NodeSaved(node.clone()),
        // Refused by the foreign key: no such network.
        Change::MemberAdded(Membership {
            network: "ghost".into(),
            node: key(9),
            joined_at: T0,
        }),
    ];
    let err = store.apply(&batch).unwrap_err();
    assert!(
        matches!(err, StoreError::Sqlite { .. } | StoreError::Postgres { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(&store.describe()), "{err}");
    assert_eq!(store.load().unwrap(), Snapshot::default());
    store.apply(&batch[..1]).unwrap();
    assert_eq!(store.load().unwrap().nodes, vec![node]);
}

/// The hook the hub's tests use: the database itself refuses, and nothing of it stays.
fn refused_writes_change_nothing(b: &dyn Backend) {
    let mut store = b.open().unwrap();
    let mut reg = Registry::new(config()).unwrap();
    store
        .apply(&reg.register_node(key(1), "alice", None, T0).unwrap())
        .unwrap();
    let before = store.load().unwrap();
    store.fail_writes(true);
    let create = reg.create_network(key(1), "lan", "pw", &SALT, T0).unwrap();
    assert!(store.apply(&create).is_err());
    assert_eq!(store.load().unwrap(), before);
    store.fail_writes(false);
    store.apply(&create).unwrap();
    assert_eq!(store.load().unwrap(), reg.snapshot());
}

fn someone_elses_database_is_refused(b: &dyn Backend) {
    b.exec("CREATE TABLE photos (id INTEGER); INSERT INTO photos VALUES (1)");
    let err = match b.open() {
        Ok(_) => panic!("someone else's database was accepted"),
        Err(e) => e,
    };
    assert!(matches!(err, StoreError::Unusable { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("photos") && msg.contains("left untouched"),
        "{msg}"
    );
    // Nothing was added or changed.
    assert_eq!(b.texts("SELECT CAST(id AS TEXT) FROM photos"), ["1"]);
    assert_eq!(b.tables(), ["photos"]);
}

fn a_newer_schema_is_refused(b: &dyn Backend) {
    let mut store = b.open().unwrap();
    let reg = populate(store.as_mut());
    let place = store.describe();
    drop(store);
    b.exec("UPDATE schema_version SET version = 2");
    let err = match b.open() {
        Ok(_) => panic!("a newer schema was accepted"),
        Err(e) => e,
    };
    assert!(
        matches!(err, StoreError::NewerSchema { found: 2, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("newer version") && msg.contains(&place),
        "{msg}"
    );
    // Left as it was: back at version 1 it opens with everything in it.
    b.exec("UPDATE schema_version SET version = 1");
    assert_eq!(b.open().unwrap().load().unwrap(), reg.snapshot());
}

fn a_damaged_invite_row_is_refused(b: &dyn Backend) {
    let mut store = b.open().unwrap();
    let reg = populate(store.as_mut());
    assert!(!reg.snapshot().invites.is_empty());
    b.exec("UPDATE invites SET hash = 'not hex' WHERE hash = (SELECT min(hash) FROM invites)");
    let err = store.load().unwrap_err();
    assert!(err.to_string().contains("bad invite hash"), "{err}");
}
