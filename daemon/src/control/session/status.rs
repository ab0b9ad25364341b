//! What the API shows of the coordinators, published after every change.

use super::Session;
use warren_proto::api::CoordinatorStatus;

impl Session {
    pub(super) fn publish_status(&self) {
        let list: Vec<CoordinatorStatus> = self
            .slots
            .iter()
            .map(|s| {
                let c = &s.client;
                let n = c.networks();
                let connected = c.is_connected();
                CoordinatorStatus {
                    address: s.settings.address.clone(),
                    alternates: s.settings.alternates.clone(),
                    // Filled in by status from the live link.
                    connected_to: None,
                    name: s.settings.name.clone(),
                    overlay_ip: c.overlay_ip(),
                    public_key: s.settings.public_key,
                    connected,
                    last_error: if connected {
                        None
                    } else {
                        c.last_error().map(str::to_string)
                    },
                    name_taken: !connected && c.name_taken(),
                    networks: n.member.clone(),
                    // Filled in by status from the live link.
                    rtt_ms: None,
                    transport: None,
                    owned: n.owned.clone(),
                    locked: n.locked.clone(),
                    requests: n.requests.clone(),
                    waiting: n.waiting.clone(),
                    routes: n.routes.clone(),
                }
            })
            .collect();
        let settings = self.slots.iter().map(|s| s.settings.clone()).collect();
        let peer_networks = self
            .peers
            .networks()
            .map(|(k, n)| (*k, n.clone()))
            .collect();
        let peer_routes = self
            .peers
            .routes()
            .filter(|(_, r)| !r.is_empty())
            .map(|(k, r)| (*k, r.clone()))
            .collect();
        let clashing = self.peers.clashing().collect();
        let moves = self.address.saved().moves;
        self.ctx.publish(|v| {
            v.coordinator = list.first().cloned();
            v.coordinators = list;
            v.settings = settings;
            v.peer_networks = peer_networks;
            v.peer_routes = peer_routes;
            v.clashing = clashing;
            v.address_moves = moves;
        });
    }
}
