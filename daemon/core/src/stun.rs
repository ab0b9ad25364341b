//! Endpoint discovery: the address and port the daemon's UDP socket is seen from on the
//! internet (its reflexive address), and whether its NAT keeps one mapping for every
//! destination.
//!
//! [`EndpointDiscovery`] sends RFC 8489 Binding Requests from the daemon's one UDP socket (the
//! one WireGuard uses) to two STUN servers: two ports of the coordinator, or two public STUN
//! servers. Both answers carry the source address the server saw. The same address from both
//! means endpoint-independent mapping ([`NatKind::EndpointIndependent`], which includes "no NAT
//! at all"); two different ones mean a new mapping per destination ([`NatKind::Symmetric`]);
//! fewer than two answers leave the kind [`NatKind::Unknown`].
//!
//! Like the rest of the core it does no I/O: the shell hands it every datagram that
//! [`classify`](warren_proto::datagram::classify) calls [`DatagramKind::Stun`], the current
//! time, and sends what it asks for. Transaction IDs come from an injected [`TxIdSource`].
//!
//! # Call order (for the owner, e.g. the daemon's driver loop)
//! 1. [`EndpointDiscovery::new`], then [`start`](EndpointDiscovery::start) once the two server
//!    addresses are known (again whenever they change).
//! 2. On every datagram classified [`DatagramKind::Stun`]:
//!    [`handle_response`](EndpointDiscovery::handle_response).
//! 3. When the instant from [`poll_timeout`](EndpointDiscovery::poll_timeout) has passed:
//!    [`handle_timeout`](EndpointDiscovery::handle_timeout).
//! 4. After a network change (new local address, new route): [`handle_network_change`]
//!    (a new run at once instead of waiting for the periodic one).
//! 5. After each of 1–4: drain [`poll_transmit`](EndpointDiscovery::poll_transmit) until `None`,
//!    sending every request from the WireGuard socket; take
//!    [`poll_event`](EndpointDiscovery::poll_event) (a result that differs from the last one
//!    reported, to tell the coordinator); re-read `poll_timeout` and re-arm the timer.
//!
//! Runs repeat by themselves: [`DiscoveryConfig::rerun_interval`] after a run that heard both
//! servers, [`DiscoveryConfig::retry_interval`] after one that did not.
//!
//! # What is accepted
//! A response counts only if its transaction ID is one of the current run's and it comes from
//! the address that request went to. Those two checks run on the raw header before the STUN
//! parser sees the datagram, so junk and strangers' messages cost nothing and log nothing. A
//! matching success response gives XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS (RFC 3489 servers)
//! when XOR-MAPPED-ADDRESS is missing; a matching error response, or a success without either
//! attribute, ends that server's transaction without an address.
//!
//! [`DatagramKind::Stun`]: warren_proto::datagram::DatagramKind::Stun
//! [`handle_network_change`]: EndpointDiscovery::handle_network_change

use crate::node::Transmit;
use blake2::{Blake2s256, Digest};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use stun_types::attribute::{AttributeType, MappedSocketAddr, XorMappedAddress};
use stun_types::message::{
    Message, MessageClass, MessageType, MessageWrite, MessageWriteExt, MessageWriteMutSlice,
    TransactionId, BINDING,
};
use warren_proto::control::msg::NatKind;
use warren_proto::datagram::STUN_MAGIC_COOKIE;

/// A STUN transaction ID (96 bits).
pub type TxId = [u8; 12];

/// Length of the Binding Request [`EndpointDiscovery::poll_transmit`] writes: the 20-byte
/// header and a FINGERPRINT (which lets servers that multiplex protocols tell STUN apart).
pub const REQUEST_LEN: usize = 28;

const HEADER_LEN: usize = 20;
const BINDING_SUCCESS: u16 = 0x0101;
const BINDING_ERROR: u16 = 0x0111;
const MAPPED_ADDRESS: AttributeType = AttributeType::new(0x0001);

/// Where transaction IDs come from. They should be unpredictable to anyone off the path (RFC
/// 8489 §5), since a guessed ID lets a stranger forge our reflexive address. Closures
/// `FnMut() -> TxId` implement it, which suits tests.
pub trait TxIdSource {
    fn next_txid(&mut self) -> TxId;
}

