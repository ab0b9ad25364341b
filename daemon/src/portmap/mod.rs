//! The port-mapping task: asks the router to forward a public port to one of our sockets
//! (PCP, NAT-PMP, UPnP-IGD), keeps the mapping renewed, and deletes it on `warren down` and at
//! exit. When to do what is `warren_daemon_core::portmap::PortMapper`; this runs the requests.
//!
//! One task per port: the daemon's UDP socket (its mapping goes to the node for `status` and
//! to the control session, which advertises it to peers), and the ports of a coordinator this
//! host runs (`warren host`). Every request is bounded (about 2 s per protocol), so a router
//! that does not answer delays nothing else.

mod gateway;
mod natpmp_pcp;
mod upnp;

use crate::platform::address_watch::AddressWatch;
use std::num::NonZeroU16;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use warren_daemon_core::portmap::{Action, Mapping, PortMapConfig, PortMapper};
use warren_proto::api::PortMapProtocol;

/// How long exit waits for the router to confirm the deletion.
const DELETE_WAIT: Duration = Duration::from_secs(2);

pub enum Command {
    /// `warren up` (true) or `down` (false: the mapping is deleted).
    Enabled(bool),
    /// Our addresses or public address changed: ask again now.
    NetworkChanged,
    /// The daemon is stopping: delete the mapping, then answer.
    Shutdown(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct Handle {
    commands: mpsc::Sender<Command>,
    /// The mapping held now, for netcheck and status.
    pub current: watch::Receiver<Option<Mapping>>,
}

impl Handle {
    pub fn send(&self, cmd: Command) {
        // A full queue means the task is busy with the same kind of news: dropping is fine.
        let _ = self.commands.try_send(cmd);
    }

    /// Deletes the mapping before the daemon exits, waiting at most [`DELETE_WAIT`] (plus a
    /// request in flight).
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Shutdown(tx)).await.is_ok() {
            let _ = tokio::time::timeout(DELETE_WAIT * 3, rx).await;
        }
    }
}

/// Which of a port's two kinds a mapping forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Told of the mapping held (`None`: none) whenever it changes and after every answer.
pub type Sink = Box<dyn Fn(Option<Mapping>) + Send + Sync>;

/// Starts the task for the local `port`, on (`enabled`) or off.
pub fn spawn(transport: Transport, port: u16, enabled: bool, sink: Sink) -> Handle {
    let (commands, rx) = mpsc::channel(16);
    let (current_tx, current) = watch::channel(None);
    let handle = Handle { commands, current };
    let watcher = handle.commands.clone();
    // New local addresses come from rtnetlink on a thread of their own (it blocks).
    std::thread::Builder::new()
        .name("portmap-netwatch".into())
        .spawn(move || {
            let Ok(mut watch) = AddressWatch::open() else {
                return;
            };
            while watch.next_new_address().is_ok() {
                if watcher.blocking_send(Command::NetworkChanged).is_err() {
                    return;
                }
            }
        })
        .ok();
    match NonZeroU16::new(port) {
        Some(port) => {
            tokio::spawn(run(transport, port, enabled, rx, current_tx, sink));
        }
        None => tracing::warn!("no UDP port to map"),
    }
    handle
}

/// What renewing and deleting a mapping need, per protocol.
enum Lease {
    /// PCP or NAT-PMP.
    Crab(crab_nat::PortMapping),
    Upnp(Arc<upnp::UpnpLease>),
}

/// What a Map or Renew gave (the mapping and its lease), and the lease it replaces.
type Outcome = (Option<(Mapping, Lease)>, Option<(Mapping, Lease)>);

