//! End-to-end harness: two network namespaces joined by a veth pair, one `warrend` in each with
//! the other as a static peer. Everything (daemons, namespaces, the devices in them) is torn
//! down when the [`Pair`] is dropped, including when the test panics; the daemons' logs are then
//! printed and the temp dir is kept.
//!
//! Must run as root. Each `Pair` gets its own namespace names (pid + tag), subnets and ports, so
//! tests can run in parallel.

pub use crate::{cmd, netns, traffic};

use crate::bins::bin;
use cmd::{run_ok, run_timeout, wait_deadline};
use netns::{cleanup_stale, Netns, NS_PREFIX};
use std::fs::{self, File};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TUN_NAME: &str = "warren0";

static TRAFFIC: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Held by a test while it pushes bulk traffic: on a small machine, two transfers at once (plus
/// four daemons) starve each other and make loss and stall checks meaningless. Setup and
/// tear-down still run in parallel.
pub fn traffic_lock() -> std::sync::MutexGuard<'static, ()> {
    TRAFFIC.lock().unwrap_or_else(|e| e.into_inner())
}
pub const MTU: u16 = 1420;

pub use crate::require_root;

pub fn warrend_bin() -> PathBuf {
    bin("warrend")
}

/// The `warren` CLI from the warren-cli package.
pub fn warren_bin() -> PathBuf {
    bin("warren")
}

/// One side of the pair.
pub struct Node {
    /// "a" or "b" (also the peer name the other side uses).
    pub name: &'static str,
    pub ns: String,
    pub veth: String,
    pub underlay: Ipv4Addr,
    pub port: u16,
    pub overlay: Ipv4Addr,
    /// Overlay IPv6 inside Warren's ULA prefix.
    pub overlay6: Ipv6Addr,
    pub dir: PathBuf,
    pub state_dir: PathBuf,
    pub socket: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
    pub public_key: String,
    child: Option<Child>,
}

impl Node {
    pub fn endpoint(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.underlay, self.port)
    }
}

/// Parameters for one pair; `idx` (1..=250) picks the subnets and ports.
pub struct PairSpec {
    pub tag: &'static str,
    pub idx: u8,
    pub persistent_keepalive: Option<u16>,
    /// Extra `warrend` flags for both daemons, e.g. `--no-offload`.
    pub extra_args: Vec<&'static str>,
}

impl PairSpec {
    pub fn new(tag: &'static str, idx: u8) -> Self {
        PairSpec {
            tag,
            idx,
            persistent_keepalive: Some(25),
            extra_args: Vec::new(),
        }
    }
}

pub struct Pair {
    pub tag: String,
    pub idx: u8,
    pub dir: PathBuf,
    pub a: Node,
    pub b: Node,
    namespaces: Vec<Netns>,
}

impl Pair {
    /// Underlay 10.<idx>.0.0/24 (a=.1, b=.2), overlay 100.64.<idx>.{1,2}, ports 40000+idx*10+{1,2}.
    pub fn start(tag: &'static str, idx: u8) -> Pair {
        Self::start_with(PairSpec::new(tag, idx))
    }

