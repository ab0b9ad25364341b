//! Datagram classification: every datagram on the daemon's socket goes through `classify`
//! first. The three families must stay disjoint, and each kind must parse as its family
//! claims (disco framing, relay framing) without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warren_proto::datagram::{classify, DatagramKind, DISCO_MAGIC, RELAY_MAGIC, STUN_MAGIC_COOKIE};
use warren_proto::{disco, relay};

fuzz_target!(|data: &[u8]| {
    match classify(data) {
        DatagramKind::WireGuard(_) => {
            assert!(data.len() >= 4 && (1..=4).contains(&data[0]) && data[1..4] == [0, 0, 0]);
        }
        DatagramKind::Stun => {
            assert!(data.len() >= 20 && data[0] & 0xC0 == 0);
            assert_eq!(data[4..8], STUN_MAGIC_COOKIE.to_be_bytes());
        }
        DatagramKind::Disco => {
            assert!(data.starts_with(&DISCO_MAGIC));
            // Only the framing: the sender is checked before any key is derived.
            let _ = disco::sender(data);
        }
        DatagramKind::Relay => {
            assert!(data.starts_with(&RELAY_MAGIC));
            if data.len() >= relay::DELIVER_HEADER_LEN {
                assert_ne!(relay::parse(data), Err(relay::RelayError::NotRelay));
            }
        }
        DatagramKind::Unknown => {
            assert!(disco::sender(data).is_err());
            assert!(relay::parse(data).is_err());
        }
    }
});
