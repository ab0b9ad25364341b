//! `warren check`: probe a peer's port through the overlay from this host's own stack, ask the
//! peer's daemon what listens there (disco, on the same path), and turn the two into a verdict.
//!
//! | probe                | peer's daemon            | verdict                         |
//! |----------------------|--------------------------|---------------------------------|
//! | TCP connected        | —                        | reachable                       |
//! | refused (RST / ICMP) | anything                 | nothing listening               |
//! | silent               | answered: listening      | firewall drops it (TCP); UDP: reachable (a datagram gets no reply) |
//! | silent               | answered: nothing there  | firewall drops it (the kernel would have refused) |
//! | silent               | no answer                | unreachable                     |

use super::{status, ApiState};
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::time::timeout;
use warren_proto::api::{
    find_peer, ApiError, CheckReport, ErrorCode, Response, Verdict, CHECK_TIMEOUT_MS,
};
use warren_proto::disco::{Listening, PortProto};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    Answered,
    Refused,
    Silent,
}

pub async fn check(state: &ApiState, query: &str, port: u16, proto: PortProto) -> Response {
    let peers = status::build(state).peers;
    if let Some((ip, via)) = behind_a_route(&peers, query) {
        return check_lan_host(ip, &via, port, proto).await;
    }
    let peer = match find_peer(&peers, query) {
        Ok(p) => p.clone(),
        Err(e) => return ApiError::new(ErrorCode::NotFound, e).into(),
    };
    let Some(ip) = peer.overlay_ip else {
        let e = format!("{} has no overlay address", peer.name);
        return ApiError::new(ErrorCode::Other, e).into();
    };
    let wait = Duration::from_millis(CHECK_TIMEOUT_MS);
    let (probe, listening) = tokio::join!(
        probe(SocketAddr::new(ip, port), proto, wait),
        ask_peer(state, &peer.public_key, port, proto, wait)
    );
    let (verdict, detail) = verdict(&peer.name, ip, port, proto, probe, listening);
    Response::Check(CheckReport {
        peer: peer.name,
        overlay_ip: Some(ip),
        port,
        proto,
        verdict,
        peer_listening: listening,
        detail,
    })
}

/// `query` is an address in a LAN routed through a peer (subnet routes): that address and
/// the peer's name.
fn behind_a_route(
    peers: &[warren_proto::api::PeerStatus],
    query: &str,
) -> Option<(IpAddr, String)> {
    let ip: IpAddr = query.trim().parse().ok()?;
    peers.iter().find_map(|p| {
        p.routes
            .iter()
            .filter(|r| r.routed)
            .filter_map(|r| r.prefix.parse::<ipnet::IpNet>().ok())
            .any(|n| n.contains(&ip))
            .then(|| (ip, p.name.clone()))
    })
}

/// A host on a peer's LAN runs no Warren daemon to ask: the probe alone decides.
async fn check_lan_host(ip: IpAddr, via: &str, port: u16, proto: PortProto) -> Response {
    let wait = Duration::from_millis(CHECK_TIMEOUT_MS);
    let probe = probe(SocketAddr::new(ip, port), proto, wait).await;
    let what = format!("{port}/{}", proto.name());
    let (verdict, detail) = match probe {
        Probe::Answered => (
            Verdict::Reachable,
            format!("{what} on {ip} (on {via}'s network) is reachable through Warren"),
        ),
        Probe::Refused => (
            Verdict::NothingListening,
            format!(
                "nothing listening on {ip} for {what}: is the program (server) running on that \
                 computer?"
            ),
        ),
        Probe::Silent => (
            Verdict::Unreachable,
            format!(
                "{ip} did not answer on {what} through {via}: is that computer on, and does its \
                 firewall allow {what} from {via}'s network?"
            ),
        ),
    };
    Response::Check(CheckReport {
        peer: format!("{ip} via {via}"),
        overlay_ip: Some(ip),
        port,
        proto,
        verdict,
        peer_listening: None,
        detail,
    })
}

