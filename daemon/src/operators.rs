//! Operator users: local users allowed to use the daemon's API without being in its socket
//! group (see `api_server::access`). Kept in `<state-dir>/operators.json`, read afresh for each
//! connection that needs it (so `warrend operator add`, as the package's postinst runs it, works
//! while the daemon runs), written durably; a file that does not parse is reported and never
//! overwritten.
//!
//! Windows has no such list: the named pipe's ACL names who may use Warren, fixed when it is
//! installed ([`FIXED_AT_INSTALL`] says so to whoever asks to change it).

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
#[cfg(unix)]
use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use warren_proto::api::OperatorInfo;

pub const FILE: &str = "operators.json";

/// The answer on Windows to changing or listing who may use Warren.
#[cfg(windows)]
pub const FIXED_AT_INSTALL: &str = "on Windows, who may use Warren is set when it is installed: \
    Administrators and the user who installed it. To let another user in, install Warren again \
    as that user; meanwhile anyone can use it from a command prompt run as administrator";

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operators {
    pub operators: Vec<OperatorInfo>,
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

/// Serialises this process's read-modify-write cycles of the file.
#[cfg(unix)]
static WRITING: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Operators {
    /// An absent file is an empty list; one that does not parse is an error naming the file.
    pub fn load(state_dir: &Path) -> Result<Operators> {
        Ok(crate::paths::read_json(&path(state_dir))
            .context("the operator list")?
            .unwrap_or_default())
    }

    #[cfg_attr(windows, allow(dead_code))]
    pub fn uids(&self) -> Vec<u32> {
        self.operators.iter().map(|o| o.uid).collect()
    }

    /// Adds (`allow`) or removes `user`; returns what happened, in words.
    #[cfg_attr(windows, allow(dead_code))]
    fn apply(&mut self, user: OperatorInfo, allow: bool) -> String {
        let known = self.operators.iter().any(|o| o.uid == user.uid);
        match (allow, known) {
            (true, true) => format!("{} may already use Warren (an operator)", user.user),
            (true, false) => {
                let text = format!(
                    "{} may now use Warren without sudo (an operator: status, on/off, networks, \
                     invites; not adding operators)",
                    user.user
                );
                self.operators.push(user);
                self.operators.sort_by_key(|o| o.uid);
                text
            }
            (false, true) => {
                self.operators.retain(|o| o.uid != user.uid);
                format!(
                    "{} is no longer an operator (members of the socket's group still may use \
                     Warren)",
                    user.user
                )
            }
            (false, false) => format!("{} was not an operator", user.user),
        }
    }

    #[cfg(unix)]
    fn save(&self, state_dir: &Path) -> Result<()> {
        // 0700 like the service's StateDirectory (the postinst may come first).
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(state_dir)
            .with_context(|| format!("cannot create {}", state_dir.display()))?;
        crate::paths::write_json(&path(state_dir), self)
    }
}

/// Adds or removes the operator `user` (a user name or a numeric uid) in `state_dir`'s list.
/// A damaged list is left as it is and the change refused.
#[cfg(unix)]
pub fn set(state_dir: &Path, user: &str, allow: bool) -> Result<String> {
    let _one_at_a_time = WRITING.lock().unwrap_or_else(|e| e.into_inner());
    let who = resolve(user)?;
    if who.uid == 0 {
        bail!("root may always use Warren; it needs no operator entry");
    }
    let mut list = Operators::load(state_dir)?;
    let text = list.apply(who, allow);
    list.save(state_dir)?;
    Ok(text)
}

/// On Windows there is no list to change.
#[cfg(windows)]
pub fn set(_state_dir: &Path, _user: &str, _allow: bool) -> Result<String> {
    bail!(FIXED_AT_INSTALL)
}

/// A user name or uid, as the user database knows it.
#[cfg(unix)]
pub fn resolve(user: &str) -> Result<OperatorInfo> {
    let user = user.trim();
    if let Ok(uid) = user.parse::<u32>() {
        return match user_name(uid) {
            Some(name) => Ok(OperatorInfo { user: name, uid }),
            None => bail!("there is no user with uid {uid} on this computer"),
        };
    }
    match user_entry(user) {
        Some((uid, _)) => Ok(OperatorInfo {
            user: user.to_string(),
            uid,
        }),
        None => bail!("there is no user called {user:?} on this computer"),
    }
}

#[cfg(unix)]
/// `(uid, primary gid)` of the user called `name`.
pub fn user_entry(name: &str) -> Option<(u32, u32)> {
    let c = CString::new(name).ok()?;
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; the result points into `pw` and `buf`.
    let rc =
        unsafe { libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
    (rc == 0 && !out.is_null()).then_some((pw.pw_uid, pw.pw_gid))
}

#[cfg(unix)]
/// The name and primary gid of `uid`.
fn user_by_uid(uid: u32) -> Option<(String, u32)> {
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: as in `user_entry`; pw_name is NUL-terminated inside `buf`.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc != 0 || out.is_null() {
        return None;
    }
    let name = unsafe { CStr::from_ptr(pw.pw_name) }
        .to_string_lossy()
        .into_owned();
    Some((name, pw.pw_gid))
}

#[cfg(unix)]
pub fn user_name(uid: u32) -> Option<String> {
    user_by_uid(uid).map(|(n, _)| n)
}

#[cfg(unix)]
/// Every group `uid` belongs to in the user database (primary and supplementary), so a user
/// just added to the socket's group is admitted without logging in again.
pub fn groups_of(uid: u32) -> Vec<u32> {
    let Some((name, primary)) = user_by_uid(uid) else {
        return Vec::new();
    };
    let Ok(c) = CString::new(name) else {
        return Vec::new();
    };
    let mut n: libc::c_int = 64;
    loop {
        let mut groups = vec![0 as libc::gid_t; n as usize];
        let before = n;
        // SAFETY: `groups` holds `n` entries; getgrouplist writes at most that many and sets n.
        let rc = unsafe { libc::getgrouplist(c.as_ptr(), primary, groups.as_mut_ptr(), &mut n) };
        if rc >= 0 {
            groups.truncate(n.max(0) as usize);
            return groups;
        }
        if n <= before {
            n = before * 2;
        }
        if n > 65_536 {
            return vec![primary];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(user: &str, uid: u32) -> OperatorInfo {
        OperatorInfo {
            user: user.into(),
            uid,
        }
    }

    #[test]
    fn add_remove_and_say_so() {
        let mut l = Operators::default();
        assert!(l.apply(op("b", 1001), true).contains("may now use"));
        assert!(l.apply(op("a", 1000), true).contains("may now use"));
        assert!(l.apply(op("a", 1000), true).contains("already"));
        assert_eq!(l.uids(), [1000, 1001]);
        assert!(l.apply(op("a", 1000), false).contains("no longer"));
        assert!(l.apply(op("a", 1000), false).contains("was not"));
        assert_eq!(l.uids(), [1001]);
    }

    #[cfg(unix)]
    #[test]
    fn file_round_trip_and_a_damaged_one_is_kept() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(Operators::load(d.path()).unwrap(), Operators::default());
        // uid 0 exists everywhere; root needs no entry.
        assert!(set(d.path(), "root", true).is_err());
        assert!(set(d.path(), "no-such-user-warren-test", true).is_err());
        // Some non-root user of the machine's database, when there is one (nobody usually).
        if let Some(name) = user_name(65534) {
            set(d.path(), &name, true).unwrap();
            assert_eq!(Operators::load(d.path()).unwrap().uids(), [65534]);
            set(d.path(), "65534", false).unwrap();
            assert!(Operators::load(d.path()).unwrap().uids().is_empty());
        }
        std::fs::write(path(d.path()), "{ not json").unwrap();
        let e = Operators::load(d.path()).unwrap_err();
        assert!(format!("{e:#}").contains("damaged"), "{e:#}");
        assert!(set(d.path(), "65534", true).is_err());
        assert_eq!(
            std::fs::read_to_string(path(d.path())).unwrap(),
            "{ not json"
        );
    }

    #[cfg(unix)]
    #[test]
    fn root_is_in_its_own_groups() {
        assert!(groups_of(0).contains(&0));
        assert_eq!(user_name(0).as_deref(), Some("root"));
    }
}
