//! Relay tickets: how a relay that runs apart from the coordinator (`warren-coordinator relay`)
//! knows, without asking anyone, which node a relay token belongs to and which nodes may reach
//! each other. The coordinator and its relays share a 32-byte secret; the coordinator seals a
//! ticket for each node's control session and the node hands it to the relay in its pings.
//!
//! # Wire format, version 2
//! ```text
//! version = 2 (1) | node key (32) | token ⊕ pad (16) | serial (8) | expires (8) | n (1) | n × tag (8) | mac (16)
//! ```
//! The token is the secret with which the node proves itself to the relay (see
//! [`crate::relay`]), and the ticket travels in the node's pings for anyone on the path to
//! see: so it is hidden under a pad that only holders of the secret can make, keyed BLAKE2s of
//! the key, serial and expiry (a ticket's serial, its issue time in milliseconds, is never
//! reused for one node).
//! `serial` (milliseconds since the Unix epoch at issue) orders the tickets of one node: a relay
//! keeps the newest, so a node that left a network cannot get its old tag back by replaying
//! an older ticket. `expires` (Unix seconds) bounds how long a ticket from before a leave stays
//! good if the node never presents a newer one. A tag stands for one network (see
//! [`network_tag`]); two nodes may talk through the relay when their tickets share a tag. The
//! MAC is keyed BLAKE2s-128 over everything before it.

use crate::key::NodeKey;
use crate::relay::{RelayToken, TOKEN_LEN};
use blake2::digest::consts::U16;
use blake2::digest::Mac;
use blake2::{Blake2s256, Blake2sMac, Digest};

pub const TICKET_VERSION: u8 = 2;
pub const TAG_LEN: usize = 8;
pub type NetworkTag = [u8; TAG_LEN];
/// Networks one ticket can name; the registry lets a node join far fewer.
pub const MAX_TAGS: usize = 64;
const MAC_LEN: usize = 16;
const FIXED_LEN: usize = 1 + 32 + TOKEN_LEN + 8 + 8 + 1;
pub const MAX_TICKET_LEN: usize = FIXED_LEN + MAX_TAGS * TAG_LEN + MAC_LEN;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub key: NodeKey,
    pub token: RelayToken,
    pub serial: u64,
    pub expires: u64,
    pub tags: Vec<NetworkTag>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("malformed relay ticket")]
    Malformed,
    #[error("relay ticket version {0} is not supported")]
    Version(u8),
    #[error("relay ticket not sealed with this relay's secret")]
    BadMac,
    #[error("relay ticket expired")]
    Expired,
}

/// The tag of the network named `network`: the same at the coordinator and in every ticket.
pub fn network_tag(network: &str) -> NetworkTag {
    let h = Blake2s256::new()
        .chain_update(b"warren relay network tag v1\0")
        .chain_update(network.as_bytes())
        .finalize();
    h[..TAG_LEN].try_into().expect("8 of 32 bytes")
}

/// What hides the token of `key`'s ticket number `serial` (the pad is its own inverse).
fn token_pad(secret: &[u8; 32], key: &NodeKey, serial: u64, expires: u64) -> [u8; TOKEN_LEN] {
    let mut m = <Blake2sMac<U16> as Mac>::new_from_slice(secret).expect("32-byte key");
    m.update(b"warren relay ticket token v2\0");
    m.update(&key.0);
    m.update(&serial.to_be_bytes());
    m.update(&expires.to_be_bytes());
    m.finalize().into_bytes().into()
}

fn xor(token: &RelayToken, pad: &[u8; TOKEN_LEN]) -> RelayToken {
    std::array::from_fn(|i| token[i] ^ pad[i])
}

fn mac(secret: &[u8; 32], body: &[u8]) -> Blake2sMac<U16> {
    let mut m = <Blake2sMac<U16> as Mac>::new_from_slice(secret).expect("32-byte key");
    m.update(body);
    m
}

impl Ticket {
    /// The ticket's bytes, sealed with `secret`. Panics with more than [`MAX_TAGS`] tags (the
    /// coordinator never lets a node into that many networks).
    pub fn seal(&self, secret: &[u8; 32]) -> Vec<u8> {
        assert!(
            self.tags.len() <= MAX_TAGS,
            "too many networks for a ticket"
        );
        let mut out = Vec::with_capacity(FIXED_LEN + self.tags.len() * TAG_LEN + MAC_LEN);
        out.push(TICKET_VERSION);
        out.extend_from_slice(&self.key.0);
        let pad = token_pad(secret, &self.key, self.serial, self.expires);
        out.extend_from_slice(&xor(&self.token, &pad));
        out.extend_from_slice(&self.serial.to_be_bytes());
        out.extend_from_slice(&self.expires.to_be_bytes());
        out.push(self.tags.len() as u8);
        for t in &self.tags {
            out.extend_from_slice(t);
        }
        let tag = mac(secret, &out).finalize().into_bytes();
        out.extend_from_slice(&tag);
        out
    }

