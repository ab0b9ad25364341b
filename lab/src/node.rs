//! The lab's processes: the coordinator and the `warrend` hosts, each owned by a guard that
//! stops it on drop (and, in a failing test, prints what it knew first).

use super::bins::windows_bin;
use super::cmd::{describe, run_timeout, wait_deadline, CmdOutput};
use super::wine::{windows_path, WinePrefix};
use super::{coordinator_bin, sibling_bin, COORDINATOR_IP, COORDINATOR_PORT, TUN_NAME, WG_PORT};
use serde_json::Value;
use std::fs::{self, File, OpenOptions};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A CLI call that has not returned after this long is a hang, and fails the test.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(20);

/// `RUST_LOG` for the lab's processes: `WARREN_LAB_LOG`, else `info`.
fn rust_log() -> String {
    std::env::var("WARREN_LAB_LOG").unwrap_or_else(|_| "info".into())
}

/// The child gets SIGKILL if the test thread that started it dies without cleaning up (the test
/// process killed outright), so no daemon outlives its lab. `ip netns exec` execs the program,
/// which keeps the setting.
pub fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// SIGTERM, then SIGKILL after 3 s.
pub fn stop_child(what: &str, mut c: Child) {
    if let Ok(Some(_)) = c.try_wait() {
        return;
    }
    // SAFETY: signalling our own child by pid.
    unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
    if wait_deadline(&mut c, Duration::from_secs(3)).is_none() {
        eprintln!("{what} ignored SIGTERM for 3 s; killing it");
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Prints the last `max` lines of a log file to stderr.
pub fn dump_file(title: &str, path: &Path, max: usize) {
    let text = fs::read_to_string(path).unwrap_or_else(|e| format!("<{e}>"));
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(max);
    eprintln!(
        "===== {title} ({}, {} lines{}) =====",
        path.display(),
        lines.len(),
        if skip > 0 {
            format!(", last {max} shown")
        } else {
            String::new()
        }
    );
    for l in &lines[skip..] {
        eprintln!("{l}");
    }
    eprintln!("===== end of {title} =====");
}

// ---------------------------------------------------------------------------------------------
// Coordinator

pub struct Coordinator {
    pub ns: String,
    /// Its address on the lab's internet ([`COORDINATOR_IP`] for the lab's own).
    pub ip: Ipv4Addr,
    pub state_dir: PathBuf,
    /// stderr (the tracing log) of every start, appended.
    pub log: PathBuf,
    /// The key it printed at its first start.
    pub key: String,
    pub starts: u32,
    /// Added to the command line at the next start.
    pub extra_args: Vec<String>,
    /// Run the Windows build under Wine with this prefix instead of the Linux one.
    pub wine: Option<WinePrefix>,
    dir: PathBuf,
    child: Option<Child>,
}

impl Coordinator {
    pub(crate) fn new(ns: &str, lab_dir: &Path) -> Coordinator {
        Self::named(ns, lab_dir, "coordinator", COORDINATOR_IP)
    }

    /// A coordinator at `ip` whose files live in the lab's directory `name`.
    pub(crate) fn named(ns: &str, lab_dir: &Path, name: &str, ip: Ipv4Addr) -> Coordinator {
        let dir = lab_dir.join(name);
        fs::create_dir_all(&dir).expect("create coordinator dir");
        Coordinator {
            ns: ns.to_string(),
            ip,
            state_dir: dir.join("state"),
            log: dir.join("coordinator.log"),
            key: String::new(),
            starts: 0,
            extra_args: Vec::new(),
            wine: None,
            dir,
            child: None,
        }
    }

    pub fn address(&self) -> String {
        SocketAddrV4::new(self.ip, COORDINATOR_PORT).to_string()
    }

    /// Starts `warren-coordinator` in its namespace and waits (10 s at most) for it to print
    /// its key. After a restart the key must be the one printed the first time.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "the coordinator is already running");
        self.starts += 1;
        let out_path = self.dir.join(format!("stdout-{}.txt", self.starts));
        let out = File::create(&out_path).expect("create coordinator stdout");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open coordinator log");
        // `ip netns exec` execs the coordinator (Wine's launcher execs its loader, which runs
        // the program in the same process), so the child's pid is the coordinator's.
        let (mut cmd, limit) = match &self.wine {
            None => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", &self.ns])
                    .arg(coordinator_bin())
                    .arg("--state-dir")
                    .arg(&self.state_dir);
                (cmd, Duration::from_secs(10))
            }
            Some(prefix) => {
                let mut cmd = prefix.command(&self.ns, &windows_bin("warren-coordinator"));
                cmd.arg("--state-dir").arg(windows_path(&self.state_dir));
                // Wine starts its wineserver and services first.
                (cmd, Duration::from_secs(60))
            }
        };
        cmd.arg("--listen")
            .arg(self.address())
            .args(&self.extra_args)
            .env("RUST_LOG", rust_log())
            .env("RUST_BACKTRACE", "1")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(log));
        die_with_parent(&mut cmd);
        let what = describe(&cmd);
        self.child = Some(cmd.spawn().unwrap_or_else(|e| panic!("`{what}`: {e}")));
        let t0 = Instant::now();
        let key = loop {
            let text = fs::read_to_string(&out_path).unwrap_or_default();
            let key = text
                .lines()
                .find_map(|l| l.strip_prefix("coordinator key "))
                .map(|k| k.trim().to_string());
            if let Some(k) = key {
                break k;
            }
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                self.dump_log();
                panic!("the coordinator exited at start ({st}); stdout: {text}");
            }
            if t0.elapsed() > limit {
                self.dump_log();
                panic!("the coordinator printed no key within {limit:?}; stdout: {text:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if self.key.is_empty() {
            self.key = key;
        } else {
            assert_eq!(
                key, self.key,
                "the coordinator's key changed across a restart with the same state dir"
            );
        }
    }

    /// SIGKILL: a crash, no chance to say goodbye to anyone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.end_wine();
    }

    /// Under Wine, the processes Wine started beside the coordinator (its wineserver, in the
    /// coordinator's namespace, and services) end with it, so a restart starts afresh.
    fn end_wine(&self) {
        if let Some(prefix) = &self.wine {
            prefix.kill_all();
        }
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The coordinator's process id while it runs (for CPU figures from /proc).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn stop(&mut self) {
        if let Some(c) = self.child.take() {
            stop_child("warren-coordinator", c);
        }
        self.end_wine();
    }

    pub fn dump_log(&self) {
        dump_file(
            &format!("warren-coordinator log ({})", self.address()),
            &self.log,
            300,
        );
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `warren-coordinator relay` in namespace `ns` (stopped on drop, even when a test fails).
pub struct StandaloneRelay {
    pub addr: SocketAddrV4,
    child: Option<Child>,
}

impl StandaloneRelay {
    /// Starts it on `addr` with the secret in `secret_file` (created if missing) and waits
    /// for it to say where it listens; `dir` takes its stdout and log.
    pub fn start(ns: &str, addr: SocketAddrV4, secret_file: &Path, dir: &Path) -> Self {
        let out_path = dir.join("standalone-relay.out");
        let out = File::create(&out_path).expect("create relay stdout");
        let log = File::create(dir.join("standalone-relay.log")).expect("create relay log");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns])
            .arg(coordinator_bin())
            .args(["relay", "--listen", &addr.to_string(), "--secret-file"])
            .arg(secret_file)
            .env("RUST_LOG", rust_log())
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(log));
        die_with_parent(&mut cmd);
        let what = describe(&cmd);
        let mut relay = StandaloneRelay {
            addr,
            child: Some(cmd.spawn().unwrap_or_else(|e| panic!("`{what}`: {e}"))),
        };
        let t0 = Instant::now();
        while !fs::read_to_string(&out_path)
            .unwrap_or_default()
            .contains("relay on ")
        {
            if let Some(st) = relay
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                relay.child = None;
                panic!("`{what}` exited at start ({st})");
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "`{what}` did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        relay
    }
}

