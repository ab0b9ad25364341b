//! TUN → UDP: drain the TUN device into the lanes, encrypt small packets first.
//!
//! The device's ring holds 500 entries of up to 64 KiB each: a game's packet behind a download
//! waited milliseconds there. Reading is cheap next to encrypting, so each round reads the
//! device until it is empty (a 64 KiB TSO super-packet split into MTU segments per read), then
//! encrypts one batch — every small packet first — and sends it with GSO.

use super::{drain_transmits, flush_pending, Dataplane};
use crate::platform::tun_io;
use anyhow::Result;
use std::io;
use std::time::Instant;
use warren_daemon_core::counters::DropReason;
use warren_daemon_core::lanes::{Lanes, Limits};
use warren_daemon_core::tx_batch::TxBatch;

/// How much may wait to be encrypted: 1 MiB is under 2 ms of a 5 Gbit/s download, and 2 048
/// packets (each in its own MTU-sized buffer) absorb a few milliseconds' burst of a game flood.
const LIMITS: Limits = Limits {
    small: 256,
    bulk_bytes: 1 << 20,
    bulk_packets: 2048,
    // Encryption happens after the lanes, so overtaking never upsets the replay window.
    overtake: usize::MAX,
};
/// Reads of the device per round at most (each up to a 64 KiB super-packet): enough to find a
/// game's packet among a download's, few enough that what was read is still in the CPU's cache
/// when it is encrypted (64 reads a round cost ~7 % of TCP throughput in the benchmark).
const READS_PER_ROUND: usize = 8;

/// One packet read from the device: its buffer and length.
type Packet = (Vec<u8>, usize);

pub(super) fn tun_to_udp(dp: &Dataplane) -> Result<()> {
    let packet_buf = (dp.mtu as usize).max(1500) + 64;
    let mut reader = Reader {
        original: vec![0u8; tun_io::READ_ROOM],
        bufs: vec![vec![0u8; packet_buf]; tun_io::BATCH],
        sizes: vec![0usize; tun_io::BATCH],
        pool: Vec::new(),
        packet_buf,
        errors: 0,
    };
    let mut lanes: Lanes<Packet> = Lanes::new(LIMITS);
    let mut batch = TxBatch::new(tun_io::BATCH + 16, dp.slot_size());
    let mut drained = false;
    loop {
        // Idle: wait for the next packet, no empty read first.
        let idle = lanes.is_empty() && drained;
        drained = reader.fill(dp, &mut lanes, idle)?;
        if lanes.is_empty() {
            continue;
        }
        batch.set_max_segments(dp.udp.state.max_gso_segments());
        let now = Instant::now();
        let more = {
            let mut node = dp.node();
            while let Some(out) = batch.spare() {
                let Some((buf, len)) = lanes.pop() else { break };
                if let Some(t) = node.handle_tun_packet(now, &buf[..len], out) {
                    batch.commit(t.dst, t.len);
                }
                reader.pool.push(buf);
            }
            drain_transmits(&mut node, &mut batch)
        };
        dp.send_batch(&batch);
        batch.clear();
        if more {
            flush_pending(dp, &mut batch);
        }
    }
}

struct Reader {
    original: Vec<u8>,
    bufs: Vec<Vec<u8>>,
    sizes: Vec<usize>,
    /// Buffers handed back after encryption, reused for the next reads.
    pool: Vec<Vec<u8>>,
    packet_buf: usize,
    errors: u32,
}

impl Reader {
    /// Reads the device into `lanes` until it is empty (`true`) or a round's reads are used up.
    /// `idle`: nothing is queued, so the first read waits for a packet.
    fn fill(&mut self, dp: &Dataplane, lanes: &mut Lanes<Packet>, idle: bool) -> Result<bool> {
        let mut full = 0u64;
        let mut drained = false;
        for read in 0..READS_PER_ROUND {
            let wait = idle && read == 0;
            let n = match tun_io::read(
                &dp.tun,
                &mut self.original,
                &mut self.bufs,
                &mut self.sizes,
                wait,
            ) {
                Ok(0) => {
                    drained = true;
                    break;
                }
                Ok(n) => {
                    self.errors = 0;
                    n
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // A bad frame is dropped; a device that keeps failing is gone.
                    tracing::debug!("TUN read: {e}");
                    dp.node().count_drop(DropReason::Malformed);
                    self.errors += 1;
                    if self.errors > 1000 {
                        return Err(e.into());
                    }
                    continue;
                }
            };
            for i in 0..n {
                let fresh = self
                    .pool
                    .pop()
                    .unwrap_or_else(|| vec![0u8; self.packet_buf]);
                let buf = std::mem::replace(&mut self.bufs[i], fresh);
                let len = self.sizes[i];
                let kind = lanes.kind_of_packet(&buf[..len]);
                lanes.push((buf, len), kind, |(old, _), _| {
                    full += 1;
                    self.pool.push(old);
                });
            }
        }
        if full > 0 {
            let mut node = dp.node();
            for _ in 0..full {
                node.count_drop(DropReason::QueueFull);
            }
        }
        Ok(drained)
    }
}
