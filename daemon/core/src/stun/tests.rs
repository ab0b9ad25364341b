//! A deterministic world for [`EndpointDiscovery`]: its own clock, a NAT in front of the host
//! (endpoint-independent or symmetric mapping), two STUN servers answering with the address
//! they see, a fixed round-trip time and per-server loss.

use super::*;
use std::collections::HashMap;
use stun_types::attribute::{AttributeStaticType, Fingerprint};
use stun_types::message::MessageWriteVec;
use warren_proto::datagram::{classify, DatagramKind};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Transaction IDs 1, 2, 3, … in the last byte: predictable on purpose.
#[derive(Debug, Default)]
struct Counting(u8);

impl TxIdSource for Counting {
    fn next_txid(&mut self) -> TxId {
        self.0 += 1;
        let mut id = [0xAA; 12];
        id[11] = self.0;
        id
    }
}

const S0: &str = "198.51.100.1:3478";
const S1: &str = "198.51.100.1:3479";
const PUBLIC: &str = "203.0.113.5:40000";

#[derive(Debug)]
enum Nat {
    /// One mapping for every destination.
    Independent(SocketAddr),
    /// A new port per destination, from `next_port` on.
    Symmetric {
        ip: IpAddr,
        next_port: u16,
        map: HashMap<SocketAddr, SocketAddr>,
    },
}

