//! What only the PostgreSQL store does: URLs, connections, several coordinators at once. What
//! every store does is in `store/tests.rs`, run against this one too.

use super::*;
// The lab's PostgreSQL is a Unix one (see `store::test_pg`): the Windows build checks URLs only.
#[cfg(unix)]
use crate::store::test_pg;
#[cfg(unix)]
use crate::store::tests::{config, key, Backend, Pg, SALT, T0};
#[cfg(unix)]
use warren_coordinator_core::Registry;

fn refused(url: &str) -> String {
    match parse_url(url) {
        Ok(_) => panic!("accepted"),
        Err(e) => {
            assert!(matches!(e, StoreError::BadUrl { .. }), "{e:?}");
            e.to_string()
        }
    }
}

#[test]
fn urls_are_checked_and_never_repeated() {
    let msg = refused("/var/lib/warren-coordinator/coordinator.db");
    assert!(msg.contains("does not start with postgres://"), "{msg}");
    assert!(msg.contains("SQLite in --state-dir"), "{msg}");
    let msg = refused("mysql://u:s3cret@db/warren");
    assert!(!msg.contains("s3cret"), "{msg}");
    let msg = refused("postgres://u:s3cret@db:notaport/warren");
    assert!(
        msg.contains("cannot be read") && !msg.contains("s3cret"),
        "{msg}"
    );
    let msg = refused("postgres://u:s3cret@db/warren?sslmode=require");
    assert!(msg.contains("TLS") && !msg.contains("s3cret"), "{msg}");
    let msg = refused("postgres:///warren");
    assert!(msg.contains("no host"), "{msg}");

    let config = parse_url("postgresql://u:s3cret@db.example:6543/warren").unwrap();
    assert_eq!(
        describe(&config),
        "PostgreSQL database warren at db.example:6543 as u"
    );
    assert_eq!(config.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
    // A host that is a directory is a Unix socket's, on Unix only.
    #[cfg(unix)]
    {
        let config = parse_url("postgres://u@%2Frun%2Fpostgresql/warren").unwrap();
        assert_eq!(
            describe(&config),
            "PostgreSQL database warren at /run/postgresql/.s.PGSQL.5432 as u"
        );
    }
}

// A Unix socket's path.
#[cfg(unix)]
#[test]
fn a_server_that_is_not_there_is_a_clear_error() {
    let url = "postgres://u:s3cret@%2Fnonexistent%2Fwarren/warren";
    let err = PgStore::connect(url).err().expect("connected to nothing");
    let msg = err.to_string();
    assert!(matches!(err, StoreError::PgConnect { .. }), "{err:?}");
    assert!(
        msg.starts_with(
            "cannot connect to PostgreSQL database warren at \
             /nonexistent/warren/.s.PGSQL.5432 as u: "
        ),
        "{msg}"
    );
    assert!(msg.contains("check that PostgreSQL runs there"), "{msg}");
    assert!(!msg.contains("s3cret"), "{msg}");
}

#[cfg(unix)]
#[test]
fn a_database_that_does_not_exist_is_a_clear_error() {
    let err = PgStore::connect(&test_pg::shared().url("nosuchdb"))
        .err()
        .expect("connected to a missing database");
    let msg = err.to_string();
    assert!(msg.contains("\"nosuchdb\" does not exist"), "{msg}");
    assert!(msg.contains("createdb"), "{msg}");
}

/// Several coordinators starting on one empty database at once: one creates the schema, the
/// others find it (without the advisory lock they collide creating the same tables).
#[cfg(unix)]
#[test]
fn coordinators_starting_at_once_create_the_schema_once() {
    let pg = Pg::new();
    let url = pg.url();
    let opened: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || PgStore::connect(&url).map(|_| ()))
        })
        .collect();
    for t in opened {
        t.join().unwrap().unwrap();
    }
    assert_eq!(
        pg.texts("SELECT CAST(version AS TEXT) FROM schema_version"),
        ["1"]
    );
}

/// PostgreSQL restarted or the connection cut: a read is retried on a new connection, a write
/// fails at most once, the next one connects again.
#[cfg(unix)]
#[test]
fn a_broken_connection_is_opened_again() {
    let pg = Pg::new();
    let mut store = pg.open().unwrap();
    let mut reg = Registry::new(config()).unwrap();
    store
        .apply(&reg.register_node(key(1), "alice", None, T0).unwrap())
        .unwrap();
    let cut = |pg: &Pg| {
        pg.exec(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
    };
    cut(&pg);
    // A read that finds the connection broken reads again on a new one.
    assert_eq!(store.load().unwrap(), reg.snapshot());
    cut(&pg);
    // A write that finds it broken may fail; the next one connects again.
    let create = reg.create_network(key(1), "lan", "pw", &SALT, T0).unwrap();
    if store.apply(&create).is_err() {
        store.apply(&create).unwrap();
    }
    assert_eq!(store.load().unwrap(), reg.snapshot());
}
