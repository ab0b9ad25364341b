//! Subnet routes on the control channel (issue 19): a member's advertisement (session state,
//! sent again on every connect) goes to its peers, with each prefix's approval by the owner of
//! a network they share (the registry's); and every member of its networks sees the
//! network's routes in its network list.

use crate::hub::{unix_now, Hub};
use crate::owner::push_networks;
use crate::server::Server;
use warren_coordinator_core::registry::routes::{route_prefix, MAX_ROUTES_PER_NODE};
use warren_proto::control::msg::NetworkRoute;
use warren_proto::key::NodeKey;

/// `node` routes `routes` now (replacing what it said before): invalid prefixes are dropped,
/// at most [`MAX_ROUTES_PER_NODE`] kept. Counted against its endpoint updates, since each
/// one reaches every peer.
pub fn advertise(server: &Server, node: NodeKey, routes: Vec<String>) {
    let mut list: Vec<String> = routes.iter().filter_map(|r| route_prefix(r).ok()).collect();
    list.sort();
    list.dedup();
    list.truncate(MAX_ROUTES_PER_NODE);
    let mut hub = server.hub();
    let Some(o) = hub.online.get_mut(&node) else {
        return;
    };
    if o.routes == list {
        return;
    }
    if !o.endpoint_limit.allow(unix_now()) {
        tracing::debug!(node = %node, "route update over the rate limit: ignored");
        return;
    }
    o.routes = list;
    if o.routes.is_empty() {
        hub.advertisers.remove(&node);
    } else {
        hub.advertisers.insert(node);
    }
    let peers = hub.peers(&node);
    hub.announce_moved(&node, &peers);
    hub.cluster_online(&node);
    // Every member of its networks sees the network's routes change.
    let mut told: Vec<NodeKey> = vec![node];
    for network in hub.registry.networks_of(&node) {
        for member in hub.registry.members_of(&network).unwrap_or_default() {
            if !told.contains(&member) {
                told.push(member);
            }
        }
    }
    for k in &told {
        push_networks(&hub, k, None);
    }
}

/// The routes of `network`: those its owner approved, and those its members online here
/// advertise.
pub fn of_network(hub: &Hub, network: &str) -> Vec<NetworkRoute> {
    let advertised = |k: &NodeKey, prefix: &str| {
        hub.online
            .get(k)
            .is_some_and(|o| o.routes.iter().any(|r| r == prefix))
    };
    let name = |k: &NodeKey| hub.registry.node_name(k).unwrap_or("?").to_owned();
    let mut out: Vec<NetworkRoute> = hub
        .registry
        .approved_routes(network)
        .into_iter()
        .map(|(key, prefix)| NetworkRoute {
            key,
            name: name(&key),
            advertised: advertised(&key, &prefix),
            prefix,
            approved: true,
        })
        .collect();
    for k in &hub.advertisers {
        if !hub.registry.is_member(k, network) {
            continue;
        }
        for prefix in hub
            .online
            .get(k)
            .map(|o| o.routes.as_slice())
            .unwrap_or(&[])
        {
            if !out.iter().any(|r| r.key == *k && r.prefix == *prefix) {
                out.push(NetworkRoute {
                    key: *k,
                    name: name(k),
                    prefix: prefix.clone(),
                    advertised: true,
                    approved: false,
                });
            }
        }
    }
    out.sort_by(|a, b| (&a.name, &a.prefix).cmp(&(&b.name, &b.prefix)));
    out
}
