//! The daemon's STUN client: responses to its Binding Requests. The input is a list of
//! datagrams (u16 length, a flags byte, the bytes); flags pick the server it comes from and
//! whether its transaction ID is patched to a pending one, so the fuzzer gets past the cheap
//! header checks into the STUN parser and the attribute handling.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use warren_daemon_core::stun::{DiscoveryConfig, EndpointDiscovery, SeededTxIds, REQUEST_LEN};

fuzz_target!(|data: &[u8]| {
    let servers: [SocketAddr; 2] = [
        "192.0.2.1:3478".parse().unwrap(),
        "[2001:db8::1]:3479".parse().unwrap(),
    ];
    let t0 = Instant::now();
    let mut d = EndpointDiscovery::new(DiscoveryConfig::default(), SeededTxIds::new([3; 32]));
    d.start(t0, servers);
    let mut txids = Vec::new();
    let mut out = [0u8; REQUEST_LEN];
    while let Some(t) = d.poll_transmit(&mut out) {
        txids.push((t.dst, out[8..20].to_vec()));
    }
    assert_eq!(txids.len(), 2);
    let mut rest = data;
    let mut now = t0;
    while rest.len() >= 3 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let flags = rest[2];
        rest = &rest[3..];
        let mut datagram = rest[..len.min(rest.len())].to_vec();
        rest = &rest[len.min(rest.len())..];
        let (server, txid) = &txids[usize::from(flags & 1)];
        if flags & 2 != 0 && datagram.len() >= 20 {
            datagram[8..20].copy_from_slice(txid);
        }
        let from = if flags & 4 != 0 { servers[0] } else { *server };
        now += Duration::from_millis(u64::from(flags >> 4) * 50);
        d.handle_response(now, from, &datagram);
        if flags & 8 != 0 {
            d.handle_timeout(now);
            while d.poll_transmit(&mut out).is_some() {}
        }
    }
    if let Some(result) = d.poll_event() {
        // Whatever a server said, the outcome names only what the servers answered.
        assert!(result.reflexive.is_none() || result.mapped.contains(&result.reflexive));
    }
    let _ = d.poll_timeout();
});