    /// Checks the seal and the expiry (`now`: Unix seconds) and returns the ticket.
    pub fn open(bytes: &[u8], secret: &[u8; 32], now: u64) -> Result<Ticket, TicketError> {
        if bytes.len() < FIXED_LEN + MAC_LEN || bytes.len() > MAX_TICKET_LEN {
            return Err(TicketError::Malformed);
        }
        if bytes[0] != TICKET_VERSION {
            return Err(TicketError::Version(bytes[0]));
        }
        let n = bytes[FIXED_LEN - 1] as usize;
        let body_len = FIXED_LEN + n * TAG_LEN;
        if n > MAX_TAGS || bytes.len() != body_len + MAC_LEN {
            return Err(TicketError::Malformed);
        }
        let (body, tag) = bytes.split_at(body_len);
        mac(secret, body)
            .verify_slice(tag)
            .map_err(|_| TicketError::BadMac)?;
        let u64_at = |at: usize| u64::from_be_bytes(body[at..at + 8].try_into().expect("8"));
        let key = NodeKey(body[1..33].try_into().expect("32"));
        let (serial, expires) = (u64_at(33 + TOKEN_LEN), u64_at(41 + TOKEN_LEN));
        let hidden: RelayToken = body[33..33 + TOKEN_LEN].try_into().expect("16");
        let ticket = Ticket {
            key,
            token: xor(&hidden, &token_pad(secret, &key, serial, expires)),
            serial,
            expires,
            tags: body[FIXED_LEN..]
                .chunks_exact(TAG_LEN)
                .map(|c| c.try_into().expect("8"))
                .collect(),
        };
        if ticket.expires <= now {
            return Err(TicketError::Expired);
        }
        Ok(ticket)
    }

    /// Whether the two tickets' nodes share a network.
    pub fn shares_network(&self, other: &Ticket) -> bool {
        self.tags.iter().any(|t| other.tags.contains(t))
    }
}

/// A sealed ticket as the control channel carries it (base64url, no padding).
pub fn encode(sealed: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed)
}

/// The sealed bytes of a ticket from the control channel; `None` if it is not base64url.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .filter(|b| b.len() <= MAX_TICKET_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(tags: &[&str]) -> Ticket {
        Ticket {
            key: NodeKey([7; 32]),
            token: [3; 16],
            serial: 1_700_000_000_123,
            expires: 1_700_000_600,
            tags: tags.iter().map(|n| network_tag(n)).collect(),
        }
    }

    #[test]
    fn sealed_tickets_open_with_the_secret_only() {
        let t = ticket(&["lan-party", "office"]);
        let bytes = t.seal(&[1; 32]);
        assert_eq!(Ticket::open(&bytes, &[1; 32], 1_700_000_000), Ok(t.clone()));
        assert!(
            !bytes.windows(TOKEN_LEN).any(|w| w == t.token),
            "whoever sees the ticket does not see the token"
        );
        assert_eq!(
            Ticket::open(&bytes, &[2; 32], 1_700_000_000),
            Err(TicketError::BadMac)
        );
        assert_eq!(
            Ticket::open(&bytes, &[1; 32], t.expires),
            Err(TicketError::Expired)
        );
        // Every single-bit change is caught; no truncation panics.
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(
                Ticket::open(&b, &[1; 32], 1_700_000_000).is_err(),
                "byte {i}"
            );
            assert!(Ticket::open(&bytes[..i], &[1; 32], 1_700_000_000).is_err());
        }
        let none = ticket(&[]);
        assert_eq!(
            Ticket::open(&none.seal(&[1; 32]), &[1; 32], 0),
            Ok(none.clone())
        );
        assert!(!none.shares_network(&t));
    }

    #[test]
    fn sharing_is_by_network_tag() {
        let a = ticket(&["lan-party", "office"]);
        let b = ticket(&["office"]);
        let c = ticket(&["lan-party2"]);
        assert!(a.shares_network(&b) && b.shares_network(&a));
        assert!(!a.shares_network(&c) && !b.shares_network(&c));
        assert_ne!(network_tag("a"), network_tag("b"));
    }
}
