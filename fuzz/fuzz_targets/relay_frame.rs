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
            let mut out = [0u8; relay::PING_LEN];
            let n = relay::write_ping(&mut out, &token, tx);
            assert_eq!(out[..n], data[..n]);
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
