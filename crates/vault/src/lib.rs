//! Secrets sealed at rest: the keyring and the one way a secret value
//! (an upstream connection's header or environment value) is encrypted
//! before it reaches the database.
//!
//! Each value is sealed with XChaCha20-Poly1305 under the keyring's primary
//! key, with a fresh random 192-bit nonce, and bound by the associated data
//! to its secret id and purpose: a ciphertext copied onto another secret, or
//! used for another purpose, fails to open. Every sealed value names the key
//! that sealed it, so keys can be rotated (new values use the new key, old
//! ones still open until re-sealed) and a key is dropped only once nothing
//! uses it.
//!
//! Where keys come from: `SWITCHBOARD_SECRET_KEY` (the operator's, required
//! when replicas share a PostgreSQL database so that they share keys), or a
//! key file created on first start in the data directory with mode 0600.
//!
//! Invariant: plaintext never leaves this crate except as the return value
//! of [`Keyring::open`], in a buffer that is wiped when dropped.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

const NONCE_LEN: usize = 24;
/// The format tag of a sealed value; bumped if the construction changes.
const FORMAT: &str = "v1";

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("the secret key {0}")]
    BadKey(String),
    #[error("the key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    #[error(
        "the secret was sealed with key '{0}', which is not in the keyring: add that key back (SWITCHBOARD_SECRET_KEY or the key file) or set the secret again"
    )]
    UnknownKey(String),
    #[error(
        "the sealed secret does not open: it was altered, copied from another secret, or sealed for another purpose"
    )]
    Tampered,
    #[error("the sealed value is malformed: {0}")]
    Malformed(String),
}

/// One 256-bit key and its id (the first 8 bytes of its SHA-256, hex):
/// the id can be stored and shown, the key never.
#[derive(Clone)]
pub struct Key {
    id: String,
    bytes: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key").field("id", &self.id).finish()
    }
}

impl Key {
    fn from_bytes(bytes: [u8; 32]) -> Key {
        let digest = Sha256::digest(bytes);
        let id = hex::encode(digest.get(..8).unwrap_or(&digest[..]));
        Key {
            id,
            bytes: Zeroizing::new(bytes),
        }
    }

    /// A new random key.
    pub fn generate() -> Result<Key, VaultError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| {
            VaultError::BadKey(format!("could not be generated: no randomness ({e})"))
        })?;
        let k = Key::from_bytes(bytes);
        bytes.zeroize();
        Ok(k)
    }

    /// Parses a key given as 64 hex characters or base64 of 32 bytes.
    pub fn parse(text: &str) -> Result<Key, VaultError> {
        let t = text.trim();
        let mut decoded = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(t).map_err(|e| VaultError::BadKey(e.to_string()))?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t))
                .map_err(|_| {
                    VaultError::BadKey(
                        "is neither 64 hex characters nor base64: generate one with `openssl rand -hex 32`".into(),
                    )
                })?
        };
        let Ok(bytes) = <[u8; 32]>::try_from(decoded.as_slice()) else {
            let n = decoded.len();
            decoded.zeroize();
            return Err(VaultError::BadKey(format!(
                "has {n} bytes; it must have exactly 32 (64 hex characters)"
            )));
        };
        decoded.zeroize();
        Ok(Key::from_bytes(bytes))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn hex(&self) -> String {
        hex::encode(*self.bytes)
    }
}

/// A sealed value as stored: the id of the key that sealed it, and
/// `v1.<base64url(nonce ‖ ciphertext ‖ tag)>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub blob: String,
}

/// The keys this server can open secrets with; the primary one seals.
#[derive(Clone, Debug)]
pub struct Keyring {
    /// Earlier keys, oldest first: they still open what they sealed.
    older: Vec<Key>,
    /// The key new values are sealed with.
    primary: Key,
}

/// The key file's format: every key ever added, oldest first.
#[derive(Serialize, Deserialize)]
struct KeyFile {
    keys: Vec<String>,
}

