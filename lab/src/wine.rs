//! Windows programs in the lab, under Wine (issue 24): the Windows build of
//! `warren-coordinator` serving Linux daemons.
//!
//! Wine's sockets are made by its wineserver, one per prefix (and user), not by the program:
//! a program's sockets live in the network namespace its prefix's wineserver was started in.
//! So each lab gets a prefix of its own, a copy of the workspace's (`target/wine`, which
//! `.ci/wine-run` prepares: wineboot, and the `bcryptprimitives.dll` stand-in Rust's std needs
//! on Wine 8.0), and its first program is started inside the lab's namespace, which starts the
//! wineserver there. The copy hard-links `drive_c` (nothing there is rewritten in place by a
//! console program) and copies the registry files, which the wineserver replaces by renaming.

use super::bins::workspace_root;
use super::cmd::{run_ok, run_quiet, run_timeout};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

/// Environment of every Wine program here: no debug chatter (and no "wine32 is missing" hint
/// from Debian's launcher), no Mono or Gecko install prompts, no display.
const WINE_ENV: [(&str, &str); 2] = [
    ("WINEDEBUG", "-all"),
    ("WINEDLLOVERRIDES", "mscoree,mshtml="),
];

/// The workspace's prefix, prepared by `.ci/wine-run` the first time (once per test process).
fn template() -> PathBuf {
    static READY: Mutex<bool> = Mutex::new(false);
    let mut ready = READY.lock().unwrap_or_else(|e| e.into_inner());
    let root = workspace_root();
    let prefix = root.join("target").join("wine");
    if !*ready {
        let stand_in = prefix.join("drive_c/windows/system32/bcryptprimitives.dll");
        if !stand_in.exists() {
            let mut cmd = Command::new(root.join(".ci/wine-run"));
            cmd.args(["cmd", "/c", "exit"]).env("WINEPREFIX", &prefix);
            let out = run_timeout(&mut cmd, Duration::from_secs(180))
                .unwrap_or_else(|e| panic!("preparing the Wine prefix {}: {e}", prefix.display()));
            assert!(
                stand_in.exists(),
                "`.ci/wine-run` made no {}: {}",
                stand_in.display(),
                out.stderr
            );
        }
        // Its wineserver (if one runs) writes the registry out before it is copied.
        let mut wait = wineserver(&prefix);
        wait.arg("-w");
        let _ = run_timeout(&mut wait, Duration::from_secs(30));
        *ready = true;
    }
    prefix
}

fn wineserver(prefix: &Path) -> Command {
    let mut cmd = Command::new("wineserver");
    cmd.env("WINEPREFIX", prefix).envs(WINE_ENV);
    cmd
}

/// One lab's Wine prefix; dropping it ends every Wine process in it (its wineserver too).
pub struct WinePrefix {
    pub dir: PathBuf,
}

impl WinePrefix {
    /// A copy of the workspace's prefix at `dir` (which must not exist yet).
    pub fn copy_to(dir: &Path) -> WinePrefix {
        let template = template();
        std::fs::create_dir_all(dir).expect("create the Wine prefix's directory");
        let prefix = WinePrefix {
            dir: dir.to_path_buf(),
        };
        let entries = std::fs::read_dir(&template)
            .unwrap_or_else(|e| panic!("the Wine prefix {}: {e}", template.display()));
        for entry in entries {
            let from = entry.expect("a Wine prefix entry").path();
            let how = if from.file_name() == Some("drive_c".as_ref()) {
                "-al"
            } else {
                "-a"
            };
            let from = from.to_string_lossy().into_owned();
            run_ok("cp", &[how, &from, &dir.to_string_lossy()]);
        }
        prefix
    }

    /// `wine EXE` in namespace `ns`, with this prefix.
    pub fn command(&self, ns: &str, exe: &Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, "wine"])
            .arg(exe)
            .env("WINEPREFIX", &self.dir)
            .envs(WINE_ENV)
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY");
        cmd
    }

    /// Ends every Wine process of this prefix (the services Wine starts beside a program, and
    /// the wineserver), as a Windows shutdown would.
    pub fn kill_all(&self) {
        let mut cmd = wineserver(&self.dir);
        cmd.arg("-k");
        // Without a wineserver running there is nothing to end, and it says so.
        let _ = run_timeout(&mut cmd, Duration::from_secs(10));
        // Whatever did not end (a wineserver that did not answer): every process started with
        // this prefix, which is the lab's alone, gets SIGKILL.
        for pid in self.processes() {
            // SAFETY: signalling a process of this lab's prefix by pid.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }

    /// The processes whose environment names this prefix (Wine's own and its programs').
    fn processes(&self) -> Vec<libc::pid_t> {
        let want = format!("WINEPREFIX={}", self.dir.display());
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        procs
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<libc::pid_t>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/environ"))
                    .map(|env| env.split(|b| *b == 0).any(|v| v == want.as_bytes()))
                    .unwrap_or(false)
            })
            .collect()
    }
}

impl Drop for WinePrefix {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// `path` as a Windows program under Wine sees it: on drive `Z:`, Wine's view of `/`.
pub fn windows_path(path: &Path) -> String {
    let unix = path.to_string_lossy();
    assert!(unix.starts_with('/'), "not an absolute path: {unix}");
    format!("Z:{}", unix.replace('/', "\\"))
}

/// Panics unless Wine is installed (`wine` and `wineserver` on the PATH).
pub fn require_wine() {
    for p in ["wine", "wineserver"] {
        if run_quiet("sh", &["-c", &format!("command -v {p}")]).is_err() {
            panic!("{p} not found: the Windows build's lab tests run it under Wine (apt-get install wine wine64)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_paths_are_on_drive_z() {
        assert_eq!(
            windows_path(Path::new("/tmp/lab 1/state")),
            r"Z:\tmp\lab 1\state"
        );
    }
}
