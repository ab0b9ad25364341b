//! The control channel and the relay over one byte stream (TCP+TLS), for networks that block
//! UDP. Each frame is a 5-byte header — a kind byte and a big-endian u32 length — then the
//! payload: a control frame carries what one [`super::frame`] frame carries over QUIC (the
//! Noise handshake, then JSON messages); a relay frame carries the bytes one relay datagram
//! would (`WRNr`…, see [`crate::relay`]). Lengths are bounded per kind, so a broken or hostile
//! peer costs at most one bounded buffer before the connection is dropped.
//!
//! Pure: the shells read a header, check it here, then read exactly that many bytes.

use super::frame::MAX_FRAME;
use thiserror::Error;

pub const HEADER_LEN: usize = 5;
/// A relay frame is one UDP datagram's worth; anything longer was never a datagram.
pub const MAX_RELAY_FRAME: usize = 65_535;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Control,
    Relay,
}

impl Kind {
    fn byte(self) -> u8 {
        match self {
            Kind::Control => 1,
            Kind::Relay => 2,
        }
    }

    pub fn max_len(self) -> usize {
        match self {
            Kind::Control => MAX_FRAME,
            Kind::Relay => MAX_RELAY_FRAME,
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum StreamError {
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    #[error("{kind:?} frame of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { kind: Kind, len: usize, max: usize },
}

/// The header of a `kind` frame of `len` bytes.
pub fn header(kind: Kind, len: usize) -> Result<[u8; HEADER_LEN], StreamError> {
    check(kind, len)?;
    let mut h = [0u8; HEADER_LEN];
    h[0] = kind.byte();
    h[1..].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(h)
}

/// The kind and payload length a header announces.
pub fn parse_header(h: &[u8; HEADER_LEN]) -> Result<(Kind, usize), StreamError> {
    let kind = match h[0] {
        1 => Kind::Control,
        2 => Kind::Relay,
        other => return Err(StreamError::UnknownKind(other)),
    };
    let len = u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize;
    check(kind, len)?;
    Ok((kind, len))
}

fn check(kind: Kind, len: usize) -> Result<(), StreamError> {
    let max = kind.max_len();
    if len > max {
        return Err(StreamError::TooLarge { kind, len, max });
    }
    Ok(())
}

/// Appends one whole frame (header and payload) to `out`.
pub fn encode(kind: Kind, payload: &[u8], out: &mut Vec<u8>) -> Result<(), StreamError> {
    out.extend_from_slice(&header(kind, payload.len())?);
    out.extend_from_slice(payload);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads frames back the way the shells do: a header, then exactly its length.
    fn decode(mut wire: &[u8]) -> Result<Vec<(Kind, Vec<u8>)>, StreamError> {
        let mut frames = Vec::new();
        while !wire.is_empty() {
            let h: [u8; HEADER_LEN] = wire[..HEADER_LEN].try_into().unwrap();
            let (kind, len) = parse_header(&h)?;
            frames.push((kind, wire[HEADER_LEN..HEADER_LEN + len].to_vec()));
            wire = &wire[HEADER_LEN + len..];
        }
        Ok(frames)
    }

    #[test]
    fn control_and_relay_frames_interleave() {
        let mut wire = Vec::new();
        encode(Kind::Control, b"noise handshake", &mut wire).unwrap();
        encode(Kind::Relay, b"WRNr ping", &mut wire).unwrap();
        encode(Kind::Relay, b"", &mut wire).unwrap();
        encode(Kind::Control, &[7; 3000], &mut wire).unwrap();
        let frames = decode(&wire).unwrap();
        assert_eq!(
            frames,
            [
                (Kind::Control, b"noise handshake".to_vec()),
                (Kind::Relay, b"WRNr ping".to_vec()),
                (Kind::Relay, vec![]),
                (Kind::Control, vec![7; 3000]),
            ]
        );
        assert_eq!(&wire[..HEADER_LEN], &[1, 0, 0, 0, 15]);
    }

    #[test]
    fn sizes_are_bounded_per_kind() {
        assert!(header(Kind::Relay, MAX_RELAY_FRAME).is_ok());
        assert_eq!(
            header(Kind::Relay, MAX_RELAY_FRAME + 1),
            Err(StreamError::TooLarge {
                kind: Kind::Relay,
                len: MAX_RELAY_FRAME + 1,
                max: MAX_RELAY_FRAME
            })
        );
        assert!(header(Kind::Control, MAX_FRAME).is_ok());
        assert!(header(Kind::Control, MAX_FRAME + 1).is_err());
        // A relay-sized limit is enforced on what arrives too, not only on what is sent.
        let mut h = [2, 0, 0, 0, 0];
        h[1..].copy_from_slice(&(MAX_RELAY_FRAME as u32 + 1).to_be_bytes());
        assert!(matches!(
            parse_header(&h),
            Err(StreamError::TooLarge { .. })
        ));
        h[1..].copy_from_slice(&u32::MAX.to_be_bytes());
        h[0] = 1;
        assert!(matches!(
            parse_header(&h),
            Err(StreamError::TooLarge { .. })
        ));
        let mut out = Vec::new();
        assert!(encode(Kind::Relay, &vec![0; MAX_RELAY_FRAME + 1], &mut out).is_err());
        assert!(out.is_empty(), "nothing half-written");
    }

    #[test]
    fn unknown_kinds_are_refused() {
        for k in [0u8, 3, 0x16, 255] {
            assert_eq!(
                parse_header(&[k, 0, 0, 0, 1]),
                Err(StreamError::UnknownKind(k))
            );
        }
    }
}