fn verdict(
    name: &str,
    ip: IpAddr,
    port: u16,
    proto: PortProto,
    probe: Probe,
    listening: Option<Listening>,
) -> (Verdict, String) {
    let what = format!("{port}/{}", proto.name());
    match (probe, listening) {
        (Probe::Answered, _) => (
            Verdict::Reachable,
            format!("{what} on {name} ({ip}) is reachable through Warren"),
        ),
        (Probe::Refused, Some(Listening::OtherAddress)) => (
            Verdict::NothingListening,
            format!(
                "nothing listening on {name}'s Warren address for {what}: a program listens on \
                 that port on another address only (e.g. 127.0.0.1); make it listen on \
                 0.0.0.0 or {ip}"
            ),
        ),
        (Probe::Refused, _) => (
            Verdict::NothingListening,
            format!(
                "nothing listening on {name} for {what}: is the program (server) running there, \
                 and listening on all addresses (0.0.0.0) rather than 127.0.0.1 only?"
            ),
        ),
        (Probe::Silent, Some(Listening::Overlay)) if proto == PortProto::Udp => (
            Verdict::Reachable,
            format!(
                "{what} on {name} ({ip}): a program listens there and nothing refused the \
                 datagram (UDP confirms no more than that)"
            ),
        ),
        (Probe::Silent, Some(Listening::Overlay)) => (
            Verdict::FirewallDrops,
            format!(
                "{name}'s firewall drops it: a program listens on {what}, but the connection \
                 got no answer; allow {what} on the Warren interface on {name}"
            ),
        ),
        (Probe::Silent, Some(_)) => (
            Verdict::FirewallDrops,
            format!(
                "{name}'s firewall drops it: {what} got no answer (not even a refusal), and \
                 nothing listens there on its Warren address either"
            ),
        ),
        (Probe::Silent, None) => (
            Verdict::Unreachable,
            format!("{name} is unreachable: neither {what} nor {name}'s Warren daemon answered"),
        ),
    }
}

/// One connection attempt (TCP) or one empty datagram (UDP) from this host's own stack.
async fn probe(to: SocketAddr, proto: PortProto, wait: Duration) -> Probe {
    let refused = |e: &std::io::Error| e.kind() == ErrorKind::ConnectionRefused;
    match proto {
        PortProto::Tcp => match timeout(wait, tokio::net::TcpStream::connect(to)).await {
            Ok(Ok(_)) => Probe::Answered,
            Ok(Err(e)) if refused(&e) => Probe::Refused,
            _ => Probe::Silent,
        },
        PortProto::Udp => {
            let bind: SocketAddr = if to.is_ipv4() {
                "0.0.0.0:0".parse().expect("literal")
            } else {
                "[::]:0".parse().expect("literal")
            };
            let Ok(socket) = tokio::net::UdpSocket::bind(bind).await else {
                return Probe::Silent;
            };
            if socket.connect(to).await.is_err() || socket.send(&[]).await.is_err() {
                return Probe::Silent;
            }
            // A refusal (ICMP port unreachable) comes back as an error on the connected socket.
            let mut buf = [0u8; 64];
            match timeout(wait, socket.recv(&mut buf)).await {
                Ok(Ok(_)) => Probe::Answered,
                Ok(Err(e)) if refused(&e) => Probe::Refused,
                _ => Probe::Silent,
            }
        }
    }
}

/// The peer daemon's answer about its port, or `None` within `wait`.
async fn ask_peer(
    state: &ApiState,
    key: &warren_proto::key::NodeKey,
    port: u16,
    proto: PortProto,
    wait: Duration,
) -> Option<Listening> {
    let tx = state
        .dataplane
        .node()
        .ask_port(std::time::Instant::now(), key, port, proto)
        .ok()?;
    state.dataplane.flush_now();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(l) = state.dataplane.node().take_port_answer(&tx) {
            return Some(l);
        }
        if tokio::time::Instant::now() >= deadline {
            state.dataplane.node().cancel_port_question(&tx);
            return None;
        }
        // The answer arrives on the data plane's receive thread; look again shortly.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_combination_has_its_verdict() {
        let ip: IpAddr = "100.64.0.2".parse().unwrap();
        let v = |proto, probe, l| verdict("bob", ip, 3389, proto, probe, l).0;
        use Listening::*;
        use PortProto::*;
        assert_eq!(v(Tcp, Probe::Answered, None), Verdict::Reachable);
        assert_eq!(
            v(Tcp, Probe::Refused, Some(Nothing)),
            Verdict::NothingListening
        );
        assert_eq!(v(Tcp, Probe::Refused, None), Verdict::NothingListening);
        assert_eq!(v(Tcp, Probe::Silent, Some(Overlay)), Verdict::FirewallDrops);
        assert_eq!(v(Tcp, Probe::Silent, Some(Nothing)), Verdict::FirewallDrops);
        assert_eq!(v(Tcp, Probe::Silent, None), Verdict::Unreachable);
        assert_eq!(v(Udp, Probe::Silent, Some(Overlay)), Verdict::Reachable);
        assert_eq!(v(Udp, Probe::Silent, Some(Nothing)), Verdict::FirewallDrops);
        assert_eq!(
            v(Udp, Probe::Refused, Some(Nothing)),
            Verdict::NothingListening
        );
        let (_, why) = verdict("bob", ip, 3389, Tcp, Probe::Refused, Some(OtherAddress));
        assert!(why.contains("another address only"), "{why}");
    }
}
