//! Demultiplexing of the one UDP socket a daemon owns.
//!
//! WireGuard, STUN and Warren's own path messages ("disco") share the socket, so the receive path
//! classifies every datagram by its first bytes before anything else looks at it. The three
//! families are disjoint by construction:
//! - WireGuard: a little-endian u32 message type 1..=4 (so byte 0 is 1..=4, bytes 1..4 are zero);
//! - STUN (RFC 8489): the two top bits of byte 0 are zero and bytes 4..8 hold the magic cookie;
//! - disco and relay frames: start with [`DISCO_MAGIC`] / [`RELAY_MAGIC`], whose first byte
//!   (`'W'`, 0x57) has top bits `01`.

/// Prefix of every Warren path message; the byte after it is the disco format version.
pub const DISCO_MAGIC: [u8; 4] = *b"WRNd";
/// Prefix of every relay frame (see [`crate::relay`]).
pub const RELAY_MAGIC: [u8; 4] = *b"WRNr";
/// STUN magic cookie (RFC 8489 §5).
pub const STUN_MAGIC_COOKIE: u32 = 0x2112_A442;
const STUN_HEADER_LEN: usize = 20;

/// The four WireGuard message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireGuardKind {
    HandshakeInit,
    HandshakeResponse,
    CookieReply,
    Data,
}

/// What a datagram received on the daemon's socket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatagramKind {
    WireGuard(WireGuardKind),
    Stun,
    Disco,
    Relay,
    Unknown,
}

/// Classifies a datagram by its header alone; it does not validate the body.
pub fn classify(datagram: &[u8]) -> DatagramKind {
    if datagram.len() >= 4 && datagram[1..4] == [0, 0, 0] {
        let kind = match datagram[0] {
            1 => Some(WireGuardKind::HandshakeInit),
            2 => Some(WireGuardKind::HandshakeResponse),
            3 => Some(WireGuardKind::CookieReply),
            4 => Some(WireGuardKind::Data),
            _ => None,
        };
        if let Some(kind) = kind {
            return DatagramKind::WireGuard(kind);
        }
    }
    if datagram.len() > DISCO_MAGIC.len() && datagram.starts_with(&DISCO_MAGIC) {
        return DatagramKind::Disco;
    }
    if datagram.len() > RELAY_MAGIC.len() && datagram.starts_with(&RELAY_MAGIC) {
        return DatagramKind::Relay;
    }
    if datagram.len() >= STUN_HEADER_LEN
        && datagram[0] & 0xC0 == 0
        && datagram[4..8] == STUN_MAGIC_COOKIE.to_be_bytes()
    {
        return DatagramKind::Stun;
    }
    DatagramKind::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wireguard_types_by_first_word() {
        let mut d = [0u8; 32];
        for (t, kind) in [
            (1, WireGuardKind::HandshakeInit),
            (2, WireGuardKind::HandshakeResponse),
            (3, WireGuardKind::CookieReply),
            (4, WireGuardKind::Data),
        ] {
            d[0] = t;
            assert_eq!(classify(&d), DatagramKind::WireGuard(kind));
        }
        d[0] = 5;
        assert_eq!(classify(&d), DatagramKind::Unknown);
        // Reserved bytes must be zero.
        d[0] = 4;
        d[2] = 1;
        assert_eq!(classify(&d), DatagramKind::Unknown);
    }

    #[test]
    fn stun_needs_cookie_and_header_length() {
        let mut d = [0u8; 20];
        d[0] = 0x00;
        d[1] = 0x01; // binding request
        d[4..8].copy_from_slice(&STUN_MAGIC_COOKIE.to_be_bytes());
        assert_eq!(classify(&d), DatagramKind::Stun);
        assert_eq!(classify(&d[..19]), DatagramKind::Unknown);
        d[5] = 0;
        assert_eq!(classify(&d), DatagramKind::Unknown);
    }

    #[test]
    fn disco_magic_and_short_inputs() {
        assert_eq!(classify(b"WRNd\x01rest"), DatagramKind::Disco);
        assert_eq!(classify(b"WRNd"), DatagramKind::Unknown);
        assert_eq!(classify(b""), DatagramKind::Unknown);
        assert_eq!(classify(&[4]), DatagramKind::Unknown);
        assert_eq!(classify(&[4, 0, 0]), DatagramKind::Unknown);
    }

    #[test]
    fn families_never_overlap() {
        // Disco's first byte is neither a WireGuard type nor a possible STUN first byte.
        // (WireGuard and STUN share first bytes; the zero bytes 1..4 vs the cookie split them.)
        let d = DISCO_MAGIC[0];
        assert!(!(1..=4).contains(&d) && d & 0xC0 != 0);
        let mut wg_like_stun = [0u8; 20];
        wg_like_stun[0] = 1;
        wg_like_stun[4..8].copy_from_slice(&STUN_MAGIC_COOKIE.to_be_bytes());
        assert_eq!(
            classify(&wg_like_stun),
            DatagramKind::WireGuard(WireGuardKind::HandshakeInit)
        );
    }
}
