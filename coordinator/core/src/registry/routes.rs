//! Subnet routes (issue 19): a member advertises LAN prefixes (its session says which; they
//! are not stored), the network's owner approves them (stored), and the network's other
//! members route an approved prefix through that member. Only approvals live here.

use super::{Registry, RegistryError};
use crate::records::{Change, RouteRecord};
use ipnet::IpNet;
use warren_proto::key::NodeKey;

/// Prefixes one member may advertise: a home has a LAN or two, a small office a few.
pub const MAX_ROUTES_PER_NODE: usize = 16;

/// `prefix` as a route the overlay may carry, in canonical form (host bits zero): not a
/// default route (exit nodes are another feature), not loopback, multicast or link-local,
/// and not inside the overlay's own ranges.
pub fn route_prefix(prefix: &str) -> Result<String, String> {
    let net: IpNet = prefix
        .trim()
        .parse()
        .map_err(|_| format!("{prefix:?} is not a network prefix: write it like 192.168.1.0/24"))?;
    let net = net.trunc();
    let ip = net.network();
    let bad = match net {
        IpNet::V4(v4) => {
            v4.prefix_len() < 8
                || ip.is_loopback()
                || ip.is_multicast()
                || v4.addr().is_link_local()
                || v4.addr().is_broadcast()
                || overlaps(&net, &IpNet::V4(warren_proto::overlay::OVERLAY_V4))
        }
        IpNet::V6(v6) => {
            v6.prefix_len() < 16
                || ip.is_loopback()
                || ip.is_multicast()
                || (v6.addr().segments()[0] & 0xffc0) == 0xfe80
                || overlaps(&net, &IpNet::V6(warren_proto::overlay::OVERLAY_V6))
        }
    };
    if bad {
        return Err(format!(
            "{net} cannot be routed through a member: give a LAN prefix such as 192.168.1.0/24 \
             (no default route, loopback, multicast, link-local or Warren's own addresses)"
        ));
    }
    Ok(net.to_string())
}

/// Whether two prefixes share any address.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

impl Registry {
    /// Owner: approves (or withdraws the approval of) `node`'s route `prefix` in `network`.
    /// The node must be a member; it need not advertise the prefix now (an approval waits for
    /// it, as Tailscale's do).
    pub fn approve_route(
        &mut self,
        owner: NodeKey,
        network: &str,
        node: NodeKey,
        prefix: &str,
        approve: bool,
    ) -> Result<Vec<Change>, RegistryError> {
        let name = self.owned(owner, network, "approve routes")?;
        let prefix = route_prefix(prefix).map_err(RegistryError::InvalidRoute)?;
        let net = self.networks.get_mut(&name).expect("owned");
        if !net.members.contains_key(&node) {
            return Err(RegistryError::NotAMember(name));
        }
        let record = RouteRecord {
            network: name,
            node,
            prefix: prefix.clone(),
        };
        let entry = (node, prefix);
        if approve {
            if net.routes.iter().filter(|(k, _)| *k == node).count() >= MAX_ROUTES_PER_NODE
                && !net.routes.contains(&entry)
            {
                return Err(RegistryError::InvalidRoute(format!(
                    "a member may route at most {MAX_ROUTES_PER_NODE} prefixes"
                )));
            }
            Ok(match net.routes.insert(entry) {
                true => vec![Change::RouteApproved(record)],
                false => Vec::new(),
            })
        } else {
            Ok(match net.routes.remove(&entry) {
                true => vec![Change::RouteRevoked(record)],
                false => Vec::new(),
            })
        }
    }

    /// Whether `node`'s `prefix` is approved in one of `networks`.
    pub fn route_approved(&self, networks: &[String], node: &NodeKey, prefix: &str) -> bool {
        networks.iter().any(|n| {
            self.networks
                .get(n)
                .is_some_and(|net| net.routes.contains(&(*node, prefix.to_owned())))
        })
    }

    /// The approved routes of `network`: (member, prefix).
    pub fn approved_routes(&self, network: &str) -> Vec<(NodeKey, String)> {
        self.networks
            .get(network)
            .map(|n| n.routes.iter().cloned().collect())
            .unwrap_or_default()
    }
}
