//! Notices when this host's addresses change, so peers hear about our new endpoint at once.
//!
//! A WireGuard peer learns a roamed endpoint only from an authenticated packet. A host that just
//! moved (new Wi-Fi, DHCP renewal) and is only receiving would otherwise stay silent until its
//! persistent keepalive, 25 s later. Listens on rtnetlink for new addresses.

use anyhow::{bail, Result};
use std::io;

/// Blocks until the kernel reports a new address; returns for each batch of such events.
pub struct AddressWatch {
    fd: i32,
    buf: Vec<u8>,
}

impl AddressWatch {
    pub fn open() -> Result<Self> {
        // SAFETY: plain socket/bind calls with a zeroed, correctly sized sockaddr_nl.
        unsafe {
            let fd = libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            );
            if fd < 0 {
                bail!("netlink socket: {}", io::Error::last_os_error());
            }
            let mut sa: libc::sockaddr_nl = std::mem::zeroed();
            sa.nl_family = libc::AF_NETLINK as u16;
            sa.nl_groups = (libc::RTMGRP_IPV4_IFADDR | libc::RTMGRP_IPV6_IFADDR) as u32;
            let r = libc::bind(
                fd,
                &sa as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            );
            if r < 0 {
                let e = io::Error::last_os_error();
                libc::close(fd);
                bail!("netlink bind: {e}");
            }
            Ok(Self {
                fd,
                buf: vec![0; 64 * 1024],
            })
        }
    }

    /// Waits for the next batch of netlink messages that contains a new address.
    pub fn next_new_address(&mut self) -> Result<()> {
        loop {
            // SAFETY: buf is valid for its length.
            let n = unsafe {
                libc::recv(
                    self.fd,
                    self.buf.as_mut_ptr() as *mut libc::c_void,
                    self.buf.len(),
                    0,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    // Overrun: events were lost, so assume one of them was a new address.
                    Some(libc::ENOBUFS) => return Ok(()),
                    _ => bail!("netlink receive: {e}"),
                }
            }
            if contains_new_address(&self.buf[..n as usize]) {
                return Ok(());
            }
        }
    }
}

impl Drop for AddressWatch {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.fd) };
    }
}

/// Walks the netlink messages in one datagram looking for RTM_NEWADDR.
fn contains_new_address(mut data: &[u8]) -> bool {
    const HDR: usize = 16;
    while data.len() >= HDR {
        let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
        let kind = u16::from_ne_bytes([data[4], data[5]]);
        if kind == libc::RTM_NEWADDR {
            return true;
        }
        // Messages are 4-byte aligned; a bogus length ends the walk.
        let step = (len + 3) & !3;
        if len < HDR || step > data.len() {
            return false;
        }
        data = &data[step..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: u16, body: usize) -> Vec<u8> {
        let len = 16 + body;
        let mut m = vec![0u8; (len + 3) & !3];
        m[..4].copy_from_slice(&(len as u32).to_ne_bytes());
        m[4..6].copy_from_slice(&kind.to_ne_bytes());
        m
    }

    #[test]
    fn finds_new_address_among_other_messages() {
        let mut d = msg(libc::RTM_DELADDR, 5);
        assert!(!contains_new_address(&d));
        d.extend(msg(libc::RTM_NEWADDR, 8));
        assert!(contains_new_address(&d));
        // Truncated or nonsense lengths stop the walk without panicking.
        assert!(!contains_new_address(&d[..10]));
        let mut bad = msg(libc::RTM_DELADDR, 0);
        bad[..4].copy_from_slice(&4u32.to_ne_bytes());
        bad.extend(msg(libc::RTM_NEWADDR, 0));
        assert!(!contains_new_address(&bad));
    }
}
