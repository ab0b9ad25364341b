//! The local addresses of listening sockets, from the IP Helper's extended TCP and UDP tables
//! (IPv4 and IPv6 each).

use std::ffi::c_void;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ptr;
use warren_proto::disco::PortProto;
use windows_sys::Win32::Foundation::{ERROR_INSUFFICIENT_BUFFER, NO_ERROR};
use windows_sys::Win32::NetworkManagement::IpHelper::{
    GetExtendedTcpTable, GetExtendedUdpTable, MIB_TCP6ROW_OWNER_PID, MIB_TCP6TABLE_OWNER_PID,
    MIB_TCPROW_OWNER_PID, MIB_TCPTABLE_OWNER_PID, MIB_UDP6ROW_OWNER_PID, MIB_UDP6TABLE_OWNER_PID,
    MIB_UDPROW_OWNER_PID, MIB_UDPTABLE_OWNER_PID, TCP_TABLE_OWNER_PID_LISTENER,
    UDP_TABLE_OWNER_PID,
};
use windows_sys::Win32::Networking::WinSock::{AF_INET, AF_INET6};

/// Where listening TCP sockets (or UDP ones) are bound; empty when Windows will not say.
/// Windows' UDP table does not tell connected sockets from the others, so every UDP socket
/// counts as one that receives from anyone.
pub fn bound(proto: PortProto) -> Vec<SocketAddr> {
    match proto {
        PortProto::Tcp => {
            let v4 = rows::<MIB_TCPROW_OWNER_PID>(
                std::mem::offset_of!(MIB_TCPTABLE_OWNER_PID, table),
                |buf, size| tcp_table(buf, size, AF_INET),
            )
            .into_iter()
            .map(|r| v4(r.dwLocalAddr, r.dwLocalPort));
            let v6 = rows::<MIB_TCP6ROW_OWNER_PID>(
                std::mem::offset_of!(MIB_TCP6TABLE_OWNER_PID, table),
                |buf, size| tcp_table(buf, size, AF_INET6),
            )
            .into_iter()
            .map(|r| v6(r.ucLocalAddr, r.dwLocalScopeId, r.dwLocalPort));
            v4.chain(v6).collect()
        }
        PortProto::Udp => {
            let v4 = rows::<MIB_UDPROW_OWNER_PID>(
                std::mem::offset_of!(MIB_UDPTABLE_OWNER_PID, table),
                |buf, size| udp_table(buf, size, AF_INET),
            )
            .into_iter()
            .map(|r| v4(r.dwLocalAddr, r.dwLocalPort));
            let v6 = rows::<MIB_UDP6ROW_OWNER_PID>(
                std::mem::offset_of!(MIB_UDP6TABLE_OWNER_PID, table),
                |buf, size| udp_table(buf, size, AF_INET6),
            )
            .into_iter()
            .map(|r| v6(r.ucLocalAddr, r.dwLocalScopeId, r.dwLocalPort));
            v4.chain(v6).collect()
        }
    }
}

fn tcp_table(buf: *mut c_void, size: &mut u32, family: u16) -> u32 {
    // SAFETY: `buf` is null or holds `*size` writable bytes (see `rows`).
    unsafe {
        GetExtendedTcpTable(
            buf,
            size,
            0,
            u32::from(family),
            TCP_TABLE_OWNER_PID_LISTENER,
            0,
        )
    }
}

fn udp_table(buf: *mut c_void, size: &mut u32, family: u16) -> u32 {
    // SAFETY: as for `tcp_table`.
    unsafe { GetExtendedUdpTable(buf, size, 0, u32::from(family), UDP_TABLE_OWNER_PID, 0) }
}

/// The table's address (in network byte order) and port (in network byte order, in the low 16
/// bits) as a socket address.
fn v4(addr: u32, port: u32) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V4(Ipv4Addr::from(addr.to_ne_bytes())),
        port_of(port),
    )
}

