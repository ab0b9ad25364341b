//! The directed broadcast addresses of this host's interfaces (other than the TUN): a game
//! that broadcasts to its LAN's own broadcast address is carried like one to 255.255.255.255.

use std::net::Ipv4Addr;

pub fn lan_broadcasts(skip: &str) -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we walk read-only and free with freeifaddrs.
    unsafe {
        if libc::getifaddrs(&mut ifap) != 0 {
            return out;
        }
        let mut cur = ifap;
        while !cur.is_null() {
            let ifa = &*cur;
            cur = ifa.ifa_next;
            let broadcast = ifa.ifa_flags & libc::IFF_BROADCAST as u32 != 0;
            if ifa.ifa_addr.is_null() || ifa.ifa_ifu.is_null() || !broadcast {
                continue;
            }
            if (*ifa.ifa_addr).sa_family as i32 != libc::AF_INET {
                continue;
            }
            let name = std::ffi::CStr::from_ptr(ifa.ifa_name).to_string_lossy();
            if name == skip {
                continue;
            }
            let sa = &*(ifa.ifa_ifu as *const libc::sockaddr_in);
            let b = Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr));
            if !b.is_unspecified() && !out.contains(&b) {
                out.push(b);
            }
        }
        libc::freeifaddrs(ifap);
    }
    out
}
