//! `warren check PEER PORT[/tcp|/udp]`: is a program on a peer reachable through Warren, and if
//! not, why.

use crate::disco::{Listening, PortProto};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// How long the daemon waits for a TCP connection or a UDP refusal, and for the peer's answer.
pub const CHECK_TIMEOUT_MS: u64 = 3000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A connection was made (TCP), or the peer listens and nothing refused the datagram (UDP).
    Reachable,
    /// The peer's system refused it: nothing listens there (on its Warren address).
    NothingListening,
    /// The probe went unanswered although the peer's daemon answered over the same path: the
    /// peer's firewall dropped it.
    FirewallDrops,
    /// Neither the probe nor the peer's daemon got through.
    Unreachable,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    pub peer: String,
    pub overlay_ip: Option<IpAddr>,
    pub port: u16,
    pub proto: PortProto,
    pub verdict: Verdict,
    /// What the peer's daemon found on that port (`None`: it did not answer).
    pub peer_listening: Option<Listening>,
    /// One sentence for people.
    pub detail: String,
}

/// `3389`, `3389/tcp` or `27015/udp` (TCP when no transport is named).
pub fn parse_port(s: &str) -> Result<(u16, PortProto), String> {
    let (port, proto) = match s.split_once('/') {
        Some((p, t)) => (p, t),
        None => (s, "tcp"),
    };
    let proto = match proto.to_ascii_lowercase().as_str() {
        "tcp" => PortProto::Tcp,
        "udp" => PortProto::Udp,
        other => {
            return Err(format!(
                "unknown transport {other:?} in {s:?}: use /tcp or /udp"
            ))
        }
    };
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok((p, proto)),
        _ => Err(format!("{port:?} is not a port (1-65535)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs() {
        assert_eq!(parse_port("3389"), Ok((3389, PortProto::Tcp)));
        assert_eq!(parse_port("27015/UDP"), Ok((27015, PortProto::Udp)));
        assert_eq!(parse_port("25565/tcp"), Ok((25565, PortProto::Tcp)));
        assert!(parse_port("0").is_err());
        assert!(parse_port("70000").is_err());
        assert!(parse_port("53/icmp").unwrap_err().contains("/tcp or /udp"));
    }
}
