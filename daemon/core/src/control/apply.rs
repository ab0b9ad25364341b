//! What the merged peer map decides, applied to the data plane: a peer's WireGuard session, the
//! addresses routed to it, its NAT kind and a first endpoint to try. The daemon's control
//! session and the simulation (`sim/`) both apply changes through [`apply`].

use super::peer_map::{MergedPeer, PeerChange};
use crate::node::{Node, NodeError};
use crate::peer::{PeerConfig, DEFAULT_KEEPALIVE_SECS};
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// A peer the node refused (its name, and why): the caller logs it.
pub type Refused = (String, NodeError);

/// Applies a batch of changes: first every removal and every peer whose addresses change
/// leaves, then the others are added or refreshed — so an address one peer gives up is free
/// when another takes it in the same batch (a clash resolved), whatever the order.
pub fn apply(node: &mut Node, changes: &[PeerChange], now: Instant) -> Vec<Refused> {
    let mut refused = Vec::new();
    for change in changes {
        match change {
            PeerChange::Remove(key) => {
                node.remove_peer(key);
            }
            PeerChange::Set(p) => {
                let allowed = allowed_ips(p);
                let moved = node
                    .peer_id(&p.key)
                    .and_then(|id| node.peer(id))
                    .is_some_and(|peer| peer.allowed_ips() != allowed);
                if moved {
                    node.remove_peer(&p.key);
                }
            }
        }
    }
    for change in changes {
        if let PeerChange::Set(p) = change {
            if let Err(e) = set(node, p, now) {
                refused.push((p.name.clone(), e));
            }
        }
    }
    refused
}

/// Adds or refreshes a peer. The WireGuard endpoint starts at the best guess among its
/// candidates and then follows path probing and authenticated packets.
fn set(node: &mut Node, info: &MergedPeer, now: Instant) -> Result<(), NodeError> {
    add_or_refresh(node, info)?;
    node.set_peer_relays(&info.key, info.sources.clone());
    node.set_peer_networks(&info.key, info.networks.clone());
    // A peer relay is reached where anyone reaches it: its port mapping, else its public
    // address (the coordinator names only such peers relays).
    let relay_at = info.relay.then(|| info.mapped.or(info.reflexive)).flatten();
    node.set_peer_relay(now, &info.key, relay_at);
    Ok(())
}

fn add_or_refresh(node: &mut Node, info: &MergedPeer) -> Result<(), NodeError> {
    let allowed = allowed_ips(info);
    if let Some(id) = node.peer_id(&info.key) {
        let same = node.peer(id).is_some_and(|p| p.allowed_ips() == allowed);
        if same {
            node.rename_peer(&info.key, &info.name);
            node.set_peer_nat(&info.key, info.nat);
            if node.peer(id).is_some_and(|p| p.endpoint().is_none()) {
                if let Some(ep) = first_candidate(info) {
                    node.set_endpoint(&info.key, ep);
                }
            }
            return Ok(());
        }
        node.remove_peer(&info.key);
    }
    let config = PeerConfig {
        name: info.name.clone(),
        public_key: info.key,
        allowed_ips: allowed,
        endpoint: first_candidate(info),
        persistent_keepalive: Some(DEFAULT_KEEPALIVE_SECS),
        relay: true,
    };
    node.add_peer(config)?;
    node.set_peer_nat(&info.key, info.nat);
    Ok(())
}

/// The coordinator leases IPv4; the IPv6 overlay address is the one derived from the key, as
/// every daemon derives its own (so IPv6, link-scope multicast included, works too). A peer
/// whose IPv4 address another peer holds is reached by IPv6 only until one of them moves.
fn allowed_ips(info: &MergedPeer) -> Vec<IpNet> {
    let v6: IpNet = IpAddr::V6(warren_proto::overlay::derive_v6(&info.key)).into();
    if info.clash {
        vec![v6]
    } else {
        vec![info.overlay_ip.into(), v6]
    }
}

/// The endpoint WireGuard starts with before any probe answered: a port mapping is reachable
/// from anywhere, so it is the best guess; then the first LAN address, then STUN's answer.
fn first_candidate(info: &MergedPeer) -> Option<SocketAddr> {
    info.mapped
        .or_else(|| info.lan.first().copied())
        .or(info.reflexive)
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_proto::control::msg::NatKind;

    fn merged(k: u8, ip: &str, clash: bool) -> MergedPeer {
        MergedPeer {
            key: Node::new([k; 32], [0; 16]).public_key(),
            name: format!("p{k}"),
            overlay_ip: ip.parse().unwrap(),
            clash,
            networks: vec!["lan".into()],
            sources: vec![1],
            nat: NatKind::Unknown,
            lan: vec![],
            reflexive: None,
            mapped: None,
            relay: false,
            routes: vec![],
        }
    }

    #[test]
    fn a_resolved_clash_applies_whatever_the_order() {
        let mut node = Node::new([1; 32], [0; 16]);
        let (a, b) = (
            merged(2, "100.64.0.5", false),
            merged(3, "100.64.0.5", true),
        );
        let now = Instant::now();
        let refused = apply(
            &mut node,
            &[PeerChange::Set(a.clone()), PeerChange::Set(b.clone())],
            now,
        );
        assert!(refused.is_empty(), "{refused:?}");
        assert_eq!(node.peers().count(), 2);
        // A moves away and B gets the address, B listed first.
        let (a2, b2) = (
            merged(2, "100.64.9.9", false),
            merged(3, "100.64.0.5", false),
        );
        let refused = apply(
            &mut node,
            &[PeerChange::Set(b2.clone()), PeerChange::Set(a2.clone())],
            now,
        );
        assert!(refused.is_empty(), "{refused:?}");
        let allowed = |m: &MergedPeer| {
            let id = node.peer_id(&m.key).expect("present");
            node.peer(id).unwrap().allowed_ips().to_vec()
        };
        assert_eq!(allowed(&b2), allowed_ips(&b2));
        assert_eq!(allowed(&a2), allowed_ips(&a2));
    }
}
