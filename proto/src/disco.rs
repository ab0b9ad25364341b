//! Warren's path messages ("disco", after Tailscale's): authenticated pings and pongs that travel
//! on the daemon's one UDP socket next to WireGuard, to find and keep direct paths between nodes.
//!
//! # Wire format, version 1
//! ```text
//! "WRNd" (4) | version = 1 (1) | sender NodeKey (32) | nonce (24) | ciphertext | tag (16)
//! ```
//! The ciphertext is XChaCha20-Poly1305 under a key both nodes derive from the x25519 shared
//! secret of their static (WireGuard) keys: `BLAKE2s-256(DOMAIN | shared | lower key | higher
//! key)`, the two public keys sorted so that both directions use the same key. The 61-byte
//! header is the associated data, so a message cannot be re-labelled with another sender (which
//! also stops a node's own messages from being reflected back to it as the peer's).
//!
//! Plaintext (big-endian, fixed layout):
//! ```text
//! Ping: 0x01 | tx_id (12)
//! Pong: 0x02 | tx_id (12) | family 4 or 6 (1) | IP (4 or 16) | port (2)
//! PortQuery: 0x03 | tx_id (12) | port (2) | protocol 6 or 17 (1)
//! PortAnswer: 0x04 | tx_id (12) | listening 0, 1 or 2 (1)
//! Birthday: 0x05 | tx_id (12)
//! TcpDial: 0x06 | tx_id (12)
//! Wake: 0x07 | tx_id (12) | MAC (6)
//! ```
//! Bytes after a known message's fields are ignored (authenticated all the same), so later
//! additions such as padding for path-MTU probes remain readable by version-1 nodes.
//!
//! The nonce's first 8 bytes are the sender's clock (milliseconds, big-endian, any epoch that
//! only moves forward) and the other 16 must be unique: [`nonce_at`] builds one, [`sent_at`]
//! reads it back. Being part of the header, the time is authenticated, so a receiver can refuse
//! a replayed message (the daemon's `node::disco_freshness`).
//!
//! Nonces and transaction ids come from the caller: nothing here reads a clock or an RNG.
//! Callers that handle many messages per peer can derive a [`DiscoKey`] once and keep it;
//! [`seal`] and [`open`] derive it on every call, which is fine at probe rates.

use crate::datagram::DISCO_MAGIC;
use crate::key::NodeKey;
use blake2::{Blake2s256, Digest};
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use x25519_dalek::{PublicKey, StaticSecret};

/// The format version this module writes and reads.
pub const DISCO_VERSION: u8 = 1;
/// Magic, version, sender key and nonce: the associated data of the AEAD.
pub const HEADER_LEN: usize = DISCO_MAGIC.len() + 1 + 32 + NONCE_LEN;
pub const NONCE_LEN: usize = 24;
pub const TAG_LEN: usize = 16;
/// Longest plaintext accepted (and the stack buffer `open` decrypts into).
pub const MAX_PLAINTEXT: usize = 512;
/// Shortest datagram that can hold a message: a header, a type byte and a tag.
pub const MIN_LEN: usize = HEADER_LEN + 1 + TAG_LEN;
/// Longest sealed message this version writes (a pong with an IPv6 address).
pub const MAX_SEALED_LEN: usize = HEADER_LEN + PONG_V6_LEN + TAG_LEN;

const KEY_DOMAIN: &[u8] = b"warren disco v1 xchacha20poly1305 key";
const RELAY_TOKEN_DOMAIN: &[u8] = b"warren peer relay v1 token";
const TYPE_PING: u8 = 0x01;
const TYPE_PONG: u8 = 0x02;
const TYPE_PORT_QUERY: u8 = 0x03;
const TYPE_PORT_ANSWER: u8 = 0x04;
const TYPE_BIRTHDAY: u8 = 0x05;
const TYPE_TCP_DIAL: u8 = 0x06;
const TYPE_WAKE: u8 = 0x07;
const TX_ID_LEN: usize = 12;
const PONG_V6_LEN: usize = 1 + TX_ID_LEN + 1 + 16 + 2;

