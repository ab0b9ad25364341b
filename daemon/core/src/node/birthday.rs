//! The `Node`'s side of a birthday run ([`crate::path::birthday`]): when to start one, the
//! side sockets it asks the shell for, and the socket that won.
//!
//! Runs are wanted only after a "call me maybe" (the coordinator introduced the peer), when
//! this host's NAT and the peer's call for it ([`role`]) and the peer has a reflexive address
//! and no proven path. When they start — several at once, the rest in line, failed ones again
//! after a backoff — is [`schedule`]'s business; a run we start on our own is announced to the
//! peer through the relay ([`DiscoMsg::Birthday`]), whose request starts its run at once. A
//! proven path, the peer's removal or the run's own bounds end a run.
//!
//! Outputs for the shell: [`Node::poll_side_event`] (open sockets, keep the winner for an
//! address, close a run's sockets) and [`Node::poll_side_transmit`] (the hard side's pings,
//! each from a side socket). The easy side's probes leave through the main socket, in
//! [`Node::poll_transmit`]. What a side socket receives goes to
//! [`Node::handle_side_datagram`].

use super::{Inbound, Node, PeerId, Route, Transmit};
use crate::counters::DropReason;
use crate::path::birthday::{role, Birthday, BirthdayConfig, BirthdayEvent, Phase, Role};
use crate::path::CandidateKind;
use blake2::{Blake2s256, Digest};
use std::net::SocketAddr;
use std::time::Instant;
use warren_proto::control::msg::NatKind;
use warren_proto::datagram::{classify, DatagramKind};
use warren_proto::disco::DiscoMsg;
use warren_proto::key::NodeKey;

mod schedule;

pub use schedule::{Schedule, Start};

/// One extra UDP socket of the shell: socket `index` of birthday run `run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SideSocket {
    pub run: u32,
    pub index: u16,
}

/// What the shell must do with its side sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SideEvent {
    /// Open up to `count` UDP sockets (indices `0..count`, any local port, the family of the
    /// peer's address) and report how many opened with [`Node::side_sockets_opened`].
    Open { run: u32, count: u16, ipv6: bool },
    /// Close every other socket of the run; keep `socket` and send everything addressed to
    /// `dst` from it (feed what it receives to [`Node::handle_side_datagram`]).
    Keep { socket: SideSocket, dst: SocketAddr },
    /// Close every socket of the run, a kept one too.
    Close { run: u32 },
}

#[derive(Debug)]
pub(super) struct Run {
    id: u32,
    peer: PeerId,
    plan: Birthday,
}

/// A side socket that won, and the peer whose traffic it carries.
#[derive(Debug, Clone, Copy)]
pub(super) struct Kept {
    peer: PeerId,
    socket: SideSocket,
}

impl Node {
    /// The NAT kind the coordinator reported for a peer (from its STUN answers).
    pub fn set_peer_nat(&mut self, key: &NodeKey, nat: NatKind) {
        if let Some(p) = self.peer_id(key).and_then(|id| self.peers[id].as_mut()) {
            p.nat = nat;
        }
    }

    /// Whether a birthday run toward peer `id` could help now, and our role in it.
    fn birthday_role(&self, id: PeerId) -> Option<(Role, SocketAddr)> {
        let ours = self.discovery.result().map_or(NatKind::Unknown, |d| d.nat);
        let peer = self.peers[id].as_ref()?;
        let role = role(ours, peer.nat)?;
        let target = peer.reflexive?;
        (peer.config.relay && peer.paths.best_path().is_none()).then_some((role, target))
    }

    /// After a "call me maybe" for peer `id`: a run is wanted if everything calls for one.
    pub(super) fn maybe_start_birthday(&mut self, now: Instant, id: PeerId) {
        if self.birthday_role(id).is_none() {
            return;
        }
        self.birthday_schedule.introduced(id);
        self.start_due_birthdays(now);
    }

    /// The peer started a run toward us and asks for ours ([`DiscoMsg::Birthday`]).
    pub(super) fn birthday_requested(&mut self, now: Instant, id: PeerId) {
        if self.birthday_role(id).is_none() {
            return;
        }
        if self.birthday_schedule.requested(now, id) {
            self.start_birthday(now, id, Start::Asked);
        }
    }

    /// Starts the runs the schedule says are due.
    fn start_due_birthdays(&mut self, now: Instant) {
        while let Some((id, why)) = self.birthday_schedule.poll_start(now) {
            if self.birthday_role(id).is_some() {
                self.start_birthday(now, id, why);
            } else {
                self.birthday_schedule.forget(id);
            }
        }
    }

