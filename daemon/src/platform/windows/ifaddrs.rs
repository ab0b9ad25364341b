//! This host's interface addresses, from the IP Helper API (through `if-addrs`).

use crate::platform::IfAddr;

/// Every IPv4 and IPv6 address of every interface (empty when Windows will not say).
pub fn list() -> Vec<IfAddr> {
    let Ok(ifs) = if_addrs::get_if_addrs() else {
        return Vec::new();
    };
    ifs.into_iter()
        .map(|i| {
            let (broadcast, prefix_len) = match &i.addr {
                if_addrs::IfAddr::V4(a) => {
                    (a.broadcast, Some(a.netmask.to_bits().count_ones() as u8))
                }
                if_addrs::IfAddr::V6(a) => (None, Some(a.prefixlen)),
            };
            IfAddr {
                ip: i.ip(),
                name: i.name,
                broadcast,
                prefix_len,
            }
        })
        .collect()
}
