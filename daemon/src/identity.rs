//! The node's identity: an x25519 private key in `<state-dir>/node.key` (see
//! `warren_proto::keyfile` for how it is created and protected).

use anyhow::Result;
use std::path::Path;

pub const KEY_FILE: &str = "node.key";

/// Loads the private key, creating it (and the state dir) on first start.
pub fn load_or_create(state_dir: &Path) -> Result<[u8; 32]> {
    let path = state_dir.join(KEY_FILE);
    let (key, created) = warren_proto::keyfile::load_or_create(&path)?;
    if created {
        tracing::info!(path = %path.display(), "created a new node identity");
    }
    Ok(key)
}
