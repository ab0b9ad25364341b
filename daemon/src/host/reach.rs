//! Can friends on the internet reach the coordinator this PC hosts? A pure function of the
//! router's answers to our port-mapping requests, in the words the CLI and GUI show.

use std::net::{IpAddr, SocketAddr};
use warren_proto::api::{ReachState, Reachability};
use warren_proto::control::msg::Published;

/// One port the hosted coordinator needs forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port {
    pub local: u16,
    pub tcp: bool,
    /// `None` while the router has not answered yet; `Some(None)`: no mapping.
    pub mapped: Option<Option<SocketAddr>>,
}

impl Port {
    pub fn udp(local: u16) -> Port {
        Port {
            local,
            tcp: false,
            mapped: None,
        }
    }

    pub fn tcp(local: u16) -> Port {
        Port {
            local,
            tcp: true,
            mapped: None,
        }
    }
}

/// The ports a coordinator on control port `p` listens on: QUIC and TCP+TLS on `p`, STUN on
/// `p+1` and `p+2`, the relay on `p+3` (all UDP but the TCP one).
pub fn ports(p: u16) -> Vec<Port> {
    vec![
        Port::udp(p),
        Port::tcp(p),
        Port::udp(p + 1),
        Port::udp(p + 2),
        Port::udp(p + 3),
    ]
}

/// What to tell the person hosting. `control` is the coordinator's control port, `lan` the
/// addresses friends on the same network use, `running` whether the coordinator runs now.
pub fn reachability(
    control: u16,
    ports: &[Port],
    lan: &[SocketAddr],
    running: bool,
) -> Reachability {
    let lan_ip = lan
        .iter()
        .find(|a| a.is_ipv4())
        .or(lan.first())
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "this PC".into());
    let forward = format!(
        "forward UDP ports {control}-{} and TCP port {control} to {lan_ip} in your router's \
         settings",
        control + 3
    );
    let lan = lan.to_vec();
    if !running {
        return Reachability {
            state: ReachState::Checking,
            public: None,
            lan,
            message: "Warren's coordinator on this PC is starting (or restarting after a \
                      failure); friends can connect again in a few seconds"
                .into(),
        };
    }
    if ports.iter().any(|p| p.mapped.is_none()) {
        return Reachability {
            state: ReachState::Checking,
            public: None,
            lan,
            message: "Asking your router to forward Warren's ports; friends on your own network \
                      can join already"
                .into(),
        };
    }
    let mapped: Vec<(Port, SocketAddr)> = ports
        .iter()
        .filter_map(|p| p.mapped.flatten().map(|m| (*p, m)))
        .collect();
    let all = mapped.len() == ports.len();
    match (all, published(control, ports)) {
        (true, Some(p)) => {
            let public = p.address;
            Reachability {
                state: ReachState::Reachable,
                public: Some(public),
                lan,
                message: format!(
                    "Reachable from the internet at {public}: friends anywhere can join with \
                     an invite"
                ),
            }
        }
        (true, None) => Reachability {
            state: ReachState::LanOnly,
            public: None,
            lan,
            message: format!(
                "Your router forwards Warren's ports, but from several public addresses, so \
                 friends on the internet cannot reach this PC reliably: {forward}. Friends \
                 on your own network can join now"
            ),
        },
        _ => {
            let missing: Vec<String> = ports
                .iter()
                .filter(|p| !matches!(p.mapped, Some(Some(_))))
                .map(|p| format!("{} {}", if p.tcp { "TCP" } else { "UDP" }, p.local))
                .collect();
            let why = if mapped.is_empty() {
                "your router did not accept a port mapping (UPnP, NAT-PMP and PCP are off or \
                 missing)"
                    .to_string()
            } else {
                format!("your router did not forward {}", missing.join(", "))
            };
            Reachability {
                state: ReachState::LanOnly,
                public: None,
                lan,
                message: format!(
                    "Friends on the internet cannot reach this PC yet: {why}. Turn on UPnP in \
                     your router's settings, or {forward}. Friends on your own network can \
                     join now; for friends elsewhere you can also use a coordinator on a \
                     public server"
                ),
            }
        }
    }
}