async fn run(
    transport: Transport,
    port: NonZeroU16,
    enabled: bool,
    mut commands: mpsc::Receiver<Command>,
    current: watch::Sender<Option<Mapping>>,
    sink: Sink,
) {
    let mut mapper = PortMapper::new(PortMapConfig::default());
    mapper.handle_enabled(Instant::now(), enabled);
    // The lease of the mapping we hold (its `Mapping` is `mapper.mapping()`).
    let mut lease: Option<(Mapping, Lease)> = None;
    // A lease a fresh Map replaced: deleted if the mapper says so right after the result.
    let mut replaced: Option<(Mapping, Lease)> = None;
    let mut work: Option<JoinHandle<Outcome>> = None;
    loop {
        let now = Instant::now();
        while let Some(action) = mapper.poll_action(now) {
            match action {
                Action::Delete(m) => {
                    let l = take_lease(&mut lease, &m).or_else(|| take_lease(&mut replaced, &m));
                    if let Some(l) = l {
                        tokio::spawn(delete(m, l));
                    }
                }
                Action::Map(order) => {
                    let lifetime = mapper.config().lifetime;
                    let old = lease.take();
                    work = Some(tokio::spawn(async move {
                        (map(transport, port, order, lifetime).await, old)
                    }));
                }
                Action::Renew(m) => {
                    let l = take_lease(&mut lease, &m);
                    work = Some(tokio::spawn(async move {
                        match l {
                            Some(l) => (renew(m, l).await, None),
                            None => (None, None),
                        }
                    }));
                }
            }
        }
        // Not deleted: the new grant took its place on the router.
        replaced = None;
        if let Some(m) = mapper.poll_event() {
            match m {
                Some(m) => tracing::info!(
                    protocol = m.protocol.label(),
                    external = %m.external,
                    lifetime_s = m.lifetime.as_secs(),
                    "port mapping on the router"
                ),
                None => tracing::info!("no port mapping any more"),
            }
            sink(m);
            current.send_replace(m);
        }
        let sleep = match mapper.poll_timeout() {
            Some(t) => tokio::time::sleep_until(t.into()),
            None => tokio::time::sleep(Duration::from_secs(3600)),
        };
        tokio::select! {
            done = async { work.as_mut().expect("guarded").await }, if work.is_some() => {
                work = None;
                let (granted, old) = done.unwrap_or((None, None));
                mapper.handle_result(Instant::now(), granted.as_ref().map(|(m, _)| *m));
                // Every answer, not only changes: whoever waits for "the router answered" (a
                // hosted coordinator's reachability) learns it now.
                sink(mapper.mapping());
                lease = granted;
                replaced = old;
            }
            cmd = commands.recv() => match cmd {
                Some(Command::Enabled(on)) => mapper.handle_enabled(Instant::now(), on),
                Some(Command::NetworkChanged) => mapper.handle_network_change(Instant::now()),
                Some(Command::Shutdown(reply)) => {
                    if let Some(w) = work.take() {
                        if let Ok(Ok((granted, old))) = tokio::time::timeout(DELETE_WAIT, w).await {
                            lease = granted.or(old);
                        }
                    }
                    if let Some((m, l)) = lease.take() {
                        let _ = tokio::time::timeout(DELETE_WAIT, delete(m, l)).await;
                    }
                    sink(None);
                    current.send_replace(None);
                    let _ = reply.send(());
                    return;
                }
                None => return,
            },
            _ = sleep => {}
        }
    }
}

fn take_lease(lease: &mut Option<(Mapping, Lease)>, m: &Mapping) -> Option<Lease> {
    if lease.as_ref().is_some_and(|(held, _)| held == m) {
        lease.take().map(|(_, l)| l)
    } else {
        None
    }
}

/// Tries each protocol in `order` until one grants a mapping.
async fn map(
    transport: Transport,
    port: NonZeroU16,
    order: Vec<PortMapProtocol>,
    lifetime: Duration,
) -> Option<(Mapping, Lease)> {
    let Some((gw, local)) = gateway::default_v4() else {
        tracing::debug!("port mapping: no default IPv4 gateway to ask");
        return None;
    };
    for protocol in order {
        let result = match protocol {
            PortMapProtocol::Pcp => natpmp_pcp::map_pcp(transport, gw, local, port, lifetime)
                .await
                .map(|(m, ext)| (Lease::Crab(m), ext)),
            PortMapProtocol::NatPmp => natpmp_pcp::map_natpmp(transport, gw, port, lifetime)
                .await
                .map(|(m, ext)| (Lease::Crab(m), ext)),
            PortMapProtocol::Upnp => tokio::task::spawn_blocking(move || {
                upnp::map(transport, local, port.get(), lifetime)
            })
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("UPnP-IGD task failed: {e}")))
            .map(|(l, ext)| (Lease::Upnp(Arc::new(l)), ext)),
        };
        match result {
            Ok((lease, external)) => {
                let lifetime = match &lease {
                    Lease::Crab(m) => Duration::from_secs(m.lifetime().into()),
                    // 0 is an unlimited lease: renew it now and then anyway, in case the
                    // router restarted and forgot it.
                    Lease::Upnp(l) if l.lifetime == 0 => lifetime,
                    Lease::Upnp(l) => Duration::from_secs(l.lifetime.into()),
                };
                let mapping = Mapping {
                    protocol,
                    external,
                    lifetime,
                };
                return Some((mapping, lease));
            }
            Err(e) => tracing::debug!(gateway = %gw, "port mapping: {e:#}"),
        }
    }
    None
}

async fn renew(m: Mapping, lease: Lease) -> Option<(Mapping, Lease)> {
    let renewed = match lease {
        Lease::Crab(mut c) => match natpmp_pcp::renew(&mut c, m.external.ip()).await {
            Ok(external) => Some((
                Mapping {
                    external,
                    lifetime: Duration::from_secs(c.lifetime().into()),
                    ..m
                },
                Lease::Crab(c),
            )),
            Err(e) => {
                tracing::debug!("port mapping: {e:#}");
                None
            }
        },
        Lease::Upnp(l) => {
            let l2 = l.clone();
            match tokio::task::spawn_blocking(move || upnp::renew(&l2)).await {
                Ok(Ok(())) => Some((m, Lease::Upnp(l))),
                Ok(Err(e)) => {
                    tracing::debug!("port mapping: {e:#}");
                    None
                }
                Err(_) => None,
            }
        }
    };
    renewed
}

async fn delete(m: Mapping, lease: Lease) {
    let result = match lease {
        Lease::Crab(c) => natpmp_pcp::delete(c).await,
        Lease::Upnp(l) => tokio::task::spawn_blocking(move || upnp::delete(&l))
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("{e}"))),
    };
    match result {
        Ok(()) => {
            tracing::info!(protocol = m.protocol.label(), external = %m.external, "port mapping deleted")
        }
        Err(e) => tracing::warn!(external = %m.external, "cannot delete the port mapping: {e:#}"),
    }
}
