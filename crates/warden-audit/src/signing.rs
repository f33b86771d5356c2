//! The checkpoint signing key: Ed25519, kept as PKCS#8 PEM in a file Warden creates (mode 0600)
//! when it is missing, and its public half as `ed25519:<base64url>` for verifiers.

use std::path::{Path, PathBuf};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

use crate::record::{Checkpoint, checkpoint_message};

/// Why a key could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// File I/O.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Not a key.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// A public key not written as `ed25519:<base64url of 32 bytes>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a public key is written `ed25519:<base64url of 32 bytes>`")]
pub struct PublicKeyFormatError;

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

/// The key that signs checkpoints.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.public.key_id)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Loads the key at `path`, creating it (and `<path>.pub`) when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        let io = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_pem(&text).map_err(|message| KeyError::Invalid {
                path: path.display().to_string(),
                message,
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let document =
                    Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| {
                        KeyError::Invalid {
                            path: path.display().to_string(),
                            message: "could not generate an Ed25519 key".to_owned(),
                        }
                    })?;
                let pem = to_pem(document.as_ref());
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(io)?;
                }
                write_private(path, pem.as_bytes()).map_err(io)?;
                let key = Self::from_pem(&pem).map_err(|message| KeyError::Invalid {
                    path: path.display().to_string(),
                    message,
                })?;
                std::fs::write(public_key_path(path), format!("{}\n", key.public.encoded))
                    .map_err(io)?;
                tracing::info!(path = %path.display(), key_id = %key.public.key_id, "created the audit checkpoint signing key");
                Ok(key)
            }
            Err(error) => Err(io(error)),
        }
    }

    fn from_pem(text: &str) -> Result<Self, String> {
        let body: String = text
            .lines()
            .map(str::trim)
            .skip_while(|line| *line != PEM_BEGIN)
            .skip(1)
            .take_while(|line| *line != PEM_END)
            .collect();
        let der = STANDARD
            .decode(body.as_bytes())
            .map_err(|_| format!("not a PEM `{PEM_BEGIN}` Ed25519 key"))?;
        let pair = Ed25519KeyPair::from_pkcs8(&der)
            .map_err(|_| "not a PKCS#8 Ed25519 private key".to_owned())?;
        let public = PublicKey::from_bytes(pair.public_key().as_ref());
        Ok(Self { pair, public })
    }

    /// Its public half.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// A checkpoint over the chain through `seq` ending in `hash`.
    pub fn checkpoint(&self, seq: u64, hash: &str) -> Checkpoint {
        let signature = self.pair.sign(&checkpoint_message(seq, hash));
        Checkpoint {
            through_seq: seq,
            through_hash: hash.to_owned(),
            key_id: self.public.key_id.clone(),
            signature: URL_SAFE_NO_PAD.encode(signature.as_ref()),
        }
    }
}

/// Where the public half of the key at `path` is written: `<path>.pub`.
pub fn public_key_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

fn to_pem(der: &[u8]) -> String {
    let encoded = STANDARD.encode(der);
    let mut pem = String::from(PEM_BEGIN);
    pem.push('\n');
    for chunk in encoded.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str(PEM_END);
    pem.push('\n');
    pem
}

/// A checkpoint verification key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    bytes: Vec<u8>,
    /// `ed25519:<base64url>`.
    pub encoded: String,
    /// The first 16 hex digits of SHA-256 of the key.
    pub key_id: String,
}

impl PublicKey {
    fn from_bytes(bytes: &[u8]) -> Self {
        Self {
            bytes: bytes.to_vec(),
            encoded: format!("ed25519:{}", URL_SAFE_NO_PAD.encode(bytes)),
            key_id: hex::encode(Sha256::digest(bytes))
                .chars()
                .take(16)
                .collect(),
        }
    }

    /// Parses `ed25519:<base64url>`.
    pub fn parse(text: &str) -> Result<Self, PublicKeyFormatError> {
        let bytes = text
            .trim()
            .strip_prefix("ed25519:")
            .and_then(|b64| URL_SAFE_NO_PAD.decode(b64).ok())
            .filter(|bytes| bytes.len() == 32)
            .ok_or(PublicKeyFormatError)?;
        Ok(Self::from_bytes(&bytes))
    }

    /// Reads a `.pub` file.
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|error| KeyError::Invalid {
            path: path.display().to_string(),
            message: error.to_string(),
        })
    }

    /// Does `checkpoint` carry a valid signature by this key?
    pub fn verifies(&self, checkpoint: &Checkpoint) -> bool {
        let Ok(signature) = URL_SAFE_NO_PAD.decode(checkpoint.signature.as_bytes()) else {
            return false;
        };
        UnparsedPublicKey::new(&ED25519, &self.bytes)
            .verify(
                &checkpoint_message(checkpoint.through_seq, &checkpoint.through_hash),
                &signature,
            )
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn a_created_key_reloads_and_its_checkpoints_verify_only_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.key");
        let key = SigningKey::load_or_create(&path).unwrap();
        let again = SigningKey::load_or_create(&path).unwrap();
        assert_eq!(key.public(), again.public());
        let public = PublicKey::read(&public_key_path(&path)).unwrap();
        let checkpoint = key.checkpoint(7, crate::record::GENESIS);
        assert!(public.verifies(&checkpoint));
        let mut moved = checkpoint.clone();
        moved.through_seq = 8;
        assert!(!public.verifies(&moved));
        let other = SigningKey::load_or_create(&dir.path().join("other.key")).unwrap();
        assert!(!other.public().verifies(&checkpoint));
    }
}
