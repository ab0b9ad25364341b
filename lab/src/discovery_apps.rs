//! Real LAN discovery programs from Debian for the game discovery acceptance test (issue 16):
//! Samba's NetBIOS name server `nmbd` (package `samba`) holds a name on one lab host, and
//! `nmblookup` (package `samba-common-bin`) on a host behind another NAT finds it by broadcast.
//!
//! Neither needs systemd or D-Bus, and both run as a user would run them: no `interfaces` line,
//! `bind interfaces only = no` (the default), nothing about the overlay in their configuration.
//! What happens on the wire:
//!
//! - `nmblookup NAME` sends one NetBIOS name query (50 bytes of UDP, broadcast flag set) from
//!   an ephemeral port of its own, bound to no interface, to the directed broadcast of each
//!   broadcast-capable interface Samba knows — `192.168.K.255:137` on a lab host; the Warren
//!   interface is point-to-point and so not one of them. It waits about 300 ms for an answer
//!   and gives up (exit 1, `name_query failed to find name NAME`); [`find_name`] retries.
//! - Warren carries it (UDP port 137 must be one of the game ports) and the peer receives it on
//!   `warren0` as `OVERLAY_A:port -> 255.255.255.255:137`.
//! - `nmbd` reads it on its wildcard socket (`0.0.0.0:137`). The source is on none of its
//!   subnets, so it files the query under `REMOTE_BROADCAST_SUBNET`, looks the name up on all
//!   its broadcast subnets and answers by unicast from port 137 to `OVERLAY_A:port`, which the
//!   kernel routes through `warren0` (source `OVERLAY_B`). The answer's address record is the
//!   responder's LAN address (e.g. `192.168.2.2`), not its overlay address: that is what
//!   `nmblookup` prints (`192.168.2.2 NAME<00>`).
//! - `nmblookup` takes the answer from any source (matching transaction id) on its socket.
//!
//! `nmbd` answers only once it has registered the name on its LAN (about 4 s after start:
//! broadcast registrations that nobody contests); [`Nmbd::start`] waits for that.
//!
//! Samba programs find `nmbd` through the Unix socket `/run/samba/nmbd/unexpected` by default,
//! which network namespaces do not separate: a `nmblookup` in one namespace would talk to the
//! `nmbd` of another. Each instance here gets its own `nmbd:socket dir` (and every other
//! directory) under the directory it is given.
#![allow(dead_code)]

use super::cmd::{describe, run_timeout, wait_deadline, CmdOutput};
use super::node::{die_with_parent, dump_file};
use std::fs::{self, File};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const NMBD: &str = "/usr/sbin/nmbd";
pub const NMBLOOKUP: &str = "/usr/bin/nmblookup";
/// The NetBIOS name service port the query goes to (a game port Warren must carry).
pub const NBNS_PORT: u16 = 137;
/// `nmbd` registers its name within about 4 s; more than this is a failure.
pub const NMBD_READY_TIMEOUT: Duration = Duration::from_secs(20);
/// One `nmblookup` run waits ~300 ms; one that has not returned after this hangs.
const LOOKUP_RUN_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between two `nmblookup` tries.
const LOOKUP_PAUSE: Duration = Duration::from_millis(200);

/// Panics unless Samba's `nmbd` and `nmblookup` are installed.
pub fn require_samba() {
    for (bin, pkg) in [(NMBD, "samba"), (NMBLOOKUP, "samba-common-bin")] {
        if !Path::new(bin).exists() {
            panic!("{bin} not found: install {pkg} (packaging/install-deps.sh does)");
        }
    }
}

/// A NetBIOS name as Samba stores it: 1 to 15 letters, digits or `-`, upper case.
fn netbios_name(name: &str) -> String {
    assert!(
        !name.is_empty()
            && name.len() <= 15
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
        "`{name}` is not a NetBIOS name this helper takes (1-15 letters, digits or -)"
    );
    name.to_ascii_uppercase()
}

