//! The workspace's binaries under test (`warrend`, `warren`, `warren-coordinator`, …), found in
//! the target directory this test binary was built into, and refused when older than any source
//! file they were built from (as listed in cargo's dep-info file beside each binary): a lab test
//! must never drive yesterday's daemon.
//!
//! `cargo test` does not build other packages' binaries for this crate, so `.ci/run` (and
//! docs/development.md) run `cargo build --workspace` first; a stale or missing binary says
//! exactly that.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// The workspace root: this crate's parent directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("lab/ has a parent")
        .to_path_buf()
}

/// The directory the running test binary was built into (`target/<profile>`), where cargo
/// also puts the workspace's binaries of the same profile.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test>-<hash>
    exe.parent()
        .and_then(Path::parent)
        .expect("a test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// `name` from the same profile directory, checked to exist and to be newer than every source
/// file it is built from. Panics with the command that fixes it otherwise.
pub fn bin(name: &str) -> PathBuf {
    static CHECKED: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut checked = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = checked.get_or_insert_with(HashMap::new).get(name) {
        return p.clone();
    }
    let path = profile_dir().join(name);
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| {
            panic!(
                "{} not found: the lab drives the workspace's binaries; run `cargo build \
                 --workspace` (same profile) before `cargo test`",
                path.display()
            )
        });
    let dep_info = std::fs::read_to_string(path.with_extension("d")).unwrap_or_default();
    if let Some((newer, when)) = newest_source(&dep_info) {
        if when > built {
            panic!(
                "{} is older than {} (changed after it was built): run `cargo build \
                 --workspace` (same profile) before `cargo test`",
                path.display(),
                newer.display()
            );
        }
    }
    checked
        .get_or_insert_with(HashMap::new)
        .insert(name.to_string(), path.clone());
    path
}

/// The Rust target of the Windows build (issue 24).
pub const WINDOWS_TARGET: &str = "x86_64-pc-windows-gnu";

/// The Windows build of `name` (`name.exe` in `target/x86_64-pc-windows-gnu/<profile>` of the
/// target directory this test binary was built into), checked like [`bin`]: cargo builds it
/// only when asked for that target, so a missing or stale one says how to build it.
pub fn windows_bin(name: &str) -> PathBuf {
    let profile = profile_dir();
    let dir = profile
        .parent()
        .expect("target/<profile> has a parent")
        .join(WINDOWS_TARGET)
        .join(profile.file_name().expect("a profile directory's name"));
    let path = dir.join(format!("{name}.exe"));
    let build = format!(
        "run `cargo build --target {WINDOWS_TARGET} -p {name}` (same profile and target \
         directory) before `cargo test`"
    );
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| panic!("{} not found: {build}", path.display()));
    let dep_info = std::fs::read_to_string(dir.join(format!("{name}.d"))).unwrap_or_default();
    if let Some((newer, when)) = newest_source(&dep_info) {
        if when > built {
            panic!(
                "{} is older than {} (changed after it was built): {build}",
                path.display(),
                newer.display()
            );
        }
    }
    path
}

/// The most recently modified of the files a cargo dep-info file (`target: file file …`, spaces
/// in names escaped by `\`) lists; files that are gone are skipped (cargo then rebuilds anyway).
fn newest_source(dep_info: &str) -> Option<(PathBuf, SystemTime)> {
    let first = dep_info.lines().next()?;
    let (_, files) = first.split_once(": ")?;
    let mut names = Vec::new();
    let mut name = String::new();
    let mut escaped = false;
    for c in files.chars() {
        match c {
            '\\' if !escaped => escaped = true,
            ' ' if !escaped => names.push(std::mem::take(&mut name)),
            c => {
                escaped = false;
                name.push(c);
            }
        }
    }
    names.push(name);
    names
        .into_iter()
        .filter(|n| !n.is_empty())
        .filter_map(|n| {
            let when = std::fs::metadata(&n).and_then(|m| m.modified()).ok()?;
            Some((PathBuf::from(n), when))
        })
        .max_by_key(|(_, when)| *when)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The newest listed file wins, also one whose name has a space; files that are gone do
    /// not count.
    #[test]
    fn the_newest_file_of_the_dep_info_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, secs: u64| {
            let p = dir.path().join(name);
            let f = std::fs::File::create(&p).unwrap();
            f.set_modified(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs))
                .unwrap();
            p
        };
        let old = file("old.rs", 1_000);
        let spaced = file("with space.rs", 2_000);
        let gone = dir.path().join("gone.rs");
        let esc = |p: &Path| p.display().to_string().replace(' ', "\\ ");
        let info = format!(
            "/t/debug/warrend: {} {} {}\n\n{}:\n",
            esc(&old),
            esc(&spaced),
            esc(&gone),
            esc(&old)
        );
        assert_eq!(newest_source(&info).unwrap().0, spaced);
        assert!(newest_source("").is_none());
    }
}
