//! The overlay interface on Windows: a wintun adapter (wintun.dll beside warrend.exe, as the
//! installer puts it) with the overlay addresses; Windows adds the on-link routes of their
//! prefixes itself.

use crate::tun::TunSettings;
use anyhow::Result;
use tun_rs::{DeviceBuilder, SyncDevice};
use warren_proto::overlay::{OVERLAY_V4, OVERLAY_V6};

/// Windows' IPv6 can be off per adapter but the stack is always there.
pub fn ipv6_off() -> Option<String> {
    None
}

/// Wintun passes whole packets: no super-packets either way.
pub fn offload_in_use(_dev: &SyncDevice) -> (bool, bool) {
    (false, false)
}

pub fn create(s: &TunSettings) -> Result<SyncDevice> {
    if s.offload {
        tracing::debug!("wintun passes whole packets: no segmentation offload to ask for");
    }
    let mut b = DeviceBuilder::new()
        .name(&s.name)
        .description("Warren")
        .ipv4(s.v4, OVERLAY_V4.prefix_len(), None)
        .mtu(s.mtu);
    if let Some(v6) = s.v6 {
        b = b.ipv6(v6, OVERLAY_V6.prefix_len());
    }
    b.build_sync().map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::PermissionDenied => {
                " (Warren's service runs as SYSTEM; started by hand, warrend needs a terminal run \
                 as administrator)"
            }
            std::io::ErrorKind::NotFound => {
                " (wintun.dll is missing beside warrend.exe: reinstall Warren)"
            }
            _ => "",
        };
        anyhow::anyhow!("cannot create the Warren adapter {}: {e}{hint}", s.name)
    })
}
