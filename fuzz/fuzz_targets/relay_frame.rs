//! Relay frames (UDP datagrams and TCP-stream relay frames carry the same bytes) and the relay
//! token as the control channel carries it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warren_proto::key::NodeKey;
use warren_proto::relay::{self, RelayFrame};

fuzz_target!(|data: &[u8]| {
    match relay::parse(data) {
        Ok(RelayFrame::Send { to, payload }) => {
            // What parses, writes back the same.
            let mut out = vec![0u8; relay::SEND_HEADER_LEN];
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&to);
            relay::write_send_header(&mut out, &NodeKey(key));
            out.extend_from_slice(payload);
            assert_eq!(out, data);
        }
        Ok(RelayFrame::Ping { token, tx }) => {
            // The token itself never travels: the frame names its id.
            assert!(data.len() >= relay::PING_LEN);
            assert_eq!(token[..], data[6..6 + relay::TOKEN_ID_LEN]);
            assert_eq!(
                tx[..],
                data[6 + relay::TOKEN_ID_LEN..14 + relay::TOKEN_ID_LEN]
            );
        }
        Ok(RelayFrame::Challenge { tx, cookie }) => {
            let mut out = [0u8; relay::CHALLENGE_LEN];
            let n = relay::write_challenge(&mut out, tx, &cookie);
            assert_eq!(out[..n], data[..n]);
        }
        Ok(RelayFrame::Register {
            token,
            tx,
            cookie,
            proof,
        }) => {
            // A proof is a MAC: one made for another token or cookie never holds.
            assert_eq!(token[..], data[6..6 + relay::TOKEN_ID_LEN]);
            let made = relay::proof(&[0; relay::TOKEN_LEN], tx, &cookie);
            assert_eq!(
                relay::proof_holds(&[0; relay::TOKEN_LEN], tx, &cookie, &proof),
                made == proof
            );
        }
        Ok(RelayFrame::Pong { tx }) => {
            let mut out = [0u8; relay::PONG_LEN];
            let n = relay::write_pong(&mut out, tx);
            assert_eq!(out[..n], data[..n]);
        }
        Ok(RelayFrame::Deliver { payload }) => assert!(!payload.is_empty()),
        Ok(RelayFrame::TicketPing { ticket, .. }) => assert!(!ticket.is_empty()),
        Err(_) => {}
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = relay::parse_token(text);
    }
});
