use super::*;

/// An IPv4 packet of `len` bytes from 10.0.0.1:`sport` to 10.0.0.2:`dport` (`proto` 6 or 17).
fn packet(proto: u8, sport: u16, dport: u16, len: usize) -> Vec<u8> {
    let mut p = vec![0u8; len.max(24)];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[9] = proto;
    p[12..16].copy_from_slice(&[10, 0, 0, 1]);
    p[16..20].copy_from_slice(&[10, 0, 0, 2]);
    p[20..22].copy_from_slice(&sport.to_be_bytes());
    p[22..24].copy_from_slice(&dport.to_be_bytes());
    p
}

fn limits() -> Limits {
    Limits {
        small: 4,
        bulk_bytes: 8 * 1400,
        bulk_packets: 20,
        overtake: usize::MAX,
    }
}

/// Queued without dropping anything.
fn queued<T: std::fmt::Debug>((lane, dropped): (Lane, Vec<T>)) -> Lane {
    assert!(dropped.is_empty(), "dropped {dropped:?}");
    lane
}

/// Two flows that hash into different buckets (the test would be meaningless otherwise).
fn download_and_game() -> (Vec<u8>, Vec<u8>) {
    let download = packet(6, 5201, 40000, 1400);
    let game = (27015..28000)
        .map(|p| packet(17, p, 27015, 120))
        .find(|g| flow_bucket(g) != flow_bucket(&download))
        .expect("some port hashes elsewhere");
    (download, game)
}

#[test]
fn a_game_packet_overtakes_a_queued_download() {
    let (download, game) = download_and_game();
    let mut lanes = Lanes::new(limits());
    for i in 0..5 {
        assert_eq!(
            queued(lanes.push_packet(("download", i), &download)),
            Lane::Bulk
        );
    }
    assert_eq!(queued(lanes.push_packet(("game", 0), &game)), Lane::Small);
    assert_eq!(lanes.pop(), Some(("game", 0)));
    let rest: Vec<_> = std::iter::from_fn(|| lanes.pop()).collect();
    assert_eq!(rest, (0..5).map(|i| ("download", i)).collect::<Vec<_>>());
    assert!(lanes.is_empty());
}

#[test]
fn a_flow_with_bulk_waiting_is_never_reordered() {
    let download = packet(6, 5201, 40000, 1400);
    // The download's last, short segment (and its pure ACK-sized packets) stay behind it.
    let tail = packet(6, 5201, 40000, 300);
    let mut lanes = Lanes::new(limits());
    assert_eq!(queued(lanes.push_packet(1, &download)), Lane::Bulk);
    assert_eq!(queued(lanes.push_packet(2, &tail)), Lane::Bulk);
    assert_eq!(lanes.pop(), Some(1));
    assert_eq!(lanes.pop(), Some(2));
    // Once nothing of the flow waits, its small packets are small again.
    assert_eq!(queued(lanes.push_packet(3, &tail)), Lane::Small);
}

#[test]
fn a_full_bulk_lane_drops_its_oldest_and_still_takes_small() {
    let (download, game) = download_and_game();
    let mut lanes = Lanes::new(limits());
    for i in 0..8 {
        assert_eq!(queued(lanes.push_packet(i, &download)), Lane::Bulk);
    }
    assert_eq!(lanes.bulk_bytes(), 8 * 1400);
    assert_eq!(lanes.push_packet(8, &download), (Lane::Bulk, vec![0]));
    assert_eq!(lanes.push_packet(9, &download), (Lane::Bulk, vec![1]));
    assert_eq!(queued(lanes.push_packet(100, &game)), Lane::Small);
    assert_eq!(lanes.bulk_packets(), 8);
    assert_eq!(lanes.pop_small(), Some(100));
    assert_eq!(lanes.pop_small(), None);
    let rest: Vec<_> = std::iter::from_fn(|| lanes.pop_bulk()).collect();
    assert_eq!(rest, (2..10).collect::<Vec<_>>());
}

#[test]
fn a_flood_of_tiny_packets_is_bounded_by_count() {
    let tiny = packet(17, 4000, 4001, 60);
    let mut lanes = Lanes::new(limits());
    let dropped: usize = (0..100).map(|i| lanes.push_packet(i, &tiny).1.len()).sum();
    // 4 in the small lane, then 20 as bulk (60 bytes each is far under the byte limit): the
    // newest 20 of the rest.
    assert_eq!(dropped, 100 - 24);
    assert_eq!(lanes.bulk_packets(), 20);
    let order: Vec<_> = std::iter::from_fn(|| lanes.pop()).collect();
    assert_eq!(order, (0..4).chain(80..100).collect::<Vec<_>>());
}

