//! Long-term private keys on disk (a node's identity, the coordinator's key).
//!
//! One base64 line, mode 0600 (on Windows an ACL for SYSTEM, Administrators and the owner). Created once, written so that a crash at any point leaves either
//! no key file or a complete one, and never overwritten. A file that cannot be read or parsed is
//! an error: silently making a new key would cut a host off from everyone who knew the old one.
//! (The one place in this crate that touches the file system: both binaries need exactly this.)

use crate::key::{decode_key32, encode_key32};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum KeyFileError {
    #[error(
        "key file {path} is corrupt ({reason}); refusing to start with a new identity. \
         Restore it from a backup, or move it away to create a new identity"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot read key file {path}: {source}; refusing to create a new identity")]
    Unreadable { path: PathBuf, source: io::Error },
    #[error("cannot create key file {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
}

/// Loads the private key at `path`, creating it (and its directory) if there is none.
/// Returns the key and whether it was created now.
pub fn load_or_create(path: &Path) -> Result<([u8; 32], bool), KeyFileError> {
    match fs::read_to_string(path) {
        Ok(text) => return parse(path, &text).map(|k| (k, false)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(KeyFileError::Unreadable {
                path: path.into(),
                source,
            })
        }
    }
    let create_err = |source| KeyFileError::Create {
        path: path.into(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(create_err)?;
    }
    let mut secret = [0u8; 32];
    getrandom::getrandom(&mut secret)
        .map_err(|e| create_err(io::Error::other(format!("no randomness: {e}"))))?;
    create_exclusive(path, &secret).map_err(create_err)?;
    // Read back what is on disk: if another process won a race, its key is the identity.
    let text = fs::read_to_string(path).map_err(|source| KeyFileError::Unreadable {
        path: path.into(),
        source,
    })?;
    parse(path, &text).map(|k| (k, true))
}

fn parse(path: &Path, text: &str) -> Result<[u8; 32], KeyFileError> {
    let key = decode_key32(text).map_err(|e| KeyFileError::Corrupt {
        path: path.into(),
        reason: e.to_string(),
    })?;
    if let Some(who) = private::open_to_others(path) {
        eprintln!(
            "warning: key file {} is readable by {who}; {}",
            path.display(),
            private::HOW_TO_CLOSE
        );
    }
    Ok(key)
}

/// Writes a temporary file, syncs it, then hard-links it into place: `link` fails if the target
/// exists, so an existing key is never replaced, and the target is never seen half-written.
fn create_exclusive(path: &Path, secret: &[u8; 32]) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let mut f = private::create_new(&tmp)?;
    f.write_all(format!("{}\n", encode_key32(secret)).as_bytes())?;
    f.sync_all()?;
    drop(f);
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    if let Some(dir) = path.parent() {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// A file only its owner (and on Windows SYSTEM and Administrators) may read, created so that
/// the secret is never written before the protection is in place.
#[cfg(unix)]
mod private {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    use std::path::Path;

    pub const HOW_TO_CLOSE: &str = "chmod 600 it";

    pub fn create_new(path: &Path) -> std::io::Result<std::fs::File> {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
    }

    /// Who else may read `path`, if anyone.
    pub fn open_to_others(path: &Path) -> Option<&'static str> {
        let mode = std::fs::metadata(path).ok()?.permissions().mode();
        (mode & 0o077 != 0).then_some("others")
    }
}

#[cfg(windows)]
mod private {
    use crate::win_acl::{self, SecurityDescriptor, PRIVATE_FILE};
    use std::path::Path;

    pub const HOW_TO_CLOSE: &str =
        "in its Properties → Security, leave only SYSTEM, Administrators and its owner";

    pub fn create_new(path: &Path) -> std::io::Result<std::fs::File> {
        win_acl::create_new_file(path, &SecurityDescriptor::from_sddl(PRIVATE_FILE)?)
    }

    pub fn open_to_others(path: &Path) -> Option<&'static str> {
        let acl = win_acl::dacl_of(path).ok()?;
        win_acl::open_to_others(&acl).then_some("other users")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("warren-keyfile-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn created_once_private_and_reloaded() {
        let d = tempdir("create");
        let path = d.join("node.key");
        let (k1, created) = load_or_create(&path).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        #[cfg(windows)]
        {
            let acl = crate::win_acl::dacl_of(&path).unwrap();
            assert!(!crate::win_acl::open_to_others(&acl), "{acl}");
        }
        assert_eq!(private::open_to_others(&path), None);
        let (k2, created) = load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(k1, k2);
        // No temporary files are left behind.
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn corrupt_key_is_an_error_and_is_not_replaced() {
        let d = tempdir("corrupt");
        fs::create_dir_all(&d).unwrap();
        let path = d.join("node.key");
        fs::write(&path, "not a key\n").unwrap();
        let err = load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("corrupt"), "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "not a key\n");
        // Truncated (31 bytes) is corrupt too.
        fs::write(&path, &encode_key32(&[1; 32])[..40]).unwrap();
        assert!(load_or_create(&path).is_err());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn unreadable_key_is_an_error() {
        let d = tempdir("unreadable");
        let path = d.join("node.key");
        // A directory where the key should be: reading fails with something other than NotFound.
        fs::create_dir_all(&path).unwrap();
        let err = load_or_create(&path).unwrap_err().to_string();
        assert!(err.contains("refusing"), "{err}");
        fs::remove_dir_all(&d).unwrap();
    }
}
