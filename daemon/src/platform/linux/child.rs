//! A child process (a hosted network's coordinator) that must not outlive the daemon.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

/// The child gets SIGTERM when the daemon dies, however it dies.
pub fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Nothing after the start on Linux: [`die_with_parent`] did it.
pub fn adopt(_child: &Child) {}

/// Asks the child to stop (SIGTERM), so it can say goodbye to its hosts.
pub fn ask_to_stop(child: &mut Child) {
    // SAFETY: the child is ours and not yet reaped, so its pid is still its own.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
}
