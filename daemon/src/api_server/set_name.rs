//! `SetName`: the name others see. Kept in the state directory; a connected host reconnects to
//! its coordinator under the new name (as `Up { name }` does), and a coordinator that refuses
//! it because another member has it is reported in words and as `coordinator.name_taken`.

use super::answer::ask;
use super::ApiState;
use crate::control::{Command, CoordinatorSettings};
use warren_proto::api::{ApiError, ErrorCode, Response};

pub async fn set_name(state: &ApiState, raw: &str) -> Response {
    let name = match state.names.set(raw) {
        Ok(n) => n,
        Err(e) => return error(ErrorCode::InvalidName, format!("{e:#}")),
    };
    tracing::info!(%name, "name chosen");
    let Some(settings) = rename(state) else {
        let status = state
            .control
            .view
            .lock()
            .expect("control view lock")
            .coordinator
            .clone();
        return Response::Done {
            message: match status {
                Some(c) if c.connected => format!("your name is {name}"),
                Some(_) => format!("your name is now {name}; Warren uses it when it reconnects"),
                None => format!("your name is now {name}; others see it once you join a network"),
            },
        };
    };
    if !state.dataplane.node().is_up() {
        return Response::Done {
            message: format!(
                "your name is now {name}; others see it when you turn Warren on (`warren up`)"
            ),
        };
    }
    let address = settings.address.clone();
    match ask(state, |r| Command::Up(Some(settings), r)).await {
        Ok(_) => Response::Done {
            message: format!("your name is now {name} (reconnected to {address})"),
        },
        Err(_) if name_taken(state) => error(ErrorCode::NameTaken, taken(&name)),
        Err(e) => error(
            e.code,
            format!("your name is now {name}, but reconnecting under it failed: {e}"),
        ),
    }
}

/// The remembered coordinator with the chosen name, when it still uses another one: what
/// `SetName` and a bare `Up` connect with.
pub fn rename(state: &ApiState) -> Option<CoordinatorSettings> {
    let chosen = state.names.chosen()?;
    let c = super::answer::remembered(state)?;
    (c.name != chosen).then_some(CoordinatorSettings { name: chosen, ..c })
}

/// An explicit `--name` on `up` or an invite is a choice of name too: kept like `SetName`'s.
pub fn remember(state: &ApiState, raw: &str) -> Result<String, String> {
    state.names.set(raw).map_err(|e| format!("{e:#}"))
}

fn name_taken(state: &ApiState) -> bool {
    let v = state.control.view.lock().expect("control view lock");
    v.coordinator.as_ref().is_some_and(|c| c.name_taken)
}

fn taken(name: &str) -> String {
    format!(
        "another member of your networks is already called {name}: choose another name \
         (`warren name OTHER`)"
    )
}

fn error(code: ErrorCode, message: String) -> Response {
    ApiError::new(code, message).into()
}