#[test]
fn a_full_small_lane_lets_small_packets_wait_as_bulk() {
    let (_, game) = download_and_game();
    let mut lanes = Lanes::new(limits());
    for i in 0..4 {
        assert_eq!(queued(lanes.push_packet(i, &game)), Lane::Small);
    }
    assert_eq!(queued(lanes.push_packet(4, &game)), Lane::Bulk);
    // The fifth is behind the first four: order within the flow holds.
    let order: Vec<_> = std::iter::from_fn(|| lanes.pop()).collect();
    assert_eq!(order, vec![0, 1, 2, 3, 4]);
}

#[test]
fn datagrams_are_small_only_alone_and_short() {
    let mut lanes = Lanes::new(limits());
    assert_eq!(
        queued(lanes.push_datagrams("ping", 148, 1, 148)),
        Lane::Small
    );
    assert_eq!(
        queued(lanes.push_datagrams("short burst", 3 * 148, 3, 148)),
        Lane::Bulk,
        "a GRO chunk is a burst of one flow"
    );
    let big = SMALL_DATAGRAM + 1;
    assert_eq!(
        queued(lanes.push_datagrams("segment", big, 1, big)),
        Lane::Bulk
    );
    assert_eq!(lanes.bulk_packets(), 4);
    // A chunk bigger than the whole limit empties the lane and gets in.
    let gro = 64 * 1452;
    assert_eq!(
        lanes.push_datagrams("big", gro, 64, 1452),
        (Lane::Bulk, vec!["short burst", "segment"])
    );
    assert_eq!(lanes.pop(), Some("ping"));
    assert_eq!(lanes.pop(), Some("big"));
}

#[test]
fn small_datagrams_overtake_only_a_short_bulk_lane() {
    let mut lanes = Lanes::new(Limits {
        overtake: 2,
        ..limits()
    });
    assert_eq!(
        queued(lanes.push_datagrams("burst", 3 * 1400, 3, 1400)),
        Lane::Bulk
    );
    // Three datagrams wait: past the overtaking limit, the lone small one queues behind them.
    assert_eq!(
        queued(lanes.push_datagrams("game", 148, 1, 148)),
        Lane::Bulk
    );
    assert_eq!(lanes.pop(), Some("burst"));
    assert_eq!(
        queued(lanes.push_datagrams("voice", 148, 1, 148)),
        Lane::Small
    );
    assert_eq!(lanes.pop(), Some("voice"));
    assert_eq!(lanes.pop(), Some("game"));
}

#[test]
fn what_a_small_datagram_overtakes_is_counted_from_the_oldest_waiting() {
    let mut lanes = Lanes::new(Limits {
        overtake: 10,
        ..limits()
    });
    // Eight full datagrams fill the byte limit; forty more push the oldest out one by one.
    assert_eq!(
        queued(lanes.push_datagrams(0, 8 * 1400, 8, 1400)),
        Lane::Bulk
    );
    let mut dropped = 0;
    for i in 1..=40 {
        dropped += lanes.push_datagrams(i, 1400, 1, 1400).1.len();
    }
    assert_eq!(
        dropped, 33,
        "the chunk of eight, then the 32 oldest singles"
    );
    assert_eq!(lanes.bulk_packets(), 8);
    // The eight waiting are the newest: a small datagram overtakes eight counters.
    assert_eq!(queued(lanes.push_datagrams(99, 148, 1, 148)), Lane::Small);
    assert_eq!(lanes.pop(), Some(99));
    assert_eq!(lanes.pop(), Some(33));
}

#[test]
fn flows_differ_by_ports_and_addresses_but_not_by_length() {
    let a = packet(17, 1000, 2000, 100);
    assert_eq!(flow_bucket(&a), flow_bucket(&packet(17, 1000, 2000, 900)));
    let buckets: std::collections::HashSet<u8> = (0..64)
        .map(|p| flow_bucket(&packet(17, 1000 + p, 2000, 100)))
        .collect();
    assert!(buckets.len() > 32, "ports spread over buckets: {buckets:?}");
    // ICMP has no ports: one flow per address pair.
    assert_eq!(
        flow_bucket(&packet(1, 1, 2, 84)),
        flow_bucket(&packet(1, 3, 4, 84))
    );
    assert_eq!(flow_bucket(&[]), 0);
    assert_eq!(flow_bucket(&[0x45, 0, 0]), 0);
    let mut v6 = vec![0u8; 48];
    v6[0] = 0x60;
    v6[6] = 17;
    let first = flow_bucket(&v6);
    v6[40] = 7;
    assert_ne!(first, flow_bucket(&v6), "IPv6 ports count");
}
