//! The control channel: length-prefixed frames over QUIC (cut into arbitrary pieces, as a
//! stream delivers them), the TCP stream's kind+length headers, and the JSON messages the
//! frames carry, read both ways (coordinator: Hello, ClientMsg; daemon: Welcome, ServerMsg).
//! Whatever parses must serialize and parse back to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::{de::DeserializeOwned, Serialize};
use std::fmt::Debug;
use warren_proto::control::frame::{FrameDecoder, MAX_FRAME};
use warren_proto::control::msg::{ClientMsg, Hello, ServerMsg, Welcome};
use warren_proto::control::stream;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(bytes: &[u8]) {
    if let Ok(m) = serde_json::from_slice::<T>(bytes) {
        let again = serde_json::to_vec(&m).expect("serializes");
        assert_eq!(serde_json::from_slice::<T>(&again).expect("reparses"), m);
    }
}

fn message(payload: &[u8]) {
    round_trip::<ClientMsg>(payload);
    round_trip::<ServerMsg>(payload);
    round_trip::<Hello>(payload);
    round_trip::<Welcome>(payload);
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    // The whole input as one message, so the JSON decoders see inputs the framing would cut.
    message(rest);
    if let Some(h) = rest.get(..stream::HEADER_LEN) {
        if let Ok((kind, len)) = stream::parse_header(h.try_into().unwrap()) {
            assert!(len <= kind.max_len());
            assert_eq!(stream::header(kind, len).unwrap(), h);
        }
    }
    let mut d = FrameDecoder::new();
    let mut frames = 0;
    for piece in rest.chunks(usize::from(step).max(1)) {
        d.push(piece);
        loop {
            match d.next_frame() {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= MAX_FRAME);
                    frames += 1;
                    message(&frame);
                }
                Ok(None) => break,
                // A hostile length: the connection is dropped.
                Err(_) => return,
            }
        }
    }
    assert!(frames * 4 <= rest.len());
});
