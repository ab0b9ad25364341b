//! Whether the user turned Warren off (`warren down`), remembered in `<state-dir>/tunnel.json` so
//! a restarted daemon (or a rebooted host) stays off until `warren up`.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelState {
    pub up: bool,
}

const FILE: &str = "tunnel.json";

fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

impl TunnelState {
    /// Up when never set; a file that does not parse is an error (and is left alone).
    pub fn load(state_dir: &Path) -> Result<Self> {
        let p = path(state_dir);
        match std::fs::read(&p) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is corrupt", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self { up: true }),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
        }
    }

    /// Written to a temporary file and renamed, so a crash keeps the old or the new state.
    pub fn save(&self, state_dir: &Path) -> Result<()> {
        let p = path(state_dir);
        let tmp = p.with_extension("json.tmp");
        crate::paths::write_durably(&tmp, &p, &serde_json::to_vec(self)?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_by_default_remembered_and_corrupt_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            TunnelState::load(d.path()).unwrap(),
            TunnelState { up: true }
        );
        TunnelState { up: false }.save(d.path()).unwrap();
        assert_eq!(
            TunnelState::load(d.path()).unwrap(),
            TunnelState { up: false }
        );
        std::fs::write(d.path().join(FILE), "{up").unwrap();
        assert!(TunnelState::load(d.path()).is_err());
        assert_eq!(std::fs::read_to_string(d.path().join(FILE)).unwrap(), "{up");
    }
}
