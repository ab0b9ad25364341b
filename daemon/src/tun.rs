//! The overlay interface: a TUN device with the host's overlay addresses, up, with its routes
//! (made by the platform's `tun_device`).

use std::net::{Ipv4Addr, Ipv6Addr};

pub use crate::platform::tun_device::{create, ipv6_off, offload_in_use};

pub struct TunSettings {
    pub name: String,
    pub v4: Ipv4Addr,
    pub v6: Option<Ipv6Addr>,
    pub mtu: u16,
    /// Ask for segmentation offload (Linux's virtio headers; Windows' wintun has none).
    pub offload: bool,
}
