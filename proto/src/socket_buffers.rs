//! Large UDP socket buffers, for the sockets that take bursts from many hosts at once (a
//! daemon's data socket, a coordinator's QUIC socket when thousands of hosts connect together):
//! the kernel's default (~200 KiB) drops a burst that a few MiB holds.

#[cfg(unix)]
pub use std::os::fd::AsFd as AsSocket;
#[cfg(windows)]
pub use std::os::windows::io::AsSocket;

/// Asks for `size` bytes of receive and send buffer. On Linux as root the FORCE variants go
/// beyond `net.core.{r,w}mem_max`; otherwise the system grants what its limits allow.
pub fn enlarge(socket: &impl AsSocket, size: usize) {
    let sock = socket2::SockRef::from(socket);
    #[cfg(target_os = "linux")]
    if force(&sock, size) {
        return;
    }
    let _ = sock.set_recv_buffer_size(size);
    let _ = sock.set_send_buffer_size(size);
}

/// SO_RCVBUFFORCE / SO_SNDBUFFORCE, which only root may set; whether both were.
#[cfg(target_os = "linux")]
fn force(sock: &socket2::SockRef<'_>, size: usize) -> bool {
    use std::os::fd::AsRawFd;
    let size = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
    [libc::SO_RCVBUFFORCE, libc::SO_SNDBUFFORCE]
        .into_iter()
        .all(|opt| {
            // SAFETY: a valid descriptor and an int option of the right length.
            unsafe {
                libc::setsockopt(
                    sock.as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    &size as *const _ as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                ) == 0
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Linux reports twice what was set (its bookkeeping share); either way the buffer is
    /// larger than the default.
    #[test]
    fn the_receive_buffer_grows() {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let get = || socket2::SockRef::from(&s).recv_buffer_size().unwrap();
        let before = get();
        enlarge(&s, 4 << 20);
        assert!(get() > before, "{before} -> {}", get());
    }
}
