//! A relay that runs apart from the coordinator (`warren-coordinator relay`, see
//! [`crate::relay_standalone`]): the coordinator points its nodes there and seals each a ticket
//! with the secret the two share, naming the node's token and networks. The relay admits by
//! those tickets alone, so it needs no connection to the coordinator.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use warren_proto::control::msg::RelayOffer;
use warren_proto::key::NodeKey;
use warren_proto::relay::RelayToken;
use warren_proto::relay_ticket::{self, network_tag, Ticket, MAX_TAGS};

/// How long a ticket stays good. Sessions get a new one on every join or leave and with every
/// hourly lease renewal, so only a node that left a network and then hid its newer ticket
/// keeps reaching that network's members this long, and only with end-to-end encrypted
/// packets they no longer accept.
pub const TICKET_TTL: Duration = Duration::from_secs(2 * 3600);

pub struct ExternalRelay {
    pub addr: SocketAddr,
    secret: [u8; 32],
}

impl ExternalRelay {
    pub fn new(addr: SocketAddr, secret: [u8; 32]) -> Self {
        Self { addr, secret }
    }

    /// A ticket for `node`'s session token in `networks`, sealed and encoded for the wire.
    pub fn ticket(&self, node: NodeKey, token: RelayToken, networks: &[String]) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let ticket = Ticket {
            key: node,
            token,
            serial: now.as_millis() as u64,
            expires: (now + TICKET_TTL).as_secs(),
            tags: networks
                .iter()
                .take(MAX_TAGS)
                .map(|n| network_tag(n))
                .collect(),
        };
        relay_ticket::encode(&ticket.seal(&self.secret))
    }

    /// The Welcome's relay offer for a new session of `node`.
    pub fn offer(&self, node: NodeKey, token: RelayToken, networks: &[String]) -> RelayOffer {
        RelayOffer {
            port: self.addr.port(),
            token: URL_SAFE_NO_PAD.encode(token),
            address: Some(self.addr),
            ticket: Some(self.ticket(node, token, networks)),
        }
    }
}
