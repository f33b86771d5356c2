//! Warden's signing keys: generated here (Ed25519 or ECDSA P-256), sealed at rest with the
//! key-encryption key (AES-256-GCM, the kid as associated data, so a sealed key cannot be
//! swapped onto another row), published as a JWKS, and used to sign access tokens.
//!
//! SECURITY-SENSITIVE: the keys every Warden token is signed with, and how they are sealed.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use warden_config::KeyEncryptionKey;
use warden_store::SigningKeyRecord;

use crate::IssuerError;

/// A signing key ready to sign: parsed once when it is unsealed (jsonwebtoken's `encode`
/// parses the PKCS#8 document and derives the public key on every call, which was half the
/// cost of a context token on every gateway allow).
pub struct SigningKey {
    /// Its kid (the RFC 7638 JWK thumbprint).
    pub kid: String,
    /// Its algorithm.
    pub algorithm: Algorithm,
    pair: KeyPair,
}

enum KeyPair {
    Ed25519(Ed25519KeyPair),
    P256(EcdsaKeyPair),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A JWS compact serialization of `claims` under `header` (whose `alg` must be this key's),
    /// signed with this key: the same bytes `jsonwebtoken::encode` makes.
    pub(crate) fn sign_jwt<T: serde::Serialize>(
        &self,
        header: &Header,
        claims: &T,
    ) -> Result<String, IssuerError> {
        if header.alg != self.algorithm {
            return Err(IssuerError::Crypto(
                "the header names another algorithm than the key's".to_owned(),
            ));
        }
        let mut message = jws_part(header)?;
        message.push('.');
        message.push_str(&jws_part(claims)?);
        let signature = match &self.pair {
            KeyPair::Ed25519(pair) => pair.sign(message.as_bytes()).as_ref().to_vec(),
            KeyPair::P256(pair) => pair
                .sign(&SystemRandom::new(), message.as_bytes())
                .map_err(|_| IssuerError::Crypto("signing failed".to_owned()))?
                .as_ref()
                .to_vec(),
        };
        message.push('.');
        message.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(message)
    }
}

/// The base64url (unpadded) of `value`'s JSON: a JWS header or payload.
fn jws_part<T: serde::Serialize>(value: &T) -> Result<String, IssuerError> {
    serde_json::to_vec(value)
        .map(|json| URL_SAFE_NO_PAD.encode(json))
        .map_err(|error| IssuerError::Crypto(format!("encoding a token failed: {error}")))
}

fn cipher(kek: &KeyEncryptionKey) -> Result<LessSafeKey, IssuerError> {
    UnboundKey::new(&AES_256_GCM, &kek.0)
        .map(LessSafeKey::new)
        .map_err(|_| IssuerError::Crypto("the key-encryption key is unusable".to_owned()))
}

/// Seals `plaintext` (base64url of nonce ‖ ciphertext ‖ tag), bound to `kid`.
pub fn seal(kek: &KeyEncryptionKey, kid: &str, plaintext: &[u8]) -> Result<String, IssuerError> {
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce)
        .map_err(|_| IssuerError::Crypto("the system random generator failed".to_owned()))?;
    let mut in_out = plaintext.to_vec();
    cipher(kek)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(kid.as_bytes()),
            &mut in_out,
        )
        .map_err(|_| IssuerError::Crypto("sealing failed".to_owned()))?;
    let mut sealed = nonce.to_vec();
    sealed.extend_from_slice(&in_out);
    Ok(URL_SAFE_NO_PAD.encode(sealed))
}

/// Opens what [`seal`] made for `kid`; a wrong key, kid or any altered byte fails.
pub fn open(kek: &KeyEncryptionKey, kid: &str, sealed: &str) -> Result<Vec<u8>, IssuerError> {
    let refused = || {
        IssuerError::Crypto(format!(
            "signing key {kid} cannot be unsealed: wrong key-encryption key or altered data"
        ))
    };
    let bytes = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| refused())?;
    let (nonce, ciphertext) = bytes.split_at_checked(NONCE_LEN).ok_or_else(refused)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| refused())?;
    let mut in_out = ciphertext.to_vec();
    let plaintext = cipher(kek)?
        .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut in_out)
        .map_err(|_| refused())?;
    Ok(plaintext.to_vec())
}

/// The RFC 7638 thumbprint of a public JWK's required members.
fn thumbprint(jwk: &Value) -> String {
    let canonical = match jwk.get("kty").and_then(Value::as_str) {
        Some("OKP") => json!({"crv": jwk["crv"], "kty": "OKP", "x": jwk["x"]}),
        _ => json!({"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"], "y": jwk["y"]}),
    };
    // serde_json's map is ordered by key, which is what RFC 7638 asks for.
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.to_string().as_bytes()))
}

