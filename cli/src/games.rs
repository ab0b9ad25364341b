//! `warren games`: which LAN game discovery ports the daemon carries into the overlay, and
//! changing them. Command lines are checked here, so a mistake is explained before the daemon
//! is asked.

use crate::client;
use anyhow::{bail, Result};
use clap::Subcommand;
use std::net::Ipv4Addr;
use std::path::Path;
use warren_proto::api::games::DiscoveryPort;
use warren_proto::api::{Request, Response};

#[derive(Subcommand, Debug)]
pub enum GamesCommand {
    /// Carry another game's discovery port (or range) to peers: its LAN broadcasts, or with
    /// --group its multicast group
    Add {
        /// A UDP port (1-65535), or a range such as 27015-27020
        #[arg(value_name = "PORT[-LAST]", value_parser = parse_ports)]
        ports: Ports,
        /// The multicast group the game announces on (224.0.0.0 to 239.255.255.255)
        /// [default: broadcast]
        #[arg(long, value_name = "A.B.C.D", value_parser = parse_group)]
        group: Option<Ipv4Addr>,
    },
    /// Stop carrying a port you added (presets are switched off per network instead)
    Remove {
        /// The port or range as it was added
        #[arg(value_name = "PORT[-LAST]", value_parser = parse_ports)]
        ports: Ports,
        /// The group it was added with
        #[arg(long, value_name = "A.B.C.D", value_parser = parse_group)]
        group: Option<Ipv4Addr>,
    },
    /// Carry discovery to and from NETWORK's peers
    On { network: String },
    /// Stop carrying discovery to and from NETWORK's peers
    Off { network: String },
}

/// A UDP port or an inclusive range, first ≤ last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub first: u16,
    pub last: u16,
}

/// `27015` or `27015-27020`.
pub fn parse_ports(s: &str) -> Result<Ports, String> {
    let port = |p: &str| match p.trim().parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{p:?} is not a port (1-65535)")),
    };
    let (first, last) = match s.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => {
            let p = port(s)?;
            (p, p)
        }
    };
    if last < first {
        return Err(format!(
            "the range {first}-{last} runs backwards: write the lower port first \
             ({last}-{first})"
        ));
    }
    Ok(Ports { first, last })
}

/// An IPv4 multicast group: the kernel delivers only those to a program that joined them.
pub fn parse_group(s: &str) -> Result<Ipv4Addr, String> {
    let ip: Ipv4Addr = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not an IPv4 address (A.B.C.D)"))?;
    if !ip.is_multicast() {
        return Err(format!(
            "{ip} is not a multicast group (224.0.0.0/4: 224.0.0.0 to 239.255.255.255); \
             leave out --group for a game that broadcasts"
        ));
    }
    Ok(ip)
}

pub fn discovery_port(ports: Ports, group: Option<Ipv4Addr>) -> DiscoveryPort {
    DiscoveryPort {
        port: ports.first,
        last: ports.last,
        group,
    }
}

/// The request a subcommand stands for.
pub fn request(cmd: GamesCommand) -> Request {
    match cmd {
        GamesCommand::Add { ports, group } => Request::AddGamePort {
            port: discovery_port(ports, group),
        },
        GamesCommand::Remove { ports, group } => Request::RemoveGamePort {
            port: discovery_port(ports, group),
        },
        GamesCommand::On { network } => Request::SetGameNetwork {
            network,
            enabled: true,
        },
        GamesCommand::Off { network } => Request::SetGameNetwork {
            network,
            enabled: false,
        },
    }
}

pub fn games(socket: &Path, action: Option<GamesCommand>, json: bool) -> Result<()> {
    if let Some(cmd) = action {
        crate::done(client::call(socket, request(cmd))?);
        return Ok(());
    }
    let r = client::call(socket, Request::Games)?;
    let Response::Games(g) = r else {
        bail!("unexpected answer from the daemon: {r:?}");
    };
    if json {
        crate::print_json(&g)?;
    } else {
        print!("{}", crate::render::games(&g));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[test]
    fn ports_and_ranges() {
        assert_eq!(
            parse_ports("47624"),
            Ok(Ports {
                first: 47624,
                last: 47624
            })
        );
        assert_eq!(
            parse_ports("27015-27020"),
            Ok(Ports {
                first: 27015,
                last: 27020
            })
        );
        assert_eq!(
            parse_ports("27020-27015").unwrap_err(),
            "the range 27020-27015 runs backwards: write the lower port first (27015-27020)"
        );
        for bad in ["0", "70000", "abc", "1-", "-5", ""] {
            assert!(
                parse_ports(bad).unwrap_err().contains("is not a port"),
                "{bad}"
            );
        }
    }

    #[test]
    fn groups_must_be_multicast() {
        assert_eq!(parse_group("239.77.1.2"), Ok(Ipv4Addr::new(239, 77, 1, 2)));
        assert_eq!(
            parse_group("224.0.0.251"),
            Ok(Ipv4Addr::new(224, 0, 0, 251))
        );
        let e = parse_group("192.168.1.255").unwrap_err();
        assert!(e.contains("not a multicast group (224.0.0.0/4"), "{e}");
        assert!(e.contains("leave out --group"), "{e}");
        assert!(parse_group("255.255.255.255").is_err());
        assert!(parse_group("240.0.0.1").is_err());
        assert!(parse_group("239.1.2")
            .unwrap_err()
            .contains("not an IPv4 address"));
    }

    #[test]
    fn command_lines_become_requests() {
        crate::Cli::command().debug_assert();
        let parse = |args: &[&str]| -> Result<(Option<Request>, bool), String> {
            let cli = crate::Cli::try_parse_from(["warren", "games"].iter().chain(args))
                .map_err(|e| e.to_string())?;
            match cli.command {
                crate::Command::Games { action, json } => Ok((action.map(request), json)),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(parse(&[]), Ok((None, false)));
        assert_eq!(parse(&["--json"]), Ok((None, true)));
        assert_eq!(
            parse(&["add", "4445", "--group", "224.0.2.60"]),
            Ok((
                Some(Request::AddGamePort {
                    port: DiscoveryPort {
                        port: 4445,
                        last: 4445,
                        group: Some(Ipv4Addr::new(224, 0, 2, 60))
                    }
                }),
                false
            ))
        );
        assert_eq!(
            parse(&["remove", "27015-27020"]),
            Ok((
                Some(Request::RemoveGamePort {
                    port: DiscoveryPort {
                        port: 27015,
                        last: 27020,
                        group: None
                    }
                }),
                false
            ))
        );
        assert_eq!(
            parse(&["off", "work"]),
            Ok((
                Some(Request::SetGameNetwork {
                    network: "work".into(),
                    enabled: false
                }),
                false
            ))
        );
        assert_eq!(
            parse(&["on", "lan-party"]).unwrap().0,
            Some(Request::SetGameNetwork {
                network: "lan-party".into(),
                enabled: true
            })
        );
        let e = parse(&["add", "5000-4000"]).unwrap_err();
        assert!(e.contains("runs backwards"), "{e}");
        let e = parse(&["add", "5000", "--group", "10.0.0.1"]).unwrap_err();
        assert!(e.contains("not a multicast group"), "{e}");
        assert!(parse(&["on"]).is_err());
    }
}
