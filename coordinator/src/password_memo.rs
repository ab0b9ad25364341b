//! Passwords Argon2 already found right, remembered so that the same password for the same
//! hash is not checked again: a network of a hundred friends joining at once by password costs
//! one Argon2 run, not a hundred (two cores run about fifty a second).
//!
//! Only right passwords are remembered, so a wrong guess never matches and still goes through
//! the rate limits and Argon2 as before: guessing is exactly as slow as without the memo. What
//! is kept is a keyed BLAKE2 of the password, with a key made at start and never stored; whoever
//! could read it from the coordinator's memory could read the passwords arriving in joins too.
//! A new password is a new hash, which the old entry never matches.

use blake2::digest::{FixedOutput, KeyInit, Update};
use blake2::Blake2bMac512;
use std::collections::HashMap;
use std::sync::Mutex;

/// Hashes remembered at most; beyond it the memo starts over (a cost, never a refusal).
const MAX_ENTRIES: usize = 100_000;

pub struct PasswordMemo {
    key: [u8; 32],
    /// The PHC string of a network's hash → the keyed digest of the password it verified.
    right: Mutex<HashMap<String, [u8; 64]>>,
}

impl PasswordMemo {
    pub fn new() -> Self {
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key).expect("the system's random source");
        Self {
            key,
            right: Mutex::new(HashMap::new()),
        }
    }

    fn digest(&self, phc: &str, password: &str) -> [u8; 64] {
        let mut mac = Blake2bMac512::new_from_slice(&self.key).expect("a 32-byte key");
        // The hash is part of what is digested: an entry vouches for this pair only.
        mac.update(&(phc.len() as u64).to_le_bytes());
        mac.update(phc.as_bytes());
        mac.update(password.as_bytes());
        mac.finalize_fixed().into()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, [u8; 64]>> {
        self.right.lock().expect("password memo lock")
    }

    /// Argon2 found `password` right for `phc`.
    pub fn remember(&self, phc: &str, password: &str) {
        let d = self.digest(phc, password);
        let mut right = self.entries();
        if right.len() >= MAX_ENTRIES && !right.contains_key(phc) {
            right.clear();
        }
        right.insert(phc.to_string(), d);
    }

    /// Whether `password` is the one Argon2 found right for `phc`.
    pub fn knows(&self, phc: &str, password: &str) -> bool {
        let d = self.digest(phc, password);
        self.entries().get(phc) == Some(&d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_right_password_for_that_hash_is_known() {
        let memo = PasswordMemo::new();
        let (a, b) = (
            "$argon2id$v=19$m=19456,t=2,p=1$aaa$bbb",
            "$argon2id$v=19$x$y",
        );
        assert!(!memo.knows(a, "secret"), "nothing before Argon2 said so");
        memo.remember(a, "secret");
        assert!(memo.knows(a, "secret"));
        assert!(!memo.knows(a, "Secret"));
        assert!(!memo.knows(a, "secret "));
        assert!(!memo.knows(b, "secret"), "another hash (a new password)");
        // Another process (a restart) knows nothing.
        assert!(!PasswordMemo::new().knows(a, "secret"));
    }
}
