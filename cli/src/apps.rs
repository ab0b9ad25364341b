//! The `--app` presets of `warren check`, from the data file `cli/apps.toml` (compiled in, so
//! the CLI is one file).

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use warren_proto::api::parse_port;
use warren_proto::disco::PortProto;

const APPS: &str = include_str!("../apps.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    pub name: String,
    /// The ports the program needs: a closed one fails the check.
    pub ports: Vec<String>,
    /// Ports it uses when they are open and works without (RDP's UDP transport): a closed one
    /// is reported, not failed.
    #[serde(default)]
    pub optional: Vec<String>,
}

/// One port of a preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresetPort {
    pub port: u16,
    pub proto: PortProto,
    pub required: bool,
}

fn parse(text: &str) -> Result<BTreeMap<String, App>> {
    toml::from_str(text).context("the built-in app list (cli/apps.toml) is broken")
}

fn all() -> Result<BTreeMap<String, App>> {
    parse(APPS)
}

/// The required ports, then the optional ones; a port listed twice is a mistake in the list.
fn preset_ports(key: &str, app: &App) -> Result<Vec<PresetPort>> {
    if app.ports.is_empty() {
        bail!("preset {key} in cli/apps.toml has no required port (`ports`)");
    }
    let mut out: Vec<PresetPort> = Vec::new();
    for (list, required) in [(&app.ports, true), (&app.optional, false)] {
        for p in list {
            let (port, proto) =
                parse_port(p).map_err(|e| anyhow::anyhow!("preset {key} in cli/apps.toml: {e}"))?;
            if out.iter().any(|o| o.port == port && o.proto == proto) {
                bail!("preset {key} in cli/apps.toml lists {p} twice");
            }
            out.push(PresetPort {
                port,
                proto,
                required,
            });
        }
    }
    Ok(out)
}

/// The name and ports of preset `key`, or an error listing the presets.
pub fn ports_of(key: &str) -> Result<(String, Vec<PresetPort>)> {
    let apps = all()?;
    let Some(app) = apps.get(&key.to_ascii_lowercase()) else {
        bail!(
            "no preset {key:?}; known: {}",
            apps.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    };
    Ok((app.name.clone(), preset_ports(key, app)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(key: &str, port: u16, proto: PortProto, required: bool) -> bool {
        ports_of(key).unwrap().1.contains(&PresetPort {
            port,
            proto,
            required,
        })
    }

    #[test]
    fn every_preset_parses_and_the_issue_examples_are_there() {
        for key in all().unwrap().keys() {
            let (_, ports) = ports_of(key).unwrap();
            assert!(ports.iter().any(|p| p.required), "{key}");
        }
        assert!(has("RDP", 3389, PortProto::Tcp, true));
        assert!(has("minecraft", 25565, PortProto::Tcp, true));
        assert!(has("counter-strike", 27015, PortProto::Udp, true));
        assert!(has("call-of-duty", 3074, PortProto::Udp, true));
        assert!(ports_of("nope")
            .unwrap_err()
            .to_string()
            .contains("known: "));
    }

    #[test]
    fn a_working_xrdp_needs_tcp_only() {
        let (_, ports) = ports_of("rdp").unwrap();
        assert_eq!(
            ports,
            [
                PresetPort {
                    port: 3389,
                    proto: PortProto::Tcp,
                    required: true
                },
                PresetPort {
                    port: 3389,
                    proto: PortProto::Udp,
                    required: false
                },
            ]
        );
        // Source servers play over UDP; their TCP port is RCON (remote administration).
        assert!(has("counter-strike", 27015, PortProto::Tcp, false));
        assert!(has("steam", 27015, PortProto::Tcp, false));
    }

    #[test]
    fn optional_ports_parse_and_mistakes_are_named() {
        let apps = parse(
            "[a]\nname = \"A\"\nports = [\"1000\"]\noptional = [\"1000/udp\", \"1001/udp\"]\n\
             [b]\nname = \"B\"\nports = [\"2000/udp\"]\n",
        )
        .unwrap();
        let a = preset_ports("a", &apps["a"]).unwrap();
        assert_eq!(
            a.iter()
                .map(|p| (p.port, p.proto, p.required))
                .collect::<Vec<_>>(),
            [
                (1000, PortProto::Tcp, true),
                (1000, PortProto::Udp, false),
                (1001, PortProto::Udp, false)
            ]
        );
        assert!(preset_ports("b", &apps["b"]).unwrap()[0].required);

        let twice = parse("[c]\nname = \"C\"\nports = [\"5/tcp\"]\noptional = [\"5\"]\n").unwrap();
        let e = preset_ports("c", &twice["c"]).unwrap_err().to_string();
        assert!(e.contains("lists 5 twice"), "{e}");
        let only_optional =
            parse("[d]\nname = \"D\"\nports = []\noptional = [\"5/udp\"]\n").unwrap();
        let e = preset_ports("d", &only_optional["d"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no required port"), "{e}");
        let bad = parse("[e]\nname = \"E\"\nports = [\"5/icmp\"]\n").unwrap();
        let e = preset_ports("e", &bad["e"]).unwrap_err().to_string();
        assert!(e.contains("preset e") && e.contains("/tcp or /udp"), "{e}");
        // A misspelt key is an error, not a silently required port.
        assert!(parse("[f]\nname = \"F\"\nports = [\"5\"]\noptinal = [\"6\"]\n").is_err());
    }
}
