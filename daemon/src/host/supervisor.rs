//! The hosted `warren-coordinator` as a child of warrend: started while this PC hosts a
//! network, restarted with backoff when it dies, stopped when it hosts nothing more, and taken
//! down with warrend (also when warrend is killed: the kernel signals it).
//!
//! A plain thread, not a task: it spends its life waiting on one child, and the parent-death
//! signal is tied to the thread that started the child, which must outlive it.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A child that ran this long was healthy: the next failure starts the backoff over.
const HEALTHY_RUN: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(200);
const STOP_WAIT: Duration = Duration::from_secs(3);
/// Where the package installs the coordinator for warrend (the `warren` package ships it
/// here, so that hosting needs no second package).
const PACKAGED: &str = "/usr/lib/warren/warren-coordinator";
/// A log bigger than this is started afresh when the coordinator starts.
const MAX_LOG: u64 = 4 << 20;

pub struct Supervisor {
    wanted: mpsc::Sender<bool>,
    running: Arc<AtomicBool>,
    last_error: Arc<Mutex<Option<String>>>,
}

impl Supervisor {
    /// Starts the thread that runs `warren-coordinator --state-dir DIR --listen 0.0.0.0:PORT`
    /// while wanted.
    pub fn spawn(dir: PathBuf, published: PathBuf, port: u16) -> Supervisor {
        let (wanted, rx) = mpsc::channel();
        let running = Arc::new(AtomicBool::new(false));
        let last_error = Arc::new(Mutex::new(None));
        let (r, e) = (running.clone(), last_error.clone());
        std::thread::Builder::new()
            .name("host-coordinator".into())
            .spawn(move || supervise(&dir, &published, port, &rx, &r, &e))
            .expect("spawn the coordinator supervisor thread");
        Supervisor {
            wanted,
            running,
            last_error,
        }
    }

    pub fn set_wanted(&self, on: bool) {
        let _ = self.wanted.send(on);
    }

    pub fn running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .expect("supervisor error lock")
            .clone()
    }
}

/// The coordinator next to warrend (a build tree, or /usr/bin), then the packaged one, then
/// whatever PATH finds.
pub fn binary() -> PathBuf {
    let sibling = std::env::current_exe().ok().and_then(|e| {
        e.parent().map(|d| {
            d.join(format!(
                "warren-coordinator{}",
                std::env::consts::EXE_SUFFIX
            ))
        })
    });
    if let Some(s) = sibling.filter(|s| s.exists()) {
        return s;
    }
    if Path::new(PACKAGED).exists() {
        return PACKAGED.into();
    }
    "warren-coordinator".into()
}

fn supervise(
    dir: &Path,
    published: &Path,
    port: u16,
    wanted: &mpsc::Receiver<bool>,
    running: &AtomicBool,
    last_error: &Mutex<Option<String>>,
) {
    let mut want = false;
    let mut backoff = FIRST_BACKOFF;
    loop {
        while !want {
            match wanted.recv() {
                Ok(w) => want = w,
                Err(_) => return,
            }
        }
        let started = Instant::now();
        let mut child = match start(dir, published, port) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("cannot start the hosted coordinator: {e}");
                *last_error.lock().expect("lock") = Some(e);
                if !wait(wanted, &mut want, backoff) {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        tracing::info!(pid = child.id(), port, "hosted coordinator started");
        running.store(true, Ordering::Relaxed);
        let ended = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!("cannot watch the hosted coordinator: {e}");
                }
            }
            match wanted.recv_timeout(POLL) {
                Ok(w) => want = w,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => want = false,
            }
            if !want {
                stop(&mut child);
                break None;
            }
        };
        running.store(false, Ordering::Relaxed);
        match ended {
            None => {
                tracing::info!("hosted coordinator stopped");
                *last_error.lock().expect("lock") = None;
                backoff = FIRST_BACKOFF;
            }
            Some(status) => {
                let why = format!(
                    "the coordinator on this PC stopped ({status}); restarting it (its log: {})",
                    dir.join(LOG).display()
                );
                tracing::warn!("{why}");
                *last_error.lock().expect("lock") = Some(why);
                if started.elapsed() > HEALTHY_RUN {
                    backoff = FIRST_BACKOFF;
                }
                if !wait(wanted, &mut want, backoff) {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

const LOG: &str = "coordinator.log";

fn start(dir: &Path, published: &Path, port: u16) -> Result<Child, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let log_path = dir.join(LOG);
    let fresh = std::fs::metadata(&log_path).is_ok_and(|m| m.len() > MAX_LOG);
    let log = OpenOptions::new()
        .create(true)
        .append(!fresh)
        .write(true)
        .truncate(fresh)
        .open(&log_path)
        .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let bin = binary();
    let mut cmd = Command::new(&bin);
    cmd.arg("--state-dir")
        .arg(dir)
        .arg("--listen")
        .arg(format!("0.0.0.0:{port}"))
        .arg("--published")
        .arg(published)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err);
    crate::platform::child::die_with_parent(&mut cmd);
    let child = cmd.spawn().map_err(|e| {
        format!(
            "cannot run {}: {e} (is the warren package installed completely?)",
            bin.display()
        )
    })?;
    crate::platform::child::adopt(&child);
    Ok(child)
}

/// SIGTERM, then SIGKILL if it has not gone within [`STOP_WAIT`].
fn stop(child: &mut Child) {
    crate::platform::child::ask_to_stop(child);
    let t0 = Instant::now();
    while t0.elapsed() < STOP_WAIT {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Sleeps `d` while listening for changes of what is wanted; `false` when warrend is going.
fn wait(wanted: &mpsc::Receiver<bool>, want: &mut bool, d: Duration) -> bool {
    let until = Instant::now() + d;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        match wanted.recv_timeout(left) {
            Ok(w) => *want = w,
            Err(RecvTimeoutError::Timeout) => return true,
            Err(RecvTimeoutError::Disconnected) => return false,
        }
    }
}
