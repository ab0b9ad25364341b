//! TCP details: a connection's smoothed RTT (SIO_TCP_INFO), its retransmission limit, port
//! sharing.

use std::os::windows::io::{AsRawSocket, RawSocket};
use windows_sys::Win32::Networking::WinSock::{
    setsockopt, TCP_INFO_v0, WSAIoctl, IPPROTO_TCP, SIO_TCP_INFO, TCP_MAXRT,
};

pub type Raw = RawSocket;

pub fn raw(stream: &impl AsRawSocket) -> Raw {
    stream.as_raw_socket()
}

/// The smoothed RTT in microseconds (Windows 10 1703 and later answer SIO_TCP_INFO). Called
/// only while the stream that owns the socket is alive.
pub fn rtt_us(s: Raw) -> Option<u32> {
    let version: u32 = 0;
    // SAFETY: plain data, zero is a valid start.
    let mut info: TCP_INFO_v0 = unsafe { std::mem::zeroed() };
    let mut got = 0u32;
    // SAFETY: in- and out-buffers of the sizes given; no overlapped I/O.
    let r = unsafe {
        WSAIoctl(
            s as usize,
            SIO_TCP_INFO,
            &version as *const u32 as *const _,
            4,
            &mut info as *mut _ as *mut _,
            std::mem::size_of::<TCP_INFO_v0>() as u32,
            &mut got,
            std::ptr::null_mut(),
            None,
        )
    };
    (r == 0).then_some(info.RttUs)
}

/// A connection that died without a FIN is given up after `after` of retransmissions
/// (TCP_MAXRT, whole seconds; Linux's user timeout is the same idea).
pub fn set_user_timeout(sock: &socket2::SockRef<'_>, after: std::time::Duration) {
    let secs = after.as_secs().max(1) as i32;
    // SAFETY: a valid socket and an int option of the right length.
    unsafe {
        setsockopt(
            sock.as_raw_socket() as usize,
            IPPROTO_TCP,
            TCP_MAXRT,
            &secs as *const i32 as *const u8,
            4,
        )
    };
}

/// Lets a listener and outgoing connections share one local port (TCP simultaneous open):
/// Windows' SO_REUSEADDR covers what Linux needs SO_REUSEPORT for.
pub fn share_port(sock: &socket2::SockRef<'_>) -> std::io::Result<()> {
    sock.set_reuse_address(true)
}
