//! Control messages (JSON inside frames). Every exchange is versioned by [`CONTROL_VERSION`] in
//! the hello; requests carry an `id` that their reply repeats.

use crate::key::NodeKey;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

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
    /// The overlay IPv4 address this host uses with all its coordinators. A host in networks
    /// of several coordinators has one address everywhere: each coordinator leases it the
    /// claimed address unless another of its nodes holds it, and then leases another one
    /// (the [`Welcome`]'s `overlay_ip` differs from the claim), which tells the host to move
    /// to a fresh address everywhere. Absent from older daemons (leased as before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<Ipv4Addr>,
    /// The daemon understands [`ServerMsg::Calls`]. Absent from older daemons, which are
    /// asked to probe peer by peer instead.
    #[serde(default, skip_serializing_if = "is_false")]
    pub calls: bool,
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
        /// This host offers to relay for the others in its networks (a peer relay). The
        /// coordinator passes it on only for a host others can reach: one with a port mapping
        /// or a public address on its interface. Absent from older daemons.
        #[serde(default, skip_serializing_if = "is_false")]
        relay: bool,
        /// The router's mapping of this host's TCP listen port (direct paths over TCP for
        /// peers whose UDP is blocked): often `mapped`'s port, but the router may give
        /// another. Absent from older daemons.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mapped_tcp: Option<SocketAddr>,
    },
    /// Two peers of this host, from different coordinators, have the same overlay address
    /// `ip`: `key`, a member of this coordinator, should move (the one with the greater key
    /// moves, so every host that sees the clash asks the same one). Forwarded to `key` as
    /// [`ServerMsg::AddressClash`] when it shares a network with the sender and holds `ip`.
    AddressClash {
        ip: Ipv4Addr,
        key: NodeKey,
    },
    /// The invites of a network this host is in; answered by [`ServerMsg::Invites`].
    ListInvites {
        id: u64,
        network: String,
    },
    /// Revoke an invite by its id (or a prefix of it) as [`InviteEntry`] shows it: the owner
    /// or the member who made it.
    RevokeInvite {
        id: u64,
        network: String,
        invite: String,
    },
    /// Owner: give the network a new name.
    RenameNetwork {
        id: u64,
        network: String,
        new_name: String,
    },
    /// Owner: a new password (members stay; the old one is refused from now on).
    SetPassword {
        id: u64,
        network: String,
        password: String,
    },
    /// Owner: lock (joins by password or invite become requests) or unlock.
    LockNetwork {
        id: u64,
        network: String,
        locked: bool,
    },
    /// Owner: admit or turn away `node`'s pending request.
    AnswerRequest {
        id: u64,
        network: String,
        node: NodeKey,
        approve: bool,
    },
    /// Owner: take `node` out of the network; with `ban`, its key may not join again.
    RemoveMember {
        id: u64,
        network: String,
        node: NodeKey,
        #[serde(default)]
        ban: bool,
    },
    /// The LAN prefixes this host routes for its networks (subnet routes; replaces the list
    /// sent before; empty: none). Each is used once the network's owner approves it.
    AdvertiseRoutes {
        routes: Vec<String>,
    },
    /// Owner: approve (or withdraw the approval of) member `node`'s route `prefix`.
    ApproveRoute {
        id: u64,
        network: String,
        node: NodeKey,
        prefix: String,
        approve: bool,
    },
    /// Owner: delete the network for every member.
    DeleteNetwork {
        id: u64,
        network: String,
    },
}

