//! `warren-gui` under Xvfb against real daemons and a coordinator in the NAT lab (issue 8).
//!
//! `gui_joins_through_the_dialog`: host a creates `lan-party`; `warren-gui` on host b's socket
//! first tries a wrong password (it exits 1 with the daemon's message), then joins with the
//! right one through the Join dialog's code path (`--smoke-test-join`), renders, saves a
//! screenshot and prints its view state. The assertions are on state, not pixels: b's
//! `warren status --json` lists the network, and the GUI's view shows it with a as a member.
//!
//! `gui_actions_against_a_daemon`: what the window's buttons and dialogs do (`warren_gui::actions`,
//! the code the window runs on a worker thread), against a lab daemon: Create, Join by an
//! invite code pasted with stray spaces, Ping (the answer names the path), Check port (nothing
//! listening), Leave, and the daemon's own words for a wrong password.
//!
//! `gui_tray_menu_power_and_idle_cpu`: `warren-gui` with a session bus and a stand-in tray
//! host: its tray item registers; the icon's colour and the menu (on/off, the network with
//! its online member, "Copy my IP", "Open Warren", "Quit") are read over D-Bus as a panel
//! reads them; clicking "Turn Warren off" and "… on" in the menu turns the daemon off and on
//! (the icon turns grey and green); started with `--hidden` (as at login) the window is
//! unmapped and "Open Warren" maps it; closing the window (WM_DELETE_WINDOW, as a window
//! manager sends it) hides it without quitting; "Copy my IP" puts the IP on the clipboard; idle, hidden and shown, the GUI uses under 5 % of a
//! core (CPU time from /proc over 8 s, daemon live); "Quit" ends it.
//!
//! Needs root (the lab), `Xvfb` plus Mesa's software GL, `dbus-daemon` and `busctl`
//! (`packaging/install-deps.sh`). The first test runs without a session bus, so it also shows
//! that the tray is optional.

use warren_lab as lab;
#[path = "gui/session_bus.rs"]
mod session_bus;
#[path = "gui/tray.rs"]
mod tray;

use lab::cmd::{run_timeout, CmdOutput};
use lab::node::{start_all, wait_path, wait_status, Host};
use lab::site::SiteKind;
use lab::{sibling_bin, Lab};
use serde_json::Value;
use session_bus::{MenuEntry, SessionBus};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use warren_gui::view::Look;

