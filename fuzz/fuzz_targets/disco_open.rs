//! Disco `open`. Modes, by the first byte:
//! - even: the bytes as a datagram from the wire (framing, authentication), opened with the
//!   key the daemon caches per peer; one in four of these also through [`disco::open`], which
//!   derives the key from the sender named in the datagram (an x25519 operation per call, so
//!   the fuzzer would crawl if every input took that path);
//! - odd: the bytes (after a 24-byte nonce) as a plaintext, sealed here the way a peer seals
//!   it, so the fuzzer reaches the message decoder behind the AEAD. A message sealed with the
//!   right key must never fail authentication, and what opens must seal and open again equal.
#![no_main]

use blake2::{Blake2s256, Digest};
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use warren_proto::datagram::DISCO_MAGIC;
use warren_proto::disco::{self, DiscoError, DiscoKey, DISCO_VERSION, MAX_PLAINTEXT, NONCE_LEN};
use warren_proto::key::NodeKey;

const ME: [u8; 32] = [1; 32];
const PEER: [u8; 32] = [2; 32];
/// As in proto/src/disco.rs (private there): the key both ends derive.
const KEY_DOMAIN: &[u8] = b"warren disco v1 xchacha20poly1305 key";

struct Keys {
    peer: NodeKey,
    /// The receiver's cached key, as the daemon keeps one per peer.
    cached: DiscoKey,
    /// The sender's cipher, derived independently of proto's code.
    cipher: XChaCha20Poly1305,
    /// The sender's key as proto derives it.
    sender: DiscoKey,
}

fn keys() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| {
        let me = disco::public_key(&ME);
        let peer = disco::public_key(&PEER);
        let shared = x25519_dalek::StaticSecret::from(PEER)
            .diffie_hellman(&x25519_dalek::PublicKey::from(me.0));
        let (lo, hi) = if me <= peer { (me, peer) } else { (peer, me) };
        let key = Blake2s256::new()
            .chain_update(KEY_DOMAIN)
            .chain_update(shared.as_bytes())
            .chain_update(lo.0)
            .chain_update(hi.0)
            .finalize();
        Keys {
            peer,
            cached: DiscoKey::derive(&ME, me, peer).expect("a strong key"),
            cipher: XChaCha20Poly1305::new(&key),
            sender: DiscoKey::derive(&PEER, peer, me).expect("a strong key"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let k = keys();
    if mode & 1 == 0 {
        let cached = k.cached.open(rest);
        if mode & 6 == 0 {
            let opened = disco::open(rest, &ME, |_| true);
            if let Ok((from, msg)) = opened {
                assert_eq!(from, k.peer, "only the peer's key can seal for us");
                assert_eq!(cached, Ok(msg));
            }
        }
        return;
    }
    if rest.len() < NONCE_LEN {
        return;
    }
    let (nonce, plain) = rest.split_at(NONCE_LEN);
    let mut d = Vec::with_capacity(61 + plain.len() + 16);
    d.extend_from_slice(&DISCO_MAGIC);
    d.push(DISCO_VERSION);
    d.extend_from_slice(&k.peer.0);
    d.extend_from_slice(nonce);
    d.extend_from_slice(plain);
    let (header, body) = d.split_at_mut(61);
    let tag = k
        .cipher
        .encrypt_in_place_detached(XNonce::from_slice(nonce), header, body)
        .expect("small plaintext");
    d.extend_from_slice(&tag);
    match k.cached.open(&d) {
        Ok(msg) => {
            // What we read, a peer can write: sealing it again gives the same message.
            let mut again = Vec::new();
            k.sender.seal(&msg, nonce.try_into().unwrap(), &mut again);
            assert_eq!(k.cached.open(&again), Ok(msg));
        }
        Err(DiscoError::Oversized(_)) => assert!(plain.len() > MAX_PLAINTEXT),
        // No room for a type byte.
        Err(DiscoError::Truncated(_)) => assert!(plain.is_empty()),
        Err(DiscoError::Malformed | DiscoError::UnknownType(_)) => {}
        Err(e) => panic!("a well-sealed message refused: {e:?}"),
    }
});