impl ClientMsg {
    /// The request id its reply repeats (0 for `Endpoints`, which has no reply).
    pub fn id(&self) -> u64 {
        match self {
            ClientMsg::CreateNetwork { id, .. }
            | ClientMsg::JoinNetwork { id, .. }
            | ClientMsg::LeaveNetwork { id, .. }
            | ClientMsg::CreateInvite { id, .. }
            | ClientMsg::JoinInvite { id, .. }
            | ClientMsg::Logout { id }
            | ClientMsg::ListInvites { id, .. }
            | ClientMsg::RevokeInvite { id, .. }
            | ClientMsg::RenameNetwork { id, .. }
            | ClientMsg::SetPassword { id, .. }
            | ClientMsg::LockNetwork { id, .. }
            | ClientMsg::AnswerRequest { id, .. }
            | ClientMsg::RemoveMember { id, .. }
            | ClientMsg::ApproveRoute { id, .. }
            | ClientMsg::DeleteNetwork { id, .. } => *id,
            ClientMsg::Endpoints { .. }
            | ClientMsg::AddressClash { .. }
            | ClientMsg::AdvertiseRoutes { .. } => 0,
        }
    }

    /// The same request under request id `id` (`Endpoints` has none).
    pub fn with_id(mut self, new: u64) -> Self {
        match &mut self {
            ClientMsg::CreateNetwork { id, .. }
            | ClientMsg::JoinNetwork { id, .. }
            | ClientMsg::LeaveNetwork { id, .. }
            | ClientMsg::CreateInvite { id, .. }
            | ClientMsg::JoinInvite { id, .. }
            | ClientMsg::Logout { id }
            | ClientMsg::ListInvites { id, .. }
            | ClientMsg::RevokeInvite { id, .. }
            | ClientMsg::RenameNetwork { id, .. }
            | ClientMsg::SetPassword { id, .. }
            | ClientMsg::LockNetwork { id, .. }
            | ClientMsg::AnswerRequest { id, .. }
            | ClientMsg::RemoveMember { id, .. }
            | ClientMsg::ApproveRoute { id, .. }
            | ClientMsg::DeleteNetwork { id, .. } => *id = new,
            ClientMsg::Endpoints { .. }
            | ClientMsg::AddressClash { .. }
            | ClientMsg::AdvertiseRoutes { .. } => {}
        }
        self
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NatKind {
    #[default]
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
    /// Only the network's owner may do that.
    NotOwner,
    /// The owner removed this host and banned its key.
    Banned,
    /// No such member, pending request or invite.
    NotFound,
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
    /// The peer relays for the others in its networks, at its port mapping or else its
    /// reflexive address (see [`ClientMsg::Endpoints`]). Absent from older coordinators.
    #[serde(default, skip_serializing_if = "is_false")]
    pub relay: bool,
    /// The LAN prefixes the peer routes for its networks: use one only when `approved` (by
    /// the owner of a network shared with it). Absent from older coordinators.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<PeerRoute>,
    /// Its router's mapping of its TCP listen port (see [`ClientMsg::Endpoints`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapped_tcp: Option<SocketAddr>,
}

/// A LAN prefix a peer routes (see [`PeerInfo::routes`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRoute {
    pub prefix: String,
    pub approved: bool,
}

/// A member's route in one network, as its members see it in [`NetworkState`]: advertised now
/// (the member is online and asks for it) and/or approved by the owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRoute {
    pub key: NodeKey,
    pub name: String,
    pub prefix: String,
    pub advertised: bool,
    pub approved: bool,
}

/// One network of this host, in [`ServerMsg::Networks`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkState {
    pub name: String,
    /// This host is a member (an owner that left its network still gets it listed, to answer,
    /// rename or delete it).
    #[serde(default = "yes")]
    pub member: bool,
    /// This host created it.
    #[serde(default)]
    pub owned: bool,
    #[serde(default)]
    pub locked: bool,
    /// Hosts waiting for approval (only for the owner).
    #[serde(default)]
    pub requests: Vec<JoinRequest>,
    /// Its members' subnet routes. Absent from older coordinators.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<NetworkRoute>,
}

fn yes() -> bool {
    true
}

/// A host that asked to join a locked network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JoinRequest {
    pub key: NodeKey,
    pub name: String,
    /// Unix seconds.
    pub asked_at: u64,
}

