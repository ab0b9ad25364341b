//! The relay socket's batched I/O: one `recvmmsg` of GRO-coalesced buffers in, GSO runs out
//! (quinn-udp does both on Linux and falls back to a datagram per call elsewhere).
//!
//! A relayed TCP stream arrives as GSO bursts of equal-sized Sends from one host to one peer,
//! so the Delivers they become are equal-sized too and leave as one `sendmsg` per burst: the
//! relay pays a few system calls per 64 KiB instead of two per datagram, which is what kept
//! it far below a direct path.

use quinn_udp::{RecvMeta, Transmit, UdpSockRef, UdpSocketState};
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use warren_proto::tx_batch::TxBatch;

/// Buffers per `recvmmsg`; each holds up to 64 KiB of GRO-coalesced datagrams.
pub const RX_BATCH: usize = 16;
/// Larger than any UDP datagram, and than any GRO buffer, so none arrives cut short.
pub const RX_CHUNK: usize = 65_536;
/// Several MB, so a burst from many hosts (or one fast one) is not dropped by the kernel
/// while the relay task is busy with the previous batch.
const SOCKET_BUFFER: usize = 8 << 20;

/// System calls and datagrams, to see (in the debug log and in tests) that I/O is batched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoCounters {
    pub recv_calls: u64,
    pub datagrams_in: u64,
    pub send_calls: u64,
    pub datagrams_out: u64,
    pub send_errors: u64,
}

pub struct RelaySocket {
    socket: UdpSocket,
    /// `None` only on Windows where quinn-udp cannot set the socket up (Wine): then a
    /// datagram per call (see `plain_udp`).
    state: Option<UdpSocketState>,
    pub counters: IoCounters,
}

/// What one receive call brought: `n` buffers, each one or several datagrams of `stride`
/// bytes from one sender.
pub struct RxBatch {
    buf: Vec<u8>,
    metas: [RecvMeta; RX_BATCH],
    n: usize,
}

impl Default for RxBatch {
    fn default() -> Self {
        Self {
            buf: vec![0; RX_BATCH * RX_CHUNK],
            metas: [RecvMeta::default(); RX_BATCH],
            n: 0,
        }
    }
}

