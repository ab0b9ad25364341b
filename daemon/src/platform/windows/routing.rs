//! Routes to peers' LANs on the Warren adapter (`netsh … add route`, active until restart, as
//! the adapter's own are), and the forwarding switches — which Windows keeps in the registry
//! and acts on only with Routing and Remote Access: forwarding into this PC's LAN is not
//! available on Windows yet, and says so.

use ipnet::IpNet;
use std::process::Command;

pub fn replace(prefix: &IpNet, tun: &str) -> bool {
    let _ = netsh(&route_args("delete", prefix, tun));
    netsh(&route_args("add", prefix, tun))
}

pub fn delete(prefix: &IpNet, tun: &str) -> bool {
    netsh(&route_args("delete", prefix, tun))
}

/// `netsh interface ipv4 add route 192.168.1.0/24 "warren0" store=active`.
fn route_args(verb: &str, prefix: &IpNet, tun: &str) -> Vec<String> {
    let family = match prefix {
        IpNet::V4(_) => "ipv4",
        IpNet::V6(_) => "ipv6",
    };
    let mut args: Vec<String> = ["interface", family, verb, "route"]
        .map(String::from)
        .to_vec();
    args.push(prefix.to_string());
    args.push(tun.to_string());
    if verb == "add" {
        args.push("store=active".into());
    }
    args
}

pub fn forwarding_switch(v6: bool) -> &'static str {
    if v6 {
        "IPv6 forwarding"
    } else {
        "IPv4 forwarding"
    }
}

pub fn read_switch(_key: &str) -> Option<String> {
    None
}

pub fn write_switch(key: &str, _value: &str) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        format!(
            "{key} into this PC's LAN is not available on Windows yet; advertise the route from \
             a Linux machine on that LAN instead"
        ),
    ))
}

fn netsh(args: &[String]) -> bool {
    match Command::new("netsh").args(args).output() {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            tracing::warn!(
                "netsh {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&o.stdout).trim()
            );
            false
        }
        Err(e) => {
            tracing::warn!("cannot run netsh: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_name_the_family_prefix_and_adapter() {
        let p: IpNet = "192.168.1.0/24".parse().unwrap();
        assert_eq!(
            route_args("add", &p, "warren0").join(" "),
            "interface ipv4 add route 192.168.1.0/24 warren0 store=active"
        );
        let p6: IpNet = "fd00:1::/64".parse().unwrap();
        assert_eq!(
            route_args("delete", &p6, "warren0").join(" "),
            "interface ipv6 delete route fd00:1::/64 warren0"
        );
    }
}
