//! Large UDP socket buffers, for the sockets that take bursts from many hosts at once (a
//! daemon's data socket, a coordinator's QUIC socket when thousands of hosts connect together):
//! the kernel's default (~200 KiB) drops a burst that a few MiB holds.

use std::os::fd::AsRawFd;

/// Asks for `size` bytes of receive and send buffer. As root the FORCE variants go beyond
/// `net.core.{r,w}mem_max`; otherwise the kernel grants what those allow.
pub fn enlarge(socket: &impl AsRawFd, size: usize) {
    let size = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
    for (force, plain) in [
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF),
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF),
    ] {
        // SAFETY: a valid descriptor and an int option of the right length.
        let set = |opt| unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                &size as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if set(force) != 0 {
            set(plain);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel reports twice what was set (its bookkeeping share); either way the buffer
    /// is larger than the default.
    #[test]
    fn the_receive_buffer_grows() {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let get = || {
            let mut v: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: valid descriptor, out-pointer of the right size.
            unsafe {
                libc::getsockopt(
                    s.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUF,
                    &mut v as *mut _ as *mut libc::c_void,
                    &mut len,
                )
            };
            v
        };
        let before = get();
        enlarge(&s, 4 << 20);
        assert!(get() > before, "{before} -> {}", get());
    }
}
