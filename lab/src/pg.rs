//! A real PostgreSQL for tests: `initdb` in a temporary directory, the server listening only
//! on a unix socket there (no port to collide on), run as `nobody` when the tests run as root
//! (PostgreSQL refuses to run as root). Debian's `postgresql` package provides the programs in
//! /usr/lib/postgresql/VERSION/bin (`packaging/install-deps.sh` installs it).
//!
//! [`PgServer::start`] gives a server of one's own, stopped and removed when dropped (also when
//! the test fails). [`shared`] gives one server for the whole test binary, each test then making
//! a database of its own ([`PgServer::new_database`]): stopped and removed at exit. Either way
//! the server also dies with the thread that started it (`PR_SET_PDEATHSIG`), so a test binary
//! that is killed leaves no server running.
//!
//! Used by the coordinator's store tests and the lab's database and cluster tests.

#![allow(dead_code)] // each test binary uses a different part

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The superuser `initdb` creates; trusted on the socket, no password.
pub const SUPERUSER: &str = "warren";
const PORT: u16 = 5432;

pub struct PgServer {
    dir: PathBuf,
    child: Mutex<Option<Child>>,
}

/// The newest installed PostgreSQL's `bin` directory.
fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL's server programs are not in /usr/lib/postgresql/*/bin: install the \
             postgresql package (packaging/install-deps.sh does)"
        ),
    }
}

/// As root: `nobody`'s uid and gid, for PostgreSQL, which refuses to run as root.
fn unprivileged() -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions; getpwnam's result is read at once, before any
    // other call could reuse its buffer (tests in this binary do not call it elsewhere).
    unsafe {
        if libc::geteuid() != 0 {
            return None;
        }
        let pw = libc::getpwnam(c"nobody".as_ptr());
        assert!(!pw.is_null(), "no user `nobody` to run PostgreSQL as");
        Some(((*pw).pw_uid, (*pw).pw_gid))
    }
}

/// Runs `cmd` as `user` (if any), and kills it when the thread that spawns it ends.
fn prepare(cmd: &mut Command, user: Option<(u32, u32)>) {
    // SAFETY: only async-signal-safe calls between fork and exec. The credentials change
    // first: changing them clears PR_SET_PDEATHSIG.
    unsafe {
        cmd.pre_exec(move || {
            if let Some((uid, gid)) = user {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

impl PgServer {
    /// initdb and start a server; panics (with the server's log) if it does not come up.
    pub fn start() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let bin = bin_dir();
        let user = unprivileged();
        let dir = std::env::temp_dir().join(format!(
            "warren-pg-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        }
        let server = Self {
            dir,
            child: Mutex::new(None),
        };
        let data = server.dir.join("data");
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C"])
            .arg("--no-sync")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        prepare(&mut initdb, user);
        let out = initdb.output().expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let log = std::fs::File::create(server.dir.join("server.log")).unwrap();
        let mut postgres = Command::new(bin.join("postgres"));
        postgres
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(&server.dir)
            .args(["-p", &PORT.to_string(), "-c", "listen_addresses="])
            // Tests need no durability: no fsync, small memory.
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "shared_buffers=16MB"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        prepare(&mut postgres, user);
        *server.child.lock().unwrap() = Some(postgres.spawn().expect("start postgres"));
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.client("postgres").is_ok() {
                return;
            }
            let exited = self
                .child
                .lock()
                .unwrap()
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
                panic!("PostgreSQL did not start ({exited:?}):\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The directory holding the server's socket.
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// The URL of database `db` as `--database` takes it.
    pub fn url(&self, db: &str) -> String {
        let host = self.dir.display().to_string().replace('/', "%2F");
        format!("postgres://{SUPERUSER}@{host}:{PORT}/{db}")
    }

    /// A client of `db`, for what a test does behind the store's back.
    pub fn client(&self, db: &str) -> Result<postgres::Client, postgres::Error> {
        postgres::Config::new()
            .host_path(&self.dir)
            .port(PORT)
            .user(SUPERUSER)
            .dbname(db)
            .connect(postgres::NoTls)
    }

    /// A new, empty database; returns its name.
    pub fn new_database(&self) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!("t{}", N.fetch_add(1, Ordering::Relaxed));
        self.client("postgres")
            .unwrap()
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        name
    }

    /// Immediate shutdown, then the directory goes.
    fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            // SAFETY: signalling our own child, which has not been waited for yet.
            unsafe { libc::kill(child.id() as i32, libc::SIGQUIT) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
    }
}

static SHARED: OnceLock<PgServer> = OnceLock::new();

extern "C" fn stop_shared() {
    if let Some(server) = SHARED.get() {
        server.stop();
    }
}

/// One server for the whole test binary, stopped and removed when the binary exits.
pub fn shared() -> &'static PgServer {
    SHARED.get_or_init(|| {
        // Started from a thread that never ends: the server must not die with the first test
        // thread (PR_SET_PDEATHSIG is per thread), only with the process.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(PgServer::start());
            loop {
                std::thread::park();
            }
        });
        let server = rx
            .recv()
            .expect("PostgreSQL for the tests did not start (see above)");
        // SAFETY: registers a plain function; it runs once, at exit.
        unsafe { libc::atexit(stop_shared) };
        server
    })
}
