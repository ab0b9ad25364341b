//! Where the daemon keeps things by default.

use std::path::Path;

pub const DEFAULT_TUN: &str = "warren0";
pub const DEFAULT_PORT: u16 = 41820;
pub const CONFIG_FILE: &str = "config.toml";

pub use crate::platform::host::default_state_dir;

pub fn hostname() -> String {
    crate::platform::host::hostname()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "warren-host".to_string())
}

/// Writes `bytes` to `tmp`, flushes it to disk, renames it over `path` and flushes the
/// directory, so a crash or power loss leaves the old file or the new one, never an empty one.
pub fn write_durably(
    tmp: &std::path::Path,
    path: &std::path::Path,
    bytes: &[u8],
) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(tmp, path)?;
    // Windows opens no directory as a file (and NTFS journals the rename itself).
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Reads one of the daemon's JSON state files: `Ok(None)` when it does not exist; a file that
/// does not parse is an error naming it, and is left as it is for a person to look at.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Option<T>> {
    use anyhow::Context;
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("{} is damaged (fix or delete it)", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes one of the daemon's JSON state files durably ([`write_durably`], through a
/// temporary file of this process's own beside it).
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> anyhow::Result<()> {
    use anyhow::Context;
    let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
    write_durably(&tmp, path, &serde_json::to_vec_pretty(value)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_state_files_absent_round_trip_and_corrupt() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.json");
        assert_eq!(read_json::<Vec<u32>>(&p).unwrap(), None);
        write_json(&p, &vec![1u32, 2]).unwrap();
        assert_eq!(read_json::<Vec<u32>>(&p).unwrap(), Some(vec![1, 2]));
        std::fs::write(&p, "[1,").unwrap();
        let e = read_json::<Vec<u32>>(&p).unwrap_err();
        assert!(format!("{e:#}").contains("is damaged"), "{e:#}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "[1,");
    }
}