/// The `[global]` section that keeps every file of a Samba program under `dir` (nothing in
/// `/run/samba`, `/var/lib/samba`, `/var/cache/samba` or `/var/log/samba`), plus `extra` lines.
fn samba_conf(dir: &Path, extra: &str) -> String {
    let d = dir.display();
    format!(
        "[global]
{extra}   lock directory = {d}/lock
   state directory = {d}/state
   cache directory = {d}/cache
   pid directory = {d}
   private dir = {d}/private
   ncalrpc dir = {d}/ncalrpc
   nmbd:socket dir = {d}/nmbd-socket
   log file = {d}/log.%m
"
    )
}

/// A name query `nmbd` logged: who asked, on which of its subnets (`REMOTE_BROADCAST_SUBNET`
/// for a broadcast from an address on none of its LANs, as one carried by Warren is), and for
/// which name (`NAME<00>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameQuery {
    pub from: Ipv4Addr,
    pub subnet: String,
    pub name: String,
}

/// A running `nmbd` holding a NetBIOS name in a namespace; stopped on drop (its log printed
/// first when the test is failing). Its files stay in its directory (the lab's directory,
/// removed with the lab unless the test failed).
pub struct Nmbd {
    pub ns: String,
    /// The name it holds, upper case.
    pub name: String,
    pub dir: PathBuf,
    pub conf: PathBuf,
    /// Its debug output (level 3: registrations and every name query it answers).
    pub log: PathBuf,
    /// From the start to the name being registered on the LAN (answerable).
    pub ready_after: Duration,
    child: Option<Child>,
}

impl Nmbd {
    /// Writes `dir/smb.conf` (netbios name `name`, every Samba directory under `dir`), starts
    /// `nmbd` in the foreground in `ns` and waits until it has registered `name` on a LAN
    /// subnet, i.e. answers broadcast queries for it (about 4 s).
    pub fn start(ns: &str, name: &str, dir: &Path) -> Nmbd {
        require_samba();
        let name = netbios_name(name);
        fs::create_dir_all(dir).expect("create the nmbd dir");
        let conf = dir.join("smb.conf");
        fs::write(
            &conf,
            samba_conf(dir, &format!("   netbios name = {name}\n")),
        )
        .expect("write smb.conf");
        let log = dir.join("nmbd.log");
        let out = File::create(&log).expect("create nmbd.log");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, NMBD])
            .args([
                "--foreground",
                "--no-process-group",
                "--debug-stdout",
                "--debuglevel=3",
                "--configfile",
            ])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log fd"))
            .stderr(out);
        die_with_parent(&mut cmd);
        let what = describe(&cmd);
        let t0 = Instant::now();
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{what}`: {e}"));
        let mut nmbd = Nmbd {
            ns: ns.to_string(),
            name,
            dir: dir.to_path_buf(),
            conf,
            log,
            ready_after: Duration::ZERO,
            child: Some(child),
        };
        while !nmbd.registered() {
            if let Some(Ok(Some(status))) = nmbd.child.as_mut().map(|c| c.try_wait()) {
                panic!("nmbd in {ns} exited ({status}) before registering its name");
            }
            if t0.elapsed() > NMBD_READY_TIMEOUT {
                panic!(
                    "nmbd in {ns} did not register {} on a LAN within {NMBD_READY_TIMEOUT:?}",
                    nmbd.name
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        nmbd.ready_after = t0.elapsed();
        nmbd
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the name is registered on a broadcast subnet (a LAN), which is where `nmbd`
    /// looks for it when a query comes from a subnet it does not know. At start it also adds
    /// it to `UNICAST_SUBNET` at once; that one does not count.
    fn registered(&self) -> bool {
        let needle = format!("Added netbios name {}<00> ", self.name);
        self.log_text().lines().any(|l| {
            l.contains(&needle)
                && !l.ends_with("to subnet UNICAST_SUBNET")
                && !l.ends_with("to subnet REMOTE_BROADCAST_SUBNET")
        })
    }

    /// The name queries it logged (`process_name_query_request: Name query from IP on subnet
    /// SUBNET for name NAME<TT>`), oldest first.
    pub fn name_queries(&self) -> Vec<NameQuery> {
        self.log_text()
            .lines()
            .filter_map(|l| {
                let rest = l.split("Name query from ").nth(1)?;
                let (ip, rest) = rest.split_once(" on subnet ")?;
                let (subnet, name) = rest.split_once(" for name ")?;
                Some(NameQuery {
                    from: ip.trim().parse().ok()?,
                    subnet: subnet.trim().to_string(),
                    name: name.trim().to_string(),
                })
            })
            .collect()
    }

    /// Stops it now (SIGTERM, SIGKILL after 3 s).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Ok(Some(_)) = c.try_wait() {
                return;
            }
            // SAFETY: signalling our own child by pid.
            unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
            if wait_deadline(&mut c, Duration::from_secs(3)).is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