    fn start_birthday(&mut self, now: Instant, id: PeerId, why: Start) {
        let Some((role, target)) = self.birthday_role(id) else {
            return;
        };
        // A socket that won an earlier run but lost its path: a new run replaces it.
        self.release_kept(id);
        let nonce = self.next_nonce();
        let hash = Blake2s256::new()
            .chain_update(nonce)
            .chain_update(b"warren birthday")
            .finalize();
        let seed = u64::from_le_bytes(hash[..8].try_into().expect("8 bytes"));
        let salt: [u8; 8] = hash[8..16].try_into().expect("8 bytes");
        self.birthday_runs = self.birthday_runs.wrapping_add(1);
        let plan = Birthday::new(now, role, target, BirthdayConfig::default(), seed, salt);
        if why == Start::Ours {
            // The peer must run at the same time: ask it, through whatever reaches it now.
            let route = self.peers[id]
                .as_ref()
                .and_then(|p| super::route_of(p, &self.relays));
            if let Some(route) = route {
                let tx_id = plan.tx_id_of_start();
                self.pongs
                    .push_back((id, route, DiscoMsg::Birthday { tx_id }));
            }
        }
        self.birthday.push(Run {
            id: self.birthday_runs,
            peer: id,
            plan,
        });
    }

    /// Closes the side socket kept for peer `id`, if any.
    pub(super) fn release_kept(&mut self, id: PeerId) {
        let events = &mut self.side_events;
        self.side_kept.retain(|k| {
            if k.peer == id {
                events.push_back(SideEvent::Close { run: k.socket.run });
            }
            k.peer != id
        });
    }

    /// Peer `id` went away: a run toward it ends at once, and its sockets close.
    pub(super) fn end_birthday_with(&mut self, id: PeerId) {
        self.birthday_schedule.forget(id);
        let events = &mut self.side_events;
        self.birthday.retain_mut(|run| {
            if run.peer != id {
                return true;
            }
            run.plan.cancel();
            if run.plan.poll_event() == Some(BirthdayEvent::CloseSockets) {
                events.push_back(SideEvent::Close { run: run.id });
            }
            false
        });
    }

    pub(super) fn birthday_timeout(&self) -> Option<Instant> {
        self.birthday
            .iter()
            .filter_map(|r| r.plan.poll_timeout())
            .chain(self.birthday_schedule.poll_timeout())
            .min()
    }

    /// Time passed, or anything else that may concern the runs: moves them on, applies what
    /// they report, and starts the ones now due.
    pub(super) fn pump_birthday(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.birthday.len() {
            if self.pump_run(now, i) {
                let run = self.birthday.remove(i);
                let found = matches!(run.plan.phase(), Phase::Won(_) | Phase::Found(_));
                self.birthday_schedule.ended(now, run.peer, found);
            } else {
                i += 1;
            }
        }
        self.start_due_birthdays(now);
    }

    /// Moves run `i` on; returns whether it is over.
    fn pump_run(&mut self, now: Instant, i: usize) -> bool {
        let run = &mut self.birthday[i];
        let id = run.peer;
        match self.peers[id].as_mut() {
            Some(peer) if peer.paths.best_path().is_none() => {}
            // A plain path came, or the peer left.
            _ => run.plan.cancel(),
        }
        if run.plan.poll_timeout().is_some_and(|t| t <= now) {
            run.plan.handle_timeout(now);
        }
        while let Some(e) = run.plan.poll_event() {
            let target = run.plan.target();
            match e {
                BirthdayEvent::OpenSockets(count) => self.side_events.push_back(SideEvent::Open {
                    run: run.id,
                    count,
                    ipv6: target.is_ipv6(),
                }),
                BirthdayEvent::Won(index) => {
                    let socket = SideSocket { run: run.id, index };
                    self.side_events.push_back(SideEvent::Keep {
                        socket,
                        dst: target,
                    });
                    self.side_kept.push(Kept { peer: id, socket });
                    if let Some(p) = self.peers[id].as_mut() {
                        p.paths.probe(now, target, CandidateKind::Reflexive);
                        self.disco_dirty.push_back(id);
                    }
                }
                BirthdayEvent::Found(addr) => {
                    if let Some(p) = self.peers[id].as_mut() {
                        p.paths.probe(now, addr, CandidateKind::Observed);
                        self.disco_dirty.push_back(id);
                    }
                }
                BirthdayEvent::CloseSockets => {
                    self.side_events.push_back(SideEvent::Close { run: run.id })
                }
            }
        }
        run.plan.is_over()
    }

