//! One remote node: its identity, the addresses it owns, where it is, and its WireGuard session.

use crate::path::PeerPaths;
use boringtun::noise::Tunn;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use warren_proto::control::msg::NatKind;
use warren_proto::disco::DiscoKey;
use warren_proto::key::NodeKey;

/// WireGuard's REJECT_AFTER_TIME: a peer silent for longer has no usable session.
pub const ONLINE_WINDOW: Duration = Duration::from_secs(180);
pub const DEFAULT_KEEPALIVE_SECS: u16 = 25;

#[derive(Debug, Clone, PartialEq)]
pub struct PeerConfig {
    pub name: String,
    pub public_key: NodeKey,
    pub allowed_ips: Vec<IpNet>,
    pub endpoint: Option<SocketAddr>,
    /// `None` disables keepalives; the default is [`DEFAULT_KEEPALIVE_SECS`].
    pub persistent_keepalive: Option<u16>,
    /// The peer can be reached through the coordinator's relay (it was introduced by the
    /// coordinator, which relays only between its nodes); static peers are not.
    pub relay: bool,
}

pub struct Peer {
    pub(crate) config: PeerConfig,
    pub(crate) tunn: Tunn,
    /// Follows the source of the latest authenticated packet (roaming).
    pub(crate) endpoint: Option<SocketAddr>,
    pub(crate) last_authenticated: Option<Instant>,
    /// Probing and choice of the direct path.
    pub(crate) paths: PeerPaths,
    /// `None` for a key with which no shared secret can be made (disco is off for it).
    pub(crate) disco: Option<DiscoKey>,
    /// Which of its disco messages were seen, to refuse replays.
    pub(crate) fresh: crate::node::disco_freshness::DiscoFreshness,
    /// The best path last applied as the endpoint, so a path decision is applied once and
    /// roaming (endpoint = source of the latest authenticated packet) can still move it.
    pub(crate) applied_path: Option<SocketAddr>,
    /// The peer's NAT kind and reflexive address as the coordinator reported them: they
    /// decide whether a birthday run may help, and where it aims.
    pub(crate) nat: NatKind,
    pub(crate) reflexive: Option<SocketAddr>,
    /// The relays that reach it (its coordinators'); empty: any.
    pub(crate) relays: Vec<crate::node::relays::RelayId>,
    /// The networks we share with it: the peer relays of those networks reach it.
    pub(crate) networks: Vec<String>,
    /// LAN prefixes routed through it (subnet routes), besides its own addresses.
    pub(crate) subnets: Vec<ipnet::IpNet>,
    /// It gets this host's broadcasts and multicast, and this host its (game discovery).
    pub(crate) discovery: bool,
}

impl Peer {
    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn public_key(&self) -> NodeKey {
        self.config.public_key
    }

    pub fn endpoint(&self) -> Option<SocketAddr> {
        self.endpoint
    }

    /// The networks this host shares with it (coordinator peers).
    pub fn networks(&self) -> &[String] {
        &self.networks
    }

    pub fn allowed_ips(&self) -> &[IpNet] {
        &self.config.allowed_ips
    }

    /// The first host address the peer owns: what people call "its overlay IP".
    pub fn overlay_ip(&self) -> Option<IpAddr> {
        self.config
            .allowed_ips
            .iter()
            .find(|n| n.addr().is_ipv4())
            .or(self.config.allowed_ips.first())
            .map(|n| n.addr())
    }

    pub fn paths(&self) -> &PeerPaths {
        &self.paths
    }

    pub fn is_online(&self, now: Instant) -> bool {
        self.last_authenticated
            .is_some_and(|t| now.saturating_duration_since(t) < ONLINE_WINDOW)
    }

    /// (time since last handshake, tx bytes, rx bytes, handshake RTT in ms) from the session.
    pub fn session_stats(&self) -> (Option<Duration>, u64, u64, Option<u32>) {
        let (since, tx, rx, _loss, rtt) = self.tunn.stats();
        (since, tx as u64, rx as u64, rtt)
    }
}
