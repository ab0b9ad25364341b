//! The name others see: chosen with `SetName` (or `--name`), kept in `<state-dir>/name.json`,
//! and used for every coordinator; until one is chosen, the config file's `name` or the host
//! name.

use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use warren_proto::name::normalize_name;

const FILE: &str = "name.json";

#[derive(Debug, Serialize, Deserialize)]
struct NameFile {
    name: String,
}

pub struct Names {
    state_dir: PathBuf,
    /// Before a name is chosen: the config file's or the host's.
    fallback: String,
    chosen: Mutex<Option<String>>,
}

impl Names {
    /// Reads the chosen name; a damaged file is reported and the fallback used (the file is
    /// left alone until a new name is chosen).
    pub fn load(state_dir: &Path, fallback: String) -> Names {
        let p = state_dir.join(FILE);
        let chosen = match std::fs::read(&p) {
            Ok(bytes) => match serde_json::from_slice::<NameFile>(&bytes) {
                Ok(f) => Some(f.name),
                Err(e) => {
                    tracing::error!(
                        "{} is damaged ({e}); using the name {fallback}",
                        p.display()
                    );
                    None
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                tracing::error!(
                    "cannot read {}: {e}; using the name {fallback}",
                    p.display()
                );
                None
            }
        };
        Names {
            state_dir: state_dir.to_path_buf(),
            fallback,
            chosen: Mutex::new(chosen),
        }
    }

    /// The name chosen on this host, if any.
    pub fn chosen(&self) -> Option<String> {
        self.chosen.lock().expect("name lock").clone()
    }

    /// The chosen name, else the config's or the host's.
    pub fn current(&self) -> String {
        self.chosen().unwrap_or_else(|| self.fallback.clone())
    }

    /// Checks `raw` against the coordinators' rule, keeps it (durably) and returns it as
    /// coordinators store it (lowercase).
    pub fn set(&self, raw: &str) -> Result<String> {
        let name = check(raw)?;
        let mut chosen = self.chosen.lock().expect("name lock");
        if chosen.as_deref() != Some(name.as_str()) {
            std::fs::create_dir_all(&self.state_dir)?;
            let p = self.state_dir.join(FILE);
            let bytes = serde_json::to_vec_pretty(&NameFile { name: name.clone() })?;
            crate::paths::write_durably(&p.with_extension("json.tmp"), &p, &bytes)
                .with_context(|| format!("cannot keep the name in {}", p.display()))?;
            *chosen = Some(name.clone());
        }
        Ok(name)
    }
}

/// A name others may see, or why not in words that say what to type instead.
pub fn check(raw: &str) -> Result<String> {
    normalize_name(raw.trim()).map_err(|p| {
        anyhow!(
            "{raw:?} cannot be your name: {p}. Use 1 to 63 letters, digits, '-', '_' or '.', \
             starting with a letter or a digit"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chosen_name_is_kept_and_checked() {
        let d = tempfile::tempdir().unwrap();
        let n = Names::load(d.path(), "laptop".into());
        assert_eq!(n.current(), "laptop");
        assert_eq!(n.chosen(), None);
        assert_eq!(n.set("Alice").unwrap(), "alice");
        assert_eq!(n.current(), "alice");
        let e = n.set("-x").unwrap_err().to_string();
        assert!(e.contains("start") && e.contains("letter"), "{e}");
        assert!(n.set("two words").is_err());
        assert!(n.set(&"a".repeat(64)).is_err());
        assert_eq!(n.current(), "alice");
        // A restarted daemon has it.
        assert_eq!(Names::load(d.path(), "laptop".into()).current(), "alice");
        // A damaged file: the fallback, and the file is not touched.
        std::fs::write(d.path().join(FILE), "{").unwrap();
        assert_eq!(Names::load(d.path(), "laptop".into()).current(), "laptop");
        assert_eq!(std::fs::read_to_string(d.path().join(FILE)).unwrap(), "{");
    }
}
