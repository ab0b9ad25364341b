//! The overlay interface: a TUN device with the host's overlay addresses, up, with its routes.

use anyhow::{Context, Result};
use std::net::{Ipv4Addr, Ipv6Addr};
use tun_rs::{DeviceBuilder, SyncDevice};
use warren_proto::overlay::{OVERLAY_V4, OVERLAY_V6};

pub struct TunSettings {
    pub name: String,
    pub v4: Ipv4Addr,
    pub v6: Option<Ipv6Addr>,
    pub mtu: u16,
    pub offload: bool,
}

/// Creates the device. With `offload`, asks for virtio headers plus TSO/USO so the kernel hands
/// over 64 KiB super-packets; if the kernel refuses, falls back to plain packets.
pub fn create(s: &TunSettings) -> Result<SyncDevice> {
    if s.offload {
        match build(s, true) {
            Ok(dev) => return Ok(dev),
            Err(e) => tracing::warn!("TUN offload refused ({e}); using plain packets"),
        }
    }
    build(s, false).with_context(|| {
        format!(
            "cannot create TUN device {} (is /dev/net/tun there, and are we root or CAP_NET_ADMIN?)",
            s.name
        )
    })
}

fn build(s: &TunSettings, offload: bool) -> std::io::Result<SyncDevice> {
    // The /10 and /64 prefixes give the kernel the routes to the whole overlay.
    let mut b = DeviceBuilder::new()
        .name(&s.name)
        .ipv4(s.v4, OVERLAY_V4.prefix_len(), None)
        .mtu(s.mtu)
        .offload(offload);
    if let Some(v6) = s.v6 {
        b = b.ipv6(v6, OVERLAY_V6.prefix_len());
    }
    b.build_sync()
}