impl<F: FnMut() -> TxId> TxIdSource for F {
    fn next_txid(&mut self) -> TxId {
        self()
    }
}

/// Transaction IDs from a random seed: BLAKE2s(seed ‖ counter), cut to 96 bits. Knowing some
/// IDs does not tell the next ones. The seed must be fresh randomness (the shell's RNG).
#[derive(Clone)]
pub struct SeededTxIds {
    seed: [u8; 32],
    counter: u64,
}

impl SeededTxIds {
    pub fn new(seed: [u8; 32]) -> Self {
        Self { seed, counter: 0 }
    }
}

impl TxIdSource for SeededTxIds {
    fn next_txid(&mut self) -> TxId {
        let hash = Blake2s256::new()
            .chain_update(self.seed)
            .chain_update(self.counter.to_le_bytes())
            .finalize();
        self.counter += 1;
        let mut id = [0u8; 12];
        id.copy_from_slice(&hash[..12]);
        id
    }
}

impl std::fmt::Debug for SeededTxIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeededTxIds")
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

/// Timers of the discovery runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// Wait after the first request before sending it again; doubled after every retransmission.
    pub initial_rto: Duration,
    /// Upper bound of the doubled wait.
    pub max_rto: Duration,
    /// Requests per server and run, the first one included (RFC 8489's `Rc`). After the last
    /// one the run waits one more (doubled, bounded) RTO for the answer, then gives that server up.
    pub max_requests: u32,
    /// Time from the end of a run that heard both servers to the next run.
    pub rerun_interval: Duration,
    /// Time from the end of a run that heard fewer than two servers to the next run.
    pub retry_interval: Duration,
}

impl Default for DiscoveryConfig {
    /// Requests at 0, 0.25, 0.75 and 1.75 s; a server that never answers is given up at 3.75 s.
    fn default() -> Self {
        Self {
            initial_rto: Duration::from_millis(250),
            max_rto: Duration::from_secs(2),
            max_requests: 4,
            rerun_interval: Duration::from_secs(60),
            retry_interval: Duration::from_secs(15),
        }
    }
}

impl DiscoveryConfig {
    /// How long a run lasts at most: from its start to giving up a server that never answers.
    pub fn run_bound(&self) -> Duration {
        let mut rto = self.initial_rto;
        let mut total = rto;
        for _ in 1..self.max_requests.max(1) {
            rto = (rto * 2).min(self.max_rto);
            total += rto;
        }
        total
    }
}

/// The outcome of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Discovery {
    /// The address the first server that answered saw us from (server 0 preferred); `None`
    /// when neither answered.
    pub reflexive: Option<SocketAddr>,
    pub nat: NatKind,
    /// What each server saw, in the order of [`EndpointDiscovery::start`]'s `servers`.
    pub mapped: [Option<SocketAddr>; 2],
}

/// One run's state for one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Pending,
    Mapped(SocketAddr),
    /// An error response, or a success without an address: that server has nothing for us.
    Refused,
    TimedOut,
}

#[derive(Debug)]
struct Transaction {
    server: SocketAddr,
    txid: TxId,
    requests: u32,
    rto: Duration,
    /// Retransmission or, after the last request, give-up time.
    deadline: Instant,
    answer: Answer,
}

/// See the [module documentation](self) for the call order.
#[derive(Debug)]
pub struct EndpointDiscovery<S = SeededTxIds> {
    config: DiscoveryConfig,
    txids: S,
    servers: Option<[SocketAddr; 2]>,
    /// The run in progress.
    run: Option<[Transaction; 2]>,
    /// Requests to send: indices into `run`, in order.
    queue: [Option<usize>; 2],
    /// Start of the next periodic run, while none is running.
    next_run: Option<Instant>,
    result: Option<Discovery>,
    /// The result last handed out by `poll_event`.
    reported: Option<Discovery>,
    event: Option<Discovery>,
}

