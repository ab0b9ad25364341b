//! What listens on a port of this host, from the kernel's socket tables (`/proc/net/tcp`,
//! `tcp6`, `udp`, `udp6` of the daemon's network namespace): for `warren check` questions from
//! peers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use warren_proto::disco::{Listening, PortProto};
use warren_proto::overlay::{OVERLAY_V4, OVERLAY_V6};

/// TCP sockets in LISTEN; for UDP, sockets not connected to a peer (state CLOSE) receive
/// datagrams from anyone.
const TCP_LISTEN: &str = "0A";
const UDP_UNCONNECTED: &str = "07";

/// The answer a peer gets: whether something listens where it can reach it. A program bound
/// only to 127.0.0.1 or a LAN address is none of a peer's business (a member scanning must not
/// learn what runs privately here), so it reads as nothing.
pub fn answer_for_peer(port: u16, proto: PortProto) -> Listening {
    for_peer(lookup(port, proto))
}

fn for_peer(found: Listening) -> Listening {
    match found {
        Listening::OtherAddress => Listening::Nothing,
        other => other,
    }
}

pub fn lookup(port: u16, proto: PortProto) -> Listening {
    let (files, state) = match proto {
        PortProto::Tcp => (["/proc/net/tcp", "/proc/net/tcp6"], TCP_LISTEN),
        PortProto::Udp => (["/proc/net/udp", "/proc/net/udp6"], UDP_UNCONNECTED),
    };
    let tables: Vec<String> = files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .collect();
    classify(tables.iter().map(String::as_str), port, state)
}

/// The verdict for `port` over the tables' text: bound where peers reach it (the wildcard or
/// an overlay address), only elsewhere, or not at all.
pub fn classify<'a>(tables: impl Iterator<Item = &'a str>, port: u16, state: &str) -> Listening {
    let mut found = Listening::Nothing;
    for line in tables.flat_map(|t| t.lines().skip(1)) {
        let mut cols = line.split_whitespace();
        let (Some(local), Some(_remote), Some(st)) = (cols.nth(1), cols.next(), cols.next()) else {
            continue;
        };
        if st != state {
            continue;
        }
        let Some((ip, p)) = parse_local(local) else {
            continue;
        };
        if p != port {
            continue;
        }
        let on_overlay = match ip {
            IpAddr::V4(v4) => OVERLAY_V4.contains(&v4),
            IpAddr::V6(v6) => OVERLAY_V6.contains(&v6),
        };
        if ip.is_unspecified() || on_overlay {
            return Listening::Overlay;
        }
        found = Listening::OtherAddress;
    }
    found
}

/// `0100007F:0CEA` (IPv4) or 32 hex digits (IPv6), each 32-bit word in host byte order.
fn parse_local(s: &str) -> Option<(IpAddr, u16)> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok()?;
        Some(w.to_ne_bytes())
    };
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            let v6 = Ipv6Addr::from(b);
            // A v4-mapped wildcard or address is the v4 one.
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
        _ => return None,
    };
    Some((ip, port))
}

#[cfg(all(test, target_endian = "little"))]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0D3D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 02004064:0016 0300A8C0:D431 01 00000000:00000000 00:00000000 00000000     0        0 4 1 0 100 0 0 10 0
   3: 02004064:1F92 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5 1 0 100 0 0 10 0
";
    const TCP6: &str =
        "  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:6598 00000000000000000000000000000000:0000 0A
   1: 00000000000000000000000001000000:6599 00000000000000000000000000000000:0000 0A
";

    #[test]
    fn peers_learn_nothing_of_programs_they_could_not_reach() {
        let t = || [TCP, TCP6].into_iter();
        assert_eq!(
            for_peer(classify(t(), 8080, TCP_LISTEN)),
            Listening::Nothing,
            "127.0.0.1"
        );
        assert_eq!(
            for_peer(classify(t(), 0x6599, TCP_LISTEN)),
            Listening::Nothing,
            "[::1]"
        );
        assert_eq!(
            for_peer(classify(t(), 3389, TCP_LISTEN)),
            Listening::Overlay
        );
    }

    #[test]
    fn listening_sockets_by_address() {
        let t = || [TCP, TCP6].into_iter();
        assert_eq!(
            classify(t(), 3389, TCP_LISTEN),
            Listening::Overlay,
            "0.0.0.0:3389"
        );
        assert_eq!(
            classify(t(), 8080, TCP_LISTEN),
            Listening::OtherAddress,
            "127.0.0.1"
        );
        assert_eq!(
            classify(t(), 8082, TCP_LISTEN),
            Listening::Overlay,
            "100.64.0.2"
        );
        assert_eq!(
            classify(t(), 0x6598, TCP_LISTEN),
            Listening::Overlay,
            "[::]"
        );
        assert_eq!(
            classify(t(), 0x6599, TCP_LISTEN),
            Listening::OtherAddress,
            "[::1]"
        );
        assert_eq!(
            classify(t(), 22, TCP_LISTEN),
            Listening::Nothing,
            "established, not listening"
        );
        assert_eq!(classify(t(), 3390, TCP_LISTEN), Listening::Nothing);
        assert_eq!(
            classify(t(), 3389, UDP_UNCONNECTED),
            Listening::Nothing,
            "wrong state"
        );
    }

    #[test]
    fn this_hosts_table_parses() {
        // Whatever runs here, reading it must not fail or panic.
        let _ = lookup(1, PortProto::Tcp);
        let _ = lookup(1, PortProto::Udp);
    }
}
