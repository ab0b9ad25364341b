//! A `warren-coordinator` the load generator runs itself: a temporary state directory, a free
//! port on 127.0.0.1, its key read from what it prints; killed with SIGKILL and started again
//! on the same state and port for the restart scenario. Its log goes to a file next to the
//! state, shown in part when it dies.

use anyhow::{anyhow, bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use warren_proto::key::NodeKey;

pub struct Spawned {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub key: NodeKey,
    child: Child,
}

impl Spawned {
    pub fn start(bin: &Path) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("warren-loadgen-")
            .tempdir()
            .context("cannot make a temporary state directory")?;
        let mut last = anyhow!("no free port found");
        for _ in 0..20 {
            let port = free_port()?;
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            match launch(bin, dir.path(), addr) {
                Ok((child, key)) => {
                    return Ok(Self {
                        bin: bin.to_path_buf(),
                        dir,
                        addr,
                        key,
                        child,
                    })
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`, then the same binary on the same state and port.
    pub fn restart(&mut self) -> Result<Instant> {
        self.kill();
        let killed = Instant::now();
        // The port is free as soon as the process is gone; retry briefly in case it is not.
        let mut last = anyhow!("not started");
        for _ in 0..50 {
            match launch(&self.bin, self.dir.path(), self.addr) {
                Ok((child, key)) => {
                    if key != self.key {
                        bail!("the restarted coordinator has another key: its state was lost");
                    }
                    self.child = child;
                    return Ok(killed);
                }
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(last.context("the coordinator did not start again"))
    }

    /// Why the coordinator is no longer running, if it is not.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!(
                "the coordinator exited ({status}); the end of its log:\n{}",
                log_tail(self.dir.path())
            )),
            _ => None,
        }
    }

    /// The coordinator's warnings and errors so far, counted by message (fields left out).
    pub fn log_warnings(&self) -> Vec<String> {
        let text =
            std::fs::read_to_string(self.dir.path().join("coordinator.log")).unwrap_or_default();
        let mut counted = crate::report::Counted::default();
        for line in text.lines() {
            let Some(level) = ["WARN", "ERROR"]
                .into_iter()
                .find(|l| line.split_whitespace().nth(1) == Some(*l))
            else {
                continue;
            };
            // `time LEVEL target: message field=value …`
            let message = line.split_once(": ").map_or(line, |(_, m)| m);
            let message = match message.find('=') {
                Some(eq) => message[..eq].rsplit_once(' ').map_or(message, |(m, _)| m),
                None => message,
            };
            counted.add(&format!("{level} {message}"));
        }
        counted
            .0
            .into_iter()
            .map(|(m, n)| format!("{n:>6} × {m}"))
            .collect()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts the coordinator and waits for the line with its key (printed once it listens).
fn launch(bin: &Path, dir: &Path, addr: SocketAddr) -> Result<(Child, NodeKey)> {
    let state = dir.join("state");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("coordinator.log"))?;
    let mut child = Command::new(bin)
        .arg("--state-dir")
        .arg(&state)
        .arg("--listen")
        .arg(addr.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .with_context(|| {
            format!(
                "cannot run {} (build it: cargo build --release -p warren-coordinator, or pass \
                 --coordinator-bin)",
                bin.display()
            )
        })?;
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut key = None;
    for line in lines.by_ref() {
        let line = line?;
        if let Some(k) = line.strip_prefix("coordinator key ") {
            key = Some(k.trim().parse::<NodeKey>().map_err(|e| anyhow!("{e}"))?);
            break;
        }
    }
    let Some(key) = key else {
        let _ = child.wait();
        bail!(
            "the coordinator at {addr} stopped before printing its key:\n{}",
            log_tail(dir)
        );
    };
    // Keep reading what it prints, so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Ok((child, key))
}

fn log_tail(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("coordinator.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// A port whose next three (the STUN and relay ports) are free too, on UDP and TCP.
fn free_port() -> Result<u16> {
    for _ in 0..100 {
        let probe = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = probe.local_addr()?.port();
        drop(probe);
        if port > 65_000 {
            continue;
        }
        let all_free = (port..port + 4).all(|p| UdpSocket::bind((Ipv4Addr::LOCALHOST, p)).is_ok())
            && TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok();
        if all_free {
            return Ok(port);
        }
    }
    bail!("no four consecutive free ports on 127.0.0.1")
}

/// CPU seconds (user + system) process `pid` used so far (Linux's /proc; none elsewhere).
#[cfg(not(target_os = "linux"))]
pub fn cpu_secs(_pid: u32) -> Option<f64> {
    None
}

/// CPU seconds (user + system) process `pid` used so far.
#[cfg(target_os = "linux")]
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (which may hold spaces) start at state, field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(ticks / hz)
}

/// The resident and peak memory of process `pid` in kB (VmRSS, VmHWM).
pub fn memory_kb(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}
