//! Everything the daemon does differently on Linux and on Windows, one module per concern and
//! one file per system (`linux/`, `windows/`), so the rest of the daemon is shared. Both
//! directories have the same modules with the same names; CI compiles both (the Windows build
//! cross-compiled, its tests run under Wine).
//!
//! - `api_listener`: the local API's endpoint (a Unix socket; a named pipe with an ACL);
//! - `host`: who we run as, where state lives by default, the host's name, limits;
//! - `poll`: waiting for sockets to become readable or writable;
//! - `tun_device`: making the overlay interface (TUN on Linux, a wintun adapter on Windows);
//! - `tun_io`: packets in and out of the TUN device (batched with offload on Linux, one by one
//!   through wintun on Windows);
//! - `ifaddrs`: this host's interface addresses; `address_watch`: noticing a new one;
//! - `dns_routing`: sending `*.warren` queries to our server (systemd-resolved, NRPT);
//! - `packet_filter`: running the rules for game discovery and LAN forwarding (nftables);
//! - `routing`: routes to peers' LANs, the forwarding switches;
//! - `child`: a hosted network's coordinator as a child process that dies with the daemon;
//! - `tcp`: a connection's smoothed RTT and user timeout, sharing a port;
//! - `socket_table`: where listening sockets are bound, for `warren check` (`/proc/net`, the
//!   IP Helper's extended TCP and UDP tables);
//! - `gateway`: the default IPv4 gateway, for port mapping (`/proc/net/route`, the IP
//!   Helper's forward table);
//! - `shutdown`: how the daemon is told to stop (signals, the Windows service manager).

#[cfg(not(windows))]
#[path = "linux/mod.rs"]
mod imp;
#[cfg(windows)]
#[path = "windows/mod.rs"]
mod imp;

pub use imp::{
    address_watch, api_listener, child, dns_routing, gateway, host, ifaddrs, packet_filter, poll,
    routing, shutdown, socket_table, tcp, tun_device, tun_io,
};

// Types both sides share.

use std::net::{IpAddr, Ipv4Addr};

/// One address of one interface (`ifaddrs::list`).
pub struct IfAddr {
    pub name: String,
    pub ip: IpAddr,
    /// Its directed broadcast address, for an IPv4 address on a broadcast-capable interface.
    pub broadcast: Option<Ipv4Addr>,
    /// The length of its network prefix (from the netmask), when the system gives one.
    pub prefix_len: Option<u8>,
}

/// What `poll` waits for.
#[derive(Clone, Copy)]
pub enum Want {
    Read,
    Write,
}

/// Why `packet_filter::apply` did not apply a script.
pub enum Failure {
    /// No filter to apply it with: `nft` cannot run, or the system has none of ours.
    Unavailable(String),
    /// The filter refused the script; its words. (Windows, which has none, never refuses.)
    #[cfg_attr(windows, allow(dead_code))]
    Refused(String),
}