impl<S: TxIdSource> EndpointDiscovery<S> {
    /// Idle until [`start`](Self::start).
    pub fn new(config: DiscoveryConfig, txids: S) -> Self {
        Self {
            config,
            txids,
            servers: None,
            run: None,
            queue: [None; 2],
            next_run: None,
            result: None,
            reported: None,
            event: None,
        }
    }

    pub fn config(&self) -> &DiscoveryConfig {
        &self.config
    }

    /// The servers asked, once started.
    pub fn servers(&self) -> Option<[SocketAddr; 2]> {
        self.servers
    }

    /// The outcome of the last finished run.
    pub fn result(&self) -> Option<Discovery> {
        self.result
    }

    pub fn is_running(&self) -> bool {
        self.run.is_some()
    }

    /// Starts a run now, asking `servers` (they should differ; if they are equal the NAT kind
    /// stays `Unknown`), and keeps re-running it periodically. A run in progress is abandoned:
    /// late answers to it no longer match.
    pub fn start(&mut self, now: Instant, servers: [SocketAddr; 2]) {
        self.servers = Some(servers);
        self.begin(now, servers);
    }

    /// The local network changed: the mapping may have too, so a run starts now (nothing
    /// happens before the first [`start`](Self::start) or after [`stop`](Self::stop)).
    pub fn handle_network_change(&mut self, now: Instant) {
        if let Some(servers) = self.servers {
            self.begin(now, servers);
        }
    }

    /// Stops the run in progress and the periodic ones; [`result`](Self::result) keeps the last
    /// outcome.
    pub fn stop(&mut self) {
        self.servers = None;
        self.run = None;
        self.queue = [None; 2];
        self.next_run = None;
    }

    /// A datagram that [`classify`](warren_proto::datagram::classify) calls STUN, received from
    /// `from`. Returns whether it answered a request of the current run that was still waiting;
    /// everything else (unknown transaction, another sender, duplicates, malformed messages,
    /// requests) is ignored.
    pub fn handle_response(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) -> bool {
        let Some(run) = self.run.as_mut() else {
            return false;
        };
        if datagram.len() < HEADER_LEN || datagram[4..8] != STUN_MAGIC_COOKIE.to_be_bytes() {
            return false;
        }
        let mtype = u16::from_be_bytes([datagram[0], datagram[1]]);
        if mtype != BINDING_SUCCESS && mtype != BINDING_ERROR {
            return false;
        }
        let from = canonical(from);
        let Some(tx) = run.iter_mut().find(|t| {
            t.answer == Answer::Pending && t.txid == datagram[8..20] && canonical(t.server) == from
        }) else {
            return false;
        };
        let Ok(msg) = Message::from_bytes(datagram) else {
            return false;
        };
        if !msg.has_method(BINDING) {
            return false;
        }
        tx.answer = if msg.has_class(MessageClass::Success) {
            match mapped_address(&msg) {
                Some(addr) => Answer::Mapped(canonical(addr)),
                None => Answer::Refused,
            }
        } else {
            Answer::Refused
        };
        self.finish_if_done(now);
        true
    }