/// One invite as [`ServerMsg::Invites`] lists it (never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InviteEntry {
    /// Hex of the start of the secret's hash: enough to name it, useless to join with.
    pub id: String,
    pub network: String,
    /// The name of the member who made it.
    pub created_by: String,
    pub created_at: u64,
    /// Unix seconds; `None`: until revoked.
    pub expires: Option<u64>,
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
    /// The answer to a join (by password or invite) of a locked network: the request waits
    /// for the owner, who is told at once; [`ServerMsg::Networks`] says how it ends.
    JoinPending {
        id: u64,
        network: String,
    },
    /// The answer to [`ClientMsg::ListInvites`].
    Invites {
        id: u64,
        invites: Vec<InviteEntry>,
    },
    /// This host's networks as the coordinator sees them now: sent after the Welcome and
    /// again whenever one of them is created, joined, left, renamed, locked, deleted, gets a
    /// join request, or this host is admitted, turned away or removed. The whole list each
    /// time (a host is in a handful of networks), so a lost update cannot leave it wrong.
    Networks {
        networks: Vec<NetworkState>,
        /// Locked networks this host asked to join, waiting for their owner.
        #[serde(default)]
        waiting: Vec<String>,
        /// What just happened to this host, in plain words (removed, turned away, …).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// A peer appeared or changed; only the changed peer is sent, never the whole map.
    PeerUpsert {
        peer: PeerInfo,
        /// Probe `peer` now, as a [`ServerMsg::CallMeMaybe`] with its candidates would say:
        /// both sides get it at the same moment. Carried on the upsert so that a host meeting
        /// thousands of peers at once gets one message per peer, not two.
        #[serde(default, skip_serializing_if = "is_false")]
        call: bool,
    },
    PeerRemove {
        key: NodeKey,
    },
    /// A fresh ticket for the standalone relay of [`RelayOffer`]: the networks changed, or
    /// the old ticket will soon expire.
    RelayTicket {
        ticket: String,
    },
    /// A member of one of this host's networks also knows another host, from another
    /// coordinator, at this host's overlay address `ip`: move to a fresh address everywhere.
    AddressClash {
        ip: Ipv4Addr,
    },
    /// Probe these peers now, at the candidates this host was last told for each: after this
    /// host reported new endpoints, each of them got its new state with a call to probe it,
    /// at the same moment. One message however many peers (only to daemons whose
    /// [`Hello::calls`] says they read it).
    Calls {
        keys: Vec<NodeKey>,
    },
    /// Both sides get this at the same moment: probe `peer`'s candidates now.
    CallMeMaybe {
        key: NodeKey,
        lan: Vec<SocketAddr>,
        reflexive: Option<SocketAddr>,
        #[serde(default)]
        mapped: Option<SocketAddr>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mapped_tcp: Option<SocketAddr>,
    },
}

