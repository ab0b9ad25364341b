//! Packs encrypted datagrams for UDP GSO.
//!
//! Datagrams are written back to back into one buffer. Consecutive datagrams to the same
//! destination with the same length form a *run* that the kernel can send with one `sendmsg`
//! and `UDP_SEGMENT` = that length; a shorter datagram may close a run (GSO allows a short last
//! segment). Anything else starts a new run. Nothing here allocates after construction.

use std::net::SocketAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub dst: SocketAddr,
    /// Offset of the first datagram in the batch buffer.
    pub start: usize,
    /// Length of every datagram in the run but possibly the last.
    pub segment: usize,
    /// Total bytes in the run.
    pub len: usize,
    pub count: usize,
    /// A shorter datagram ended the run; nothing more may join it.
    closed: bool,
}

pub struct TxBatch {
    buf: Vec<u8>,
    used: usize,
    slot: usize,
    runs: Vec<Run>,
    max_segments: usize,
    max_run_bytes: usize,
}

/// The kernel caps one GSO send at 64 KiB of UDP payload.
pub const MAX_GSO_BYTES: usize = 65_000;

impl TxBatch {
    /// A batch of `slots` datagrams of at most `slot` bytes each.
    pub fn new(slots: usize, slot: usize) -> Self {
        Self {
            buf: vec![0; slots * slot],
            used: 0,
            slot,
            runs: Vec::with_capacity(slots),
            max_segments: 1,
            max_run_bytes: MAX_GSO_BYTES,
        }
    }

    /// How many datagrams the socket accepts in one GSO send (1 = no GSO).
    pub fn set_max_segments(&mut self, n: usize) {
        self.max_segments = n.max(1);
    }

    /// Room for the next datagram, or `None` when the batch must be flushed first.
    pub fn spare(&mut self) -> Option<&mut [u8]> {
        let end = self.used + self.slot;
        if end > self.buf.len() {
            return None;
        }
        Some(&mut self.buf[self.used..end])
    }

    /// Records that `len` bytes were written at the start of [`Self::spare`] for `dst`.
    pub fn commit(&mut self, dst: SocketAddr, len: usize) {
        assert!(len <= self.slot, "datagram larger than a slot");
        let start = self.used;
        self.used += len;
        if let Some(run) = self.runs.last_mut() {
            let joins = run.dst == dst
                && !run.closed
                && len <= run.segment
                && run.count < self.max_segments
                && run.len + len <= self.max_run_bytes;
            if joins {
                run.len += len;
                run.count += 1;
                run.closed = len < run.segment;
                return;
            }
        }
        self.runs.push(Run {
            dst,
            start,
            segment: len,
            len,
            count: 1,
            closed: false,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// The runs with their bytes, in the order the datagrams were committed.
    pub fn runs(&self) -> impl Iterator<Item = (Run, &[u8])> {
        self.runs
            .iter()
            .map(|r| (*r, &self.buf[r.start..r.start + r.len]))
    }

    pub fn clear(&mut self) {
        self.used = 0;
        self.runs.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(p: u16) -> SocketAddr {
        SocketAddr::from(([10, 0, 0, 1], p))
    }

    fn push(b: &mut TxBatch, dst: SocketAddr, len: usize, fill: u8) {
        let s = b.spare().expect("room");
        s[..len].fill(fill);
        b.commit(dst, len);
    }

    fn shape(b: &TxBatch) -> Vec<(u16, usize, usize, usize)> {
        b.runs()
            .map(|(r, bytes)| {
                assert_eq!(bytes.len(), r.len);
                (r.dst.port(), r.segment, r.count, r.len)
            })
            .collect()
    }

    #[test]
    fn grouping_table() {
        // (max_segments, datagrams as (port, len)) -> runs as (port, segment, count, len)
        type Case = (usize, Vec<(u16, usize)>, Vec<(u16, usize, usize, usize)>);
        let cases: Vec<Case> = vec![
            (
                64,
                vec![(1, 100), (1, 100), (1, 100)],
                vec![(1, 100, 3, 300)],
            ),
            // A short datagram closes the run.
            (
                64,
                vec![(1, 100), (1, 60), (1, 100)],
                vec![(1, 100, 2, 160), (1, 100, 1, 100)],
            ),
            // A longer one cannot join.
            (
                64,
                vec![(1, 60), (1, 100)],
                vec![(1, 60, 1, 60), (1, 100, 1, 100)],
            ),
            // Destination change splits.
            (
                64,
                vec![(1, 100), (2, 100), (1, 100)],
                vec![(1, 100, 1, 100), (2, 100, 1, 100), (1, 100, 1, 100)],
            ),
            // Segment cap.
            (
                2,
                vec![(1, 100), (1, 100), (1, 100)],
                vec![(1, 100, 2, 200), (1, 100, 1, 100)],
            ),
            // No GSO: one datagram per run.
            (
                1,
                vec![(1, 100), (1, 100)],
                vec![(1, 100, 1, 100), (1, 100, 1, 100)],
            ),
        ];
        for (max, input, want) in cases {
            let mut b = TxBatch::new(16, 200);
            b.set_max_segments(max);
            for (i, (port, len)) in input.iter().enumerate() {
                push(&mut b, a(*port), *len, i as u8);
            }
            assert_eq!(shape(&b), want, "max={max} input={input:?}");
        }
    }

    #[test]
    fn runs_never_exceed_the_gso_byte_cap() {
        let mut b = TxBatch::new(128, 1500);
        b.set_max_segments(128);
        for _ in 0..100 {
            push(&mut b, a(1), 1452, 0);
        }
        for (r, _) in b.runs() {
            assert!(r.len <= MAX_GSO_BYTES);
        }
        assert_eq!(b.runs().map(|(r, _)| r.count).sum::<usize>(), 100);
    }

    #[test]
    fn bytes_are_contiguous_and_full_batch_refuses() {
        let mut b = TxBatch::new(2, 10);
        b.set_max_segments(8);
        push(&mut b, a(1), 10, 0xAA);
        push(&mut b, a(1), 10, 0xBB);
        assert!(b.spare().is_none());
        let (_, bytes) = b.runs().next().unwrap();
        assert_eq!(&bytes[..10], &[0xAA; 10]);
        assert_eq!(&bytes[10..], &[0xBB; 10]);
        b.clear();
        assert!(b.is_empty());
        assert!(b.spare().is_some());
    }
}
