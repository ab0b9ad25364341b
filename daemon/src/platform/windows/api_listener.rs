//! The local API's named pipe (`\\.\pipe\warren`): clients of this machine only, an ACL that
//! lets in SYSTEM, Administrators and the users warrend was given (`--api-user`: the installer
//! passes the installing user), and a fresh instance waiting before a connected one is handed
//! out, so a client never finds the pipe busy for long. Each connection comes with whether its
//! process runs as an administrator, which `api_server::access` turns into a role.

use crate::api_server::{access, ApiAccess};
use anyhow::{anyhow, Context, Result};
use std::ffi::c_void;
use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::path::{Path, PathBuf};
use tokio::net::windows::named_pipe::{NamedPipeServer, ServerOptions};
use warren_proto::win_acl::SecurityDescriptor;
use windows_sys::Win32::Foundation::{
    LocalFree, ERROR_ACCESS_DENIED, ERROR_NO_DATA, ERROR_SEM_TIMEOUT, HANDLE,
};
use windows_sys::Win32::Security::Authorization::ConvertSidToStringSidW;
use windows_sys::Win32::Security::{
    CheckTokenMembership, CreateWellKnownSid, DuplicateToken, LookupAccountNameW,
    SecurityIdentification, WinBuiltinAdministratorsSid, SECURITY_ATTRIBUTES,
    SECURITY_MAX_SID_SIZE, TOKEN_DUPLICATE, TOKEN_QUERY,
};
use windows_sys::Win32::System::Pipes::{GetNamedPipeClientProcessId, WaitNamedPipeW};
use windows_sys::Win32::System::Threading::{
    OpenProcess, OpenProcessToken, PROCESS_QUERY_LIMITED_INFORMATION,
};

pub type Stream = NamedPipeServer;

/// Who is at the other end, as far as the API cares.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    /// The client's process runs as an administrator (elevated, or SYSTEM); false also when
    /// that could not be told.
    pub admin: bool,
}

pub struct Listener {
    name: PathBuf,
    sd: SecurityDescriptor,
    /// The instance the next client will connect to.
    next: NamedPipeServer,
}

impl Listener {
    pub async fn accept(&mut self) -> io::Result<(Stream, Peer)> {
        loop {
            match self.next.connect().await {
                Ok(()) => break,
                // The client came and went before it was served; that instance is spent.
                Err(e) if e.raw_os_error() == Some(ERROR_NO_DATA as i32) => {
                    self.next = instance(&self.name, &self.sd, false)?;
                }
                Err(e) => return Err(e),
            }
        }
        let fresh = instance(&self.name, &self.sd, false)?;
        let connected = std::mem::replace(&mut self.next, fresh);
        let admin = match client_is_admin(connected.as_raw_handle()) {
            Ok(admin) => admin,
            Err(e) => {
                tracing::debug!(
                    "cannot tell whether an API client is an administrator ({e}); \
                     serving it as a member"
                );
                false
            }
        };
        Ok((connected, Peer { admin }))
    }
}

/// Creates the pipe's first instance with its ACL, refusing to share the name with a running
/// daemon (or anything else already serving it).
pub fn bind(path: &Path, who: &ApiAccess) -> Result<Listener> {
    let mut sids = Vec::new();
    for user in &who.users {
        let sid = sid_of(user)
            .with_context(|| format!("user {user:?} (from --api-user) is not known here"))?;
        tracing::info!("{user} ({sid}) may use Warren through {}", path.display());
        sids.push(sid);
    }
    if sids.is_empty() {
        tracing::info!(
            "no --api-user: only Administrators may use Warren through {}",
            path.display()
        );
    }
    let sddl = access::pipe_sddl(&sids).map_err(|e| anyhow!(e))?;
    let sd = SecurityDescriptor::from_sddl(&sddl)
        .with_context(|| format!("cannot make the pipe's security descriptor {sddl}"))?;
    let taken = || {
        anyhow!(
            "another warrend is already serving {}; stop it (`sc stop Warren`) or pass a \
             different --socket",
            path.display()
        )
    };
    // The first-instance flag refuses a taken name on Windows, race-free; Wine ignores the
    // flag, so the name is also asked about first (the lab runs warrend under Wine).
    if served(path) {
        return Err(taken());
    }
    let first = instance(path, &sd, true).map_err(|e| {
        if e.raw_os_error() == Some(ERROR_ACCESS_DENIED as i32) {
            taken()
        } else {
            anyhow!(e).context(format!("cannot listen on {}", path.display()))
        }
    })?;
    Ok(Listener {
        name: path.to_path_buf(),
        sd,
        next: first,
    })
}

