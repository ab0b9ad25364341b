//! Deterministic keys for tests.

use std::collections::HashMap;

use warren_proto::key::NodeKey;
use warren_proto::overlay::derive_v4;

pub fn key(i: u32) -> NodeKey {
    let mut k = [0u8; 32];
    k[..4].copy_from_slice(&i.to_be_bytes());
    NodeKey(k)
}

/// Two keys whose preferred addresses in 100.64.0.0/10 collide: a birthday search over
/// `key(1000..)`, about 2,500 hashes.
pub fn colliding_pair() -> (NodeKey, NodeKey) {
    let mut seen = HashMap::new();
    for i in 1000.. {
        let k = key(i);
        if let Some(first) = seen.insert(derive_v4(&k), k) {
            return (first, k);
        }
    }
    unreachable!()
}
