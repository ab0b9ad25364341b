//! Readiness of descriptors with poll(2).

use std::io;
use std::os::fd::{AsRawFd, RawFd};

pub type Raw = RawFd;

pub use crate::platform::Want;

pub fn raw(s: &impl AsRawFd) -> Raw {
    s.as_raw_fd()
}

/// Waits until `fd` is ready; `Ok(false)` on timeout. `timeout_ms` < 0 waits forever.
pub fn wait(fd: Raw, want: Want, timeout_ms: i32) -> io::Result<bool> {
    Ok(wait_any(&[fd], want, timeout_ms)?.iter().any(|r| *r))
}

/// Waits until any of `fds` is ready; which ones are (all `false` on timeout).
pub fn wait_any(fds: &[Raw], want: Want, timeout_ms: i32) -> io::Result<Vec<bool>> {
    let events = match want {
        Want::Read => libc::POLLIN,
        Want::Write => libc::POLLOUT,
    };
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events,
            revents: 0,
        })
        .collect();
    loop {
        // SAFETY: `pfds` is valid for the call.
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
        if r >= 0 {
            return Ok(pfds.iter().map(|p| p.revents != 0).collect());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