fn associated_data(purpose: &str, secret_id: &str) -> Vec<u8> {
    // Length-prefixed, so ("a:b", "c") and ("a", "b:c") differ.
    format!(
        "switchboard/{FORMAT}/{}:{purpose}/{}:{secret_id}",
        purpose.len(),
        secret_id.len()
    )
    .into_bytes()
}

impl Keyring {
    /// A keyring of the given keys (oldest first, the last seals).
    pub fn new(mut keys: Vec<Key>) -> Result<Keyring, VaultError> {
        let Some(primary) = keys.pop() else {
            return Err(VaultError::BadKey("list is empty".into()));
        };
        Ok(Keyring {
            older: keys,
            primary,
        })
    }

    /// Every key, oldest first (the primary last).
    fn keys(&self) -> impl Iterator<Item = &Key> {
        self.older.iter().chain(std::iter::once(&self.primary))
    }

    /// Keys from `SWITCHBOARD_SECRET_KEY`'s value: one key, or several
    /// separated by commas (oldest first; the last seals).
    pub fn from_env_value(value: &str) -> Result<Keyring, VaultError> {
        let keys = value
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(Key::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| match e {
                VaultError::BadKey(m) => {
                    VaultError::BadKey(format!("in SWITCHBOARD_SECRET_KEY {m}"))
                }
                other => other,
            })?;
        Keyring::new(keys)
    }

