//! `warren relay [on|off]`: whether this PC relays for friends in its networks who cannot
//! connect to each other directly (a peer relay).

use crate::client;
use anyhow::{bail, Result};
use clap::ValueEnum;
use std::path::Path;
use warren_proto::api::{Request, Response, Status};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

pub fn relay(socket: &Path, switch: Option<Switch>) -> Result<()> {
    match switch {
        Some(s) => crate::done(client::call(
            socket,
            Request::SetRelay {
                on: matches!(s, Switch::On),
            },
        )?),
        None => {
            let r = client::call(socket, Request::Status)?;
            let Response::Status(s) = r else {
                bail!("unexpected answer from the daemon: {r:?}");
            };
            println!("{}", describe(&s));
        }
    }
    Ok(())
}

/// One line for a person: on or off, what it carried, and how to switch.
pub fn describe(s: &Status) -> String {
    if s.self_.relay_for_others {
        format!(
            "this PC relays for friends who cannot connect directly ({} relayed so far); \
             `warren relay off` stops it",
            crate::render::human_bytes(s.self_.relayed_bytes)
        )
    } else {
        "this PC does not relay for others; `warren relay on` lets friends in your networks who \
         cannot connect directly go through it"
            .to_string()
    }
}
