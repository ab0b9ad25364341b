//! The daemon's TOML config: this host's interface and its static ("manual mode") peers.
//!
//! The file is only ever read. A file that does not parse stops the daemon with the parser's
//! message (line and column), and is left as it is.

use anyhow::{Context, Result};
use ipnet::IpNet;
use serde::Deserialize;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use warren_daemon_core::peer::{PeerConfig, DEFAULT_KEEPALIVE_SECS};
use warren_proto::key::NodeKey;
use warren_proto::overlay;

pub const DEFAULT_MTU: u16 = 1420;

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub interface: InterfaceConfig,
    #[serde(default, rename = "peer")]
    pub peers: Vec<PeerEntry>,
    /// More LAN game discovery ports to carry (`[games] ports = ["5000-5010",
    /// "239.1.2.3:6000"]`), next to the built-in list and those added with `warren games add`.
    #[serde(default)]
    pub games: GamesSection,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GamesSection {
    #[serde(default)]
    pub ports: Vec<String>,
}

impl GamesSection {
    /// The ports, each "P", "P-Q", "GROUP:P" or "GROUP:P-Q".
    pub fn parsed(&self) -> Result<Vec<warren_proto::api::games::DiscoveryPort>> {
        self.ports
            .iter()
            .map(|p| {
                let (group, ports) =
                    match p.rsplit_once(':') {
                        Some((g, ports)) => (
                            Some(g.parse().with_context(|| {
                                format!("games port {p:?}: {g:?} is not a group")
                            })?),
                            ports,
                        ),
                        None => (None, p.as_str()),
                    };
                crate::games::list::parse(ports, group).with_context(|| format!("games port {p:?}"))
            })
            .collect()
    }
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InterfaceConfig {
    pub name: Option<String>,
    /// Overlay IPv4; derived from the node key when absent.
    pub address: Option<Ipv4Addr>,
    /// Overlay IPv6; derived from the node key when absent.
    pub address6: Option<Ipv6Addr>,
    pub mtu: Option<u16>,
    pub listen_port: Option<u16>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PeerEntry {
    pub name: Option<String>,
    pub public_key: NodeKey,
    /// Defaults to the peer's key-derived overlay addresses.
    pub allowed_ips: Option<Vec<IpNet>>,
    pub endpoint: Option<SocketAddr>,
    /// Seconds; 0 turns keepalives off.
    pub persistent_keepalive: Option<u16>,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("config {} is invalid", path.display()))
    }

    pub fn parse(text: &str) -> Result<Config> {
        let config: Config = toml::from_str(text)?;
        config.games.parsed()?;
        if let Some(mtu) = config.interface.mtu {
            anyhow::ensure!(
                (1280..=65000).contains(&mtu),
                "mtu {mtu} is outside 1280..=65000"
            );
        }
        Ok(config)
    }
}

impl PeerEntry {
    pub fn to_peer_config(&self) -> PeerConfig {
        let key = self.public_key;
        let allowed_ips = self.allowed_ips.clone().unwrap_or_else(|| {
            vec![
                IpNet::from(std::net::IpAddr::V4(overlay::derive_v4(&key))),
                IpNet::from(std::net::IpAddr::V6(overlay::derive_v6(&key))),
            ]
        });
        PeerConfig {
            name: self
                .name
                .clone()
                .unwrap_or_else(|| key.to_string()[..8].to_string()),
            public_key: key,
            allowed_ips,
            endpoint: self.endpoint,
            persistent_keepalive: match self.persistent_keepalive {
                Some(0) => None,
                Some(s) => Some(s),
                None => Some(DEFAULT_KEEPALIVE_SECS),
            },
            relay: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";

    #[test]
    fn game_ports_from_the_config() {
        let c = Config::parse("[games]\nports = [\"5000-5010\", \"239.1.2.3:6000\"]\n").unwrap();
        let p = c.games.parsed().unwrap();
        assert_eq!((p[0].port, p[0].last, p[0].group), (5000, 5010, None));
        assert_eq!(p[1].group, Some("239.1.2.3".parse().unwrap()));
        for bad in ["\"9-1\"", "\"10.0.0.1:5\"", "\"x:5\"", "\"70000\""] {
            let e = Config::parse(&format!("[games]\nports = [{bad}]\n")).unwrap_err();
            assert!(format!("{e:#}").contains("games port"), "{bad}: {e:#}");
        }
    }

    #[test]
    fn full_config() {
        let c = Config::parse(&format!(
            r#"
            [interface]
            name = "a"
            address = "100.64.1.1"
            mtu = 1380

            [[peer]]
            name = "b"
            public_key = "{KEY}"
            allowed_ips = ["100.64.1.2/32", "fd57:6172:7265:6e00::2/128"]
            endpoint = "10.0.0.2:51820"
            persistent_keepalive = 0
            "#
        ))
        .unwrap();
        assert_eq!(c.interface.address, Some(Ipv4Addr::new(100, 64, 1, 1)));
        assert_eq!(c.interface.mtu, Some(1380));
        let p = c.peers[0].to_peer_config();
        assert_eq!(p.name, "b");
        assert_eq!(p.allowed_ips.len(), 2);
        assert_eq!(p.persistent_keepalive, None);
        assert_eq!(p.endpoint, Some("10.0.0.2:51820".parse().unwrap()));
    }

    #[test]
    fn defaults_derive_from_the_key() {
        let c = Config::parse(&format!("[[peer]]\npublic_key = \"{KEY}\"\n")).unwrap();
        let p = c.peers[0].to_peer_config();
        let key: NodeKey = KEY.parse().unwrap();
        assert_eq!(
            p.allowed_ips[0],
            IpNet::from(std::net::IpAddr::V4(overlay::derive_v4(&key)))
        );
        assert_eq!(p.persistent_keepalive, Some(DEFAULT_KEEPALIVE_SECS));
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn errors_are_specific() {
        let e = Config::parse("[interface]\nadress = \"1.2.3.4\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("adress"), "{e:#}");
        let e = Config::parse("[[peer]]\npublic_key = \"short\"\n").unwrap_err();
        assert!(format!("{e:#}").contains("public_key") || format!("{e:#}").contains("key"));
        let e = Config::parse("[interface]\nmtu = 100\n").unwrap_err();
        assert!(format!("{e:#}").contains("mtu"));
    }
}