    /// The key file in `data_dir`, created (mode 0600) with a new key if it
    /// does not exist. Refuses a file others can read.
    pub fn load_or_create_file(data_dir: &Path) -> Result<Keyring, VaultError> {
        let path = data_dir.join("secret-keys.json");
        let err = |reason: String| VaultError::KeyFile {
            path: path.clone(),
            reason,
        };
        match std::fs::metadata(&path) {
            Ok(meta) => {
                check_private(&meta).map_err(err)?;
                let text = Zeroizing::new(
                    std::fs::read_to_string(&path)
                        .map_err(|e| err(format!("cannot be read: {e}")))?,
                );
                let file: KeyFile = serde_json::from_str(&text)
                    .map_err(|e| err(format!("is not a valid key file: {e}")))?;
                let keys = file
                    .keys
                    .iter()
                    .map(|k| Key::parse(k))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| err(e.to_string()))?;
                Keyring::new(keys).map_err(|e| err(e.to_string()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let ring = Keyring::new(vec![Key::generate()?])?;
                ring.write_file(&path)?;
                Ok(ring)
            }
            Err(e) => Err(err(format!("cannot be read: {e}"))),
        }
    }

    /// Adds a new primary key and rewrites the key file (atomically, 0600).
    pub fn add_key_to_file(&mut self, data_dir: &Path) -> Result<&Key, VaultError> {
        let new = Key::generate()?;
        self.older.push(std::mem::replace(&mut self.primary, new));
        self.write_file(&data_dir.join("secret-keys.json"))?;
        Ok(self.primary())
    }

    /// Keeps only the keys some sealed value still uses (and the primary),
    /// rewriting the key file.
    pub fn retain_in_file(
        &mut self,
        data_dir: &Path,
        used: &[String],
    ) -> Result<Vec<String>, VaultError> {
        let primary = self.primary().id.clone();
        let mut dropped = Vec::new();
        self.older.retain(|k| {
            let keep = k.id == primary || used.contains(&k.id);
            if !keep {
                dropped.push(k.id.clone());
            }
            keep
        });
        self.write_file(&data_dir.join("secret-keys.json"))?;
        Ok(dropped)
    }

    fn write_file(&self, path: &Path) -> Result<(), VaultError> {
        let err = |reason: String| VaultError::KeyFile {
            path: path.to_owned(),
            reason,
        };
        let file = KeyFile {
            keys: self.keys().map(Key::hex).collect(),
        };
        let text =
            Zeroizing::new(serde_json::to_string_pretty(&file).map_err(|e| err(e.to_string()))?);
        let tmp = path.with_extension("json.tmp");
        write_private(&tmp, text.as_bytes()).map_err(|e| err(format!("cannot be written: {e}")))?;
        std::fs::rename(&tmp, path).map_err(|e| err(format!("cannot be replaced: {e}")))?;
        Ok(())
    }

    /// The key new values are sealed with.
    pub fn primary(&self) -> &Key {
        &self.primary
    }

    pub fn key_ids(&self) -> Vec<String> {
        self.keys().map(|k| k.id.clone()).collect()
    }

    /// Seals `plaintext` for `purpose` (e.g. `connection.header`) and
    /// `secret_id` under the primary key.
    pub fn seal(
        &self,
        purpose: &str,
        secret_id: &str,
        plaintext: &[u8],
    ) -> Result<Sealed, VaultError> {
        let key = self.primary();
        let cipher = XChaCha20Poly1305::new_from_slice(&key.bytes[..])
            .map_err(|_| VaultError::BadKey("has the wrong length".into()))?;
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce)
            .map_err(|e| VaultError::BadKey(format!("cannot seal: no randomness ({e})")))?;
        let aad = associated_data(purpose, secret_id);
        let ciphertext = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| VaultError::Malformed("encryption failed".into()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(Sealed {
            key_id: key.id.clone(),
            blob: format!(
                "{FORMAT}.{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out)
            ),
        })
    }

    /// Opens a sealed value; the plaintext is wiped when dropped.
    pub fn open(
        &self,
        purpose: &str,
        secret_id: &str,
        sealed: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let key = self
            .keys()
            .find(|k| k.id == sealed.key_id)
            .ok_or_else(|| VaultError::UnknownKey(sealed.key_id.clone()))?;
        let Some(b64) = sealed.blob.strip_prefix(&format!("{FORMAT}.")) else {
            return Err(VaultError::Malformed(format!(
                "unknown format (expected '{FORMAT}.')"
            )));
        };
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|_| VaultError::Malformed("not base64url".into()))?;
        if raw.len() < NONCE_LEN + 16 {
            return Err(VaultError::Malformed("too short".into()));
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let mut nonce_bytes = [0u8; NONCE_LEN];
        nonce_bytes.copy_from_slice(nonce);
        let cipher = XChaCha20Poly1305::new_from_slice(&key.bytes[..])
            .map_err(|_| VaultError::BadKey("has the wrong length".into()))?;
        let aad = associated_data(purpose, secret_id);
        cipher
            .decrypt(
                &XNonce::from(nonce_bytes),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| VaultError::Tampered)
    }

    /// Re-seals a value under the primary key (key rotation); `None` when
    /// it already uses the primary key.
    pub fn reseal(
        &self,
        purpose: &str,
        secret_id: &str,
        sealed: &Sealed,
    ) -> Result<Option<Sealed>, VaultError> {
        if sealed.key_id == self.primary().id {
            return Ok(None);
        }
        let plain = self.open(purpose, secret_id, sealed)?;
        self.seal(purpose, secret_id, &plain).map(Some)
    }
}

#[cfg(unix)]
fn check_private(meta: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "is readable by others (mode {mode:o}): run `chmod 600` on it"
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &std::fs::Metadata) -> Result<(), String> {
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Keyring {
        Keyring::new(vec![Key::generate().unwrap()]).unwrap()
    }

    #[test]
    fn seals_and_opens_bound_to_id_and_purpose() {
        let r = ring();
        let s = r.seal("connection.header", "sec-1", b"Bearer xyz").unwrap();
        assert_eq!(s.key_id, r.primary().id());
        assert!(!s.blob.contains("xyz"));
        assert_eq!(
            &r.open("connection.header", "sec-1", &s).unwrap()[..],
            b"Bearer xyz"
        );
        // Same plaintext, fresh nonce: a different blob.
        let s2 = r.seal("connection.header", "sec-1", b"Bearer xyz").unwrap();
        assert_ne!(s.blob, s2.blob);
        // Copied onto another secret or used for another purpose: refused.
        assert!(matches!(
            r.open("connection.header", "sec-2", &s),
            Err(VaultError::Tampered)
        ));
        assert!(matches!(
            r.open("connection.env", "sec-1", &s),
            Err(VaultError::Tampered)
        ));
        // Altered: refused.
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut raw = engine.decode(&s.blob[3..]).unwrap();
        raw[NONCE_LEN + 2] ^= 0x01;
        let bad = Sealed {
            key_id: s.key_id.clone(),
            blob: format!("v1.{}", engine.encode(raw)),
        };
        assert!(matches!(
            r.open("connection.header", "sec-1", &bad),
            Err(VaultError::Tampered)
        ));
        // Sealed by a key this ring does not have.
        let other = ring();
        let e = other.open("connection.header", "sec-1", &s).unwrap_err();
        assert!(matches!(e, VaultError::UnknownKey(_)));
        assert!(e.to_string().contains(r.primary().id()));
    }

    #[test]
    fn rotation_reseals_under_the_new_key() {
        let old = Key::generate().unwrap();
        let before = Keyring::new(vec![old.clone()]).unwrap();
        let s = before.seal("p", "id", b"v").unwrap();
        let after = Keyring::new(vec![old, Key::generate().unwrap()]).unwrap();
        assert_eq!(
            &after.open("p", "id", &s).unwrap()[..],
            b"v",
            "old values still open"
        );
        let resealed = after.reseal("p", "id", &s).unwrap().unwrap();
        assert_eq!(resealed.key_id, after.primary().id());
        assert!(after.reseal("p", "id", &resealed).unwrap().is_none());
    }

    #[test]
    fn keys_parse_from_hex_and_base64_with_clear_errors() {
        let hex_key = "00".repeat(32);
        let k = Key::parse(&hex_key).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode([0u8; 32]);
        assert_eq!(Key::parse(&b64).unwrap().id(), k.id());
        assert!(
            Key::parse("abcd")
                .unwrap_err()
                .to_string()
                .contains("exactly 32")
        );
        assert!(
            Key::parse("not a key!")
                .unwrap_err()
                .to_string()
                .contains("64 hex")
        );
        let r = Keyring::from_env_value(&format!("{hex_key},{}", "11".repeat(32))).unwrap();
        assert_eq!(r.key_ids().len(), 2);
        assert_ne!(r.primary().id(), k.id(), "the last key seals");
        assert!(format!("{:?}", r.primary()).contains(r.primary().id()));
        assert!(
            !format!("{r:?}").contains(&"11".repeat(32)),
            "Debug never shows a key"
        );
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let a = Keyring::load_or_create_file(dir.path()).unwrap();
        let path = dir.path().join("secret-keys.json");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let b = Keyring::load_or_create_file(dir.path()).unwrap();
        assert_eq!(a.primary().id(), b.primary().id());
        let s = a.seal("p", "x", b"v").unwrap();
        let mut c = b.clone();
        let new_id = c.add_key_to_file(dir.path()).unwrap().id().to_owned();
        let d = Keyring::load_or_create_file(dir.path()).unwrap();
        assert_eq!(d.primary().id(), new_id);
        assert_eq!(&d.open("p", "x", &s).unwrap()[..], b"v");
        // Dropping unused keys keeps the primary and the ones in use.
        let mut e = d.clone();
        let dropped = e.retain_in_file(dir.path(), &[]).unwrap();
        assert_eq!(dropped, vec![a.primary().id().to_owned()]);
        assert_eq!(
            Keyring::load_or_create_file(dir.path()).unwrap().key_ids(),
            vec![new_id]
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = Keyring::load_or_create_file(dir.path()).unwrap_err();
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
    }
}
