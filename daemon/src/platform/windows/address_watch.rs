//! Notices when this host gains an address. Windows would call back on a thread pool
//! (NotifyUnicastIpAddressChange); comparing the address list every few seconds serves the
//! same purpose — telling peers sooner than the 25 s keepalive — with no callbacks to tear
//! down.

use anyhow::Result;
use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;

const LOOK_EVERY: Duration = Duration::from_secs(2);

pub struct AddressWatch {
    known: HashSet<IpAddr>,
}

impl AddressWatch {
    pub fn open() -> Result<Self> {
        Ok(Self { known: current() })
    }

    /// Blocks until an address appears that was not there before.
    pub fn next_new_address(&mut self) -> Result<()> {
        loop {
            std::thread::sleep(LOOK_EVERY);
            let now = current();
            let gained = now.difference(&self.known).next().is_some();
            self.known = now;
            if gained {
                return Ok(());
            }
        }
    }
}

fn current() -> HashSet<IpAddr> {
    super::ifaddrs::list().into_iter().map(|a| a.ip).collect()
}
