//! Real remote desktop in the lab: an xrdp server (xrdp + xrdp-sesman, Debian's packages) in a
//! namespace, and FreeRDP 2's `xfreerdp` under Xvfb in another that must get as far as xrdp's
//! login screen — the whole RDP connection sequence (X.224, TLS, MCS, licensing, capabilities,
//! finalization) over whatever path the lab gives it, not just a TCP handshake.
//!
//! Every process is owned by a guard that stops it on drop; each xrdp keeps its config, logs
//! and run directory (`/run/xrdp` is bind-mounted over it inside the process's own mount
//! namespace, which `ip netns exec` makes) in the test's directory, so tests run in parallel.

use super::cmd::{describe, run_timeout};
use super::coordinator_bin;
use super::node::{die_with_parent, dump_file, stop_child, Host};
use std::fs::{self, File};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const RDP_PORT: u16 = 3389;
/// xrdp's login screen paints the whole desktop in this colour (`blue=009cb5` in xrdp.ini);
/// an Xvfb nobody drew on is black.
const XRDP_BLUE: &str = "srgb(0,156,181)";
/// A login box has text, a logo and buttons: far more colours than a blank or single-colour
/// screen (the login screen measured 4,036).
const MIN_COLOURS: u32 = 50;
/// How long the client may take to reach the login screen (relayed, on a busy machine).
const LOGIN_LIMIT: Duration = Duration::from_secs(45);

/// Panics with the package to install when a program the remote desktop tests need is missing.
pub fn require_programs() {
    for (prog, pkg) in [
        ("/usr/sbin/xrdp", "xrdp"),
        ("/usr/sbin/xrdp-sesman", "xrdp"),
        ("/usr/bin/xfreerdp", "freerdp2-x11"),
        ("/usr/bin/Xvfb", "xvfb"),
        ("/usr/bin/xwd", "x11-apps"),
        ("/usr/bin/convert", "imagemagick"),
    ] {
        assert!(
            Path::new(prog).exists(),
            "{prog} not found: install {pkg} (packaging/install-deps.sh does)"
        );
    }
}

/// An xrdp server (and its session manager) listening on [`RDP_PORT`] in a namespace.
pub struct Xrdp {
    pub ns: String,
    pub dir: PathBuf,
    pub log: PathBuf,
    sesman: Option<Child>,
    xrdp: Option<Child>,
}

