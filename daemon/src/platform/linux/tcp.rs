//! TCP details: the kernel's smoothed RTT of a connection (TCP_INFO), its user timeout, port
//! sharing.

use std::os::fd::{AsRawFd, RawFd};

pub type Raw = RawFd;

pub fn raw(stream: &impl AsRawFd) -> Raw {
    stream.as_raw_fd()
}

/// The smoothed RTT in microseconds. Called only while the stream that owns `fd` is alive, so
/// the descriptor is never someone else's.
pub fn rtt_us(fd: Raw) -> Option<u32> {
    // SAFETY: `info` is plain data of the size passed; the kernel writes at most `len` bytes.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            &mut info as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    (r == 0).then_some(info.tcpi_rtt)
}

/// A connection that died without a FIN is given up after `after` of unacknowledged data.
pub fn set_user_timeout(sock: &socket2::SockRef<'_>, after: std::time::Duration) {
    let _ = sock.set_tcp_user_timeout(Some(after));
}

/// Lets a listener and outgoing connections share one local port (TCP simultaneous open).
pub fn share_port(sock: &socket2::SockRef<'_>) -> std::io::Result<()> {
    sock.set_reuse_address(true)?;
    sock.set_reuse_port(true)
}
