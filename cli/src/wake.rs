//! `warren wake MAC --via MEMBER`: wake a sleeping PC (Wake-on-LAN) through a member awake on
//! its LAN, which broadcasts the magic packet there.

use crate::client;
use anyhow::{bail, Result};
use std::path::Path;
use warren_proto::api::{Request, Response};
use warren_proto::mac::Mac;

pub fn wake(socket: &Path, mac: &str, via: &str) -> Result<()> {
    // Checked here, before the daemon is bothered, so a typo gets the hint at once.
    let mac: Mac = mac.parse().map_err(anyhow::Error::msg)?;
    let request = Request::Wake {
        mac,
        via: via.into(),
    };
    match client::call(socket, request)? {
        Response::Done { message } => println!("{message}"),
        other => bail!("unexpected answer from the daemon: {other:?}"),
    }
    Ok(())
}
