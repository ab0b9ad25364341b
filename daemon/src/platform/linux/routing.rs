//! Routes to peers' LANs on the overlay interface (`ip route`), and the kernel's forwarding
//! switches (sysctls) for a host that forwards into its own LAN.

use ipnet::IpNet;
use std::process::Command;

/// Routes `prefix` into the overlay interface; whether it worked (a failure is logged).
pub fn replace(prefix: &IpNet, tun: &str) -> bool {
    ip(&["route", "replace", &prefix.to_string(), "dev", tun])
}

pub fn delete(prefix: &IpNet, tun: &str) -> bool {
    ip(&["route", "del", &prefix.to_string(), "dev", tun])
}

/// The switch that lets the kernel forward IPv4 (or IPv6) between interfaces.
pub fn forwarding_switch(v6: bool) -> &'static str {
    if v6 {
        "net/ipv6/conf/all/forwarding"
    } else {
        "net/ipv4/ip_forward"
    }
}

pub fn read_switch(key: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/sys/{key}"))
        .ok()
        .map(|v| v.trim().to_string())
}

pub fn write_switch(key: &str, value: &str) -> std::io::Result<()> {
    std::fs::write(format!("/proc/sys/{key}"), value)
}

fn ip(args: &[&str]) -> bool {
    match Command::new("ip").args(args).output() {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            tracing::warn!(
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&o.stderr).trim()
            );
            false
        }
        Err(e) => {
            tracing::warn!("cannot run ip: {e}");
            false
        }
    }
}
