//! The IP packets hosts send into the overlay: IPv4/UDP, with a payload that says whether it
//! is an echo request (answered by the receiving host's "application") or its reply, and a
//! sequence number, so a test counts what arrived and measures round trips.

use std::net::Ipv4Addr;

/// The UDP port the hosts' echo "application" listens on.
pub const ECHO_PORT: u16 = 7;
const REQUEST: u8 = 1;
const REPLY: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    Request(u64),
    Reply(u64),
}

/// An IPv4/UDP packet from `src` to `dst` at the echo port carrying `echo`.
pub fn echo_packet(src: Ipv4Addr, dst: Ipv4Addr, echo: Echo) -> Vec<u8> {
    let (kind, seq) = match echo {
        Echo::Request(s) => (REQUEST, s),
        Echo::Reply(s) => (REPLY, s),
    };
    let mut payload = vec![kind];
    payload.extend_from_slice(&seq.to_be_bytes());
    let total = 20 + 8 + payload.len();
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let sum = checksum(&p[..20]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p[20..22].copy_from_slice(&ECHO_PORT.to_be_bytes());
    p[22..24].copy_from_slice(&ECHO_PORT.to_be_bytes());
    p[24..26].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p[28..].copy_from_slice(&payload);
    p
}

/// The source, destination and echo of a packet [`echo_packet`] made; `None` for others.
pub fn parse_echo(p: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, Echo)> {
    if p.len() != 37 || p[0] != 0x45 || p[9] != 17 || p[22..24] != ECHO_PORT.to_be_bytes() {
        return None;
    }
    let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    let seq = u64::from_be_bytes(p[29..37].try_into().ok()?);
    let echo = match p[28] {
        REQUEST => Echo::Request(seq),
        REPLY => Echo::Reply(seq),
        _ => return None,
    };
    Some((src, dst, echo))
}

fn checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echo_packet_parses_back_and_others_do_not() {
        let (a, b) = (Ipv4Addr::new(100, 64, 0, 1), Ipv4Addr::new(100, 64, 0, 2));
        let p = echo_packet(a, b, Echo::Request(42));
        assert_eq!(parse_echo(&p), Some((a, b, Echo::Request(42))));
        assert_eq!(checksum(&p[..20]), 0, "a valid header sums to zero");
        let mut other = p.clone();
        other[28] = 9;
        assert_eq!(parse_echo(&other), None);
        assert_eq!(parse_echo(&p[..30]), None);
    }
}
