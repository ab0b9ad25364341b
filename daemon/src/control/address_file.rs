//! The host's overlay address across restarts, in `<state-dir>/address.json`: the address it
//! claims from every coordinator, how many fresh ones it tried, and how often it moved.

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use warren_daemon_core::control::address::Saved;

const FILE: &str = "address.json";

#[derive(Serialize, Deserialize)]
struct File {
    ipv4: Option<Ipv4Addr>,
    #[serde(default)]
    attempt: u32,
    #[serde(default)]
    moves: u64,
}

fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

/// What was saved; nothing (a new host) when absent. A damaged file is kept aside as
/// `address.json.damaged` and the host starts as new: the coordinators still hold its lease.
pub fn load(state_dir: &Path) -> Saved {
    match crate::paths::read_json::<File>(&path(state_dir)) {
        Ok(Some(f)) => Saved {
            ip: f.ipv4,
            attempt: f.attempt,
            moves: f.moves,
        },
        Ok(None) => Saved::default(),
        Err(e) => {
            tracing::warn!("{e:#}; kept as {FILE}.damaged, the overlay address starts afresh");
            let _ = std::fs::rename(path(state_dir), state_dir.join(format!("{FILE}.damaged")));
            Saved::default()
        }
    }
}

pub fn save(state_dir: &Path, saved: Saved) {
    let f = File {
        ipv4: saved.ip,
        attempt: saved.attempt,
        moves: saved.moves,
    };
    if let Err(e) = crate::paths::write_json(&path(state_dir), &f) {
        tracing::warn!("cannot remember the overlay address: {e:#}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_round_trips_and_a_damaged_file_is_kept_aside() {
        let d = std::env::temp_dir().join(format!("warren-address-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        assert_eq!(load(&d), Saved::default());
        let s = Saved {
            ip: Some("100.64.1.2".parse().unwrap()),
            attempt: 2,
            moves: 1,
        };
        save(&d, s);
        assert_eq!(load(&d), s);
        std::fs::write(path(&d), "{").unwrap();
        assert_eq!(load(&d), Saved::default());
        assert_eq!(
            std::fs::read_to_string(d.join("address.json.damaged")).unwrap(),
            "{"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
