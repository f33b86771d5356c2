//! Test helpers shared by Warden's test suites: signing keys generated at test time (RSA
//! 2048, P-256, Ed25519, HMAC), tokens minted over raw header and payload text (so tests can
//! forge duplicate keys, odd algorithms and stripped signatures), JWKS documents, and a
//! throwaway certificate authority ([`pki`]).
//! Only ever a dev-dependency.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers fail loudly"
)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair, RsaPublicKeyComponents,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

pub mod pki;

pub const NOW: i64 = 1_800_000_000;

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A signing key of one kind, with the kid it is published under.
pub enum SigningKey {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Hmac(Vec<u8>),
}

pub struct TestKey {
    pub kid: String,
    pub key: SigningKey,
}

impl TestKey {
    pub fn rsa(kid: &str) -> Self {
        let key = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        Self {
            kid: kid.into(),
            key: SigningKey::Rsa(key),
        }
    }
    pub fn ec(kid: &str) -> Self {
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        Self {
            kid: kid.into(),
            key: SigningKey::Ec(key),
        }
    }
    pub fn ed(kid: &str) -> Self {
        let key = Ed25519KeyPair::generate().unwrap();
        Self {
            kid: kid.into(),
            key: SigningKey::Ed(key),
        }
    }
    pub fn hmac(secret: &[u8]) -> Self {
        Self {
            kid: "hs".into(),
            key: SigningKey::Hmac(secret.to_vec()),
        }
    }

    /// The public JWK.
    pub fn jwk(&self) -> Value {
        match &self.key {
            SigningKey::Rsa(key) => {
                let components = RsaPublicKeyComponents::<Vec<u8>>::from(key.public_key());
                json!({"kty": "RSA", "kid": self.kid, "use": "sig", "n": b64(&components.n), "e": b64(&components.e)})
            }
            SigningKey::Ec(key) => {
                let point = key.public_key().as_ref();
                json!({"kty": "EC", "kid": self.kid, "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
            SigningKey::Ed(key) => {
                json!({"kty": "OKP", "kid": self.kid, "crv": "Ed25519", "x": b64(key.public_key().as_ref())})
            }
            SigningKey::Hmac(_) => panic!("an HMAC secret has no public JWK"),
        }
    }

    /// Signs `signing_input` as its algorithm requires.
    pub fn sign(&self, signing_input: &[u8]) -> Vec<u8> {
        match &self.key {
            SigningKey::Rsa(key) => {
                let mut signature = vec![0; key.public_modulus_len()];
                key.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    signing_input,
                    &mut signature,
                )
                .unwrap();
                signature
            }
            SigningKey::Ec(key) => key
                .sign(&SystemRandom::new(), signing_input)
                .unwrap()
                .as_ref()
                .to_vec(),
            SigningKey::Ed(key) => key.sign(signing_input).as_ref().to_vec(),
            SigningKey::Hmac(secret) => {
                let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
                aws_lc_rs::hmac::sign(&key, signing_input).as_ref().to_vec()
            }
        }
    }

    pub fn alg(&self) -> &'static str {
        match self.key {
            SigningKey::Rsa(_) => "RS256",
            SigningKey::Ec(_) => "ES256",
            SigningKey::Ed(_) => "EdDSA",
            SigningKey::Hmac(_) => "HS256",
        }
    }

    /// A token with this key's alg and kid over the given claims.
    pub fn token(&self, claims: &Value) -> String {
        let header = json!({"alg": self.alg(), "kid": self.kid, "typ": "JWT"});
        self.token_raw(&header.to_string(), &claims.to_string())
    }

    /// A token over raw header and payload text, signed by this key.
    pub fn token_raw(&self, header: &str, payload: &str) -> String {
        let signing_input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
        let signature = self.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", b64(&signature))
    }
}

pub fn jwks(keys: &[&TestKey]) -> String {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()}).to_string()
}

/// Standard valid claims for an issuer.
pub fn claims(issuer: &str) -> Value {
    claims_at(issuer, NOW)
}

/// Standard valid claims for an issuer, valid around `now` (Unix seconds).
pub fn claims_at(issuer: &str, now: i64) -> Value {
    json!({
        "iss": issuer,
        "sub": "alice",
        "aud": "warden",
        "exp": now + 600,
        "iat": now - 10,
        "nbf": now - 10,
        "jti": "j-1",
        "org_id": "acme",
        "roles": ["editor"],
        "scope": "documents:read documents:write",
    })
}

/// Claims with one field replaced (or removed with `Value::Null` as `remove`).
pub fn claims_with(issuer: &str, field: &str, value: Option<Value>) -> Value {
    let mut claims = claims(issuer);
    match value {
        Some(value) => {
            claims[field] = value;
        }
        None => {
            claims.as_object_mut().unwrap().remove(field);
        }
    }
    claims
}

/// A fresh, empty PostgreSQL database on the test server named by `WARDEN_TEST_POSTGRES_URL`,
/// as a URL; `None` when the variable is not set (the caller says the test is skipped).
pub async fn fresh_postgres_url() -> Option<String> {
    let base = std::env::var("WARDEN_TEST_POSTGRES_URL").ok()?;
    let name = format!("warden_test_{}", uuid::Uuid::now_v7().simple());
    let admin = sqlx::PgPool::connect(&base)
        .await
        .expect("WARDEN_TEST_POSTGRES_URL is reachable");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (prefix, _) = base
        .rsplit_once('/')
        .expect("a database name in WARDEN_TEST_POSTGRES_URL");
    Some(format!("{prefix}/{name}"))
}