/// Matches a pong to its ping; chosen by the pinger, echoed by the ponger.
pub type TxId = [u8; TX_ID_LEN];

/// A path message, as sealed and opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoMsg {
    /// "Can you hear me on this path?"
    Ping {
        tx_id: TxId,
    },
    /// The answer to a ping, sent back to the ping's source. `observed` is that source as the
    /// ponger saw it, which tells the pinger its reflexive address on this path.
    Pong {
        tx_id: TxId,
        observed: SocketAddr,
    },
    /// "What listens on this port of yours?" (`warren check`), answered by a PortAnswer
    /// with the same `tx_id`.
    PortQuery {
        tx_id: TxId,
        port: u16,
        proto: PortProto,
    },
    PortAnswer {
        tx_id: TxId,
        listening: Listening,
    },
    /// "I start a birthday run toward you now: start yours" (sent through the relay; both
    /// sides' packets must be in flight together for the punch to meet).
    Birthday {
        tx_id: TxId,
    },
    /// "I connect to you over TCP now, from my listen port: connect to me from yours" (sent
    /// through the relay). Both SYNs in flight together are a TCP simultaneous open, which
    /// two NATs that keep ports let through as they let a UDP punch through. Older nodes
    /// drop the unknown type.
    TcpDial {
        tx_id: TxId,
    },
    /// "Send the Wake-on-LAN packet for this MAC on your LAN" (`warren wake MAC --via YOU`):
    /// a sleeping PC cannot hear the overlay, but a member awake on its LAN can wake it. Older
    /// nodes drop the unknown type.
    Wake {
        tx_id: TxId,
        mac: [u8; 6],
    },
}

/// The transport a port check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortProto {
    Tcp,
    Udp,
}

impl PortProto {
    pub fn name(self) -> &'static str {
        match self {
            PortProto::Tcp => "tcp",
            PortProto::Udp => "udp",
        }
    }
}

/// What a host found listening on one of its ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Listening {
    /// Nothing is bound to the port.
    Nothing,
    /// A socket is bound to the port on the wildcard or the overlay address: reachable from
    /// peers as far as the program is concerned.
    Overlay,
    /// Only on other addresses (e.g. 127.0.0.1): peers cannot reach it.
    OtherAddress,
}

/// Why a datagram was not accepted. Every malformed input ends in one of these, never a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DiscoError {
    #[error("not a disco message (no magic)")]
    NotDisco,
    #[error("unsupported disco version {0}")]
    Version(u8),
    #[error("disco message truncated ({0} bytes)")]
    Truncated(usize),
    #[error("disco message too long ({0} bytes)")]
    Oversized(usize),
    #[error("disco sender {0:?} is not a known peer")]
    UnknownPeer(NodeKey),
    #[error("key agreement with {0:?} gives a weak (all-zero) secret")]
    WeakKey(NodeKey),
    /// A changed byte and a message sealed for another receiver look the same to an AEAD.
    #[error("disco message failed authentication (tampered, or sealed for another node)")]
    Auth,
    #[error("unknown disco message type {0:#04x}")]
    UnknownType(u8),
    #[error("malformed disco message body")]
    Malformed,
}

pub use crate::key::public_key;

/// The symmetric key one pair of nodes uses for disco, in both directions.
pub struct DiscoKey {
    cipher: XChaCha20Poly1305,
    relay_token: crate::relay::RelayToken,
    me: NodeKey,
    peer: NodeKey,
}