/// The public address friends dial and the public numbers of the other ports there, when
/// every port is forwarded from one public address. Other public port numbers than the local
/// ones are fine: the coordinator tells a host that dialed the public address the public
/// ones, and an invite carries the TCP address too when it has another port.
pub fn published(control: u16, ports: &[Port]) -> Option<Published> {
    let ext = |tcp: bool, local: u16| {
        ports
            .iter()
            .find(|p| p.tcp == tcp && p.local == local)
            .and_then(|p| p.mapped.flatten())
    };
    let all: Vec<SocketAddr> = ports
        .iter()
        .map(|p| p.mapped.flatten())
        .collect::<Option<_>>()?;
    let ip: IpAddr = all.first()?.ip();
    if all.iter().any(|m| m.ip() != ip) {
        return None;
    }
    let quic = ext(false, control)?;
    let tcp = ext(true, control)?;
    Some(Published {
        address: quic,
        tcp: (tcp != quic).then_some(tcp),
        stun_ports: [
            ext(false, control + 1)?.port(),
            ext(false, control + 2)?.port(),
        ],
        relay_port: ext(false, control + 3)?.port(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lan() -> Vec<SocketAddr> {
        vec!["192.168.1.20:7443".parse().unwrap()]
    }

    fn answered(p: u16, f: impl Fn(&Port) -> Option<SocketAddr>) -> Vec<Port> {
        ports(p)
            .into_iter()
            .map(|mut port| {
                port.mapped = Some(f(&port));
                port
            })
            .collect()
    }

    #[test]
    fn every_port_forwarded_as_asked_is_reachable() {
        let ps = answered(7443, |p| {
            Some(SocketAddr::new("198.51.100.7".parse().unwrap(), p.local))
        });
        let r = reachability(7443, &ps, &lan(), true);
        assert_eq!(r.state, ReachState::Reachable);
        assert_eq!(r.public, Some("198.51.100.7:7443".parse().unwrap()));
        assert!(r.message.contains("198.51.100.7:7443"), "{}", r.message);
        assert_eq!(r.lan, lan());
    }

    #[test]
    fn no_port_mapping_says_what_to_do() {
        let r = reachability(7443, &answered(7443, |_| None), &lan(), true);
        assert_eq!(r.state, ReachState::LanOnly);
        assert_eq!(r.public, None);
        for needle in [
            "did not accept a port mapping",
            "Turn on UPnP",
            "forward UDP ports 7443-7446 and TCP port 7443 to 192.168.1.20",
            "own network can join now",
        ] {
            assert!(r.message.contains(needle), "{needle:?} in {}", r.message);
        }
    }

    #[test]
    fn a_missing_port_or_other_port_numbers_are_not_reachable() {
        let ps = answered(7443, |p| {
            (!p.tcp).then(|| SocketAddr::new("198.51.100.7".parse().unwrap(), p.local))
        });
        let r = reachability(7443, &ps, &lan(), true);
        assert_eq!(r.state, ReachState::LanOnly);
        assert!(
            r.message.contains("did not forward TCP 7443"),
            "{}",
            r.message
        );
        // TCP from another public address than UDP.
        let ps = answered(7443, |p| {
            let ip = if p.tcp {
                "198.51.100.8"
            } else {
                "198.51.100.7"
            };
            Some(SocketAddr::new(ip.parse().unwrap(), p.local))
        });
        let r = reachability(7443, &ps, &lan(), true);
        assert_eq!(r.state, ReachState::LanOnly);
        assert!(
            r.message.contains("several public addresses"),
            "{}",
            r.message
        );
        assert_eq!(published(7443, &ps), None);
    }

    #[test]
    fn other_public_port_numbers_are_published() {
        let ps = answered(7443, |p| {
            Some(SocketAddr::new(
                "198.51.100.7".parse().unwrap(),
                p.local + 100,
            ))
        });
        let r = reachability(7443, &ps, &lan(), true);
        assert_eq!(r.state, ReachState::Reachable);
        assert_eq!(r.public, Some("198.51.100.7:7543".parse().unwrap()));
        assert_eq!(
            published(7443, &ps),
            Some(Published {
                address: "198.51.100.7:7543".parse().unwrap(),
                tcp: None,
                stun_ports: [7544, 7545],
                relay_port: 7546,
            })
        );
        // TCP on another public port than QUIC: published as its own address.
        let mut tcp_apart = ps.clone();
        tcp_apart[1].mapped = Some(Some("198.51.100.7:9000".parse().unwrap()));
        assert_eq!(
            published(7443, &tcp_apart).and_then(|p| p.tcp),
            Some("198.51.100.7:9000".parse().unwrap())
        );
        let mut two_ips = ps.clone();
        two_ips[4].mapped = Some(Some("198.51.100.8:7546".parse().unwrap()));
        assert_eq!(published(7443, &two_ips), None);
        assert_eq!(
            reachability(7443, &two_ips, &lan(), true).state,
            ReachState::LanOnly
        );
    }

    #[test]
    fn checking_until_every_port_has_an_answer_or_while_restarting() {
        let mut ps = answered(7443, |_| None);
        ps[3].mapped = None;
        assert_eq!(
            reachability(7443, &ps, &lan(), true).state,
            ReachState::Checking
        );
        let r = reachability(7443, &answered(7443, |_| None), &lan(), false);
        assert_eq!(r.state, ReachState::Checking);
        assert!(r.message.contains("restarting"), "{}", r.message);
    }
}