/// An Xvfb server on a free display, killed on drop.
struct Xvfb {
    display: String,
    /// XDG_RUNTIME_DIR for the programs on it (0700, as a session has).
    runtime: PathBuf,
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
        // `-displayfd 1`: Xvfb takes the first free display itself (under its lock file, so
        // two tests starting at once cannot pick the same one) and writes its number when ready.
        let log = std::fs::File::create(dir.join("xvfb.log")).unwrap();
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "800x600x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start Xvfb");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
            let _ = tx.send(line);
        });
        let runtime = dir.join("gui-runtime");
        std::fs::create_dir_all(&runtime).unwrap();
        std::fs::set_permissions(
            &runtime,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        let mut x = Xvfb {
            display: String::new(),
            runtime,
            child,
        };
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        match line.trim().parse::<u32>() {
            Ok(n) => x.display = format!(":{n}"),
            Err(_) => panic!(
                "Xvfb did not start in 30 s ({:?}): {}",
                x.child.try_wait(),
                std::fs::read_to_string(dir.join("xvfb.log")).unwrap_or_default()
            ),
        }
        x
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        // SIGTERM lets Xvfb remove its lock file and socket; SIGKILL only if it hangs.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `warren-gui --socket HOST_SOCKET ARGS..` on `x`'s display, on `bus` or without a session bus.
fn gui_command(x: &Xvfb, host: &Host, bus: Option<&SessionBus>, args: &[&str]) -> Command {
    let mut cmd = Command::new(sibling_bin("warren-gui"));
    cmd.arg("--socket")
        .arg(&host.socket)
        .args(args)
        .env("DISPLAY", &x.display)
        .env("XDG_RUNTIME_DIR", &x.runtime)
        .env("LIBGL_ALWAYS_SOFTWARE", "1")
        .env_remove("WAYLAND_DISPLAY");
    match bus {
        Some(bus) => cmd.env("DBUS_SESSION_BUS_ADDRESS", &bus.address),
        None => cmd.env_remove("DBUS_SESSION_BUS_ADDRESS"),
    };
    cmd
}

/// `warren-gui` run to its end, without a session bus.
fn gui(x: &Xvfb, host: &Host, args: &[&str]) -> CmdOutput {
    let mut cmd = gui_command(x, host, None, args);
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
    lab::needs_root!();
    let mut lab = Lab::start("gui");
    let (_sa, mut ha) = lab.add_site(SiteKind::FullCone, 1, "a");
    let (_sb, mut hb) = lab.add_site(SiteKind::PortRestricted, 1, "b");
    let (a, b) = (&mut ha[0], &mut hb[0]);
    start_all(&mut [&mut *a, &mut *b]);
    a.up(&lab.coordinator);
    b.up(&lab.coordinator);
    a.warren_ok(&["create", "lan-party", "--password", "pw-party"]);

    let x = Xvfb::start(&lab.dir);

    // A wrong password: the daemon's own message, and no network joined.
    let wrong = gui(
        &x,
        b,
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

    // Kept after the test (the lab's directory is not) as its artifact, under target/tmp.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("warren-gui-join.ppm");
    let _ = std::fs::remove_file(&shot);
    let ok = gui(
        &x,
        b,
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

/// A `warren-gui` left running (with its tray), killed on drop.
struct RunningGui {
    child: Child,
    stderr: PathBuf,
}

impl RunningGui {
    fn start(x: &Xvfb, bus: &SessionBus, host: &Host, dir: &Path, args: &[&str]) -> RunningGui {
        let stderr = dir.join("gui-tray.stderr");
        let child = gui_command(x, host, Some(bus), args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("start warren-gui");
        RunningGui { child, stderr }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// User plus system CPU time so far, in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    }

    /// Share of one core used over `span`.
    fn cpu_share(&self, span: Duration) -> f64 {
        let o = Command::new("getconf").arg("CLK_TCK").output().unwrap();
        let hz: f64 = String::from_utf8_lossy(&o.stdout).trim().parse().unwrap();
        let (t0, c0) = (Instant::now(), self.cpu_ticks());
        std::thread::sleep(span);
        let (t1, c1) = (Instant::now(), self.cpu_ticks());
        (c1 - c0) as f64 / hz / (t1 - t0).as_secs_f64()
    }
}

impl Drop for RunningGui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const GREEN: Look = Look::Online;
const GREY: Look = Look::Off;
const RED: Look = Look::Problem;

#[test]
fn gui_actions_against_a_daemon() {
    lab::needs_root!();
    use warren_gui::actions::{invite_message, run, run_reply, Action, Expiry, JoinForm, Reply};
    use warren_gui::view;
    let mut lab = Lab::start("guiact");
    let (_sa, mut ha) = lab.add_site(SiteKind::FullCone, 1, "a");
    let (_sb, mut hb) = lab.add_site(SiteKind::PortRestricted, 1, "b");
    let (a, b) = (&mut ha[0], &mut hb[0]);
    start_all(&mut [&mut *a, &mut *b]);
    let sock = b.socket.clone();

    // A fresh daemon: the window's first run asks for the name, prefilled with the daemon's.
    let fresh = match warren_gui::client::call(&sock, warren_proto::api::Request::Status) {
        Ok(warren_proto::api::Response::Status(s)) => s,
        other => panic!("status: {other:?}"),
    };
    let self_name = fresh.self_.name.clone();
    let vm = view::model(&view::Link::Live(fresh), &view::UiState::default());
    assert_eq!(
        vm.first_run,
        Some(view::FirstRun::AskName {
            question: "Welcome to Warren! What name should your friends see?".into(),
            suggested: self_name,
        })
    );
    assert!(vm.can_host && vm.power.is_some());

    a.up(&lab.coordinator);
    b.up(&lab.coordinator);
    let networks = |h: &Host| h.status()["coordinator"]["networks"].clone();

    // Create network…
    let made = run(
        &sock,
        &Action::Create {
            name: " games ".into(),
            password: "pw-games".into(),
        },
    )
    .expect("create");
    assert!(made.contains("games"), "{made}");
    assert_eq!(networks(b), serde_json::json!(["games"]));
    let no_pw = run(
        &sock,
        &Action::Create {
            name: "x".into(),
            password: String::new(),
        },
    )
    .unwrap_err();
    assert_eq!(no_pw.message, "A new network needs a name and a password");

    // Join network… with a wrong password, then with an invite code as pasted.
    a.warren_ok(&["create", "lan-party", "--password", "pw-party"]);
    let wrong = run(
        &sock,
        &Action::Join(JoinForm {
            name: "lan-party".into(),
            password: "nope".into(),
            invite: String::new(),
        }),
    )
    .unwrap_err();
    assert!(
        wrong
            .message
            .contains("wrong password for network lan-party"),
        "{wrong}"
    );
    // The window decides by the code the daemon passes on from the coordinator.
    assert_eq!(wrong.code, warren_proto::api::ErrorCode::WrongPassword);
    let inv: Value =
        serde_json::from_str(&a.warren_ok(&["invite", "lan-party", "--json"])).unwrap();
    let pasted = format!("  {}\n", inv["code"].as_str().unwrap());
    let joined = run(
        &sock,
        &Action::Join(JoinForm {
            invite: pasted,
            ..Default::default()
        }),
    )
    .expect("join by invite");
    assert!(joined.contains("lan-party"), "{joined}");
    assert_eq!(networks(b), serde_json::json!(["games", "lan-party"]));

    // Ping and Check port on a member (once the pair has gone direct, so that the answer's
    // path is known).
    wait_path(b, a, &["direct"], Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(20);
    let pong = loop {
        match run(&sock, &Action::Ping(a.name.clone())) {
            Ok(p) => break p,
            Err(e) => {
                assert!(Instant::now() < deadline, "ping never answered: {e}");
                std::thread::sleep(Duration::from_millis(300));
            }
        }
    };
    assert!(
        pong.starts_with(&format!("{} answered in ", a.name))
            && pong.ends_with("(direct connection)"),
        "{pong}"
    );
    let check = run(
        &sock,
        &Action::Check {
            peer: a.name.clone(),
            port: "3390/tcp".into(),
        },
    )
    .expect("check");
    assert!(check.contains("nothing listening"), "{check}");
    let bad_port = run(
        &sock,
        &Action::Check {
            peer: a.name.clone(),
            port: "rdp".into(),
        },
    )
    .unwrap_err();
    assert!(!bad_port.message.is_empty());

    // Invite friends… (1 hour): the code the window puts on the clipboard lets a join.
    let reply = run_reply(
        &sock,
        &Action::Invite {
            network: "games".into(),
            expiry: Expiry::Hour,
        },
    )
    .expect("invite");
    let Reply::Invite { code, message, .. } = reply else {
        panic!("not an invite: {reply:?}")
    };
    assert_eq!(message, invite_message("games", Expiry::Hour));
    a.warren_ok(&["join", &code]);
    assert_eq!(networks(a), serde_json::json!(["games", "lan-party"]));

    // Leave network… (the window asks first; this is what its Yes does).
    let left = run(&sock, &Action::Leave("games".into())).expect("leave");
    assert!(left.contains("games"), "{left}");
    assert_eq!(networks(b), serde_json::json!(["lan-party"]));
}

/// Issue 15's acceptance through the window: on a fresh daemon, `warren-gui
/// --smoke-test-host` runs the first run (the name), Host a network, the owner's Locked
/// switch, Invite friends (the code on the clipboard, read back with `xclip`), Approve of the
/// friend's request and Remove, through the same functions as the buttons; a screenshot is
/// kept in `target/tmp/warren-gui-host.ppm`. The host's router forwards ports (miniupnpd), so
/// the friend on another site reaches the coordinator on the host's PC.
#[test]
fn gui_first_run_host_invite_approve_remove() {
    lab::needs_root!();
    let mut lab = Lab::start("guihost");
    let (site_a, mut ha) = lab.add_site(SiteKind::PortRestrictedUpnp, 1, "a");
    let (_sb, mut hb) = lab.add_site(SiteKind::FullCone, 1, "b");
    let (a, b) = (&mut ha[0], &mut hb[0]);
    start_all(&mut [&mut *a, &mut *b]);
    let x = Xvfb::start(&lab.dir);

    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("warren-gui-host.ppm");
    let _ = std::fs::remove_file(&shot);
    let spec = format!("{}:game-night", a.name);
    let mut child = gui_command(
        &x,
        a,
        None,
        &[
            "--smoke-test-host",
            &spec,
            "--screenshot",
            shot.to_str().unwrap(),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(std::fs::File::create(lab.dir.join("gui-host.stderr")).unwrap())
    .spawn()
    .expect("start warren-gui");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let stderr = || std::fs::read_to_string(lab.dir.join("gui-host.stderr")).unwrap_or_default();
    let next_line = |what: &str| -> String {
        rx.recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("warren-gui never printed {what}; stderr: {}", stderr()))
    };

    // Host: the name, the network, and its invite code on the clipboard.
    let line = next_line("the invite");
    let code = line
        .strip_prefix("invite ")
        .unwrap_or_else(|| panic!("expected `invite CODE`, got {line:?}"))
        .to_string();
    let o = Command::new("timeout")
        .args(["5", "xclip", "-display", &x.display])
        .args(["-selection", "clipboard", "-o"])
        .output()
        .expect("xclip");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        code,
        "the code is on the clipboard"
    );
    // Made right after hosting began, the invite still names the router's public address
    // (the daemon waits for the router's answer), so the friend on the internet can use it.
    let decoded = warren_proto::invite::Invite::decode(&code).expect("an invite");
    assert!(
        decoded
            .coordinator
            .starts_with(&format!("{}:", site_a.public_ip)),
        "{decoded:?}"
    );
    let st = a.status();
    assert_eq!(st["self"]["name"], a.name.as_str(), "the first run's name");
    assert_eq!(st["hosting"]["networks"], serde_json::json!(["game-night"]));
    assert_eq!(
        st["coordinator"]["locked"],
        serde_json::json!(["game-night"])
    );

    // The friend pastes the code; the network is locked, so the owner's window approves.
    // The friend chose its name at its own first run.
    b.warren_ok(&["name", &b.name]);
    let friend = {
        let socket = b.socket.clone();
        let code = code.clone();
        std::thread::spawn(move || {
            warren_gui::actions::run(
                &socket,
                &warren_gui::actions::Action::Join(warren_gui::actions::JoinForm {
                    invite: code,
                    ..Default::default()
                }),
            )
        })
    };
    assert_eq!(next_line("the approval"), format!("approved {}", b.name));
    let _ = friend.join();

    // Remove: the window removes the friend as soon as its member list shows it (so the
    // approval admitted it), and the friend is out. (That the admitted host itself sees the
    // network is `owner.rs`'s to show: here the window may remove it within milliseconds.)
    assert_eq!(next_line("the removal"), format!("removed {}", b.name));
    wait_status(b, Duration::from_secs(30), "removed", |st| {
        st["coordinator"]["networks"] == serde_json::json!([])
    });
    let view: Value = serde_json::from_str(&next_line("the view state")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "warren-gui did not quit");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "warren-gui: {status}; {}", stderr());
    assert!(
        view["hosting"]["networks"] == serde_json::json!(["game-night"]),
        "{view}"
    );
    let img = std::fs::read(&shot).expect("screenshot written");
    assert!(img.starts_with(b"P6\n") && img.len() > 100 * 100 * 3);
}
