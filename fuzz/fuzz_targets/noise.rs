//! The Noise IK handshake messages: the coordinator reading a node's first message (anyone can
//! send one), and the daemon reading the coordinator's reply. First byte: even = server side,
//! odd = client side. Neither may accept bytes that were not made with the right keys.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warren_proto::control::auth::{public_key, ClientHandshake, ServerHandshake};

const NODE: [u8; 32] = [1; 32];
const COORD: [u8; 32] = [2; 32];
const BINDING: [u8; 32] = [9; 32];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, msg)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        if let Ok(s) = ServerHandshake::accept(&COORD, &BINDING, msg) {
            // The seeds hold a genuine message from NODE. Bytes made without a node's secret
            // never carry a valid AEAD tag: any other sender would mean a check was skipped.
            assert_eq!(s.node, public_key(&NODE), "accepted a forged first message");
        }
    } else {
        let (c, _) = ClientHandshake::start(&NODE, &public_key(&COORD), &BINDING, b"hello")
            .expect("handshake starts");
        assert!(c.finish(msg).is_err(), "accepted a forged reply");
    }
});