impl Nat {
    fn map(&mut self, dst: SocketAddr) -> SocketAddr {
        match self {
            Nat::Independent(public) => *public,
            Nat::Symmetric { ip, next_port, map } => *map.entry(dst).or_insert_with(|| {
                *next_port += 1;
                SocketAddr::new(*ip, *next_port - 1)
            }),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reply {
    XorMapped,
    /// Only MAPPED-ADDRESS, as an RFC 3489 server answers.
    MappedOnly,
    Error,
}

struct World {
    t0: Instant,
    now: Instant,
    rtt: Duration,
    nat: Nat,
    servers: [SocketAddr; 2],
    /// Requests to drop per server before answering (u32::MAX: silent server).
    drop: [u32; 2],
    reply: [Reply; 2],
    /// Every request sent: (time since t0, server index, bytes).
    sent: Vec<(Duration, usize, Vec<u8>)>,
    in_flight: Vec<(Instant, SocketAddr, Vec<u8>)>,
    events: Vec<(Duration, Discovery)>,
    disc: EndpointDiscovery<Counting>,
}

impl World {
    fn new(nat: Nat) -> Self {
        let t0 = Instant::now();
        Self {
            t0,
            now: t0,
            rtt: ms(40),
            nat,
            servers: [addr(S0), addr(S1)],
            drop: [0, 0],
            reply: [Reply::XorMapped; 2],
            sent: Vec::new(),
            in_flight: Vec::new(),
            events: Vec::new(),
            disc: EndpointDiscovery::new(DiscoveryConfig::default(), Counting::default()),
        }
    }

    fn independent() -> Self {
        Self::new(Nat::Independent(addr(PUBLIC)))
    }

    fn symmetric() -> Self {
        Self::new(Nat::Symmetric {
            ip: "203.0.113.5".parse().unwrap(),
            next_port: 50000,
            map: HashMap::new(),
        })
    }

    fn start(&mut self) {
        self.disc.start(self.now, self.servers);
        self.flush();
    }

    fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    fn requests_to(&self, server: usize) -> usize {
        self.sent.iter().filter(|s| s.1 == server).count()
    }

    /// Sends what the machine queued, lets the servers answer, collects events.
    fn flush(&mut self) {
        let mut buf = [0u8; 64];
        while let Some(t) = self.disc.poll_transmit(&mut buf) {
            let request = buf[..t.len].to_vec();
            let server = self.servers.iter().position(|s| *s == t.dst).unwrap();
            self.sent.push((self.elapsed(), server, request.clone()));
            if self.drop[server] > 0 {
                // u32::MAX stays: a silent server.
                if self.drop[server] != u32::MAX {
                    self.drop[server] -= 1;
                }
                continue;
            }
            let seen = self.nat.map(t.dst);
            let answer = respond(&request, seen, self.reply[server]);
            self.in_flight
                .push((self.now + self.rtt, self.servers[server], answer));
        }
        while let Some(d) = self.disc.poll_event() {
            self.events.push((self.elapsed(), d));
        }
    }

    /// Runs the world until nothing is left to do before `t0 + until`.
    fn run_until(&mut self, until: Duration) {
        let limit = self.t0 + until;
        loop {
            let next_packet = self.in_flight.iter().map(|p| p.0).min();
            let next = match (next_packet, self.disc.poll_timeout()) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => break,
                },
            };
            if next > limit {
                break;
            }
            self.now = self.now.max(next);
            let (due, later): (Vec<_>, Vec<_>) =
                self.in_flight.drain(..).partition(|p| p.0 <= self.now);
            self.in_flight = later;
            for (_, from, datagram) in due {
                self.disc.handle_response(self.now, from, &datagram);
            }
            if self.disc.poll_timeout().is_some_and(|t| t <= self.now) {
                self.disc.handle_timeout(self.now);
            }
            self.flush();
        }
        self.now = self.now.max(limit);
    }
}

/// A STUN server's answer to `request`, built with the STUN crate the way a server would.
pub(crate) fn respond(request: &[u8], seen: SocketAddr, reply: Reply) -> Vec<u8> {
    let request = Message::from_bytes(request).expect("a valid request");
    assert!(request.has_class(MessageClass::Request) && request.has_method(BINDING));
    let txid = request.transaction_id();
    match reply {
        Reply::XorMapped => {
            let mut w = Message::builder_success(&request, MessageWriteVec::new());
            w.add_attribute(&XorMappedAddress::new(seen, txid)).unwrap();
            w.add_fingerprint().unwrap();
            w.finish()
        }
        Reply::MappedOnly => {
            let mut w = Message::builder_success(&request, MessageWriteVec::new());
            let mapped = MappedSocketAddr::new(seen);
            w.add_attribute(&mapped.to_raw(MAPPED_ADDRESS)).unwrap();
            w.finish()
        }
        Reply::Error => {
            let mut w = Message::builder_error(&request, MessageWriteVec::new());
            let code = stun_types::attribute::ErrorCode::builder(400)
                .build()
                .unwrap();
            w.add_attribute(&code).unwrap();
            w.finish()
        }
    }
}

fn txid_of(datagram: &[u8]) -> TxId {
    datagram[8..20].try_into().unwrap()
}

#[test]
fn same_mapping_from_both_servers_is_endpoint_independent() {
    let mut w = World::independent();
    w.start();
    w.run_until(ms(1000));
    let d = w.disc.result().unwrap();
    assert_eq!(d.reflexive, Some(addr(PUBLIC)));
    assert_eq!(d.nat, NatKind::EndpointIndependent);
    assert_eq!(d.mapped, [Some(addr(PUBLIC)); 2]);
    // One request each, concluded after one round trip.
    assert_eq!((w.requests_to(0), w.requests_to(1)), (1, 1));
    assert_eq!(w.events, vec![(ms(40), d)]);
    assert!(!w.disc.is_running());
    // Idle until the periodic run.
    assert_eq!(w.disc.poll_timeout(), Some(w.t0 + ms(40) + secs(60)));
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn different_mappings_are_symmetric() {
    let mut w = World::symmetric();
    w.start();
    w.run_until(ms(1000));
    let d = w.disc.result().unwrap();
    assert_eq!(d.nat, NatKind::Symmetric);
    assert_eq!(d.reflexive, Some(addr("203.0.113.5:50000")));
    assert_eq!(
        d.mapped,
        [
            Some(addr("203.0.113.5:50000")),
            Some(addr("203.0.113.5:50001"))
        ]
    );
    assert_eq!(w.events.len(), 1);
}

#[test]
fn lost_request_is_retransmitted_with_the_same_transaction() {
    let mut w = World::independent();
    w.drop = [0, 2];
    w.start();
    w.run_until(ms(5000));
    let d = w.disc.result().unwrap();
    assert_eq!(d.nat, NatKind::EndpointIndependent);
    let to_1: Vec<_> = w.sent.iter().filter(|s| s.1 == 1).collect();
    // Sent at 0, then after 250 ms and a doubled 500 ms.
    let times: Vec<_> = to_1.iter().map(|s| s.0).collect();
    assert_eq!(times, vec![ms(0), ms(250), ms(750)]);
    assert!(
        to_1.iter().all(|s| s.2 == to_1[0].2),
        "retransmits are identical"
    );
    assert_eq!(w.requests_to(0), 1);
    assert_eq!(w.events, vec![(ms(790), d)]);
}

#[test]
fn no_answers_give_unknown_after_the_bound() {
    let mut w = World::independent();
    w.drop = [u32::MAX, u32::MAX];
    w.start();
    let bound = w.disc.config().run_bound();
    assert_eq!(bound, ms(3750));
    w.run_until(bound - ms(1));
    assert!(w.disc.result().is_none() && w.disc.is_running());
    w.run_until(bound);
    let d = w.disc.result().unwrap();
    assert_eq!(
        d,
        Discovery {
            reflexive: None,
            nat: NatKind::Unknown,
            mapped: [None, None]
        }
    );
    assert_eq!(w.events, vec![(bound, d)]);
    // Bounded: max_requests per server, at 0, 0.25, 0.75, 1.75 s.
    let times: Vec<_> = w.sent.iter().filter(|s| s.1 == 0).map(|s| s.0).collect();
    assert_eq!(times, vec![ms(0), ms(250), ms(750), ms(1750)]);
    assert_eq!(w.requests_to(1), 4);
    // Retried sooner than a complete run would be.
    assert_eq!(w.disc.poll_timeout(), Some(w.t0 + bound + secs(15)));
}

#[test]
fn one_silent_server_gives_unknown_with_the_other_address() {
    let mut w = World::independent();
    w.drop = [u32::MAX, 0];
    w.start();
    w.run_until(secs(5));
    let d = w.disc.result().unwrap();
    assert_eq!(d.reflexive, Some(addr(PUBLIC)));
    assert_eq!(d.nat, NatKind::Unknown);
    assert_eq!(d.mapped, [None, Some(addr(PUBLIC))]);
    // Server 1 answered at once: no retransmission to it.
    assert_eq!((w.requests_to(0), w.requests_to(1)), (4, 1));
}

#[test]
fn periodic_runs_use_fresh_transactions_and_report_only_changes() {
    let mut w = World::independent();
    w.start();
    w.run_until(secs(200));
    // Runs at 0, 60.04, 120.08, 180.12 s; one event, since nothing changed.
    assert_eq!(w.sent.len(), 8);
    assert_eq!(w.events.len(), 1);
    let mut ids: Vec<_> = w.sent.iter().map(|s| txid_of(&s.2)).collect();
    ids.dedup();
    assert_eq!(ids.len(), 8, "every run has new transaction IDs");
    // The NAT moves us: the next run reports it.
    w.nat = Nat::Independent(addr("203.0.113.9:41000"));
    w.run_until(secs(260));
    assert_eq!(w.events.len(), 2);
    assert_eq!(w.events[1].1.reflexive, Some(addr("203.0.113.9:41000")));
}

#[test]
fn network_change_runs_at_once_and_abandons_the_old_run() {
    let mut w = World::independent();
    w.rtt = ms(100);
    w.start();
    w.run_until(ms(50));
    assert_eq!(w.in_flight.len(), 2, "answers still on their way at 50 ms");
    w.nat = Nat::Independent(addr("203.0.113.9:41000"));
    w.disc.handle_network_change(w.now);
    w.flush();
    assert_eq!(w.sent.len(), 4);
    w.run_until(secs(1));
    // The first run's answers arrived at 100 ms but no longer matched.
    let d = w.disc.result().unwrap();
    assert_eq!(d.reflexive, Some(addr("203.0.113.9:41000")));
    assert_eq!(w.events.len(), 1);
    assert_eq!(w.events[0].0, ms(150));
}

#[test]
fn stop_silences_everything() {
    let mut w = World::independent();
    w.start();
    w.disc.stop();
    assert_eq!(w.disc.poll_timeout(), None);
    assert!(w.disc.poll_transmit(&mut [0u8; 64]).is_none());
    w.disc.handle_network_change(w.now);
    assert_eq!(w.disc.poll_timeout(), None);
}

#[test]
fn error_response_ends_that_transaction() {
    let mut w = World::independent();
    w.reply = [Reply::XorMapped, Reply::Error];
    w.start();
    w.run_until(secs(5));
    let d = w.disc.result().unwrap();
    assert_eq!(d.mapped, [Some(addr(PUBLIC)), None]);
    assert_eq!(d.nat, NatKind::Unknown);
    assert_eq!((w.requests_to(0), w.requests_to(1)), (1, 1));
    assert_eq!(w.events[0].0, ms(40));
}

#[test]
fn mapped_address_is_the_fallback() {
    let mut w = World::independent();
    w.reply = [Reply::MappedOnly, Reply::XorMapped];
    w.start();
    w.run_until(secs(1));
    let d = w.disc.result().unwrap();
    assert_eq!(d.mapped, [Some(addr(PUBLIC)); 2]);
    assert_eq!(d.nat, NatKind::EndpointIndependent);
}

#[test]
fn equal_servers_cannot_tell_the_nat_kind() {
    let mut w = World::independent();
    w.servers = [addr(S0), addr(S0)];
    w.start();
    w.run_until(secs(1));
    let d = w.disc.result().unwrap();
    assert_eq!(d.reflexive, Some(addr(PUBLIC)));
    assert_eq!(d.nat, NatKind::Unknown);
}

#[test]
fn dual_stack_source_addresses_match() {
    let mut w = World::independent();
    w.start();
    let mut answers = Vec::new();
    for (_, server, request) in &w.sent {
        answers.push((*server, respond(request, addr(PUBLIC), Reply::XorMapped)));
    }
    for (server, answer) in answers {
        let SocketAddr::V4(v4) = w.servers[server] else {
            unreachable!()
        };
        let mapped = SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port());
        assert!(w.disc.handle_response(w.now, mapped, &answer));
    }
    assert_eq!(w.disc.result().unwrap().nat, NatKind::EndpointIndependent);
}

#[test]
fn requests_are_valid_binding_requests() {
    let mut w = World::independent();
    w.start();
    assert_eq!(w.sent.len(), 2);
    for (_, _, req) in &w.sent {
        assert_eq!(req.len(), REQUEST_LEN);
        assert_eq!(classify(req), DatagramKind::Stun);
        let msg = Message::from_bytes(req).unwrap();
        assert!(msg.has_class(MessageClass::Request) && msg.has_method(BINDING));
        assert!(msg.has_attribute(Fingerprint::TYPE));
    }
    assert_ne!(txid_of(&w.sent[0].2), txid_of(&w.sent[1].2));
}

#[test]
fn junk_and_strangers_are_ignored() {
    let mut w = World::independent();
    w.start();
    let reqs: Vec<_> = w.sent.iter().map(|s| s.2.clone()).collect();
    let s0 = addr(S0);
    let good = respond(&reqs[0], addr(PUBLIC), Reply::XorMapped);
    let now = w.now;
    let d = &mut w.disc;

    // Garbage of every short length, and headers without a body.
    for len in 0..good.len() {
        assert!(
            !d.handle_response(now, s0, &good[..len]),
            "truncated to {len}"
        );
    }
    // Right transaction, wrong sender.
    assert!(!d.handle_response(now, addr("198.51.100.66:3478"), &good));
    assert!(!d.handle_response(now, addr(S1), &good));
    // Foreign transaction ID.
    let mut foreign = good.clone();
    foreign[19] ^= 0xFF;
    assert!(!d.handle_response(now, s0, &foreign));
    // Our own request echoed back.
    assert!(!d.handle_response(now, s0, &reqs[0]));
    // A broken fingerprint.
    let mut broken = good.clone();
    let last = broken.len() - 1;
    broken[last] ^= 1;
    assert!(!d.handle_response(now, s0, &broken));
    // Length field past the end.
    let mut long = good.clone();
    long[3] = long[3].wrapping_add(8);
    assert!(!d.handle_response(now, s0, &long));
    // None of it stopped the real answer from counting.
    assert!(d.handle_response(now, s0, &good));
    assert_eq!(
        d.poll_timeout(),
        Some(now + ms(250)),
        "only server 1 is waited for"
    );
}

#[test]
fn random_bodies_behind_a_matching_header_do_not_panic() {
    let mut w = World::independent();
    w.start();
    let good = respond(&w.sent[0].2, addr(PUBLIC), Reply::XorMapped);
    let mut header: [u8; HEADER_LEN] = good[..HEADER_LEN].try_into().unwrap();
    let (now, s0) = (w.now, addr(S0));
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut matched = 0;
    for i in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = HEADER_LEN + (x % 80) as usize;
        let mut junk: Vec<u8> = (0..len)
            .map(|k| (x.rotate_left(k as u32 * 7) >> 5) as u8)
            .collect();
        junk[..HEADER_LEN].copy_from_slice(&header);
        if i % 2 == 0 {
            let body = (len - HEADER_LEN) as u16;
            junk[2..4].copy_from_slice(&body.to_be_bytes());
        }
        if w.disc.handle_response(now, s0, &junk) {
            matched += 1;
            // It parsed as a Binding response (with random attributes): start over.
            w.disc.start(now, w.servers);
            w.sent.clear();
            w.flush();
            header[8..20].copy_from_slice(&w.sent[0].2[8..20]);
        }
    }
    // Whatever happened, the machine still works.
    w.run_until(secs(1));
    assert_eq!(w.disc.result().unwrap().nat, NatKind::EndpointIndependent);
    assert!(matched < 20_000, "{matched}");
}

