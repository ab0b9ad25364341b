//! Who the daemon runs as, where its state lives by default, this host's name.

use std::path::PathBuf;
use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
use windows_sys::Win32::Security::{
    GetTokenInformation, TokenElevation, TOKEN_ELEVATION, TOKEN_QUERY,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

/// Whether this process runs elevated (an administrator's, or the service's LocalSystem).
pub fn is_admin() -> bool {
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: the pseudo-handle of this process; `token` receives a handle closed below.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
        return false;
    }
    let mut elevation = TOKEN_ELEVATION { TokenIsElevated: 0 };
    let mut len = 0u32;
    // SAFETY: a valid token and an out-buffer of the size given.
    let ok = unsafe {
        GetTokenInformation(
            token,
            TokenElevation,
            &mut elevation as *mut _ as *mut _,
            std::mem::size_of::<TOKEN_ELEVATION>() as u32,
            &mut len,
        )
    };
    // SAFETY: the token handle is ours.
    unsafe { CloseHandle(token) };
    ok != 0 && elevation.TokenIsElevated != 0
}

/// `C:\ProgramData\Warren` for the service (and any elevated run); the per-user data dir
/// otherwise.
pub fn default_state_dir() -> PathBuf {
    if is_admin() {
        let base = std::env::var_os("ProgramData").unwrap_or_else(|| r"C:\ProgramData".into());
        return PathBuf::from(base).join("Warren");
    }
    directories::ProjectDirs::from("", "", "warren")
        .map(|d| d.data_local_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(".warren"))
}

pub fn hostname() -> Option<String> {
    std::env::var("COMPUTERNAME").ok()
}

/// Windows limits sockets by memory, not by a descriptor count.
pub fn fd_limit() -> u64 {
    warren_proto::fdlimit::WINDOWS_HANDLES
}

/// The index of the interface called `name` (its friendly name, as wintun's adapter has).
pub fn ifindex(name: &str) -> Option<u32> {
    if_addrs::get_if_addrs()
        .ok()?
        .into_iter()
        .find(|i| i.name == name)
        .and_then(|i| i.index)
}
