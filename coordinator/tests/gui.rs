//! `warren-gui` under Xvfb against real daemons and a coordinator in the NAT lab (issue 8).
//!
//! `gui_joins_through_the_dialog`: host a creates `lan-party`; `warren-gui` on host b's socket
//! first tries a wrong password (it exits 1 with the daemon's message), then joins with the
//! right one through the Join dialog's code path (`--smoke-test-join`), renders, saves a
//! screenshot and prints its view state. The assertions are on state, not pixels: b's
//! `warren status --json` lists the network, and the GUI's view shows it with a as a member.
//!
//! Needs root (the lab) and `Xvfb` plus Mesa's software GL (`packaging/install-deps.sh`). The
//! GUI runs without a D-Bus session bus, so it also shows that the tray is optional.

mod lab;

use lab::cmd::{run_timeout, CmdOutput};
use lab::node::{start_all, Host};
use lab::site::SiteKind;
use lab::{sibling_bin, Lab};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// An Xvfb server on a free display, killed on drop.
struct Xvfb {
    display: String,
    child: Child,
}

impl Xvfb {
    fn start(dir: &Path) -> Xvfb {
        let which = Command::new("sh")
            .args(["-c", "command -v Xvfb"])
            .output()
            .expect("sh");
        assert!(
            which.status.success(),
            "Xvfb not found: install it with packaging/install-deps.sh (package xvfb)"
        );
        let base = 90 + std::process::id() % 400;
        let n = (base..base + 100)
            .find(|n| {
                !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                    && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
            })
            .expect("a free X display number");
        let log = std::fs::File::create(dir.join("xvfb.log")).unwrap();
        let child = Command::new("Xvfb")
            .arg(format!(":{n}"))
            .args(["-screen", "0", "800x600x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start Xvfb");
        let mut x = Xvfb {
            display: format!(":{n}"),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
            if let Ok(Some(st)) = x.child.try_wait() {
                panic!(
                    "Xvfb exited with {st}: {}",
                    std::fs::read_to_string(dir.join("xvfb.log")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "Xvfb did not start in 10 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        x
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `warren-gui --socket HOST_SOCKET ARGS..` on `x`'s display, without a session bus.
fn gui(x: &Xvfb, host: &Host, runtime: &Path, args: &[&str]) -> CmdOutput {
    let mut cmd = Command::new(sibling_bin("warren-gui"));
    cmd.arg("--socket")
        .arg(&host.socket)
        .args(args)
        .env("DISPLAY", &x.display)
        .env("XDG_RUNTIME_DIR", runtime)
        .env("LIBGL_ALWAYS_SOFTWARE", "1")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("DBUS_SESSION_BUS_ADDRESS");
    let o = run_timeout(&mut cmd, Duration::from_secs(90)).unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "warren-gui {}: {}\nstdout: {}\nstderr: {}",
        args.join(" "),
        o.status,
        o.stdout.trim(),
        o.stderr.trim()
    );
    o
}

#[test]
fn gui_joins_through_the_dialog() {
    let mut lab = Lab::start("gui");
    let (_sa, mut ha) = lab.add_site(SiteKind::FullCone, 1, "a");
    let (_sb, mut hb) = lab.add_site(SiteKind::PortRestricted, 1, "b");
    let (a, b) = (&mut ha[0], &mut hb[0]);
    start_all(&mut [&mut *a, &mut *b]);
    a.up(&lab.coordinator);
    b.up(&lab.coordinator);
    a.warren_ok(&["create", "lan-party", "--password", "pw-party"]);

    let x = Xvfb::start(&lab.dir);
    let runtime: PathBuf = lab.dir.join("gui-runtime");
    std::fs::create_dir_all(&runtime).unwrap();
    std::fs::set_permissions(
        &runtime,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();

    // A wrong password: the daemon's own message, and no network joined.
    let wrong = gui(
        &x,
        b,
        &runtime,
        &["--smoke-test-join", "lan-party:wrong", "--exit-after-join"],
    );
    assert_eq!(wrong.status.code(), Some(1), "a failed join exits 1");
    assert!(
        wrong
            .stderr
            .contains("join failed: wrong password for network lan-party"),
        "the daemon's message is shown: {}",
        wrong.stderr
    );
    let st = b.status();
    assert_eq!(st["coordinator"]["networks"], serde_json::json!([]));

    let shot = lab.dir.join("gui.ppm");
    let ok = gui(
        &x,
        b,
        &runtime,
        &[
            "--smoke-test-join",
            "lan-party:pw-party",
            "--screenshot",
            shot.to_str().unwrap(),
            "--exit-after-join",
        ],
    );
    assert!(ok.success(), "warren-gui failed: {}", ok.stderr);
    assert!(
        ok.stderr.contains("no tray icon"),
        "without a session bus the tray is skipped and said so"
    );

    // The daemon has joined.
    let st = b.status();
    assert_eq!(
        st["coordinator"]["networks"],
        serde_json::json!(["lan-party"])
    );

    // The GUI's view showed the network with a in it.
    let line = ok
        .stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .expect("the view state as JSON on stdout");
    let view: Value = serde_json::from_str(line).unwrap();
    assert_eq!(view["me"]["name"], b.name.as_str());
    let net = view["networks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "lan-party")
        .unwrap_or_else(|| panic!("lan-party in the view: {view}"));
    let members: Vec<&str> = net["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(members, [a.name.as_str()]);
    assert!(view["can_manage_networks"].as_bool().unwrap());

    // A screenshot was taken: a PPM of the window's size.
    let img = std::fs::read(&shot).expect("screenshot written");
    assert!(img.starts_with(b"P6\n"), "a PPM image");
    assert!(img.len() > 100 * 100 * 3, "a window-sized image");
}
