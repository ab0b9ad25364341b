//! Builders of [`Status`] (and of the `games` answer) for the tests of every crate that reads
//! it (feature `test-fixtures`):
//! one place that knows every field, so a new field is added here once, and a test names only
//! what it is about.
//!
//! ```text
//! let s = StatusBuilder::new()
//!     .coordinator(CoordinatorBuilder::new("203.0.113.1:7443").networks(&["lan"]))
//!     .peer(PeerBuilder::new("bob").ip("100.64.0.2").direct().networks(&["lan"]))
//!     .build();
//! ```

use super::games::{DiscoveryPort, GameNetwork, GamePortStatus, GamesStatus, PortSource};
use super::{
    BroadcastStatus, ControlTransport, CoordinatorStatus, OffloadStatus, PathKind, PeerStatus,
    SelfStatus, Status, TunnelState,
};
use crate::control::msg::NatKind;
use crate::key::NodeKey;

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A peer: offline, no path, no address, nothing counted, in no network, until told.
#[derive(Debug, Clone)]
pub struct PeerBuilder(PeerStatus);

impl PeerBuilder {
    /// Its key is made from the name (see [`PeerBuilder::key`] for one of the test's choosing).
    pub fn new(name: &str) -> PeerBuilder {
        let byte = name
            .bytes()
            .fold(0u8, |a, b| a.wrapping_mul(31).wrapping_add(b));
        PeerBuilder(PeerStatus {
            name: name.into(),
            public_key: NodeKey([byte; 32]),
            overlay_ip: None,
            allowed_ips: vec![],
            online: false,
            path: PathKind::None,
            endpoint: None,
            rtt_ms: None,
            last_handshake_secs: None,
            rx_bytes: 0,
            tx_bytes: 0,
            networks: vec![],
            relay: None,
            address_clash: false,
            transport: None,
            routes: vec![],
        })
    }

    /// The key `[byte; 32]`.
    pub fn key(mut self, byte: u8) -> Self {
        self.0.public_key = NodeKey([byte; 32]);
        self
    }

    pub fn ip(mut self, ip: &str) -> Self {
        self.0.overlay_ip = Some(ip.parse().expect("an IP address"));
        self
    }

    /// One more allowed prefix, e.g. `"100.64.0.2/32"`.
    pub fn allowed(mut self, prefix: &str) -> Self {
        self.0.allowed_ips.push(prefix.into());
        self
    }

    pub fn online(mut self, online: bool) -> Self {
        self.0.online = online;
        self
    }

    pub fn path(mut self, path: PathKind) -> Self {
        self.0.path = path;
        self
    }

    /// Online over a direct path.
    pub fn direct(self) -> Self {
        self.online(true).path(PathKind::Direct)
    }

    pub fn networks(mut self, networks: &[&str]) -> Self {
        self.0.networks = strings(networks);
        self
    }

    pub fn endpoint(mut self, addr: &str) -> Self {
        self.0.endpoint = Some(addr.parse().expect("an IP:port"));
        self
    }

    pub fn rtt_ms(mut self, ms: u32) -> Self {
        self.0.rtt_ms = Some(ms);
        self
    }

    pub fn handshake_secs(mut self, secs: u64) -> Self {
        self.0.last_handshake_secs = Some(secs);
        self
    }

    pub fn traffic(mut self, rx_bytes: u64, tx_bytes: u64) -> Self {
        self.0.rx_bytes = rx_bytes;
        self.0.tx_bytes = tx_bytes;
        self
    }

    pub fn build(self) -> PeerStatus {
        self.0
    }
}

impl From<PeerBuilder> for PeerStatus {
    fn from(b: PeerBuilder) -> PeerStatus {
        b.build()
    }
}

/// A coordinator this host is connected to as "alice", in no network, until told.
#[derive(Debug, Clone)]
pub struct CoordinatorBuilder(CoordinatorStatus);

impl CoordinatorBuilder {
    pub fn new(address: &str) -> CoordinatorBuilder {
        CoordinatorBuilder(CoordinatorStatus {
            address: address.into(),
            alternates: vec![],
            connected_to: None,
            name: "alice".into(),
            overlay_ip: None,
            public_key: NodeKey([9; 32]),
            connected: true,
            last_error: None,
            name_taken: false,
            networks: vec![],
            rtt_ms: None,
            transport: None,
            owned: vec![],
            locked: vec![],
            requests: vec![],
            waiting: vec![],
            routes: vec![],
        })
    }

    /// This host's name there.
    pub fn name(mut self, name: &str) -> Self {
        self.0.name = name.into();
        self
    }

    pub fn key(mut self, byte: u8) -> Self {
        self.0.public_key = NodeKey([byte; 32]);
        self
    }

    /// The address it leased to this host.
    pub fn leased(mut self, ip: &str) -> Self {
        self.0.overlay_ip = Some(ip.parse().expect("an IP address"));
        self
    }

    pub fn connected(mut self, connected: bool) -> Self {
        self.0.connected = connected;
        self
    }

    /// Why the last attempt failed.
    pub fn last_error(mut self, error: &str) -> Self {
        self.0.last_error = Some(error.into());
        self
    }

    pub fn networks(mut self, networks: &[&str]) -> Self {
        self.0.networks = strings(networks);
        self
    }

