//! What the user chose about game discovery, in `<state-dir>/games.json`: ports added and
//! networks switched off. A damaged file is kept as it is and nothing added is carried (the
//! built-in list still is) until it is fixed or replaced by a change.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use warren_proto::api::games::DiscoveryPort;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GamesConfig {
    #[serde(default)]
    pub ports: Vec<DiscoveryPort>,
    /// Networks whose peers get no discovery packets from this host (nor it theirs).
    #[serde(default)]
    pub off: Vec<String>,
}

fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("games.json")
}

impl GamesConfig {
    pub fn load(state_dir: &Path) -> anyhow::Result<Self> {
        Ok(crate::paths::read_json(&path(state_dir))?.unwrap_or_default())
    }

    pub fn save(&self, state_dir: &Path) -> anyhow::Result<()> {
        crate::paths::write_json(&path(state_dir), self)
    }

    pub fn is_on(&self, network: &str) -> bool {
        !self.off.iter().any(|n| n.eq_ignore_ascii_case(network))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_a_damaged_file_is_an_error_left_alone() {
        let d = std::env::temp_dir().join(format!("warren-games-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        assert_eq!(GamesConfig::load(&d).unwrap(), GamesConfig::default());
        let c = GamesConfig {
            ports: vec![DiscoveryPort {
                port: 5000,
                last: 5001,
                group: None,
            }],
            off: vec!["Work".into()],
        };
        c.save(&d).unwrap();
        assert_eq!(GamesConfig::load(&d).unwrap(), c);
        assert!(!c.is_on("work") && c.is_on("lan"));
        std::fs::write(path(&d), "{").unwrap();
        assert!(GamesConfig::load(&d).is_err());
        assert_eq!(std::fs::read_to_string(path(&d)).unwrap(), "{");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
