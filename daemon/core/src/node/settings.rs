//! Settings the daemon's shell passes in: port mapping, relays, own addresses, LAN broadcasts, up or down.

use super::*;

impl Node {
    /// The shell's port-mapping client got (or lost, `None`) a mapping on our router.
    pub fn set_port_mapping(&mut self, external: Option<SocketAddr>) {
        self.port_mapping = external;
    }

    pub fn port_mapping(&self) -> Option<SocketAddr> {
        self.port_mapping
    }

    /// Uses (or, with `None`, stops using) the coordinator's relay at `server` with `token`
    /// as the only relay (a node that follows one coordinator).
    pub fn set_relay(&mut self, now: Instant, relay: Option<(SocketAddr, RelayToken)>) {
        self.relays = Relays::default();
        self.relays.set(now, 0, relay);
    }

    /// The ticket a standalone relay wants in our pings (see `warren_proto::relay_ticket`).
    pub fn set_relay_ticket(&mut self, now: Instant, ticket: Option<Vec<u8>>) {
        self.relays.set_ticket(now, 0, ticket);
    }

    /// Uses (or, with `None`, stops using) coordinator `id`'s relay, next to the others.
    pub fn set_relay_of(
        &mut self,
        now: Instant,
        id: RelayId,
        relay: Option<(SocketAddr, RelayToken)>,
    ) {
        self.relays.set(now, id, relay);
    }

    pub fn set_relay_ticket_of(&mut self, now: Instant, id: RelayId, ticket: Option<Vec<u8>>) {
        self.relays.set_ticket(now, id, ticket);
    }

    /// The relays that reach peer `key` (those of the coordinators it came from).
    pub fn set_peer_relays(&mut self, key: &NodeKey, relays: Vec<RelayId>) {
        if let Some(id) = self.peer_id(key) {
            if let Some(p) = self.peers[id].as_mut() {
                p.relays = relays;
            }
        }
    }

    /// This host's overlay IPv4 address (discovery packets copied from the LAN come from it).
    pub fn set_own_v4(&mut self, ip: std::net::Ipv4Addr) {
        self.own_v4 = Some(ip);
    }

    /// The directed broadcast addresses of this host's other interfaces: broadcasts to them
    /// that the kernel copies to the TUN are carried like 255.255.255.255.
    pub fn set_lan_broadcasts(&mut self, list: Vec<std::net::Ipv4Addr>) {
        self.lan_broadcasts = list;
    }

    /// Discovery counters of UDP ports `first..=last`.
    pub fn discovery_counters(&self, first: u16, last: u16) -> discovery_ports::PortCounters {
        self.game_ports.range(first, last)
    }

    /// Whether peer `key` gets this host's broadcasts and multicast (and this host its): off
    /// for a peer that shares only networks where game discovery is switched off.
    pub fn set_peer_discovery(&mut self, key: &NodeKey, on: bool) {
        if let Some(id) = self.peer_id(key) {
            if let Some(p) = self.peers[id].as_mut() {
                p.discovery = on;
            }
        }
    }

    /// What broadcast and multicast replication did.
    pub fn fanout_counters(&self) -> FanoutCounters {
        self.fanout.counters
    }

    /// The relay in use, its last RTT, and whether it answers.
    pub fn relay_status(&self, now: Instant) -> Option<(SocketAddr, Option<Duration>, bool)> {
        self.relays
            .first()
            .map(|r| (r.server(), r.rtt(), r.is_alive(now)))
    }

    /// `warren down` / `warren up`: while down, every packet in either direction is dropped
    /// (counted as `tunnel_down`) and nothing is sent; sessions resume by handshake when up.
    pub fn set_up(&mut self, up: bool) {
        self.up = up;
    }

    pub fn is_up(&self) -> bool {
        self.up
    }
}
