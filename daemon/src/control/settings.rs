//! Which coordinators to follow, remembered in `<state-dir>/coordinators.json` so a restarted
//! daemon reconnects by itself. Daemons from before several coordinators kept one in
//! `coordinator.json`: it is read when the list was never written, and left in place.

use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use warren_proto::key::NodeKey;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoordinatorSettings {
    /// HOST:PORT
    pub address: String,
    pub public_key: NodeKey,
    pub name: String,
    /// More HOST:PORTs of the same coordinator, tried at the same time as `address`: a
    /// coordinator on a friend's PC is reached at its router's public address from the
    /// internet and at its LAN address from its own LAN.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternates: Vec<String>,
}

const FILE: &str = "coordinator.json";
const LIST: &str = "coordinators.json";

fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

impl CoordinatorSettings {
    /// Every coordinator this host follows, in the order they were added. A file that does
    /// not parse is an error (and is left alone).
    pub fn load_all(state_dir: &Path) -> Result<Vec<Self>> {
        if let Some(list) = crate::paths::read_json(&state_dir.join(LIST))? {
            return Ok(list);
        }
        Ok(Self::load(state_dir)?.into_iter().collect())
    }

    /// Written to a temporary file and renamed over the old one, so a crash keeps one of them.
    /// The one-coordinator file goes, so a forgotten coordinator does not come back from it.
    pub fn save_all(state_dir: &Path, list: &[Self]) -> Result<()> {
        crate::paths::write_json(&state_dir.join(LIST), &list)?;
        Self::forget(state_dir)
    }

    /// `Ok(None)` when this host never ran `warren up`; a file that does not parse is an error
    /// (and is left alone).
    pub fn load(state_dir: &Path) -> Result<Option<Self>> {
        crate::paths::read_json(&path(state_dir))
    }

    /// The single-coordinator file older daemons wrote (tests make one).
    #[cfg(test)]
    pub fn save(&self, state_dir: &Path) -> Result<()> {
        crate::paths::write_json(&path(state_dir), self)
    }

    /// `warren logout`: forget the coordinator (nothing to do if it was never set).
    pub fn forget(state_dir: &Path) -> Result<()> {
        match std::fs::remove_file(path(state_dir)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_absent_and_corrupt() {
        let d = std::env::temp_dir().join(format!("warren-coord-settings-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        assert_eq!(CoordinatorSettings::load(&d).unwrap(), None);
        let s = CoordinatorSettings {
            address: "198.51.100.1:7443".into(),
            public_key: NodeKey([3; 32]),
            name: "alice".into(),
            alternates: vec!["192.168.1.20:7443".into()],
        };
        s.save(&d).unwrap();
        assert_eq!(CoordinatorSettings::load(&d).unwrap(), Some(s));
        std::fs::write(d.join(FILE), "{").unwrap();
        assert!(CoordinatorSettings::load(&d).is_err());
        assert_eq!(std::fs::read_to_string(d.join(FILE)).unwrap(), "{");
        CoordinatorSettings::forget(&d).unwrap();
        CoordinatorSettings::forget(&d).unwrap();
        assert_eq!(CoordinatorSettings::load(&d).unwrap(), None);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_list_starts_from_an_older_single_file_and_replaces_it() {
        let d = std::env::temp_dir().join(format!("warren-coord-list-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        assert!(CoordinatorSettings::load_all(&d).unwrap().is_empty());
        let a = CoordinatorSettings {
            address: "198.51.100.1:7443".into(),
            public_key: NodeKey([3; 32]),
            name: "alice".into(),
            alternates: vec![],
        };
        a.save(&d).unwrap();
        assert_eq!(
            CoordinatorSettings::load_all(&d).unwrap(),
            std::slice::from_ref(&a)
        );
        let b = CoordinatorSettings {
            address: "127.0.0.1:7443".into(),
            public_key: NodeKey([4; 32]),
            ..a.clone()
        };
        CoordinatorSettings::save_all(&d, &[a.clone(), b.clone()]).unwrap();
        assert_eq!(CoordinatorSettings::load_all(&d).unwrap(), [a, b]);
        assert!(!d.join(FILE).exists());
        // Logged out of everything: an empty list, not the old single file again.
        CoordinatorSettings::save_all(&d, &[]).unwrap();
        assert!(CoordinatorSettings::load_all(&d).unwrap().is_empty());
        std::fs::write(d.join(LIST), "[").unwrap();
        assert!(CoordinatorSettings::load_all(&d).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
