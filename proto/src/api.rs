//! The daemon's local API: one JSON object per line over a Unix socket, request then response.
//!
//! Every message carries the API version `v`; a daemon answers a request of another major
//! version with an error instead of guessing. The CLI and the GUI speak only this.

use crate::control::msg::NatKind;
use crate::key::NodeKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

pub const API_VERSION: u32 = 1;

/// Where `warrend` listens and the CLI and GUI connect unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/warren/warrend.sock";

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
    /// Connect to a coordinator (remembered across restarts) under `name`.
    Up {
        coordinator: String,
        coordinator_key: NodeKey,
        name: Option<String>,
    },
    CreateNetwork {
        name: String,
        password: String,
    },
    JoinNetwork {
        name: String,
        password: String,
    },
    LeaveNetwork {
        name: String,
    },
}

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
    Error {
        message: String,
    },
}

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
    #[serde(rename = "self")]
    pub self_: SelfStatus,
    pub peers: Vec<PeerStatus>,
    /// Packets the daemon refused, by reason (e.g. `no_route`, `malformed`, `decrypt_failed`).
    pub dropped: BTreeMap<String, u64>,
    pub offload: OffloadStatus,
    /// `None` in manual mode (no `warren up` yet).
    #[serde(default)]
    pub coordinator: Option<CoordinatorStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoordinatorStatus {
    pub address: String,
    /// This host's name in its networks.
    pub name: String,
    /// The address the coordinator leased to this host, once connected.
    pub overlay_ip: Option<IpAddr>,
    pub public_key: NodeKey,
    pub connected: bool,
    /// Why the last attempt failed, while not connected.
    pub last_error: Option<String>,
    pub networks: Vec<String>,
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
}

/// Which batching features the data plane ended up with after asking the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffloadStatus {
    pub tun_vnet_hdr: bool,
    pub tun_udp_gso: bool,
    pub udp_gso_segments: usize,
    pub udp_gro_segments: usize,
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
    fn status_uses_self_and_lowercase_paths() {
        let s = Status {
            self_: SelfStatus {
                name: "a".into(),
                overlay_ip: "100.64.0.1".parse().unwrap(),
                overlay_ip6: None,
                public_key: NodeKey([1; 32]),
                listen_port: 1,
                tun: "warren0".into(),
                mtu: 1420,
                reflexive: None,
                nat: NatKind::Unknown,
            },
            peers: vec![PeerStatus {
                name: "b".into(),
                public_key: NodeKey([2; 32]),
                overlay_ip: None,
                allowed_ips: vec![],
                online: false,
                path: PathKind::None,
                endpoint: None,
                rtt_ms: None,
                last_handshake_secs: None,
                rx_bytes: 0,
                tx_bytes: 0,
            }],
            dropped: BTreeMap::new(),
            offload: OffloadStatus {
                tun_vnet_hdr: true,
                tun_udp_gso: true,
                udp_gso_segments: 64,
                udp_gro_segments: 64,
            },
            coordinator: None,
        };
        let v: serde_json::Value = serde_json::to_value(ResponseEnvelope {
            v: 1,
            response: Response::Status(Box::new(s.clone())),
        })
        .unwrap();
        assert_eq!(v["status"]["self"]["overlay_ip"], "100.64.0.1");
        assert_eq!(v["status"]["peers"][0]["path"], "none");
        let back: ResponseEnvelope = serde_json::from_value(v).unwrap();
        assert_eq!(back.response, Response::Status(Box::new(s)));
    }
}
