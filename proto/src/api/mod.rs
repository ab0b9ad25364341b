//! The daemon's local API: one JSON object per line over a Unix socket, request then response.
//!
//! Every message carries the API version `v`; a daemon answers a request of another major
//! version with an error instead of guessing. The CLI and the GUI speak only this.

mod check;
#[cfg(any(test, feature = "client"))]
pub mod client;
mod error;
#[cfg(any(test, feature = "test-fixtures"))]
pub mod fixtures;
pub mod games;
mod peer_query;
mod status;

pub use check::*;
pub use error::{ApiError, ErrorCode};

pub use peer_query::{find_peer, MIN_KEY_PREFIX};
pub use status::*;

use crate::key::NodeKey;
use serde::{Deserialize, Serialize};

pub const API_VERSION: u32 = 1;

/// Where `warrend` listens and the CLI and GUI connect unless told otherwise: a Unix socket,
/// on Windows a named pipe.
#[cfg(unix)]
pub const DEFAULT_SOCKET: &str = "/run/warren/warrend.sock";
#[cfg(windows)]
pub const DEFAULT_SOCKET: &str = r"\\.\pipe\warren";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestEnvelope {
    pub v: u32,
    #[serde(flatten)]
    pub request: Request,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Request {
    Status,
    Version,
    /// Turn the tunnel on. With a coordinator: connect to it (remembered across restarts) under
    /// `name`; without: reconnect to the remembered one.
    Up {
        #[serde(default)]
        coordinator: Option<String>,
        #[serde(default)]
        coordinator_key: Option<NodeKey>,
        #[serde(default)]
        name: Option<String>,
        /// More addresses of the same coordinator (others on its database), tried when
        /// `coordinator` does not answer; carried by the invites this host makes.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        alternates: Vec<String>,
    },
    /// Turn the tunnel off (also across restarts); identity, coordinator and networks are kept.
    Down,
    /// Leave every network and forget the coordinator; the node's identity is kept. Refused
    /// while the coordinator cannot be told, unless `force` (then it is forgotten here only).
    Logout {
        #[serde(default)]
        force: bool,
    },
    CreateNetwork {
        name: String,
        password: String,
    },
    JoinNetwork {
        name: String,
        password: String,
    },
    /// Join the network an invite code names, connecting to its coordinator first if needed.
    JoinInvite {
        invite: String,
        #[serde(default)]
        name: Option<String>,
    },
    /// Make an invite code for a network this host is in, valid for `ttl_secs`.
    CreateInvite {
        network: String,
        ttl_secs: u64,
    },
    LeaveNetwork {
        name: String,
    },
    /// One authenticated probe to a peer (name, overlay IP or key prefix) over its current
    /// path; answered by `Pong` or an error after [`PING_TIMEOUT_MS`].
    Ping {
        peer: String,
    },
    /// Is `port` on a peer reachable through Warren, and if not, why (see [`Verdict`]).
    Check {
        peer: String,
        port: u16,
        proto: crate::disco::PortProto,
    },
    /// Have the member `via` (name, overlay IP or key prefix) send the Wake-on-LAN packet for
    /// `mac` on its LAN; answered by `Done` once the request is on its way to `via`.
    Wake {
        mac: crate::mac::Mac,
        via: String,
    },
    /// Measure this host's connectivity now.
    Netcheck,
    /// Keep the connection: the daemon answers `Status` now and again whenever it changes.
    Subscribe,
    /// The discovery ports and groups carried into the overlay, with counters.
    Games,
    /// Carry another discovery port (range) or multicast group:port; answered by `Done`.
    AddGamePort {
        port: games::DiscoveryPort,
    },
    /// Stop carrying a port the user added (presets can be switched off per network only).
    RemoveGamePort {
        port: games::DiscoveryPort,
    },
    /// Carry discovery broadcasts to and from one network's peers, or not.
    SetGameNetwork {
        network: String,
        enabled: bool,
    },
    /// Make this machine the coordinator and relay of a new network: the daemon starts and
    /// supervises a `warren-coordinator` of its own, joins it through loopback and creates
    /// `network` (owned by this host). `password` is optional: invites are the usual way in.
    Host {
        network: String,
        #[serde(default)]
        password: Option<String>,
    },
    /// The unexpired invites of a network this host owns or is in.
    ListInvites {
        network: String,
    },
    /// Revoke one invite (`invite`: its id as `ListInvites` shows it, or a prefix of it).
    RevokeInvite {
        network: String,
        invite: String,
    },
    /// Owner: give the network a new name.
    RenameNetwork {
        network: String,
        new_name: String,
    },
    /// Owner: change the network's password (members stay).
    SetPassword {
        network: String,
        password: String,
    },
    /// Owner: lock (new members wait for approval) or unlock the network.
    LockNetwork {
        network: String,
        locked: bool,
    },
    /// Owner: the requests to join locked networks this host owns.
    JoinRequests,
    /// Owner: admit (`approve`) or turn away a pending request (`who`: name or key prefix).
    AnswerRequest {
        network: String,
        who: String,
        approve: bool,
    },
    /// Owner: remove a member (`who`: name or key prefix); with `ban`, its key may never join
    /// again.
    RemoveMember {
        network: String,
        who: String,
        #[serde(default)]
        ban: bool,
    },
    /// Owner: delete the network for everyone (a hosted network's coordinator stops when it
    /// hosts nothing more).
    DeleteNetwork {
        network: String,
    },
    /// The name this host shows in its networks (first run, or a rename): kept across
    /// restarts and used for every coordinator.
    SetName {
        name: String,
    },
    /// The LAN prefixes this host routes for its networks (subnet routes; replaces the list;
    /// empty: none). Each is used once its network's owner approves it. Answered by `Done`.
    SetAdvertisedRoutes {
        routes: Vec<String>,
    },
    /// Owner: approve (`approve`) or withdraw member `who`'s route `prefix` in `network`.
    ApproveRoute {
        network: String,
        who: String,
        prefix: String,
        approve: bool,
    },
    /// Relay for the others in this host's networks who cannot connect directly (`on`), or
    /// stop; kept across restarts. Answered by `Done`.
    SetRelay {
        on: bool,
    },
    /// Root only: let a local user (a name, or a numeric uid) use this API without being in the
    /// socket's group (`allow`), or stop letting them. Kept in the daemon's state directory.
    SetOperator {
        user: String,
        allow: bool,
    },
    /// The operator users (answered by `Operators`).
    Operators,
}

/// How long the daemon waits for one pong.
pub const PING_TIMEOUT_MS: u64 = 2000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseEnvelope {
    pub v: u32,
    #[serde(flatten)]
    pub response: Response,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    Status(Box<Status>),
    Version {
        daemon: String,
    },
    /// The request was carried out.
    Done {
        message: String,
    },
    /// The request failed: `message` for a person, `code` for a program (added later: an
    /// older daemon leaves it out, which reads as `other`).
    Error {
        message: String,
        #[serde(default)]
        code: ErrorCode,
    },
    Invite {
        code: String,
        network: String,
        /// Unix seconds.
        expires: u64,
    },
    Pong(PingReply),
    Netcheck(NetcheckReport),
    Check(CheckReport),
    Invites(Vec<InviteInfo>),
    JoinRequests(Vec<JoinRequestInfo>),
    Operators(Vec<OperatorInfo>),
    Games(games::GamesStatus),
}

/// A local user allowed to use the daemon's API without being in its socket group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorInfo {
    /// The user name, as it was when the user was added.
    pub user: String,
    /// What the daemon admits: the uid the kernel reports for a connection.
    pub uid: u32,
}

