//! UPnP-IGD through igd-next's blocking client (SSDP search, then SOAP over HTTP), run on
//! tokio's blocking pool so the daemon needs no HTTP stack of its own.

use super::gateway::usable_external;
use super::Transport;
use anyhow::{anyhow, bail, Context, Result};
use igd_next::{AddPortError, Gateway, PortMappingProtocol, SearchOptions};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

const SEARCH_WAIT: Duration = Duration::from_secs(2);
const DESCRIPTION: &str = "warren";

/// A mapping on an IGD: what renewing and deleting it need.
pub struct UpnpLease {
    pub gateway: Gateway,
    pub transport: Transport,
    pub external_port: u16,
    pub internal: SocketAddr,
    pub lifetime: u32,
}

/// Finds the gateway, then maps `local:port`, preferably to the same external port.
pub fn map(
    transport: Transport,
    local: Ipv4Addr,
    port: u16,
    lifetime: Duration,
) -> Result<(UpnpLease, SocketAddr)> {
    let mut options = SearchOptions::default();
    options.timeout = Some(SEARCH_WAIT);
    options.single_search_timeout = Some(SEARCH_WAIT);
    // From the address the gateway knows us by, so the answer comes back to this LAN.
    options.bind_addr = SocketAddr::new(IpAddr::V4(local), 0);
    let gateway = igd_next::search_gateway(options).context("UPnP-IGD: no gateway answered")?;
    let ip = gateway
        .get_external_ip()
        .map_err(|e| anyhow!("UPnP-IGD external address: {e}"))?;
    if !usable_external(ip) {
        bail!("UPnP-IGD: the router's public address {ip} is private: another NAT is in front");
    }
    let internal = SocketAddr::new(IpAddr::V4(local), port);
    let mut lease = UpnpLease {
        gateway,
        transport,
        external_port: port,
        internal,
        lifetime: lifetime.as_secs().min(u32::MAX as u64) as u32,
    };
    match add(&lease) {
        Ok(()) => {}
        Err(AddPortError::OnlyPermanentLeasesSupported) => {
            // Old IGDv1 routers: an unlimited lease, which we delete on `down` and exit.
            lease.lifetime = 0;
            add(&lease).map_err(|e| anyhow!("UPnP-IGD: {e}"))?;
        }
        Err(_) => {
            // Our port is taken (another host's mapping): take whatever the router gives.
            lease.external_port = lease
                .gateway
                .add_any_port(protocol(transport), internal, lease.lifetime, DESCRIPTION)
                .map_err(|e| anyhow!("UPnP-IGD: {e}"))?;
        }
    }
    let external = SocketAddr::new(ip, lease.external_port);
    Ok((lease, external))
}

fn add(lease: &UpnpLease) -> Result<(), AddPortError> {
    lease.gateway.add_port(
        protocol(lease.transport),
        lease.external_port,
        lease.internal,
        lease.lifetime,
        DESCRIPTION,
    )
}

/// Adding the same mapping again extends its lease (IGD has no separate renewal).
pub fn renew(lease: &UpnpLease) -> Result<()> {
    add(lease).map_err(|e| anyhow!("UPnP-IGD renewal: {e}"))
}

pub fn delete(lease: &UpnpLease) -> Result<()> {
    lease
        .gateway
        .remove_port(protocol(lease.transport), lease.external_port)
        .map_err(|e| anyhow!("UPnP-IGD: {e}"))
}

fn protocol(t: Transport) -> PortMappingProtocol {
    match t {
        Transport::Udp => PortMappingProtocol::UDP,
        Transport::Tcp => PortMappingProtocol::TCP,
    }
}
