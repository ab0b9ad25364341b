//! Faults: loss, partitions, a relay that stops answering, hosts that move, routers that
//! forget their mappings. (The coordinator's crash is with the control connections.)

use super::{lan_of, World};
use crate::fabric::{HostId, Iface, NatId};
use std::net::IpAddr;

impl World {
    /// Drops a fraction of every datagram from now on.
    pub fn set_loss(&mut self, percent: u32) {
        self.loss_percent = percent;
    }

    /// Host `h`'s interfaces change (it moved to another network): its node is told, and its
    /// control connection, which came from the old address, drops and is dialed again.
    pub fn roam(&mut self, h: HostId, ifaces: Vec<Iface>) {
        let lan = lan_of(&ifaces);
        self.fabric.hosts[h] = ifaces;
        let now = self.now;
        let out = self.hosts[h].network_changed(now, lan);
        self.carry(h, out);
        self.drop_link(h);
    }

    /// The router `n` forgets its mappings (a reboot, a timeout): a rebinding.
    pub fn rebind(&mut self, n: NatId) {
        self.fabric.routers[n].nat.rebind();
    }

    /// The relay stops answering (or answers again), its state kept: a relay that is
    /// unreachable for a while, as the lab's relay killed and restarted with its tokens.
    pub fn set_relay_up(&mut self, up: bool) {
        self.relay_up = up;
    }

    pub(super) fn is_cut(&self, a: IpAddr, b: IpAddr) -> bool {
        self.cuts
            .iter()
            .any(|&(x, y)| (x, y) == (a, b) || (y, x) == (a, b))
    }

    /// Datagrams between addresses `a` and `b` are lost from now on (a partition between two
    /// places on the internet; each still reaches everyone else).
    pub fn cut(&mut self, a: IpAddr, b: IpAddr) {
        self.cuts.push((a, b));
    }

    /// Ends every partition.
    pub fn heal(&mut self) {
        self.cuts.clear();
    }
}
