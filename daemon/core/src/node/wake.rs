//! Wake-on-LAN through a member (`warren wake MAC --via MEMBER`): a sleeping PC hears nothing
//! of the overlay, but a member awake on its LAN can broadcast the magic packet there. The
//! asking host sends the member an authenticated [`DiscoMsg::Wake`] on its current path; the
//! member's core checks and rate-limits it and queues the MAC for the shell, which broadcasts
//! [`magic_packet`] on its LAN interfaces (never the overlay's).
//!
//! Who may ask: only a peer, i.e. a node the coordinator introduced because it shares a network
//! with this host (the disco key proves the sender), and each at most once per [`WAKE_EVERY`]:
//! enough for a person pressing a button, too little to turn a member into a broadcast flooder.

use super::{Node, PeerId, PingError};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};
use warren_proto::disco::DiscoMsg;
use warren_proto::key::NodeKey;
use warren_proto::mac::Mac;

/// One wake per asking peer per this long; more are dropped.
pub const WAKE_EVERY: Duration = Duration::from_secs(1);
/// Wakes waiting for the shell, at most (it takes them every few milliseconds).
pub const MAX_PENDING: usize = 8;
/// Wake-on-LAN's usual port (the discard service); network cards match the payload, any port.
pub const WOL_PORT: u16 = 9;
pub const MAGIC_LEN: usize = 6 + 16 * 6;

/// The magic packet: six 0xff bytes, then the MAC sixteen times.
pub fn magic_packet(mac: Mac) -> [u8; MAGIC_LEN] {
    let mut p = [0xff; MAGIC_LEN];
    for chunk in p[6..].chunks_exact_mut(6) {
        chunk.copy_from_slice(&mac.0);
    }
    p
}

#[derive(Debug, Default)]
pub(super) struct Wakes {
    /// When each peer's last wake was accepted.
    last: HashMap<PeerId, Instant>,
    pending: VecDeque<Mac>,
    pub(super) dropped: u64,
}

impl Node {
    /// Asks `via`'s daemon to send the magic packet for `mac` on its LAN, on its current path.
    pub fn ask_wake(&mut self, now: Instant, via: &NodeKey, mac: Mac) -> Result<(), PingError> {
        self.note_time(now);
        let (id, to, tx_id) = self.disco_to(via)?;
        self.user_ping_out
            .push_back((id, to, DiscoMsg::Wake { tx_id, mac: mac.0 }));
        Ok(())
    }

    /// Peer `id` asks us to wake `mac` on our LAN.
    pub(super) fn wake_requested(&mut self, now: Instant, id: PeerId, mac: [u8; 6]) {
        let w = &mut self.wakes;
        // Only the address of one card: a broadcast or multicast "MAC" wakes nobody.
        let one_card = mac[0] & 1 == 0 && mac != [0; 6];
        let too_soon = w
            .last
            .get(&id)
            .is_some_and(|t| now.saturating_duration_since(*t) < WAKE_EVERY);
        if !one_card || too_soon || w.pending.len() >= MAX_PENDING {
            w.dropped += 1;
            return;
        }
        w.last.insert(id, now);
        w.pending.push_back(Mac(mac));
    }

    /// A MAC to send the magic packet for, on this host's LAN interfaces.
    pub fn take_wake(&mut self) -> Option<Mac> {
        self.wakes.pending.pop_front()
    }

    /// Wake requests refused (too often, bad MAC, queue full).
    pub fn wakes_dropped(&self) -> u64 {
        self.wakes.dropped
    }
}

#[cfg(test)]
mod tests;
