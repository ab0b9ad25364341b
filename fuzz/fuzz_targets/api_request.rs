//! The local API: one JSON request per line from any local user allowed to connect (the
//! daemon parses it before it checks what that user may do). A request that parses must
//! serialize and parse back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warren_proto::api::RequestEnvelope;

fuzz_target!(|data: &[u8]| {
    // The daemon reads lines as UTF-8 text (`BufRead::lines`).
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(req) = serde_json::from_str::<RequestEnvelope>(line) else {
        return;
    };
    let again = serde_json::to_string(&req).expect("serializes");
    assert_eq!(
        serde_json::from_str::<RequestEnvelope>(&again).expect("reparses"),
        req
    );
});
