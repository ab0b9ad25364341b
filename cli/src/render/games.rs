//! `warren games`: the discovery ports carried into the overlay, their counters, and the switch
//! per network, as text.

use super::table_aligned;
use warren_proto::api::games::{DiscoveryPort, GamesStatus, PortSource};

/// "4445" or "27015-27020".
pub fn port_words(p: &DiscoveryPort) -> String {
    if p.last > p.port {
        format!("{}-{}", p.port, p.last)
    } else {
        p.port.to_string()
    }
}

pub fn games(g: &GamesStatus) -> String {
    let mut out = if g.active {
        "LAN game discovery: on\n".to_string()
    } else {
        format!(
            "LAN game discovery: OFF — {}\n",
            g.problem
                .as_deref()
                .filter(|p| !p.trim().is_empty())
                .unwrap_or("the daemon gave no reason")
        )
    };
    out.push('\n');
    if g.ports.is_empty() {
        out.push_str("no discovery ports carried (`warren games add PORT[-LAST]` adds a game's)\n");
    } else {
        let rows: Vec<[String; 7]> = g
            .ports
            .iter()
            .map(|p| {
                [
                    p.name.clone(),
                    port_words(&p.port),
                    p.port
                        .group
                        .map(|ip| ip.to_string())
                        .unwrap_or("broadcast".into()),
                    match p.source {
                        PortSource::Preset => "preset",
                        PortSource::User => "user",
                    }
                    .into(),
                    p.sent.to_string(),
                    p.received.to_string(),
                    p.dropped.to_string(),
                ]
            })
            .collect();
        out.push_str(&table_aligned(
            &[
                "NAME", "UDP PORT", "GROUP", "SOURCE", "SENT", "RECEIVED", "DROPPED",
            ],
            &rows,
            [false, false, false, false, true, true, true],
        ));
        if g.ports.iter().any(|p| p.dropped > 0) {
            out.push_str(
                "DROPPED: packets over the rate limit, not carried (a game that floods its \
                 discovery port)\n",
            );
        }
    }
    out.push('\n');
    if g.networks.is_empty() {
        out.push_str("no networks: discovery reaches the peers of the networks this host is in\n");
    } else {
        let rows: Vec<[String; 2]> = g
            .networks
            .iter()
            .map(|n| {
                [
                    n.network.clone(),
                    if n.enabled { "on" } else { "off" }.into(),
                ]
            })
            .collect();
        out.push_str(&table_aligned(&["NETWORK", "GAMES"], &rows, [false, false]));
    }
    out.push_str(&format!(
        "mirrored groups: {}\n",
        if g.mirrored_groups.is_empty() {
            "none".to_string()
        } else {
            g.mirrored_groups
                .iter()
                .map(|ip| ip.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    ));
    out.push_str(
        "add a game's port: `warren games add PORT[-LAST] [--group A.B.C.D]`; per network: \
         `warren games on|off NET`\n",
    );
    out
}
