//! A child process (a hosted network's coordinator) that must not outlive the daemon: it goes
//! into a job object that kills what it holds when its last handle — the daemon's — closes.

use std::os::windows::io::AsRawHandle;
use std::process::{Child, Command};
use std::sync::OnceLock;
use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JobObjectExtendedLimitInformation,
    SetInformationJobObject, JOBOBJECT_EXTENDED_LIMIT_INFORMATION,
    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
};

/// The daemon's job, made once and never closed: the system closes it when the daemon ends.
struct Job(HANDLE);
// SAFETY: a kernel handle, usable from any thread.
unsafe impl Send for Job {}
// SAFETY: as above.
unsafe impl Sync for Job {}

fn job() -> Option<&'static Job> {
    static JOB: OnceLock<Option<Job>> = OnceLock::new();
    JOB.get_or_init(|| {
        // SAFETY: an unnamed job with default security.
        let h = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
        if h.is_null() {
            return None;
        }
        // SAFETY: plain data, zero is a valid start.
        let mut info: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = unsafe { std::mem::zeroed() };
        info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        // SAFETY: a valid job handle and an information block of the size given.
        let ok = unsafe {
            SetInformationJobObject(
                h,
                JobObjectExtendedLimitInformation,
                &info as *const _ as *const _,
                std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
            )
        };
        (ok != 0).then_some(Job(h))
    })
    .as_ref()
}

/// Nothing to set before the start on Windows: [`adopt`] puts the started child in the job.
pub fn die_with_parent(_cmd: &mut Command) {}

/// Puts a started child into the daemon's job.
pub fn adopt(child: &Child) {
    let Some(job) = job() else {
        tracing::warn!("no job object: a hosted coordinator may outlive warrend");
        return;
    };
    // SAFETY: both handles are valid; the child's stays open while `child` lives.
    if unsafe { AssignProcessToJobObject(job.0, child.as_raw_handle()) } == 0 {
        tracing::warn!(
            "cannot tie the hosted coordinator to warrend: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Windows has no SIGTERM for a console-less child: it is stopped outright (its hosts notice
/// by their keepalives and reconnect when it comes back).
pub fn ask_to_stop(child: &mut Child) {
    let _ = child.kill();
}
