//! The discovery ports carried: the built-in list (`daemon/games.toml`, compiled in) and the
//! ones the user added (config file, `warren games add`, the window).

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::net::Ipv4Addr;
use warren_proto::api::games::{DiscoveryPort, PortSource};

const PRESETS: &str = include_str!("../../games.toml");

/// One carried port (range), with what uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub port: DiscoveryPort,
    pub source: PortSource,
}

#[derive(Deserialize)]
struct File {
    game: Vec<Game>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Game {
    name: String,
    ports: Vec<String>,
    group: Option<Ipv4Addr>,
}

/// The built-in list.
pub fn presets() -> Vec<Entry> {
    let file: File = toml::from_str(PRESETS).expect("daemon/games.toml is valid (tested)");
    let mut out = Vec::new();
    for g in file.game {
        for p in &g.ports {
            let port = parse(p, g.group).expect("daemon/games.toml is valid (tested)");
            out.push(Entry {
                name: g.name.clone(),
                port,
                source: PortSource::Preset,
            });
        }
    }
    out
}

/// "P" or "P-Q" with an optional group, checked as a user's input is.
pub fn parse(ports: &str, group: Option<Ipv4Addr>) -> Result<DiscoveryPort> {
    let (a, b) = ports.split_once('-').unwrap_or((ports, ports));
    let port: u16 = a
        .trim()
        .parse()
        .with_context(|| format!("{ports:?} is not a port"))?;
    let last: u16 = b
        .trim()
        .parse()
        .with_context(|| format!("{ports:?} is not a port"))?;
    let p = DiscoveryPort { port, last, group };
    check(&p)?;
    Ok(p)
}

/// A port (range) the daemon can carry.
pub fn check(p: &DiscoveryPort) -> Result<()> {
    if p.port == 0 || p.last < p.port {
        bail!("a port range goes from 1 to 65535, low to high");
    }
    if p.last - p.port > 1000 {
        bail!("at most 1000 ports in one range: discovery uses a few");
    }
    if let Some(g) = p.group {
        if !g.is_multicast() {
            bail!("{g} is not a multicast group (224.0.0.0 to 239.255.255.255)");
        }
    }
    Ok(())
}

/// How a port (range) is shown: `27015-27020`, `224.0.2.60:4445`.
pub fn shown(p: &DiscoveryPort) -> String {
    let ports = if p.port == p.last {
        p.port.to_string()
    } else {
        format!("{}-{}", p.port, p.last)
    };
    match p.group {
        Some(g) => format!("{g}:{ports}"),
        None => ports,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_presets_parse_and_cover_the_games_of_the_notes() {
        let list = presets();
        let has = |port: u16, group: Option<&str>| {
            list.iter().any(|e| {
                (e.port.port..=e.port.last).contains(&port)
                    && e.port.group == group.map(|g| g.parse().unwrap())
            })
        };
        assert!(has(27015, None), "Source / Steam / Counter-Strike");
        assert!(has(28960, None), "Call of Duty");
        assert!(has(4445, Some("224.0.2.60")), "Minecraft Java");
        assert!(has(5353, Some("224.0.0.251")), "mDNS");
        assert!(has(1900, Some("239.255.255.250")), "SSDP");
    }

    #[test]
    fn user_ports_are_checked() {
        assert_eq!(
            parse("27015-27020", None).unwrap(),
            DiscoveryPort {
                port: 27015,
                last: 27020,
                group: None
            }
        );
        assert!(parse("20-10", None).is_err());
        assert!(parse("0", None).is_err());
        assert!(parse("x", None).is_err());
        assert!(parse("1-5000", None).is_err());
        assert!(parse("4445", Some("10.0.0.1".parse().unwrap())).is_err());
        assert_eq!(
            shown(&parse("4445", Some("224.0.2.60".parse().unwrap())).unwrap()),
            "224.0.2.60:4445"
        );
    }
}
