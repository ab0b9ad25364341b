//! Running external commands (`ip`, `ping`, `warren`, `warrend`) with a time limit, so a hung
//! helper fails the test with a message instead of hanging `cargo test`.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// What a finished command printed.
#[derive(Debug)]
pub struct CmdOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }
}

/// A printable form of a command line, for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion, killing it after `timeout`. `Err` only when it could not be started
/// or ran out of time; a non-zero exit is reported in the `Ok` value.
pub fn run_timeout(cmd: &mut Command, timeout: Duration) -> Result<CmdOutput, String> {
    let what = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start `{what}`: {e}"))?;
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let status = wait_deadline(&mut child, timeout);
    let status = match status {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = out.join().unwrap_or_default();
            let stderr = err.join().unwrap_or_default();
            return Err(format!(
                "`{what}` did not finish within {timeout:?}\nstdout: {stdout}\nstderr: {stderr}"
            ));
        }
    };
    Ok(CmdOutput {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// Runs `program args..` (limit 20 s) and panics with its output unless it exits 0.
pub fn run_ok(program: &str, args: &[&str]) -> CmdOutput {
    let mut cmd = Command::new(program);
    cmd.args(args);
    let what = describe(&cmd);
    match run_timeout(&mut cmd, Duration::from_secs(20)) {
        Ok(o) if o.success() => o,
        Ok(o) => panic!(
            "`{what}` failed ({}):\nstdout: {}\nstderr: {}",
            o.status, o.stdout, o.stderr
        ),
        Err(e) => panic!("{e}"),
    }
}

/// Like [`run_ok`] but only reports failure (for clean-up paths that must not panic).
pub fn run_quiet(program: &str, args: &[&str]) -> Result<CmdOutput, String> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    let what = describe(&cmd);
    match run_timeout(&mut cmd, Duration::from_secs(20)) {
        Ok(o) if o.success() => Ok(o),
        Ok(o) => Err(format!(
            "`{what}` failed ({}): {}",
            o.status,
            o.stderr.trim()
        )),
        Err(e) => Err(e),
    }
}

/// Waits for `child` until `timeout`; `None` if it is still running then.
pub fn wait_deadline(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) => {}
            Err(_) => return None,
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn reader<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}
