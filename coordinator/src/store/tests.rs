use super::*;
use std::collections::HashMap;
use warren_coordinator_core::{HashParams, Registry, RegistryConfig, SecretHash};
use warren_proto::overlay::derive_v4;

const SALT: [u8; 16] = [3; 16];
const T0: u64 = 1_700_000_000;
const TTL: u64 = warren_coordinator_core::LEASE_TTL;

fn config() -> RegistryConfig {
    RegistryConfig {
        // Argon2's smallest costs keep the tests fast; production uses the crate defaults.
        hash_params: HashParams::new(HashParams::MIN_M_COST, 1, 1, None).unwrap(),
        ..Default::default()
    }
}

fn key(i: u32) -> NodeKey {
    let mut k = [0u8; 32];
    k[..4].copy_from_slice(&i.to_be_bytes());
    NodeKey(k)
}

/// Two keys with the same preferred overlay address.
fn colliding_pair() -> (NodeKey, NodeKey) {
    let mut seen = HashMap::new();
    (1000..)
        .map(key)
        .find_map(|k| seen.insert(derive_v4(&k), k).map(|first| (first, k)))
        .unwrap()
}

/// Runs a registry through every kind of change, persisting as it goes.
fn populate(store: &mut Store) -> Registry {
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
    run(reg
        .create_invite(a, "temp", &[3; 16], 0, late + 2)
        .unwrap()
        .1);
    run(reg.delete_network(a, "temp").unwrap());
    run(reg.rename_network(a, "games", "party").unwrap());
    run(reg.set_password(a, "party", "pw5", &SALT).unwrap());
    run(reg.remove_member(a, "party", x, true, late + 3).unwrap());
    run(reg
        .create_invite(a, "work", &[4; 16], 0, late + 3)
        .unwrap()
        .1);
    reg
}

/// The control protocol's text form of an invite secret of 16 bytes `b`.
fn secret_text(b: u8) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([b; 16])
}

#[test]
fn apply_reopen_load_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    let mut store = Store::open(&dir).unwrap();
    assert_eq!(store.load().unwrap(), Snapshot::default());
    let reg = populate(&mut store);
    let want = reg.snapshot();
    assert_eq!(store.load().unwrap(), want);
    drop(store);

    // A restart of the coordinator.
    let store = Store::open(&dir).unwrap();
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
    // The invites too: the unexpired ones, pruned ones gone, only hashes on disk.
    let hashes: Vec<_> = loaded.invites.iter().map(|i| i.hash).collect();
    let mut want_hashes = vec![
        SecretHash::of(&[2; 16]),
        SecretHash::of(&[4; 16]),
        SecretHash::of(&[8; 16]),
    ];
    want_hashes.sort();
    assert_eq!(hashes, want_hashes);
    let mut back = back;
    let late = T0 + TTL + 20;
    back.register_node(key(5), "erin", None, late).unwrap();
    back.join_invite(key(5), "work", &secret_text(8), late)
        .unwrap();
    assert!(back
        .join_invite(key(5), "work", &secret_text(1), late)
        .is_err());
    // Only hashes reach the disk, never the secret in either form.
    let needle = secret_text(8).into_bytes();
    for file in [DB_FILE, "coordinator.db-wal"] {
        let raw = fs::read(dir.join(file)).unwrap_or_default();
        assert!(!raw.windows(needle.len()).any(|w| w == needle.as_slice()));
        assert!(!raw.windows(16).any(|w| w == [8; 16]));
    }
    let hex = SecretHash::of(&[8; 16]).to_hex().into_bytes();
    let raw = fs::read(dir.join(DB_FILE)).unwrap();
    assert!(raw.windows(hex.len()).any(|w| w == hex.as_slice()));

    let mode: String = store
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = store
        .conn
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(DB_FILE)), 0o600);
    }
}

#[test]
fn apply_is_all_or_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(tmp.path()).unwrap();
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
    assert!(matches!(
        store.apply(&batch),
        Err(StoreError::Sqlite { .. })
    ));
    assert_eq!(store.load().unwrap(), Snapshot::default());
    store.apply(&batch[..1]).unwrap();
    assert_eq!(store.load().unwrap().nodes, vec![node]);
}

/// Opening `dir` must fail as `check` says and leave the db file byte for byte as it was.
fn assert_refused_untouched(dir: &Path, check: impl Fn(&StoreError) -> bool) -> String {
    let path = dir.join(DB_FILE);
    let before = fs::read(&path).unwrap();
    let err = match Store::open(dir) {
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
    let mut store = Store::open(tmp.path()).unwrap();
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
    drop(Store::open(tmp.path()).unwrap());
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
    let mut store = Store::open(tmp.path()).unwrap();
    let mut reg = Registry::new(config()).unwrap();
    store
        .apply(&reg.register_node(key(1), "alice", None, T0).unwrap())
        .unwrap();
    store
        .apply(&reg.create_network(key(1), "lan", "pw", &SALT, T0).unwrap())
        .unwrap();
    drop(store);
    let mut store = Store::open(tmp.path()).unwrap();
    let back = Registry::from_snapshot(config(), store.load().unwrap()).unwrap();
    assert_eq!(back.members_of("lan"), Some(vec![key(1)]));
    assert!(store.load().unwrap().invites.is_empty());
    let (_, changes) = reg.create_invite(key(1), "lan", &[9; 16], 60, T0).unwrap();
    store.apply(&changes).unwrap();
    drop(store);
    let store = Store::open(tmp.path()).unwrap();
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
    let mut store = Store::open(tmp.path()).unwrap();
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
    let store = Store::open(tmp.path()).unwrap();
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
    assert_eq!(Store::open(tmp.path()).unwrap().load().unwrap(), loaded);
}

#[test]
fn a_damaged_invite_row_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = Store::open(tmp.path()).unwrap();
    let reg = populate(&mut store);
    assert!(!reg.snapshot().invites.is_empty());
    store
        .conn
        .execute(
            "UPDATE invites SET hash = 'not hex' WHERE hash = (SELECT min(hash) FROM invites)",
            [],
        )
        .unwrap();
    let err = store.load().unwrap_err();
    assert!(err.to_string().contains("bad invite hash"), "{err}");
}
