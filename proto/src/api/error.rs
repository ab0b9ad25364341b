//! The local API's errors: words for a person (`message`) and a code for a program to decide by
//! (`code`), so that no client has to recognise a sentence.

use serde::{Deserialize, Serialize};

/// What kind of failure an `error` answer reports. Codes are only ever added: a client reads a
/// code it does not know, and the missing code of a daemon older than this field, as
/// [`ErrorCode::Other`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No daemon answers at the socket, or it went away mid-answer. Said by the client
    /// ([`super::client`]), never sent by a daemon.
    NotRunning,
    /// The daemon does not let this user in, or not for this request.
    PermissionDenied,
    /// A request line the daemon cannot read, such as a command it does not know (an older
    /// daemon than the client).
    BadRequest,
    /// A request of another API version.
    UnsupportedVersion,
    /// An argument the daemon refuses before asking anyone (a range, a missing companion).
    InvalidArgument,
    /// No peer, member, request or invite matches what was given, or more than one does.
    NotFound,
    /// Warren is off on this host: `up` first.
    TunnelDown,
    /// No coordinator to ask, or it cannot be reached now (the daemon keeps trying).
    CoordinatorUnreachable,
    /// No answer in time (a peer's pong, a coordinator's answer).
    TimedOut,
    /// The coordinator: wrong password for the network.
    WrongPassword,
    /// The coordinator: no network of that name.
    NoSuchNetwork,
    /// The coordinator: a network of that name exists already.
    NetworkExists,
    /// The coordinator: another member of the network has this host's name.
    NameTaken,
    /// The coordinator: this host is not a member of that network.
    NotAMember,
    /// A name (network or host) that is not allowed.
    InvalidName,
    /// The coordinator: too many requests; try again later.
    RateLimited,
    /// The invite has expired.
    InviteExpired,
    /// The invite is unknown, revoked or unreadable.
    InviteInvalid,
    /// The coordinator: only the network's owner may do that.
    NotOwner,
    /// The coordinator: the owner removed this host and banned its key.
    Banned,
    /// Something broke on the daemon's or the coordinator's side.
    Internal,
    /// Nothing more specific: the message says it all.
    #[default]
    #[serde(other)]
    Other,
}

impl From<crate::control::msg::ErrorCode> for ErrorCode {
    fn from(code: crate::control::msg::ErrorCode) -> ErrorCode {
        use crate::control::msg::ErrorCode as C;
        match code {
            C::WrongPassword => ErrorCode::WrongPassword,
            C::NoSuchNetwork => ErrorCode::NoSuchNetwork,
            C::NetworkExists => ErrorCode::NetworkExists,
            C::NameTaken => ErrorCode::NameTaken,
            C::NotAMember => ErrorCode::NotAMember,
            C::InvalidName => ErrorCode::InvalidName,
            C::RateLimited => ErrorCode::RateLimited,
            C::InviteExpired => ErrorCode::InviteExpired,
            C::InviteInvalid => ErrorCode::InviteInvalid,
            C::Internal => ErrorCode::Internal,
            C::NotOwner => ErrorCode::NotOwner,
            C::Banned => ErrorCode::Banned,
            C::NotFound => ErrorCode::NotFound,
        }
    }
}

/// A failed request: what [`super::Response::Error`] carries, as a Rust error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

/// Words without a code yet (a helper's `Result<_, String>`): [`ErrorCode::Other`].
impl From<String> for ApiError {
    fn from(message: String) -> ApiError {
        ApiError::new(ErrorCode::Other, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<ApiError> for super::Response {
    fn from(e: ApiError) -> super::Response {
        super::Response::Error {
            message: e.message,
            code: e.code,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Response, ResponseEnvelope};

    #[test]
    fn the_code_travels_as_a_snake_case_field_beside_the_message() {
        let env = ResponseEnvelope {
            v: 1,
            response: ApiError::new(ErrorCode::WrongPassword, "wrong password for network lan")
                .into(),
        };
        assert_eq!(
            serde_json::to_string(&env).unwrap(),
            r#"{"v":1,"error":{"message":"wrong password for network lan","code":"wrong_password"}}"#
        );
    }

    /// An older daemon sends no code, a newer one may send a code this client does not know:
    /// both still parse, as `other`, with their words intact.
    #[test]
    fn a_missing_or_unknown_code_reads_as_other() {
        for line in [
            r#"{"v":1,"error":{"message":"no"}}"#,
            r#"{"v":1,"error":{"message":"no","code":"from_the_future"}}"#,
        ] {
            let env: ResponseEnvelope = serde_json::from_str(line).unwrap();
            assert_eq!(
                env.response,
                Response::Error {
                    message: "no".into(),
                    code: ErrorCode::Other
                },
                "{line}"
            );
        }
        let env: ResponseEnvelope =
            serde_json::from_str(r#"{"v":1,"error":{"message":"x","code":"name_taken"}}"#).unwrap();
        assert!(matches!(
            env.response,
            Response::Error {
                code: ErrorCode::NameTaken,
                ..
            }
        ));
    }

    #[test]
    fn every_coordinator_refusal_keeps_its_name() {
        use crate::control::msg::ErrorCode as C;
        for c in [
            C::WrongPassword,
            C::NoSuchNetwork,
            C::NetworkExists,
            C::NameTaken,
            C::NotAMember,
            C::InvalidName,
            C::RateLimited,
            C::InviteExpired,
            C::InviteInvalid,
            C::Internal,
            C::NotOwner,
            C::Banned,
            C::NotFound,
        ] {
            // The same snake_case word on both wires: a client needs to learn only one list.
            assert_eq!(
                serde_json::to_value(ErrorCode::from(c)).unwrap(),
                serde_json::to_value(c).unwrap()
            );
        }
    }
}
