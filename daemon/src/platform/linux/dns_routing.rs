//! Telling systemd-resolved, when it runs, to send `*.warren` queries to our server on the
//! Warren interface (and only those: a routing domain `~warren`, not a default route), and to
//! forget it again on `warren down`. Without resolved nothing is changed: point a resolver at
//! the overlay address by hand.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How to reach systemd-resolved: its `resolvectl`.
pub struct Resolved {
    resolvectl: PathBuf,
}

impl Resolved {
    pub const NAME: &str = "systemd-resolved";

    /// The system's resolved, if it runs (its varlink socket exists while it does).
    pub fn system() -> Option<Self> {
        Path::new("/run/systemd/resolve/io.systemd.Resolve")
            .exists()
            .then(|| Self {
                resolvectl: "resolvectl".into(),
            })
    }

    /// Another `resolvectl` (`warrend --resolvectl`, for tests without systemd).
    pub fn with(resolvectl: PathBuf) -> Self {
        Self { resolvectl }
    }

    pub fn register(&self, tun: &str, server: Ipv4Addr) -> Result<(), String> {
        let server = server.to_string();
        self.run(&["dns", tun, &server])?;
        self.run(&["domain", tun, &format!("~{}", crate::dns::answer::DOMAIN)])?;
        self.run(&["default-route", tun, "false"])
    }

    pub fn revert(&self, tun: &str) -> Result<(), String> {
        self.run(&["revert", tun])
    }

    fn run(&self, args: &[&str]) -> Result<(), String> {
        resolvectl(&self.resolvectl, args)
    }
}

fn resolvectl(program: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("{}: {e}", program.display()))?;
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
