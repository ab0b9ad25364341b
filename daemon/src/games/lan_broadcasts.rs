//! The directed broadcast addresses of this host's interfaces (other than the TUN): a game
//! that broadcasts to its LAN's own broadcast address is carried like one to 255.255.255.255.

use std::net::Ipv4Addr;

pub fn lan_broadcasts(skip: &str) -> Vec<Ipv4Addr> {
    let mut out: Vec<Ipv4Addr> = crate::platform::ifaddrs::list()
        .into_iter()
        .filter(|a| a.name != skip)
        .filter_map(|a| a.broadcast)
        .collect();
    out.sort();
    out.dedup();
    out
}
