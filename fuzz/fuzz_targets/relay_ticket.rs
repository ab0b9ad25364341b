//! Relay tickets, as a standalone relay reads them from a TicketPing (and the daemon from the
//! control channel, base64url). First byte: even = the bytes as they come; odd = the bytes
//! with a valid MAC appended, so the fuzzer gets behind the seal to the field parsing.
#![no_main]

use blake2::digest::consts::U16;
use blake2::digest::Mac;
use blake2::Blake2sMac;
use libfuzzer_sys::fuzz_target;
use warren_proto::relay_ticket::{self, Ticket, TicketError};

const SECRET: [u8; 32] = [7; 32];
const NOW: u64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let _ = Ticket::open(rest, &SECRET, NOW);
        if let Ok(text) = std::str::from_utf8(rest) {
            if let Some(bytes) = relay_ticket::decode(text) {
                assert!(bytes.len() <= relay_ticket::MAX_TICKET_LEN);
                let _ = Ticket::open(&bytes, &SECRET, NOW);
            }
        }
        return;
    }
    let mut sealed = rest.to_vec();
    let mut m = <Blake2sMac<U16> as Mac>::new_from_slice(&SECRET).expect("32-byte key");
    m.update(rest);
    sealed.extend_from_slice(&m.finalize().into_bytes());
    match Ticket::open(&sealed, &SECRET, NOW) {
        Ok(t) => {
            assert!(t.expires > NOW);
            // A ticket that opens seals to the same bytes.
            assert_eq!(t.seal(&SECRET), sealed);
            assert_eq!(
                Ticket::open(&sealed, &[8; 32], NOW),
                Err(TicketError::BadMac)
            );
            let text = relay_ticket::encode(&sealed);
            assert_eq!(relay_ticket::decode(&text), Some(sealed));
        }
        Err(TicketError::BadMac) => panic!("a ticket sealed with the secret failed its MAC"),
        Err(_) => {}
    }
});