impl StandaloneRelay {
    /// SIGKILL: the relay dies at once, as a crash or a power cut would end it.
    pub fn kill(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for StandaloneRelay {
    fn drop(&mut self) {
        if let Some(c) = self.child.take() {
            stop_child("warren-coordinator relay", c);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Hosts

/// One `warrend` in its own namespace, and the `warren` CLI pointed at its socket.
pub struct Host {
    /// Namespace-level label, e.g. `s3-h1`.
    pub label: String,
    /// Its name in Warren (`warren up --name`).
    pub name: String,
    pub ns: String,
    /// The address of its own interface (a LAN address behind NAT, else public).
    pub ip: Ipv4Addr,
    pub dir: PathBuf,
    pub state_dir: PathBuf,
    pub socket: PathBuf,
    pub log: PathBuf,
    /// More `warrend` arguments for the next start (e.g. `--socket-group`).
    pub extra_args: Vec<String>,
    child: Option<Child>,
}

impl Host {
    pub(crate) fn new(label: &str, name: &str, ns: &str, ip: Ipv4Addr, site_dir: &Path) -> Host {
        let dir = site_dir.join(label);
        fs::create_dir_all(&dir).expect("create host dir");
        Host {
            label: label.to_string(),
            name: name.to_string(),
            ns: ns.to_string(),
            ip,
            state_dir: dir.join("state"),
            socket: dir.join("warrend.sock"),
            log: dir.join("warrend.log"),
            extra_args: Vec::new(),
            dir,
            child: None,
        }
    }

    /// warrend's process id while it runs (for CPU figures from /proc).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts `warrend` (no config file: the coordinator supplies peers).
    pub fn start_daemon(&mut self) {
        assert!(
            self.child.is_none(),
            "{}: warrend already running",
            self.name
        );
        fs::create_dir_all(&self.state_dir).unwrap();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open warrend log");
        let log2 = log.try_clone().unwrap();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns])
            .arg(sibling_bin("warrend"))
            .arg("--state-dir")
            .arg(&self.state_dir)
            .arg("--socket")
            .arg(&self.socket)
            .arg("--port")
            .arg(WG_PORT.to_string())
            .arg("--tun")
            .arg(TUN_NAME)
            .args(&self.extra_args)
            .env("RUST_LOG", rust_log())
            .env("RUST_BACKTRACE", "1")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log2))
            .stderr(Stdio::from(log));
        die_with_parent(&mut cmd);
        let what = describe(&cmd);
        self.child = Some(cmd.spawn().unwrap_or_else(|e| panic!("`{what}`: {e}")));
    }

    /// Waits until the daemon's local API answers.
    pub fn wait_api(&mut self, timeout: Duration) {
        let t0 = Instant::now();
        loop {
            self.check_alive();
            let err = match self.try_status() {
                Ok(_) => return,
                Err(e) => e,
            };
            if t0.elapsed() > timeout {
                panic!(
                    "warrend {}'s API did not answer within {timeout:?}: {err}",
                    self.name
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Panics if the daemon has exited.
    pub fn check_alive(&mut self) {
        if let Some(c) = self.child.as_mut() {
            if let Ok(Some(st)) = c.try_wait() {
                self.child = None;
                panic!("warrend {} exited unexpectedly: {st}", self.name);
            }
        }
    }

    /// Kills `warrend` at once (SIGKILL), as a power cut would.
    pub fn kill_daemon(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn stop_daemon(&mut self) {
        if let Some(c) = self.child.take() {
            stop_child(&format!("warrend {}", self.name), c);
        }
    }

    /// Runs `warren --socket SOCK ARGS..` (no hang: limited to [`CLI_TIMEOUT`]).
    pub fn warren(&self, args: &[&str]) -> CmdOutput {
        let mut cmd = Command::new(sibling_bin("warren"));
        cmd.arg("--socket").arg(&self.socket).args(args);
        run_timeout(&mut cmd, CLI_TIMEOUT).unwrap_or_else(|e| panic!("{}: {e}", self.name))
    }

    /// Like [`Host::warren`], panicking with its output unless it exits 0; returns stdout.
    pub fn warren_ok(&self, args: &[&str]) -> String {
        let o = self.warren(args);
        if !o.success() {
            panic!(
                "{}: `warren {}` failed ({}):\nstdout: {}\nstderr: {}",
                self.name,
                args.join(" "),
                o.status,
                o.stdout.trim(),
                o.stderr.trim()
            );
        }
        o.stdout
    }

    /// Runs `warren ARGS..`, which must fail with exit code 1 and say each of `needles` on
    /// stderr; returns that stderr.
    pub fn warren_err(&self, args: &[&str], needles: &[&str]) -> String {
        let o = self.warren(args);
        let cmd = format!("{}: warren {}", self.name, args.join(" "));
        assert_eq!(
            o.status.code(),
            Some(1),
            "`{cmd}` should fail with exit code 1; got {}\nstdout: {}\nstderr: {}",
            o.status,
            o.stdout,
            o.stderr
        );
        for n in needles {
            assert!(
                o.stderr.contains(n),
                "`{cmd}`: stderr should say {n:?}; it says {:?} (stdout {:?})",
                o.stderr,
                o.stdout
            );
        }
        eprintln!("`{cmd}` -> exit 1: {}", o.stderr.trim());
        o.stderr
    }

    /// `warren up` to the lab's coordinator under [`Host::name`]; returns the overlay address
    /// it printed ("connected to … as NAME (IP)").
    pub fn up(&self, coordinator: &Coordinator) -> Ipv4Addr {
        let addr = coordinator.address();
        let out = self.warren_ok(&[
            "up",
            "--coordinator",
            &addr,
            "--coordinator-key",
            &coordinator.key,
            "--name",
            &self.name,
        ]);
        let ip = out
            .rsplit_once('(')
            .and_then(|(_, rest)| rest.split_once(')'))
            .and_then(|(ip, _)| ip.parse().ok());
        match ip {
            Some(ip) if out.contains("connected to") => ip,
            _ => panic!(
                "{}: `warren up` printed {out:?}, expected \"connected to … as {} (IP)\"",
                self.name, self.name
            ),
        }
    }

    pub fn try_status(&self) -> Result<Value, String> {
        status_at(&self.socket)
    }

    /// Names the host in its config file, as a user's "name others see" would (a PC that
    /// hosts has no coordinator to name itself to before it hosts).
    pub fn name_in_config(&self) {
        fs::create_dir_all(&self.state_dir).unwrap();
        fs::write(
            self.state_dir.join("config.toml"),
            format!("[interface]\nname = \"{}\"\n", self.name),
        )
        .unwrap();
    }

    /// `warren status --json`, parsed.
    pub fn status(&self) -> Value {
        self.try_status()
            .unwrap_or_else(|e| panic!("status of {}: {e}", self.name))
    }

    /// This host's entry for the peer called `name` in `status`.
    pub fn peer_in<'a>(status: &'a Value, name: &str) -> Option<&'a Value> {
        status["peers"]
            .as_array()?
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
    }

    /// The overlay address in `status` (`self.overlay_ip`).
    pub fn overlay_in(status: &Value) -> Option<Ipv4Addr> {
        status["self"]["overlay_ip"].as_str()?.parse().ok()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        if failed && self.child.is_some() {
            match self.try_status() {
                Ok(st) => eprintln!(
                    "===== warrend {} ({}) status at failure =====\n{st:#}",
                    self.name, self.label
                ),
                Err(e) => eprintln!("===== warrend {} status unavailable: {e}", self.name),
            }
        }
        self.stop_daemon();
        if failed {
            dump_file(
                &format!("warrend {} ({}) log", self.name, self.label),
                &self.log,
                300,
            );
        }
    }
}

/// Starts the daemons of `hosts` and waits for their APIs.
pub fn start_all(hosts: &mut [&mut Host]) {
    for h in hosts.iter_mut() {
        h.start_daemon();
    }
    for h in hosts.iter_mut() {
        h.wait_api(Duration::from_secs(10));
    }
}

/// The coordinator's networks in a `status --json`.
pub fn networks(st: &Value) -> Vec<String> {
    st["coordinator"]["networks"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Polls `host`'s status until `cond` holds, or panics after `limit` naming `what`.
pub fn wait_status(host: &Host, limit: Duration, what: &str, cond: impl Fn(&Value) -> bool) {
    let t0 = Instant::now();
    loop {
        let st = host.status();
        if cond(&st) {
            return;
        }
        assert!(
            t0.elapsed() < limit,
            "{}: {what} not seen within {limit:?}; status: {st:#}",
            host.name
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls both hosts until each sees the other on a path in `want`; returns how long it took,
/// or panics after `limit`.
pub fn wait_path(a: &Host, b: &Host, want: &[&str], limit: Duration) -> Duration {
    use super::matrix::peer_path;
    let t0 = Instant::now();
    loop {
        // Both statuses at once: under load one `warren status` can take hundreds of ms, and
        // the time measured here is the path switch's, not the polling's.
        let (sa, sb) = std::thread::scope(|s| {
            let sb = s.spawn(|| b.status());
            (a.status(), sb.join().expect("status thread"))
        });
        let pa = peer_path(&sa, &b.name);
        let pb = peer_path(&sb, &a.name);
        if want.contains(&pa.as_str()) && want.contains(&pb.as_str()) {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < limit,
            "paths {pa} / {pb} after {limit:?}, want one of {want:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Host {
    /// Cuts the direct path to `other`: nftables table `table` in this host's namespace drops
    /// UDP from and to `other`'s WireGuard port; the coordinator (and its relay) stays
    /// reachable. The namespace's removal takes the table with it.
    pub fn cut_udp_with(&self, other: Ipv4Addr, table: &str) {
        let rules = format!(
            "add table inet {table} {{ \
               chain i {{ type filter hook input priority 0; ip saddr {other} udp dport {port} drop; }}; \
               chain o {{ type filter hook output priority 0; ip daddr {other} udp sport {port} drop; }}; \
             }}",
            port = WG_PORT
        );
        super::cmd::run_ok("ip", &["netns", "exec", &self.ns, super::nft_bin(), &rules]);
    }

    /// Breaks TCP to and from `other`'s daemon port: new and existing connections are reset
    /// (a direct path over TCP ends at once) until [`Host::restore_udp`] with the same table.
    pub fn cut_tcp_with(&self, other: Ipv4Addr, table: &str) {
        let rules = format!(
            "add table inet {table} {{ \
               chain i {{ type filter hook input priority 0; ip saddr {other} tcp sport {port} drop; }}; \
               chain o {{ type filter hook output priority 0; ip daddr {other} tcp dport {port} reject with tcp reset; }}; \
             }}",
            port = WG_PORT
        );
        super::cmd::run_ok("ip", &["netns", "exec", &self.ns, super::nft_bin(), &rules]);
    }

    /// Undoes [`Host::cut_udp_with`] or [`Host::cut_tcp_with`].
    pub fn restore_udp(&self, table: &str) {
        let delete = format!("delete table inet {table}");
        super::cmd::run_ok(
            "ip",
            &["netns", "exec", &self.ns, super::nft_bin(), &delete],
        );
    }
}

/// `warren --socket SOCKET status --json`, parsed; why not, otherwise.
pub fn status_at(socket: &std::path::Path) -> Result<Value, String> {
    let mut cmd = Command::new(sibling_bin("warren"));
    cmd.arg("--socket").arg(socket).args(["status", "--json"]);
    let o = run_timeout(&mut cmd, Duration::from_secs(5))?;
    if !o.success() {
        return Err(format!(
            "exit {}: {}{}",
            o.status,
            o.stderr.trim(),
            o.stdout.trim()
        ));
    }
    serde_json::from_str(&o.stdout).map_err(|e| format!("bad JSON ({e}): {}", o.stdout))
}