/// Whether some server has a pipe of this name: an instance waits (or all are busy).
fn served(name: &Path) -> bool {
    let wide: Vec<u16> = name
        .as_os_str()
        .to_string_lossy()
        .encode_utf16()
        .chain(std::iter::once(0))
        .collect();
    // SAFETY: a NUL-terminated name; waits at most a millisecond and connects nothing.
    if unsafe { WaitNamedPipeW(wide.as_ptr(), 1) } != 0 {
        return true;
    }
    io::Error::last_os_error().raw_os_error() == Some(ERROR_SEM_TIMEOUT as i32)
}

fn instance(name: &Path, sd: &SecurityDescriptor, first: bool) -> io::Result<NamedPipeServer> {
    let mut sa = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: sd.as_ptr(),
        bInheritHandle: 0,
    };
    // SAFETY: `sa` and the descriptor it points to outlive the call, which copies them.
    unsafe {
        ServerOptions::new()
            .first_pipe_instance(first)
            .reject_remote_clients(true)
            .create_with_security_attributes_raw(name, &mut sa as *mut _ as *mut c_void)
    }
}

/// Removes nothing: a pipe goes when its last handle closes. (The Unix socket's guard removes
/// the file; main holds one on both.)
pub struct SocketGuard(#[allow(dead_code)] pub PathBuf);

/// Whether the process at the client end of `pipe` is in Administrators with that membership
/// enabled: an elevated administrator or SYSTEM, not an administrator's unelevated token
/// (where the group is deny-only).
fn client_is_admin(pipe: HANDLE) -> io::Result<bool> {
    let mut pid = 0u32;
    // SAFETY: a connected pipe's handle; `pid` receives the client's process id.
    if unsafe { GetNamedPipeClientProcessId(pipe, &mut pid) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: no pointers; the handle is owned below.
    let process = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if process.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a handle just opened and owned by nothing else.
    let process = unsafe { OwnedHandle::from_raw_handle(process) };
    let mut token: HANDLE = std::ptr::null_mut();
    // SAFETY: valid process handle; `token` receives a handle owned below.
    if unsafe {
        OpenProcessToken(
            process.as_raw_handle(),
            TOKEN_QUERY | TOKEN_DUPLICATE,
            &mut token,
        )
    } == 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    let token = unsafe { OwnedHandle::from_raw_handle(token) };
    // CheckTokenMembership wants an impersonation token; a process has a primary one.
    let mut identification: HANDLE = std::ptr::null_mut();
    // SAFETY: valid token handle opened with TOKEN_DUPLICATE.
    if unsafe {
        DuplicateToken(
            token.as_raw_handle(),
            SecurityIdentification,
            &mut identification,
        )
    } == 0
    {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    let identification = unsafe { OwnedHandle::from_raw_handle(identification) };
    let mut sid = [0u8; SECURITY_MAX_SID_SIZE as usize];
    let mut len = sid.len() as u32;
    // SAFETY: `sid` holds `len` bytes, enough for any SID.
    if unsafe {
        CreateWellKnownSid(
            WinBuiltinAdministratorsSid,
            std::ptr::null_mut(),
            sid.as_mut_ptr().cast(),
            &mut len,
        )
    } == 0
    {
        return Err(io::Error::last_os_error());
    }
    let mut member = 0;
    // SAFETY: an impersonation token, a valid SID, an out BOOL.
    if unsafe {
        CheckTokenMembership(
            identification.as_raw_handle(),
            sid.as_mut_ptr().cast(),
            &mut member,
        )
    } == 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok(member != 0)
}

/// The string SID (`S-1-5-21-…`) of the account called `name` (a user, or `DOMAIN\user`).
fn sid_of(name: &str) -> io::Result<String> {
    let wide: Vec<u16> = name.encode_utf16().chain(std::iter::once(0)).collect();
    let (mut sid_len, mut domain_len, mut kind) = (0u32, 0u32, 0);
    // SAFETY: the sizing call: null buffers with zero lengths, which it fills in.
    unsafe {
        LookupAccountNameW(
            std::ptr::null(),
            wide.as_ptr(),
            std::ptr::null_mut(),
            &mut sid_len,
            std::ptr::null_mut(),
            &mut domain_len,
            &mut kind,
        )
    };
    if sid_len == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut sid = vec![0u8; sid_len as usize];
    let mut domain = vec![0u16; domain_len.max(1) as usize];
    // SAFETY: buffers of the lengths passed.
    if unsafe {
        LookupAccountNameW(
            std::ptr::null(),
            wide.as_ptr(),
            sid.as_mut_ptr().cast(),
            &mut sid_len,
            domain.as_mut_ptr(),
            &mut domain_len,
            &mut kind,
        )
    } == 0
    {
        return Err(io::Error::last_os_error());
    }
    let mut text: *mut u16 = std::ptr::null_mut();
    // SAFETY: a SID LookupAccountNameW wrote; `text` receives a LocalAlloc'd string.
    if unsafe { ConvertSidToStringSidW(sid.as_mut_ptr().cast(), &mut text) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `text` is NUL-terminated; read up to the NUL, then freed once.
    let s = unsafe {
        let len = (0..).take_while(|&i| *text.add(i) != 0).count();
        let s = String::from_utf16_lossy(std::slice::from_raw_parts(text, len));
        LocalFree(text.cast());
        s
    };
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api_server::connection::serve_requests;
    use crate::api_server::connection::tests::Echo;
    use std::sync::atomic::{AtomicU32, Ordering};
    use warren_proto::api::client::Connection;
    use warren_proto::api::{Request, Response};

    fn unique_pipe() -> PathBuf {
        static N: AtomicU32 = AtomicU32::new(0);
        PathBuf::from(format!(
            r"\\.\pipe\warren-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ))
    }

    fn me() -> ApiAccess {
        ApiAccess {
            group: String::new(),
            users: vec![std::env::var("USERNAME").expect("USERNAME is set")],
        }
    }

    /// Two clients at once over the real pipe, through the same request loop as the daemon's,
    /// each told its role; a second listener on the same name is refused in words.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn clients_are_served_over_the_pipe_and_a_second_daemon_is_refused() {
        let name = unique_pipe();
        let mut listener = bind(&name, &me()).unwrap();
        let e = bind(&name, &me()).err().expect("the name is taken");
        assert!(format!("{e:#}").contains("another warrend"), "{e:#}");

        let access = access::Access::new(std::env::temp_dir(), "");
        let client = |name: PathBuf| {
            std::thread::spawn(move || {
                let mut c = Connection::open(&name).unwrap();
                let first = c.call(Request::Status).unwrap();
                let second = c.call(Request::Version).unwrap();
                (first, second)
            })
        };
        let one = client(name.clone());
        let (s1, p1) = listener.accept().await.unwrap();
        let role = access.check(&p1).unwrap();
        // The first client stays connected while the second is served.
        let two = client(name.clone());
        let (s2, p2) = listener.accept().await.unwrap();
        assert_eq!(access.check(&p2).unwrap(), role);
        let serve1 = tokio::spawn(async move { serve_requests(s1, role, &Echo).await });
        let serve2 = tokio::spawn(async move { serve_requests(s2, role, &Echo).await });
        for c in [one, two] {
            let (first, second) = tokio::task::spawn_blocking(move || c.join().unwrap())
                .await
                .unwrap();
            assert_eq!(
                first,
                Response::Done {
                    message: format!("{role:?} Status")
                }
            );
            assert_eq!(
                second,
                Response::Done {
                    message: format!("{role:?} Version")
                }
            );
        }
        serve1.await.unwrap().unwrap();
        serve2.await.unwrap().unwrap();
    }

    /// The client's role is its token's: the test is its own client, so the answer must match
    /// what this process's token says about Administrators.
    #[tokio::test]
    async fn the_admin_check_reads_the_clients_token() {
        let name = unique_pipe();
        let mut listener = bind(&name, &me()).unwrap();
        let n = name.clone();
        let client = std::thread::spawn(move || Connection::open(&n).map(|_| ()));
        let (stream, _) = listener.accept().await.unwrap();
        let theirs = client_is_admin(stream.as_raw_handle()).unwrap();
        client.join().unwrap().unwrap();
        let mut sid = [0u8; SECURITY_MAX_SID_SIZE as usize];
        let mut len = sid.len() as u32;
        let mut mine = 0;
        // SAFETY: as in client_is_admin; a null token means this thread's (or process's).
        unsafe {
            assert_ne!(
                CreateWellKnownSid(
                    WinBuiltinAdministratorsSid,
                    std::ptr::null_mut(),
                    sid.as_mut_ptr().cast(),
                    &mut len
                ),
                0
            );
            assert_ne!(
                CheckTokenMembership(std::ptr::null_mut(), sid.as_mut_ptr().cast(), &mut mine),
                0
            );
        }
        assert_eq!(theirs, mine != 0);
    }

    #[test]
    fn an_unknown_user_stops_the_bind() {
        let who = ApiAccess {
            group: String::new(),
            users: vec!["no-such-user-warren-test".into()],
        };
        let e = bind(&unique_pipe(), &who).err().expect("refused");
        assert!(format!("{e:#}").contains("--api-user"), "{e:#}");
    }
}
