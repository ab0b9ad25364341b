//! A plain UDP socket for QUIC and the relay where quinn-udp cannot set one up: one datagram
//! per system call, no ECN, no destination address. Windows only, and there only as a fallback.
//!
//! quinn-udp asks every Windows socket for `IPV6_V6ONLY` (an IPv4 one too) and turns on
//! `IP_RECVECN`, and gives up when either fails. Windows answers both; Wine (which runs the
//! Windows build in the lab) answers neither for an IPv4 socket, and the coordinator could not
//! start there. What is lost here matters little to a coordinator: ECN (congestion signals for
//! small control streams), batching (one datagram per call is what Windows gets anyway), and
//! replying from the address a datagram was sent to (only a listener on 0.0.0.0 of a host
//! with several addresses needs it).

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio::net::UdpSocket;

/// Sends `contents` to `to` as datagrams of `segment` bytes each (one if `None`), as quinn-udp
/// would with segmentation offload; the first error ends it.
pub fn send_segments(
    socket: &UdpSocket,
    to: SocketAddr,
    contents: &[u8],
    segment: Option<usize>,
) -> io::Result<()> {
    let size = segment.unwrap_or(contents.len()).max(1);
    if contents.is_empty() {
        socket.try_send_to(contents, to)?;
    }
    for datagram in contents.chunks(size) {
        socket.try_send_to(datagram, to)?;
    }
    Ok(())
}

/// quinn's socket, without quinn-udp.
pub struct PlainUdp {
    io: UdpSocket,
}

impl fmt::Debug for PlainUdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainUdp")
            .field("local", &self.io.local_addr().ok())
            .finish()
    }
}

impl PlainUdp {
    /// Must be called inside the tokio runtime.
    pub fn new(socket: std::net::UdpSocket) -> io::Result<Arc<Self>> {
        socket.set_nonblocking(true)?;
        Ok(Arc::new(Self {
            io: UdpSocket::from_std(socket)?,
        }))
    }
}

impl AsyncUdpSocket for PlainUdp {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(Writable(self))
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        send_segments(
            &self.io,
            transmit.destination,
            transmit.contents,
            transmit.segment_size,
        )
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.io.poll_recv_ready(cx))?;
            match self.io.try_recv_from(&mut bufs[0]) {
                Ok((len, addr)) => {
                    meta[0] = RecvMeta {
                        addr,
                        len,
                        stride: len,
                        ecn: None,
                        dst_ip: None,
                    };
                    return Poll::Ready(Ok(1));
                }
                // Readiness was stale; the next poll waits for real.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }
}

#[derive(Debug)]
struct Writable(Arc<PlainUdp>);

impl UdpPoller for Writable {
    fn poll_writable(self: Pin<&mut Self>, cx: &mut Context) -> Poll<io::Result<()>> {
        self.0.io.poll_send_ready(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// A run of segments leaves as that many datagrams, the last one shorter; a run without a
    /// segment size is one datagram.
    #[tokio::test]
    async fn segments_leave_as_datagrams() {
        let lo = Ipv4Addr::LOCALHOST;
        let tx = UdpSocket::bind((lo, 0)).await.unwrap();
        let rx = UdpSocket::bind((lo, 0)).await.unwrap();
        let to = rx.local_addr().unwrap();
        // tokio's `try_` calls need the readiness known first.
        tx.writable().await.unwrap();
        send_segments(&tx, to, &[7; 25], Some(10)).unwrap();
        send_segments(&tx, to, &[8; 4], None).unwrap();
        let mut buf = [0; 64];
        let mut got = Vec::new();
        for _ in 0..4 {
            let (n, _) = rx.recv_from(&mut buf).await.unwrap();
            got.push((n, buf[0]));
        }
        assert_eq!(got, [(10, 7), (10, 7), (5, 7), (4, 8)]);
    }

    /// quinn runs over it: a datagram in arrives with its sender, one out reaches its peer.
    #[tokio::test]
    async fn quinn_receives_and_sends_through_it() {
        let lo = Ipv4Addr::LOCALHOST;
        let plain = PlainUdp::new(std::net::UdpSocket::bind((lo, 0)).unwrap()).unwrap();
        let peer = UdpSocket::bind((lo, 0)).await.unwrap();
        peer.send_to(b"hello", plain.local_addr().unwrap())
            .await
            .unwrap();
        let mut buf = [0u8; 32];
        let mut meta = [RecvMeta::default()];
        let n = std::future::poll_fn(|cx| {
            plain.poll_recv(cx, &mut [IoSliceMut::new(&mut buf)], &mut meta)
        })
        .await
        .unwrap();
        assert_eq!(
            (n, meta[0].len, meta[0].addr),
            (1, 5, peer.local_addr().unwrap())
        );
        assert_eq!(&buf[..5], b"hello");
        let mut poller = plain.clone().create_io_poller();
        std::future::poll_fn(|cx| poller.as_mut().poll_writable(cx))
            .await
            .unwrap();
        let transmit = Transmit {
            destination: peer.local_addr().unwrap(),
            ecn: None,
            contents: b"back",
            segment_size: None,
            src_ip: None,
        };
        plain.try_send(&transmit).unwrap();
        let (n, from) = peer.recv_from(&mut buf).await.unwrap();
        assert_eq!(
            (&buf[..n], from),
            (&b"back"[..], plain.local_addr().unwrap())
        );
    }
}
