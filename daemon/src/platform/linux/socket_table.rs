//! The local addresses of listening sockets, from the kernel's tables (`/proc/net/tcp`, `tcp6`,
//! `udp`, `udp6` of the daemon's network namespace).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use warren_proto::disco::PortProto;

/// TCP sockets in LISTEN; for UDP, sockets not connected to a peer (state CLOSE) receive
/// datagrams from anyone.
const TCP_LISTEN: &str = "0A";
const UDP_UNCONNECTED: &str = "07";

/// Where listening TCP sockets (or unconnected UDP ones) are bound; empty when the tables
/// cannot be read.
pub fn bound(proto: PortProto) -> Vec<SocketAddr> {
    let (files, state) = match proto {
        PortProto::Tcp => (["/proc/net/tcp", "/proc/net/tcp6"], TCP_LISTEN),
        PortProto::Udp => (["/proc/net/udp", "/proc/net/udp6"], UDP_UNCONNECTED),
    };
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|table| in_state(&table, state))
        .collect()
}

/// The local addresses of the table's sockets in `state` (after its header line).
fn in_state(table: &str, state: &str) -> Vec<SocketAddr> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let (local, _remote, st) = (cols.nth(1)?, cols.next()?, cols.next()?);
            if st != state {
                return None;
            }
            let (ip, port) = parse_local(local)?;
            Some(SocketAddr::new(ip, port))
        })
        .collect()
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
            IpAddr::V6(Ipv6Addr::from(b))
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
   4: garbage 00000000:0000 0A
";
    const TCP6: &str =
        "  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:6598 00000000000000000000000000000000:0000 0A
   1: 00000000000000000000000001000000:6599 00000000000000000000000000000000:0000 0A
   2: 0000000000000000FFFF00000200406400:1F93 00000000000000000000000000000000:0000 0A
   3: 0000000000000000FFFF000002004064:1F93 00000000000000000000000000000000:0000 0A
";

    fn addrs(v: &[&str]) -> Vec<SocketAddr> {
        v.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn listening_sockets_of_the_v4_table() {
        assert_eq!(
            in_state(TCP, TCP_LISTEN),
            addrs(&["0.0.0.0:3389", "127.0.0.1:8080", "100.64.0.2:8082"]),
            "the established 100.64.0.2:22 and the garbage line are left out"
        );
        assert_eq!(in_state(TCP, UDP_UNCONNECTED), addrs(&[]), "wrong state");
    }

    #[test]
    fn listening_sockets_of_the_v6_table() {
        assert_eq!(
            in_state(TCP6, TCP_LISTEN),
            addrs(&["[::]:26008", "[::1]:26009", "[::ffff:100.64.0.2]:8083"]),
            "an address of the wrong length is left out"
        );
    }
}
