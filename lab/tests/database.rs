//! `warren-coordinator --database postgres://…`, the built binary against a real PostgreSQL
//! (started by the test, see `lab/src/pg.rs`): it creates its schema, keeps its key in
//! --state-dir, serves what the database holds after a restart, and refuses a bad URL or a
//! database that is not its own with a message saying what to do.

use warren_lab::pg as test_pg;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use warren_lab::coordinator_bin;

fn command(state: &Path, database: &str) -> Command {
    let mut cmd = Command::new(coordinator_bin());
    cmd.arg("--state-dir")
        .arg(state)
        .args(["--database", database])
        .args(["--listen", "127.0.0.1:0", "--tcp-listen", "off"])
        .args(["--relay-port", "0", "--metrics", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    cmd
}

/// A running coordinator, killed when dropped.
struct Running {
    child: Child,
    key: String,
    metrics: String,
    log: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(state: &Path, database: &str) -> Running {
    let log = state.with_extension("log");
    let mut child = command(state, database)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut key, mut metrics) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    while metrics.is_none() && Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(k) = line.strip_prefix("coordinator key ") {
            key = Some(k.to_string());
        }
        if let Some(m) = line.strip_prefix("metrics on http://") {
            metrics = Some(m.trim_end_matches("/metrics").to_string());
        }
    }
    let (Some(key), Some(metrics)) = (key, metrics) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "the coordinator did not start:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    };
    Running {
        child,
        key,
        metrics,
        log,
    }
}

/// The value of gauge `name` in the coordinator's metrics.
fn gauge(addr: &str, name: &str) -> f64 {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    conn.read_to_string(&mut text).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
        .parse()
        .unwrap()
}

/// An Argon2 hash in the form the coordinator stores (of no password in particular).
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$\
                    AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

#[test]
fn the_coordinator_keeps_its_state_in_postgresql_across_restarts() {
    warren_lab::needs_root!();
    let pg = test_pg::shared();
    let db = pg.new_database();
    let url = pg.url(&db);
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");

    let first = start(&state, &url);
    assert_eq!(gauge(&first.metrics, "warren_networks"), 0.0);
    let log = std::fs::read_to_string(&first.log).unwrap();
    assert!(
        log.contains(&format!("PostgreSQL database {db} at ")),
        "{log}"
    );
    let key = first.key.clone();
    drop(first);
    // The key stays in --state-dir; no SQLite file is made there.
    assert!(state.join("coordinator.key").exists());
    assert!(!state.join("coordinator.db").exists());

    // What another coordinator on this database stored meanwhile (a host, its network).
    let mut client = pg.client(&db).unwrap();
    let version: i64 = client
        .query_one("SELECT version FROM schema_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(version, 1);
    client
        .batch_execute(&format!(
            "INSERT INTO nodes VALUES ('{key}', 'alice', 1);
             INSERT INTO networks VALUES ('lan', '{HASH}', '{key}', 1, false);
             INSERT INTO memberships VALUES ('lan', '{key}', 1);"
        ))
        .unwrap();

    let second = start(&state, &url);
    assert_eq!(second.key, key);
    assert_eq!(gauge(&second.metrics, "warren_networks"), 1.0);
    assert_eq!(gauge(&second.metrics, "warren_hosts_known"), 1.0);
}

fn refused(state: &Path, database: &str) -> String {
    let Output { status, stderr, .. } = command(state, database)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    assert_eq!(status.code(), Some(1), "{stderr}");
    stderr
}

#[test]
fn a_bad_url_or_a_database_not_its_own_is_refused_clearly() {
    warren_lab::needs_root!();
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let msg = refused(&state, "mysql://warren:s3cret@db/warren");
    assert!(
        msg.contains("warren-coordinator: --database: it does not start with postgres://"),
        "{msg}"
    );
    assert!(!msg.contains("s3cret"), "{msg}");

    let pg = test_pg::shared();
    let db = pg.new_database();
    pg.client(&db)
        .unwrap()
        .batch_execute("CREATE TABLE invoices (id INTEGER)")
        .unwrap();
    let msg = refused(&state, &pg.url(&db));
    assert!(
        msg.contains(&format!(
            "PostgreSQL database {db} at {}/.s.PGSQL.5432 as {} is not a usable Warren \
             coordinator database (it has tables (invoices) but no schema_version)",
            pg.socket_dir().display(),
            test_pg::SUPERUSER
        )),
        "{msg}"
    );
    assert!(msg.contains("give --database an empty database"), "{msg}");
}
