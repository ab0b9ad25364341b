//! Relay frames: how a WireGuard datagram reaches a peer through the coordinator's relay when
//! no direct path exists. They travel on the daemon's one UDP socket, next to WireGuard, STUN
//! and disco, and carry the same end-to-end encrypted WireGuard bytes: the relay learns who
//! talks to whom and how much, never what.
//!
//! # Wire format, version 1
//! ```text
//! "WRNr" (4) | version = 1 (1) | type (1) | body
//! Send     0x01  node → relay: destination key id (8) | payload
//! Deliver  0x02  relay → node: payload
//! Ping     0x03  node → relay: token (16) | tx (8)     registers the sender's address
//! Pong     0x04  relay → node: tx (8)
//! TicketPing 0x05 node → relay: token (16) | tx (8) | ticket   a Ping for a standalone relay
//! ```
//! A standalone relay (`warren-coordinator relay`) has no coordinator beside it to tell it the
//! tokens: its nodes add the [`crate::relay_ticket`] the coordinator sealed for them, which
//! names the token's node and its networks. The coordinator's own relay needs no ticket.
//! The token is a per-connection secret the coordinator hands the node over its authenticated
//! control channel. A Ping with a live token registers the address it came from as that node's
//! (and, repeated every few seconds, keeps the node's NAT mapping open); Send frames are
//! accepted only from registered addresses and forwarded only between nodes that share a
//! network. The headers are this small so that a full-size overlay packet (MTU 1420 plus
//! WireGuard's 32 bytes) still fits a 1500-byte underlay when relayed: 14 bytes of Send header
//! leave 6 to spare. A Deliver names no sender: the WireGuard or disco message inside says who
//! it is from, authenticated, which a relay's claim could not be.

use crate::datagram::RELAY_MAGIC;
use crate::key::NodeKey;

pub const RELAY_VERSION: u8 = 1;
pub const TOKEN_LEN: usize = 16;
pub type RelayToken = [u8; TOKEN_LEN];

const TYPE_SEND: u8 = 0x01;
const TYPE_DELIVER: u8 = 0x02;
const TYPE_PING: u8 = 0x03;
const TYPE_PONG: u8 = 0x04;
const TYPE_TICKET_PING: u8 = 0x05;
const PREFIX_LEN: usize = RELAY_MAGIC.len() + 2;

/// The first bytes of a node's key: how a Send names its destination.
pub const KEY_ID_LEN: usize = 8;
pub type KeyId = [u8; KEY_ID_LEN];
/// Bytes a Send frame adds before the payload.
pub const SEND_HEADER_LEN: usize = PREFIX_LEN + KEY_ID_LEN;
/// Bytes a Deliver frame adds before the payload.
pub const DELIVER_HEADER_LEN: usize = PREFIX_LEN;

/// The id a Send uses for `key`: 64 bits of an x25519 public key, which nobody can choose.
pub fn key_id(key: &NodeKey) -> KeyId {
    key.0[..KEY_ID_LEN].try_into().expect("8 bytes")
}
pub const PING_LEN: usize = PREFIX_LEN + TOKEN_LEN + 8;
pub const PONG_LEN: usize = PREFIX_LEN + 8;

/// A relay frame, borrowed from the datagram it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayFrame<'a> {
    Send {
        to: KeyId,
        payload: &'a [u8],
    },
    Deliver {
        payload: &'a [u8],
    },
    Ping {
        token: RelayToken,
        tx: [u8; 8],
    },
    Pong {
        tx: [u8; 8],
    },
    TicketPing {
        token: RelayToken,
        tx: [u8; 8],
        ticket: &'a [u8],
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    #[error("not a relay frame")]
    NotRelay,
    #[error("unsupported relay version {0}")]
    Version(u8),
    #[error("unknown relay frame type {0}")]
    Type(u8),
    #[error("relay frame truncated")]
    Truncated,
}

/// A token as the control channel carries it (base64url, no padding).
pub fn parse_token(s: &str) -> Option<RelayToken> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()?
        .try_into()
        .ok()
}

pub fn parse(datagram: &[u8]) -> Result<RelayFrame<'_>, RelayError> {
    if datagram.len() < PREFIX_LEN || !datagram.starts_with(&RELAY_MAGIC) {
        return Err(RelayError::NotRelay);
    }
    let version = datagram[4];
    if version != RELAY_VERSION {
        return Err(RelayError::Version(version));
    }
    let body = &datagram[PREFIX_LEN..];
    match datagram[5] {
        TYPE_SEND if body.len() > KEY_ID_LEN => Ok(RelayFrame::Send {
            to: body[..KEY_ID_LEN].try_into().expect("key id"),
            payload: &body[KEY_ID_LEN..],
        }),
        TYPE_DELIVER if !body.is_empty() => Ok(RelayFrame::Deliver { payload: body }),
        TYPE_PING if body.len() >= TOKEN_LEN + 8 => Ok(RelayFrame::Ping {
            token: body[..TOKEN_LEN].try_into().expect("token"),
            tx: body[TOKEN_LEN..TOKEN_LEN + 8].try_into().expect("tx"),
        }),
        TYPE_PONG if body.len() >= 8 => Ok(RelayFrame::Pong {
            tx: body[..8].try_into().expect("tx"),
        }),
        TYPE_TICKET_PING if body.len() > TOKEN_LEN + 8 => Ok(RelayFrame::TicketPing {
            token: body[..TOKEN_LEN].try_into().expect("token"),
            tx: body[TOKEN_LEN..TOKEN_LEN + 8].try_into().expect("tx"),
            ticket: &body[TOKEN_LEN + 8..],
        }),
        TYPE_SEND | TYPE_DELIVER | TYPE_PING | TYPE_PONG | TYPE_TICKET_PING => {
            Err(RelayError::Truncated)
        }
        t => Err(RelayError::Type(t)),
    }
}

