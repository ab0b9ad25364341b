//! Where the daemon keeps things by default.

use std::path::PathBuf;

pub const DEFAULT_TUN: &str = "warren0";
pub const DEFAULT_PORT: u16 = 41820;
pub const CONFIG_FILE: &str = "config.toml";

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `/var/lib/warren` for root (the system service); the per-user data dir otherwise.
pub fn default_state_dir() -> PathBuf {
    if is_root() {
        return PathBuf::from("/var/lib/warren");
    }
    directories::ProjectDirs::from("", "", "warren")
        .map(|d| d.data_local_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".warren"))
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
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
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