    pub fn start_with(spec: PairSpec) -> Pair {
        require_root();
        let warrend = warrend_bin();
        assert!(warrend.exists(), "{} missing", warrend.display());
        warren_bin(); // fail early if the CLI is not built
        cleanup_stale();

        let t0 = Instant::now();
        let pid = std::process::id();
        let tag = spec.tag;
        let idx = spec.idx;
        let dir = std::env::temp_dir().join(format!("warren-e2e-{pid}-{tag}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");

        let node = |name: &'static str, host: u8| {
            let ndir = dir.join(name);
            fs::create_dir_all(&ndir).unwrap();
            Node {
                name,
                ns: format!("{NS_PREFIX}{pid}-{tag}-{name}"),
                veth: format!("veth-{name}"),
                underlay: Ipv4Addr::new(10, idx, 0, host),
                port: 40000 + idx as u16 * 10 + host as u16,
                overlay: Ipv4Addr::new(100, 64, idx, host),
                overlay6: Ipv6Addr::new(
                    0xfd57,
                    0x6172,
                    0x7265,
                    0x6e00,
                    0,
                    0,
                    idx as u16,
                    host as u16,
                ),
                state_dir: ndir.join("state"),
                socket: ndir.join("warrend.sock"),
                config: ndir.join("warren.toml"),
                log: ndir.join("warrend.log"),
                dir: ndir,
                public_key: String::new(),
                child: None,
            }
        };
        // From here on, Drop cleans up whatever has been set up so far.
        let mut pair = Pair {
            tag: tag.to_string(),
            idx,
            a: node("a", 1),
            b: node("b", 2),
            dir: dir.clone(),
            namespaces: Vec::new(),
        };

        pair.namespaces.push(Netns::create(&pair.a.ns));
        pair.namespaces.push(Netns::create(&pair.b.ns));
        run_ok(
            "ip",
            &[
                "link",
                "add",
                &pair.a.veth,
                "netns",
                &pair.a.ns,
                "type",
                "veth",
                "peer",
                "name",
                &pair.b.veth,
                "netns",
                &pair.b.ns,
            ],
        );
        for n in [&pair.a, &pair.b] {
            let addr = format!("{}/24", n.underlay);
            run_ok("ip", &["-n", &n.ns, "addr", "add", &addr, "dev", &n.veth]);
            run_ok("ip", &["-n", &n.ns, "link", "set", &n.veth, "up"]);
        }

        for n in [&mut pair.a, &mut pair.b] {
            fs::create_dir_all(&n.state_dir).unwrap();
            let out = run_ok(
                warrend.to_str().unwrap(),
                &["--state-dir", n.state_dir.to_str().unwrap(), "public-key"],
            );
            let key = out.stdout.trim().to_string();
            assert!(
                key.len() == 44 && key.ends_with('='),
                "`warrend public-key` printed {:?}, expected a base64 x25519 key",
                out.stdout
            );
            n.public_key = key;
        }
        // Same key twice means the identity is not persisted / per state dir.
        assert_ne!(
            pair.a.public_key, pair.b.public_key,
            "both nodes got the same key"
        );

        write_config(&pair.a, &pair.b, spec.persistent_keepalive);
        write_config(&pair.b, &pair.a, spec.persistent_keepalive);
        for n in [&mut pair.a, &mut pair.b] {
            spawn_daemon(n, &warrend, &spec.extra_args);
        }
        pair.wait_api(Duration::from_secs(10));
        eprintln!(
            "[{tag}] pair up in {:.2}s: a={} ({}:{}), b={} ({}:{}), dir {}",
            t0.elapsed().as_secs_f64(),
            pair.a.overlay,
            pair.a.underlay,
            pair.a.port,
            pair.b.overlay,
            pair.b.underlay,
            pair.b.port,
            dir.display()
        );
        pair
    }

