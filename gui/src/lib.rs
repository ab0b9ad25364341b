//! Warren's window and tray icon: clients of `warrend`'s local API only.
//!
//! - [`view`]: what is shown for a daemon state, a plain function tested without a display;
//! - [`client`]: the API socket, with the `subscribe` connection the daemon pushes changes on;
//! - [`actions`]: what the buttons and dialogs ask the daemon;
//! - `app` and `tray` (feature `ui`, on by default): the egui window and the
//!   StatusNotifierItem tray icon.

pub mod actions;
#[cfg(feature = "ui")]
pub mod app;
pub mod client;
#[cfg(feature = "ui")]
pub mod tray;
pub mod view;
