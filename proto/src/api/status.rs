//! What the daemon reports: its own state, its peers, and the answers of `ping` and `netcheck`.

use crate::control::msg::NatKind;
use crate::key::NodeKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// How packets currently reach a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PathKind {
    Direct,
    Lan,
    Relay,
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// `up`, or `down` after `warren down` (the tunnel carries nothing until `warren up`).
    pub state: TunnelState,
    #[serde(rename = "self")]
    pub self_: SelfStatus,
    pub peers: Vec<PeerStatus>,
    /// Packets the daemon refused, by reason (e.g. `no_route`, `malformed`, `decrypt_failed`).
    pub dropped: BTreeMap<String, u64>,
    pub offload: OffloadStatus,
    /// `None` in manual mode (no `warren up` yet).
    #[serde(default)]
    pub coordinator: Option<CoordinatorStatus>,
    /// Every coordinator whose networks this host is in, `coordinator` (the first) included:
    /// a host can be in networks of several hosts at once. Each lists its own networks.
    #[serde(default)]
    pub coordinators: Vec<CoordinatorStatus>,
    /// Broadcast and multicast packets copied to peers and received from them.
    #[serde(default)]
    pub broadcast: BroadcastStatus,
    /// The coordinator this host runs for networks it hosts (`warren host`), if any.
    #[serde(default)]
    pub hosting: Option<HostingStatus>,
}

/// A coordinator and relay this host runs for its own networks (`warren host`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostingStatus {
    /// The networks hosted here.
    pub networks: Vec<String>,
    /// Whether the coordinator process runs now (the daemon restarts it if it dies).
    pub running: bool,
    /// Its control port on this machine (UDP for QUIC, TCP for TCP+TLS).
    pub port: u16,
    /// Its public key, as invites carry it.
    pub public_key: NodeKey,
    pub reachability: Reachability,
}

/// Whether friends on the internet can reach a hosted coordinator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reachability {
    pub state: ReachState,
    /// The address friends on the internet connect to (the router's mapped port), when known.
    pub public: Option<SocketAddr>,
    /// Addresses friends on the same LAN connect to.
    pub lan: Vec<SocketAddr>,
    /// In plain words: reachable at A:P, or why not and what to do.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReachState {
    /// Asking the router for port mappings.
    Checking,
    /// The router forwards the coordinator's ports: reachable from the internet.
    Reachable,
    /// No port mapping: only friends on this LAN (or with a forwarded port) can reach it.
    LanOnly,
}

/// Counters of the broadcast/multicast replication (LAN discovery over the overlay).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastStatus {
    /// Packets this host sent to a broadcast address or multicast group on the interface.
    pub sent: u64,
    /// Copies of them sealed for peers (one per peer).
    pub copies: u64,
    /// Such packets received from peers.
    pub received: u64,
    /// Copies not made: over the per-host rate limit.
    pub rate_limited: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoordinatorStatus {
    pub address: String,
    /// More addresses of the same coordinator (others sharing its database, or its LAN
    /// address), tried when `address` does not answer.
    #[serde(default)]
    pub alternates: Vec<String>,
    /// The address the live connection goes to, while connected.
    #[serde(default)]
    pub connected_to: Option<String>,
    /// This host's name in its networks.
    pub name: String,
    /// The address the coordinator leased to this host, once connected.
    pub overlay_ip: Option<IpAddr>,
    pub public_key: NodeKey,
    pub connected: bool,
    /// Why the last attempt failed, while not connected.
    pub last_error: Option<String>,
    /// The coordinator refused the last attempt because another member of one of this host's
    /// networks has its name: choose another (`SetName`).
    #[serde(default)]
    pub name_taken: bool,
    pub networks: Vec<String>,
    /// Round-trip time of the control connection, while connected.
    #[serde(default)]
    pub rtt_ms: Option<u32>,
    /// What the control connection runs over, while connected.
    #[serde(default)]
    pub transport: Option<ControlTransport>,
    /// The networks this host owns (created or hosts) on this coordinator.
    #[serde(default)]
    pub owned: Vec<String>,
    /// The networks that are locked (new members wait for the owner's approval).
    #[serde(default)]
    pub locked: Vec<String>,
    /// Requests to join networks this host owns, waiting for an answer.
    #[serde(default)]
    pub requests: Vec<super::JoinRequestInfo>,
    /// Networks this host asked to join that are locked: waiting for their owner.
    #[serde(default)]
    pub waiting: Vec<String>,
    /// The subnet routes of this host's networks here: who advertises what, approved or not.
    #[serde(default)]
    pub routes: Vec<RouteInfo>,
}

/// A member's LAN prefix in one network (subnet routes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteInfo {
    pub network: String,
    /// The member that routes it.
    pub name: String,
    pub public_key: NodeKey,
    pub prefix: String,
    /// The member asks for it now (it is online and advertises it).
    pub advertised: bool,
    /// The network's owner approved it: members route it through that member.
    pub approved: bool,
}

/// An approved route of a peer, as this host uses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRouteStatus {
    pub prefix: String,
    /// Packets to it go through this peer.
    pub routed: bool,
    /// Why it is not routed here, in plain words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// How the daemon reaches its coordinator: QUIC, or TCP+TLS where UDP is blocked (then the
