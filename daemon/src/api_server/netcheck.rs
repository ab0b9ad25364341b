//! `warren netcheck`: a fresh STUN run on the daemon's own UDP socket (the coordinator's two
//! servers tell UDP reachability, the public address and the NAT's mapping kind), a UPnP-IGD
//! search on the LAN, the port mapping the daemon holds, and the control connection's RTT,
//! all at once.

use super::ApiState;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use warren_proto::api::{
    ApiError, ErrorCode, NetcheckReport, PortMappingCheck, RelayCheck, Response, StunAnswer,
};
use warren_proto::control::msg::NatKind;

const UPNP_WAIT: Duration = Duration::from_secs(2);

pub async fn run(state: &ApiState) -> Response {
    let (servers, coordinator, rtt, link) = {
        let v = state.control.view.lock().expect("control view lock");
        // The coordinator whose relay and STUN servers this host uses.
        let used = v
            .coordinators
            .iter()
            .find(|c| c.connected && v.connections.contains_key(&c.public_key))
            .or(v.coordinator.as_ref());
        let connected = used.is_some_and(|c| c.connected);
        (
            v.stun_servers,
            used.map(|c| c.address.clone()),
            v.connection
                .as_ref()
                .filter(|_| connected)
                .and_then(|c| c.rtt())
                .map(|r| r.as_millis() as u32),
            v.connection.clone(),
        )
    };
    if !state.dataplane.node().is_up() {
        return ApiError::new(
            ErrorCode::TunnelDown,
            "Warren is down: run `warren up` first",
        )
        .into();
    }
    let upnp = tokio::task::spawn_blocking(upnp_external_ip);
    let mut report = NetcheckReport {
        udp: false,
        reflexive: None,
        nat: NatKind::Unknown,
        stun: Vec::new(),
        upnp: None,
        port_mapping: None,
        coordinator,
        coordinator_rtt_ms: rtt,
        relay: None,
    };
    if let Some(servers) = servers {
        let bound = {
            let mut node = state.dataplane.node();
            node.start_discovery(Instant::now(), servers);
            node.discovery_bound()
        };
        state.dataplane.flush_now();
        let deadline = Instant::now() + bound + Duration::from_millis(500);
        while state.dataplane.node().discovery_running() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Some(d) = state.dataplane.node().discovery() {
            report.udp = d.mapped.iter().any(Option::is_some);
            report.reflexive = d.reflexive;
            report.nat = d.nat;
            report.stun = servers
                .iter()
                .zip(d.mapped)
                .map(|(server, mapped)| StunAnswer {
                    server: *server,
                    mapped,
                })
                .collect();
        }
    }
    report.upnp = upnp.await.ok().flatten();
    // The mapping task's own answer (it asks PCP, NAT-PMP, then UPnP-IGD in its own time):
    // asking the router again here would only race it.
    report.port_mapping = state.portmap.current.borrow().map(|m| PortMappingCheck {
        protocol: m.protocol,
        external: m.external,
        lifetime_secs: m.lifetime.as_secs().min(u32::MAX as u64) as u32,
    });
    // The relay is pinged every few seconds anyway; its last answer is fresh enough.
    report.relay =
        state
            .dataplane
            .node()
            .relay_status(Instant::now())
            .map(|(server, rtt, alive)| RelayCheck {
                server: link.as_ref().map_or(server, |l| l.shown(server)),
                reachable: alive,
                rtt_ms: rtt.map(|r| r.as_millis() as u32),
            });
    Response::Netcheck(report)
}

/// The external address of a UPnP-IGD gateway on the LAN, if one answers in time.
fn upnp_external_ip() -> Option<IpAddr> {
    let mut options = igd_next::SearchOptions::default();
    options.timeout = Some(UPNP_WAIT);
    options.single_search_timeout = Some(UPNP_WAIT);
    let gateway = igd_next::search_gateway(options).ok()?;
    gateway.get_external_ip().ok()
}
