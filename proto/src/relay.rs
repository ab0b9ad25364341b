//! Relay frames: how a WireGuard datagram reaches a peer through the coordinator's relay when
//! no direct path exists. They travel on the daemon's one UDP socket, next to WireGuard, STUN
//! and disco, and carry the same end-to-end encrypted WireGuard bytes: the relay learns who
//! talks to whom and how much, never what.
//!
//! # Wire format, version 2
//! ```text
//! "WRNr" (4) | version = 2 (1) | type (1) | body
//! Send      0x01  node → relay: destination key id (8) | payload
//! Deliver   0x02  relay → node: payload
//! Ping      0x03  node → relay: token id (8) | tx (8) | zeros (8)
//! Pong      0x04  relay → node: tx (8)
//! TicketPing 0x05 node → relay: token id (8) | tx (8) | zeros (8) | ticket
//! Challenge 0x06  relay → node: tx (8) | cookie (16)
//! Register  0x07  node → relay: token id (8) | tx (8) | cookie (16) | proof (16)
//! ```
//! The token is a per-connection secret the coordinator hands the node over its authenticated
//! control channel; it never travels in the clear. A Ping names it by its [`token_id`] and,
//! from the node's registered address, is answered with a Pong (repeated every few seconds it
//! keeps the node's NAT mapping open). From any other address it gets a Challenge: a cookie
//! the relay computes from that address, the token id and the time, and the node answers with
//! a Register whose [`proof`] (keyed with the token) covers the cookie. Only then does the
//! relay send the node's traffic to the new address — so someone who watches the pings can
//! neither replay them from elsewhere nor take the node's address over, while a node whose
//! NAT gave it a new port is back after one round trip. The zeros make a Ping as long as the
//! Challenge it draws: the relay never answers with more bytes than it got.
//!
//! A standalone relay (`warren-coordinator relay`) has no coordinator beside it to tell it the
//! tokens: its nodes add the [`crate::relay_ticket`] the coordinator sealed for them, which
//! carries the token (encrypted) with the node's key and its networks. The coordinator's own
//! relay needs no ticket. Send frames are accepted only from registered addresses and
//! forwarded only between nodes that share a network. The headers are this small so that a full-size overlay packet (MTU 1420 plus
//! WireGuard's 32 bytes) still fits a 1500-byte underlay when relayed: 14 bytes of Send header
//! leave 6 to spare. A Deliver names no sender: the WireGuard or disco message inside says who
//! it is from, authenticated, which a relay's claim could not be.

use crate::datagram::RELAY_MAGIC;
use crate::key::NodeKey;
use blake2::digest::consts::U16;
use blake2::digest::Mac;
use blake2::{Blake2s256, Blake2sMac, Digest};

pub const RELAY_VERSION: u8 = 2;
pub const TOKEN_LEN: usize = 16;
pub type RelayToken = [u8; TOKEN_LEN];
/// How a Ping names its token without showing it.
pub const TOKEN_ID_LEN: usize = 8;
pub type TokenId = [u8; TOKEN_ID_LEN];
pub const COOKIE_LEN: usize = 16;
pub type Cookie = [u8; COOKIE_LEN];
pub const PROOF_LEN: usize = 16;
pub type Proof = [u8; PROOF_LEN];

/// The public name of `token`.
pub fn token_id(token: &RelayToken) -> TokenId {
    let h = Blake2s256::new()
        .chain_update(b"warren relay token id v2\0")
        .chain_update(token)
        .finalize();
    h[..TOKEN_ID_LEN].try_into().expect("8 of 32 bytes")
}

/// What a Register shows: that its sender holds `token`, for this cookie and transaction.
pub fn proof(token: &RelayToken, tx: [u8; 8], cookie: &Cookie) -> Proof {
    let mut m = <Blake2sMac<U16> as Mac>::new_from_slice(token).expect("16-byte key");
    m.update(b"warren relay register v2\0");
    m.update(&token_id(token));
    m.update(&tx);
    m.update(cookie);
    m.finalize().into_bytes().into()
}

/// Whether `proof` is `token`'s for this cookie and transaction (in constant time).
pub fn proof_holds(token: &RelayToken, tx: [u8; 8], cookie: &Cookie, proof: &Proof) -> bool {
    let mut m = <Blake2sMac<U16> as Mac>::new_from_slice(token).expect("16-byte key");
    m.update(b"warren relay register v2\0");
    m.update(&token_id(token));
    m.update(&tx);
    m.update(cookie);
    m.verify_slice(proof).is_ok()
}

