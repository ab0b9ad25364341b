//! The LAN games panel's requests: its Add form, and asking the daemon what it shares.

use crate::client::call;
use std::net::Ipv4Addr;
use std::path::Path;
use warren_proto::api::games::{DiscoveryPort, GamesStatus};
use warren_proto::api::{ApiError, ErrorCode, Request, Response};

/// Add a game's port: the port, a last port for a range, and a multicast group for a game
/// that announces on one (empty: it broadcasts).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GamePortForm {
    pub port: String,
    pub last: String,
    pub group: String,
}

fn port(value: &str) -> Result<u16, String> {
    match value.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!(
            "\"{}\" isn't a port: type a number from 1 to 65535",
            value.trim()
        )),
    }
}

impl GamePortForm {
    /// What the form stands for, or what to fix in it.
    pub fn port(&self) -> Result<DiscoveryPort, String> {
        if self.port.trim().is_empty() {
            return Err("Type the port your game uses to find LAN games, e.g. 47624".into());
        }
        let first = port(&self.port)?;
        let last = if self.last.trim().is_empty() {
            first
        } else {
            port(&self.last)?
        };
        if last < first {
            return Err(format!(
                "The range ends at {last}, below its first port {first}: swap the two"
            ));
        }
        let group = match self.group.trim() {
            "" => None,
            g => {
                let ip: Ipv4Addr = g
                    .parse()
                    .map_err(|_| format!("\"{g}\" isn't a group address like 239.1.2.3"))?;
                if !ip.is_multicast() {
                    return Err(format!(
                        "{ip} isn't a multicast group (those go from 224.0.0.0 to \
                         239.255.255.255): leave the group empty for a game that broadcasts"
                    ));
                }
                Some(ip)
            }
        };
        Ok(DiscoveryPort {
            port: first,
            last,
            group,
        })
    }
}

/// The daemon's `games` answer (blocking: call it off the UI thread).
pub fn fetch(socket: &Path) -> Result<GamesStatus, ApiError> {
    match call(socket, Request::Games) {
        Ok(Response::Games(g)) => Ok(g),
        Ok(_) => Err(ApiError::new(
            ErrorCode::Other,
            "Warren's service answered something this window doesn't understand: \
             update Warren on this computer",
        )),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(port: &str, last: &str, group: &str) -> GamePortForm {
        GamePortForm {
            port: port.into(),
            last: last.into(),
            group: group.into(),
        }
    }

    #[test]
    fn a_port_a_range_or_a_group() {
        assert_eq!(
            form(" 47624 ", "", "").port(),
            Ok(DiscoveryPort {
                port: 47624,
                last: 47624,
                group: None
            })
        );
        assert_eq!(
            form("27015", "27020", "").port(),
            Ok(DiscoveryPort {
                port: 27015,
                last: 27020,
                group: None
            })
        );
        assert_eq!(
            form("4445", "", "224.0.2.60").port(),
            Ok(DiscoveryPort {
                port: 4445,
                last: 4445,
                group: Some(Ipv4Addr::new(224, 0, 2, 60))
            })
        );
    }

    #[test]
    fn mistakes_say_what_to_fix() {
        let err = |f: GamePortForm| f.port().unwrap_err();
        assert!(err(form("", "", "")).starts_with("Type the port"));
        assert_eq!(
            err(form("abc", "", "")),
            "\"abc\" isn't a port: type a number from 1 to 65535"
        );
        assert!(err(form("0", "", "")).contains("from 1 to 65535"));
        assert!(err(form("5000", "70000", "")).contains("\"70000\" isn't a port"));
        assert_eq!(
            err(form("5000", "4000", "")),
            "The range ends at 4000, below its first port 5000: swap the two"
        );
        assert!(err(form("5000", "", "192.168.1.255")).contains("leave the group empty"));
        assert!(err(form("5000", "", "nope")).contains("like 239.1.2.3"));
    }
}