/// One unexpired invite, as `warren invite --list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InviteInfo {
    /// A short id (hex of the start of the secret's hash) to revoke it by.
    pub id: String,
    pub network: String,
    /// The member who made it.
    pub created_by: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds; `None`: until revoked.
    pub expires: Option<u64>,
}

/// A host waiting to join a locked network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JoinRequestInfo {
    pub network: String,
    pub name: String,
    pub public_key: NodeKey,
    /// Unix seconds.
    pub asked_at: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_wire_form_is_stable() {
        let r = RequestEnvelope {
            v: API_VERSION,
            request: Request::Status,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"v":1,"cmd":"status"}"#
        );
        let back: RequestEnvelope = serde_json::from_str(r#"{"cmd":"version","v":1}"#).unwrap();
        assert_eq!(back.request, Request::Version);
        assert!(serde_json::from_str::<RequestEnvelope>(r#"{"v":1,"cmd":"nope"}"#).is_err());
    }

    #[test]
    fn operator_and_name_requests_wire_form() {
        let r: RequestEnvelope =
            serde_json::from_str(r#"{"v":1,"cmd":"set_operator","user":"alice","allow":true}"#)
                .unwrap();
        assert_eq!(
            r.request,
            Request::SetOperator {
                user: "alice".into(),
                allow: true
            }
        );
        let r: RequestEnvelope =
            serde_json::from_str(r#"{"v":1,"cmd":"set_name","name":"bob"}"#).unwrap();
        assert_eq!(r.request, Request::SetName { name: "bob".into() });
        let ops = ResponseEnvelope {
            v: 1,
            response: Response::Operators(vec![OperatorInfo {
                user: "alice".into(),
                uid: 1000,
            }]),
        };
        assert_eq!(
            serde_json::to_string(&ops).unwrap(),
            r#"{"v":1,"operators":[{"user":"alice","uid":1000}]}"#
        );
    }

    #[test]
    fn status_uses_self_and_lowercase_paths() {
        let s = fixtures::StatusBuilder::new()
            .offload(64)
            .peer(fixtures::PeerBuilder::new("b").networks(&["lan"]))
            .build();
        let v: serde_json::Value = serde_json::to_value(ResponseEnvelope {
            v: 1,
            response: Response::Status(Box::new(s.clone())),
        })
        .unwrap();
        assert_eq!(v["status"]["self"]["overlay_ip"], "100.64.0.1");
        assert_eq!(v["status"]["peers"][0]["path"], "none");
        assert_eq!(v["status"]["state"], "up");
        let back: ResponseEnvelope = serde_json::from_value(v).unwrap();
        assert_eq!(back.response, Response::Status(Box::new(s)));
    }
}
