//! The daemon's one UDP socket: dual-stack where the host has IPv6, big buffers, GSO/GRO.

use anyhow::{Context, Result};
use quinn_udp::{UdpSockRef, UdpSocketState};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::UdpSocket;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

/// Several MB so a burst of GSO sends or GRO receives does not overflow the socket.
const SOCKET_BUFFER: usize = 8 << 20;

pub struct Udp {
    pub socket: UdpSocket,
    pub state: UdpSocketState,
    /// A dual-stack IPv6 socket: IPv4 peers appear as v4-mapped addresses on it.
    pub dual_stack: bool,
}

impl Udp {
    pub fn bind(port: u16) -> Result<Udp> {
        let (socket, dual_stack) = match bind_v6_dual(port) {
            Ok(s) => (s, true),
            Err(e) => {
                tracing::debug!("no dual-stack socket ({e}); IPv4 only");
                let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
                s.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into())
                    .with_context(|| format!("cannot bind UDP port {port}"))?;
                (s, false)
            }
        };
        set_buffers(&socket);
        let state = UdpSocketState::new(UdpSockRef::from(&socket))?;
        // quinn-udp made it non-blocking; the receive thread waits in poll(2).
        let socket: UdpSocket = socket.into();
        Ok(Udp {
            socket,
            state,
            dual_stack,
        })
    }

    pub fn local_port(&self) -> u16 {
        self.socket.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The address to hand to the kernel for `dst`.
    pub fn to_wire(&self, dst: SocketAddr) -> SocketAddr {
        to_wire(dst, self.dual_stack)
    }
}

fn to_wire(dst: SocketAddr, dual_stack: bool) -> SocketAddr {
    match dst {
        SocketAddr::V4(v4) if dual_stack => {
            SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port())
        }
        other => other,
    }
}

/// Peers are known and shown by their plain address, never the v4-mapped form.
pub fn from_wire(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(v4.into(), v6.port()),
            None => addr,
        },
        v4 => v4,
    }
}

fn bind_v6_dual(port: u16) -> std::io::Result<Socket> {
    let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_only_v6(false)?;
    s.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)).into())?;
    Ok(s)
}

fn set_buffers(s: &Socket) {
    warren_proto::socket_buffers::enlarge(s, SOCKET_BUFFER);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_addresses_round_trip() {
        let v4: SocketAddr = "10.0.0.2:51820".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:10.0.0.2]:51820".parse().unwrap();
        assert_eq!(from_wire(mapped), v4);
        let v6: SocketAddr = "[fd00::1]:5".parse().unwrap();
        assert_eq!(from_wire(v6), v6);
        assert_eq!(to_wire(v4, true), mapped);
        assert_eq!(to_wire(v4, false), v4);
        assert_eq!(to_wire(v6, true), v6);
    }
}