    /// Panics (with the daemon's log) if either daemon has exited.
    pub fn check_alive(&mut self) {
        for n in [&mut self.a, &mut self.b] {
            if let Some(c) = n.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    n.child = None;
                    panic!("warrend {} exited unexpectedly: {st}", n.name);
                }
            }
        }
    }

    fn wait_api(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        for which in ["a", "b"] {
            loop {
                self.check_alive();
                let n = if which == "a" { &self.a } else { &self.b };
                let err = match try_status(n) {
                    Ok(_) => break,
                    Err(e) => e,
                };
                if Instant::now() > deadline {
                    panic!("warrend {which}'s API did not answer within {timeout:?}: {err}");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// `warren --socket .. status --json` of `node`, parsed.
    pub fn status(&self, node: &Node) -> serde_json::Value {
        try_status(node).unwrap_or_else(|e| panic!("status of {}: {e}", node.name))
    }

    /// `peers[0].endpoint` in `node`'s status.
    pub fn peer_endpoint(&self, node: &Node) -> Option<String> {
        let st = self.status(node);
        st["peers"][0]["endpoint"].as_str().map(str::to_string)
    }

    /// Pings `to` from `from`'s namespace once a second until a reply arrives; panics after
    /// `timeout`.
    pub fn wait_reachable(&mut self, from: char, to: Ipv4Addr, timeout: Duration) -> Duration {
        let ns = self.node(from).ns.clone();
        let t0 = Instant::now();
        loop {
            self.check_alive();
            let r = ping(&ns, to, 1, 1);
            if r.received > 0 {
                return t0.elapsed();
            }
            if t0.elapsed() > timeout {
                panic!(
                    "no ping reply from {to} (from {from}) within {timeout:?}:\n{}",
                    r.output
                );
            }
        }
    }

    /// Waits until each side can reach the other over the overlay.
    pub fn wait_tunnel(&mut self) {
        let (a, b) = (self.a.overlay, self.b.overlay);
        let d1 = self.wait_reachable('a', b, Duration::from_secs(10));
        let d2 = self.wait_reachable('b', a, Duration::from_secs(10));
        eprintln!(
            "[{}] tunnel up: a->b after {:.2}s, b->a after {:.2}s",
            self.tag,
            d1.as_secs_f64(),
            d2.as_secs_f64()
        );
    }

    pub fn node(&self, which: char) -> &Node {
        match which {
            'a' => &self.a,
            'b' => &self.b,
            _ => panic!("node {which}?"),
        }
    }

    /// Prints the daemons' logs (last lines) to stderr.
    pub fn dump_logs(&self) {
        for n in [&self.a, &self.b] {
            let text = fs::read_to_string(&n.log).unwrap_or_else(|e| format!("<{e}>"));
            let lines: Vec<&str> = text.lines().collect();
            let skip = lines.len().saturating_sub(400);
            eprintln!(
                "===== warrend {} stderr ({}, {} lines{}) =====",
                n.name,
                n.log.display(),
                lines.len(),
                if skip > 0 { ", last 400 shown" } else { "" }
            );
            for l in &lines[skip..] {
                eprintln!("{l}");
            }
        }
        eprintln!("===== end of warrend logs =====");
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        if failed {
            // The daemons' own view at the moment of failure (counters, endpoints, sessions).
            for n in [&self.a, &self.b] {
                match try_status(n) {
                    Ok(st) => eprintln!("===== warrend {} status at failure =====\n{st:#}", n.name),
                    Err(e) => eprintln!("===== warrend {} status unavailable: {e}", n.name),
                }
            }
        }
        for n in [&mut self.a, &mut self.b] {
            if let Some(c) = n.child.take() {
                stop_daemon(n.name, c);
            }
        }
        if failed {
            self.dump_logs();
        }
        // Deleting a namespace takes its veth end and TUN device with it.
        self.namespaces.clear();
        if failed {
            eprintln!("[{}] test failed; kept {}", self.tag, self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn stop_daemon(name: &str, mut c: Child) {
    if let Ok(Some(_)) = c.try_wait() {
        return;
    }
    // SAFETY: signalling our own child by pid.
    unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
    if wait_deadline(&mut c, Duration::from_secs(3)).is_none() {
        eprintln!("warrend {name} ignored SIGTERM for 3 s; killing it");
        let _ = c.kill();
        let _ = c.wait();
    }
}

fn write_config(me: &Node, peer: &Node, keepalive: Option<u16>) {
    let mut s = format!(
        "[interface]\naddress = \"{}\"\naddress6 = \"{}\"\nmtu = {MTU}\n\n[[peer]]\nname = \"{}\"\n\
         public_key = \"{}\"\nallowed_ips = [\"{}/32\", \"{}/128\"]\nendpoint = \"{}\"\n",
        me.overlay,
        me.overlay6,
        peer.name,
        peer.public_key,
        peer.overlay,
        peer.overlay6,
        peer.endpoint()
    );
    if let Some(k) = keepalive {
        s.push_str(&format!("persistent_keepalive = {k}\n"));
    }
    fs::write(&me.config, s).expect("write config");
}

fn spawn_daemon(n: &mut Node, warrend: &Path, extra_args: &[&str]) {
    let log = File::create(&n.log).expect("create log");
    let log2 = log.try_clone().unwrap();
    let rust_log = std::env::var("WARREN_E2E_LOG").unwrap_or_else(|_| "info".into());
    let mut cmd = Command::new("ip");
    // `ip netns exec` execs warrend, so the child's pid is warrend's.
    cmd.args(["netns", "exec", &n.ns])
        .arg(warrend)
        .arg("--state-dir")
        .arg(&n.state_dir)
        .arg("--socket")
        .arg(&n.socket)
        .arg("--port")
        .arg(n.port.to_string())
        .arg("--tun")
        .arg(TUN_NAME)
        .arg("--config")
        .arg(&n.config)
        .args(extra_args)
        .env("RUST_LOG", rust_log)
        .env("RUST_BACKTRACE", "1")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log2))
        .stderr(Stdio::from(log));
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn warrend {}: {e}", n.name));
    n.child = Some(child);
}

fn try_status(n: &Node) -> Result<serde_json::Value, String> {
    crate::node::status_at(&n.socket)
}

pub struct PingResult {
    pub transmitted: u32,
    pub received: u32,
    pub output: String,
}

/// `ip netns exec NS ping -c COUNT -W WAIT TO`, with the summary parsed.
pub fn ping(ns: &str, to: impl Into<IpAddr>, count: u32, wait_s: u32) -> PingResult {
    let to_s = to.into().to_string();
    let c = count.to_string();
    let w = wait_s.to_string();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, "ping", "-n", "-c", &c, "-W", &w, &to_s]);
    let out = run_timeout(
        &mut cmd,
        Duration::from_secs((count * (wait_s + 1) + 5) as u64),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let output = format!("{}{}", out.stdout, out.stderr);
    // "3 packets transmitted, 3 received, 0% packet loss, time 2003ms"
    let mut transmitted = 0;
    let mut received = 0;
    if let Some(line) = output.lines().find(|l| l.contains("packets transmitted")) {
        let nums: Vec<u32> = line
            .split(',')
            .filter_map(|p| p.split_whitespace().next()?.parse().ok())
            .collect();
        transmitted = nums.first().copied().unwrap_or(0);
        received = nums.get(1).copied().unwrap_or(0);
    }
    PingResult {
        transmitted,
        received,
        output,
    }
}

/// Replaces `node`'s underlay address with `new` (same /24), as a roaming host would see.
pub fn change_underlay(node: &mut Node, new: Ipv4Addr) {
    let old = format!("{}/24", node.underlay);
    let newa = format!("{new}/24");
    run_ok(
        "ip",
        &["-n", &node.ns, "addr", "del", &old, "dev", &node.veth],
    );
    run_ok(
        "ip",
        &["-n", &node.ns, "addr", "add", &newa, "dev", &node.veth],
    );
    node.underlay = new;
}
