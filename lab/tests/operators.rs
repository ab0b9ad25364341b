//! Who may use a daemon's local API (issue 15): root, members of the socket's group and operator
//! users, by the connecting process's credentials; and the name others see, chosen before any
//! coordinator (`warren name`), a name another member has (`name_taken`), and another one.
//! Real `warrend`s and a real coordinator in the NAT lab's namespaces, as root, after
//! `cargo build -p warren-daemon -p warren-cli -p warren-coordinator`:
//!
//! ```sh
//! cargo test -p warren-lab --test operators -- --nocapture
//! ```

use warren_lab as lab;

use lab::cmd::{run_timeout, CmdOutput};
use lab::node::{start_all, wait_status, Host};
use lab::site::SiteKind;
use lab::{sibling_bin, Lab};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

/// A system user and a group made for one test, deleted when dropped.
struct TempAccounts {
    user: String,
    group: String,
    uid: u32,
    gid: u32,
}

impl TempAccounts {
    fn create() -> TempAccounts {
        let tag = std::process::id();
        let (user, group) = (format!("wrnop{tag}"), format!("wrngrp{tag}"));
        let ok = |c: &mut Command| {
            let o = run_timeout(c, Duration::from_secs(20)).expect("runs");
            assert!(o.success(), "{o:?}");
            o
        };
        ok(Command::new("groupadd").args(["--system", &group]));
        ok(Command::new("useradd").args([
            "--system",
            "--no-create-home",
            "--user-group",
            "--shell",
            "/usr/sbin/nologin",
            &user,
        ]));
        let id = |flag: &str| -> u32 {
            ok(Command::new("id").args([flag, &user]))
                .stdout
                .trim()
                .parse()
                .unwrap()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        TempAccounts {
            user,
            group,
            uid,
            gid,
        }
    }

    /// Makes the user a member of the group in the user database (or not).
    fn member(&self, yes: bool) {
        let flag = if yes { "-a" } else { "-d" };
        let o = run_timeout(
            Command::new("gpasswd").args([flag, &self.user, &self.group]),
            Duration::from_secs(20),
        )
        .unwrap();
        assert!(o.success(), "{o:?}");
    }

    /// `warren --socket SOCK ARGS` as this user, with no supplementary groups in the process:
    /// membership can come only from the user database.
    fn warren(&self, host: &Host, args: &[&str]) -> CmdOutput {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid", &self.uid.to_string()])
            .args(["--regid", &self.gid.to_string()])
            .arg("--clear-groups")
            .arg(sibling_bin("warren"))
            .arg("--socket")
            .arg(&host.socket)
            .args(args);
        run_timeout(&mut cmd, Duration::from_secs(20)).expect("setpriv runs")
    }
}

impl Drop for TempAccounts {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.user).status();
        let _ = Command::new("groupdel").arg(&self.group).status();
    }
}

/// Lets every user reach the socket's directory.
fn open_dirs(host: &Host) {
    let mut dir = host.socket.parent().map(|p| p.to_path_buf());
    while let Some(d) = dir {
        if d == std::env::temp_dir() {
            break;
        }
        let _ = Command::new("chmod").arg("o+x").arg(&d).status();
        dir = d.parent().map(|p| p.to_path_buf());
    }
}

fn refused(o: &CmdOutput, user: &str) {
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        o.stderr
            .contains(&format!("{user} may not use Warren on this computer yet"))
            && o.stderr
                .contains(&format!("`sudo warren operator add {user}`")),
        "the refusal names the next step: {o:?}"
    );
}

