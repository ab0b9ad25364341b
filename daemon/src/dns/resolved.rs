//! Telling systemd-resolved, when it runs, to send `*.warren` queries to our server on the
//! Warren interface (and only those: a routing domain `~warren`, not a default route), and to
//! forget it again on `warren down`. Without resolved nothing is changed: point a resolver at
//! the overlay address by hand.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

/// resolved's varlink socket exists while it runs.
pub fn running() -> bool {
    Path::new("/run/systemd/resolve/io.systemd.Resolve").exists()
}

fn resolvectl(args: &[&str]) -> Result<(), String> {
    let out = Command::new("resolvectl")
        .args(args)
        .output()
        .map_err(|e| format!("resolvectl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "resolvectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

pub fn register(tun: &str, server: Ipv4Addr) -> Result<(), String> {
    let server = server.to_string();
    resolvectl(&["dns", tun, &server])?;
    resolvectl(&["domain", tun, &format!("~{}", super::answer::DOMAIN)])?;
    resolvectl(&["default-route", tun, "false"])
}

pub fn revert(tun: &str) -> Result<(), String> {
    resolvectl(&["revert", tun])
}
