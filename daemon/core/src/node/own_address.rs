//! This host's own public address: the STUN run, and rechecks when the network changes or paths go silent.

use super::*;

impl Node {
    /// Starts asking two STUN servers (the coordinator's two ports) where we are seen from.
    pub fn start_discovery(&mut self, now: Instant, servers: [SocketAddr; 2]) {
        self.note_time(now);
        self.discovery.start(now, servers);
    }

    /// A new reflexive address or NAT kind, once per change: tell the coordinator.
    pub fn poll_discovery_event(&mut self) -> Option<Discovery> {
        self.discovery.poll_event()
    }

    /// What STUN found, unless the servers answered over loopback (this PC hosts the
    /// coordinator): that says nothing of how the internet sees this host, and a peer told
    /// "127.0.0.1" would only reach itself.
    pub fn discovery(&self) -> Option<Discovery> {
        self.discovery
            .result()
            .filter(|d| !d.reflexive.is_some_and(|r| r.ip().is_loopback()))
    }

    /// A discovery run is waiting for answers.
    pub fn discovery_running(&self) -> bool {
        self.discovery.is_running()
    }

    /// How long a discovery run takes at most.
    pub fn discovery_bound(&self) -> Duration {
        self.discovery.config().run_bound()
    }

    /// This host's own addresses changed (new network, DHCP renewal, roaming): peers only learn
    /// our new endpoint from an authenticated packet, so the next `poll_transmit` calls send each
    /// peer a keepalive (or start a handshake where there is no session) instead of waiting for
    /// traffic or the persistent keepalive.
    pub fn handle_network_change(&mut self, now: Instant) {
        self.note_time(now);
        self.discovery.handle_network_change(now);
        for r in self.relays.iter_mut() {
            r.handle_network_change(now);
        }
        self.announce.clear();
        self.announce
            .extend((0..self.peers.len()).filter(|id| self.peers[*id].is_some()));
    }

    /// A peer's chosen path stopped answering: perhaps our own NAT mapping changed (rebinding),
    /// and the peer's packets go to a port of ours that is gone. A STUN run finds our new
    /// reflexive address (the shell tells the coordinator, which introduces us to our peers
    /// again) and a ping registers our new port with the relays; at most once per
    /// [`RECHECK_INTERVAL`], since many paths may fall silent together.
    pub(super) fn recheck_own_mapping(&mut self, now: Instant) {
        if self
            .last_recheck
            .is_some_and(|t| now.saturating_duration_since(t) < RECHECK_INTERVAL)
        {
            return;
        }
        self.last_recheck = Some(now);
        self.mapping_rechecks += 1;
        self.discovery.handle_network_change(now);
        for r in self.relays.iter_mut() {
            r.handle_network_change(now);
        }
    }

    /// How often silent paths made this node check its own NAT mapping.
    pub fn mapping_rechecks(&self) -> u64 {
        self.mapping_rechecks
    }
}
