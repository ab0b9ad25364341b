//! The coordinator's STUN server: Binding Requests from anyone. Its pure part lives in the
//! coordinator core (`stun_answer.rs`) and is included here as a module. Every answer must
//! parse, name the sender, and stay within the 1.6x amplification bound.
#![no_main]

#[allow(dead_code)]
#[path = "../../coordinator/core/src/stun_answer.rs"]
mod stun;

use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;
use stun_types::attribute::XorMappedAddress;
use stun_types::message::{Message, MessageClass, BINDING};

fuzz_target!(|data: &[u8]| {
    let Some((&which, request)) = data.split_first() else {
        return;
    };
    let from: SocketAddr = match which % 3 {
        0 => "192.0.2.1:32853".parse().unwrap(),
        1 => "[2001:db8::1]:9".parse().unwrap(),
        _ => "[::ffff:192.0.2.1]:32853".parse().unwrap(),
    };
    let mut out = [0u8; stun::MAX_RESPONSE];
    let Some(n) = stun::answer(request, from, &mut out) else {
        return;
    };
    assert!(
        n * 5 <= request.len() * 8,
        "{n} bytes for {}",
        request.len()
    );
    let msg = Message::from_bytes(&out[..n]).expect("our answer parses");
    assert!(msg.has_class(MessageClass::Success) && msg.has_method(BINDING));
    let mapped = msg
        .attribute::<XorMappedAddress>()
        .expect("XOR-MAPPED-ADDRESS")
        .addr(msg.transaction_id());
    let canonical = SocketAddr::new(from.ip().to_canonical(), from.port());
    assert_eq!(mapped, canonical);
});