    pub fn rtt_ms(mut self, ms: u32) -> Self {
        self.0.rtt_ms = Some(ms);
        self
    }

    pub fn transport(mut self, t: ControlTransport) -> Self {
        self.0.transport = Some(t);
        self
    }

    pub fn build(self) -> CoordinatorStatus {
        self.0
    }
}

impl From<CoordinatorBuilder> for CoordinatorStatus {
    fn from(b: CoordinatorBuilder) -> CoordinatorStatus {
        b.build()
    }
}

/// Host "alice" at 100.64.0.1, up, without offloads, peers or coordinator, until told.
#[derive(Debug, Clone)]
pub struct StatusBuilder(Status);

impl Default for StatusBuilder {
    fn default() -> Self {
        StatusBuilder::new()
    }
}

impl StatusBuilder {
    pub fn new() -> StatusBuilder {
        StatusBuilder(Status {
            state: TunnelState::Up,
            self_: SelfStatus {
                name: "alice".into(),
                overlay_ip: "100.64.0.1".parse().expect("an IP address"),
                overlay_ip6: None,
                public_key: NodeKey([1; 32]),
                listen_port: 41820,
                tun: "warren0".into(),
                mtu: 1420,
                reflexive: None,
                nat: NatKind::Unknown,
                mapped: None,
                address_moves: 0,
                relay_for_others: false,
                relayed_bytes: 0,
                advertised_routes: vec![],
                forwarding: vec![],
                lans: vec![],
            },
            peers: vec![],
            dropped: Default::default(),
            offload: OffloadStatus {
                tun_vnet_hdr: false,
                tun_udp_gso: false,
                udp_gso_segments: 1,
                udp_gro_segments: 1,
            },
            coordinator: None,
            coordinators: vec![],
            broadcast: BroadcastStatus::default(),
            hosting: None,
        })
    }

    /// Up (`true`) or down after `warren down`.
    pub fn up(mut self, up: bool) -> Self {
        self.0.state = if up {
            TunnelState::Up
        } else {
            TunnelState::Down
        };
        self
    }

    /// This host's name.
    pub fn name(mut self, name: &str) -> Self {
        self.0.self_.name = name.into();
        self
    }

    pub fn ip(mut self, ip: &str) -> Self {
        self.0.self_.overlay_ip = ip.parse().expect("an IP address");
        self
    }

    /// Seen from the internet at `addr`, behind `nat`.
    pub fn reflexive(mut self, addr: &str, nat: NatKind) -> Self {
        self.0.self_.reflexive = Some(addr.parse().expect("an IP:port"));
        self.0.self_.nat = nat;
        self
    }

    /// The kernel granted every batching feature, `segments` per batch.
    pub fn offload(mut self, segments: usize) -> Self {
        self.0.offload = OffloadStatus {
            tun_vnet_hdr: true,
            tun_udp_gso: true,
            udp_gso_segments: segments,
            udp_gro_segments: segments,
        };
        self
    }

    pub fn peer(mut self, peer: impl Into<PeerStatus>) -> Self {
        self.0.peers.push(peer.into());
        self
    }

    pub fn peers(mut self, peers: impl IntoIterator<Item = PeerStatus>) -> Self {
        self.0.peers.extend(peers);
        self
    }

    /// The first coordinator, as a daemon that knew only one reports it (`coordinators`
    /// empty).
    pub fn coordinator(mut self, c: impl Into<CoordinatorStatus>) -> Self {
        self.0.coordinator = Some(c.into());
        self
    }

    pub fn build(self) -> Status {
        self.0
    }
}

impl From<StatusBuilder> for Status {
    fn from(b: StatusBuilder) -> Status {
        b.build()
    }
}

/// The answer to `games`: on, with no ports, networks or groups, until told.
#[derive(Debug, Clone)]
pub struct GamesBuilder(GamesStatus);

impl Default for GamesBuilder {
    fn default() -> Self {
        GamesBuilder::new()
    }
}

impl GamesBuilder {
    pub fn new() -> GamesBuilder {
        GamesBuilder(GamesStatus {
            active: true,
            problem: None,
            ports: vec![],
            networks: vec![],
            mirrored_groups: vec![],
        })
    }

    /// A port (range `first..=last`, announced to `group` or broadcast), with its counters
    /// `[sent, received, dropped]`.
    pub fn port(
        mut self,
        name: &str,
        (first, last): (u16, u16),
        group: Option<&str>,
        source: PortSource,
        [sent, received, dropped]: [u64; 3],
    ) -> Self {
        self.0.ports.push(GamePortStatus {
            name: name.into(),
            port: DiscoveryPort {
                port: first,
                last,
                group: group.map(|g| g.parse().expect("an IPv4 group")),
            },
            source,
            sent,
            received,
            dropped,
        });
        self
    }

    pub fn network(mut self, network: &str, enabled: bool) -> Self {
        self.0.networks.push(GameNetwork {
            network: network.into(),
            enabled,
        });
        self
    }

    /// A multicast group the host's games listen on.
    pub fn mirrors(mut self, group: &str) -> Self {
        self.0
            .mirrored_groups
            .push(group.parse().expect("an IPv4 group"));
        self
    }

    pub fn build(self) -> GamesStatus {
        self.0
    }
}
