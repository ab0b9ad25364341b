//! Windows access-control lists written as SDDL strings: the key files' protection and the
//! local API pipe's (the daemon builds its pipe's security attributes from the same type).
//! What Unix says with a file mode, Windows says with a DACL; SDDL keeps it one readable line.

use std::io;
use std::path::Path;
use windows_sys::Win32::Foundation::LocalFree;
use windows_sys::Win32::Security::Authorization::{
    ConvertSecurityDescriptorToStringSecurityDescriptorW,
    ConvertStringSecurityDescriptorToSecurityDescriptorW, GetNamedSecurityInfoW, SDDL_REVISION_1,
    SE_FILE_OBJECT,
};
use windows_sys::Win32::Security::{DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR};

/// Full control for SYSTEM, Administrators and the file's owner, nothing inherited from the
/// directory: the Windows form of mode 0600 for a file an administrator's service creates.
pub const PRIVATE_FILE: &str = "D:P(A;;FA;;;SY)(A;;FA;;;BA)(A;;FA;;;OW)";

/// Who an ACL must not let in for a private file: Everyone, Users, Authenticated Users.
const OPEN_TO_OTHERS: [&str; 3] = [";;;WD)", ";;;BU)", ";;;AU)"];

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// A self-relative security descriptor made from SDDL, freed on drop.
pub struct SecurityDescriptor(PSECURITY_DESCRIPTOR);

// SAFETY: the descriptor is immutable memory owned by this value alone.
unsafe impl Send for SecurityDescriptor {}
// SAFETY: as above; nothing writes through the pointer.
unsafe impl Sync for SecurityDescriptor {}

impl SecurityDescriptor {
    pub fn from_sddl(sddl: &str) -> io::Result<SecurityDescriptor> {
        let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
        let w = wide(sddl);
        // SAFETY: `w` is NUL-terminated; `sd` receives a LocalAlloc'd descriptor.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                w.as_ptr(),
                SDDL_REVISION_1,
                &mut sd,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(SecurityDescriptor(sd))
    }

    /// The pointer for a SECURITY_ATTRIBUTES (valid while `self` lives).
    pub fn as_ptr(&self) -> PSECURITY_DESCRIPTOR {
        self.0
    }
}

impl Drop for SecurityDescriptor {
    fn drop(&mut self) {
        // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW.
        unsafe { LocalFree(self.0) };
    }
}

/// Creates `path` (which must not exist) for writing with this descriptor from the start, so
/// no moment passes with the directory's inherited ACL on it.
pub fn create_new_file(path: &Path, sd: &SecurityDescriptor) -> io::Result<std::fs::File> {
    use std::os::windows::io::FromRawHandle;
    use windows_sys::Win32::Foundation::{GENERIC_WRITE, INVALID_HANDLE_VALUE};
    use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;
    use windows_sys::Win32::Storage::FileSystem::{CreateFileW, CREATE_NEW, FILE_ATTRIBUTE_NORMAL};
    let w = wide(&path.to_string_lossy());
    let sa = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: sd.as_ptr(),
        bInheritHandle: 0,
    };
    // SAFETY: NUL-terminated name, attributes valid for the call; the handle is owned below.
    let h = unsafe {
        CreateFileW(
            w.as_ptr(),
            GENERIC_WRITE,
            0,
            &sa,
            CREATE_NEW,
            FILE_ATTRIBUTE_NORMAL,
            std::ptr::null_mut(),
        )
    };
    if h == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh handle this function owns.
    Ok(unsafe { std::fs::File::from_raw_handle(h) })
}

/// The DACL of `path` as SDDL ("D:…").
pub fn dacl_of(path: &Path) -> io::Result<String> {
    let w = wide(&path.to_string_lossy());
    let mut sd: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    // SAFETY: NUL-terminated name; only the descriptor is asked for, freed below.
    let err = unsafe {
        GetNamedSecurityInfoW(
            w.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut sd,
        )
    };
    if err != 0 {
        return Err(io::Error::from_raw_os_error(err as i32));
    }
    let sd = SecurityDescriptor(sd);
    let mut s: *mut u16 = std::ptr::null_mut();
    let mut len = 0u32;
    // SAFETY: a valid descriptor; `s` receives a LocalAlloc'd wide string of `len` units.
    let ok = unsafe {
        ConvertSecurityDescriptorToStringSecurityDescriptorW(
            sd.as_ptr(),
            SDDL_REVISION_1,
            DACL_SECURITY_INFORMATION,
            &mut s,
            &mut len,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `s` holds `len` UTF-16 units (the count includes the terminating NUL).
    let text = String::from_utf16_lossy(unsafe {
        std::slice::from_raw_parts(s, (len as usize).saturating_sub(1))
    });
    // SAFETY: allocated by the call above.
    unsafe { LocalFree(s.cast()) };
    Ok(text.trim_end_matches('\0').to_string())
}

/// Whether an ACL in SDDL lets Everyone, Users or Authenticated Users in.
pub fn open_to_others(sddl: &str) -> bool {
    OPEN_TO_OTHERS.iter().any(|t| sddl.contains(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_file_keeps_its_acl_and_others_are_not_in_it() {
        let d = std::env::temp_dir().join(format!("warren-acl-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("f");
        let _ = std::fs::remove_file(&p);
        let sd = SecurityDescriptor::from_sddl(PRIVATE_FILE).unwrap();
        drop(create_new_file(&p, &sd).unwrap());
        assert_eq!(
            create_new_file(&p, &sd).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        // Windows reads back the SDDL as written; Wine keeps it as the Unix mode and
        // describes that (SYSTEM and the owner): both must leave others out.
        let acl = dacl_of(&p).unwrap();
        assert!(acl.contains(";;;SY)"), "{acl}");
        assert!(!open_to_others(&acl), "{acl}");
        assert!(open_to_others("D:(A;;FA;;;WD)"));
        assert!(SecurityDescriptor::from_sddl("D:(nonsense").is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
