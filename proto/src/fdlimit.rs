//! The open-file limit. A coordinator holds a socket per host on TCP, and the load generator
//! one per simulated host; the usual soft limit (1 024) is far below what either needs, the
//! hard one is not: both raise the soft limit to the hard one at start.

/// Raises RLIMIT_NOFILE's soft limit to its hard limit; returns the limit now in force.
#[cfg(unix)]
pub fn raise() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit the kernel fills in / reads.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        let wanted = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
            lim = wanted;
        }
    }
    lim.rlim_cur
}

/// Windows has no per-process limit on socket handles (they are bounded by memory): the
/// coordinator's own host caps are the limit there.
#[cfg(windows)]
pub fn raise() -> u64 {
    WINDOWS_HANDLES
}

/// What [`raise`] reports on Windows: a million hosts, far past any network's cap.
#[cfg(windows)]
pub const WINDOWS_HANDLES: u64 = 1 << 20;

/// Sockets a run needs besides one per host: the runtime, stdio, the coordinator's log.
pub const RESERVE: u64 = 64;

/// The most hosts `limit` descriptors allow.
pub fn max_hosts(limit: u64) -> u64 {
    limit.saturating_sub(RESERVE)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_becomes_the_hard_one() {
        let limit = raise();
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: a valid rlimit for the kernel to fill in.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        assert_eq!(limit, lim.rlim_cur);
        assert_eq!(lim.rlim_cur, lim.rlim_max);
        assert_eq!(max_hosts(limit), limit - RESERVE);
    }
}
