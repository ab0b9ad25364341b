//! [`Birthday`]: the punch of last resort between a symmetric NAT and an endpoint-independent
//! one, free of I/O.
//!
//! A symmetric NAT (the "hard" side) gives every new destination a new public port; against
//! fully random allocation nothing the other side learned from STUN predicts it. The plain
//! probes of [`super::PeerPaths`] then only work when the "easy" side lets anything in (public,
//! full cone). Against a port-restricted easy side, both sides play the birthday paradox, as
//! Tailscale describes it:
//! - the hard side opens many extra UDP sockets ("side sockets") and pings the easy side's
//!   reflexive address from each: every socket gets its own random public port (a mapping
//!   that lets the easy side's address in). The pings themselves are refused by the easy
//!   side's filter, unless it has already sent to that very port;
//! - the easy side pings many ports of the hard side's public IP from its one socket, which
//!   opens its filter for each of them.
//!
//! A probe that lands on one of the hard side's mappings gets through both NATs: it reaches
//! that side socket, whose pong (or later ping) comes back through the hole the probe opened.
//! With `s` mappings among the 64 512 ports from 1024 up, `n` probes all miss with probability
//! `(1 − s/64 512)^n`: 256 sockets × 2 048 probes miss once in ~3 400 tries (99.97 %), 256 ×
//! 256 about a third of the time.
//!
//! Port *prediction* comes first, cheaply: a symmetric NAT that allocates ports one after
//! another puts new mappings just above the port its STUN answers showed (the reflexive
//! port the coordinator passed on), so the easy side's first [`BirthdayConfig::predict_window`]
//! probes go to the ports right above it; against random allocation they cost nothing extra.
//!
//! Bounds: the hard side sends at most `sockets × hard_rounds` pings, the easy side at most
//! `probes`, both paced in batches; a run ends by itself at [`BirthdayConfig::max_duration`]
//! after it was created, on success, or when cancelled (a plain path appeared, the peer went
//! away). The caller starts a run only for a peer the coordinator introduced, when the NAT
//! kinds call for it ([`role`]), and at most one run at a time (the side sockets cost file
//! descriptors).
//!
//! # Call order
//! 1. [`Birthday::new`] when the coordinator introduced the peer; nothing is sent before
//!    [`BirthdayConfig::start_after`] (the plain probes' chance to find a path; cancel the run
//!    with [`Birthday::cancel`] if they do).
//! 2. Inputs, with the time: [`handle_timeout`](Birthday::handle_timeout) when
//!    [`poll_timeout`](Birthday::poll_timeout) is reached; hard side:
//!    [`sockets_opened`](Birthday::sockets_opened) after [`BirthdayEvent::OpenSockets`],
//!    [`handle_side_disco`](Birthday::handle_side_disco) for every authenticated disco message
//!    from the peer on a side socket; easy side: [`handle_pong`](Birthday::handle_pong) for
//!    authenticated pongs no other machine claimed.
//! 3. After every input: [`poll_event`](Birthday::poll_event) until `None` (apply events before
//!    sending), [`poll_transmit`](Birthday::poll_transmit) until `None` (seal a ping with the
//!    given tx id for the peer; send it from the side socket given, or the main socket), then
//!    read `poll_timeout` again.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use warren_proto::control::msg::NatKind;
use warren_proto::disco::TxId;

/// Lowest port a NAT hands out (Linux masquerade's range is 1024–65535).
const FIRST_PORT: u32 = 1024;
/// How many ports from [`FIRST_PORT`] up to 65535.
const PORT_SPACE: u32 = 65536 - FIRST_PORT;

/// Which side of the birthday punch this host plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Behind the symmetric NAT: opens many sockets (many mappings), pings from each.
    Hard,
    /// Behind the endpoint-independent NAT: probes many ports of the hard side's IP.
    Easy,
}

/// The role this host plays against a peer, from both NAT kinds as STUN found them; `None`
/// when a birthday punch cannot help (both symmetric: two random sets of mappings would need
/// ~64k² tries) or is not needed (no symmetric NAT: the plain probes punch through).
pub fn role(ours: NatKind, theirs: NatKind) -> Option<Role> {
    match (ours, theirs) {
        (NatKind::Symmetric, NatKind::EndpointIndependent) => Some(Role::Hard),
        (NatKind::EndpointIndependent, NatKind::Symmetric) => Some(Role::Easy),
        _ => None,
    }
}

