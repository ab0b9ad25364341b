//! [`PeerPaths`]: the probing state machine for the direct paths to one peer.

use super::candidate::{Candidate, CandidateKind};
use super::select::{self, Liveness, PathStats};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use warren_proto::disco::{DiscoMsg, TxId};

/// Most addresses tracked for one peer; further candidates are ignored (learned ones are
/// evicted first to make room for advertised ones).
pub const MAX_PATHS: usize = 16;
/// Pings per path whose pongs are still accepted: a pong may answer any of the last few.
const PINGS_REMEMBERED: usize = 4;
/// Bound of the transmit queue: one ping per path, twice over.
const MAX_QUEUED: usize = 2 * MAX_PATHS;

/// Timing of probes and keepalives. The defaults meet the issues' numbers: a probe round pings
/// every candidate at once and every 200 ms for 2 s; an idle chosen path is pinged every 5 s
/// (NAT mappings stay open); a chosen path that owes an answer is pinged every 150 ms, so a
/// live one answers within 300 ms (or three round trips), after which it is suspect (a new
/// probe round, and the node checks its own NAT mapping; any path that answers takes over):
/// after a NAT rebinding, traffic is back before TCP tries a third time (600 ms). A path that owes
/// an answer for 2 s is dropped, so traffic is back on the relay within 3 s of a path dying;
/// without a path, a new round every 10 s finds one that opens later (a network change, a NAT
/// mapping that came back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathConfig {
    /// Time between pings to one candidate during a probe round.
    pub probe_interval: Duration,
    /// Pings per candidate in a probe round, the first sent at once.
    pub probe_attempts: u8,
    /// An idle chosen path is pinged once it has not been heard from for this long.
    pub keepalive_interval: Duration,
    /// While the chosen path owes an answer, it is pinged this often.
    pub heartbeat_interval: Duration,
    /// A chosen path owing an answer for this long (or three of its round trips) is suspect:
    /// a probe round starts, [`PeerPaths::take_suspicion`] tells the node, and a path that
    /// answers (a pong, or the peer's packets from a new address) replaces it at once.
    pub suspect_after: Duration,
    /// A path owing an answer for this long is dead: it is dropped and probing restarts.
    pub reply_timeout: Duration,
    /// Without a proven path, a new probe round starts this long after the last one ended.
    pub retry_interval: Duration,
}

impl Default for PathConfig {
    fn default() -> Self {
        Self {
            probe_interval: Duration::from_millis(200),
            probe_attempts: 10,
            keepalive_interval: Duration::from_secs(5),
            heartbeat_interval: Duration::from_millis(150),
            suspect_after: Duration::from_millis(300),
            reply_timeout: Duration::from_secs(2),
            retry_interval: Duration::from_secs(10),
        }
    }
}

impl PathConfig {
    /// A path heard from stays trusted through one keepalive interval plus its reply timeout.
    pub fn liveness(&self) -> Liveness {
        Liveness {
            trust: self.keepalive_interval + self.reply_timeout,
            reply_timeout: self.reply_timeout,
            suspect_after: self.suspect_after,
        }
    }
}

/// The path [`PeerPaths`] currently recommends as the peer's WireGuard endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BestPath {
    pub addr: SocketAddr,
    pub kind: CandidateKind,
    pub rtt: Duration,
}

/// One tracked address, for status output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathInfo {
    pub addr: SocketAddr,
    pub stats: PathStats,
    /// Pings left in the current probe round.
    pub probes_left: u8,
}

/// Counters for tests and status; they never wrap in practice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathCounters {
    pub pings_sent: u64,
    pub pongs_sent: u64,
    pub pongs_matched: u64,
    /// Pongs whose tx_id matched no recent ping to their source: ignored.
    pub pongs_ignored: u64,
    pub probe_rounds: u64,
    /// Chosen paths given up because they stopped answering.
    pub paths_dropped: u64,
    /// Candidates not tracked because [`MAX_PATHS`] were already.
    pub candidates_refused: u64,
    /// Pings not queued because the caller did not drain `poll_transmit`.
    pub transmits_dropped: u64,
    /// Times the chosen path became suspect (owed an answer for `suspect_after`).
    pub suspicions: u64,
    /// Times the peer's packets from another address replaced a suspect chosen path.
    pub roams: u64,
}

#[derive(Debug, Clone, Copy)]
struct SentPing {
    tx_id: TxId,
    at: Instant,
}

