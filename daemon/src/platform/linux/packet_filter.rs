//! The kernel's packet filter, nftables: the rules that copy games' LAN broadcasts onto the
//! overlay and those that forward into this host's LAN for subnet routes. Scripts are built
//! by their owners; this runs them, and the owners word what went wrong.

use std::io::Write;
use std::process::{Command, Stdio};

pub use crate::platform::Failure;

/// Runs an `nft -f -` script.
pub fn apply(script: &str) -> Result<(), Failure> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Failure::Unavailable(format!(
                "cannot run nft (is the nftables package installed?): {e}"
            ))
        })?;
    let written = child
        .stdin
        .take()
        .expect("piped")
        .write_all(script.as_bytes());
    let out = child
        .wait_with_output()
        .map_err(|e| Failure::Refused(format!("waiting for nft: {e}")))?;
    if let Err(e) = written {
        return Err(Failure::Refused(format!("writing to nft: {e}")));
    }
    if !out.status.success() {
        return Err(Failure::Refused(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(())
}