/// Sizes and pacing of a run. The defaults: 256 side sockets × 2 048 probes (99.97 %), the
/// probes paced at ~1 000 a second (2 s), the hard side's pings in three rounds a second apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BirthdayConfig {
    /// Wait after the introduction before anything is sent: the plain probes usually find a
    /// path within a few round trips when one exists, and cancel the run.
    pub start_after: Duration,
    /// Side sockets the hard side asks for (one public port each).
    pub sockets: u16,
    /// Pings per side socket; a later round gets through a filter that an earlier probe of
    /// the easy side opened after the first ping was refused.
    pub hard_rounds: u8,
    pub hard_round_interval: Duration,
    /// Extra wait of the easy side, so the hard side's mappings exist when its probes arrive.
    pub easy_delay: Duration,
    /// Ports of the hard side's IP the easy side probes.
    pub probes: u16,
    /// The first probes go to the ports just above the hard side's reflexive port.
    pub predict_window: u16,
    /// Packets sent together, and the time between batches.
    pub batch: u16,
    pub batch_interval: Duration,
    /// How long after its last packet a run waits for an answer before it gives up.
    pub linger: Duration,
}

impl Default for BirthdayConfig {
    fn default() -> Self {
        Self {
            start_after: Duration::from_millis(1000),
            sockets: 256,
            hard_rounds: 3,
            hard_round_interval: Duration::from_millis(1000),
            easy_delay: Duration::from_millis(300),
            probes: 2048,
            predict_window: 32,
            batch: 16,
            batch_interval: Duration::from_millis(15),
            linger: Duration::from_millis(1500),
        }
    }
}

impl BirthdayConfig {
    /// Packets one role sends at most in a run.
    pub fn max_packets(&self, role: Role) -> u32 {
        match role {
            Role::Hard => self.sockets as u32 * self.hard_rounds as u32,
            Role::Easy => self.probes as u32,
        }
    }

    /// Time from [`Birthday::new`] to the run's end at the latest, whatever happens.
    pub fn max_duration(&self, role: Role) -> Duration {
        let batches = |n: u32| n.div_ceil(self.batch.max(1) as u32).saturating_sub(1);
        let sending = match role {
            Role::Hard => {
                self.hard_round_interval * self.hard_rounds.saturating_sub(1) as u32
                    + self.batch_interval * batches(self.sockets as u32)
            }
            Role::Easy => self.easy_delay + self.batch_interval * batches(self.probes as u32),
        };
        self.start_after + sending + self.linger
    }
}

/// What the caller must do besides sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BirthdayEvent {
    /// Hard side: open this many extra UDP sockets (indices `0..n`), then report how many
    /// opened with [`Birthday::sockets_opened`].
    OpenSockets(u16),
    /// Hard side: this side socket heard the peer. Carry the peer's traffic on it from now on
    /// (what is sent to its address goes out of it, what it receives is the peer's), and
    /// close the other side sockets.
    Won(u16),
    /// Easy side: the peer answered from this address; probe it as a path.
    Found(SocketAddr),
    /// The run ended without a winner (or was cancelled): close every side socket.
    CloseSockets,
}

/// One ping to send: from side socket `socket` (hard side) or the main socket (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub socket: Option<u16>,
    pub dst: SocketAddr,
    pub tx_id: TxId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before [`BirthdayConfig::start_after`] (hard side: until the sockets are open).
    Waiting,
    Probing,
    Won(u16),
    Found(SocketAddr),
    /// Gave up, or cancelled.
    Over,
}

