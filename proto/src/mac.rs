//! MAC addresses as people type them (`warren wake`, the GUI's wake button): six bytes in hex,
//! separated by `:` or `-` (`aa:bb:cc:dd:ee:ff`, `AA-BB-CC-DD-EE-FF`) or not at all
//! (`aabbccddeeff`). On the API and in JSON a MAC is its `aa:bb:cc:dd:ee:ff` string.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

/// What to type, in every error: people copy MACs from many tools, in many forms.
pub const MAC_HELP: &str = "type the PC's MAC address as six pairs of hex digits, e.g. \
     aa:bb:cc:dd:ee:ff (Windows: `getmac` or `ipconfig /all`, \"Physical Address\"; Linux: \
     `ip link`, \"link/ether\")";

impl FromStr for Mac {
    type Err = String;

    fn from_str(s: &str) -> Result<Mac, String> {
        let t = s.trim();
        let digits: String = if t.contains(':') || t.contains('-') {
            let parts: Vec<&str> = t.split([':', '-']).collect();
            if parts.len() != 6 || parts.iter().any(|p| p.len() != 2) {
                return Err(format!("{s:?} is not a MAC address: {MAC_HELP}"));
            }
            parts.concat()
        } else {
            t.to_string()
        };
        if digits.len() != 12 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("{s:?} is not a MAC address: {MAC_HELP}"));
        }
        let mut mac = [0u8; 6];
        for (i, byte) in mac.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).expect("checked hex");
        }
        if mac == [0; 6] || mac == [0xff; 6] || mac[0] & 1 == 1 {
            return Err(format!(
                "{s:?} is not the address of one network card (it is empty, broadcast or \
                 multicast): {MAC_HELP}"
            ));
        }
        Ok(Mac(mac))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl Serialize for Mac {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Mac, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usual_spellings_parse() {
        let want = Mac([0x52, 0x54, 0x00, 0xab, 0xcd, 0xef]);
        for s in [
            "52:54:00:ab:cd:ef",
            "52-54-00-AB-CD-EF",
            "525400abcdef",
            " 52:54:00:Ab:cD:eF\n",
        ] {
            assert_eq!(s.parse::<Mac>(), Ok(want), "{s:?}");
        }
        assert_eq!(want.to_string(), "52:54:00:ab:cd:ef");
        let json = serde_json::to_string(&want).unwrap();
        assert_eq!(json, "\"52:54:00:ab:cd:ef\"");
        assert_eq!(serde_json::from_str::<Mac>(&json).unwrap(), want);
    }

    #[test]
    fn anything_else_says_what_to_type() {
        for s in [
            "",
            "52:54:00:ab:cd",
            "52:54:00:ab:cd:ef:01",
            "52:54:00:ab:cd:eg",
            "5254.00ab.cdef",
            "525400abcde",
            "5:54:00:ab:cd:ef0",
            "pc-in-the-office",
            "ff:ff:ff:ff:ff:ff",
            "00:00:00:00:00:00",
            "01:00:5e:00:00:fb",
        ] {
            let e = s.parse::<Mac>().unwrap_err();
            assert!(e.contains("aa:bb:cc:dd:ee:ff"), "{s:?}: {e}");
        }
        assert!(serde_json::from_str::<Mac>("\"nope\"").is_err());
    }
}