/// relay's traffic goes over that connection too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlTransport {
    Quic,
    Tcp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TunnelState {
    Up,
    Down,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelfStatus {
    pub name: String,
    pub overlay_ip: IpAddr,
    pub overlay_ip6: Option<IpAddr>,
    pub public_key: NodeKey,
    pub listen_port: u16,
    pub tun: String,
    pub mtu: u16,
    /// Where this host's UDP socket is seen from on the internet (STUN), once known.
    #[serde(default)]
    pub reflexive: Option<SocketAddr>,
    /// The NAT's mapping behaviour as STUN measured it.
    #[serde(default = "unknown_nat")]
    pub nat: NatKind,
    /// The router port mapping this host holds (UPnP-IGD, NAT-PMP or PCP), when it has one.
    #[serde(default)]
    pub mapped: Option<SocketAddr>,
    /// Times this host moved to a fresh overlay address because another host had its
    /// address (a coordinator refused it, or a member saw a clash); see docs/guides/hosting.md.
    #[serde(default)]
    pub address_moves: u64,
    /// This host relays for the others in its networks who cannot connect directly
    /// (`warren relay on`; on by default on a PC that hosts a network). Its peers use it
    /// only when they can reach it: through a port mapping or at a public address.
    #[serde(default)]
    pub relay_for_others: bool,
    /// Bytes this host relayed for others since relaying was last switched on.
    #[serde(default)]
    pub relayed_bytes: u64,
    /// The LAN prefixes this host offers to route for its networks (`warren set
    /// --advertise-routes`); each is used once its network's owner approves it.
    #[serde(default)]
    pub advertised_routes: Vec<String>,
    /// What this host forwards now: its approved prefixes it routes into its LAN.
    #[serde(default)]
    pub forwarding: Vec<String>,
    /// The networks (prefixes) of this host's own interfaces: what it could advertise.
    #[serde(default)]
    pub lans: Vec<String>,
}

fn unknown_nat() -> NatKind {
    NatKind::Unknown
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerStatus {
    pub name: String,
    pub public_key: NodeKey,
    pub overlay_ip: Option<IpAddr>,
    pub allowed_ips: Vec<String>,
    /// A session exists and the peer was heard from within the last handshake period.
    pub online: bool,
    pub path: PathKind,
    pub endpoint: Option<SocketAddr>,
    pub rtt_ms: Option<u32>,
    pub last_handshake_secs: Option<u64>,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// The networks shared with this peer; empty for a static peer from the config file.
    #[serde(default)]
    pub networks: Vec<String>,
    /// The relay carrying this peer's traffic, while `path` is `relay`.
    #[serde(default)]
    pub relay: Option<SocketAddr>,
    /// Another peer, from another coordinator, has the same overlay address and was known
    /// first: this one is not routed until one of them moves (which happens within seconds).
    #[serde(default)]
    pub address_clash: bool,
    /// How a `direct` path is carried when not over UDP: `"tcp"` when this host's network
    /// blocks UDP and the peer is reached over a TCP stream (`endpoint` is then the peer's TCP
    /// address). Absent for UDP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// The peer's approved LAN prefixes (subnet routes) and whether this host routes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<PeerRouteStatus>,
}

/// One pong: which path it took and how long the round trip was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PingReply {
    pub peer: String,
    pub overlay_ip: Option<IpAddr>,
    pub path: PathKind,
    /// Where the pong came from.
    pub endpoint: SocketAddr,
    pub rtt_us: u64,
}

/// What `warren netcheck` measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetcheckReport {
    /// A STUN server answered on the daemon's UDP socket.
    pub udp: bool,
    /// This host's address as seen from the internet.
    pub reflexive: Option<SocketAddr>,
    /// `endpoint_independent` (peers can reach the reflexive address) or `symmetric`.
    pub nat: NatKind,
    /// The STUN servers asked, and what each saw (`null`: no answer).
    pub stun: Vec<StunAnswer>,
    /// UPnP-IGD on the local gateway: its external address when one answered.
    pub upnp: Option<IpAddr>,
    /// The port mapping the daemon holds on its router, and the protocol that made it.
    #[serde(default)]
    pub port_mapping: Option<PortMappingCheck>,
    /// The coordinator, its control connection's round-trip time, when connected.
    pub coordinator: Option<String>,
    pub coordinator_rtt_ms: Option<u32>,
    /// The relay this host would use, whether it answers, and its round-trip time.
    #[serde(default)]
    pub relay: Option<RelayCheck>,
}

/// A router port mapping: the address peers can reach from anywhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PortMappingCheck {
    /// `pcp`, `nat_pmp` or `upnp`.
    pub protocol: PortMapProtocol,
    pub external: SocketAddr,
    /// Seconds the router granted (renewed at half of it).
    pub lifetime_secs: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortMapProtocol {
    Pcp,
    NatPmp,
    Upnp,
}

impl PortMapProtocol {
    pub fn label(self) -> &'static str {
        match self {
            PortMapProtocol::Pcp => "PCP",
            PortMapProtocol::NatPmp => "NAT-PMP",
            PortMapProtocol::Upnp => "UPnP-IGD",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelayCheck {
    pub server: SocketAddr,
    pub reachable: bool,
    pub rtt_ms: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StunAnswer {
    pub server: SocketAddr,
    pub mapped: Option<SocketAddr>,
}

/// Which batching features the data plane ended up with after asking the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffloadStatus {
    pub tun_vnet_hdr: bool,
    pub tun_udp_gso: bool,
    pub udp_gso_segments: usize,
    pub udp_gro_segments: usize,
}
