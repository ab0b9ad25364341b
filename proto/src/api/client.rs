//! The client of the daemon's local API that `warren` and `warren-gui` share (feature `client`):
//! a request line out, an answer line in, over the Unix socket (on Windows the named pipe). Blocking std I/O: both callers
//! ask from plain threads. Each front end words a [`CallError`] its own way; both decide by
//! [`CallError::code`], never by the words.

use super::API_VERSION;
use super::{ApiError, ErrorCode, Request, RequestEnvelope, Response, ResponseEnvelope};
use std::io::{BufRead, BufReader, ErrorKind, Write};
#[cfg(unix)]
use std::os::unix::net::UnixStream as Stream;
#[cfg(windows)]
mod pipe;
#[cfg(windows)]
use pipe::Stream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a call brought no answer, or what the daemon refused.
#[derive(Debug)]
pub enum CallError {
    /// The socket could not be used.
    Connect {
        socket: PathBuf,
        error: std::io::Error,
    },
    /// Writing the request or reading the answer failed (also a read timeout).
    Lost(std::io::Error),
    /// The daemon closed the connection without answering.
    Closed,
    /// An answer this client cannot read (another version of the daemon?).
    Garbled(serde_json::Error),
    /// The daemon answered with an error.
    Daemon(ApiError),
}

impl CallError {
    pub fn code(&self) -> ErrorCode {
        match self {
            CallError::Connect { error, .. } => match error.kind() {
                ErrorKind::NotFound | ErrorKind::ConnectionRefused => ErrorCode::NotRunning,
                ErrorKind::PermissionDenied => ErrorCode::PermissionDenied,
                _ => ErrorCode::Other,
            },
            CallError::Lost(e)
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                ErrorCode::TimedOut
            }
            // A daemon that drops the connection mid-answer has stopped or is restarting.
            CallError::Lost(_) | CallError::Closed => ErrorCode::NotRunning,
            CallError::Garbled(_) => ErrorCode::Other,
            CallError::Daemon(e) => e.code,
        }
    }
}

/// Plain words for logs; the front ends say it to people in their own.
impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Connect { socket, error } => {
                write!(f, "cannot connect to {}: {error}", socket.display())
            }
            CallError::Lost(e) => write!(f, "lost the connection to the daemon: {e}"),
            CallError::Closed => f.write_str("the daemon closed the connection without answering"),
            CallError::Garbled(e) => write!(f, "unintelligible answer from the daemon: {e}"),
            CallError::Daemon(e) => f.write_str(&e.message),
        }
    }
}

impl std::error::Error for CallError {}

/// One connection to the daemon: any number of requests, one answer each, or a `subscribe`
/// and its stream of answers.
pub struct Connection {
    reader: BufReader<Stream>,
}

impl Connection {
    pub fn open(socket: &Path) -> Result<Connection, CallError> {
        let stream = Stream::connect(socket).map_err(|error| CallError::Connect {
            socket: socket.to_path_buf(),
            error,
        })?;
        Ok(Connection {
            reader: BufReader::new(stream),
        })
    }

    /// How long [`Connection::receive`] waits (`None`: for ever).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<(), CallError> {
        self.reader
            .get_ref()
            .set_read_timeout(timeout)
            .map_err(CallError::Lost)
    }

    pub fn send(&mut self, request: Request) -> Result<(), CallError> {
        let mut line = serde_json::to_vec(&RequestEnvelope {
            v: API_VERSION,
            request,
        })
        .expect("a request is plain data");
        line.push(b'\n');
        self.reader
            .get_mut()
            .write_all(&line)
            .map_err(CallError::Lost)
    }

    /// The next answer; the daemon's `error` is `Err`.
    pub fn receive(&mut self) -> Result<Response, CallError> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => return Err(CallError::Closed),
            Ok(_) => {}
            Err(e) => return Err(CallError::Lost(e)),
        }
        let env: ResponseEnvelope = serde_json::from_str(&line).map_err(CallError::Garbled)?;
        match env.response {
            Response::Error { message, code } => Err(CallError::Daemon(ApiError {
                code: legacy_code(code, &message),
                message,
            })),
            other => Ok(other),
        }
    }

    /// One request, its answer.
    pub fn call(&mut self, request: Request) -> Result<Response, CallError> {
        self.send(request)?;
        self.receive()
    }
}

/// A daemon older than the `code` field still refuses a request it cannot read (a command
/// newer than itself) in one fixed way, `bad request: …`: that one is worth telling apart
/// (update the daemon). Daemons with codes always send `bad_request` for it.
fn legacy_code(code: ErrorCode, message: &str) -> ErrorCode {
    if code == ErrorCode::Other && message.starts_with("bad request: ") {
        ErrorCode::BadRequest
    } else {
        code
    }
}