#[test]
fn the_real_answer_still_counts_after_junk() {
    let mut w = World::independent();
    w.start();
    let reqs: Vec<_> = w.sent.iter().map(|s| s.2.clone()).collect();
    let now = w.now;
    let good0 = respond(&reqs[0], addr(PUBLIC), Reply::XorMapped);
    let good1 = respond(&reqs[1], addr(PUBLIC), Reply::XorMapped);
    let mut truncated = good0.clone();
    truncated.truncate(good0.len() - 4);
    assert!(!w.disc.handle_response(now, addr(S0), &truncated));
    assert!(!w.disc.handle_response(now, addr(S1), &good0));
    assert!(w.disc.handle_response(now, addr(S0), &good0));
    // A duplicate no longer matches.
    assert!(!w.disc.handle_response(now, addr(S0), &good0));
    assert!(w.disc.handle_response(now, addr(S1), &good1));
    assert_eq!(w.disc.result().unwrap().nat, NatKind::EndpointIndependent);
}

/// RFC 5769 §2.2 and §2.3 sample responses (SOFTWARE, XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY,
/// FINGERPRINT), for transaction b7e7a701bc34d686fa87dfae.
const RFC5769_TXID: TxId = [
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
];

#[rustfmt::skip]
const RFC5769_IPV4_RESPONSE: [u8; 80] = [
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42,
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
    0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
    0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9,
    0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7,
    0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
];

