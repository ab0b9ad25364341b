//! How the daemon is told to stop: Ctrl-C or SIGTERM (systemd).

/// Returns when the daemon should stop, naming why.
pub async fn requested() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => Ok("interrupted"),
        _ = term.recv() => Ok("terminated"),
    }
}
