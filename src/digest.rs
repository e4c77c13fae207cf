//! SHA-256 digests of secrets (consumer keys, the admin token) and the secret wrapper type.
//!
//! Keys are never stored: the configuration holds their SHA-256 digest, and a presented key is
//! hashed and compared in constant time. [`Secret`] holds the few secrets that must be kept in
//! memory (provider credentials); its `Debug` and `Display` print `*****`. Also the byte encodings
//! the gateway reads (hex, base64), so every layer can use them.

use sha2::{Digest as _, Sha256};
use std::fmt;

/// A SHA-256 digest, e.g. of an API key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyDigest([u8; 32]);

impl KeyDigest {
    /// Digest of a presented secret.
    pub fn of(secret: &[u8]) -> Self {
        KeyDigest(Sha256::digest(secret).into())
    }

    /// Parses 64 hexadecimal characters (either case).
    pub fn from_hex(hex: &str) -> Option<Self> {
        let bytes = hex.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            out[i] = (hex_val(pair[0])? << 4) | hex_val(pair[1])?;
        }
        Some(KeyDigest(out))
    }

    /// Lowercase hexadecimal form, as written in the configuration.
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    /// The first six bytes in lowercase hexadecimal: twelve ASCII characters that tell keys
    /// apart in a record, with nothing allocated.
    pub fn hex_prefix(&self) -> [u8; 12] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 12];
        for (i, b) in self.0[..6].iter().enumerate() {
            out[2 * i] = HEX[usize::from(b >> 4)];
            out[2 * i + 1] = HEX[usize::from(b & 0xf)];
        }
        out
    }

    /// Compares two digests without an early exit, so timing says nothing about where they differ.
    pub fn ct_eq(&self, other: &KeyDigest) -> bool {
        let diff = self
            .0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(diff) == 0
    }
}

impl fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A digest is not a secret, but printing it invites pasting it around; the prefix is
        // enough to tell two apart in a debugging session.
        write!(f, "KeyDigest({}…)", &self.to_hex()[..8])
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Lowercase hexadecimal encoding.
pub fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s
}

/// SHA-256 of `data` as lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    to_hex(&Sha256::digest(data))
}

/// A secret kept in memory (a provider credential). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The secret itself, for the one place that must send it (an upstream header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("*****")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("*****")
    }
}

/// 96 random bits in hex, for the ids the gateway makes up (a session, a message, a
/// completion). A failed read leaves zeros: ids stay well-formed, only less unique.
pub fn random_id_hex() -> String {
    let mut bytes = [0u8; 12];
    let _ = getrandom::getrandom(&mut bytes);
    to_hex(&bytes)
}

/// Generates a new API key: `tg-` followed by 256 random bits in hex.
pub fn generate_key() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes)?;
    Ok(format!("tg-{}", to_hex(&bytes)))
}

/// Whether `key` has the shape [`generate_key`] gives (`tg-` and 64 lowercase hex digits).
pub fn is_issued_key_shape(key: &[u8]) -> bool {
    key.len() == 67
        && key.starts_with(b"tg-")
        && key[3..]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

/// Decodes base64 (standard or URL-safe alphabet, no padding).
pub fn decode_base64(run: &[u8]) -> Option<Vec<u8>> {
    let val = |b: u8| -> Option<u32> {
        Some(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(run.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in run {
        acc = (acc << 6) | val(b)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_round_trips_through_hex() {
        let d = KeyDigest::of(b"key-team-support");
        assert_eq!(KeyDigest::from_hex(&d.to_hex()), Some(d));
        assert_eq!(
            KeyDigest::from_hex(&d.to_hex().to_uppercase()),
            Some(d),
            "uppercase hex is accepted"
        );
    }

    #[test]
    fn digest_matches_known_sha256() {
        assert_eq!(
            KeyDigest::of(b"abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn malformed_hex_is_rejected() {
        assert!(KeyDigest::from_hex("abc").is_none());
        assert!(KeyDigest::from_hex(&"g".repeat(64)).is_none());
    }

    #[test]
    fn constant_time_eq_tells_digests_apart() {
        let a = KeyDigest::of(b"a");
        let b = KeyDigest::of(b"b");
        assert!(a.ct_eq(&a));
        assert!(!a.ct_eq(&b));
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("sk-very-secret".into());
        assert_eq!(format!("{s:?} {s}"), "***** *****");
    }

    #[test]
    fn only_keys_shaped_as_issued_ones_are_looked_up_among_issued_keys() {
        let k = generate_key().unwrap();
        assert!(is_issued_key_shape(k.as_bytes()));
        assert!(!is_issued_key_shape(k.to_uppercase().as_bytes()));
        assert!(!is_issued_key_shape(&k.as_bytes()[..66]));
        assert!(!is_issued_key_shape(b"tg-test-standard-key-5b7e1c"));
    }

    #[test]
    fn generated_keys_are_distinct_and_long() {
        let a = generate_key().unwrap();
        let b = generate_key().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 3 + 64);
    }
}
