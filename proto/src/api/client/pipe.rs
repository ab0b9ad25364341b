//! The client end of the daemon's named pipe on Windows: a std `File` on `\\.\pipe\…`, which
//! reads and writes like the Unix socket. What a pipe lacks is a read timeout: [`Stream::read`]
//! waits by peeking until data is there or the time is up.

// The client's blocking I/O shell, not a core: waiting on the clock is what it is for.
#![allow(clippy::disallowed_methods)]

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::AsRawHandle;
use std::path::Path;
use std::time::{Duration, Instant};
use windows_sys::Win32::Foundation::ERROR_PIPE_BUSY;
use windows_sys::Win32::Storage::FileSystem::{FILE_GENERIC_READ, FILE_WRITE_DATA};
use windows_sys::Win32::System::Pipes::{PeekNamedPipe, WaitNamedPipeW};

/// How long a connect waits while every pipe instance is busy (the daemon makes a new one
/// right after each connection, so this is brief).
const BUSY_WAIT: Duration = Duration::from_secs(2);
/// How often a read with a timeout looks for data.
const PEEK_EVERY: Duration = Duration::from_millis(5);

pub struct Stream {
    file: File,
    read_timeout: Cell<Option<Duration>>,
}

impl Stream {
    pub fn connect(path: &Path) -> io::Result<Stream> {
        let deadline = Instant::now() + BUSY_WAIT;
        loop {
            // Read and write data only: the daemon's ACL gives users no more (appending would
            // be the right to create an instance of the pipe).
            match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .access_mode(FILE_GENERIC_READ | FILE_WRITE_DATA)
                .open(path)
            {
                Ok(file) => {
                    return Ok(Stream {
                        file,
                        read_timeout: Cell::new(None),
                    })
                }
                Err(e) if e.raw_os_error() == Some(ERROR_PIPE_BUSY as i32) => {
                    if Instant::now() >= deadline {
                        return Err(e);
                    }
                    let name: Vec<u16> = path
                        .to_string_lossy()
                        .encode_utf16()
                        .chain(std::iter::once(0))
                        .collect();
                    // SAFETY: a NUL-terminated name; waits at most the given milliseconds.
                    unsafe { WaitNamedPipeW(name.as_ptr(), 250) };
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Takes `&self` as UnixStream's does; `read` applies it.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.read_timeout.set(timeout);
        Ok(())
    }

    /// Bytes waiting in the pipe; an error once the daemon has closed it.
    fn available(&self) -> io::Result<u32> {
        let mut avail = 0u32;
        // SAFETY: a valid pipe handle; only the count is asked for.
        let ok = unsafe {
            PeekNamedPipe(
                self.file.as_raw_handle(),
                std::ptr::null_mut(),
                0,
                std::ptr::null_mut(),
                &mut avail,
                std::ptr::null_mut(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(avail)
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(timeout) = self.read_timeout.get() {
            let deadline = Instant::now() + timeout;
            loop {
                match self.available() {
                    Ok(0) if Instant::now() < deadline => std::thread::sleep(PEEK_EVERY),
                    Ok(0) => return Err(io::ErrorKind::TimedOut.into()),
                    // Data, or a closed pipe: the read below tells which.
                    _ => break,
                }
            }
        }
        match self.file.read(buf) {
            // A pipe the daemon closed reads as "broken"; for the caller that is the end.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(0),
            r => r,
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}