/// One birthday run against one peer. See the module documentation.
#[derive(Debug)]
pub struct Birthday {
    role: Role,
    target: SocketAddr,
    config: BirthdayConfig,
    phase: Phase,
    /// When the first packet may go; hard side: `None` while the sockets are being opened.
    start: Option<Instant>,
    end: Instant,
    /// Next batch; `None` when everything is sent.
    next: Option<Instant>,
    sent: u32,
    /// Side sockets the caller opened (hard side).
    sockets: u16,
    asked_sockets: bool,
    /// The easy side's random ports: `FIRST_PORT + (a·i + b) mod PORT_SPACE`, a bijection
    /// because `a` is coprime to `PORT_SPACE` = 2¹⁰·3²·7; distinct ports without a table.
    perm: (u32, u32),
    tx_salt: [u8; 8],
    events: VecDeque<BirthdayEvent>,
    transmits: VecDeque<Probe>,
}

impl Birthday {
    /// A run against the peer at `target` (hard side: the easy side's reflexive address; easy
    /// side: the hard side's reflexive address, whose IP is probed). `seed` picks the ports,
    /// `tx_salt` marks the run's ping ids: both must be random (the shell's RNG).
    pub fn new(
        now: Instant,
        role: Role,
        target: SocketAddr,
        config: BirthdayConfig,
        seed: u64,
        tx_salt: [u8; 8],
    ) -> Self {
        let mut rng = seed;
        let mut a = (splitmix(&mut rng) % PORT_SPACE as u64) as u32 | 1;
        while a.is_multiple_of(3) || a.is_multiple_of(7) {
            a = (a + 2) % PORT_SPACE;
        }
        let b = (splitmix(&mut rng) % PORT_SPACE as u64) as u32;
        let start = now
            + config.start_after
            + match role {
                Role::Hard => Duration::ZERO,
                Role::Easy => config.easy_delay,
            };
        Self {
            role,
            target,
            config,
            phase: Phase::Waiting,
            start: Some(start),
            end: now + config.max_duration(role),
            next: Some(start),
            sent: 0,
            sockets: 0,
            asked_sockets: false,
            perm: (a, b),
            tx_salt,
            events: VecDeque::new(),
            transmits: VecDeque::new(),
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn target(&self) -> SocketAddr {
        self.target
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Packets queued so far.
    pub fn sent(&self) -> u32 {
        self.sent
    }

    /// Nothing more will be sent or reported (its events may still wait in `poll_event`).
    pub fn is_over(&self) -> bool {
        !matches!(self.phase, Phase::Waiting | Phase::Probing)
    }

    /// Whether `tx_id` is one of this run's pings.
    pub fn owns(&self, tx_id: &TxId) -> bool {
        tx_id[..8] == self.tx_salt
    }

    /// The `i`-th port the easy side probes: the prediction window, then the permutation.
    pub fn easy_port(&self, i: u32) -> u16 {
        let window = self.config.predict_window as u32;
        if i < window && self.target.port() != 0 {
            let above = self.target.port() as u32 - FIRST_PORT.min(self.target.port() as u32);
            return (FIRST_PORT + (above + 1 + i) % PORT_SPACE) as u16;
        }
        let (a, b) = self.perm;
        let j = (i - window.min(i)) as u64;
        (FIRST_PORT as u64 + (a as u64 * j + b as u64) % PORT_SPACE as u64) as u16
    }

    /// Hard side: the caller opened `n` of the side sockets it was asked for (fewer when the
    /// file-descriptor limit stood in the way). None: the run is over.
    pub fn sockets_opened(&mut self, now: Instant, n: u16) {
        if self.role != Role::Hard || self.phase != Phase::Waiting || !self.asked_sockets {
            return;
        }
        self.sockets = n.min(self.config.sockets);
        if self.sockets == 0 {
            self.finish(Phase::Over);
            return;
        }
        self.phase = Phase::Probing;
        self.start = Some(now);
        // The end stays where creation put it: a caller that opens late gets less time.
        self.next = Some(now);
    }

    /// Hard side: an authenticated disco message from the peer came in on side socket
    /// `socket` from `from`. One from the peer's reflexive address means that socket's
    /// mapping is the one the easy side found: it wins. Returns whether it did.
    pub fn handle_side_disco(&mut self, socket: u16, from: SocketAddr) -> bool {
        if self.role != Role::Hard
            || self.phase != Phase::Probing
            || socket >= self.sockets
            || from != self.target
        {
            return false;
        }
        self.finish(Phase::Won(socket));
        true
    }

    /// Easy side: an authenticated pong from the peer that answered none of the plain probes.
    /// One answering our probe from the hard side's IP names the port that got through: it is
    /// reported as [`BirthdayEvent::Found`]. Returns whether it did.
    pub fn handle_pong(&mut self, from: SocketAddr, tx_id: &TxId) -> bool {
        if self.role != Role::Easy
            || self.phase != Phase::Probing
            || !self.owns(tx_id)
            || from.ip() != self.target.ip()
        {
            return false;
        }
        self.finish(Phase::Found(from));
        true
    }

    /// A plain path appeared, or the peer went away: stop, and close the side sockets.
    pub fn cancel(&mut self) {
        if !self.is_over() {
            self.finish(Phase::Over);
        }
    }

    /// Time passed: start, send the batches that are due, give up at the end.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_over() {
            return;
        }
        if now >= self.end {
            self.finish(Phase::Over);
            return;
        }
        let started = self.start.is_some_and(|s| now >= s);
        match (self.phase, self.role) {
            (Phase::Waiting, Role::Hard) if started && !self.asked_sockets => {
                self.asked_sockets = true;
                self.start = None;
                self.next = None;
                self.events
                    .push_back(BirthdayEvent::OpenSockets(self.config.sockets));
            }
            (Phase::Waiting, Role::Easy) if started => {
                self.phase = Phase::Probing;
                self.send_due(now);
            }
            (Phase::Probing, _) => self.send_due(now),
            _ => {}
        }
    }

    fn send_due(&mut self, now: Instant) {
        if self.next.is_none_or(|t| now < t) {
            return;
        }
        let total = match self.role {
            Role::Hard => self.sockets as u32 * self.config.hard_rounds as u32,
            Role::Easy => self.config.probes as u32,
        };
        let mut batch = 0;
        while self.sent < total && batch < self.config.batch.max(1) {
            let probe = match self.role {
                Role::Hard => {
                    let k = (self.sent % self.sockets as u32) as u16;
                    if k == 0 && self.sent > 0 && batch > 0 {
                        // A new round starts on its own schedule.
                        break;
                    }
                    Probe {
                        socket: Some(k),
                        dst: self.target,
                        tx_id: self.tx_id(),
                    }
                }
                Role::Easy => Probe {
                    socket: None,
                    dst: SocketAddr::new(self.target.ip(), self.easy_port(self.sent)),
                    tx_id: self.tx_id(),
                },
            };
            self.transmits.push_back(probe);
            self.sent += 1;
            batch += 1;
        }
        self.next = if self.sent >= total {
            None
        } else if self.role == Role::Hard && self.sent.is_multiple_of(self.sockets as u32) {
            let round = self.sent / self.sockets as u32;
            let start = self.start.unwrap_or(now);
            Some((start + self.config.hard_round_interval * round).max(now))
        } else {
            Some(now + self.config.batch_interval)
        };
    }

    /// The id this run's announcement to the peer carries (none of its pings has it).
    pub fn tx_id_of_start(&self) -> TxId {
        let mut id = [0xff; 12];
        id[..8].copy_from_slice(&self.tx_salt);
        id
    }

    fn tx_id(&self) -> TxId {
        let mut id = [0u8; 12];
        id[..8].copy_from_slice(&self.tx_salt);
        id[8..].copy_from_slice(&self.sent.to_be_bytes());
        id
    }

    fn finish(&mut self, phase: Phase) {
        let had_sockets = self.asked_sockets;
        self.phase = phase;
        self.next = None;
        self.transmits.clear();
        match phase {
            Phase::Won(k) => self.events.push_back(BirthdayEvent::Won(k)),
            Phase::Found(a) => self.events.push_back(BirthdayEvent::Found(a)),
            _ if had_sockets => self.events.push_back(BirthdayEvent::CloseSockets),
            _ => {}
        }
    }

    pub fn poll_event(&mut self) -> Option<BirthdayEvent> {
        self.events.pop_front()
    }

    pub fn poll_transmit(&mut self) -> Option<Probe> {
        self.transmits.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next; `None` once the run is over.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_over() {
            return None;
        }
        Some(self.next.map_or(self.end, |n| n.min(self.end)))
    }
}

/// Splitmix64: a small, good-enough generator for a seed the caller drew from the OS.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests;
