//! Public addresses under which this coordinator is reached through port forwarding, and the
//! Welcome's ports for a connection made to one of them.
//!
//! A coordinator on a home PC (`warren host`) listens on local ports, but friends on the
//! internet reach it at the router's public address, where a router may have granted other
//! port numbers. The daemon that runs it writes what the router granted to a small JSON file
//! (`--published`, a list of [`Published`]); a host that dialed one of those addresses is told
//! the public STUN and relay ports, everyone else the local ones. The file is read afresh for
//! each connection: it changes when the router's mappings do, and connections are rare.

use std::net::SocketAddr;
use std::path::PathBuf;
use warren_proto::control::msg::{Published, Welcome};

pub struct PublishedFile(pub PathBuf);

impl PublishedFile {
    /// Gives `welcome` the public ports of the address the host dialed, when it is published.
    pub fn apply(&self, dialed: Option<SocketAddr>, welcome: &mut Welcome) {
        let Some(dialed) = dialed else { return };
        let entries = match std::fs::read(&self.0) {
            Ok(bytes) => parse(&bytes),
            Err(_) => return,
        };
        if let Some(p) = lookup(&entries, dialed) {
            apply(p, welcome);
        }
    }
}

fn parse(bytes: &[u8]) -> Vec<Published> {
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        tracing::warn!("unreadable published addresses: {e}");
        Vec::new()
    })
}

fn lookup(entries: &[Published], dialed: SocketAddr) -> Option<&Published> {
    let dialed = SocketAddr::new(dialed.ip().to_canonical(), dialed.port());
    entries
        .iter()
        .find(|p| p.address == dialed || p.tcp == Some(dialed))
}

fn apply(p: &Published, welcome: &mut Welcome) {
    welcome.stun_ports = p.stun_ports.to_vec();
    if let Some(relay) = welcome.relay.as_mut().filter(|r| r.address.is_none()) {
        relay.port = p.relay_port;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_proto::control::msg::{RelayOffer, CONTROL_VERSION};

    fn welcome() -> Welcome {
        Welcome {
            v: CONTROL_VERSION,
            overlay_ip: "100.64.0.2".parse().unwrap(),
            networks: vec![],
            stun_ports: vec![7444, 7445],
            relay: Some(RelayOffer {
                port: 7446,
                token: "t".into(),
                address: None,
                ticket: None,
            }),
        }
    }

    #[test]
    fn a_host_that_dialed_the_public_address_gets_the_public_ports() {
        let entries = parse(
            br#"[{"address":"198.51.100.7:17443","tcp":"198.51.100.7:27443","stun_ports":[17444,17445],"relay_port":17446}]"#,
        );
        assert_eq!(entries.len(), 1);
        let mut w = welcome();
        let public: SocketAddr = "198.51.100.7:17443".parse().unwrap();
        apply(lookup(&entries, public).unwrap(), &mut w);
        assert_eq!(w.stun_ports, [17444, 17445]);
        assert_eq!(w.relay.unwrap().port, 17446);
        assert!(lookup(&entries, "198.51.100.7:27443".parse().unwrap()).is_some());
        // The LAN address, or the same IP on another port: the local ports stay.
        assert!(lookup(&entries, "192.168.1.20:7443".parse().unwrap()).is_none());
        assert!(lookup(&entries, "198.51.100.7:7443".parse().unwrap()).is_none());
        // A v4-mapped form of the same address is the same address.
        assert!(lookup(&entries, "[::ffff:198.51.100.7]:17443".parse().unwrap()).is_some());
    }

    #[test]
    fn a_damaged_or_missing_file_changes_nothing() {
        assert!(parse(b"{").is_empty());
        let mut w = welcome();
        PublishedFile("/nonexistent/published.json".into())
            .apply(Some("198.51.100.7:17443".parse().unwrap()), &mut w);
        assert_eq!(w, welcome());
    }
}
