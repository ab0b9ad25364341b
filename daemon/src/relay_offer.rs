//! Whether this host relays for the others in its networks (a peer relay, issue 18): the
//! person's choice (`warren relay on|off`, the GUI's switch), kept in `<state-dir>/relay.json`,
//! else on exactly while this PC hosts a network (it is reachable for its friends anyway, and
//! is their coordinator's relay already). A damaged file is reported and left alone (the
//! default applies) until a new choice replaces it.

use crate::dataplane::Dataplane;
use crate::host::Hosting;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use warren_daemon_core::node::RelayConfig;

const FILE: &str = "relay.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Choice {
    relay_for_others: bool,
}

pub struct RelayOffer {
    path: PathBuf,
    choice: Mutex<Option<bool>>,
    /// Whether we relay now, for the data plane and the control sessions.
    on: watch::Sender<bool>,
}

impl RelayOffer {
    pub fn load(state_dir: &Path) -> RelayOffer {
        let path = state_dir.join(FILE);
        let choice = match crate::paths::read_json::<Choice>(&path) {
            Ok(c) => c.map(|c| c.relay_for_others),
            Err(e) => {
                tracing::warn!("{e:#}; relaying for others follows the default meanwhile");
                None
            }
        };
        RelayOffer {
            path,
            choice: Mutex::new(choice),
            on: watch::channel(false).0,
        }
    }

    /// The person's choice, kept across restarts.
    pub fn set(&self, on: bool, hosting: bool) -> Result<()> {
        crate::paths::write_json(
            &self.path,
            &Choice {
                relay_for_others: on,
            },
        )?;
        *self.choice.lock().expect("relay choice") = Some(on);
        self.refresh(hosting);
        Ok(())
    }

    /// Whether this PC hosts a network now changes the default.
    pub fn refresh(&self, hosting: bool) {
        let on = self.choice.lock().expect("relay choice").unwrap_or(hosting);
        self.on.send_if_modified(|v| std::mem::replace(v, on) != on);
    }

    pub fn is_on(&self) -> bool {
        *self.on.borrow()
    }

    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.on.subscribe()
    }
}

/// Keeps the data plane's relay for others in step with the choice and with hosting.
pub async fn run(offer: Arc<RelayOffer>, hosting: Arc<Hosting>, dp: Arc<Dataplane>) {
    let mut on = offer.subscribe();
    // Hosting starts and stops by API requests elsewhere: look once a second.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => offer.refresh(hosting.hosts_any()),
            Ok(()) = on.changed() => {
                let relay = *on.borrow_and_update();
                tracing::info!(relay, "relaying for others in our networks");
                dp.node().set_relaying(relay, RelayConfig::default());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_while_hosting_unless_chosen_and_the_choice_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let offer = RelayOffer::load(dir.path());
        offer.refresh(false);
        assert!(!offer.is_on());
        offer.refresh(true);
        assert!(offer.is_on(), "a hosting PC relays by default");
        offer.set(false, true).unwrap();
        assert!(!offer.is_on(), "the person's choice wins");
        let again = RelayOffer::load(dir.path());
        again.refresh(true);
        assert!(!again.is_on(), "and is kept");
        again.set(true, false).unwrap();
        assert!(again.is_on());
    }

    #[test]
    fn a_damaged_file_is_left_alone_and_the_default_applies() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        std::fs::write(&path, b"{not json").unwrap();
        let offer = RelayOffer::load(dir.path());
        offer.refresh(true);
        assert!(offer.is_on());
        assert_eq!(std::fs::read(&path).unwrap(), b"{not json");
    }
}
