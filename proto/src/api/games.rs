//! LAN game discovery as the local API shows and changes it (`warren games`): the broadcast
//! ports and multicast groups the daemon carries into the overlay even when a program sends
//! them the ordinary way (out of the physical LAN), with counters, and a switch per network.

use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// One discovery port (or range) and, for multicast, its group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryPort {
    /// First UDP port.
    pub port: u16,
    /// Last UDP port of a range (equal to `port` for one port).
    pub last: u16,
    /// The multicast group, for a game that announces on one; `None`: broadcast.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<Ipv4Addr>,
}

/// Where a carried port comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortSource {
    /// The built-in list of games and discovery protocols.
    Preset,
    /// Added by the user (`warren games add`, the window, or the config file).
    User,
}

/// A carried port with its counters (since the daemon started).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GamePortStatus {
    /// What uses it ("Minecraft Java LAN games", "Source engine (Counter-Strike…)", …).
    pub name: String,
    #[serde(flatten)]
    pub port: DiscoveryPort,
    pub source: PortSource,
    /// Discovery packets this host sent that were carried to peers.
    pub sent: u64,
    /// Discovery packets from peers delivered here.
    pub received: u64,
    /// Packets not carried: over the rate limit.
    pub dropped: u64,
}

/// Whether a network's peers get this host's discovery packets (and it theirs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GameNetwork {
    pub network: String,
    pub enabled: bool,
}

/// The answer to [`super::Request::Games`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GamesStatus {
    /// Carrying is on (Warren is up and the kernel rules are in place).
    pub active: bool,
    /// Why not, in plain words, when `active` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    pub ports: Vec<GamePortStatus>,
    pub networks: Vec<GameNetwork>,
    /// Multicast groups this host's programs joined that are mirrored onto the Warren
    /// interface, so that the kernel accepts them arriving from peers.
    pub mirrored_groups: Vec<Ipv4Addr>,
}