impl Drop for Nmbd {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            dump_file(&format!("nmbd log ({})", self.ns), &self.log, 80);
        }
    }
}

/// What [`find_name`] saw.
#[derive(Debug)]
pub struct NameLookup {
    pub found: bool,
    /// The addresses in the answer (the responder's LAN address for `nmbd`).
    pub addresses: Vec<Ipv4Addr>,
    /// `nmblookup` runs made (each sends one query).
    pub tries: u32,
    /// From the first try to the answer (or to giving up).
    pub elapsed: Duration,
    /// stdout and stderr of the last run.
    pub output: String,
}

/// Writes the querier's configuration (`dir/nmblookup.conf`: nothing but its own directories,
/// so it neither reads the host's `/etc/samba/smb.conf` nor talks to some `nmbd`'s socket).
fn querier_conf(dir: &Path) -> PathBuf {
    fs::create_dir_all(dir).expect("create the nmblookup dir");
    let conf = dir.join("nmblookup.conf");
    fs::write(&conf, samba_conf(dir, "")).expect("write nmblookup.conf");
    conf
}

/// Runs `nmblookup NAME` once in `ns` (one broadcast query, ~300 ms of waiting); its
/// configuration goes to `dir`. Exit 0 and a line `ADDRESS NAME<00>` when answered.
pub fn nmblookup(ns: &str, name: &str, dir: &Path) -> CmdOutput {
    require_samba();
    let name = netbios_name(name);
    let conf = querier_conf(dir);
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, NMBLOOKUP, "--configfile"])
        .arg(&conf)
        .arg(&name);
    match run_timeout(&mut cmd, LOOKUP_RUN_TIMEOUT) {
        Ok(o) => o,
        Err(e) => panic!("{e}"),
    }
}

/// The addresses `nmblookup` printed for `name` (lines `ADDRESS NAME<00>`).
pub fn answered_addresses(stdout: &str, name: &str) -> Vec<Ipv4Addr> {
    let want = format!("{}<00>", netbios_name(name));
    stdout
        .lines()
        .filter_map(|l| {
            let (ip, n) = l.trim().split_once(' ')?;
            if n.trim().eq_ignore_ascii_case(&want) {
                ip.parse().ok()
            } else {
                None
            }
        })
        .collect()
}

/// Runs `nmblookup NAME` in `ns` until it finds the name or `timeout` has passed (every
/// ~0.5 s: each run waits ~300 ms for answers, then a pause).
pub fn find_name(ns: &str, name: &str, dir: &Path, timeout: Duration) -> NameLookup {
    let t0 = Instant::now();
    let mut tries = 0;
    loop {
        tries += 1;
        let o = nmblookup(ns, name, dir);
        let addresses = answered_addresses(&o.stdout, name);
        let output = format!("{}{}", o.stdout, o.stderr);
        let found = o.success() && !addresses.is_empty();
        if found || t0.elapsed() >= timeout {
            return NameLookup {
                found,
                addresses,
                tries,
                elapsed: t0.elapsed(),
                output,
            };
        }
        std::thread::sleep(LOOKUP_PAUSE);
    }
}