#[derive(Debug)]
struct Path {
    addr: SocketAddr,
    stats: PathStats,
    pings: [Option<SentPing>; PINGS_REMEMBERED],
    next_slot: usize,
    last_ping: Option<Instant>,
    probes_left: u8,
    /// `Some` exactly when `probes_left > 0`.
    next_probe: Option<Instant>,
}

impl Path {
    fn new(addr: SocketAddr, kind: CandidateKind) -> Self {
        Self {
            addr,
            stats: PathStats::new(kind),
            pings: [None; PINGS_REMEMBERED],
            next_slot: 0,
            last_ping: None,
            probes_left: 0,
            next_probe: None,
        }
    }

    /// Forget everything measured: the path is a bare candidate again.
    fn reset(&mut self) {
        self.stats = PathStats::new(self.stats.kind);
        self.pings = [None; PINGS_REMEMBERED];
        self.last_ping = None;
    }

    fn heard(&mut self, now: Instant) {
        self.stats.last_heard = Some(now);
        self.stats.unanswered_since = None;
    }
}

/// Finds and keeps the direct paths to one peer: probes every candidate address when the
/// coordinator says so, proves a path when a pong comes back on it, ranks the proven paths
/// ([`select`]), keeps the chosen one alive and drops it when it stops answering.
///
/// Sans-IO: the caller passes the time into every input, owns the socket, and seals and opens
/// the [`DiscoMsg`]s with `warren_proto::disco`. Transaction ids come from a random salt given
/// at construction and a counter (unique within the run by construction, distinct across runs
/// by the salt; they travel inside the AEAD, so they need not be secret).
///
/// # Call order
/// 1. Inputs, each with the current time:
///    - [`handle_call_me_maybe`](Self::handle_call_me_maybe) when the coordinator introduces
///      the peer or asks to probe again;
///    - [`handle_ping`](Self::handle_ping) / [`handle_pong`](Self::handle_pong) for each disco
///      message the peer sent (after `disco::open` authenticated it); send the pong that
///      `handle_ping` returns to the ping's source;
///    - [`handle_authenticated`](Self::handle_authenticated) for WireGuard packets from the peer
///      (at least once per receive batch) and [`handle_data_sent`](Self::handle_data_sent) for
///      packets sent to [`best_path`](Self::best_path): they keep a busy path alive without
///      pings and let a dead one be noticed within [`PathConfig::reply_timeout`];
///    - [`handle_timeout`](Self::handle_timeout) once [`poll_timeout`](Self::poll_timeout) is
///      reached.
/// 2. After every input: [`poll_transmit`](Self::poll_transmit) until `None` (seal each message
///    for the peer and send it to the address given), then read
///    [`poll_timeout`](Self::poll_timeout) (any input may move it) and
///    [`best_path`](Self::best_path) (any input may change it; use it as the WireGuard
///    endpoint, or the relay when it is `None`).
///
/// Addresses are compared as given: the shell should hand in canonical forms (e.g. no
/// IPv4-mapped IPv6 addresses on one side and plain IPv4 on the other).
#[derive(Debug)]
pub struct PeerPaths {
    config: PathConfig,
    paths: Vec<Path>,
    best: Option<usize>,
    transmits: VecDeque<(SocketAddr, DiscoMsg)>,
    tx_salt: [u8; 8],
    tx_counter: u32,
    counters: PathCounters,
    /// When the next probe round starts while no path is proven.
    next_round: Option<Instant>,
    /// The `unanswered_since` of the chosen path when it was last found suspect: one
    /// suspicion per episode of silence.
    suspected: Option<Instant>,
    /// A suspicion not yet taken by [`take_suspicion`](Self::take_suspicion).
    suspicion_pending: bool,
}

impl PeerPaths {
    /// `tx_salt` must be random (it keeps pongs from an earlier run from matching our pings).
    pub fn new(config: PathConfig, tx_salt: [u8; 8]) -> Self {
        Self {
            config,
            paths: Vec::with_capacity(MAX_PATHS),
            best: None,
            transmits: VecDeque::with_capacity(MAX_QUEUED),
            tx_salt,
            tx_counter: 0,
            counters: PathCounters::default(),
            next_round: None,
            suspected: None,
            suspicion_pending: false,
        }
    }

    pub fn config(&self) -> &PathConfig {
        &self.config
    }

    pub fn counters(&self) -> &PathCounters {
        &self.counters
    }

    /// The path to send the peer's WireGuard traffic on; `None` when no path is proven.
    pub fn best_path(&self) -> Option<BestPath> {
        let p = &self.paths[self.best?];
        Some(BestPath {
            addr: p.addr,
            kind: p.stats.kind,
            rtt: p.stats.rtt?,
        })
    }

