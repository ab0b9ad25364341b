//! No packet filter of ours on Windows yet: the rules that copy games' LAN broadcasts onto the
//! overlay (and forwarding into this PC's LAN) would need a filter driver such as WinDivert,
//! which Warren does not ship. The callers say so in their words.

pub use crate::platform::Failure;

pub fn apply(_script: &str) -> Result<(), Failure> {
    Err(Failure::Unavailable(
        "not available on Windows yet (it needs a packet filter driver Warren does not ship)"
            .into(),
    ))
}