impl std::fmt::Debug for DiscoKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscoKey")
            .field("me", &self.me)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl DiscoKey {
    /// Derives the key for messages between `my_public` (whose secret is `my_secret`) and
    /// `peer`. Fails for a peer key of small order, whose shared secret would be all zeros.
    pub fn derive(
        my_secret: &[u8; 32],
        my_public: NodeKey,
        peer: NodeKey,
    ) -> Result<Self, DiscoError> {
        let shared = StaticSecret::from(*my_secret).diffie_hellman(&PublicKey::from(peer.0));
        if !shared.was_contributory() {
            return Err(DiscoError::WeakKey(peer));
        }
        let (lo, hi) = if my_public <= peer {
            (my_public, peer)
        } else {
            (peer, my_public)
        };
        let derive = |domain: &[u8]| {
            Blake2s256::new()
                .chain_update(domain)
                .chain_update(shared.as_bytes())
                .chain_update(lo.0)
                .chain_update(hi.0)
                .finalize()
        };
        let key = derive(KEY_DOMAIN);
        let mut relay_token = [0u8; crate::relay::TOKEN_LEN];
        relay_token.copy_from_slice(&derive(RELAY_TOKEN_DOMAIN)[..crate::relay::TOKEN_LEN]);
        Ok(Self {
            cipher: XChaCha20Poly1305::new(&key),
            relay_token,
            me: my_public,
            peer,
        })
    }

    /// The token under which either of the two uses the other as a peer relay: only the two
    /// can make it (it comes from their static keys' shared secret, under its own domain, so
    /// it says nothing of the disco key), and the relay side needs no one to tell it.
    pub fn relay_token(&self) -> crate::relay::RelayToken {
        self.relay_token
    }

    /// The peer this key talks to.
    pub fn peer(&self) -> NodeKey {
        self.peer
    }

    /// Writes `msg`, sealed for the peer, into `out` (cleared first; its capacity is reused, so
    /// a buffer of [`MAX_SEALED_LEN`] bytes never grows). `nonce` must be random: 24 bytes are
    /// enough that random nonces never repeat under one key.
    pub fn seal(&self, msg: &DiscoMsg, nonce: [u8; NONCE_LEN], out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&DISCO_MAGIC);
        out.push(DISCO_VERSION);
        out.extend_from_slice(&self.me.0);
        out.extend_from_slice(&nonce);
        msg.encode(out);
        let (header, body) = out.split_at_mut(HEADER_LEN);
        let tag = self
            .cipher
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), header, body)
            .expect("a disco plaintext is far below the AEAD's length limit");
        out.extend_from_slice(&tag);
    }

    /// Authenticates and decodes a datagram from this key's peer. Allocates nothing.
    pub fn open(&self, datagram: &[u8]) -> Result<DiscoMsg, DiscoError> {
        let sender = sender(datagram)?;
        if sender != self.peer {
            return Err(DiscoError::UnknownPeer(sender));
        }
        let (header, rest) = datagram.split_at(HEADER_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        if ciphertext.len() > MAX_PLAINTEXT {
            return Err(DiscoError::Oversized(datagram.len()));
        }
        let mut buf = [0u8; MAX_PLAINTEXT];
        let plain = &mut buf[..ciphertext.len()];
        plain.copy_from_slice(ciphertext);
        let nonce = XNonce::from_slice(&header[HEADER_LEN - NONCE_LEN..]);
        self.cipher
            .decrypt_in_place_detached(nonce, header, plain, Tag::from_slice(tag))
            .map_err(|_| DiscoError::Auth)?;
        DiscoMsg::decode(plain)
    }
}

/// A nonce that carries the sender's clock `sent_ms`; `unique` must never repeat under one key
/// (a per-run random prefix and a counter).
pub fn nonce_at(sent_ms: u64, unique: [u8; 16]) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[..8].copy_from_slice(&sent_ms.to_be_bytes());
    nonce[8..].copy_from_slice(&unique);
    nonce
}

/// The sender's clock and the nonce of a datagram whose framing [`sender`] accepted; only
/// authenticated once `open` succeeded on it.
pub fn sent_at(datagram: &[u8]) -> Option<(u64, [u8; NONCE_LEN])> {
    let nonce: [u8; NONCE_LEN] = datagram
        .get(HEADER_LEN - NONCE_LEN..HEADER_LEN)?
        .try_into()
        .ok()?;
    let sent = u64::from_be_bytes(nonce[..8].try_into().ok()?);
    Some((sent, nonce))
}

