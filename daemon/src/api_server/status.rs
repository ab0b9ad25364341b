//! The daemon's state as `warren status` shows it, put together from the data plane and the
//! control task.

use super::ApiState;
use std::time::Instant;
use warren_daemon_core::node::PeerSnapshot;
use warren_proto::api::{BroadcastStatus, PeerStatus, Status, TunnelState};

pub fn build(state: &ApiState) -> Status {
    let (coordinators, peer_networks, clashing, moves, links) = {
        let v = state.control.view.lock().expect("control view lock");
        let mut list = v.coordinators.clone();
        for c in &mut list {
            let link = v.connections.get(&c.public_key).filter(|_| c.connected);
            c.rtt_ms = link.and_then(|l| l.rtt()).map(|r| r.as_millis() as u32);
            c.transport = link.map(|l| l.transport);
            // As users write it: 203.0.113.1:7443, not [::ffff:203.0.113.1]:7443.
            c.connected_to = link.map(|l| {
                std::net::SocketAddr::new(l.remote.ip().to_canonical(), l.remote.port()).to_string()
            });
        }
        (
            list,
            v.peer_networks.clone(),
            v.clashing.clone(),
            v.address_moves,
            v.connections.values().cloned().collect::<Vec<_>>(),
        )
    };
    // The first coordinator's entry is also `coordinator`, as before several were possible.
    let coordinator = coordinators.first().cloned();
    let mut self_ = state.self_status.clone();
    // The chosen name, else the coordinator's, else the config's or the host's.
    self_.name = match (state.names.chosen(), &coordinator) {
        (Some(n), _) => n,
        (None, Some(c)) => c.name.clone(),
        (None, None) => state.names.current(),
    };
    self_.overlay_ip = (*state.dataplane.overlay_v4.lock().expect("overlay lock")).into();
    let node = state.dataplane.node();
    if let Some(d) = node.discovery() {
        self_.reflexive = d.reflexive;
        self_.nat = d.nat;
    }
    self_.mapped = node.port_mapping();
    self_.relay_for_others = node.is_relaying();
    self_.advertised_routes = state.subnets.advertised();
    self_.forwarding = state.subnets.forwarding();
    self_.lans = state.subnets.lans();
    self_.relayed_bytes = node.relaying_counters().map_or(0, |c| c.forwarded_bytes);
    self_.address_moves = moves;
    let mut peers: Vec<PeerStatus> = node
        .peer_status(Instant::now())
        .into_iter()
        .map(peer_status_of)
        .collect();
    for p in &mut peers {
        if let Some(n) = peer_networks.get(&p.public_key) {
            p.networks = n.clone();
        }
        p.routes = state.subnets.peer_status(&p.public_key);
        if let Some(relay) = p.relay {
            // Over TCP a relay is a loopback shim: show the coordinator it goes through.
            p.relay = links
                .iter()
                .map(|l| l.shown(relay))
                .find(|a| *a != relay)
                .or(Some(relay));
        }
        p.address_clash = clashing.contains(&p.public_key);
        if let Some(remote) = p.endpoint.and_then(|e| state.dataplane.tcp.remote_of(e)) {
            p.endpoint = Some(remote);
            p.transport = Some("tcp".into());
        }
    }
    Status {
        coordinators,
        state: if node.is_up() {
            TunnelState::Up
        } else {
            TunnelState::Down
        },
        self_,
        peers,
        dropped: node.counters().dropped_map(),
        offload: state.offload.clone(),
        coordinator,
        broadcast: {
            let f = node.fanout_counters();
            BroadcastStatus {
                sent: f.sent,
                copies: f.copies,
                received: f.received,
                rate_limited: f.rate_limited,
            }
        },
        hosting: state.hosting.status(),
    }
}

/// The local API's view of a peer from the data plane's; the fields only the shell knows are
/// filled in by the caller.
fn peer_status_of(p: PeerSnapshot) -> PeerStatus {
    PeerStatus {
        name: p.name,
        public_key: p.public_key,
        overlay_ip: p.overlay_ip,
        allowed_ips: p.allowed_ips.iter().map(|n| n.to_string()).collect(),
        online: p.online,
        path: p.path,
        endpoint: p.endpoint,
        rtt_ms: p.rtt_ms,
        last_handshake_secs: p.last_handshake.map(|d| d.as_secs()),
        rx_bytes: p.rx_bytes,
        tx_bytes: p.tx_bytes,
        networks: Vec::new(),
        relay: p.relay,
        address_clash: false,
        transport: None,
        routes: Vec::new(),
    }
}
