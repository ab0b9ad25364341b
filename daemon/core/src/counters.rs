//! Why packets were dropped, counted. Malformed input never panics and never disappears silently.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Not an IP packet / not a datagram family we know / a WireGuard message of the wrong size.
    Malformed,
    /// Larger than the buffers the data plane works with.
    Oversized,
    /// An overlay destination that no peer owns.
    NoRoute,
    /// Broadcast or multicast (mDNS, IPv6 router solicitations, game discovery): not carried
    /// until the LAN gaming issue replicates it.
    Multicast,
    /// A peer owns the destination but we do not know where to send to yet.
    NoEndpoint,
    /// A WireGuard message for a key or session index we do not have.
    UnknownPeer,
    /// Authentication failed: wrong key, bad tag, bad MAC.
    DecryptFailed,
    /// A data packet whose counter was already seen or is too old.
    Replay,
    /// Data for a session that no longer exists.
    NoSession,
    /// A handshake message that failed for another reason (timestamp, state).
    HandshakeFailed,
    /// A peer sent a packet with an inner source address it does not own.
    SourceNotAllowed,
    /// A message family the daemon does not handle yet (STUN, disco).
    Unhandled,
    /// The kernel refused to send the datagram.
    SendFailed,
    /// The kernel refused the packet on the TUN device.
    TunWriteFailed,
    /// `warren down`: the tunnel carries nothing.
    TunnelDown,
    /// A handshake while many arrive at once, without the cookie that proves its source
    /// address: answered with a cookie instead (WireGuard's defence against spoofed floods).
    UnderLoad,
    /// A disco message sealed by the peer that was seen before or is too old: a replay.
    StaleDisco,
    /// A datagram from an overlay address or from inside a LAN routed through a peer: it came
    /// through the tunnel itself (WireGuard inside WireGuard), never a path.
    Looped,
    /// Bulk traffic arrived faster than this host can encrypt or decrypt it and its queue was
    /// full (see `lanes`): dropped so that TCP slows down instead of the queue growing.
    QueueFull,
}

impl DropReason {
    pub const ALL: [DropReason; 19] = [
        DropReason::Malformed,
        DropReason::Oversized,
        DropReason::NoRoute,
        DropReason::Multicast,
        DropReason::NoEndpoint,
        DropReason::UnknownPeer,
        DropReason::DecryptFailed,
        DropReason::Replay,
        DropReason::NoSession,
        DropReason::HandshakeFailed,
        DropReason::SourceNotAllowed,
        DropReason::Unhandled,
        DropReason::SendFailed,
        DropReason::TunWriteFailed,
        DropReason::TunnelDown,
        DropReason::UnderLoad,
        DropReason::StaleDisco,
        DropReason::Looped,
        DropReason::QueueFull,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::Oversized => "oversized",
            DropReason::NoRoute => "no_route",
            DropReason::Multicast => "multicast",
            DropReason::NoEndpoint => "no_endpoint",
            DropReason::UnknownPeer => "unknown_peer",
            DropReason::DecryptFailed => "decrypt_failed",
            DropReason::Replay => "replay",
            DropReason::NoSession => "no_session",
            DropReason::HandshakeFailed => "handshake_failed",
            DropReason::SourceNotAllowed => "source_not_allowed",
            DropReason::Unhandled => "unhandled",
            DropReason::SendFailed => "send_failed",
            DropReason::TunWriteFailed => "tun_write_failed",
            DropReason::TunnelDown => "tunnel_down",
            DropReason::UnderLoad => "under_load",
            DropReason::StaleDisco => "stale_disco",
            DropReason::Looped => "looped",
            DropReason::QueueFull => "queue_full",
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct Counters {
    dropped: [u64; DropReason::ALL.len()],
}

impl Counters {
    pub fn drop(&mut self, reason: DropReason) {
        self.dropped[reason as usize] += 1;
    }

    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason as usize]
    }

    /// Non-zero counters by name, for status output.
    pub fn dropped_map(&self) -> BTreeMap<String, u64> {
        DropReason::ALL
            .iter()
            .filter(|r| self.dropped(**r) > 0)
            .map(|r| (r.name().to_string(), self.dropped(*r)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_discriminant_order() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
    }

    #[test]
    fn map_lists_only_nonzero() {
        let mut c = Counters::default();
        c.drop(DropReason::NoRoute);
        c.drop(DropReason::NoRoute);
        let m = c.dropped_map();
        assert_eq!(m.len(), 1);
        assert_eq!(m["no_route"], 2);
    }
}