/// Checks the framing (magic, version, length) and returns the sender named in the header, so
/// the caller can pick a cached [`DiscoKey`]. The sender is not authenticated until `open`.
pub fn sender(datagram: &[u8]) -> Result<NodeKey, DiscoError> {
    if !datagram.starts_with(&DISCO_MAGIC) {
        return Err(DiscoError::NotDisco);
    }
    let Some(&version) = datagram.get(DISCO_MAGIC.len()) else {
        return Err(DiscoError::Truncated(datagram.len()));
    };
    if version != DISCO_VERSION {
        return Err(DiscoError::Version(version));
    }
    if datagram.len() < MIN_LEN {
        return Err(DiscoError::Truncated(datagram.len()));
    }
    let start = DISCO_MAGIC.len() + 1;
    let mut key = [0u8; 32];
    key.copy_from_slice(&datagram[start..start + 32]);
    Ok(NodeKey(key))
}

/// Seals `msg` from `my_public` (whose secret is `my_secret`) to `peer` into `out`.
pub fn seal(
    msg: &DiscoMsg,
    my_secret: &[u8; 32],
    my_public: NodeKey,
    peer: &NodeKey,
    nonce: [u8; NONCE_LEN],
    out: &mut Vec<u8>,
) -> Result<(), DiscoError> {
    DiscoKey::derive(my_secret, my_public, *peer)?.seal(msg, nonce, out);
    Ok(())
}

/// Opens a datagram sealed for the holder of `my_secret` by a sender for which `known_peer`
/// returns true; returns the (now authenticated) sender and the message.
pub fn open(
    datagram: &[u8],
    my_secret: &[u8; 32],
    known_peer: impl Fn(&NodeKey) -> bool,
) -> Result<(NodeKey, DiscoMsg), DiscoError> {
    let from = sender(datagram)?;
    if !known_peer(&from) {
        return Err(DiscoError::UnknownPeer(from));
    }
    let key = DiscoKey::derive(my_secret, public_key(my_secret), from)?;
    Ok((from, key.open(datagram)?))
}

