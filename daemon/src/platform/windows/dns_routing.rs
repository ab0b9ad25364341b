//! Sending `*.warren` queries to our server through the Name Resolution Policy Table (NRPT):
//! one rule for the namespace `.warren`, pointing at the overlay address, added while the
//! tunnel is up and removed on `warren down`. Other names keep the system's resolvers.
//! PowerShell's DnsClient cmdlets make the rule and tell the DNS Client service at once (a
//! registry rule alone waits for the next policy refresh).

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;

/// Marks our rule among others (an administrator's own rules are never touched).
const COMMENT: &str = "Warren: *.warren names of your networks";

pub struct Resolved {
    powershell: PathBuf,
}

impl Resolved {
    pub const NAME: &str = "the Windows DNS client (NRPT)";

    pub fn system() -> Option<Self> {
        Some(Self {
            powershell: "powershell.exe".into(),
        })
    }

    /// Another PowerShell (`warrend --resolvectl`, for tests).
    pub fn with(powershell: PathBuf) -> Self {
        Self { powershell }
    }

    pub fn register(&self, _tun: &str, server: Ipv4Addr) -> Result<(), String> {
        self.run(&register_script(server))
    }

    pub fn revert(&self, _tun: &str) -> Result<(), String> {
        self.run(&revert_script())
    }

    fn run(&self, script: &str) -> Result<(), String> {
        let out = Command::new(&self.powershell)
            .args(["-NoProfile", "-NonInteractive", "-Command", script])
            .output()
            .map_err(|e| format!("{}: {e}", self.powershell.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "the NRPT rule for .warren: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

/// Our old rule out, the new one in.
fn register_script(server: Ipv4Addr) -> String {
    format!(
        "{}; Add-DnsClientNrptRule -Namespace '.{}' -NameServers '{server}' -Comment '{COMMENT}'",
        revert_script(),
        crate::dns::answer::DOMAIN
    )
}

fn revert_script() -> String {
    format!(
        "Get-DnsClientNrptRule | Where-Object {{ $_.Comment -eq '{COMMENT}' }} | \
         Remove-DnsClientNrptRule -Force"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_names_the_domain_and_server_and_replaces_only_ours() {
        let s = register_script(Ipv4Addr::new(100, 64, 1, 2));
        assert!(
            s.contains("-Namespace '.warren' -NameServers '100.64.1.2'"),
            "{s}"
        );
        assert!(s.starts_with(&revert_script()), "{s}");
        assert!(revert_script().contains(&format!("$_.Comment -eq '{COMMENT}'")));
    }
}
