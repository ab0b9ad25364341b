//! Every simulated host holds one socket (and a spawned coordinator, which inherits the limit,
//! one per TCP host): the soft file limit is raised to the hard one, and the run says when even
//! that caps the host count.

/// Raises RLIMIT_NOFILE's soft limit to its hard limit; returns the limit now in force.
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

/// Sockets a run needs besides one per host: the runtime, stdio, the coordinator's log.
pub const RESERVE: u64 = 64;

/// The most hosts `limit` descriptors allow.
pub fn max_hosts(limit: u64) -> u64 {
    limit.saturating_sub(RESERVE)
}
