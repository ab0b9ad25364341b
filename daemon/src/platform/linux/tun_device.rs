//! The overlay interface: a TUN device with the host's overlay addresses, up, with its routes.

use anyhow::Result;
use tun_rs::{DeviceBuilder, SyncDevice};
use warren_proto::overlay::{OVERLAY_V4, OVERLAY_V6};

pub use crate::tun::TunSettings;

/// Why this host has no IPv6 for a new interface, if it has none: the kernel was booted without
/// it, or `net.ipv6.conf.{all,default}.disable_ipv6` is set.
pub fn ipv6_off() -> Option<String> {
    let conf = std::path::Path::new("/proc/sys/net/ipv6/conf");
    if !conf.exists() {
        return Some("the kernel has no IPv6".into());
    }
    for which in ["all", "default"] {
        let path = conf.join(which).join("disable_ipv6");
        if std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == "1") {
            return Some(format!("net.ipv6.conf.{which}.disable_ipv6 = 1"));
        }
    }
    None
}

/// Whether the device hands over TCP and UDP super-packets (virtio headers with TSO / USO).
pub fn offload_in_use(dev: &SyncDevice) -> (bool, bool) {
    (dev.tcp_gso(), dev.udp_gso())
}

/// Creates the device. With `offload`, asks for virtio headers plus TSO/USO so the kernel hands
/// over 64 KiB super-packets; if the kernel refuses, falls back to plain packets.
pub fn create(s: &TunSettings) -> Result<SyncDevice> {
    let dev = match s.offload {
        true => match build(s, true) {
            Ok(dev) => Some(dev),
            Err(e) => {
                tracing::warn!("TUN offload refused ({e}); using plain packets");
                None
            }
        },
        false => None,
    };
    let dev = match dev {
        Some(dev) => dev,
        None => build(s, false).map_err(|e| {
            let hint = match e.kind() {
                std::io::ErrorKind::PermissionDenied if s.v6.is_some() => {
                    " (root or CAP_NET_ADMIN is needed; if IPv6 is turned off on this \
                     interface only, turn it off for the host or on for new interfaces)"
                }
                std::io::ErrorKind::PermissionDenied => " (root or CAP_NET_ADMIN is needed)",
                std::io::ErrorKind::NotFound => " (/dev/net/tun is missing: load the tun module)",
                _ => "",
            };
            anyhow::anyhow!("cannot create TUN device {}: {e}{hint}", s.name)
        })?,
    };
    if s.v6.is_some() {
        drop_link_local(&dev, &s.name);
    }
    Ok(dev)
}

/// Takes the kernel's link-local IPv6 address (fe80::/64) off the interface, for good. Peers
/// route only overlay addresses, so a packet from a link-local source — which is what the
/// kernel picks for link-scope multicast such as mDNS on ff02::fb while it has one — would be
/// refused by every peer; without one, the kernel uses the overlay address and peers can answer.
fn drop_link_local(dev: &SyncDevice, name: &str) {
    let mode = format!("/proc/sys/net/ipv6/conf/{name}/addr_gen_mode");
    if let Err(e) = std::fs::write(&mode, "1") {
        tracing::debug!("{mode}: {e}");
    }
    for addr in dev.addresses().unwrap_or_default() {
        if let std::net::IpAddr::V6(v6) = addr {
            if v6.is_unicast_link_local() {
                if let Err(e) = dev.remove_address(addr) {
                    tracing::warn!("cannot remove {v6} from {name}: {e}");
                }
            }
        }
    }
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
