//! What differs between Unix and Windows: one module per concern, a file per platform, the
//! same names in both so the rest of the daemon does not ask which it runs on.

#[cfg_attr(unix, path = "unix/api_listener.rs")]
#[cfg_attr(windows, path = "windows/api_listener.rs")]
pub mod api_listener;
