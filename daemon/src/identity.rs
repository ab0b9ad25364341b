//! The node's identity: an x25519 private key in `<state-dir>/node.key`.
//!
//! Created once, written so that a crash at any point leaves either no key file or a complete
//! one, and never overwritten. A key file that cannot be read or parsed stops the daemon with an
//! error: silently making a new identity would cut the host off from every peer that knew it.

use anyhow::{bail, Context, Result};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use warren_proto::key::{decode_key32, encode_key32};

pub const KEY_FILE: &str = "node.key";

pub fn key_path(state_dir: &Path) -> PathBuf {
    state_dir.join(KEY_FILE)
}

/// Loads the private key, creating it (and the state dir) on first start.
pub fn load_or_create(state_dir: &Path) -> Result<[u8; 32]> {
    let path = key_path(state_dir);
    match fs::read_to_string(&path) {
        Ok(text) => return parse(&path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => bail!(
            "cannot read identity key {}: {e}; refusing to create a new identity",
            path.display()
        ),
    }
    fs::create_dir_all(state_dir)
        .with_context(|| format!("cannot create state dir {}", state_dir.display()))?;
    let mut secret = [0u8; 32];
    getrandom::getrandom(&mut secret)
        .map_err(|e| anyhow::anyhow!("no randomness for a new identity key: {e}"))?;
    create_exclusive(&path, &secret)?;
    tracing::info!(path = %path.display(), "created a new node identity");
    // Read back what is on disk: if another process won a race, its key is the identity.
    parse(&path, &fs::read_to_string(&path)?)
}

fn parse(path: &Path, text: &str) -> Result<[u8; 32]> {
    let key = decode_key32(text).map_err(|e| {
        anyhow::anyhow!(
            "identity key {} is corrupt ({e}); refusing to start with a new identity. \
             Restore it from a backup, or move it away to create a new identity",
            path.display()
        )
    })?;
    if let Ok(meta) = fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "identity key is readable by others; chmod 600 it");
        }
    }
    Ok(key)
}

/// Writes a temporary file, syncs it, then hard-links it into place: `link` fails if the target
/// exists, so an existing key is never replaced, and the target is never seen half-written.
fn create_exclusive(path: &Path, secret: &[u8; 32]) -> Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    f.write_all(format!("{}\n", encode_key32(secret)).as_bytes())?;
    f.sync_all()?;
    drop(f);
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
    if let Some(dir) = path.parent() {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("warren-id-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn created_once_with_mode_0600_and_reloaded() {
        let d = tempdir("create");
        let k1 = load_or_create(&d).unwrap();
        let mode = fs::metadata(key_path(&d)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let k2 = load_or_create(&d).unwrap();
        assert_eq!(k1, k2);
        // No temporary files are left behind.
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn corrupt_key_is_an_error_and_is_not_replaced() {
        let d = tempdir("corrupt");
        fs::create_dir_all(&d).unwrap();
        fs::write(key_path(&d), "not a key\n").unwrap();
        let err = load_or_create(&d).unwrap_err().to_string();
        assert!(err.contains("corrupt"), "{err}");
        assert_eq!(fs::read_to_string(key_path(&d)).unwrap(), "not a key\n");
        // Truncated (e.g. 31 bytes) is corrupt too.
        fs::write(key_path(&d), &encode_key32(&[1; 32])[..40]).unwrap();
        assert!(load_or_create(&d).is_err());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn unreadable_key_is_an_error() {
        let d = tempdir("unreadable");
        // A directory where the key should be: reading fails with something other than NotFound.
        fs::create_dir_all(key_path(&d)).unwrap();
        let err = load_or_create(&d).unwrap_err().to_string();
        assert!(err.contains("refusing"), "{err}");
        fs::remove_dir_all(&d).unwrap();
    }
}
