//! Random secrets (tokens, session ids, invitation and setup links) and the
//! hashes stored in their place.

use sha2::{Digest, Sha256};

/// 256 random bits as 64 lower-case hex characters.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    // The OS RNG failing is not recoverable: nothing safe can be issued.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
    hex::encode(bytes)
}

/// SHA-256 of a high-entropy secret, hex. A fast hash is right here: the
/// input has 256 bits of entropy, so there is nothing to brute-force, and
/// this runs on every request (unlike a password hash).
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The short visible part of a token that listings show.
pub fn token_prefix(secret: &str) -> String {
    secret.chars().take(8).collect()
}

/// A token as typed by a person or client: 64 hex characters.
pub fn looks_like_secret(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_64_hex_and_distinct() {
        let a = new_secret();
        let b = new_secret();
        assert_eq!(a.len(), 64);
        assert!(looks_like_secret(&a));
        assert_ne!(a, b);
        assert_eq!(hash_secret(&a).len(), 64);
        assert_ne!(hash_secret(&a), a);
        assert_eq!(token_prefix(&a), &a[..8]);
    }
}
