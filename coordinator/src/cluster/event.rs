//! What coordinators on one database tell each other, as `NOTIFY` payloads: JSON, under
//! PostgreSQL's limit of 8000 bytes.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use warren_proto::control::msg::NatKind;
use warren_proto::key::NodeKey;

/// The `LISTEN`/`NOTIFY` channel.
pub const CHANNEL: &str = "warren_cluster";
/// PostgreSQL refuses a payload of 8000 bytes or more.
pub const MAX_PAYLOAD: usize = 7999;

/// Where a node can be reached, as its coordinator vouched for it (already capped there).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoints {
    #[serde(default)]
    pub lan: Vec<SocketAddr>,
    #[serde(default)]
    pub reflexive: Option<SocketAddr>,
    pub nat: NatKind,
    #[serde(default)]
    pub mapped: Option<SocketAddr>,
    /// It relays for its peers (see `hub::Online::relay`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub relay: bool,
    /// The LAN prefixes it advertises.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapped_tcp: Option<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// The sender runs (every second): a coordinator not heard from for a while is dead.
    Alive,
    /// The sender's view of the others' nodes is incomplete (it just started, or lost its
    /// connection): everyone says again which nodes are online with them.
    Sync,
    /// The sender stored a registry change: reload it from the database.
    Registry,
    /// `node` is connected to the sender, reachable at `endpoints` (also sent when they change).
    Online {
        node: NodeKey,
        #[serde(flatten)]
        endpoints: Endpoints,
    },
    /// `node`'s session with the sender ended.
    Offline { node: NodeKey },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The sending coordinator's id (random per process).
    pub from: u64,
    pub event: Event,
}

/// The payload for `event` from coordinator `from`. A node's LAN addresses are dropped from
/// the end until it fits (they are capped long before that; this only keeps the limit a
/// guarantee).
pub fn encode(from: u64, event: &Event) -> String {
    let mut envelope = Envelope {
        from,
        event: event.clone(),
    };
    loop {
        let text = serde_json::to_string(&envelope).expect("serializable");
        if text.len() <= MAX_PAYLOAD {
            return text;
        }
        match &mut envelope.event {
            Event::Online { endpoints, .. } if !endpoints.lan.is_empty() => {
                let keep = endpoints.lan.len() / 2;
                endpoints.lan.truncate(keep);
            }
            _ => unreachable!("only an online event's LAN list can grow"),
        }
    }
}

/// A payload back into an event; anything else on the channel is an error naming it.
pub fn decode(payload: &str) -> Result<Envelope, String> {
    serde_json::from_str(payload).map_err(|e| format!("unreadable cluster event ({e}): {payload}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(lan: usize) -> Endpoints {
        Endpoints {
            lan: (0..lan)
                .map(|i| SocketAddr::from(([192, 168, (i / 250) as u8, (i % 250) as u8], 41820)))
                .collect(),
            reflexive: Some("203.0.113.7:41820".parse().unwrap()),
            nat: NatKind::EndpointIndependent,
            mapped: None,
            relay: false,
            routes: Vec::new(),
            mapped_tcp: Some("203.0.113.7:41821".parse().unwrap()),
        }
    }

    #[test]
    fn every_event_goes_through_a_payload_and_back() {
        let node = NodeKey([7; 32]);
        for event in [
            Event::Alive,
            Event::Sync,
            Event::Registry,
            Event::Online {
                node,
                endpoints: endpoints(3),
            },
            Event::Offline { node },
        ] {
            let text = encode(u64::MAX, &event);
            let back = decode(&text).unwrap();
            assert_eq!(back.from, u64::MAX, "{text}");
            assert_eq!(back.event, event, "{text}");
        }
    }

    #[test]
    fn an_oversized_lan_list_is_cut_to_fit_the_payload_limit() {
        let event = Event::Online {
            node: NodeKey([1; 32]),
            endpoints: endpoints(1000),
        };
        let text = encode(1, &event);
        assert!(text.len() <= MAX_PAYLOAD, "{} bytes", text.len());
        let Event::Online { endpoints: e, .. } = decode(&text).unwrap().event else {
            panic!("not an online event: {text}");
        };
        assert!(!e.lan.is_empty() && e.lan.len() < 1000);
        assert_eq!(e.lan[..], endpoints(1000).lan[..e.lan.len()]);
        assert_eq!(e.reflexive, endpoints(0).reflexive);
    }

    #[test]
    fn a_foreign_payload_is_an_error_that_shows_it() {
        let err = decode("hello").unwrap_err();
        assert!(err.contains("hello"), "{err}");
    }
}
