//! A quinn socket that receives one datagram per buffer slot (GRO off). quinn sizes each
//! endpoint's receive buffer as datagram size × GRO segments (64) × batch (32): 3 MB that fill
//! up under load, per endpoint. A daemon has one endpoint; a load generator with thousands of
//! them in one process would spend gigabytes there. Without GRO it is 47 kB each.

use quinn::udp::{RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, Runtime, UdpPoller};
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

#[derive(Debug)]
pub struct NoGro(Arc<dyn AsyncUdpSocket>);

impl NoGro {
    /// Windows has no GRO on UDP sockets: quinn's receive buffer is small there already.
    #[cfg(windows)]
    pub fn wrap(socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        Ok(Arc::new(NoGro(
            quinn::TokioRuntime.wrap_udp_socket(socket)?,
        )))
    }

    #[cfg(unix)]
    pub fn wrap(socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        use std::os::fd::AsRawFd;
        let fd = socket.as_raw_fd();
        let inner = quinn::TokioRuntime.wrap_udp_socket(socket)?;
        // quinn turned GRO on; the kernel must not coalesce what now has no room.
        let off: libc::c_int = 0;
        // SAFETY: `fd` is the socket `inner` owns and keeps open; the option is a c_int.
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_UDP,
                libc::UDP_GRO,
                &off as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r != 0 && inner.max_receive_segments() > 1 {
            return Err(io::Error::last_os_error());
        }
        Ok(Arc::new(NoGro(inner)))
    }
}

impl AsyncUdpSocket for NoGro {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        self.0.clone().create_io_poller()
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        self.0.try_send(transmit)
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        self.0.poll_recv(cx, bufs, meta)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.0.max_transmit_segments()
    }

    fn max_receive_segments(&self) -> usize {
        1
    }

    fn may_fragment(&self) -> bool {
        self.0.may_fragment()
    }
}
