//! The daemon's config file (TOML). Read only at start, but written by people and by tools:
//! anything that is not a valid config must be an error with a message, never a panic. The
//! parser lives in the daemon's binary crate, so its file (and the games port parser it uses)
//! is included here as a module.
#![no_main]

#[allow(dead_code)]
#[path = "../../daemon/src/config.rs"]
mod config;

#[allow(dead_code)]
#[path = "../../daemon/src/games"]
mod games {
    pub mod list;
}

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match config::Config::parse(text) {
        Ok(c) => {
            // What the daemon does next with the peers.
            for p in &c.peers {
                let _ = p.to_peer_config();
            }
        }
        Err(e) => assert!(!format!("{e:#}").is_empty(), "an error says what is wrong"),
    }
});
