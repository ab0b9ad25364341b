//! Readiness of sockets with WSAPoll.

use std::io;
use std::os::windows::io::{AsRawSocket, RawSocket};
use windows_sys::Win32::Networking::WinSock::{WSAPoll, POLLRDNORM, POLLWRNORM, WSAPOLLFD};

pub type Raw = RawSocket;

pub use crate::platform::Want;

pub fn raw(s: &impl AsRawSocket) -> Raw {
    s.as_raw_socket()
}

/// Waits until the socket is ready; `Ok(false)` on timeout. `timeout_ms` < 0 waits forever.
pub fn wait(s: Raw, want: Want, timeout_ms: i32) -> io::Result<bool> {
    Ok(wait_any(&[s], want, timeout_ms)?.iter().any(|r| *r))
}

/// Waits until any of `sockets` is ready; which ones are (all `false` on timeout).
pub fn wait_any(sockets: &[Raw], want: Want, timeout_ms: i32) -> io::Result<Vec<bool>> {
    let events = match want {
        Want::Read => POLLRDNORM,
        Want::Write => POLLWRNORM,
    };
    let mut fds: Vec<WSAPOLLFD> = sockets
        .iter()
        .map(|&s| WSAPOLLFD {
            fd: s as usize,
            events,
            revents: 0,
        })
        .collect();
    // SAFETY: `fds` is valid for the call.
    let r = unsafe { WSAPoll(fds.as_mut_ptr(), fds.len() as u32, timeout_ms) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fds.iter().map(|p| p.revents != 0).collect())
}
