//! LAN game discovery for games that know nothing of Warren (issue 16). Games send their
//! discovery broadcasts and multicast the ordinary way, out of the physical LAN; this keeps
//! the kernel copying those (for the carried ports) to the Warren interface, where the core
//! rewrites them to come from the overlay address and fans them out to peers. On the
//! receiving side it mirrors the host's multicast memberships onto the Warren interface, so
//! the kernel accepts the groups there. All of it only while Warren is up; nothing is left in
//! the kernel after `warren down` or when the daemon stops.
//!
//! A thread of its own (the kernel is asked through `nft` and `/proc`, both blocking): every
//! two seconds, or at once after a change, it brings the kernel in line with what should be.

mod config;
mod igmp;
mod lan_broadcasts;
pub mod list;
mod rules;

use crate::control::ControlView;
use crate::dataplane::Dataplane;
use config::GamesConfig;
use list::Entry;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use warren_proto::api::games::{
    DiscoveryPort, GameNetwork, GamePortStatus, GamesStatus, PortSource,
};

const PERIOD: Duration = Duration::from_secs(2);
/// How long a refused rule set waits before it is tried again (nft missing, an old kernel).
const RETRY_FAILED: Duration = Duration::from_secs(60);

enum Wake {
    Changed,
    Stop,
}

struct State {
    config: GamesConfig,
    /// The config file could not be read: user ports are not carried, and it is not written.
    config_error: Option<String>,
    /// The script in force (`None`: no table).
    applied: Option<String>,
    /// A script nft refused, and when: tried again after [`RETRY_FAILED`], not every tick.
    failed: Option<(String, std::time::Instant)>,
    problem: Option<String>,
    mirror: igmp::Mirror,
}

pub struct Games {
    state: Mutex<State>,
    /// Ports from the config file (read-only: changed by editing it and restarting).
    from_config: Vec<DiscoveryPort>,
    wake: Mutex<mpsc::Sender<Wake>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    dp: Arc<Dataplane>,
    view: Arc<Mutex<ControlView>>,
    state_dir: PathBuf,
    tun: String,
}

impl Games {
    pub fn start(
        dp: Arc<Dataplane>,
        view: Arc<Mutex<ControlView>>,
        state_dir: PathBuf,
        tun: String,
        from_config: Vec<DiscoveryPort>,
    ) -> Arc<Games> {
        let (config, config_error) = match GamesConfig::load(&state_dir) {
            Ok(c) => (c, None),
            Err(e) => {
                tracing::error!("{e:#}; the ports you added are not carried until it is fixed");
                (GamesConfig::default(), Some(format!("{e:#}")))
            }
        };
        let (tx, rx) = mpsc::channel();
        let games = Arc::new(Games {
            state: Mutex::new(State {
                config,
                config_error,
                applied: None,
                failed: None,
                problem: None,
                mirror: igmp::Mirror::default(),
            }),
            wake: Mutex::new(tx),
            thread: Mutex::new(None),
            from_config,
            dp,
            view,
            state_dir,
            tun,
        });
        let g = games.clone();
        let handle = std::thread::Builder::new()
            .name("games".into())
            .spawn(move || loop {
                g.tick();
                match rx.recv_timeout(PERIOD) {
                    Ok(Wake::Changed) | Err(RecvTimeoutError::Timeout) => {}
                    Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => {
                        g.off();
                        return;
                    }
                }
            })
            .expect("spawn the games thread");
        *games.thread.lock().expect("games lock") = Some(handle);
        games
    }

    /// Removes every rule and membership, and stops (the daemon is stopping).
    pub fn shutdown(&self) {
        let _ = self.wake.lock().expect("games lock").send(Wake::Stop);
        if let Some(t) = self.thread.lock().expect("games lock").take() {
            let _ = t.join();
        }
    }

    fn changed(&self) {
        let _ = self.wake.lock().expect("games lock").send(Wake::Changed);
    }

    /// Every carried port: the built-in list, then the config file's, then those added since.
    fn entries(&self, config: &GamesConfig) -> Vec<Entry> {
        let mut all = list::presets();
        for p in &self.from_config {
            all.push(Entry {
                name: "from the config file".into(),
                port: p.clone(),
                source: PortSource::User,
            });
        }
        for p in &config.ports {
            all.push(Entry {
                name: "added by you".into(),
                port: p.clone(),
                source: PortSource::User,
            });
        }
        all
    }

    fn tick(&self) {
        let up = self.dp.node().is_up();
        if !up {
            self.off();
            return;
        }
        let own = *self.dp.overlay_v4.lock().expect("overlay lock");
        let broadcasts = lan_broadcasts::lan_broadcasts(&self.tun);
        let discovery = self.peer_switches();
        {
            let mut node = self.dp.node();
            node.set_own_v4(own);
            node.set_lan_broadcasts(broadcasts);
            for (key, on) in discovery {
                node.set_peer_discovery(&key, on);
            }
        }
        let mut st = self.state.lock().expect("games lock");
        let ports: Vec<DiscoveryPort> = self
            .entries(&st.config)
            .into_iter()
            .map(|e| e.port)
            .collect();
        let script = rules::script(&self.tun, &ports);
        let refused_lately = st
            .failed
            .as_ref()
            .is_some_and(|(f, at)| *f == script && at.elapsed() < RETRY_FAILED);
        if st.applied.as_deref() != Some(script.as_str()) && !refused_lately {
            match rules::run(&script) {
                Ok(()) => {
                    tracing::info!(ports = ports.len(), "game discovery rules in place");
                    st.applied = Some(script);
                    st.failed = None;
                    st.problem = None;
                }
                Err(e) => {
                    tracing::warn!("{e:#}");
                    st.failed = Some((script, std::time::Instant::now()));
                    st.problem = Some(format!(
                        "{e:#}. Games that send on the Warren interface still find each other"
                    ));
                }
            }
        }
        let want = std::fs::read_to_string("/proc/net/igmp")
            .map(|t| igmp::joined_elsewhere(&t, &self.tun))
            .unwrap_or_default();
        match crate::platform::host::ifindex(&self.tun) {
            Some(i) => st.mirror.sync(&want, i),
            None => st.mirror.clear(),
        }
    }