impl Xrdp {
    /// Starts xrdp-sesman and xrdp in the foreground in namespace `ns`, their files in `dir`
    /// (created), and waits (10 s at most) until xrdp listens.
    pub fn start(ns: &str, dir: &Path) -> Xrdp {
        require_programs();
        let dir = dir.join("xrdp");
        let run = dir.join("run");
        fs::create_dir_all(run.join("sockdir")).expect("create xrdp's run dir");
        // The mount point of the bind mount below; the package makes it, a bare system may not.
        fs::create_dir_all("/run/xrdp").expect("create /run/xrdp");
        let log = dir.join("xrdp.log");
        let sesman_log = dir.join("sesman.log");
        let edit = |src: &str, log: &Path| {
            let text = fs::read_to_string(src).unwrap_or_else(|e| panic!("read {src}: {e}"));
            text.lines()
                .map(|l| match l {
                    // Foreground: the guard's child is the server itself.
                    "fork=true" => "fork=false".to_string(),
                    _ if l.starts_with("LogFile=") => format!("LogFile={}", log.display()),
                    "EnableSyslog=true" => "EnableSyslog=false".to_string(),
                    _ if l.starts_with("port=") => format!("port={RDP_PORT}"),
                    _ => l.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let xrdp_ini = dir.join("xrdp.ini");
        let sesman_ini = dir.join("sesman.ini");
        fs::write(&xrdp_ini, edit("/etc/xrdp/xrdp.ini", &log)).unwrap();
        fs::write(&sesman_ini, edit("/etc/xrdp/sesman.ini", &sesman_log)).unwrap();
        let spawn = |prog: &str, ini: &Path, out: &str| {
            let script = format!(
                "mount --bind '{}' /run/xrdp && exec {prog} --nodaemon --config '{}'",
                run.display(),
                ini.display()
            );
            let out = File::create(dir.join(out)).unwrap();
            let err = out.try_clone().unwrap();
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", ns, "sh", "-c", &script])
                .stdin(Stdio::null())
                .stdout(Stdio::from(out))
                .stderr(Stdio::from(err));
            die_with_parent(&mut cmd);
            let what = describe(&cmd);
            cmd.spawn().unwrap_or_else(|e| panic!("`{what}`: {e}"))
        };
        let mut server = Xrdp {
            ns: ns.to_string(),
            sesman: Some(spawn("xrdp-sesman", &sesman_ini, "sesman.out")),
            xrdp: None,
            log,
            dir: dir.clone(),
        };
        server.xrdp = Some(spawn("xrdp", &xrdp_ini, "xrdp.out"));
        let t0 = Instant::now();
        let listening = format!("listening to port {RDP_PORT}");
        while !fs::read_to_string(&server.log)
            .unwrap_or_default()
            .contains(&listening)
        {
            let exited = [
                ("xrdp", &mut server.xrdp),
                ("xrdp-sesman", &mut server.sesman),
            ]
            .into_iter()
            .find_map(|(what, c)| {
                let st = c.as_mut()?.try_wait().ok().flatten()?;
                *c = None;
                Some(format!("{what} in {ns} exited at start ({st})"))
            });
            if let Some(why) = exited {
                server.dump();
                panic!("{why}");
            }
            if t0.elapsed() > Duration::from_secs(10) {
                server.dump();
                panic!("xrdp in {ns} did not listen on {RDP_PORT} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "xrdp listening on port {RDP_PORT} in {ns} ({})",
            dir.display()
        );
        server
    }

    /// The addresses xrdp accepted connections from, in order (from its log).
    pub fn clients(&self) -> Vec<Ipv4Addr> {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        log.lines()
            .filter_map(|l| {
                l.split_once("connection received from ")?
                    .1
                    .split(' ')
                    .next()
            })
            .filter_map(|a| a.trim_start_matches("::ffff:").parse().ok())
            .collect()
    }

    fn dump(&self) {
        dump_file(&format!("xrdp in {}", self.ns), &self.log, 60);
        dump_file("xrdp stdout", &self.dir.join("xrdp.out"), 30);
        dump_file("xrdp-sesman stdout", &self.dir.join("sesman.out"), 30);
    }
}

impl Drop for Xrdp {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump();
        }
        for (what, c) in [
            ("xrdp", self.xrdp.take()),
            ("xrdp-sesman", self.sesman.take()),
        ] {
            if let Some(c) = c {
                stop_child(what, c);
            }
        }
    }
}

/// A virtual X display in a namespace (Xvfb picks a free display number itself).
struct Xvfb {
    display: String,
    child: Option<Child>,
}

impl Xvfb {
    fn start(ns: &str, dir: &Path) -> Xvfb {
        let num = dir.join("xvfb.display");
        let out = File::create(&num).unwrap();
        let err = File::create(dir.join("xvfb.log")).unwrap();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, "Xvfb", "-displayfd", "1"])
            .args(["-screen", "0", "1024x768x24", "-nolisten", "tcp"])
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        die_with_parent(&mut cmd);
        let mut x = Xvfb {
            display: String::new(),
            child: Some(cmd.spawn().expect("start Xvfb")),
        };
        let t0 = Instant::now();
        loop {
            let text = fs::read_to_string(&num).unwrap_or_default();
            if text.ends_with('\n') {
                x.display = format!(":{}", text.trim());
                return x;
            }
            if let Some(st) = x.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                x.child = None;
                dump_file("Xvfb", &dir.join("xvfb.log"), 30);
                panic!("Xvfb in {ns} exited at start ({st})");
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "Xvfb in {ns} gave no display within 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        if let Some(c) = self.child.take() {
            stop_child("Xvfb", c);
        }
    }
}

/// Where the lab keeps pictures for people to look at: `target/lab-artifacts`.
pub fn artifacts_dir() -> PathBuf {
    let bin = coordinator_bin();
    let target = bin
        .parent()
        .and_then(Path::parent)
        .expect("the coordinator binary is in target/PROFILE");
    let dir = target.join("lab-artifacts");
    fs::create_dir_all(&dir).expect("create target/lab-artifacts");
    dir
}

/// What a screenshot shows: the colours of its top-left and bottom-right corners and how many
/// colours it has. The desktop is painted in bands, so both corners in xrdp's colour mean the
/// whole screen has arrived, not just its top.
fn look(png: &Path) -> Result<(String, String, u32), String> {
    let mut cmd = Command::new("convert");
    cmd.arg(png).args([
        "-format",
        "%[pixel:p{5,5}] %[pixel:p{1018,762}] %k",
        "info:",
    ]);
    let o = run_timeout(&mut cmd, Duration::from_secs(20))?;
    let words: Vec<&str> = o.stdout.split_whitespace().collect();
    let [top, bottom, colours] = words[..] else {
        return Err(format!("convert said {o:?}"));
    };
    let colours = colours.parse().map_err(|_| format!("convert said {o:?}"))?;
    Ok((top.to_string(), bottom.to_string(), colours))
}

/// Runs FreeRDP (`xfreerdp`, under Xvfb) in `client`'s namespace against `target` (a name or
/// address) and waits until it has finished the RDP connection sequence and xrdp's login screen
/// is on its display; returns the screenshot, kept as `target/lab-artifacts/rdp-TAG.png`.
/// Panics (with FreeRDP's log) if it does not get there within 45 s.
pub fn rdp_login_screen(client: &Host, target: &str, tag: &str) -> PathBuf {
    rdp_login_screen_in(&client.ns, &client.dir, target, tag)
}

/// [`rdp_login_screen`] from any namespace, its files in `dir`.
pub fn rdp_login_screen_in(ns: &str, dir: &Path, target: &str, tag: &str) -> PathBuf {
    require_programs();
    let dir = dir.join(format!("rdp-{tag}"));
    fs::create_dir_all(&dir).unwrap();
    let x = Xvfb::start(ns, &dir);
    let log_path = dir.join("xfreerdp.log");
    let log = File::create(&log_path).unwrap();
    let mut cmd = Command::new("ip");
    // Line-buffered: FreeRDP logs with stdio, which a file would otherwise hold back.
    cmd.args(["netns", "exec", ns, "stdbuf", "-oL", "-eL", "xfreerdp"])
        .arg(format!("/v:{target}"))
        .arg(format!("/port:{RDP_PORT}"))
        // The lab's xrdp has the package's self-signed certificate.
        .args(["/cert:ignore", "/size:1024x768"])
        // The connection state machine's transitions (the signal that the sequence completed)
        // and the address it connected to; FreeRDP 2's /log-filters does not take effect.
        .env(
            "WLOG_FILTER",
            "com.freerdp.core.connection:DEBUG,com.freerdp.core:DEBUG",
        )
        .env("DISPLAY", &x.display)
        // FreeRDP keeps server certificates under the config home: the test's, not root's.
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env_remove("WAYLAND_DISPLAY")
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log));
    die_with_parent(&mut cmd);
    let what = describe(&cmd);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("`{what}`: {e}"));
    let t0 = Instant::now();
    let fail = |child: &mut Child, why: String| -> ! {
        let _ = child.kill();
        let _ = child.wait();
        dump_file("xfreerdp", &log_path, 80);
        panic!("`{what}` in {ns}: {why}");
    };
    // 1. FreeRDP says the connection is active.
    loop {
        let text = fs::read_to_string(&log_path).unwrap_or_default();
        if text.contains("--> CONNECTION_STATE_ACTIVE") {
            break;
        }
        if let Ok(Some(st)) = child.try_wait() {
            fail(
                &mut child,
                format!("exited ({st}) before the connection was active"),
            );
        }
        if t0.elapsed() > LOGIN_LIMIT {
            fail(&mut child, format!("not active within {LOGIN_LIMIT:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let active = t0.elapsed();
    // 2. The login screen is on the display.
    let xwd = dir.join("screen.xwd");
    let png = artifacts_dir().join(format!("rdp-{tag}.png"));
    let seen = loop {
        let mut shot = Command::new("ip");
        shot.args(["netns", "exec", ns, "xwd", "-root", "-silent", "-display"])
            .arg(&x.display)
            .arg("-out")
            .arg(&xwd);
        let taken = run_timeout(&mut shot, Duration::from_secs(20))
            .ok()
            .filter(|o| o.success())
            .and_then(|_| {
                let mut conv = Command::new("convert");
                conv.arg(format!("xwd:{}", xwd.display()))
                    .arg(format!("png:{}", png.display()));
                run_timeout(&mut conv, Duration::from_secs(20)).ok()
            })
            .filter(|o| o.success())
            .and_then(|_| look(&png).ok());
        if let Some((top, bottom, colours)) = &taken {
            if top == XRDP_BLUE && bottom == XRDP_BLUE && *colours >= MIN_COLOURS {
                break (top.clone(), *colours);
            }
        }
        if let Ok(Some(st)) = child.try_wait() {
            fail(
                &mut child,
                format!("exited ({st}) before the login screen showed ({taken:?})"),
            );
        }
        if t0.elapsed() > LOGIN_LIMIT {
            fail(
                &mut child,
                format!(
                    "no login screen within {LOGIN_LIMIT:?}: last screenshot {taken:?} at {}",
                    png.display()
                ),
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    let _ = child.kill();
    let _ = child.wait();
    eprintln!(
        "xfreerdp in {ns} -> {target}: connection active after {:.2} s, login screen ({} colours, \
         desktop {}) after {:.2} s; screenshot {}",
        active.as_secs_f64(),
        seen.1,
        seen.0,
        t0.elapsed().as_secs_f64(),
        png.display()
    );
    png
}

/// The address FreeRDP connected to, from its log (`connecting to peer ADDR`), if any.
pub fn rdp_peer_address(client: &Host, tag: &str) -> Option<Ipv4Addr> {
    let log = fs::read_to_string(client.dir.join(format!("rdp-{tag}/xfreerdp.log"))).ok()?;
    log.lines()
        .rev()
        .find_map(|l| l.split_once("connecting to peer ")?.1.trim().parse().ok())
}

/// `/etc/netns/NS/resolv.conf` naming `server` (the daemon's DNS on its overlay address), as
/// systemd-resolved's `~warren` route would; `ip netns exec` programs in NS use it. Removed on
/// drop.
pub struct NetnsResolvConf(PathBuf);

impl NetnsResolvConf {
    pub fn new(ns: &str, server: Ipv4Addr) -> Self {
        let dir = Path::new("/etc/netns").join(ns);
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("resolv.conf"),
            format!("nameserver {server}\noptions timeout:1 attempts:2\n"),
        )
        .unwrap();
        NetnsResolvConf(dir)
    }
}

impl Drop for NetnsResolvConf {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
