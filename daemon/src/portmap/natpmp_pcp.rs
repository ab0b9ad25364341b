//! PCP (RFC 6887) and NAT-PMP (RFC 6886) through crab_nat: one small UDP exchange with the
//! gateway on port 5351 each, retried a few times within about two seconds.

use super::gateway::usable_external;
use super::Transport;
use anyhow::{anyhow, bail, Result};
use crab_nat::{InternetProtocol, PortMapping, PortMappingOptions, PortMappingType, TimeoutConfig};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU16;
use std::time::Duration;

/// 250 ms, then 500 ms, 1 s: a gateway that does not speak the protocol costs ~1.75 s.
const TIMEOUTS: TimeoutConfig = TimeoutConfig {
    initial_timeout: Duration::from_millis(250),
    max_retries: 2,
    max_retry_timeout: Some(Duration::from_secs(1)),
};

fn options(port: NonZeroU16, lifetime: Duration) -> PortMappingOptions {
    PortMappingOptions {
        external_port: Some(port),
        lifetime_seconds: Some(lifetime.as_secs().min(u32::MAX as u64) as u32),
        timeout_config: Some(TIMEOUTS),
    }
}

fn protocol(t: Transport) -> InternetProtocol {
    match t {
        Transport::Udp => InternetProtocol::Udp,
        Transport::Tcp => InternetProtocol::Tcp,
    }
}

/// A PCP MAP of our `port` (the same external port suggested).
pub async fn map_pcp(
    transport: Transport,
    gateway: Ipv4Addr,
    local: Ipv4Addr,
    port: NonZeroU16,
    lifetime: Duration,
) -> Result<(PortMapping, SocketAddr)> {
    let request = crab_nat::pcp::BaseMapRequest::new(
        gateway.into(),
        IpAddr::V4(local),
        protocol(transport),
        port,
    );
    let m = crab_nat::pcp::port_mapping(request, None, None, options(port, lifetime))
        .await
        .map_err(|e| anyhow!("PCP: {e}"))?;
    let PortMappingType::Pcp { external_ip, .. } = m.mapping_type() else {
        bail!("PCP: the answer is not a PCP mapping");
    };
    let external = SocketAddr::new(external_ip.to_canonical(), m.external_port().get());
    checked(m, external)
}

/// A NAT-PMP mapping of our `port`, and the gateway's public address (a second request:
/// NAT-PMP's mapping answer carries only the port).
pub async fn map_natpmp(
    transport: Transport,
    gateway: Ipv4Addr,
    port: NonZeroU16,
    lifetime: Duration,
) -> Result<(PortMapping, SocketAddr)> {
    let m = crab_nat::natpmp::port_mapping(
        gateway.into(),
        protocol(transport),
        port,
        options(port, lifetime),
    )
    .await
    .map_err(|e| anyhow!("NAT-PMP: {e}"))?;
    let ip = crab_nat::natpmp::external_address(gateway.into(), Some(TIMEOUTS))
        .await
        .map_err(|e| anyhow!("NAT-PMP external address: {e}"))?;
    let external = SocketAddr::new(IpAddr::V4(ip), m.external_port().get());
    checked(m, external)
}

fn checked(m: PortMapping, external: SocketAddr) -> Result<(PortMapping, SocketAddr)> {
    if !usable_external(external.ip()) {
        bail!(
            "the router's public address {} is private: another NAT is in front of it",
            external.ip()
        );
    }
    Ok((m, external))
}

/// Renews `m` in place; the port may change. Returns the external address.
pub async fn renew(m: &mut PortMapping, external_ip: IpAddr) -> Result<SocketAddr> {
    m.renew().await.map_err(|e| anyhow!("renewal: {e}"))?;
    let ip = match m.mapping_type() {
        PortMappingType::Pcp { external_ip, .. } => external_ip.to_canonical(),
        PortMappingType::NatPmp => external_ip,
    };
    Ok(SocketAddr::new(ip, m.external_port().get()))
}

pub async fn delete(m: PortMapping) -> Result<()> {
    m.try_drop().await.map_err(|(e, _)| anyhow!("{e}"))
}