/// An unknown user is refused in plain words; `warren operator add` admits it (`status`, `up`),
/// `remove` refuses it again; a member of the socket's group is admitted without a new login;
/// only root changes the list; a damaged list is reported and kept; `warrend operator add`
/// (the postinst's way) works while the daemon runs.
#[test]
fn operator_users_and_the_socket_group() {
    lab::needs_root!();
    let mut lab = Lab::start("oper");
    let (_s, mut hs) = lab.add_site(SiteKind::Public, 1, "a");
    let a = &mut hs[0];
    let acc = TempAccounts::create();
    a.extra_args = vec!["--socket-group".into(), acc.group.clone()];
    start_all(&mut [&mut *a]);
    open_dirs(a);

    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::metadata(&a.socket).unwrap();
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o666,
        "the daemon decides"
    );
    let group_gid: u32 = run_timeout(
        Command::new("getent").args(["group", &acc.group]),
        Duration::from_secs(5),
    )
    .unwrap()
    .stdout
    .split(':')
    .nth(2)
    .unwrap()
    .parse()
    .unwrap();
    assert_eq!(meta.gid(), group_gid);

    // A stranger: refused before any request, told what to do.
    let o = acc.warren(a, &["status"]);
    refused(&o, &acc.user);
    assert!(o.stderr.contains(&format!("group {}", acc.group)), "{o:?}");
    refused(&acc.warren(a, &["operator", "add", &acc.user]), &acc.user);

    // Root adds it: now it may use Warren.
    let out = a.warren_ok(&["operator", "add", &acc.user]);
    assert!(out.contains("may now use Warren"), "{out}");
    let list = a.warren_ok(&["operator", "list", "--json"]);
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list[0]["user"], acc.user.as_str());
    assert_eq!(list[0]["uid"], acc.uid);
    let o = acc.warren(a, &["status"]);
    assert!(o.success(), "an operator may use the API: {o:?}");
    assert!(o.stdout.contains("Warren is up"), "{o:?}");
    let o = acc.warren(a, &["down"]);
    assert!(o.success(), "{o:?}");
    let o = acc.warren(a, &["up"]);
    assert!(o.success() && o.stdout.contains("Warren is up"), "{o:?}");
    // But it may not let others in.
    let o = acc.warren(a, &["operator", "add", "root"]);
    assert!(
        o.status.code() == Some(1) && o.stderr.contains("only an administrator"),
        "{o:?}"
    );

    // Removed: refused again.
    let out = a.warren_ok(&["operator", "remove", &acc.user]);
    assert!(out.contains("no longer an operator"), "{out}");
    refused(&acc.warren(a, &["status"]), &acc.user);

    // A member of the group (in the user database; the process has no supplementary groups,
    // as before a new login) is admitted, and may not add operators either.
    acc.member(true);
    let o = acc.warren(a, &["status"]);
    assert!(o.success(), "a group member may use the API: {o:?}");
    let o = acc.warren(a, &["operator", "add", &acc.user]);
    assert!(
        o.status.code() == Some(1) && o.stderr.contains("only an administrator"),
        "{o:?}"
    );
    acc.member(false);
    refused(&acc.warren(a, &["status"]), &acc.user);

    // A damaged list: reported to the refused user and to root, and not overwritten.
    let file = a.state_dir.join("operators.json");
    std::fs::write(&file, "{ damaged").unwrap();
    let o = acc.warren(a, &["status"]);
    refused(&o, &acc.user);
    assert!(o.stderr.contains("damaged"), "{o:?}");
    a.warren_err(
        &["operator", "add", &acc.user],
        &["damaged", "operators.json"],
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "{ damaged");
    std::fs::remove_file(&file).unwrap();

    // `warrend operator add` edits the list directly; the running daemon admits at once.
    let o = run_timeout(
        Command::new(sibling_bin("warrend"))
            .arg("--state-dir")
            .arg(&a.state_dir)
            .args(["operator", "add", &acc.user]),
        Duration::from_secs(10),
    )
    .unwrap();
    assert!(o.success(), "{o:?}");
    let o = acc.warren(a, &["status"]);
    assert!(o.success(), "{o:?}");
}

fn self_name(st: &Value) -> &str {
    st["self"]["name"].as_str().unwrap_or("")
}

/// A name chosen before `up` is the one status shows and the coordinator knows; after a
/// restart too. Another member's name: `name_taken` in status and a plain error; another name
/// connects.
#[test]
fn name_before_up_and_a_taken_name() {
    lab::needs_root!();
    let mut lab = Lab::start("name");
    let (_sa, mut ha) = lab.add_site(SiteKind::Public, 1, "a");
    let (_sb, mut hb) = lab.add_site(SiteKind::Public, 1, "b");
    let (a, b) = (&mut ha[0], &mut hb[0]);
    start_all(&mut [&mut *a, &mut *b]);

    a.warren_err(&["name", "two words"], &["cannot be your name", "letters"]);
    let out = a.warren_ok(&["name", "Alice-PC"]);
    assert!(out.contains("alice-pc"), "{out}");
    assert_eq!(self_name(&a.status()), "alice-pc");
    assert_eq!(a.warren_ok(&["name"]).trim(), "alice-pc");
    a.stop_daemon();
    a.start_daemon();
    a.wait_api(Duration::from_secs(10));
    assert_eq!(self_name(&a.status()), "alice-pc", "kept across a restart");

    // `up` without --name: the coordinator knows this host by the chosen name.
    let addr = lab.coordinator.address();
    let out = a.warren_ok(&[
        "up",
        "--coordinator",
        &addr,
        "--coordinator-key",
        &lab.coordinator.key,
    ]);
    assert!(out.contains("as alice-pc"), "{out}");
    a.warren_ok(&["create", "lan", "--password", "pw"]);
    b.name = "bob".into();
    b.up(&lab.coordinator);
    b.warren_ok(&["join", "lan", "--password", "pw"]);
    wait_status(b, Duration::from_secs(20), "b sees alice-pc", |st| {
        Host::peer_in(st, "alice-pc").is_some()
    });
    let st = a.status();
    assert_eq!(st["coordinator"]["name"], "alice-pc");
    assert_eq!(st["coordinator"]["name_taken"], false);

    // b takes a's name: refused by the coordinator, recognisable in status.
    b.warren_err(
        &["name", "alice-pc"],
        &["already called alice-pc", "choose another name"],
    );
    let st = b.status();
    assert_eq!(st["coordinator"]["name_taken"], true, "{st}");
    assert_eq!(st["coordinator"]["connected"], false, "{st}");
    // Another name connects.
    let out = b.warren_ok(&["name", "bobby"]);
    assert!(out.contains("reconnected"), "{out}");
    let st = b.status();
    assert_eq!(st["coordinator"]["name_taken"], false, "{st}");
    assert_eq!(st["coordinator"]["connected"], true, "{st}");
    assert_eq!(self_name(&st), "bobby");
    wait_status(a, Duration::from_secs(20), "a sees bobby", |st| {
        Host::peer_in(st, "bobby").is_some()
    });

    // While Warren is off, a new name waits for `warren up`.
    a.warren_ok(&["down"]);
    let out = a.warren_ok(&["name", "alice2"]);
    assert!(out.contains("when you turn Warren on"), "{out}");
    assert_eq!(self_name(&a.status()), "alice2");
    let out = a.warren_ok(&["up"]);
    assert!(out.contains("alice2"), "{out}");
    wait_status(b, Duration::from_secs(20), "b sees alice2", |st| {
        Host::peer_in(st, "alice2").is_some()
    });
}
