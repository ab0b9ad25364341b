//! Hosting networks from this PC (`warren host`): warrend runs a `warren-coordinator` of its
//! own (with its relay), keeps it running, asks the home router to forward its ports, and
//! tells the person hosting whether friends on the internet can reach it. This host's own
//! control task then connects to that coordinator through loopback like to any other.
//!
//! The daemon and the coordinator share no code but `warren-proto`: the coordinator is a
//! separate program, started with its state under `<state-dir>/host`.

mod config;
mod reach;
mod supervisor;

pub use config::HostingConfig;

use crate::portmap::{self, Transport};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use supervisor::Supervisor;
use warren_proto::api::{HostingStatus, ReachState, Reachability};
use warren_proto::control::msg::Published;
use warren_proto::invite::MAX_ALTERNATES;
use warren_proto::key::NodeKey;

/// How long an invite waits for the router to answer the port-mapping requests (PCP and
/// NAT-PMP answer within a second; UPnP discovery gives up after a few).
const INVITE_WAIT: Duration = Duration::from_secs(10);

/// How long `warren host` waits for a freshly started coordinator to listen.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Hosting {
    state_dir: PathBuf,
    /// Our TUN, whose addresses are not LAN addresses.
    tun: String,
    port: u16,
    supervisor: Supervisor,
    inner: Mutex<Inner>,
    /// The router's answer for each port of [`reach::ports`], filled in by the mapping tasks.
    ports: Arc<Mutex<Vec<reach::Port>>>,
}

struct Inner {
    config: HostingConfig,
    /// The hosted coordinator's public key, once read.
    key: Option<NodeKey>,
    /// Why hosting.json could not be read: it is left alone, and nothing is hosted (or
    /// written over it) until a person fixes or deletes it.
    damaged: Option<String>,
    /// One mapping task per port while hosting.
    mappings: Vec<portmap::Handle>,
}

/// Tells the coordinator the public ports friends reach it at (see
/// `warren-coordinator --published`); written only when it changes.
fn publish(file: &std::path::Path, published: Option<Published>) {
    let entries: Vec<Published> = published.into_iter().collect();
    if crate::paths::read_json(file).ok().flatten().as_ref() == Some(&entries) {
        return;
    }
    if let Err(e) = crate::paths::write_json(file, &entries) {
        tracing::warn!("cannot tell the hosted coordinator its public ports: {e:#}");
    }
}

impl Hosting {
    /// Picks up what this PC hosted before a restart and starts hosting it again. A corrupt
    /// hosting.json is reported and left alone (nothing is hosted until it is fixed).
    pub fn start(state_dir: PathBuf, tun: String) -> Arc<Hosting> {
        let (config, damaged) = match HostingConfig::load(&state_dir) {
            Ok(c) => (c, None),
            Err(e) => {
                tracing::error!("{e:#}; not hosting anything until it is fixed or removed");
                (HostingConfig::default(), Some(format!("{e:#}")))
            }
        };
        let port = config.port;
        let hosting = Arc::new(Hosting {
            supervisor: Supervisor::spawn(
                config::coordinator_dir(&state_dir),
                config::published_file(&state_dir),
                port,
            ),
            state_dir,
            tun,
            port,
            inner: Mutex::new(Inner {
                config,
                key: None,
                damaged,
                mappings: Vec::new(),
            }),
            ports: Arc::new(Mutex::new(reach::ports(port))),
        });
        if !hosting.inner().config.networks.is_empty() {
            tracing::info!(
                networks = ?hosting.inner().config.networks,
                "hosting again what this PC hosted before"
            );
            hosting.run();
        }
        hosting
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("hosting lock")
    }

