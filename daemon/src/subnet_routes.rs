//! Subnet routes (issue 19), the host's side: the prefixes this host advertises (kept in
//! `<state-dir>/routes.json`), the routes to peers' approved LANs on the overlay interface,
//! and — where this host's own routes are approved — forwarding into its LAN.
//!
//! What it changes on the host, and undoes when Warren is turned off, a route is withdrawn or
//! the daemon stops:
//! - `ip route replace PREFIX dev warren0` for each peer LAN it routes;
//! - on a host whose routes are approved: `net.ipv4.ip_forward=1` (and
//!   `net.ipv6.conf.all.forwarding=1` for an IPv6 prefix), the earlier values restored after;
//!   and the nftables table `inet warren_routes`: from the overlay only the members of a
//!   network that approved a prefix into that prefix (nothing else is forwarded from
//!   `warren0`, and nothing enters the overlay but replies), masqueraded so the LAN's hosts
//!   answer this host and need no route back.
//!
//! The decisions are `warren_daemon_core::subnet`'s; this module reconciles the kernel with
//! them once a second.

use crate::control::ControlView;
use crate::dataplane::Dataplane;
use crate::platform::routing;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use warren_daemon_core::subnet::{self, Forward, LanPrefix, Offered, Plan};
use warren_proto::api::PeerRouteStatus;
use warren_proto::key::NodeKey;

const FILE: &str = "routes.json";
const TABLE: &str = "warren_routes";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    advertise: Vec<String>,
}

#[derive(Default)]
struct Applied {
    plan: Plan,
    /// Kernel routes on the overlay interface we added.
    installed: BTreeSet<IpNet>,
    forwarding: Vec<Forward>,
    /// The forwarding sysctls before we turned them on: restored when we stop forwarding.
    saved_sysctls: Vec<(&'static str, String)>,
}

pub struct SubnetRoutes {
    path: PathBuf,
    tun: String,
    advertised: Mutex<Vec<String>>,
    changed: watch::Sender<u64>,
    applied: Mutex<Applied>,
}

impl SubnetRoutes {
    /// A damaged file is reported and left alone; nothing is advertised meanwhile.
    pub fn load(state_dir: &Path, tun: &str) -> SubnetRoutes {
        let path = state_dir.join(FILE);
        let advertised = match crate::paths::read_json::<Saved>(&path) {
            Ok(s) => s.map(|s| s.advertise).unwrap_or_default(),
            Err(e) => {
                tracing::warn!("{e:#}; no subnet routes are advertised meanwhile");
                Vec::new()
            }
        };
        SubnetRoutes {
            path,
            tun: tun.to_string(),
            advertised: Mutex::new(advertised),
            changed: watch::channel(0).0,
            applied: Mutex::new(Applied::default()),
        }
    }

    pub fn advertised(&self) -> Vec<String> {
        self.advertised.lock().expect("routes").clone()
    }

    /// The prefixes to advertise from now on (kept); each is checked first, and an invalid
    /// one refuses the whole list with a sentence that says what to type.
    pub fn set_advertised(&self, list: &[String]) -> Result<Vec<String>, String> {
        let mut routes = Vec::new();
        for r in list.iter().flat_map(|r| r.split(',')).map(str::trim) {
            if r.is_empty() {
                continue;
            }
            routes.push(subnet::route_prefix(r)?);
        }
        routes.sort();
        routes.dedup();
        crate::paths::write_json(
            &self.path,
            &Saved {
                advertise: routes.clone(),
            },
        )
        .map_err(|e| format!("{e:#}"))?;
        *self.advertised.lock().expect("routes") = routes.clone();
        self.changed.send_modify(|n| *n += 1);
        Ok(routes)
    }

    /// Ticks whenever the advertised list changes (the control sessions tell coordinators).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The prefixes of this host's own networks.
    pub fn lans(&self) -> Vec<String> {
        let mut l: Vec<String> = own_lans(&self.tun)
            .into_iter()
            .map(|l| l.net.to_string())
            .collect();
        l.sort();
        l.dedup();
        l
    }