const TYPE_SEND: u8 = 0x01;
const TYPE_DELIVER: u8 = 0x02;
const TYPE_PING: u8 = 0x03;
const TYPE_PONG: u8 = 0x04;
const TYPE_TICKET_PING: u8 = 0x05;
const TYPE_CHALLENGE: u8 = 0x06;
const TYPE_REGISTER: u8 = 0x07;
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
pub const PING_LEN: usize = PREFIX_LEN + TOKEN_ID_LEN + 8 + 8;
pub const PONG_LEN: usize = PREFIX_LEN + 8;
pub const CHALLENGE_LEN: usize = PREFIX_LEN + 8 + COOKIE_LEN;
pub const REGISTER_LEN: usize = PREFIX_LEN + TOKEN_ID_LEN + 8 + COOKIE_LEN + PROOF_LEN;
const _: () = assert!(
    CHALLENGE_LEN <= PING_LEN,
    "a challenge is no larger than its ping"
);

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
        token: TokenId,
        tx: [u8; 8],
    },
    Pong {
        tx: [u8; 8],
    },
    TicketPing {
        token: TokenId,
        tx: [u8; 8],
        ticket: &'a [u8],
    },
    Challenge {
        tx: [u8; 8],
        cookie: Cookie,
    },
    Register {
        token: TokenId,
        tx: [u8; 8],
        cookie: Cookie,
        proof: Proof,
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
        TYPE_PING if datagram.len() >= PING_LEN => Ok(RelayFrame::Ping {
            token: array(body, 0),
            tx: array(body, TOKEN_ID_LEN),
        }),
        TYPE_PONG if body.len() >= 8 => Ok(RelayFrame::Pong { tx: array(body, 0) }),
        TYPE_TICKET_PING if datagram.len() > PING_LEN => Ok(RelayFrame::TicketPing {
            token: array(body, 0),
            tx: array(body, TOKEN_ID_LEN),
            ticket: &datagram[PING_LEN..],
        }),
        TYPE_CHALLENGE if datagram.len() >= CHALLENGE_LEN => Ok(RelayFrame::Challenge {
            tx: array(body, 0),
            cookie: array(body, 8),
        }),
        TYPE_REGISTER if datagram.len() >= REGISTER_LEN => Ok(RelayFrame::Register {
            token: array(body, 0),
            tx: array(body, TOKEN_ID_LEN),
            cookie: array(body, TOKEN_ID_LEN + 8),
            proof: array(body, TOKEN_ID_LEN + 8 + COOKIE_LEN),
        }),
        TYPE_SEND | TYPE_DELIVER | TYPE_PING | TYPE_PONG | TYPE_TICKET_PING | TYPE_CHALLENGE
        | TYPE_REGISTER => Err(RelayError::Truncated),
        t => Err(RelayError::Type(t)),
    }
}

/// `N` bytes of `body` from `at`; the caller checked the length.
fn array<const N: usize>(body: &[u8], at: usize) -> [u8; N] {
    body[at..at + N].try_into().expect("length checked")
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
    let at = PREFIX_LEN + TOKEN_ID_LEN;
    out[PREFIX_LEN..at].copy_from_slice(&token_id(token));
    out[at..at + 8].copy_from_slice(&tx);
    out[at + 8..PING_LEN].fill(0);
    PING_LEN
}

pub fn write_challenge(out: &mut [u8], tx: [u8; 8], cookie: &Cookie) -> usize {
    prefix(out, TYPE_CHALLENGE);
    out[PREFIX_LEN..PREFIX_LEN + 8].copy_from_slice(&tx);
    out[PREFIX_LEN + 8..CHALLENGE_LEN].copy_from_slice(cookie);
    CHALLENGE_LEN
}

/// The answer to a Challenge: `token`'s proof for `cookie`.
pub fn write_register(out: &mut [u8], token: &RelayToken, tx: [u8; 8], cookie: &Cookie) -> usize {
    prefix(out, TYPE_REGISTER);
    let mut at = PREFIX_LEN;
    for part in [&token_id(token)[..], &tx, cookie, &proof(token, tx, cookie)] {
        out[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    REGISTER_LEN
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
        let id = token_id(&[1; 16]);
        assert_eq!(
            parse(&buf[..n]),
            Ok(RelayFrame::Ping {
                token: id,
                tx: [5; 8]
            })
        );
        assert!(
            !buf[..n].windows(16).any(|w| w == [1; 16]),
            "the token itself is not in the ping"
        );
        let n = write_ticket_ping(&mut buf, &[1; 16], [5; 8], b"tkt").unwrap();
        assert_eq!(
            parse(&buf[..n]),
            Ok(RelayFrame::TicketPing {
                token: id,
                tx: [5; 8],
                ticket: b"tkt"
            })
        );
        let n = write_challenge(&mut buf, [7; 8], &[3; 16]);
        assert_eq!(n, CHALLENGE_LEN);
        assert_eq!(
            parse(&buf[..n]),
            Ok(RelayFrame::Challenge {
                tx: [7; 8],
                cookie: [3; 16]
            })
        );
        let n = write_register(&mut buf, &[1; 16], [7; 8], &[3; 16]);
        let Ok(RelayFrame::Register {
            token,
            tx,
            cookie,
            proof,
        }) = parse(&buf[..n])
        else {
            panic!("a register: {:?}", parse(&buf[..n]));
        };
        assert_eq!((token, tx, cookie), (id, [7; 8], [3; 16]));
        assert!(proof_holds(&[1; 16], tx, &cookie, &proof));
        assert!(!proof_holds(&[2; 16], tx, &cookie, &proof), "another token");
        assert!(
            !proof_holds(&[1; 16], tx, &[4; 16], &proof),
            "another cookie"
        );
        assert_eq!(parse(&buf[..n - 1]), Err(RelayError::Truncated));
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
        assert_eq!(parse(b"WRNr\x01\x01"), Err(RelayError::Version(1)));
        assert_eq!(parse(b"WRNr\x02\x09"), Err(RelayError::Type(9)));
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