fn is_false(b: &bool) -> bool {
    !*b
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
    fn owner_messages_round_trip() {
        let k = NodeKey([3; 32]);
        let client = vec![
            ClientMsg::ListInvites {
                id: 1,
                network: "lan".into(),
            },
            ClientMsg::RevokeInvite {
                id: 2,
                network: "lan".into(),
                invite: "a1b2c3".into(),
            },
            ClientMsg::RenameNetwork {
                id: 3,
                network: "lan".into(),
                new_name: "party".into(),
            },
            ClientMsg::SetPassword {
                id: 4,
                network: "lan".into(),
                password: "pw".into(),
            },
            ClientMsg::LockNetwork {
                id: 5,
                network: "lan".into(),
                locked: true,
            },
            ClientMsg::AnswerRequest {
                id: 6,
                network: "lan".into(),
                node: k,
                approve: false,
            },
            ClientMsg::RemoveMember {
                id: 7,
                network: "lan".into(),
                node: k,
                ban: true,
            },
            ClientMsg::DeleteNetwork {
                id: 8,
                network: "lan".into(),
            },
        ];
        for m in client {
            let j = serde_json::to_string(&m).unwrap();
            assert_eq!(serde_json::from_str::<ClientMsg>(&j).unwrap(), m, "{j}");
            assert_eq!(m.clone().with_id(99).id(), 99);
        }
        let server = vec![
            ServerMsg::JoinPending {
                id: 1,
                network: "lan".into(),
            },
            ServerMsg::Invites {
                id: 2,
                invites: vec![InviteEntry {
                    id: "a1b2c3d4e5f6".into(),
                    network: "lan".into(),
                    created_by: "alice".into(),
                    created_at: 5,
                    expires: None,
                }],
            },
            ServerMsg::Networks {
                networks: vec![NetworkState {
                    name: "lan".into(),
                    member: true,
                    owned: true,
                    locked: true,
                    requests: vec![JoinRequest {
                        key: k,
                        name: "bob".into(),
                        asked_at: 9,
                    }],
                    routes: vec![NetworkRoute {
                        key: k,
                        name: "bob".into(),
                        prefix: "192.168.1.0/24".into(),
                        advertised: true,
                        approved: false,
                    }],
                }],
                waiting: vec!["other".into()],
                note: Some("removed".into()),
            },
            ServerMsg::Error {
                id: 3,
                code: ErrorCode::NotOwner,
                message: "only alice".into(),
            },
        ];
        for m in server {
            let j = serde_json::to_string(&m).unwrap();
            assert_eq!(serde_json::from_str::<ServerMsg>(&j).unwrap(), m, "{j}");
        }
        // A remove without `ban` (the default) and a minimal networks push parse.
        let m: ClientMsg = serde_json::from_str(
            r#"{"type":"remove_member","id":1,"network":"lan","node":"AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM="}"#,
        )
        .unwrap();
        assert!(matches!(m, ClientMsg::RemoveMember { ban: false, .. }));
        let m: ServerMsg =
            serde_json::from_str(r#"{"type":"networks","networks":[{"name":"lan"}]}"#).unwrap();
        let ServerMsg::Networks { networks, note, .. } = m else {
            panic!("not networks");
        };
        assert!(networks[0].member && !networks[0].owned && note.is_none());
    }

    #[test]
    fn mapped_is_optional_on_the_wire() {
        // What a daemon or coordinator from before port mapping sends still parses.
        let old = r#"{"type":"endpoints","lan":[],"reflexive":null,"nat":"unknown"}"#;
        let ClientMsg::Endpoints { mapped, .. } = serde_json::from_str(old).unwrap() else {
            panic!("not endpoints");
        };
        assert_eq!(mapped, None);
        let ClientMsg::Endpoints { mapped_tcp, .. } = serde_json::from_str(old).unwrap() else {
            panic!("not endpoints");
        };
        assert_eq!(mapped_tcp, None);
        let old = r#"{"type":"call_me_maybe","key":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=","lan":[],"reflexive":"198.51.100.1:41820"}"#;
        let m: ServerMsg = serde_json::from_str(old).unwrap();
        assert!(matches!(m, ServerMsg::CallMeMaybe { mapped: None, .. }));
        let m = ServerMsg::CallMeMaybe {
            key: NodeKey([1; 32]),
            lan: vec![],
            reflexive: None,
            mapped: Some("198.20.0.2:41820".parse().unwrap()),
            mapped_tcp: None,
        };
        let j = serde_json::to_string(&m).unwrap();
        assert!(
            !j.contains("mapped_tcp"),
            "unchanged for older readers: {j}"
        );
        assert_eq!(serde_json::from_str::<ServerMsg>(&j).unwrap(), m);
        let m = ServerMsg::CallMeMaybe {
            key: NodeKey([1; 32]),
            lan: vec![],
            reflexive: None,
            mapped: Some("198.20.0.2:41820".parse().unwrap()),
            mapped_tcp: Some("198.20.0.2:41821".parse().unwrap()),
        };
        let j = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<ServerMsg>(&j).unwrap(), m);
    }
}
