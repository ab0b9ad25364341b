//! What this PC hosts, remembered in `<state-dir>/hosting.json` so a rebooted host starts its
//! coordinator again by itself.

use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The coordinator's control port when this PC hosts (UDP for QUIC, TCP for TCP+TLS); its STUN
/// ports are the next two and its relay the one after, as a stand-alone coordinator's are.
pub const DEFAULT_PORT: u16 = 7443;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostingConfig {
    pub port: u16,
    /// Hosted networks, lowercase as the coordinator keeps them.
    pub networks: Vec<String>,
}

impl Default for HostingConfig {
    fn default() -> Self {
        Self {
            port: DEFAULT_PORT,
            networks: Vec::new(),
        }
    }
}

const FILE: &str = "hosting.json";

fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

/// Where the hosted coordinator keeps its key, database and log.
pub fn coordinator_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("host")
}

/// What the router granted, for the hosted coordinator (`--published`).
pub fn published_file(state_dir: &Path) -> PathBuf {
    coordinator_dir(state_dir).join("published.json")
}

impl HostingConfig {
    /// The default (nothing hosted) when the file does not exist; a file that does not parse is
    /// an error, and is left alone.
    pub fn load(state_dir: &Path) -> Result<Self> {
        Ok(crate::paths::read_json(&path(state_dir))?.unwrap_or_default())
    }

    pub fn save(&self, state_dir: &Path) -> Result<()> {
        crate::paths::write_json(&path(state_dir), self)
    }

    /// Adds `network` (lowercase); `false` when it was hosted already.
    pub fn add(&mut self, network: &str) -> bool {
        let n = network.to_ascii_lowercase();
        if self.networks.contains(&n) {
            return false;
        }
        self.networks.push(n);
        self.networks.sort();
        true
    }

    /// Removes `network`; `true` when it was hosted.
    pub fn remove(&mut self, network: &str) -> bool {
        let before = self.networks.len();
        self.networks.retain(|n| !n.eq_ignore_ascii_case(network));
        self.networks.len() != before
    }

    pub fn hosts(&self, network: &str) -> bool {
        self.networks
            .iter()
            .any(|n| n.eq_ignore_ascii_case(network))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_and_a_corrupt_file_is_kept() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            HostingConfig::load(d.path()).unwrap(),
            HostingConfig::default()
        );
        let mut c = HostingConfig::default();
        assert!(c.add("LAN-Party"));
        assert!(!c.add("lan-party"));
        assert!(c.hosts("Lan-Party"));
        c.save(d.path()).unwrap();
        assert_eq!(HostingConfig::load(d.path()).unwrap(), c);
        assert!(c.remove("LAN-PARTY"));
        assert!(!c.remove("lan-party"));
        std::fs::write(d.path().join(FILE), "{\"port\":").unwrap();
        assert!(HostingConfig::load(d.path()).is_err());
        assert_eq!(
            std::fs::read_to_string(d.path().join(FILE)).unwrap(),
            "{\"port\":"
        );
    }
}