    /// What this host forwards now.
    pub fn forwarding(&self) -> Vec<String> {
        let a = self.applied.lock().expect("applied");
        a.forwarding
            .iter()
            .filter(|f| !f.sources.is_empty())
            .map(|f| f.prefix.to_string())
            .collect()
    }

    /// Peer `key`'s approved routes and whether this host routes them.
    pub fn peer_status(&self, key: &NodeKey) -> Vec<PeerRouteStatus> {
        let a = self.applied.lock().expect("applied");
        let routed = a
            .plan
            .routed
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, n)| PeerRouteStatus {
                prefix: n.to_string(),
                routed: true,
                note: None,
            });
        let skipped = a
            .plan
            .skipped
            .iter()
            .filter(|(k, _, _)| k == key)
            .map(|(_, n, why)| PeerRouteStatus {
                prefix: n.to_string(),
                routed: false,
                note: Some(why.to_string()),
            });
        routed.chain(skipped).collect()
    }

    /// Brings routes, cryptokey routing and forwarding in line with the control view and the
    /// data plane, once.
    fn reconcile(&self, dp: &Dataplane, view: &Mutex<ControlView>, me: &NodeKey) {
        let (peer_routes, approved_mine) = {
            let v = view.lock().expect("control view");
            let mine: Vec<(String, IpNet)> = v
                .coordinators
                .iter()
                .flat_map(|c| c.routes.iter())
                .filter(|r| r.public_key == *me && r.approved)
                .filter_map(|r| Some((r.network.clone(), r.prefix.parse().ok()?)))
                .collect();
            (v.peer_routes.clone(), mine)
        };
        let advertised = self.advertised();
        let approved_mine: Vec<(String, IpNet)> = approved_mine
            .into_iter()
            .filter(|(_, p)| {
                advertised
                    .iter()
                    .any(|a| a.parse::<IpNet>().ok() == Some(*p))
            })
            .collect();
        let lans = own_lans(&self.tun);
        let (plan, forwards) = {
            let mut node = dp.node();
            let up = node.is_up();
            let offers: Vec<Offered> = node
                .peers()
                .filter_map(|p| {
                    let routes = peer_routes.get(&p.public_key())?;
                    Some(
                        routes
                            .iter()
                            .filter_map(|r| {
                                Some(Offered {
                                    peer: p.public_key(),
                                    name: p.name().to_string(),
                                    prefix: r.parse().ok()?,
                                })
                            })
                            .collect::<Vec<_>>(),
                    )
                })
                .flatten()
                .collect();
            let plan = if up {
                subnet::plan(&offers, &lans)
            } else {
                Plan::default()
            };
            let keys: Vec<NodeKey> = node.peers().map(|p| p.public_key()).collect();
            for k in keys {
                let want = plan.through(&k);
                if node.peer_subnets(&k) != want {
                    if let Err(e) = node.set_peer_subnets(&k, &want) {
                        tracing::warn!("subnet route: {e}");
                    }
                }
            }
            let peers: Vec<(Vec<IpAddr>, Vec<String>)> = node
                .peers()
                .map(|p| {
                    let ips = p
                        .allowed_ips()
                        .iter()
                        .filter(|n| n.prefix_len() == n.max_prefix_len())
                        .map(|n| n.addr())
                        .collect();
                    (ips, p.networks().to_vec())
                })
                .collect();
            let forwards = if up {
                subnet::forwarding(&approved_mine, &peers)
            } else {
                Vec::new()
            };
            (plan, forwards)
        };
        let want: BTreeSet<IpNet> = plan.routed.iter().map(|(_, n)| *n).collect();
        let mut a = self.applied.lock().expect("applied");
        for gone in a.installed.difference(&want).copied().collect::<Vec<_>>() {
            routing::delete(&gone, &self.tun);
            a.installed.remove(&gone);
        }
        for new in want.difference(&a.installed).copied().collect::<Vec<_>>() {
            if routing::replace(&new, &self.tun) {
                a.installed.insert(new);
            }
        }
        a.plan = plan;
        if a.forwarding != forwards {
            self.apply_forwarding(&mut a, forwards);
        }
    }

    fn apply_forwarding(&self, a: &mut Applied, forwards: Vec<Forward>) {
        let active = forwards.iter().any(|f| !f.sources.is_empty());
        if active {
            let needs_v6 = forwards.iter().any(|f| matches!(f.prefix, IpNet::V6(_)));
            let mut keys = vec![routing::forwarding_switch(false)];
            if needs_v6 {
                keys.push(routing::forwarding_switch(true));
            }
            for k in keys {
                if !a.saved_sysctls.iter().any(|(s, _)| *s == k) {
                    if let Some(old) = routing::read_switch(k) {
                        a.saved_sysctls.push((k, old));
                    }
                }
                if let Err(e) = routing::write_switch(k, "1") {
                    tracing::warn!("cannot turn on forwarding ({k}): {e}");
                }
            }
            let rules = subnet::nft_ruleset(TABLE, &self.tun, &forwards);
            nft(&format!(
                "add table inet {TABLE}\ndelete table inet {TABLE}\n{rules}"
            ));
            tracing::info!(forwarding = ?self_prefixes(&forwards), "forwarding into this host's LAN");
        } else {
            self.stop_forwarding(a);
        }
        a.forwarding = forwards;
    }

    fn stop_forwarding(&self, a: &mut Applied) {
        if a.forwarding.iter().any(|f| !f.sources.is_empty()) || !a.saved_sysctls.is_empty() {
            nft(&format!(
                "add table inet {TABLE}\ndelete table inet {TABLE}"
            ));
            for (k, old) in a.saved_sysctls.drain(..) {
                let _ = routing::write_switch(k, &old);
            }
            tracing::info!("no longer forwarding into this host's LAN");
        }
        a.forwarding.clear();
    }

    /// The daemon stops: forwarding off, its table gone, the sysctls as they were. (The
    /// routes go with the interface.)
    pub fn shutdown(&self) {
        let mut a = self.applied.lock().expect("applied");
        self.stop_forwarding(&mut a);
    }
}

