//! What only the SQLite store does: its file, modes, journal, and the schemas of older
//! releases. What every store does is in `store/tests.rs`, run against this one too.

use super::*;
use crate::store::tests::{config, key, populate, secret_text, SALT, T0};
use warren_coordinator_core::{Registry, SecretHash};

/// What reaches the disk: only invite hashes, never a secret in either form, in a WAL
/// journal, in a directory and file only the coordinator's user can read.
#[test]
fn the_file_holds_only_hashes_and_is_private() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    let mut store = SqliteStore::open(&dir).unwrap();
    populate(&mut store);
    for file in [DB_FILE, "coordinator.db-wal"] {
        let raw = fs::read(dir.join(file)).unwrap_or_default();
        let needle = secret_text(8).into_bytes();
        assert!(!raw.windows(needle.len()).any(|w| w == needle.as_slice()));
        assert!(!raw.windows(16).any(|w| w == [8; 16]));
    }
    drop(store);
    let store = SqliteStore::open(&dir).unwrap();
    let hex = SecretHash::of(&[8; 16]).to_hex().into_bytes();
    let raw = fs::read(dir.join(DB_FILE)).unwrap();
    assert!(raw.windows(hex.len()).any(|w| w == hex.as_slice()));

    let mode: String = store
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(DB_FILE)), 0o600);
    }
}

/// Opening `dir` must fail as `check` says and leave the db file byte for byte as it was.
fn assert_refused_untouched(dir: &Path, check: impl Fn(&StoreError) -> bool) -> String {
    let path = dir.join(DB_FILE);
    let before = fs::read(&path).unwrap();
    let err = match SqliteStore::open(dir) {
        Ok(_) => panic!("{} was accepted", path.display()),
        Err(e) => e,
    };
    assert!(check(&err), "unexpected error {err:?}");
    assert_eq!(fs::read(&path).unwrap(), before, "the file was changed");
    assert!(!dir.join("coordinator.db-wal").exists());
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    msg
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let junk: Vec<u8> = b"these are not the bytes you are looking for\n"
        .iter()
        .copied()
        .cycle()
        .take(8192)
        .collect();
    fs::write(tmp.path().join(DB_FILE), junk).unwrap();
    let msg = assert_refused_untouched(tmp.path(), |e| matches!(e, StoreError::Unusable { .. }));
    assert!(msg.contains("left untouched"), "{msg}");
    assert!(msg.contains("move it away"), "{msg}");
}

#[test]
fn someone_elses_sqlite_database_is_refused_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let conn = Connection::open(tmp.path().join(DB_FILE)).unwrap();
    conn.execute_batch("CREATE TABLE photos (id INTEGER); INSERT INTO photos VALUES (1);")
        .unwrap();
    drop(conn);
    let msg = assert_refused_untouched(tmp.path(), |e| matches!(e, StoreError::Unusable { .. }));
    assert!(msg.contains("photos"), "{msg}");
}

#[test]
fn a_damaged_database_is_refused_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(tmp.path()).unwrap();
    populate(&mut store);
    drop(store); // checkpoints the WAL into the main file and removes it
    let path = tmp.path().join(DB_FILE);
    let mut bytes = fs::read(&path).unwrap();
    let page = 4096;
    assert!(bytes.len() > 3 * page);
    // Scribble over every page after the first (the schema stays readable).
    for b in &mut bytes[page..] {
        *b = 0xA5;
    }
    fs::write(&path, &bytes).unwrap();
    assert_refused_untouched(tmp.path(), |e| matches!(e, StoreError::Unusable { .. }));
}

#[test]
fn a_newer_schema_is_refused_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(tmp.path()).unwrap());
    let conn = Connection::open(tmp.path().join(DB_FILE)).unwrap();
    conn.execute("UPDATE schema_version SET version = 2", [])
        .unwrap();
    drop(conn);
    let msg = assert_refused_untouched(tmp.path(), |e| {
        matches!(e, StoreError::NewerSchema { found: 2, .. })
    });
    assert!(msg.contains("newer version"), "{msg}");
}