impl DiscoMsg {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            DiscoMsg::Ping { tx_id } => {
                out.push(TYPE_PING);
                out.extend_from_slice(tx_id);
            }
            DiscoMsg::Pong { tx_id, observed } => {
                out.push(TYPE_PONG);
                out.extend_from_slice(tx_id);
                match observed.ip() {
                    IpAddr::V4(ip) => {
                        out.push(4);
                        out.extend_from_slice(&ip.octets());
                    }
                    IpAddr::V6(ip) => {
                        out.push(6);
                        out.extend_from_slice(&ip.octets());
                    }
                }
                out.extend_from_slice(&observed.port().to_be_bytes());
            }
            DiscoMsg::PortQuery { tx_id, port, proto } => {
                out.push(TYPE_PORT_QUERY);
                out.extend_from_slice(tx_id);
                out.extend_from_slice(&port.to_be_bytes());
                out.push(match proto {
                    PortProto::Tcp => 6,
                    PortProto::Udp => 17,
                });
            }
            DiscoMsg::PortAnswer { tx_id, listening } => {
                out.push(TYPE_PORT_ANSWER);
                out.extend_from_slice(tx_id);
                out.push(match listening {
                    Listening::Nothing => 0,
                    Listening::Overlay => 1,
                    Listening::OtherAddress => 2,
                });
            }
            DiscoMsg::Birthday { tx_id } => {
                out.push(TYPE_BIRTHDAY);
                out.extend_from_slice(tx_id);
            }
            DiscoMsg::TcpDial { tx_id } => {
                out.push(TYPE_TCP_DIAL);
                out.extend_from_slice(tx_id);
            }
            DiscoMsg::Wake { tx_id, mac } => {
                out.push(TYPE_WAKE);
                out.extend_from_slice(tx_id);
                out.extend_from_slice(mac);
            }
        }
    }

    fn decode(plain: &[u8]) -> Result<Self, DiscoError> {
        let (&kind, body) = plain.split_first().ok_or(DiscoError::Malformed)?;
        let tx_id: TxId = body
            .get(..TX_ID_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(DiscoError::Malformed)?;
        let body = &body[TX_ID_LEN..];
        match kind {
            TYPE_PING => Ok(DiscoMsg::Ping { tx_id }),
            TYPE_PONG => {
                let (&family, body) = body.split_first().ok_or(DiscoError::Malformed)?;
                let (ip, body): (IpAddr, &[u8]) = match family {
                    4 => {
                        let b: [u8; 4] = take(body)?;
                        (Ipv4Addr::from(b).into(), &body[4..])
                    }
                    6 => {
                        let b: [u8; 16] = take(body)?;
                        (Ipv6Addr::from(b).into(), &body[16..])
                    }
                    _ => return Err(DiscoError::Malformed),
                };
                let port = u16::from_be_bytes(take(body)?);
                Ok(DiscoMsg::Pong {
                    tx_id,
                    observed: SocketAddr::new(ip, port),
                })
            }
            TYPE_PORT_QUERY => {
                let port = u16::from_be_bytes(take(body)?);
                let proto = match body.get(2) {
                    Some(6) => PortProto::Tcp,
                    Some(17) => PortProto::Udp,
                    _ => return Err(DiscoError::Malformed),
                };
                Ok(DiscoMsg::PortQuery { tx_id, port, proto })
            }
            TYPE_PORT_ANSWER => {
                let listening = match body.first() {
                    Some(0) => Listening::Nothing,
                    Some(1) => Listening::Overlay,
                    Some(2) => Listening::OtherAddress,
                    _ => return Err(DiscoError::Malformed),
                };
                Ok(DiscoMsg::PortAnswer { tx_id, listening })
            }
            TYPE_BIRTHDAY => Ok(DiscoMsg::Birthday { tx_id }),
            TYPE_TCP_DIAL => Ok(DiscoMsg::TcpDial { tx_id }),
            TYPE_WAKE => Ok(DiscoMsg::Wake {
                tx_id,
                mac: take(body)?,
            }),
            other => Err(DiscoError::UnknownType(other)),
        }
    }
}

