//! No packet filter of ours on Windows yet: the rules that copy games' LAN broadcasts onto the
//! overlay (and forwarding into this PC's LAN) would need a filter driver such as WinDivert,
//! which Warren does not ship. The callers report this in plain words.

use anyhow::{bail, Result};

pub fn apply(_script: &str, what: &str) -> Result<()> {
    bail!(
        "{what} are not available on Windows yet: games on your PC find friends' games when they \
         look on the Warren adapter, and Direct Connect by NAME.warren or address always works"
    )
}