#[test]
fn a_version_1_database_without_invites_opens_and_gains_them() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(DB_FILE);
    // What the first release wrote: version 1 without the invites table, with a network.
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(&format!(
        "{SCHEMA_V1} INSERT INTO schema_version (version) VALUES (1);"
    ))
    .unwrap();
    drop(conn);
    let mut store = SqliteStore::open(tmp.path()).unwrap();
    let mut reg = Registry::new(config()).unwrap();
    store
        .apply(&reg.register_node(key(1), "alice", None, T0).unwrap())
        .unwrap();
    store
        .apply(&reg.create_network(key(1), "lan", "pw", &SALT, T0).unwrap())
        .unwrap();
    drop(store);
    let mut store = SqliteStore::open(tmp.path()).unwrap();
    let back = Registry::from_snapshot(config(), store.load().unwrap()).unwrap();
    assert_eq!(back.members_of("lan"), Some(vec![key(1)]));
    assert!(store.load().unwrap().invites.is_empty());
    let (_, changes) = reg.create_invite(key(1), "lan", &[9; 16], 60, T0).unwrap();
    store.apply(&changes).unwrap();
    drop(store);
    let store = SqliteStore::open(tmp.path()).unwrap();
    let loaded = store.load().unwrap();
    assert_eq!(loaded.invites.len(), 1);
    assert_eq!(loaded, reg.snapshot());
    let version: i64 = store
        .conn
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

/// A database as the build before the owner's controls wrote it (no `locked` column, no
/// `bans` or `join_requests` tables) opens, reads its networks as unlocked, and then keeps
/// locks, requests, bans, renames and invites until revoked across a reopen.
#[test]
fn a_database_from_before_the_owners_controls_is_migrated() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(DB_FILE);
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(&format!(
        "{SCHEMA_V1} INSERT INTO schema_version (version) VALUES (1);
         CREATE TABLE invites (
             hash       TEXT PRIMARY KEY NOT NULL,
             network    TEXT NOT NULL REFERENCES networks(name),
             created_by TEXT NOT NULL REFERENCES nodes(key),
             created_at INTEGER NOT NULL,
             expires    INTEGER NOT NULL
         ) STRICT;"
    ))
    .unwrap();
    drop(conn);
    // The old build's rows, written through the old schema.
    let mut reg = Registry::new(config()).unwrap();
    let (a, b, c) = (key(1), key(2), key(3));
    let old_rows: Vec<Change> = [
        reg.register_node(a, "alice", None, T0).unwrap(),
        reg.register_node(b, "bob", None, T0).unwrap(),
        reg.register_node(c, "carol", None, T0).unwrap(),
        reg.create_network(a, "lan", "pw", &SALT, T0).unwrap(),
        reg.join_network(b, "lan", "pw", T0).unwrap(),
    ]
    .concat();
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "foreign_keys", true).unwrap();
        for ch in &old_rows {
            match ch {
                Change::NodeSaved(n) => conn.execute(
                    "INSERT INTO nodes VALUES (?1, ?2, ?3)",
                    params![n.key.to_string(), n.name, n.created_at as i64],
                ),
                Change::LeaseGranted(l) => conn.execute(
                    "INSERT INTO leases VALUES (?1, ?2, ?3)",
                    params![l.node.to_string(), l.addr.to_string(), l.renewed_at as i64],
                ),
                Change::NetworkCreated(n) => conn.execute(
                    "INSERT INTO networks VALUES (?1, ?2, ?3, ?4)",
                    params![
                        n.name,
                        n.password_hash,
                        n.owner.to_string(),
                        n.created_at as i64
                    ],
                ),
                Change::MemberAdded(m) => conn.execute(
                    "INSERT INTO memberships VALUES (?1, ?2, ?3)",
                    params![m.network, m.node.to_string(), m.joined_at as i64],
                ),
                other => panic!("not an old row: {other:?}"),
            }
            .unwrap();
        }
    }
    let mut store = SqliteStore::open(tmp.path()).unwrap();
    let loaded = store.load().unwrap();
    assert_eq!(loaded, reg.snapshot());
    assert!(!loaded.networks[0].locked);
    let mut back = Registry::from_snapshot(config(), loaded).unwrap();
    let mut run = |changes: Vec<Change>| store.apply(&changes).unwrap();
    run(back.set_locked(a, "lan", true).unwrap());
    run(back.join_network(c, "lan", "pw", T0 + 1).unwrap());
    run(back.remove_member(a, "lan", b, true, T0 + 2).unwrap());
    run(back.create_invite(a, "lan", &[6; 16], 0, T0 + 2).unwrap().1);
    run(back.rename_network(a, "lan", "party").unwrap());
    drop(store);
    let store = SqliteStore::open(tmp.path()).unwrap();
    let loaded = store.load().unwrap();
    assert_eq!(loaded, back.snapshot());
    assert!(loaded.networks[0].locked);
    assert_eq!(loaded.networks[0].name, "party");
    assert_eq!(loaded.bans.len(), 1);
    assert_eq!(loaded.requests.len(), 1);
    assert_eq!(
        loaded.invites[0].expires,
        warren_coordinator_core::invite::NEVER
    );
    // Reopening an already migrated database changes nothing.
    drop(store);
    assert_eq!(
        SqliteStore::open(tmp.path()).unwrap().load().unwrap(),
        loaded
    );
}