    /// Warren is off (or the daemon stops): nothing of ours stays in the kernel.
    fn off(&self) {
        let mut st = self.state.lock().expect("games lock");
        if st.applied.take().is_some() {
            if let Err(e) = rules::run(&rules::remove_script(&self.tun)) {
                tracing::warn!("cannot remove the game discovery rules: {e:#}");
            }
        }
        st.mirror.clear();
    }

    /// Each peer gets discovery packets when it shares a network where discovery is on.
    fn peer_switches(&self) -> Vec<(warren_proto::key::NodeKey, bool)> {
        let config = self.state.lock().expect("games lock").config.clone();
        let v = self.view.lock().expect("control view lock");
        v.peer_networks
            .iter()
            .map(|(k, nets)| (*k, nets.iter().any(|n| config.is_on(n))))
            .collect()
    }

    pub fn status(&self) -> GamesStatus {
        let up = self.dp.node().is_up();
        let st = self.state.lock().expect("games lock");
        let node = self.dp.node();
        let ports = self
            .entries(&st.config)
            .into_iter()
            .map(|e| {
                let c = node.discovery_counters(e.port.port, e.port.last);
                GamePortStatus {
                    name: e.name,
                    port: e.port,
                    source: e.source,
                    sent: c.sent,
                    received: c.received,
                    dropped: c.dropped,
                }
            })
            .collect();
        drop(node);
        let networks: BTreeSet<String> = {
            let v = self.view.lock().expect("control view lock");
            v.coordinators
                .iter()
                .flat_map(|c| c.networks.iter().cloned())
                .collect()
        };
        let problem = if !up {
            Some("Warren is off: turn it on to carry game discovery".to_string())
        } else {
            st.problem.clone().or_else(|| {
                st.config_error.as_ref().map(|e| {
                    format!("{e}; the ports you added are not carried until the file is fixed or removed")
                })
            })
        };
        GamesStatus {
            active: up && st.applied.is_some(),
            problem,
            ports,
            networks: networks
                .into_iter()
                .map(|n| GameNetwork {
                    enabled: st.config.is_on(&n),
                    network: n,
                })
                .collect(),
            mirrored_groups: st.mirror.groups(),
        }
    }

    /// Changes the user's choices and saves them; `Err` in plain words.
    fn update(
        &self,
        f: impl FnOnce(&mut GamesConfig) -> Result<String, String>,
    ) -> Result<String, String> {
        let text = {
            let mut st = self.state.lock().expect("games lock");
            if let Some(e) = &st.config_error {
                return Err(format!(
                    "{e}: fix or remove that file first (nothing was changed)"
                ));
            }
            let mut next = st.config.clone();
            let text = f(&mut next)?;
            next.save(&self.state_dir)
                .map_err(|e| format!("cannot save the change: {e:#}"))?;
            st.config = next;
            text
        };
        self.changed();
        Ok(text)
    }

    pub fn add(&self, port: DiscoveryPort) -> Result<String, String> {
        list::check(&port).map_err(|e| format!("{e:#}"))?;
        let presets = list::presets();
        self.update(|c| {
            let shown = list::shown(&port);
            if c.ports.contains(&port) || presets.iter().any(|e| e.port == port) {
                return Ok(format!("{shown} is carried already"));
            }
            c.ports.push(port);
            Ok(format!(
                "game discovery on {shown} is now carried to your networks' peers"
            ))
        })
    }

    pub fn remove(&self, port: DiscoveryPort) -> Result<String, String> {
        let presets = list::presets();
        self.update(|c| {
            let shown = list::shown(&port);
            if !c.ports.contains(&port) {
                if presets.iter().any(|e| e.port == port) {
                    return Err(format!(
                        "{shown} is in the built-in list of games; switch discovery off for a \
                         network instead"
                    ));
                }
                return Err(format!("{shown} is not one of the ports you added"));
            }
            c.ports.retain(|p| *p != port);
            Ok(format!("{shown} is no longer carried"))
        })
    }

    pub fn set_network(&self, network: &str, on: bool) -> Result<String, String> {
        let known = {
            let v = self.view.lock().expect("control view lock");
            v.coordinators
                .iter()
                .any(|c| c.networks.iter().any(|n| n.eq_ignore_ascii_case(network)))
        };
        if !known {
            return Err(format!(
                "this PC is not in a network called {network}; `warren status` lists yours"
            ));
        }
        self.update(|c| {
            c.off.retain(|n| !n.eq_ignore_ascii_case(network));
            if !on {
                c.off.push(network.to_string());
            }
            Ok(if on {
                format!("game discovery is on for {network}")
            } else {
                format!("game discovery is off for {network}: its members no longer see your games, nor you theirs")
            })
        })
    }
}