    /// A pong from peer `id` that no plain probe claimed: maybe the answer to a birthday probe.
    pub(super) fn birthday_pong(
        &mut self,
        now: Instant,
        id: PeerId,
        from: SocketAddr,
        tx: &[u8; 12],
    ) {
        if let Some(run) = self.birthday.iter_mut().find(|r| r.peer == id) {
            if run.plan.handle_pong(from, tx) {
                self.pump_birthday(now);
            }
        }
    }

    /// The next thing to do with side sockets. Apply it before sending what
    /// [`Self::poll_transmit`] returns next: a kept socket changes where datagrams go.
    pub fn poll_side_event(&mut self) -> Option<SideEvent> {
        self.side_events.pop_front()
    }

    /// The shell opened `n` of the sockets [`SideEvent::Open`] asked for (fewer when the
    /// file-descriptor limit was near).
    pub fn side_sockets_opened(&mut self, now: Instant, run: u32, n: u16) {
        self.note_time(now);
        match self.birthday.iter_mut().find(|r| r.id == run) {
            Some(r) => r.plan.sockets_opened(now, n),
            // The run ended meanwhile: the sockets go again.
            _ => self.side_events.push_back(SideEvent::Close { run }),
        }
        self.pump_birthday(now);
    }

    /// The next ping to send from a side socket (hard side of a run).
    pub fn poll_side_transmit(&mut self, out: &mut [u8]) -> Option<(SideSocket, Transmit)> {
        if !self.up {
            return None;
        }
        let (run_id, peer, probe) = self
            .birthday
            .iter_mut()
            .filter(|r| r.plan.role() == Role::Hard)
            .find_map(|r| Some((r.id, r.peer, r.plan.poll_transmit()?)))?;
        let socket = SideSocket {
            run: run_id,
            index: probe.socket?,
        };
        let ping = DiscoMsg::Ping { tx_id: probe.tx_id };
        let t = self.seal_disco(peer, Route::Direct(probe.dst), ping, out)?;
        Some((socket, t))
    }

    /// The easy side's next probe, from the main socket.
    pub(super) fn poll_easy_probe(&mut self, out: &mut [u8]) -> Option<Transmit> {
        let (peer, probe) = self
            .birthday
            .iter_mut()
            .filter(|r| r.plan.role() == Role::Easy)
            .find_map(|r| Some((r.peer, r.plan.poll_transmit()?)))?;
        let ping = DiscoMsg::Ping { tx_id: probe.tx_id };
        self.seal_disco(peer, Route::Direct(probe.dst), ping, out)
    }

    /// A datagram received on a side socket. A kept socket's datagrams are the peer's, as if
    /// from the main socket. On a socket of the running birthday, only an authenticated disco
    /// message of that run's peer counts, from the address it pinged: its socket wins (apply
    /// the [`SideEvent::Keep`] before sending), and the message is then handled as usual.
    pub fn handle_side_datagram(
        &mut self,
        now: Instant,
        socket: SideSocket,
        from: SocketAddr,
        datagram: &[u8],
        out: &mut [u8],
    ) -> Inbound {
        self.note_time(now);
        if self.side_kept.iter().any(|k| k.socket == socket) {
            return self.handle_datagram(now, from, datagram, out);
        }
        let Some(run) = self.birthday.iter().find(|r| r.id == socket.run) else {
            self.counters.drop(DropReason::Unhandled);
            return Inbound::Nothing;
        };
        let peer = run.peer;
        let authentic = classify(datagram) == DatagramKind::Disco
            && self.peers[peer].as_ref().is_some_and(|p| {
                warren_proto::disco::sender(datagram).is_ok_and(|s| s == p.public_key())
                    && p.disco.as_ref().is_some_and(|k| k.open(datagram).is_ok())
            });
        let won = authentic
            && self.up
            && self
                .birthday
                .iter_mut()
                .find(|r| r.id == socket.run)
                .is_some_and(|r| r.plan.handle_side_disco(socket.index, from));
        if !won {
            self.counters.drop(DropReason::Unhandled);
            return Inbound::Nothing;
        }
        self.pump_birthday(now);
        self.handle_datagram(now, from, datagram, out)
    }
}

#[cfg(test)]
mod tests;
