//! The peers' state as the data plane sees it. The shell adds what only it knows (shared
//! networks, subnet routes, the TCP transport, the coordinator behind a relay shim) and builds
//! the local API's types from it: the core knows nothing of the API's shape or wording.

use super::*;
use ipnet::IpNet;
use std::net::IpAddr;

/// One peer, as [`Node::peer_status`] reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerSnapshot {
    pub name: String,
    pub public_key: NodeKey,
    pub overlay_ip: Option<IpAddr>,
    pub allowed_ips: Vec<IpNet>,
    /// A session exists and the peer was heard from within the last handshake period.
    pub online: bool,
    pub path: PathKind,
    pub endpoint: Option<SocketAddr>,
    /// The best path's RTT, else the last handshake's.
    pub rtt_ms: Option<u32>,
    pub last_handshake: Option<Duration>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// The relay carrying this peer's traffic, while `path` is `Relay`.
    pub relay: Option<SocketAddr>,
}

impl Node {
    /// Every peer's state now.
    pub fn peer_status(&self, now: Instant) -> Vec<PeerSnapshot> {
        self.peers()
            .map(|p| {
                let (since, tx, rx, handshake_rtt) = p.session_stats();
                let online = p.is_online(now);
                let best = p.paths.best_path();
                let relay = match route_of(p, &self.relays) {
                    Some(Route::Relay(server)) => Some(server),
                    _ => None,
                };
                let path = match best {
                    Some(b) => b.kind.path_kind(),
                    None if relay.is_some() => PathKind::Relay,
                    None if online && p.endpoint.is_some() => PathKind::Direct,
                    None => PathKind::None,
                };
                PeerSnapshot {
                    name: p.name().to_string(),
                    public_key: p.public_key(),
                    overlay_ip: p.overlay_ip(),
                    allowed_ips: p.allowed_ips().to_vec(),
                    online,
                    path,
                    endpoint: p.endpoint,
                    rtt_ms: best.map(|b| b.rtt.as_millis() as u32).or(handshake_rtt),
                    last_handshake: since,
                    rx_bytes: rx,
                    tx_bytes: tx,
                    relay,
                }
            })
            .collect()
    }
}
