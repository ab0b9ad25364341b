//! The TUN device with virtio headers (offload): TSO super-packets split on read, flows
//! re-coalesced on write (tun-rs's GRO table).

use super::super::poll::{self, Want};
use std::io;
use std::os::fd::AsRawFd;
use tun_rs::SyncDevice;

/// Room before each packet written for the virtio header.
pub const HDR: usize = tun_rs::VIRTIO_NET_HDR_LEN;
/// Packets one read may split a super-packet into.
pub const BATCH: usize = tun_rs::IDEAL_BATCH_SIZE;
/// Room for what one read takes from the device (header plus a 64 KiB super-packet).
pub const READ_ROOM: usize = HDR + 65535;

pub type Coalescer = tun_rs::GROTable;

/// Reads packets into `bufs` (their lengths in `sizes`); `Ok(0)` when the device is empty.
/// With `wait` it first waits for a packet. The descriptor stays blocking (other threads write
/// through it, and O_NONBLOCK would change their writes too): readiness is asked with poll.
pub fn read(
    dev: &SyncDevice,
    original: &mut [u8],
    bufs: &mut [Vec<u8>],
    sizes: &mut [usize],
    wait: bool,
) -> io::Result<usize> {
    if !poll::wait(dev.as_raw_fd(), Want::Read, if wait { -1 } else { 0 })? {
        return Ok(0);
    }
    dev.recv_multiple(original, bufs, sizes, 0)
}

/// Writes packets, each after [`HDR`] bytes of room, coalescing flows.
pub fn write(dev: &SyncDevice, coalescer: &mut Coalescer, bufs: &mut [Vec<u8>]) -> io::Result<()> {
    dev.send_multiple(coalescer, bufs, HDR).map(|_| ())
}