    /// Every tracked address, in the order they became known.
    pub fn paths(&self) -> impl Iterator<Item = PathInfo> + '_ {
        self.paths.iter().map(|p| PathInfo {
            addr: p.addr,
            stats: p.stats,
            probes_left: p.probes_left,
        })
    }

    /// The coordinator introduced the peer (or asks to probe again) and listed its candidate
    /// addresses; the peer is told the same at the same time, so both sides' pings open their
    /// NATs for each other. The list replaces the previous one: advertised addresses it no
    /// longer names are forgotten, except the one in use; addresses learned from the peer's
    /// own packets are kept. Then a probe round starts on every address: the first pings are
    /// ready in `poll_transmit` at once.
    pub fn handle_call_me_maybe(&mut self, now: Instant, candidates: &[Candidate]) {
        let best_addr = self.best.map(|i| self.paths[i].addr);
        self.paths.retain(|p| {
            p.stats.kind == CandidateKind::Observed
                || Some(p.addr) == best_addr
                || candidates.iter().any(|c| c.addr == p.addr)
        });
        self.best = best_addr.and_then(|a| self.find(a));
        for c in candidates {
            match self.find(c.addr) {
                Some(i) => {
                    let kind = &mut self.paths[i].stats.kind;
                    // Learned addresses take the advertised kind; advertised ones the more
                    // specific of the two.
                    *kind = if *kind == CandidateKind::Observed {
                        c.kind
                    } else {
                        kind.merge(c.kind)
                    };
                }
                None => {
                    self.add(c.addr, c.kind);
                }
            }
        }
        self.start_round(now);
        self.send_due(now);
    }

    /// An address of the peer found outside the coordinator's list (the answer to a birthday
    /// probe, or the address a winning side socket now reaches): tracked as `kind` unless
    /// known, and pinged at once and for a whole probe round, which proves it when it answers.
    pub fn probe(&mut self, now: Instant, addr: SocketAddr, kind: CandidateKind) {
        let Some(i) = self.find(addr).or_else(|| self.add(addr, kind)) else {
            return;
        };
        if self.config.probe_attempts == 0 {
            return;
        }
        let p = &mut self.paths[i];
        p.probes_left = self.config.probe_attempts;
        p.next_probe = Some(now);
        self.send_due(now);
    }

    /// The peer pinged us from `from`: returns the pong to send back to `from`. The peer just
    /// reached us from there, so `from` becomes a candidate ([`CandidateKind::Observed`] if no
    /// other source named it) and, unless proven or pinged recently, gets a ping of ours (its
    /// pong proves the path for our side too; this is what lets a late "call me maybe", or a
    /// port the coordinator did not know, still end in a path).
    pub fn handle_ping(&mut self, now: Instant, from: SocketAddr, tx_id: TxId) -> DiscoMsg {
        self.counters.pongs_sent += 1;
        let liveness = self.config.liveness();
        let i = self
            .find(from)
            .or_else(|| self.add(from, CandidateKind::Observed));
        if let Some(i) = i {
            let p = &mut self.paths[i];
            if select::is_proven(&p.stats, now, liveness) {
                p.heard(now);
            } else {
                self.ping_back(now, i, self.config.probe_interval);
            }
        }
        DiscoMsg::Pong {
            tx_id,
            observed: from,
        }
    }

    /// A pong came from `from`. If it answers one of the recent pings sent to that very
    /// address, the path is proven, its RTT measured, and the choice of path revisited; returns
    /// whether it did. Unknown or reused tx_ids, and pongs from another address, are ignored.
    pub fn handle_pong(&mut self, now: Instant, from: SocketAddr, tx_id: TxId) -> bool {
        let matched = self.find(from).and_then(|i| {
            let p = &mut self.paths[i];
            let slot = p
                .pings
                .iter_mut()
                .find(|s| s.is_some_and(|s| s.tx_id == tx_id))?;
            let sent = slot.take()?.at;
            Some((i, now.saturating_duration_since(sent)))
        });
        let Some((i, sample)) = matched else {
            self.counters.pongs_ignored += 1;
            return false;
        };
        self.counters.pongs_matched += 1;
        let p = &mut self.paths[i];
        p.stats.rtt = Some(match p.stats.rtt {
            // RFC 6298's smoothing: new = 7/8 old + 1/8 sample.
            Some(rtt) => (rtt * 7 + sample) / 8,
            None => sample,
        });
        p.heard(now);
        // Proven: this path needs no more pings in the current round.
        p.probes_left = 0;
        p.next_probe = None;
        self.reselect(now);
        true
    }

    /// An authenticated WireGuard packet from the peer arrived directly (not via a relay) from
    /// `from`: it counts as news on that path (no keepalive needed while traffic flows). An
    /// address that has not answered a ping yet (one not seen before becomes an
    /// [`CandidateKind::Observed`] candidate) gets a ping, at most one per
    /// [`PathConfig::heartbeat_interval`]. Allocates nothing; cheap enough for every packet.
    ///
    /// Roaming, as WireGuard does it: while the chosen path is suspect (it owes an answer for
    /// [`PathConfig::suspect_after`]), the peer's packets arriving from another address mean
    /// the peer moved (its NAT rebound, it changed networks): that address becomes the chosen
    /// path at once, with the old path's RTT until a ping measures its own.
    pub fn handle_authenticated(&mut self, now: Instant, from: SocketAddr) {
        if let Some(b) = self.best.filter(|&b| self.paths[b].addr == from) {
            self.paths[b].heard(now);
            return;
        }
        let Some(i) = self
            .find(from)
            .or_else(|| self.add(from, CandidateKind::Observed))
        else {
            return;
        };
        let liveness = self.config.liveness();
        if let Some(b) = self
            .best
            .filter(|&b| select::is_suspect(&self.paths[b].stats, now, liveness))
        {
            let old_rtt = self.paths[b].stats.rtt;
            let p = &mut self.paths[i];
            let measured = p.stats.rtt.is_some();
            p.stats.rtt = p.stats.rtt.or(old_rtt);
            p.heard(now);
            self.best = Some(i);
            self.counters.roams += 1;
            if !measured {
                self.ping_back(now, i, self.config.heartbeat_interval);
            }
            return;
        }
        if self.paths[i].stats.rtt.is_some() {
            self.paths[i].heard(now);
        } else {
            self.ping_back(now, i, self.config.heartbeat_interval);
        }
    }

    /// Whether the chosen path became suspect since the last call (once per episode of
    /// silence): the node should check that its own NAT mapping did not change (a new STUN
    /// run, pings to the relay), since a peer whose packets no longer arrive may simply be
    /// sending them to where we used to be.
    pub fn take_suspicion(&mut self) -> bool {
        std::mem::take(&mut self.suspicion_pending)
    }

    /// A WireGuard packet went to the peer on [`best_path`](Self::best_path): the path now owes
    /// an answer. If none comes (the peer's traffic, or a pong to the heartbeat pings this
    /// triggers), the path is dropped after [`PathConfig::reply_timeout`]. Allocates nothing;
    /// call it per packet or once per send batch. Read `poll_timeout` again afterwards.
    pub fn handle_data_sent(&mut self, now: Instant) {
        if let Some(b) = self.best {
            let s = &mut self.paths[b].stats;
            if s.unanswered_since.is_none() {
                s.unanswered_since = Some(now);
            }
        }
    }

    /// Time passed: drops the chosen path if it stopped answering (and starts a new probe round
    /// on every candidate), or, once it is suspect, starts a probe round early; then queues the
    /// pings that are due.
    pub fn handle_timeout(&mut self, now: Instant) {
        let liveness = self.config.liveness();
        if let Some(b) = self.best {
            let stats = self.paths[b].stats;
            if !select::is_proven(&stats, now, liveness) {
                self.paths[b].reset();
                self.best = None;
                self.counters.paths_dropped += 1;
                self.start_round(now);
            } else if select::is_suspect(&stats, now, liveness)
                && self.suspected != stats.unanswered_since
            {
                // Look for another way to the peer while the chosen one may still recover.
                self.suspected = stats.unanswered_since;
                self.suspicion_pending = true;
                self.counters.suspicions += 1;
                self.start_round(now);
            }
        }
        self.reselect(now);
        self.schedule_retry(now);
        self.send_due(now);
        // The round may have just sent its last ping: plan the next one from here.
        self.schedule_retry(now);
    }

    /// Without a proven path and with no round running, plans (or starts) the next round.
    fn schedule_retry(&mut self, now: Instant) {
        let round_running = self.paths.iter().any(|p| p.next_probe.is_some());
        if self.best.is_some() || round_running || self.paths.is_empty() {
            self.next_round = None;
            return;
        }
        match self.next_round {
            Some(at) if now >= at => {
                self.next_round = None;
                self.start_round(now);
            }
            Some(_) => {}
            None => self.next_round = Some(now + self.config.retry_interval),
        }
    }

    /// The next message to send: seal it for the peer and send it to the address.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, DiscoMsg)> {
        self.transmits.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next; `None` when nothing is
    /// pending (no probe round running and no chosen path to watch).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let probes = self.paths.iter().filter_map(|p| p.next_probe).min();
        let watch = self.best.and_then(|b| {
            let p = &self.paths[b];
            let l = self.config.liveness();
            let dead = select::proven_until(&p.stats, l);
            let suspect = select::suspect_at(&p.stats, l)
                .filter(|_| self.suspected != p.stats.unanswered_since);
            let ping = self.next_keepalive(p);
            [dead, suspect, ping].into_iter().flatten().min()
        });
        [probes, watch, self.next_round].into_iter().flatten().min()
    }

    fn find(&self, addr: SocketAddr) -> Option<usize> {
        self.paths.iter().position(|p| p.addr == addr)
    }

    /// Tracks a new address; when full, evicts the oldest learned address that is neither in
    /// use nor proven, and refuses the new one if there is none.
    fn add(&mut self, addr: SocketAddr, kind: CandidateKind) -> Option<usize> {
        if self.paths.len() >= MAX_PATHS {
            let best = self.best;
            let victim = self.paths.iter().enumerate().position(|(i, p)| {
                p.stats.kind == CandidateKind::Observed && Some(i) != best && p.stats.rtt.is_none()
            });
            let Some(v) = victim else {
                self.counters.candidates_refused += 1;
                return None;
            };
            self.paths.remove(v);
            if let Some(b) = self.best.as_mut() {
                if *b > v {
                    *b -= 1;
                }
            }
        }
        self.paths.push(Path::new(addr, kind));
        Some(self.paths.len() - 1)
    }

    fn start_round(&mut self, now: Instant) {
        if self.config.probe_attempts == 0 || self.paths.is_empty() {
            return;
        }
        self.counters.probe_rounds += 1;
        for p in &mut self.paths {
            p.probes_left = self.config.probe_attempts;
            p.next_probe = Some(now);
        }
    }

    fn reselect(&mut self, now: Instant) {
        self.best = select::choose(
            self.paths.iter().map(|p| &p.stats),
            self.best,
            now,
            self.config.liveness(),
        );
    }

    /// When the chosen path `p` needs a ping that is not part of a probe round.
    fn next_keepalive(&self, p: &Path) -> Option<Instant> {
        if p.probes_left > 0 {
            return None;
        }
        match p.stats.unanswered_since {
            // Owing an answer: heartbeat, counted from the later of the first unanswered
            // packet and the last ping.
            Some(since) => {
                let from = p.last_ping.map_or(since, |t| t.max(since));
                Some(from + self.config.heartbeat_interval)
            }
            None => Some(p.stats.last_heard? + self.config.keepalive_interval),
        }
    }

    fn send_due(&mut self, now: Instant) {
        for i in 0..self.paths.len() {
            let p = &mut self.paths[i];
            if p.next_probe.is_some_and(|t| t <= now) {
                p.probes_left -= 1;
                p.next_probe = (p.probes_left > 0).then(|| now + self.config.probe_interval);
                self.ping(now, i);
            }
        }
        if let Some(b) = self.best {
            if self
                .next_keepalive(&self.paths[b])
                .is_some_and(|t| t <= now)
            {
                self.ping(now, b);
            }
        }
    }

    /// Pings path `i` unless a probe round is pinging it or it was pinged less than `gap` ago.
    fn ping_back(&mut self, now: Instant, i: usize, gap: Duration) {
        let p = &self.paths[i];
        if p.probes_left == 0 && p.last_ping.is_none_or(|t| now >= t + gap) {
            self.ping(now, i);
        }
    }

    /// Records a ping to path `i` and queues it. A full queue (a caller that does not drain
    /// `poll_transmit`) loses the ping as the network might; the schedule moves on either way.
    fn ping(&mut self, now: Instant, i: usize) {
        self.tx_counter = self.tx_counter.wrapping_add(1);
        let mut tx_id = [0u8; 12];
        tx_id[..8].copy_from_slice(&self.tx_salt);
        tx_id[8..].copy_from_slice(&self.tx_counter.to_be_bytes());
        let p = &mut self.paths[i];
        p.pings[p.next_slot] = Some(SentPing { tx_id, at: now });
        p.next_slot = (p.next_slot + 1) % PINGS_REMEMBERED;
        p.last_ping = Some(now);
        p.stats.unanswered_since.get_or_insert(now);
        if self.transmits.len() >= MAX_QUEUED {
            self.counters.transmits_dropped += 1;
            return;
        }
        self.counters.pings_sent += 1;
        self.transmits.push_back((p.addr, DiscoMsg::Ping { tx_id }));
    }
}

#[cfg(test)]
mod tests;
