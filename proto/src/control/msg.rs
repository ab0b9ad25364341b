//! Control messages (JSON inside frames). Every exchange is versioned by [`CONTROL_VERSION`] in
//! the hello; requests carry an `id` that their reply repeats.

use crate::key::NodeKey;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};

pub const CONTROL_VERSION: u32 = 1;

/// The payload of the daemon's first (Noise) message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub v: u32,
    /// The name the user chose (`warren up --name`), or the host name.
    pub name: String,
    /// The port of the daemon's one UDP socket, for STUN and direct paths.
    pub udp_port: u16,
    /// Addresses of this host on its local networks (LAN candidates).
    pub lan_endpoints: Vec<SocketAddr>,
    /// The coordinator address this connection was made to: behind a router that forwards
    /// other public port numbers than the local ones, the STUN and relay ports in the
    /// [`Welcome`] must be the public ones (see [`Published`]). Absent from older daemons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialed: Option<SocketAddr>,
}

/// A public address under which a coordinator is reached through port forwarding, with the
/// public numbers of its other ports there. A coordinator on a home PC (`warren host`) is told
/// these by the daemon that runs it, in a small JSON file (`warren-coordinator --published`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The public control address (QUIC, and TCP unless `tcp` says otherwise).
    pub address: SocketAddr,
    /// The public TCP control address, when the router forwards TCP from another port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<SocketAddr>,
    pub stun_ports: [u16; 2],
    pub relay_port: u16,
}

/// The payload of the coordinator's (Noise) reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    pub v: u32,
    pub overlay_ip: IpAddr,
    pub networks: Vec<String>,
    /// The coordinator's two STUN ports on its control address: asking both from the
    /// WireGuard socket tells the daemon its reflexive address and NAT mapping kind.
    #[serde(default)]
    pub stun_ports: Vec<u16>,
    /// The relay on the coordinator's address, when it runs one.
    #[serde(default)]
    pub relay: Option<RelayOffer>,
}

/// Where the relay listens (UDP, on the coordinator's control address) and the token that
/// lets this connection's node use it (base64url of [`crate::relay::RelayToken`]); the token
/// dies with the connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelayOffer {
    pub port: u16,
    pub token: String,
    /// A relay that runs apart from the coordinator (`warren-coordinator relay`): its
    /// address (then `port` is its port too), and the ticket (base64url of a sealed
    /// [`crate::relay_ticket::Ticket`]) to show it in every ping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<SocketAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMsg {
    CreateNetwork {
        id: u64,
        name: String,
        password: String,
    },
    JoinNetwork {
        id: u64,
        name: String,
        password: String,
    },
    LeaveNetwork {
        id: u64,
        name: String,
    },
    /// Ask for a join secret for `network` (members only), valid for `ttl_secs`; answered by
    /// [`ServerMsg::Invite`].
    CreateInvite {
        id: u64,
        network: String,
        ttl_secs: u64,
    },
    /// Join `network` with a secret from an invite instead of its password.
    JoinInvite {
        id: u64,
        network: String,
        /// The invite's secret, base64url as [`crate::invite`] carries it.
        secret: String,
    },
    /// Leave every network; the node's key and address lease stay.
    Logout {
        id: u64,
    },
    /// New candidate endpoints (e.g. after a STUN answer or an address change).
    Endpoints {
        lan: Vec<SocketAddr>,
        reflexive: Option<SocketAddr>,
        nat: NatKind,
        /// A port mapping this host holds on its router (UPnP-IGD, NAT-PMP or PCP): reachable
        /// from anywhere even behind a symmetric NAT. Absent from older daemons.
        #[serde(default)]
        mapped: Option<SocketAddr>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NatKind {
    Unknown,
    /// Public address, or a NAT whose mapping does not depend on the destination.
    EndpointIndependent,
    /// A new mapping per destination: reflexive addresses are useless to peers.
    Symmetric,
}

/// Why a request failed; the CLI shows `message` and picks its exit code from `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    WrongPassword,
    NoSuchNetwork,
    NetworkExists,
    NameTaken,
    NotAMember,
    InvalidName,
    RateLimited,
    InviteExpired,
    InviteInvalid,
    Internal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub key: NodeKey,
    pub name: String,
    pub overlay_ip: IpAddr,
    pub networks: Vec<String>,
    pub online: bool,
    pub lan: Vec<SocketAddr>,
    pub reflexive: Option<SocketAddr>,
    pub nat: NatKind,
    /// The peer's router port mapping, when it holds one (see [`ClientMsg::Endpoints`]).
    #[serde(default)]
    pub mapped: Option<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    Ok {
        id: u64,
    },
    Error {
        id: u64,
        code: ErrorCode,
        message: String,
    },
    /// The answer to [`ClientMsg::CreateInvite`].
    Invite {
        id: u64,
        network: String,
        /// base64url, 16 random bytes; the coordinator keeps only a hash.
        secret: String,
        /// Unix seconds after which the coordinator refuses it.
        expires: u64,
    },
    /// A peer appeared or changed; only the changed peer is sent, never the whole map.
    PeerUpsert {
        peer: PeerInfo,
    },
    PeerRemove {
        key: NodeKey,
    },
    /// A fresh ticket for the standalone relay of [`RelayOffer`]: the networks changed, or
    /// the old ticket will soon expire.
    RelayTicket {
        ticket: String,
    },
    /// Both sides get this at the same moment: probe `peer`'s candidates now.
    CallMeMaybe {
        key: NodeKey,
        lan: Vec<SocketAddr>,
        reflexive: Option<SocketAddr>,
        #[serde(default)]
        mapped: Option<SocketAddr>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_forms_round_trip_and_are_tagged() {
        let msgs = vec![
            ServerMsg::Error {
                id: 7,
                code: ErrorCode::WrongPassword,
                message: "wrong password for network lan-party".into(),
            },
            ServerMsg::PeerRemove {
                key: NodeKey([1; 32]),
            },
        ];
        for m in msgs {
            let j = serde_json::to_string(&m).unwrap();
            assert_eq!(serde_json::from_str::<ServerMsg>(&j).unwrap(), m);
        }
        let j = serde_json::to_value(ClientMsg::JoinNetwork {
            id: 1,
            name: "lan-party".into(),
            password: "pw".into(),
        })
        .unwrap();
        assert_eq!(j["type"], "join_network");
        assert!(serde_json::from_str::<ClientMsg>(r#"{"type":"explode"}"#).is_err());
    }

    #[test]
    fn mapped_is_optional_on_the_wire() {
        // What a daemon or coordinator from before port mapping sends still parses.
        let old = r#"{"type":"endpoints","lan":[],"reflexive":null,"nat":"unknown"}"#;
        let ClientMsg::Endpoints { mapped, .. } = serde_json::from_str(old).unwrap() else {
            panic!("not endpoints");
        };
        assert_eq!(mapped, None);
        let old = r#"{"type":"call_me_maybe","key":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=","lan":[],"reflexive":"198.51.100.1:41820"}"#;
        let m: ServerMsg = serde_json::from_str(old).unwrap();
        assert!(matches!(m, ServerMsg::CallMeMaybe { mapped: None, .. }));
        let m = ServerMsg::CallMeMaybe {
            key: NodeKey([1; 32]),
            lan: vec![],
            reflexive: None,
            mapped: Some("198.20.0.2:41820".parse().unwrap()),
        };
        let j = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<ServerMsg>(&j).unwrap(), m);
    }
}
