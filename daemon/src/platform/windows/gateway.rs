//! The default IPv4 gateway, from the IP Helper's routing table.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use windows_sys::Win32::Foundation::NO_ERROR;
use windows_sys::Win32::NetworkManagement::IpHelper::{
    FreeMibTable, GetIpForwardTable2, GetIpInterfaceTable, MIB_IPFORWARD_ROW2,
    MIB_IPFORWARD_TABLE2, MIB_IPINTERFACE_ROW, MIB_IPINTERFACE_TABLE,
};
use windows_sys::Win32::Networking::WinSock::{AF_INET, SOCKADDR_INET};

/// The next hop of the default route Windows prefers: of the routes to 0.0.0.0/0 through a
/// gateway, the one of the lowest metric (the route's plus its interface's, as Windows adds
/// them); `None` without one.
pub fn default_v4() -> Option<Ipv4Addr> {
    let mut table: *mut MIB_IPFORWARD_TABLE2 = std::ptr::null_mut();
    // SAFETY: `table` receives a table that is freed below.
    if unsafe { GetIpForwardTable2(AF_INET, &mut table) } != NO_ERROR || table.is_null() {
        return None;
    }
    // SAFETY: Windows filled `NumEntries` rows after the count.
    let rows = unsafe {
        std::slice::from_raw_parts(
            std::ptr::addr_of!((*table).Table).cast::<MIB_IPFORWARD_ROW2>(),
            (*table).NumEntries as usize,
        )
    };
    let interfaces = interface_metrics();
    let best = rows
        .iter()
        .filter_map(|r| {
            let gateway = default_next_hop(r)?;
            // Without the interface's metric (Wine has none), the route's alone ranks them.
            let interface = interfaces.get(&r.InterfaceIndex).copied().unwrap_or(0);
            let metric = r.Metric.saturating_add(interface);
            Some((metric, gateway))
        })
        .min_by_key(|&(metric, _)| metric)
        .map(|(_, gateway)| gateway);
    // SAFETY: the table GetIpForwardTable2 allocated, no longer borrowed.
    unsafe { FreeMibTable(table.cast()) };
    best
}

/// The gateway of a default route; `None` for any other route, or an on-link default route
/// (a point-to-point VPN's), which has no router to ask.
fn default_next_hop(r: &MIB_IPFORWARD_ROW2) -> Option<Ipv4Addr> {
    if r.DestinationPrefix.PrefixLength != 0 || !is_v4(&r.DestinationPrefix.Prefix) {
        return None;
    }
    let hop = v4_of(&r.NextHop)?;
    (!hop.is_unspecified()).then_some(hop)
}

fn is_v4(a: &SOCKADDR_INET) -> bool {
    // SAFETY: every variant begins with the family.
    unsafe { a.si_family == AF_INET }
}

fn v4_of(a: &SOCKADDR_INET) -> Option<Ipv4Addr> {
    // SAFETY: the IPv4 variant, as the family says.
    is_v4(a).then(|| Ipv4Addr::from(unsafe { a.Ipv4.sin_addr.S_un.S_addr }.to_ne_bytes()))
}

/// Each interface's IPv4 metric, which Windows adds to its routes', by interface index; empty
/// when Windows will not say. (The whole table, because Wine aborts on GetIpInterfaceEntry
/// and answers ERROR_NOT_SUPPORTED here.)
fn interface_metrics() -> HashMap<u32, u32> {
    let mut table: *mut MIB_IPINTERFACE_TABLE = std::ptr::null_mut();
    // SAFETY: `table` receives a table that is freed below.
    if unsafe { GetIpInterfaceTable(AF_INET, &mut table) } != NO_ERROR || table.is_null() {
        return HashMap::new();
    }
    // SAFETY: Windows filled `NumEntries` rows after the count.
    let rows = unsafe {
        std::slice::from_raw_parts(
            std::ptr::addr_of!((*table).Table).cast::<MIB_IPINTERFACE_ROW>(),
            (*table).NumEntries as usize,
        )
    };
    let metrics = rows.iter().map(|r| (r.InterfaceIndex, r.Metric)).collect();
    // SAFETY: the table GetIpInterfaceTable allocated, no longer borrowed.
    unsafe { FreeMibTable(table.cast()) };
    metrics
}

#[cfg(test)]
mod tests {
    use super::*;

    use windows_sys::Win32::Networking::WinSock::AF_INET6;

    fn route(family: u16, prefix_len: u8, hop: [u8; 4]) -> MIB_IPFORWARD_ROW2 {
        let mut r = MIB_IPFORWARD_ROW2::default();
        r.DestinationPrefix.Prefix.si_family = family;
        r.DestinationPrefix.PrefixLength = prefix_len;
        r.NextHop.Ipv4.sin_family = family;
        r.NextHop.Ipv4.sin_addr.S_un.S_addr = u32::from_ne_bytes(hop);
        r
    }

    #[test]
    fn only_a_default_route_through_a_router_counts() {
        let gw = [192, 168, 1, 1];
        assert_eq!(
            default_next_hop(&route(AF_INET, 0, gw)),
            Some(Ipv4Addr::from(gw))
        );
        assert_eq!(
            default_next_hop(&route(AF_INET, 24, gw)),
            None,
            "not default"
        );
        assert_eq!(
            default_next_hop(&route(AF_INET, 0, [0; 4])),
            None,
            "on-link"
        );
        assert_eq!(default_next_hop(&route(AF_INET6, 0, gw)), None, "IPv6");
    }

    #[test]
    fn asking_does_not_fail() {
        // Wine and a bare CI box may have no default route; then there is nothing to check.
        if let Some(gw) = default_v4() {
            assert!(!gw.is_unspecified() && !gw.is_broadcast(), "{gw}");
        }
    }
}
