//! The member's side of `warren wake`: the magic packet for a MAC a peer asked for, broadcast
//! on each of this host's LAN interfaces (never the overlay's, whose "LAN" is the peers, nor
//! loopback), to its directed broadcast address on the Wake-on-LAN port. The request was
//! authenticated and rate-limited by the core (`node::wake`).

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use warren_daemon_core::node::wake::{magic_packet, WOL_PORT};
use warren_proto::mac::Mac;

/// Sends the magic packet for `mac` on every LAN interface but `tun`; returns the broadcast
/// addresses it went to.
pub fn send(mac: Mac, tun: &str) -> Vec<Ipv4Addr> {
    let packet = magic_packet(mac);
    let mut sent = Vec::new();
    for a in crate::platform::ifaddrs::list() {
        let (std::net::IpAddr::V4(ip), Some(bcast)) = (a.ip, a.broadcast) else {
            continue;
        };
        if a.name == tun || ip.is_loopback() || sent.contains(&bcast) {
            continue;
        }
        // Bound to the interface's own address, so the datagram leaves by that interface
        // whatever the routing table says about the broadcast address.
        let result = UdpSocket::bind(SocketAddrV4::new(ip, 0)).and_then(|s| {
            s.set_broadcast(true)?;
            s.send_to(&packet, SocketAddrV4::new(bcast, WOL_PORT))
        });
        match result {
            Ok(_) => sent.push(bcast),
            Err(e) => tracing::warn!(%mac, interface = %a.name, "wake-on-LAN packet not sent: {e}"),
        }
    }
    if sent.is_empty() {
        tracing::warn!(%mac, "a peer asked to wake {mac}, but this host has no LAN interface with a broadcast address");
    } else {
        tracing::info!(%mac, ?sent, "sent the wake-on-LAN packet a peer asked for");
    }
    sent
}