/// One request on a fresh connection, waiting for the answer as long as it takes.
pub fn call(socket: &Path, request: Request) -> Result<Response, CallError> {
    Connection::open(socket)?.call(request)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::thread::JoinHandle;

    /// A socket in a directory of its own, removed with it.
    struct Dir(PathBuf);

    impl Dir {
        fn new() -> Dir {
            static N: AtomicU32 = AtomicU32::new(0);
            let d = std::env::temp_dir().join(format!(
                "warren-api-client-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&d).unwrap();
            Dir(d)
        }
        fn socket(&self) -> PathBuf {
            self.0.join("warrend.sock")
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A daemon for one connection: answers each request line with the next of `answers`
    /// (written as they are), then closes. Returns the request lines it read.
    fn daemon(socket: &Path, answers: &[&str]) -> JoinHandle<Vec<String>> {
        let listener = UnixListener::bind(socket).unwrap();
        let answers: Vec<String> = answers.iter().map(|s| s.to_string()).collect();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut heard = Vec::new();
            for answer in answers {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 {
                    break;
                }
                heard.push(line);
                reader.get_mut().write_all(answer.as_bytes()).unwrap();
            }
            heard
        })
    }

    /// `request` on a fresh connection to a daemon that answers the line `answer`; and the
    /// request lines the daemon read.
    fn ask(request: Request, answer: &str) -> (Result<Response, CallError>, Vec<String>) {
        let dir = Dir::new();
        let d = daemon(&dir.socket(), &[answer]);
        let r = call(&dir.socket(), request);
        (r, d.join().unwrap())
    }

    #[test]
    fn a_request_line_out_and_its_answer_in() {
        let (r, heard) = ask(
            Request::Version,
            "{\"v\":1,\"version\":{\"daemon\":\"9.9\"}}\n",
        );
        let version = Response::Version {
            daemon: "9.9".into(),
        };
        assert_eq!(r.unwrap(), version);
        assert_eq!(heard, vec!["{\"v\":1,\"cmd\":\"version\"}\n"]);
    }

    /// The last row is a daemon older than codes refusing the `games` of a newer client.
    #[test]
    fn the_daemons_error_comes_back_with_its_code_and_words() {
        let rows = [
            (
                Request::Status,
                r#"{"v":1,"error":{"message":"wrong password","code":"wrong_password"}}"#,
                ErrorCode::WrongPassword,
                "wrong password",
            ),
            (
                Request::Games,
                r#"{"v":1,"error":{"message":"bad request: unknown variant `games`"}}"#,
                ErrorCode::BadRequest,
                "bad request: unknown variant `games`",
            ),
        ];
        for (request, answer, code, words) in rows {
            let e = ask(request, &format!("{answer}\n")).0.unwrap_err();
            assert_eq!((e.code(), e.to_string().as_str()), (code, words));
        }
        // Only that fixed start, only without a code.
        assert_eq!(
            legacy_code(ErrorCode::Other, "the bad request: no"),
            ErrorCode::Other
        );
        assert_eq!(
            legacy_code(ErrorCode::NotFound, "bad request: x"),
            ErrorCode::NotFound
        );
    }

    /// Several answers on one connection (what `subscribe` gets), then the daemon goes away:
    /// that reads as a daemon that is not running.
    #[test]
    fn answers_keep_coming_until_the_daemon_closes() {
        let dir = Dir::new();
        let ok = "{\"v\":1,\"done\":{\"message\":\"ok\"}}\n";
        let _d = daemon(&dir.socket(), &[ok, ok]);
        let mut c = Connection::open(&dir.socket()).unwrap();
        for _ in 0..2 {
            assert_eq!(
                c.call(Request::Down).unwrap(),
                Response::Done {
                    message: "ok".into()
                }
            );
        }
        let e = c.call(Request::Down).unwrap_err();
        assert!(matches!(e, CallError::Closed | CallError::Lost(_)), "{e:?}");
        assert_eq!(e.code(), ErrorCode::NotRunning);
    }

    #[test]
    fn an_unreadable_answer_is_not_taken_for_one() {
        let e = ask(Request::Status, "{\"v\":1,\"what\":3}\n")
            .0
            .unwrap_err();
        assert!(matches!(e, CallError::Garbled(_)), "{e:?}");
        assert_eq!(e.code(), ErrorCode::Other);
    }

    #[test]
    fn a_silent_daemon_times_out() {
        let dir = Dir::new();
        let listener = UnixListener::bind(dir.socket()).unwrap();
        let mut c = Connection::open(&dir.socket()).unwrap();
        c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let e = c.call(Request::Status).unwrap_err();
        assert_eq!(e.code(), ErrorCode::TimedOut, "{e:?}");
        drop(listener);
    }

    #[test]
    fn no_socket_means_no_daemon() {
        let dir = Dir::new();
        let e = call(&dir.socket(), Request::Status).unwrap_err();
        assert!(matches!(&e, CallError::Connect { socket, .. } if *socket == dir.socket()));
        assert_eq!(e.code(), ErrorCode::NotRunning);
        // A socket file nobody listens on any more (a daemon that died) too.
        drop(UnixListener::bind(dir.socket()).unwrap());
        assert_eq!(
            call(&dir.socket(), Request::Status).unwrap_err().code(),
            ErrorCode::NotRunning
        );
    }

    /// Root passes every permission check, so the refused connect is made up here.
    #[test]
    fn a_refused_connect_says_permission_denied() {
        let e = CallError::Connect {
            socket: "/run/warren/warrend.sock".into(),
            error: ErrorKind::PermissionDenied.into(),
        };
        assert_eq!(e.code(), ErrorCode::PermissionDenied);
    }
}
