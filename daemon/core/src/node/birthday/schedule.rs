//! When birthday runs start: several at once within a budget, the rest in line, failed ones
//! again after a backoff — free of I/O, generic over the peer's id.
//!
//! One host behind a symmetric NAT with several peers behind cone NATs needs a run toward each
//! of them, and they are all introduced at the same moment. One run at a time with a minute
//! between tries left all but the first relayed for a minute. Now up to
//! [`MAX_RUNS`] go together (each hard-side run holds its side sockets: the budget is file
//! descriptors and packets), the others wait in line for a slot, and a run that found
//! nothing is tried again after [`BACKOFF`] (2 s, 4 s, 8 s…), at most [`MAX_ATTEMPTS`] times
//! per introduction: bounded in packets and in time.
//!
//! A run only works while the peer runs too, so starts are announced: the caller tells the
//! peer (through the relay) whenever this host starts a run that the peer did not ask for, and
//! a peer's request starts one here at once when a slot is free ([`Schedule::requested`]).
//! A request counts as an attempt, so two hosts cannot keep each other going.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Runs at once: 4 hard-side runs hold 4 × 256 side sockets.
pub const MAX_RUNS: usize = 4;
/// Runs toward one peer per introduction by the coordinator (the first and its retries).
pub const MAX_ATTEMPTS: u8 = 4;
/// Wait after the `n`-th failed run (1-based) before the next: `BACKOFF << (n - 1)`.
pub const BACKOFF: Duration = Duration::from_secs(2);
/// A peer's request is not honoured sooner than this after our last run toward it ended
/// (the same request arriving twice, or a peer asking faster than runs can go).
pub const MIN_GAP: Duration = Duration::from_millis(1500);

/// Why a run starts: the caller announces the ones the peer did not ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Our own decision (the introduction, a slot freed, a retry): tell the peer.
    Ours,
    /// The peer asked for it: it runs already.
    Asked,
}

#[derive(Debug)]
struct Entry<P> {
    peer: P,
    attempts: u8,
    running: bool,
    /// Waiting for a slot (since the introduction, or a request that found none free).
    queued: Option<Start>,
    /// A retry is due at this instant.
    retry_at: Option<Instant>,
    last_end: Option<Instant>,
}

#[derive(Debug)]
pub struct Schedule<P> {
    entries: Vec<Entry<P>>,
    /// Queued peers in order of arrival.
    line: VecDeque<P>,
    max_runs: usize,
}

impl<P: Copy + PartialEq> Default for Schedule<P> {
    fn default() -> Self {
        Self::new(MAX_RUNS)
    }
}

impl<P: Copy + PartialEq> Schedule<P> {
    pub fn new(max_runs: usize) -> Self {
        Self {
            entries: Vec::new(),
            line: VecDeque::new(),
            max_runs: max_runs.max(1),
        }
    }

    fn entry(&mut self, peer: P) -> &mut Entry<P> {
        match self.entries.iter().position(|e| e.peer == peer) {
            Some(i) => &mut self.entries[i],
            None => {
                self.entries.push(Entry {
                    peer,
                    attempts: 0,
                    running: false,
                    queued: None,
                    retry_at: None,
                    last_end: None,
                });
                self.entries.last_mut().expect("just pushed")
            }
        }
    }

    fn running(&self) -> usize {
        self.entries.iter().filter(|e| e.running).count()
    }

    #[cfg(test)]
    pub fn is_running(&self, peer: P) -> bool {
        self.entries.iter().any(|e| e.peer == peer && e.running)
    }

    /// The coordinator introduced `peer` (again): a fresh set of attempts, the first one as
    /// soon as a slot is free.
    pub fn introduced(&mut self, peer: P) {
        let e = self.entry(peer);
        if e.running {
            return;
        }
        e.attempts = 0;
        e.retry_at = None;
        if e.queued.is_none() {
            e.queued = Some(Start::Ours);
            self.line.push_back(peer);
        }
    }

    /// The peer started a run toward us and asks for ours. Returns whether to start one now
    /// (a slot is free); without a free slot it waits at the head of the line. Refused when a
    /// run goes on already, the attempts are spent, or our last run ended just now.
    pub fn requested(&mut self, now: Instant, peer: P) -> bool {
        let full = self.running() >= self.max_runs;
        let e = self.entry(peer);
        if e.running || e.attempts >= MAX_ATTEMPTS || e.last_end.is_some_and(|t| now < t + MIN_GAP)
        {
            return false;
        }
        e.retry_at = None;
        if !full {
            e.queued = None;
            e.running = true;
            e.attempts += 1;
            self.line.retain(|p| *p != peer);
            return true;
        }
        // The peer runs already: ours should follow as soon as anything frees a slot.
        e.queued = Some(Start::Ours);
        self.line.retain(|p| *p != peer);
        self.line.push_front(peer);
        false
    }

    /// The next run to start now, and why; the caller starts it (or, when the peer no longer
    /// needs one, calls [`Self::forget`]) and asks again until `None`.
    pub fn poll_start(&mut self, now: Instant) -> Option<(P, Start)> {
        if self.running() >= self.max_runs {
            return None;
        }
        if let Some(peer) = self.line.pop_front() {
            let e = self.entry(peer);
            let why = e.queued.take().unwrap_or(Start::Ours);
            e.running = true;
            e.attempts += 1;
            return Some((peer, why));
        }
        let e = self
            .entries
            .iter_mut()
            .filter(|e| !e.running && e.retry_at.is_some_and(|t| t <= now))
            .min_by_key(|e| e.retry_at)?;
        e.retry_at = None;
        e.running = true;
        e.attempts += 1;
        Some((e.peer, Start::Ours))
    }

    /// The run toward `peer` ended; `found`: it made a path. One that found nothing is tried
    /// again after the backoff while attempts are left.
    pub fn ended(&mut self, now: Instant, peer: P, found: bool) {
        let e = self.entry(peer);
        e.running = false;
        e.last_end = Some(now);
        e.retry_at = (!found && e.attempts < MAX_ATTEMPTS)
            .then(|| now + BACKOFF * (1u32 << (e.attempts.max(1) - 1)));
    }

    /// The peer no longer needs runs (a path, gone, or not a birthday case any more).
    pub fn forget(&mut self, peer: P) {
        self.entries.retain(|e| e.peer != peer);
        self.line.retain(|p| *p != peer);
    }

    /// When [`Self::poll_start`] has something new to say by the clock alone.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.running() >= self.max_runs {
            return None;
        }
        self.entries
            .iter()
            .filter(|e| !e.running)
            .filter_map(|e| e.retry_at)
            .min()
    }
}

#[cfg(test)]
mod tests;
