//! Invite codes, as a person pastes them. First byte: even = the rest as text; odd = the rest
//! as the code's binary body (base64url-encoded here behind the prefix), so the fuzzer works
//! on the layout rather than on base64. A decoded invite encodes and decodes back the same.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use warren_proto::invite::{self, Invite};

fn check(code: &str) {
    let looks = Invite::looks_like(code);
    let Ok(inv) = Invite::decode(code) else {
        return;
    };
    assert!(looks, "decoded without the prefix: {code:?}");
    assert!(!inv.coordinator.is_empty() && !inv.network.is_empty());
    assert!(inv.alternates.len() <= invite::MAX_ALTERNATES);
    let again = inv.encode().expect("a decoded invite fits one");
    assert_eq!(Invite::decode(&again), Ok(inv.clone()));
    assert_eq!(invite::parse_secret(&inv.secret_text()), Some(inv.secret));
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        if let Ok(text) = std::str::from_utf8(rest) {
            check(text);
            let _ = invite::parse_secret(text);
        }
    } else {
        check(&format!(
            "{}{}",
            invite::PREFIX,
            URL_SAFE_NO_PAD.encode(rest)
        ));
    }
});