/// Generates a key of `algorithm` (`EdDSA` or `ES256`), sealed for the store.
pub fn generate(
    algorithm: &str,
    kek: &KeyEncryptionKey,
    now: i64,
) -> Result<SigningKeyRecord, IssuerError> {
    let rng = SystemRandom::new();
    let failed = |_| IssuerError::Crypto("key generation failed".to_owned());
    let (pkcs8, mut jwk) = match algorithm {
        "EdDSA" => {
            let document = Ed25519KeyPair::generate_pkcs8(&rng).map_err(failed)?;
            let pair = Ed25519KeyPair::from_pkcs8(document.as_ref())
                .map_err(|_| IssuerError::Crypto("key generation failed".to_owned()))?;
            let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
            (
                document.as_ref().to_vec(),
                json!({"kty": "OKP", "crv": "Ed25519", "x": x}),
            )
        }
        "ES256" => {
            let document = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(failed)?;
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, document.as_ref())
                    .map_err(|_| IssuerError::Crypto("key generation failed".to_owned()))?;
            let point = pair.public_key().as_ref();
            let (x, y) = match point {
                [0x04, rest @ ..] if rest.len() == 64 => rest.split_at(32),
                _ => return Err(IssuerError::Crypto("unexpected EC public key".to_owned())),
            };
            (
                document.as_ref().to_vec(),
                json!({"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)}),
            )
        }
        other => {
            return Err(IssuerError::Crypto(format!(
                "algorithm {other} is not EdDSA or ES256"
            )));
        }
    };
    let kid = thumbprint(&jwk);
    if let Some(object) = jwk.as_object_mut() {
        object.insert("kid".to_owned(), json!(kid));
        object.insert("use".to_owned(), json!("sig"));
        object.insert("alg".to_owned(), json!(algorithm));
    }
    Ok(SigningKeyRecord {
        private_key_sealed: seal(kek, &kid, &pkcs8)?,
        kid,
        algorithm: algorithm.to_owned(),
        public_jwk: jwk.to_string(),
        created_at: now,
        retired_at: None,
        publish_until: None,
    })
}

/// Unseals a stored key for signing.
pub fn unseal(
    record: &SigningKeyRecord,
    kek: &KeyEncryptionKey,
) -> Result<SigningKey, IssuerError> {
    let pkcs8 = open(kek, &record.kid, &record.private_key_sealed)?;
    let unusable = |_| IssuerError::Crypto(format!("stored key {} does not parse", record.kid));
    let (algorithm, pair) = match record.algorithm.as_str() {
        "EdDSA" => (
            Algorithm::EdDSA,
            KeyPair::Ed25519(Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(unusable)?),
        ),
        "ES256" => (
            Algorithm::ES256,
            KeyPair::P256(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
                    .map_err(unusable)?,
            ),
        ),
        other => {
            return Err(IssuerError::Crypto(format!(
                "stored key {} has algorithm {other}",
                record.kid
            )));
        }
    };
    Ok(SigningKey {
        kid: record.kid.clone(),
        algorithm,
        pair,
    })
}

/// The JWKS document of the published keys.
pub fn jwks(records: &[SigningKeyRecord]) -> Value {
    let keys: Vec<Value> = records
        .iter()
        .filter_map(|record| serde_json::from_str(&record.public_jwk).ok())
        .collect();
    json!({ "keys": keys })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_their_key_and_kid() {
        let kek = KeyEncryptionKey([9; 32]);
        let sealed = seal(&kek, "kid-1", b"private").unwrap();
        assert_eq!(open(&kek, "kid-1", &sealed).unwrap(), b"private");
        assert!(open(&kek, "kid-2", &sealed).is_err());
        assert!(open(&KeyEncryptionKey([8; 32]), "kid-1", &sealed).is_err());
        let mut altered = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert!(open(&kek, "kid-1", &URL_SAFE_NO_PAD.encode(altered)).is_err());
    }

    #[test]
    fn generated_keys_publish_their_public_half_only() {
        let kek = KeyEncryptionKey([3; 32]);
        for algorithm in ["EdDSA", "ES256"] {
            let record = generate(algorithm, &kek, 100).unwrap();
            let jwk: Value = serde_json::from_str(&record.public_jwk).unwrap();
            assert_eq!(jwk["kid"], json!(record.kid));
            assert!(jwk.get("d").is_none());
            assert!(unseal(&record, &kek).is_ok());
            assert!(unseal(&record, &KeyEncryptionKey([4; 32])).is_err());
        }
    }
}