    /// The hosted coordinator's public key (made on first use, kept in its state dir).
    pub fn coordinator_key(&self) -> Result<NodeKey, String> {
        if let Some(key) = self.inner().key {
            return Ok(key);
        }
        let file = config::coordinator_dir(&self.state_dir).join("coordinator.key");
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let (secret, _) = warren_proto::keyfile::load_or_create(&file)
            .map_err(|e| format!("the hosted coordinator's key: {e}"))?;
        let key = warren_proto::control::auth::public_key(&secret);
        self.inner().key = Some(key);
        Ok(key)
    }

    /// Where this host's own daemon reaches the coordinator it hosts.
    pub fn loopback_address(&self) -> String {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)).to_string()
    }

    /// Starts the coordinator (if it is not running) and the router port mappings.
    pub fn run(&self) {
        self.supervisor.set_wanted(true);
        let mut inner = self.inner();
        if !inner.mappings.is_empty() {
            return;
        }
        let ports: Vec<reach::Port> = self.ports.lock().expect("ports lock").clone();
        let file = config::published_file(&self.state_dir);
        for (i, p) in ports.iter().enumerate() {
            let shared = self.ports.clone();
            let file = file.clone();
            let control = self.port;
            let transport = if p.tcp {
                Transport::Tcp
            } else {
                Transport::Udp
            };
            inner.mappings.push(portmap::spawn(
                transport,
                p.local,
                true,
                Box::new(move |m| {
                    let mut ports = shared.lock().expect("ports lock");
                    ports[i].mapped = Some(m.map(|m| m.external));
                    publish(&file, reach::published(control, &ports));
                }),
            ));
        }
    }

    /// Waits until the coordinator accepts connections on its control port (TCP listens as
    /// soon as QUIC does).
    pub async fn wait_ready(&self) -> Result<(), String> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let t0 = tokio::time::Instant::now();
        loop {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                return Ok(());
            }
            if t0.elapsed() > READY_TIMEOUT {
                return Err(format!(
                    "the coordinator on this PC did not start: {}",
                    self.supervisor.last_error().unwrap_or_else(|| format!(
                        "port {} may be in use by another program; free it, or restart the \
                         Warren service",
                        self.port
                    ))
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn hosts(&self, network: &str) -> bool {
        self.inner().config.hosts(network)
    }

    /// Refuses to host while the record of what is hosted is damaged (it would be written over).
    pub fn check_record(&self) -> Result<(), String> {
        match &self.inner().damaged {
            Some(e) => Err(format!(
                "cannot host: {e}. It records the networks this PC hosts; once it is fixed or \
                 deleted, restart the Warren service and host again"
            )),
            None => Ok(()),
        }
    }

    /// Remembers that `network` is hosted here.
    pub fn add_network(&self, network: &str) -> Result<(), String> {
        self.check_record()?;
        let mut inner = self.inner();
        let mut config = inner.config.clone();
        if config.add(network) {
            config
                .save(&self.state_dir)
                .map_err(|e| format!("cannot remember the hosted network: {e:#}"))?;
            inner.config = config;
        }
        Ok(())
    }

    /// Forgets `network`; with nothing hosted any more, the coordinator stops and the router's
    /// port mappings are deleted. `false` if it was not hosted here.
    pub async fn remove_network(&self, network: &str) -> Result<bool, String> {
        {
            let mut inner = self.inner();
            let mut config = inner.config.clone();
            if !config.remove(network) {
                return Ok(false);
            }
            config
                .save(&self.state_dir)
                .map_err(|e| format!("cannot forget the hosted network: {e:#}"))?;
            inner.config = config;
        }
        self.stop_if_idle().await;
        Ok(true)
    }

    /// With nothing hosted, stops the coordinator and deletes the router's port mappings.
    pub async fn stop_if_idle(&self) {
        let mappings = {
            let mut inner = self.inner();
            if !inner.config.networks.is_empty() {
                return;
            }
            std::mem::take(&mut inner.mappings)
        };
        tracing::info!("nothing hosted: the coordinator on this PC stops");
        self.supervisor.set_wanted(false);
        for m in &mappings {
            m.shutdown().await;
        }
        *self.ports.lock().expect("ports lock") = reach::ports(self.port);
    }

    /// Deletes the router's port mappings before warrend exits (the coordinator child goes
    /// with warrend by itself).
    pub async fn shutdown(&self) {
        let mappings = std::mem::take(&mut self.inner().mappings);
        for m in &mappings {
            m.shutdown().await;
        }
    }

    fn lan(&self) -> Vec<SocketAddr> {
        crate::control::lan_endpoints(self.port, &self.tun)
    }

    pub fn reachability(&self) -> Reachability {
        let ports = self.ports.lock().expect("ports lock").clone();
        reach::reachability(self.port, &ports, &self.lan(), self.supervisor.running())
    }

    /// This PC hosts at least one network.
    pub fn hosts_any(&self) -> bool {
        !self.inner().config.networks.is_empty()
    }

    /// `None` while this PC hosts nothing.
    pub fn status(&self) -> Option<HostingStatus> {
        let networks = self.inner().config.networks.clone();
        if networks.is_empty() {
            return None;
        }
        Some(HostingStatus {
            networks,
            running: self.supervisor.running(),
            port: self.port,
            public_key: self.coordinator_key().ok()?,
            reachability: self.reachability(),
        })
    }

    /// The addresses an invite to a hosted network carries: the public one first when the
    /// router forwards the ports, then the LAN ones (for friends on this LAN, whose router
    /// may not loop the public address back). While the router has not answered yet it
    /// waits for it (at most `INVITE_WAIT`): an invite made right after hosting started
    /// would otherwise carry only LAN addresses, and friends on the internet could not use it.
    pub async fn invite_addresses(&self) -> Result<(String, Vec<String>), String> {
        let deadline = tokio::time::Instant::now() + INVITE_WAIT;
        let mut r = self.reachability();
        while r.state == ReachState::Checking && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            r = self.reachability();
        }
        let mut all: Vec<String> = Vec::new();
        if let (ReachState::Reachable, Some(public)) = (r.state, r.public) {
            all.push(public.to_string());
            // A friend whose network blocks UDP connects over TCP, which the router may
            // forward from another public port.
            let ports = self.ports.lock().expect("ports lock").clone();
            if let Some(tcp) = reach::published(self.port, &ports).and_then(|p| p.tcp) {
                all.push(tcp.to_string());
            }
        }
        let mut lan = r.lan.clone();
        // IPv4 first: most friends' networks route it.
        lan.sort_by_key(|a| a.is_ipv6());
        all.extend(lan.iter().map(|a| a.to_string()));
        all.truncate(1 + MAX_ALTERNATES);
        if all.is_empty() {
            return Err(
                "this PC has no network address friends could reach: connect it to \
                        a network first"
                    .into(),
            );
        }
        let first = all.remove(0);
        Ok((first, all))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_record_refuses_hosting_and_is_kept() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("hosting.json");
        std::fs::write(&file, "{\"port\": 74").unwrap();
        let h = Hosting::start(d.path().to_path_buf(), "warren0".into());
        let e = h.check_record().unwrap_err();
        assert!(e.contains("hosting.json is damaged"), "{e}");
        assert!(e.contains("fixed or deleted"), "{e}");
        assert!(h.add_network("party").is_err());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "{\"port\": 74");
        assert!(h.status().is_none());
    }

    #[test]
    fn what_is_hosted_is_remembered() {
        let d = tempfile::tempdir().unwrap();
        let h = Hosting::start(d.path().to_path_buf(), "warren0".into());
        assert!(h.check_record().is_ok());
        h.add_network("Party").unwrap();
        assert!(h.hosts("party"));
        assert_eq!(
            HostingConfig::load(d.path()).unwrap().networks,
            vec!["party".to_string()]
        );
        assert_eq!(h.loopback_address(), "127.0.0.1:7443");
    }
}
