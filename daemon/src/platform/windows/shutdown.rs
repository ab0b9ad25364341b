//! How the daemon is told to stop: Ctrl-C in a console, or the service manager's Stop when it
//! runs as the `Warren` service (`warrend --service`, as the installer registers it).

use std::ffi::OsString;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::Notify;
use windows_service::service::{
    ServiceControl, ServiceControlAccept, ServiceExitCode, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
use windows_service::{define_windows_service, service_dispatcher};

/// The name the installer gives the service.
pub const SERVICE_NAME: &str = "Warren";

/// Set by the service manager's Stop or Shutdown; a permit is kept if no one waits yet.
static STOP: Notify = Notify::const_new();
/// The daemon's body, run by the service's main thread.
static BODY: OnceLock<fn() -> anyhow::Result<()>> = OnceLock::new();

/// Returns when the daemon should stop, naming why.
pub async fn requested() -> std::io::Result<&'static str> {
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.map(|()| "interrupted"),
        _ = STOP.notified() => Ok("stopped by the service manager"),
    }
}

define_windows_service!(ffi_service_main, service_main);

/// Hands this process to the service manager, which runs `body` as the service until it
/// returns (after a Stop) or fails.
pub fn run_as_service(body: fn() -> anyhow::Result<()>) -> anyhow::Result<()> {
    let _ = BODY.set(body);
    service_dispatcher::start(SERVICE_NAME, ffi_service_main).map_err(|e| {
        anyhow::anyhow!(
            "cannot start as a service ({e}); `--service` is for the service manager: start \
             the service with `sc start {SERVICE_NAME}`, or run warrend without it"
        )
    })
}

fn service_main(_args: Vec<OsString>) {
    let handler = service_control_handler::register(SERVICE_NAME, |control| match control {
        ServiceControl::Stop | ServiceControl::Shutdown => {
            STOP.notify_one();
            ServiceControlHandlerResult::NoError
        }
        ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
        _ => ServiceControlHandlerResult::NotImplemented,
    });
    let Ok(handle) = handler else {
        return;
    };
    let status = |state, accept, code| ServiceStatus {
        service_type: ServiceType::OWN_PROCESS,
        current_state: state,
        controls_accepted: accept,
        exit_code: ServiceExitCode::Win32(code),
        checkpoint: 0,
        wait_hint: Duration::from_secs(10),
        process_id: None,
    };
    let _ = handle.set_service_status(status(
        ServiceState::Running,
        ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
        0,
    ));
    let code = match BODY.get().map(|body| body()) {
        Some(Ok(())) => 0,
        Some(Err(e)) => {
            tracing::error!("warrend: {e:#}");
            1
        }
        None => 1,
    };
    let _ = handle.set_service_status(status(
        ServiceState::Stopped,
        ServiceControlAccept::empty(),
        code,
    ));
}
