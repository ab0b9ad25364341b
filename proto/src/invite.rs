//! Invite codes: everything a new host needs to join one network, in one string a person can
//! paste into a chat — the coordinator's address and key (so the connection is pinned from the
//! start), the network's name, a join secret and its expiry.
//!
//! ```text
//! "warren1-" base64url-nopad( version=1 (1) | expires unix secs (8, BE) | secret (16)
//!                             | coordinator key (32) | addr len (1) | addr | net len (1) | net )
//! version 2 appends:          | count (1) | { addr len (1) | addr } * count
//! ```
//! Version 2 carries more addresses of the same coordinator: a coordinator on a home PC is
//! reached from the internet at its router's mapped port and from its own LAN at its LAN
//! address (routers without hairpin NAT cannot loop the public one back). A code with one
//! address is still written as version 1, so older daemons read it.
//! The secret is what the coordinator checks (it keeps only a hash); the expiry is repeated here
//! so a client can say "this invite expired" without a round trip. Nothing in the code is
//! confidential except the secret, which is as sensitive as a network password until it expires.

use crate::key::NodeKey;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

pub const PREFIX: &str = "warren1-";
const VERSION: u8 = 2;
/// More addresses than any host has; bounds what a pasted code can make us dial.
pub const MAX_ALTERNATES: usize = 8;
pub const SECRET_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    /// HOST:PORT of the coordinator's control (QUIC) port.
    pub coordinator: String,
    /// Other HOST:PORTs of the same coordinator, tried at the same time as `coordinator`.
    pub alternates: Vec<String>,
    pub coordinator_key: NodeKey,
    pub network: String,
    pub secret: [u8; SECRET_LEN],
    /// Unix seconds.
    pub expires: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    #[error("not a Warren invite code (they start with {PREFIX})")]
    NotAnInvite,
    #[error("the invite code is damaged (was it cut off when copied?)")]
    Damaged,
    #[error("this invite was made by a newer Warren (format {0}); update Warren")]
    Version(u8),
    #[error("coordinator address or network name too long for an invite")]
    TooLong,
}

impl Invite {
    /// Whether `s` is meant as an invite code rather than a network name; [`Invite::decode`]
    /// then says whether it is a good one.
    pub fn looks_like(s: &str) -> bool {
        s.trim().starts_with(PREFIX)
    }

    pub fn encode(&self) -> Result<String, InviteError> {
        let addr = self.coordinator.as_bytes();
        let net = self.network.as_bytes();
        if addr.len() > 255
            || net.len() > 255
            || self.alternates.len() > MAX_ALTERNATES
            || self.alternates.iter().any(|a| a.len() > 255)
        {
            return Err(InviteError::TooLong);
        }
        let mut b = Vec::with_capacity(1 + 8 + SECRET_LEN + 32 + 2 + addr.len() + net.len());
        b.push(if self.alternates.is_empty() {
            1
        } else {
            VERSION
        });
        b.extend_from_slice(&self.expires.to_be_bytes());
        b.extend_from_slice(&self.secret);
        b.extend_from_slice(&self.coordinator_key.0);
        b.push(addr.len() as u8);
        b.extend_from_slice(addr);
        b.push(net.len() as u8);
        b.extend_from_slice(net);
        if !self.alternates.is_empty() {
            b.push(self.alternates.len() as u8);
            for a in &self.alternates {
                b.push(a.len() as u8);
                b.extend_from_slice(a.as_bytes());
            }
        }
        Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(b)))
    }

    pub fn decode(code: &str) -> Result<Invite, InviteError> {
        let body = code
            .trim()
            .strip_prefix(PREFIX)
            .ok_or(InviteError::NotAnInvite)?;
        let b = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| InviteError::Damaged)?;
        let mut r = Reader(&b);
        let version = r.take(1)?[0];
        if version > VERSION {
            return Err(InviteError::Version(version));
        }
        if version == 0 {
            return Err(InviteError::Damaged);
        }
        let expires = u64::from_be_bytes(r.take(8)?.try_into().expect("8 bytes"));
        let secret = r.take(SECRET_LEN)?.try_into().expect("16 bytes");
        let key = NodeKey(r.take(32)?.try_into().expect("32 bytes"));
        let alen = r.take(1)?[0] as usize;
        let coordinator = r.string(alen)?;
        let nlen = r.take(1)?[0] as usize;
        let network = r.string(nlen)?;
        let mut alternates = Vec::new();
        if version >= 2 {
            let count = r.take(1)?[0] as usize;
            if count == 0 || count > MAX_ALTERNATES {
                return Err(InviteError::Damaged);
            }
            for _ in 0..count {
                let len = r.take(1)?[0] as usize;
                let a = r.string(len)?;
                if a.is_empty() {
                    return Err(InviteError::Damaged);
                }
                alternates.push(a);
            }
        }
        if !r.0.is_empty() || coordinator.is_empty() || network.is_empty() {
            return Err(InviteError::Damaged);
        }
        Ok(Invite {
            coordinator,
            alternates,
            coordinator_key: key,
            network,
            secret,
            expires,
        })
    }

    /// The secret as the control protocol carries it.
    pub fn secret_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.secret)
    }
}

