//! `warren wake MAC --via MEMBER`: hands the request to the member's daemon (see `node::wake`).

use super::{status, ApiState};
use warren_proto::api::{find_peer, ApiError, ErrorCode, Response};
use warren_proto::mac::Mac;

pub fn wake(state: &ApiState, mac: Mac, via: &str) -> Response {
    let peers = status::build(state).peers;
    let peer = match find_peer(&peers, via) {
        Ok(p) => p.clone(),
        Err(e) => return ApiError::new(ErrorCode::NotFound, e).into(),
    };
    let asked = state
        .dataplane
        .node()
        .ask_wake(std::time::Instant::now(), &peer.public_key, mac);
    if let Err(e) = asked {
        let message = format!(
            "cannot ask {} to wake {mac}: {}; {} must be online: awake, connected to \
             Warren and on the sleeping PC's LAN",
            peer.name,
            super::answer::ping_error_text(&e),
            peer.name
        );
        return ApiError::new(ErrorCode::Other, message).into();
    }
    state.dataplane.flush_now();
    Response::Done {
        message: format!(
            "asked {} to send the wake-up packet for {mac} on its LAN; a PC set up for \
             Wake-on-LAN starts within a minute (if it does not, switch Wake-on-LAN on in its \
             BIOS and its network card's settings)",
            peer.name
        ),
    }
}