impl RxBatch {
    /// The datagrams received, one by one, with their senders.
    pub fn datagrams(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> {
        self.metas[..self.n]
            .iter()
            .enumerate()
            .flat_map(|(i, meta)| {
                let data = &self.buf[i * RX_CHUNK..i * RX_CHUNK + meta.len];
                let len = data.len();
                let stride = if meta.stride == 0 { len } else { meta.stride };
                // A zero-length datagram is still one datagram (the core counts it as malformed).
                let count = if len == 0 { 1 } else { len.div_ceil(stride) };
                (0..count).map(move |k| {
                    let start = (k * stride).min(len);
                    (meta.addr, &data[start..(start + stride).min(len)])
                })
            })
    }
}

impl RelaySocket {
    pub fn new(socket: UdpSocket) -> io::Result<Self> {
        warren_proto::socket_buffers::enlarge(&socket, SOCKET_BUFFER);
        let state = UdpSocketState::new(UdpSockRef::from(&socket));
        #[cfg(not(windows))]
        let state = Some(state?);
        #[cfg(windows)]
        let state = state
            .inspect_err(|e| tracing::warn!("relay without quinn-udp (one datagram per call): {e}"))
            .ok();
        Ok(Self {
            socket,
            state,
            counters: IoCounters::default(),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// How many datagrams one send may carry (1: no GSO).
    pub fn max_gso_segments(&self) -> usize {
        self.state
            .as_ref()
            .map_or(1, UdpSocketState::max_gso_segments)
    }

    /// Waits for datagrams and reads as many as one call gives into `rx`. Cancel-safe: a
    /// dropped call has read nothing.
    pub async fn recv(&mut self, rx: &mut RxBatch) -> io::Result<()> {
        loop {
            self.socket.readable().await?;
            let received = self.socket.try_io(Interest::READABLE, || {
                let Some(state) = &self.state else {
                    let (len, addr) = self.socket.try_recv_from(&mut rx.buf[..RX_CHUNK])?;
                    // quinn-udp's metadata cannot be built whole (it is non-exhaustive).
                    let meta = &mut rx.metas[0];
                    (meta.addr, meta.len, meta.stride) = (addr, len, len);
                    return Ok(1);
                };
                let mut chunks = rx.buf.chunks_mut(RX_CHUNK);
                let mut iovs: [IoSliceMut; RX_BATCH] = std::array::from_fn(|_| {
                    IoSliceMut::new(chunks.next().expect("RX_BATCH chunks"))
                });
                state.recv(UdpSockRef::from(&self.socket), &mut iovs, &mut rx.metas)
            });
            match received {
                Ok(n) => {
                    rx.n = n;
                    self.counters.recv_calls += 1;
                    self.counters.datagrams_in += rx.datagrams().count() as u64;
                    return Ok(());
                }
                // Readiness was stale; `try_io` cleared it, so the next wait is real.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => {
                    rx.n = 0;
                    return Err(e);
                }
            }
        }
    }

    /// Sends every run of `batch` (one GSO send each), waiting for room in the socket buffer
    /// rather than dropping; a send that fails is counted and skipped.
    pub async fn send(&mut self, batch: &TxBatch) {
        for (run, bytes) in batch.runs() {
            let transmit = Transmit {
                destination: run.dst,
                ecn: None,
                contents: bytes,
                segment_size: (run.count > 1).then_some(run.segment),
                src_ip: None,
            };
            let sent = loop {
                let r = self
                    .socket
                    .try_io(Interest::WRITABLE, || match &self.state {
                        Some(state) => state.try_send(UdpSockRef::from(&self.socket), &transmit),
                        None => send_plain(&self.socket, &transmit),
                    });
                match r {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if let Err(e) = self.socket.writable().await {
                            break Err(e);
                        }
                    }
                    other => break other,
                }
            };
            self.counters.send_calls += 1;
            match sent {
                Ok(()) => self.counters.datagrams_out += run.count as u64,
                Err(e) => {
                    self.counters.send_errors += 1;
                    tracing::trace!(dst = %run.dst, "relay send: {e}");
                }
            }
        }
    }
}

/// One datagram per call, through the plain socket's sender.
#[cfg(windows)]
fn send_plain(socket: &UdpSocket, t: &Transmit) -> io::Result<()> {
    crate::plain_udp::send_segments(socket, t.destination, t.contents, t.segment_size)
}

/// Never called: only Windows runs without quinn-udp's state.
#[cfg(not(windows))]
fn send_plain(_: &UdpSocket, _: &Transmit) -> io::Result<()> {
    unreachable!("quinn-udp sets up every relay socket off Windows")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    async fn relay_socket() -> RelaySocket {
        RelaySocket::new(UdpSocket::bind((LO, 0)).await.unwrap()).unwrap()
    }

    #[tokio::test]
    async fn one_receive_call_takes_a_whole_burst() {
        let mut sock = relay_socket().await;
        let to = sock.local_addr().unwrap();
        let sender = std::net::UdpSocket::bind((LO, 0)).unwrap();
        // Different sizes, so the kernel cannot coalesce them (GRO): recvmmsg must.
        for i in 0..12u8 {
            sender.send_to(&vec![i; 100 + usize::from(i)], to).unwrap();
        }
        let mut rx = RxBatch::default();
        let mut got = Vec::new();
        while got.len() < 12 {
            tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut rx))
                .await
                .expect("the burst")
                .unwrap();
            got.extend(rx.datagrams().map(|(from, d)| (from, d.to_vec())));
        }
        for (i, (from, d)) in got.iter().enumerate() {
            assert_eq!(*from, sender.local_addr().unwrap());
            assert_eq!(
                *d,
                vec![i as u8; 100 + i],
                "datagram {i} intact and in order"
            );
        }
        // Only Linux receives several datagrams per call (recvmmsg); elsewhere it is one each.
        #[cfg(target_os = "linux")]
        assert!(
            sock.counters.recv_calls < 4,
            "12 waiting datagrams took {} receive calls",
            sock.counters.recv_calls
        );
        assert_eq!(sock.counters.datagrams_in, 12);
    }

    #[tokio::test]
    async fn a_run_of_equal_datagrams_leaves_in_one_send() {
        let mut sock = relay_socket().await;
        let receiver = std::net::UdpSocket::bind((LO, 0)).unwrap();
        receiver
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let dst = receiver.local_addr().unwrap();
        let mut batch = TxBatch::new(16, 2048);
        batch.set_max_segments(sock.max_gso_segments());
        for i in 0..10u8 {
            let len = if i == 9 { 500 } else { 1200 };
            batch.spare().unwrap()[..len].fill(i);
            batch.commit(dst, len);
        }
        sock.send(&batch).await;
        let mut buf = [0u8; 4096];
        for i in 0..10u8 {
            let n = receiver.recv(&mut buf).unwrap();
            let len = if i == 9 { 500 } else { 1200 };
            assert_eq!(&buf[..n], &vec![i; len][..], "datagram {i}");
        }
        assert_eq!(sock.counters.datagrams_out, 10);
        assert_eq!(sock.counters.send_errors, 0);
        if sock.max_gso_segments() > 1 {
            assert_eq!(sock.counters.send_calls, 1, "one GSO send for the run");
        }
    }
}
