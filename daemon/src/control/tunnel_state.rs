//! Whether the user turned Warren off (`warren down`), remembered in `<state-dir>/tunnel.json` so
//! a restarted daemon (or a rebooted host) stays off until `warren up`.

use anyhow::Result;
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
        Ok(crate::paths::read_json(&path(state_dir))?.unwrap_or(Self { up: true }))
    }

    /// Written to a temporary file and renamed, so a crash keeps the old or the new state.
    pub fn save(&self, state_dir: &Path) -> Result<()> {
        crate::paths::write_json(&path(state_dir), self)
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
