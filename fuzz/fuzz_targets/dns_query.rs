//! DNS queries to the daemon's `*.warren` server, from any peer (or anything that reaches the
//! overlay address). The answer code lives in the daemon's binary crate, so its file is
//! included here as a module. The first byte picks who asks: this host, a peer in one of its
//! networks, or a stranger. Every reply must parse and carry the query's id.
#![no_main]

#[allow(dead_code)]
#[path = "../../daemon/src/dns/answer.rs"]
mod answer;

use answer::NameTable;
use hickory_proto::op::{Message, MessageType};
use hickory_proto::serialize::binary::BinDecodable;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use warren_proto::api::Status;

/// This host (alice) and three peers in two networks, two of them named bob.
const STATUS: &str = r#"{
  "state": "up",
  "self": {"name": "Alice", "overlay_ip": "100.64.0.1", "overlay_ip6": "fd57:6172:7265:6e00::1",
           "public_key": "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=", "listen_port": 1,
           "tun": "warren0", "mtu": 1420},
  "peers": [
    {"name": "bob", "public_key": "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=",
     "overlay_ip": "100.64.0.2", "allowed_ips": ["100.64.0.2/32", "fd57:6172:7265:6e00::2/128"],
     "online": true, "path": "direct", "endpoint": null, "rtt_ms": null,
     "last_handshake_secs": null, "rx_bytes": 0, "tx_bytes": 0, "networks": ["home"]},
    {"name": "bob", "public_key": "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=",
     "overlay_ip": "100.64.0.3", "allowed_ips": ["10.0.0.0/8"],
     "online": true, "path": "relay", "endpoint": null, "rtt_ms": null,
     "last_handshake_secs": null, "rx_bytes": 0, "tx_bytes": 0, "networks": ["work"]},
    {"name": "Carol", "public_key": "BAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQ=",
     "overlay_ip": "100.64.0.4", "allowed_ips": [],
     "online": false, "path": "none", "endpoint": null, "rtt_ms": null,
     "last_handshake_secs": null, "rx_bytes": 0, "tx_bytes": 0, "networks": ["home"]}
  ],
  "dropped": {},
  "offload": {"tun_vnet_hdr": false, "tun_udp_gso": false, "udp_gso_segments": 1,
              "udp_gro_segments": 1},
  "coordinators": [{"address": "x", "name": "Alice", "overlay_ip": null,
                    "public_key": "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
                    "connected": true, "last_error": null, "networks": ["home", "work"]}]
}"#;

fn tables() -> &'static [NameTable; 3] {
    static T: OnceLock<[NameTable; 3]> = OnceLock::new();
    T.get_or_init(|| {
        let s: Status = serde_json::from_str(STATUS)
            .expect("fuzz/fuzz_targets/dns_query.rs: STATUS no longer matches api::Status");
        let t = [
            NameTable::for_querier(&s, None),
            NameTable::for_querier(&s, Some("100.64.0.4".parse().unwrap())),
            NameTable::for_querier(&s, Some("100.64.9.9".parse().unwrap())),
        ];
        assert!(
            t[0].lookup("bob.work.warren").is_some(),
            "the table has names"
        );
        t
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&who, query)) = data.split_first() else {
        return;
    };
    let table = &tables()[usize::from(who % 3)];
    let Some(reply) = answer::answer(query, table) else {
        return;
    };
    let q = Message::from_bytes(query).expect("only parsed queries are answered");
    let r = Message::from_bytes(&reply).expect("our reply parses");
    assert_eq!(r.id(), q.id());
    assert_eq!(r.message_type(), MessageType::Response);
    // Never more than the names it knows, each at most an A and an AAAA.
    assert!(r.answers().len() <= 2);
});
