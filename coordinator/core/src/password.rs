//! Network passwords: Argon2id, stored as PHC strings (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
//!
//! The salt is the caller's (16 random bytes from the shell's RNG), so this module never touches
//! the OS RNG. Verification reads the parameters back from the PHC string, so changing
//! [`HashParams`] later only affects networks created afterwards.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Version};

/// Argon2 cost parameters (memory in KiB, iterations, lanes).
pub use argon2::Params as HashParams;

/// The parameters new networks are hashed with in production: the `argon2` crate's defaults
/// (19 MiB, 2 passes, 1 lane: OWASP's recommendation for Argon2id).
pub const DEFAULT_HASH_PARAMS: HashParams = HashParams::DEFAULT;

/// A hash could not be made or a stored one could not be read: a bug or a damaged state file,
/// never the user's doing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct PasswordError(String);

fn argon2id(params: &HashParams) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

/// Hashes `password` with Argon2id and the given salt; returns the PHC string.
pub fn hash_password(
    params: &HashParams,
    password: &str,
    salt: &[u8; 16],
) -> Result<String, PasswordError> {
    let salt = SaltString::encode_b64(salt).map_err(|e| PasswordError(e.to_string()))?;
    argon2id(params)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError(e.to_string()))
}

/// Checks that `phc` is a PHC string this module can verify (restoring a snapshot uses it).
pub fn check_phc(phc: &str) -> Result<(), PasswordError> {
    let parsed = PasswordHash::new(phc).map_err(|e| PasswordError(e.to_string()))?;
    Algorithm::try_from(parsed.algorithm).map_err(|e| PasswordError(e.to_string()))?;
    Ok(())
}

/// `Ok(true)` when `password` matches the stored hash, `Ok(false)` when it does not.
pub fn verify_password(phc: &str, password: &str) -> Result<bool, PasswordError> {
    let parsed = PasswordHash::new(phc).map_err(|e| PasswordError(e.to_string()))?;
    // The verifier takes algorithm, version and costs from the PHC string itself.
    match Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(PasswordError(e.to_string())),
    }
}

#[cfg(test)]
pub(crate) fn test_params() -> HashParams {
    // The smallest costs Argon2 allows: tests stay fast; production uses DEFAULT_HASH_PARAMS.
    HashParams::new(HashParams::MIN_M_COST, 1, 1, None).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let p = test_params();
        let phc = hash_password(&p, "hunter2", &[1; 16]).unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{phc}");
        check_phc(&phc).unwrap();
        assert_eq!(verify_password(&phc, "hunter2"), Ok(true));
        assert_eq!(verify_password(&phc, "hunter3"), Ok(false));
        assert_eq!(verify_password(&phc, ""), Ok(false));
        // Same salt, same hash: the function is deterministic; different salts differ.
        assert_eq!(hash_password(&p, "hunter2", &[1; 16]).unwrap(), phc);
        assert_ne!(hash_password(&p, "hunter2", &[2; 16]).unwrap(), phc);
        assert!(check_phc("not a hash").is_err());
        assert!(verify_password("not a hash", "x").is_err());
    }

    #[test]
    fn production_params_are_the_crate_defaults() {
        let d = DEFAULT_HASH_PARAMS;
        assert_eq!((d.m_cost(), d.t_cost(), d.p_cost()), (19 * 1024, 2, 1));
    }
}