fn prefix(out: &mut [u8], kind: u8) {
    out[..4].copy_from_slice(&RELAY_MAGIC);
    out[4] = RELAY_VERSION;
    out[5] = kind;
}

/// Writes a Send header into `out[..SEND_HEADER_LEN]`; the payload goes right after it.
pub fn write_send_header(out: &mut [u8], to: &NodeKey) {
    prefix(out, TYPE_SEND);
    out[PREFIX_LEN..SEND_HEADER_LEN].copy_from_slice(&key_id(to));
}

/// Writes a Deliver header into `out[..DELIVER_HEADER_LEN]`; the payload goes right after it.
pub fn write_deliver_header(out: &mut [u8]) {
    prefix(out, TYPE_DELIVER);
}

pub fn write_ping(out: &mut [u8], token: &RelayToken, tx: [u8; 8]) -> usize {
    prefix(out, TYPE_PING);
    out[PREFIX_LEN..PREFIX_LEN + TOKEN_LEN].copy_from_slice(token);
    out[PREFIX_LEN + TOKEN_LEN..PING_LEN].copy_from_slice(&tx);
    PING_LEN
}

/// A Ping that carries `ticket`; `None` if `out` is too small.
pub fn write_ticket_ping(
    out: &mut [u8],
    token: &RelayToken,
    tx: [u8; 8],
    ticket: &[u8],
) -> Option<usize> {
    let len = PING_LEN + ticket.len();
    if out.len() < len {
        return None;
    }
    write_ping(out, token, tx);
    out[5] = TYPE_TICKET_PING;
    out[PING_LEN..len].copy_from_slice(ticket);
    Some(len)
}

pub fn write_pong(out: &mut [u8], tx: [u8; 8]) -> usize {
    prefix(out, TYPE_PONG);
    out[PREFIX_LEN..PONG_LEN].copy_from_slice(&tx);
    PONG_LEN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let mut buf = [0u8; 200];
        write_send_header(&mut buf, &NodeKey([2; 32]));
        buf[SEND_HEADER_LEN..SEND_HEADER_LEN + 3].copy_from_slice(b"abc");
        assert_eq!(
            parse(&buf[..SEND_HEADER_LEN + 3]),
            Ok(RelayFrame::Send {
                to: [2; 8],
                payload: b"abc"
            })
        );
        write_deliver_header(&mut buf);
        buf[DELIVER_HEADER_LEN] = 9;
        assert_eq!(
            parse(&buf[..DELIVER_HEADER_LEN + 1]),
            Ok(RelayFrame::Deliver { payload: &[9] })
        );
        // A relayed full-size overlay packet fits a 1500-byte underlay (IPv4 + UDP).
        const { assert!(1420 + 32 + SEND_HEADER_LEN + 28 <= 1500) };
        let n = write_ping(&mut buf, &[1; 16], [5; 8]);
        assert_eq!(
            parse(&buf[..n]),
            Ok(RelayFrame::Ping {
                token: [1; 16],
                tx: [5; 8]
            })
        );
        let n = write_ticket_ping(&mut buf, &[1; 16], [5; 8], b"tkt").unwrap();
        assert_eq!(
            parse(&buf[..n]),
            Ok(RelayFrame::TicketPing {
                token: [1; 16],
                tx: [5; 8],
                ticket: b"tkt"
            })
        );
        assert_eq!(parse(&buf[..PING_LEN]), Err(RelayError::Truncated));
        assert_eq!(
            write_ticket_ping(&mut buf[..PING_LEN + 2], &[1; 16], [5; 8], b"tkt"),
            None
        );
        let n = write_pong(&mut buf, [6; 8]);
        assert_eq!(parse(&buf[..n]), Ok(RelayFrame::Pong { tx: [6; 8] }));
    }

    #[test]
    fn bad_frames_are_errors_not_panics() {
        assert_eq!(parse(b"WRNd\x01\x01"), Err(RelayError::NotRelay));
        assert_eq!(parse(b"WRNr\x02\x01"), Err(RelayError::Version(2)));
        assert_eq!(parse(b"WRNr\x01\x09"), Err(RelayError::Type(9)));
        // A Send or Deliver without payload is truncated.
        let mut buf = [0u8; SEND_HEADER_LEN];
        write_send_header(&mut buf, &NodeKey([0; 32]));
        assert_eq!(parse(&buf), Err(RelayError::Truncated));
        for len in 0..PING_LEN {
            let mut b = [0u8; PING_LEN];
            write_ping(&mut b, &[0; 16], [0; 8]);
            let _ = parse(&b[..len]);
        }
    }
}
