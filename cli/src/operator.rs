//! `warren operator` and `warren name`: who may use Warren on this computer, and the name
//! others see.

use crate::client;
use anyhow::{bail, Result};
use clap::Subcommand;
use std::path::Path;
use warren_proto::api::{Request, Response};

#[derive(Subcommand, Debug)]
pub enum OperatorCommand {
    /// Let USER use Warren without sudo or group warren [default: the user who ran sudo or
    /// pkexec]; needs root
    Add { user: Option<String> },
    /// Stop letting USER use Warren (members of group warren still may); needs root
    Remove { user: Option<String> },
    /// The operator users
    List {
        #[arg(long)]
        json: bool,
    },
}

pub fn operator(socket: &Path, cmd: OperatorCommand) -> Result<()> {
    let (user, allow) = match cmd {
        OperatorCommand::Add { user } => (user, true),
        OperatorCommand::Remove { user } => (user, false),
        OperatorCommand::List { json } => {
            let r = client::call(socket, Request::Operators)?;
            let Response::Operators(list) = r else {
                bail!("unexpected answer from the daemon: {r:?}");
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if list.is_empty() {
                println!("no operator users (root and members of group warren may use Warren)");
            } else {
                for o in list {
                    println!("{} (uid {})", o.user, o.uid);
                }
            }
            return Ok(());
        }
    };
    let user = match user.or_else(invoking_user) {
        Some(u) => u,
        None => bail!("say which user: `sudo warren operator add USER`"),
    };
    crate::done(client::call(socket, Request::SetOperator { user, allow })?);
    Ok(())
}

/// The user behind `sudo` or `pkexec` (not root), so `pkexec warren operator add` lets in the
/// desktop user who asked.
fn invoking_user() -> Option<String> {
    if let Some(u) = std::env::var("SUDO_USER")
        .ok()
        .filter(|u| !u.is_empty() && u != "root")
    {
        return Some(u);
    }
    std::env::var("PKEXEC_UID")
        .ok()
        .filter(|u| !u.is_empty() && u != "0")
}

/// `warren name [NAME]`: show or set the name others see.
pub fn name(socket: &Path, name: Option<String>) -> Result<()> {
    match name {
        Some(name) => crate::done(client::call(socket, Request::SetName { name })?),
        None => {
            let r = client::call(socket, Request::Status)?;
            let Response::Status(s) = r else {
                bail!("unexpected answer from the daemon: {r:?}");
            };
            println!("{}", s.self_.name);
            for c in crate::render::coordinators(&s)
                .into_iter()
                .filter(|c| c.name_taken)
            {
                eprintln!(
                    "the coordinator {} refused it: another member has it; choose another with \
                     `warren name NAME`",
                    c.address
                );
            }
        }
    }
    Ok(())
}