#[rustfmt::skip]
const RFC5769_IPV6_RESPONSE: [u8; 92] = [
    0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42,
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
    0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47,
    0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
    0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1, 0x17, 0x84, 0xc9, 0x7c,
    0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41,
    0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c,
];

/// Fires every timer due before `until`, dropping whatever the machine sends.
fn run_timers<S: TxIdSource>(d: &mut EndpointDiscovery<S>, until: Instant) {
    while let Some(t) = d.poll_timeout().filter(|t| *t <= until) {
        d.handle_timeout(t);
        while d.poll_transmit(&mut [0u8; REQUEST_LEN]).is_some() {}
    }
}

#[test]
fn rfc5769_sample_responses() {
    let t0 = Instant::now();
    let mut n = 0u8;
    // Server 0's transaction gets the RFC's ID; server 1's another.
    let txids = move || {
        n += 1;
        if n % 2 == 1 {
            RFC5769_TXID
        } else {
            [n; 12]
        }
    };
    let mut d = EndpointDiscovery::new(DiscoveryConfig::default(), txids);
    let servers = [addr(S0), addr(S1)];
    d.start(t0, servers);
    assert!(d.handle_response(t0, servers[0], &RFC5769_IPV4_RESPONSE));
    run_timers(&mut d, t0 + secs(10));
    let r = d.result().unwrap();
    assert_eq!(r.mapped[0], Some(addr("192.0.2.1:32853")));
    assert_eq!(r.reflexive, Some(addr("192.0.2.1:32853")));

    d.start(t0 + secs(10), servers);
    assert!(d.handle_response(t0 + secs(10), servers[0], &RFC5769_IPV6_RESPONSE));
    run_timers(&mut d, t0 + secs(20));
    assert_eq!(
        d.result().unwrap().mapped[0],
        Some(addr("[2001:db8:1234:5678:11:2233:4455:6677]:32853"))
    );
}

#[test]
fn seeded_transaction_ids_differ_and_depend_on_the_seed() {
    let mut a = SeededTxIds::new([1; 32]);
    let mut b = SeededTxIds::new([2; 32]);
    let first = a.next_txid();
    assert_ne!(first, a.next_txid());
    assert_ne!(first, b.next_txid());
    assert_eq!(first, SeededTxIds::new([1; 32]).next_txid());
}