/// The scope is kept for a link-local address only, where it names the link (Wine reports one
/// for `::1` as well).
fn v6(addr: [u8; 16], scope_id: u32, port: u32) -> SocketAddr {
    let ip = Ipv6Addr::from(addr);
    let scope_id = if ip.is_unicast_link_local() {
        scope_id
    } else {
        0
    };
    SocketAddr::V6(std::net::SocketAddrV6::new(ip, port_of(port), 0, scope_id))
}

fn port_of(dw: u32) -> u16 {
    u16::from_be(dw as u16)
}

/// The rows of a table that `fill` writes: a u32 count, then `Row`s from `table_offset` on.
/// `fill` gets a buffer (null at first) and its size, and says `ERROR_INSUFFICIENT_BUFFER` with
/// the size it needs; the table may grow between asking and reading, so it is asked again.
fn rows<Row: Copy>(table_offset: usize, fill: impl Fn(*mut c_void, &mut u32) -> u32) -> Vec<Row> {
    // u64s, so that the rows Windows writes are aligned.
    let mut buf: Vec<u64> = Vec::new();
    let mut size = 0u32;
    for _ in 0..8 {
        let ptr = if buf.is_empty() {
            ptr::null_mut()
        } else {
            buf.as_mut_ptr().cast()
        };
        match fill(ptr, &mut size) {
            NO_ERROR if !buf.is_empty() => {
                // SAFETY: the buffer's u64s, seen as the bytes they are.
                let bytes =
                    unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), buf.len() * 8) };
                let filled = (size as usize).min(bytes.len());
                return read_rows(&bytes[..filled], table_offset);
            }
            ERROR_INSUFFICIENT_BUFFER => buf = vec![0; (size as usize).div_ceil(8)],
            _ => return Vec::new(),
        }
    }
    Vec::new()
}

/// The rows of a filled table, as many as its count says and its bytes hold. `Row` is one of
/// the IP Helper's rows: plain u32s and bytes, any bit pattern valid.
fn read_rows<Row: Copy>(table: &[u8], table_offset: usize) -> Vec<Row> {
    let Some(count) = table.get(..4) else {
        return Vec::new();
    };
    let count = u32::from_ne_bytes(count.try_into().expect("4 bytes")) as usize;
    let row = std::mem::size_of::<Row>();
    (0..count)
        .map_while(|i| table.get(table_offset + i * row..table_offset + (i + 1) * row))
        // SAFETY: `row` bytes of the table, a `Row` of plain data.
        .map(|b| unsafe { b.as_ptr().cast::<Row>().read_unaligned() })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_tcp_listener_and_a_udp_socket_of_this_process() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let udp = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        let udp6 = std::net::UdpSocket::bind("[::1]:0").unwrap();
        assert!(
            bound(PortProto::Tcp).contains(&tcp.local_addr().unwrap()),
            "{:?} in {:?}",
            tcp.local_addr(),
            bound(PortProto::Tcp)
        );
        let udps = bound(PortProto::Udp);
        assert!(udps.contains(&udp.local_addr().unwrap()), "{udps:?}");
        assert!(udps.contains(&udp6.local_addr().unwrap()), "{udps:?}");
        assert!(
            !bound(PortProto::Udp).contains(&tcp.local_addr().unwrap()),
            "a TCP port is not a UDP one"
        );
    }

    #[test]
    fn ports_are_in_network_byte_order() {
        let dw = u32::from(u16::from_ne_bytes(8080u16.to_be_bytes()));
        assert_eq!(port_of(dw), 8080);
        assert_eq!(
            v4(u32::from_ne_bytes([100, 64, 0, 2]), dw),
            "100.64.0.2:8080".parse().unwrap()
        );
    }

    #[test]
    fn rows_beyond_the_filled_size_are_not_read() {
        // A count of 3 rows of 8 bytes after a 4-byte count, but only 2 of them there.
        let mut table = 3u32.to_ne_bytes().to_vec();
        table.extend([1; 8]);
        table.extend([2; 8]);
        let rows: Vec<[u8; 8]> = read_rows(&table, 4);
        assert_eq!(rows, vec![[1; 8], [2; 8]]);
        assert!(read_rows::<[u8; 8]>(&table[..3], 4).is_empty(), "no count");
    }
}
