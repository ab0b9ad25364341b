//! Network namespaces: creating/deleting them with `ip netns`, and running a closure on a thread
//! that has entered one (so the sockets it creates live in that namespace).

use super::cmd::{run_ok, run_quiet};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

/// Prefix of every namespace the lab creates: `wlab<pid>-<tag>-<role>`.
pub const NS_PREFIX: &str = "wlab";

/// A named network namespace, deleted (with every device in it) on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn create(name: &str) -> Netns {
        if Path::new("/run/netns").join(name).exists() {
            // Left over from an earlier process that had this pid; it is not ours any more.
            let _ = run_quiet("ip", &["netns", "del", name]);
        }
        run_ok("ip", &["netns", "add", name]);
        let ns = Netns {
            name: name.to_string(),
        };
        run_ok("ip", &["-n", name, "link", "set", "lo", "up"]);
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = run_quiet("ip", &["netns", "del", &self.name]) {
            eprintln!("warning: could not delete namespace {}: {e}", self.name);
        }
    }
}

/// Deletes namespaces left behind by earlier test processes that no longer exist (a test killed
/// by SIGKILL cannot clean up after itself).
pub fn cleanup_stale() {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = run_quiet("ip", &["netns", "del", &name]);
        }
    }
}

/// Switches the calling thread into namespace `ns` (only network namespaces can be entered by
/// one thread of a multi-threaded process, which is all we need).
pub fn enter_netns(ns: &str) {
    let path = format!("/run/netns/{ns}");
    let f = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    // SAFETY: plain syscall on a valid fd.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        panic!("setns({path}): {}", std::io::Error::last_os_error());
    }
}

/// Runs `f` on a fresh thread inside namespace `ns` and returns its result. Sockets created by
/// `f` stay in `ns` and can be used from any thread afterwards.
pub fn in_netns<T, F>(ns: &str, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let ns = ns.to_string();
    let h = std::thread::Builder::new()
        .name(format!("netns-{ns}"))
        .spawn(move || {
            enter_netns(&ns);
            f()
        })
        .expect("spawn thread");
    match h.join() {
        Ok(v) => v,
        Err(p) => std::panic::resume_unwind(p),
    }
}
