//! The wintun device: whole IP packets one at a time, no headers, no coalescing.

use std::io;
use tun_rs::SyncDevice;

/// Wintun packets carry no header.
pub const HDR: usize = 0;
/// One packet per read.
pub const BATCH: usize = 1;
/// Nothing is split on read: `original` is unused.
pub const READ_ROOM: usize = 0;

/// Wintun takes packets one by one; nothing to coalesce. (Made as Linux's GRO table is.)
#[derive(Default)]
pub struct Coalescer {
    _nothing: (),
}

/// Reads one packet into `bufs[0]` (its length in `sizes[0]`); `Ok(0)` when the device is
/// empty. With `wait` it blocks until a packet comes.
pub fn read(
    dev: &SyncDevice,
    _original: &mut [u8],
    bufs: &mut [Vec<u8>],
    sizes: &mut [usize],
    wait: bool,
) -> io::Result<usize> {
    let got = if wait {
        dev.recv(&mut bufs[0])
    } else {
        dev.try_recv(&mut bufs[0])
    };
    match got {
        Ok(n) => {
            sizes[0] = n;
            Ok(1)
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
        Err(e) => Err(e),
    }
}

/// Writes each packet.
pub fn write(dev: &SyncDevice, _coalescer: &mut Coalescer, bufs: &mut [Vec<u8>]) -> io::Result<()> {
    for b in bufs.iter() {
        dev.send(&b[HDR..])?;
    }
    Ok(())
}