/// Parses a secret as [`Invite::secret_text`] writes it.
pub fn parse_secret(s: &str) -> Option<[u8; SECRET_LEN]> {
    URL_SAFE_NO_PAD.decode(s).ok()?.try_into().ok()
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], InviteError> {
        if self.0.len() < n {
            return Err(InviteError::Damaged);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn string(&mut self, n: usize) -> Result<String, InviteError> {
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| InviteError::Damaged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Invite {
        Invite {
            coordinator: "coord.example.net:7443".into(),
            alternates: vec![],
            coordinator_key: NodeKey([7; 32]),
            network: "lan-party".into(),
            secret: [9; SECRET_LEN],
            expires: 1_800_000_000,
        }
    }

    #[test]
    fn round_trip_and_short_enough_to_paste() {
        let code = sample().encode().unwrap();
        assert!(code.starts_with(PREFIX));
        assert!(Invite::looks_like(&code));
        assert!(code.len() < 140, "{} chars: {code}", code.len());
        assert_eq!(Invite::decode(&format!("  {code}\n")).unwrap(), sample());
        assert_eq!(parse_secret(&sample().secret_text()), Some(sample().secret));
    }

    #[test]
    fn damaged_codes_are_refused_with_a_reason() {
        let code = sample().encode().unwrap();
        assert_eq!(Invite::decode("lan-party"), Err(InviteError::NotAnInvite));
        assert_eq!(
            Invite::decode(&code[..code.len() - 5]),
            Err(InviteError::Damaged)
        );
        assert_eq!(
            Invite::decode(&format!("{code}AAAA")),
            Err(InviteError::Damaged)
        );
        assert_eq!(
            Invite::decode(&format!("{PREFIX}!!!")),
            Err(InviteError::Damaged)
        );
        assert_eq!(
            Invite::decode(&format!("{PREFIX}AAAA")),
            Err(InviteError::Damaged)
        );
        let mut raw = URL_SAFE_NO_PAD.decode(&code[PREFIX.len()..]).unwrap();
        raw[0] = 3;
        assert_eq!(
            Invite::decode(&format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(raw))),
            Err(InviteError::Version(3))
        );
        let long = Invite {
            network: "n".repeat(300),
            ..sample()
        };
        assert_eq!(long.encode(), Err(InviteError::TooLong));
    }

    #[test]
    fn a_home_coordinator_carries_its_public_and_lan_addresses() {
        let home = Invite {
            coordinator: "198.51.100.7:7443".into(),
            alternates: vec!["192.168.1.20:7443".into(), "10.0.0.5:7443".into()],
            ..sample()
        };
        let code = home.encode().unwrap();
        assert_eq!(Invite::decode(&code).unwrap(), home);
        // One address: still version 1, which older daemons read.
        let raw = URL_SAFE_NO_PAD
            .decode(&sample().encode().unwrap()[PREFIX.len()..])
            .unwrap();
        assert_eq!(raw[0], 1);
        // Version 2 with its list cut off, or an empty list, is damaged.
        let raw = URL_SAFE_NO_PAD.decode(&code[PREFIX.len()..]).unwrap();
        assert_eq!(raw[0], 2);
        let cut = &raw[..raw.len() - 3];
        assert_eq!(
            Invite::decode(&format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(cut))),
            Err(InviteError::Damaged)
        );
        let many = Invite {
            alternates: vec!["192.168.1.20:7443".into(); MAX_ALTERNATES + 1],
            ..sample()
        };
        assert_eq!(many.encode(), Err(InviteError::TooLong));
    }
}
