//! Subnet routes (issue 19): `warren set --advertise-routes`, and `warren routes` to list a
//! network's routes and, as its owner, approve or withdraw them.

use crate::client;
use anyhow::{bail, Result};
use clap::Subcommand;
use std::path::Path;
use warren_proto::api::{Request, Response, Status};

#[derive(Subcommand, Debug)]
pub enum RoutesCommand {
    /// Owner: let the network's members reach WHO's LAN PREFIX through WHO
    Approve {
        network: String,
        /// The member that advertises it (name or key prefix)
        who: String,
        /// The LAN prefix, e.g. 192.168.1.0/24
        prefix: String,
    },
    /// Owner: withdraw an approval (members stop routing PREFIX through WHO)
    Revoke {
        network: String,
        who: String,
        prefix: String,
    },
}

/// `warren set --advertise-routes LIST` ("" for none).
pub fn advertise(socket: &Path, list: &str) -> Result<()> {
    let routes: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    crate::done(client::call(
        socket,
        Request::SetAdvertisedRoutes { routes },
    )?);
    Ok(())
}

pub fn routes(socket: &Path, action: Option<RoutesCommand>, json: bool) -> Result<()> {
    let (network, who, prefix, approve) = match action {
        None => return list(socket, json),
        Some(RoutesCommand::Approve {
            network,
            who,
            prefix,
        }) => (network, who, prefix, true),
        Some(RoutesCommand::Revoke {
            network,
            who,
            prefix,
        }) => (network, who, prefix, false),
    };
    crate::done(client::call(
        socket,
        Request::ApproveRoute {
            network,
            who,
            prefix,
            approve,
        },
    )?);
    Ok(())
}

fn list(socket: &Path, json: bool) -> Result<()> {
    let r = client::call(socket, Request::Status)?;
    let Response::Status(s) = r else {
        bail!("unexpected answer from the daemon: {r:?}");
    };
    if json {
        let routes: Vec<_> = s
            .coordinators
            .iter()
            .flat_map(|c| c.routes.iter())
            .collect();
        println!("{}", serde_json::to_string_pretty(&routes)?);
        return Ok(());
    }
    print!("{}", render(&s));
    Ok(())
}

/// The routes of this host's networks, one per line, with what to do next.
pub fn render(s: &Status) -> String {
    let mut out = String::new();
    if !s.self_.advertised_routes.is_empty() {
        out.push_str(&format!(
            "this host advertises {}{}\n",
            s.self_.advertised_routes.join(", "),
            if s.self_.forwarding.is_empty() {
                String::new()
            } else {
                format!("; forwarding into {}", s.self_.forwarding.join(", "))
            }
        ));
    }
    let routes: Vec<_> = s
        .coordinators
        .iter()
        .flat_map(|c| c.routes.iter())
        .collect();
    if routes.is_empty() {
        out.push_str(
            "no routes in your networks; a member advertises its LAN with \
             `warren set --advertise-routes 192.168.1.0/24`\n",
        );
        return out;
    }
    let owned: Vec<&String> = s.coordinators.iter().flat_map(|c| c.owned.iter()).collect();
    for r in routes {
        let state = match (r.approved, r.advertised) {
            (true, true) => "approved",
            (true, false) => "approved, not advertised now",
            (false, _) => "waiting for the owner's approval",
        };
        out.push_str(&format!(
            "{}  {} via {}  {state}",
            r.network, r.prefix, r.name
        ));
        if !r.approved && owned.iter().any(|o| o.eq_ignore_ascii_case(&r.network)) {
            out.push_str(&format!(
                " (approve: warren routes approve {} {} {})",
                r.network, r.name, r.prefix
            ));
        }
        out.push('\n');
    }
    for p in &s.peers {
        for r in p.routes.iter().filter(|r| !r.routed) {
            out.push_str(&format!(
                "{} via {}: {}\n",
                r.prefix,
                p.name,
                r.note.as_deref().unwrap_or("not routed here")
            ));
        }
    }
    out
}