fn self_prefixes(f: &[Forward]) -> Vec<String> {
    f.iter().map(|f| f.prefix.to_string()).collect()
}

/// Reconciles every second until the runtime ends.
pub async fn run(
    routes: Arc<SubnetRoutes>,
    dp: Arc<Dataplane>,
    view: Arc<Mutex<ControlView>>,
    me: NodeKey,
) {
    // A daemon that crashed may have left its table behind: nothing is forwarded until a
    // route is approved again. (Its sysctl value is not known any more; it stays.)
    tokio::task::spawn_blocking(|| {
        nft(&format!(
            "add table inet {TABLE}\ndelete table inet {TABLE}"
        ))
    })
    .await
    .ok();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let (r, d, v) = (routes.clone(), dp.clone(), view.clone());
        let _ = tokio::task::spawn_blocking(move || r.reconcile(&d, &v, &me)).await;
    }
}

/// This host's own networks (not the overlay interface, not loopback or link-local).
fn own_lans(tun: &str) -> Vec<LanPrefix> {
    crate::platform::ifaddrs::list()
        .into_iter()
        .filter(|a| a.name != tun && !a.ip.is_loopback())
        .filter(|a| match a.ip {
            IpAddr::V4(v4) => !v4.is_link_local(),
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
        })
        .filter_map(|a| {
            Some(LanPrefix {
                net: IpNet::new(a.ip, a.prefix_len?).ok()?.trunc(),
                iface: a.name,
            })
        })
        .collect()
}

/// Runs an nft script for the forwarding table; a failure is logged (routes still work for
/// members, nothing is forwarded into the LAN).
fn nft(script: &str) {
    use crate::platform::packet_filter::{apply, Failure};
    match apply(script) {
        Ok(()) => {}
        Err(Failure::Unavailable(why)) => {
            tracing::warn!("subnet routes are not forwarded into this LAN: {why}")
        }
        Err(Failure::Refused(words)) => tracing::warn!("nft: {words}"),
    }
}
