//! A seed replays a run: the same seed gives the same datagrams at the same instants (their
//! ciphertexts aside: boringtun draws its ephemeral keys from the OS), another seed does not.

use std::net::SocketAddr;
use std::time::Duration;
use warren_proto::datagram::DatagramKind;
use warren_sim::{SiteKind, World};

/// What a run put on the wire: when, from which host and port, to where, what, how long.
fn run(seed: u64) -> Vec<(Duration, usize, u16, SocketAddr, DatagramKind, usize)> {
    let mut w = World::new(seed);
    let a = w.add_site(SiteKind::PortRestricted, 1, "a").hosts[0];
    let b = w.add_site(SiteKind::Symmetric, 1, "b").hosts[0];
    let c = w.add_site(SiteKind::DoubleNat, 1, "c").hosts[0];
    w.set_loss(5);
    w.trace();
    w.network(&[a, b, c], "d");
    w.set_traffic(a, b, Some(Duration::from_millis(100)));
    w.run_for(Duration::from_secs(8));
    let start = w.start;
    w.sent
        .take()
        .unwrap()
        .into_iter()
        .map(|s| (s.at - start, s.host, s.port, s.dst, s.kind, s.bytes.len()))
        .collect()
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let seed = warren_sim::seed_or(7);
    let first = run(seed);
    assert!(
        first.len() > 1000,
        "a run with birthdays and loss: {}",
        first.len()
    );
    assert_eq!(first, run(seed));
    assert_ne!(first, run(seed + 1));
}
