//! What listens on a port of this host, from the system's socket tables (read by
//! `platform::socket_table`): for `warren check` questions from peers.

use crate::platform::socket_table;
use std::net::{IpAddr, SocketAddr};
use warren_proto::disco::{Listening, PortProto};
use warren_proto::overlay::{OVERLAY_V4, OVERLAY_V6};

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
    verdict(&socket_table::bound(proto), port)
}

/// The verdict for `port` over the local addresses of listening TCP (or unconnected UDP)
/// sockets: bound where peers reach it (the wildcard or an overlay address), only elsewhere,
/// or not at all.
pub fn verdict(bound: &[SocketAddr], port: u16) -> Listening {
    let mut found = Listening::Nothing;
    for addr in bound.iter().filter(|a| a.port() == port) {
        // A v4-mapped wildcard or address is the v4 one (a dual-stack socket's).
        let ip = addr.ip().to_canonical();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn bound() -> Vec<SocketAddr> {
        [
            "0.0.0.0:3389",
            "127.0.0.1:8080",
            "100.64.0.2:8082",
            "[::]:26008",
            "[::1]:26009",
            "[::ffff:100.64.0.3]:8083",
            "[::ffff:0.0.0.0]:8084",
            "192.168.1.5:8085",
            "[fd7a:115c:a1e0::5]:8085",
            "[fd57:6172:7265:6e00::9]:8086",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect()
    }

    #[test]
    fn peers_learn_nothing_of_programs_they_could_not_reach() {
        let b = bound();
        assert_eq!(for_peer(verdict(&b, 8080)), Listening::Nothing, "127.0.0.1");
        assert_eq!(for_peer(verdict(&b, 26009)), Listening::Nothing, "[::1]");
        assert_eq!(for_peer(verdict(&b, 3389)), Listening::Overlay);
    }

    #[test]
    fn listening_sockets_by_address() {
        let b = bound();
        for (port, want, what) in [
            (3389, Listening::Overlay, "0.0.0.0"),
            (8080, Listening::OtherAddress, "127.0.0.1"),
            (8082, Listening::Overlay, "100.64.0.2"),
            (26008, Listening::Overlay, "[::]"),
            (26009, Listening::OtherAddress, "[::1]"),
            (8083, Listening::Overlay, "v4-mapped overlay address"),
            (8084, Listening::Overlay, "v4-mapped wildcard"),
            (8085, Listening::OtherAddress, "LAN and non-overlay ULA"),
            (8086, Listening::Overlay, "overlay IPv6"),
            (3390, Listening::Nothing, "nothing bound"),
        ] {
            assert_eq!(verdict(&b, port), want, "{what}");
        }
    }

    #[test]
    fn finds_this_processs_own_sockets() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let udp = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        let tcp_port = tcp.local_addr().unwrap().port();
        let udp_port = udp.local_addr().unwrap().port();
        assert_eq!(lookup(tcp_port, PortProto::Tcp), Listening::OtherAddress);
        assert_eq!(
            answer_for_peer(tcp_port, PortProto::Tcp),
            Listening::Nothing
        );
        assert_eq!(lookup(udp_port, PortProto::Udp), Listening::Overlay);
        drop(tcp);
        assert_eq!(
            lookup(tcp_port, PortProto::Tcp),
            Listening::Nothing,
            "closed"
        );
    }
}