fn take<const N: usize>(b: &[u8]) -> Result<[u8; N], DiscoError> {
    b.get(..N)
        .and_then(|b| b.try_into().ok())
        .ok_or(DiscoError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datagram::{classify, DatagramKind};

    const A: [u8; 32] = [1; 32];
    const B: [u8; 32] = [2; 32];
    const C: [u8; 32] = [3; 32];

    fn ping() -> DiscoMsg {
        DiscoMsg::Ping { tx_id: [7; 12] }
    }

    fn sealed(msg: &DiscoMsg, from: &[u8; 32], to: &[u8; 32]) -> Vec<u8> {
        let mut out = Vec::new();
        seal(
            msg,
            from,
            public_key(from),
            &public_key(to),
            [9; 24],
            &mut out,
        )
        .unwrap();
        out
    }

    /// Splitmix64: deterministic bytes for the fuzz tests.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.next() as u8).collect()
        }
    }

    #[test]
    fn the_senders_clock_is_read_back_and_authenticated() {
        let nonce = nonce_at(1_765_000_000_123, [5; 16]);
        let mut out = Vec::new();
        seal(
            &ping(),
            &A,
            public_key(&A),
            &public_key(&B),
            nonce,
            &mut out,
        )
        .unwrap();
        assert_eq!(sent_at(&out), Some((1_765_000_000_123, nonce)));
        // Moving the clock back (to replay as if new) breaks the tag.
        out[DISCO_MAGIC.len() + 1 + 32 + 7] ^= 1;
        let err = open(&out, &B, |_| true).unwrap_err();
        assert_eq!(err, DiscoError::Auth);
        assert_eq!(sent_at(&out[..10]), None);
    }

    #[test]
    fn round_trip_every_message() {
        let msgs = [
            ping(),
            DiscoMsg::Ping { tx_id: [0; 12] },
            DiscoMsg::Pong {
                tx_id: [0xFF; 12],
                observed: "203.0.113.7:41641".parse().unwrap(),
            },
            DiscoMsg::Pong {
                tx_id: [1; 12],
                observed: "[2001:db8::1]:65535".parse().unwrap(),
            },
            DiscoMsg::Pong {
                tx_id: [2; 12],
                observed: "0.0.0.0:0".parse().unwrap(),
            },
            DiscoMsg::PortQuery {
                tx_id: [3; 12],
                port: 3389,
                proto: PortProto::Tcp,
            },
            DiscoMsg::PortQuery {
                tx_id: [4; 12],
                port: 65535,
                proto: PortProto::Udp,
            },
            DiscoMsg::PortAnswer {
                tx_id: [5; 12],
                listening: Listening::OtherAddress,
            },
            DiscoMsg::PortAnswer {
                tx_id: [6; 12],
                listening: Listening::Nothing,
            },
            DiscoMsg::Birthday { tx_id: [7; 12] },
            DiscoMsg::TcpDial { tx_id: [8; 12] },
            DiscoMsg::Wake {
                tx_id: [9; 12],
                mac: [0x52, 0x54, 0, 0xab, 0xcd, 0xef],
            },
        ];
        let known_a = |k: &NodeKey| *k == public_key(&A);
        for msg in msgs {
            let d = sealed(&msg, &A, &B);
            assert!(d.len() <= MAX_SEALED_LEN);
            assert_eq!(classify(&d), DatagramKind::Disco);
            assert_eq!(sender(&d), Ok(public_key(&A)));
            assert_eq!(open(&d, &B, known_a), Ok((public_key(&A), msg)));
        }
    }

    #[test]
    fn both_ends_make_the_same_relay_token_and_no_third_key_does() {
        let (a, b, c) = ([7u8; 32], [9u8; 32], [11u8; 32]);
        let (pa, pb, pc) = (public_key(&a), public_key(&b), public_key(&c));
        let ab = DiscoKey::derive(&a, pa, pb).unwrap().relay_token();
        assert_eq!(ab, DiscoKey::derive(&b, pb, pa).unwrap().relay_token());
        assert_ne!(ab, DiscoKey::derive(&c, pc, pb).unwrap().relay_token());
        assert_ne!(ab, DiscoKey::derive(&a, pa, pc).unwrap().relay_token());
    }

    #[test]
    fn public_key_is_x25519() {
        // RFC 7748 §6.1 (Alice).
        let secret = hex32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let public = hex32("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        assert_eq!(public_key(&secret), NodeKey(public));
    }

    fn hex32(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    #[test]
    fn layout_is_fixed() {
        let d = sealed(&ping(), &A, &B);
        assert_eq!(d.len(), HEADER_LEN + 13 + TAG_LEN);
        assert_eq!(&d[..4], b"WRNd");
        assert_eq!(d[4], DISCO_VERSION);
        assert_eq!(&d[5..37], &public_key(&A).0);
        assert_eq!(&d[37..61], &[9; 24]);
        let pong4 = DiscoMsg::Pong {
            tx_id: [0; 12],
            observed: "1.2.3.4:5".parse().unwrap(),
        };
        assert_eq!(sealed(&pong4, &A, &B).len(), HEADER_LEN + 20 + TAG_LEN);
        let pong6 = DiscoMsg::Pong {
            tx_id: [0; 12],
            observed: "[::1]:5".parse().unwrap(),
        };
        assert_eq!(sealed(&pong6, &A, &B).len(), MAX_SEALED_LEN);
    }

    #[test]
    fn both_directions_share_one_key_and_cached_keys_match() {
        let (pa, pb) = (public_key(&A), public_key(&B));
        let ab = DiscoKey::derive(&A, pa, pb).unwrap();
        let ba = DiscoKey::derive(&B, pb, pa).unwrap();
        let mut out = Vec::with_capacity(MAX_SEALED_LEN);
        let cap = out.capacity();
        ab.seal(&ping(), [1; 24], &mut out);
        assert_eq!(ba.open(&out), Ok(ping()));
        ba.seal(&ping(), [2; 24], &mut out);
        assert_eq!(ab.open(&out), Ok(ping()));
        assert_eq!(out.capacity(), cap, "sealing reuses the buffer");
        // The free functions agree with the cached key.
        assert_eq!(open(&out, &A, |_| true), Ok((pb, ping())));
    }

    #[test]
    fn each_failure_has_its_own_error() {
        let good = sealed(&ping(), &A, &B);
        let known = |k: &NodeKey| *k == public_key(&A);

        // From a key the receiver does not know.
        let from_c = sealed(&ping(), &C, &B);
        assert_eq!(
            open(&from_c, &B, known),
            Err(DiscoError::UnknownPeer(public_key(&C)))
        );
        // Sealed for someone else (C knows A, but the message is for B).
        assert_eq!(open(&good, &C, known), Err(DiscoError::Auth));
        // Truncated anywhere.
        for len in 0..good.len() {
            let e = open(&good[..len], &B, known).unwrap_err();
            let want = match len {
                0..=3 => DiscoError::NotDisco,
                _ if len < MIN_LEN => DiscoError::Truncated(len),
                _ => DiscoError::Auth, // the tag moved: authentication fails
            };
            assert_eq!(e, want, "length {len}");
        }
        // Wrong version.
        let mut v2 = good.clone();
        v2[4] = 2;
        assert_eq!(open(&v2, &B, known), Err(DiscoError::Version(2)));
        // Not disco at all.
        let mut wg = good.clone();
        wg[..4].copy_from_slice(&[4, 0, 0, 0]);
        assert_eq!(open(&wg, &B, known), Err(DiscoError::NotDisco));
        // Too long to be a message of ours.
        let mut long = good.clone();
        long.resize(HEADER_LEN + MAX_PLAINTEXT + TAG_LEN + 1, 0);
        assert_eq!(
            open(&long, &B, known),
            Err(DiscoError::Oversized(long.len()))
        );
    }

    #[test]
    fn every_tampered_byte_is_refused() {
        let good = sealed(&ping(), &A, &B);
        let known = |k: &NodeKey| *k == public_key(&A) || *k == public_key(&C);
        for i in 0..good.len() {
            let mut d = good.clone();
            d[i] ^= 0x01;
            let e = open(&d, &B, known).unwrap_err();
            let want = match i {
                0..=3 => DiscoError::NotDisco,
                4 => DiscoError::Version(good[4] ^ 1),
                5..=36 => DiscoError::UnknownPeer(NodeKey(d[5..37].try_into().unwrap())),
                _ => DiscoError::Auth,
            };
            assert_eq!(e, want, "byte {i}");
        }
        // A relabelled sender that the receiver does know still fails: the header is
        // authenticated.
        let mut d = good.clone();
        d[5..37].copy_from_slice(&public_key(&C).0);
        assert_eq!(open(&d, &B, known), Err(DiscoError::Auth));
    }

    #[test]
    fn reflected_message_is_refused() {
        // An attacker bounces A's ping to B back to A, relabelled as coming from B: A would
        // derive the A–B key, but the header (associated data) changed.
        let (pa, pb) = (public_key(&A), public_key(&B));
        let mut d = sealed(&ping(), &A, &B);
        assert_eq!(open(&d, &A, |_| true), Err(DiscoError::Auth));
        d[5..37].copy_from_slice(&pb.0);
        assert_eq!(open(&d, &A, |k| *k == pb), Err(DiscoError::Auth));
        // A cached key refuses a header naming any sender but its peer.
        let ab = DiscoKey::derive(&A, pa, pb).unwrap();
        let d = sealed(&ping(), &A, &B);
        assert_eq!(ab.open(&d), Err(DiscoError::UnknownPeer(pa)));
    }

    #[test]
    fn weak_peer_key_is_refused() {
        let zero = NodeKey([0; 32]);
        let mut out = Vec::new();
        assert_eq!(
            seal(&ping(), &A, public_key(&A), &zero, [0; 24], &mut out),
            Err(DiscoError::WeakKey(zero))
        );
        let mut d = sealed(&ping(), &A, &B);
        d[5..37].fill(0);
        assert_eq!(open(&d, &B, |_| true), Err(DiscoError::WeakKey(zero)));
    }

    #[test]
    fn malformed_plaintext_from_a_real_peer() {
        // Seal raw plaintexts with the real key, as a buggy or newer peer might.
        let (pa, pb) = (public_key(&A), public_key(&B));
        let key = DiscoKey::derive(&A, pa, pb).unwrap();
        let raw = |plain: &[u8]| {
            let mut out = Vec::new();
            key.seal(&ping(), [3; 24], &mut out);
            out.truncate(HEADER_LEN);
            let mut body = plain.to_vec();
            let (h, _) = out.split_at_mut(HEADER_LEN);
            let tag = key
                .cipher
                .encrypt_in_place_detached(XNonce::from_slice(&[3; 24]), h, &mut body)
                .unwrap();
            out.extend_from_slice(&body);
            out.extend_from_slice(&tag);
            out
        };
        let open_b = |d: &[u8]| open(d, &B, |_| true).map(|(_, m)| m);
        assert_eq!(
            open_b(&raw(&[])),
            Err(DiscoError::Truncated(HEADER_LEN + TAG_LEN))
        );
        assert_eq!(open_b(&raw(&[TYPE_PING; 12])), Err(DiscoError::Malformed));
        assert_eq!(open_b(&raw(&[9; 13])), Err(DiscoError::UnknownType(9)));
        // A wake without its whole MAC.
        let mut wake = vec![TYPE_WAKE];
        wake.extend_from_slice(&[1; 12 + 5]);
        assert_eq!(open_b(&raw(&wake)), Err(DiscoError::Malformed));
        let mut pong = vec![TYPE_PONG];
        pong.extend_from_slice(&[0; 12]);
        assert_eq!(open_b(&raw(&pong)), Err(DiscoError::Malformed));
        pong.push(5); // no such family
        pong.extend_from_slice(&[0; 6]);
        assert_eq!(open_b(&raw(&pong)), Err(DiscoError::Malformed));
        pong[13] = 4;
        assert_eq!(
            open_b(&raw(&pong)),
            Ok(DiscoMsg::Pong {
                tx_id: [0; 12],
                observed: "0.0.0.0:0".parse().unwrap()
            })
        );
        pong[13] = 6; // an IPv6 address needs 18 bytes, only 6 follow
        assert_eq!(open_b(&raw(&pong)), Err(DiscoError::Malformed));
        // Trailing bytes (future padding) are accepted.
        let mut padded = vec![TYPE_PING];
        padded.extend_from_slice(&[5; 12]);
        padded.extend_from_slice(&[0; 300]);
        assert_eq!(open_b(&raw(&padded)), Ok(DiscoMsg::Ping { tx_id: [5; 12] }));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng(0x5EED);
        let good = sealed(&ping(), &A, &B);
        for i in 0..4000 {
            let len = (rng.next() % 160) as usize;
            let mut d = rng.bytes(len);
            // Half of the inputs get a valid header prefix, so the deeper checks run too.
            if i % 2 == 0 {
                let keep = (rng.next() as usize % (HEADER_LEN + 1)).min(d.len());
                d[..keep].copy_from_slice(&good[..keep]);
            }
            // Anything may come out, except a panic or a forged acceptance.
            let r = open(&d, &B, |_| true);
            assert!(r.is_err(), "random input accepted: {d:?}");
            let _ = sender(&d);
        }
        // Bit flips of a valid message: refused, never a panic.
        for _ in 0..2000 {
            let mut d = good.clone();
            let flips = 1 + rng.next() % 4;
            for _ in 0..flips {
                let i = rng.next() as usize % d.len();
                d[i] ^= 1 << (rng.next() % 8);
            }
            if d != good {
                assert!(open(&d, &B, |_| true).is_err());
            }
        }
    }
}