    /// Time passed: retransmits, gives up silent servers, starts periodic runs.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(run) = self.run.as_mut() {
            let mut resend = [false; 2];
            for (i, tx) in run.iter_mut().enumerate() {
                if tx.answer != Answer::Pending || tx.deadline > now {
                    continue;
                }
                if tx.requests < self.config.max_requests {
                    tx.requests += 1;
                    tx.rto = (tx.rto * 2).min(self.config.max_rto);
                    tx.deadline = now + tx.rto;
                    resend[i] = true;
                } else {
                    tx.answer = Answer::TimedOut;
                }
            }
            for (i, r) in resend.into_iter().enumerate() {
                if r {
                    self.enqueue(i);
                }
            }
            self.finish_if_done(now);
        } else if let (Some(at), Some(servers)) = (self.next_run, self.servers) {
            if at <= now {
                self.begin(now, servers);
            }
        }
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.run {
            Some(run) => run
                .iter()
                .filter(|t| t.answer == Answer::Pending)
                .map(|t| t.deadline)
                .min(),
            None => self.next_run,
        }
    }

    /// The next Binding Request to send from the WireGuard socket: `len` bytes at the start of
    /// `out`, to `dst`.
    ///
    /// # Panics
    /// If `out` is shorter than [`REQUEST_LEN`].
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> Option<Transmit> {
        assert!(out.len() >= REQUEST_LEN, "STUN output buffer too small");
        let i = self.queue[0]?;
        self.queue = [self.queue[1], None];
        let tx = &self.run.as_ref()?[i];
        let mtype = MessageType::from_class_method(MessageClass::Request, BINDING);
        let mut w = Message::builder(
            mtype,
            transaction_id(&tx.txid),
            MessageWriteMutSlice::new(&mut out[..REQUEST_LEN]),
        );
        w.add_fingerprint()
            .expect("REQUEST_LEN has room for FINGERPRINT");
        Some(Transmit {
            dst: tx.server,
            len: w.finish(),
        })
    }

    /// A finished run's outcome, when it differs from the one this returned last (the first
    /// outcome always): what to tell the coordinator.
    pub fn poll_event(&mut self) -> Option<Discovery> {
        self.event.take()
    }

    fn begin(&mut self, now: Instant, servers: [SocketAddr; 2]) {
        let rto = self.config.initial_rto;
        let tx = |server, txid| Transaction {
            server,
            txid,
            requests: 1,
            rto,
            deadline: now + rto,
            answer: Answer::Pending,
        };
        let first = self.txids.next_txid();
        let second = self.txids.next_txid();
        self.run = Some([tx(servers[0], first), tx(servers[1], second)]);
        self.queue = [Some(0), Some(1)];
        self.next_run = None;
    }

    fn enqueue(&mut self, i: usize) {
        if self.queue.contains(&Some(i)) {
            return;
        }
        if let Some(slot) = self.queue.iter_mut().find(|s| s.is_none()) {
            *slot = Some(i);
        }
    }

    fn finish_if_done(&mut self, now: Instant) {
        let Some(run) = &self.run else {
            return;
        };
        if run.iter().any(|t| t.answer == Answer::Pending) {
            return;
        }
        let mapped = [0, 1].map(|i| match run[i].answer {
            Answer::Mapped(addr) => Some(addr),
            _ => None,
        });
        let nat = match mapped {
            _ if canonical(run[0].server) == canonical(run[1].server) => NatKind::Unknown,
            [Some(a), Some(b)] if a == b => NatKind::EndpointIndependent,
            [Some(_), Some(_)] => NatKind::Symmetric,
            _ => NatKind::Unknown,
        };
        let discovery = Discovery {
            reflexive: mapped[0].or(mapped[1]),
            nat,
            mapped,
        };
        let complete = mapped.iter().all(Option::is_some);
        self.run = None;
        self.queue = [None; 2];
        self.next_run = Some(
            now + if complete {
                self.config.rerun_interval
            } else {
                self.config.retry_interval
            },
        );
        self.result = Some(discovery);
        let key = |d: &Discovery| (d.reflexive, d.nat);
        if self.reported.as_ref().map(key) != Some(key(&discovery)) {
            self.reported = Some(discovery);
            self.event = Some(discovery);
        }
    }
}

fn transaction_id(txid: &TxId) -> TransactionId {
    let mut wide = [0u8; 16];
    wide[4..].copy_from_slice(txid);
    TransactionId::from(u128::from_be_bytes(wide))
}

fn mapped_address(msg: &Message<'_>) -> Option<SocketAddr> {
    if let Ok(xor) = msg.attribute::<XorMappedAddress>() {
        return Some(xor.addr(msg.transaction_id()));
    }
    let raw = msg.raw_attribute(MAPPED_ADDRESS)?;
    MappedSocketAddr::from_raw(&raw).ok().map(|m| m.addr())
}

/// IPv4-mapped IPv6 addresses (what a dual-stack socket reports) as plain IPv4.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(ip) => SocketAddr::new(ip.to_canonical(), addr.port()),
        IpAddr::V4(_) => addr,
    }
}

#[cfg(test)]
pub(crate) mod tests;
