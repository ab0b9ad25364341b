//! The `--app` presets of `warren check`, from the data file `cli/apps.toml` (compiled in, so
//! the CLI is one file).

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use warren_proto::api::parse_port;
use warren_proto::disco::PortProto;

const APPS: &str = include_str!("../apps.toml");

#[derive(Debug, Deserialize)]
pub struct App {
    pub name: String,
    pub ports: Vec<String>,
}

fn all() -> Result<BTreeMap<String, App>> {
    toml::from_str(APPS).context("the built-in app list (cli/apps.toml) is broken")
}

/// The ports of preset `key`, or an error listing the presets.
pub fn ports_of(key: &str) -> Result<(String, Vec<(u16, PortProto)>)> {
    let apps = all()?;
    let Some(app) = apps.get(&key.to_ascii_lowercase()) else {
        bail!(
            "no preset {key:?}; known: {}",
            apps.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    };
    let ports = app
        .ports
        .iter()
        .map(|p| parse_port(p).map_err(anyhow::Error::msg))
        .collect::<Result<_>>()?;
    Ok((app.name.clone(), ports))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_parses_and_the_issue_examples_are_there() {
        for key in all().unwrap().keys() {
            let (_, ports) = ports_of(key).unwrap();
            assert!(!ports.is_empty(), "{key}");
        }
        assert!(ports_of("RDP").unwrap().1.contains(&(3389, PortProto::Tcp)));
        assert!(ports_of("minecraft")
            .unwrap()
            .1
            .contains(&(25565, PortProto::Tcp)));
        assert!(ports_of("counter-strike")
            .unwrap()
            .1
            .contains(&(27015, PortProto::Udp)));
        assert!(ports_of("call-of-duty")
            .unwrap()
            .1
            .contains(&(3074, PortProto::Udp)));
        assert!(ports_of("nope")
            .unwrap_err()
            .to_string()
            .contains("known: "));
    }
}
