//! An issuer's verification keys, parsed from a JWKS with every check Warden wants.
//!
//! SECURITY-SENSITIVE: which keys may verify a token is decided here.
//!
//! jsonwebtoken's own `Jwk` parsing ignores `crv`, `use` and `alg`, turns `kty: "oct"` into an
//! HMAC key and fails a whole set on one odd key. Warden parses each key itself: only `RSA`
//! (at least 2048 bits), `EC` (P-256, P-384) and `OKP` (Ed25519) signature keys are accepted;
//! symmetric keys are never taken from a JWKS; a key that fails a check is refused with a
//! reason and the rest of the set still loads. A key accepts an algorithm only if its type and
//! curve match it and, when the JWK names an `alg`, that is the one.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};
use sha2::Digest as _;

use crate::settings::HmacSecret;
use crate::strict_json;

/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// A key's type and curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA, for RS* and PS*.
    Rsa,
    /// EC P-256, for ES256.
    EcP256,
    /// EC P-384, for ES384.
    EcP384,
    /// Ed25519, for EdDSA.
    Ed25519,
    /// A shared secret, for HS256.
    Hmac,
}

impl KeyKind {
    /// Whether a key of this kind can verify `algorithm`.
    pub fn accepts(self, algorithm: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            KeyKind::Rsa => matches!(algorithm, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            KeyKind::EcP256 => algorithm == ES256,
            KeyKind::EcP384 => algorithm == ES384,
            KeyKind::Ed25519 => algorithm == EdDSA,
            KeyKind::Hmac => algorithm == HS256,
        }
    }
}

/// One verification key. Its `Debug` shows no key material.
pub struct VerificationKey {
    /// The `kid`, if the JWK has one.
    pub kid: Option<String>,
    /// Type and curve.
    pub kind: KeyKind,
    /// The JWK's `alg`, if it names one.
    pub jwk_alg: Option<Algorithm>,
    /// The public key's parameters (`kty`, `crv`, `n`, `e`, `x`, `y`), to tell two keys apart.
    fingerprint: String,
    /// The RFC 7638 JWK thumbprint (SHA-256, base64url), the key's name whatever its `kid`;
    /// `None` for a shared secret, whose digest is never published.
    pub thumbprint: Option<String>,
    pub(crate) key: DecodingKey,
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("kind", &self.kind)
            .field("jwk_alg", &self.jwk_alg)
            .finish_non_exhaustive()
    }
}

impl VerificationKey {
    /// Whether this key may verify a token signed with `algorithm`.
    pub fn accepts(&self, algorithm: Algorithm) -> bool {
        self.kind.accepts(algorithm) && self.jwk_alg.is_none_or(|alg| alg == algorithm)
    }
}

/// A JWKS that could not be used at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySetError {
    /// Not JSON, duplicate keys, or no `keys` array.
    #[error("the JWKS is malformed: {0}")]
    Malformed(String),
}

/// The keys of one issuer at one moment. Immutable; a refresh builds a new one.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<Arc<VerificationKey>>,
}

impl KeySet {
    /// Parses a JWKS document. Returns the set and one message per refused key.
    pub fn from_jwks(document: &[u8]) -> Result<(KeySet, Vec<String>), KeySetError> {
        let object = strict_json::parse_object(document)
            .map_err(|error| KeySetError::Malformed(error.to_string()))?;
        let Some(Value::Array(entries)) = object.get("keys") else {
            return Err(KeySetError::Malformed("no `keys` array".to_owned()));
        };
        let mut keys = Vec::with_capacity(entries.len());
        let mut refused = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            match entry
                .as_object()
                .ok_or_else(|| "not an object".to_owned())
                .and_then(parse_jwk)
            {
                Ok(key) => keys.push(Arc::new(key)),
                Err(why) => {
                    let kid = entry.get("kid").and_then(Value::as_str).unwrap_or("-");
                    refused.push(format!("key #{index} (kid {kid}) refused: {why}"));
                }
            }
        }
        Ok((KeySet { keys }, refused))
    }

    /// The single key of an HS256 issuer.
    pub fn from_secret(secret: &HmacSecret) -> KeySet {
        KeySet {
            keys: vec![Arc::new(VerificationKey {
                kid: None,
                kind: KeyKind::Hmac,
                jwk_alg: Some(Algorithm::HS256),
                fingerprint: "oct".to_owned(),
                thumbprint: None,
                key: DecodingKey::from_secret(&secret.0),
            })],
        }
    }

    /// The key for a token's `kid` and `alg`. Without a `kid`, only an unambiguous key (the
    /// only one that accepts the algorithm) is used.
    pub fn find(&self, kid: Option<&str>, algorithm: Algorithm) -> Option<&Arc<VerificationKey>> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|key| key.kid.as_deref() == Some(kid) && key.accepts(algorithm)),
            None => {
                let mut candidates = self.keys.iter().filter(|key| key.accepts(algorithm));
                let only = candidates.next()?;
                candidates.next().is_none().then_some(only)
            }
        }
    }

    /// Whether a `kid` is known at all (for deciding to refresh).
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|key| key.kid.as_deref() == Some(kid))
    }

    /// Whether this exact key is still in the set (used by the verified-token cache).
    pub fn contains(&self, key: &Arc<VerificationKey>) -> bool {
        self.keys
            .iter()
            .any(|candidate| Arc::ptr_eq(candidate, key))
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when there is no usable key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// This set's keys, reusing `self`'s entry for every key of `newer` with the same kid
    /// and public key (so a verified-token cache entry holding it stays valid).
    pub fn merged_with(&self, newer: KeySet) -> KeySet {
        let keys = newer
            .keys
            .into_iter()
            .map(|key| {
                self.keys
                    .iter()
                    .find(|old| {
                        old.kid == key.kid
                            && old.kind == key.kind
                            && old.fingerprint == key.fingerprint
                    })
                    .cloned()
                    .unwrap_or(key)
            })
            .collect();
        KeySet { keys }
    }

    /// The kids, for reports.
    pub fn kids(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|key| key.kid.clone().unwrap_or_else(|| "-".to_owned()))
            .collect()
    }
}

fn text<'a>(jwk: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, String> {
    match jwk.get(field) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.as_str())),
        Some(_) => Err(format!("`{field}` is not a string")),
    }
}

fn required<'a>(jwk: &'a Map<String, Value>, field: &str) -> Result<&'a str, String> {
    text(jwk, field)?.ok_or_else(|| format!("`{field}` is missing"))
}

fn decode(jwk: &Map<String, Value>, field: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(required(jwk, field)?)
        .map_err(|_| format!("`{field}` is not base64url"))
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or_default()
}

fn rsa_bits(modulus: &[u8]) -> usize {
    match modulus.first() {
        Some(first) => modulus.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

fn parse_jwk(jwk: &Map<String, Value>) -> Result<VerificationKey, String> {
    if let Some(usage) = text(jwk, "use")?
        && usage != "sig"
    {
        return Err(format!("`use` is {usage:?}, not \"sig\""));
    }
    if let Some(operations) = jwk.get("key_ops") {
        let verifies = operations
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
        if !verifies {
            return Err("`key_ops` does not include \"verify\"".to_owned());
        }
    }
    let kid = text(jwk, "kid")?.map(str::to_owned);
    let jwk_alg =
        match text(jwk, "alg")? {
            None => None,
            Some(name) => Some(name.parse::<Algorithm>().map_err(|_| {
                format!("`alg` {name:?} is not a signature algorithm Warden verifies")
            })?),
        };
    let (kind, key) = match required(jwk, "kty")? {
        "RSA" => {
            let modulus = decode(jwk, "n")?;
            let exponent = decode(jwk, "e")?;
            let modulus = strip_leading_zeros(&modulus);
            let exponent = strip_leading_zeros(&exponent);
            let bits = rsa_bits(modulus);
            if bits < MIN_RSA_BITS {
                return Err(format!("RSA key of {bits} bits is under {MIN_RSA_BITS}"));
            }
            if exponent.is_empty() {
                return Err("RSA exponent is zero".to_owned());
            }
            (
                KeyKind::Rsa,
                DecodingKey::from_rsa_raw_components(modulus, exponent),
            )
        }
        "EC" => {
            let (kind, size) = match required(jwk, "crv")? {
                "P-256" => (KeyKind::EcP256, 32),
                "P-384" => (KeyKind::EcP384, 48),
                other => {
                    return Err(format!(
                        "EC curve {other:?} is not supported (P-256, P-384)"
                    ));
                }
            };
            let x = decode(jwk, "x")?;
            let y = decode(jwk, "y")?;
            if x.len() != size || y.len() != size {
                return Err("EC coordinates have the wrong length for the curve".to_owned());
            }
            let key = DecodingKey::from_ec_components(required(jwk, "x")?, required(jwk, "y")?)
                .map_err(|error| format!("EC key: {error}"))?;
            (kind, key)
        }
        "OKP" => {
            if required(jwk, "crv")? != "Ed25519" {
                return Err("OKP curve is not Ed25519".to_owned());
            }
            if decode(jwk, "x")?.len() != 32 {
                return Err("Ed25519 key is not 32 bytes".to_owned());
            }
            let key = DecodingKey::from_ed_components(required(jwk, "x")?)
                .map_err(|error| format!("Ed25519 key: {error}"))?;
            (KeyKind::Ed25519, key)
        }
        "oct" => return Err("symmetric keys are never taken from a JWKS".to_owned()),
        other => return Err(format!("key type {other:?} is not supported")),
    };
    if let Some(alg) = jwk_alg
        && !kind.accepts(alg)
    {
        return Err(format!("`alg` {alg:?} does not fit a {kind:?} key"));
    }
    let thumbprint = Some(thumbprint(jwk)?);
    let fingerprint = ["kty", "crv", "n", "e", "x", "y"]
        .iter()
        .map(|name| jwk.get(*name).and_then(Value::as_str).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("|");
    Ok(VerificationKey {
        kid,
        kind,
        jwk_alg,
        fingerprint,
        thumbprint,
        key,
    })
}

/// The RFC 7638 thumbprint of a public JWK: SHA-256 over the key type's required members in
/// lexicographic order, without whitespace, base64url without padding. The members were
/// checked as base64url (or a known curve name) before, so they need no JSON escaping.
fn thumbprint(jwk: &Map<String, Value>) -> Result<String, String> {
    let canonical = match required(jwk, "kty")? {
        "RSA" => format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            required(jwk, "e")?,
            required(jwk, "n")?
        ),
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            required(jwk, "crv")?,
            required(jwk, "x")?,
            required(jwk, "y")?
        ),
        "OKP" => format!(
            r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#,
            required(jwk, "crv")?,
            required(jwk, "x")?
        ),
        other => return Err(format!("no thumbprint for key type {other:?}")),
    };
    Ok(URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical.as_bytes())))
}

/// Parses one public JWK alone (a client's registered key): the same checks as in a JWKS, and
/// a private key (one with `d`, `p`, `q`, … members) is refused outright.
pub fn parse_public_jwk(document: &[u8]) -> Result<VerificationKey, JwkRefusal> {
    parse_public(document).map_err(JwkRefusal)
}

/// Why a client's public JWK is refused, in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JwkRefusal(pub String);

fn parse_public(document: &[u8]) -> Result<VerificationKey, String> {
    let jwk = strict_json::parse_object(document).map_err(|error| error.to_string())?;
    if ["d", "p", "q", "dp", "dq", "qi", "k"]
        .iter()
        .any(|member| jwk.contains_key(*member))
    {
        return Err("the JWK holds private key material; register the public key only".to_owned());
    }
    parse_jwk(&jwk)
}

impl VerificationKey {
    /// The key for `jsonwebtoken::decode` (client assertions are checked with it).
    pub fn decoding_key(&self) -> &DecodingKey {
        &self.key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of RFC 7638 §3.1.
    #[test]
    fn the_thumbprint_is_rfc_7638s() {
        let jwk = serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        let key = parse_jwk(jwk.as_object().unwrap()).unwrap();
        assert_eq!(
            key.thumbprint.as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
    }

    #[test]
    fn rsa_bit_length_ignores_leading_zero_bits() {
        let mut modulus = vec![0xC0; 256];
        assert_eq!(rsa_bits(&modulus), 2048);
        modulus[0] = 0x7F;
        assert_eq!(rsa_bits(&modulus), 2047);
        assert_eq!(rsa_bits(strip_leading_zeros(&[0, 0, 1])), 1);
    }

    #[test]
    fn weak_odd_and_symmetric_keys_are_refused_one_by_one() {
        let short_n = URL_SAFE_NO_PAD.encode([0xC1u8; 128]);
        let document = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "short", "n": short_n, "e": "AQAB"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "EC", "kid": "p521", "crv": "P-521", "x": "AA", "y": "AA"},
            {"kty": "OKP", "kid": "enc", "use": "enc", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([1u8; 32])},
            {"kty": "OKP", "kid": "ok", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([1u8; 32])},
            {"kty": "OKP", "kid": "wrong-alg", "alg": "RS256", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode([1u8; 32])}
        ]});
        let (set, refused) = KeySet::from_jwks(document.to_string().as_bytes()).unwrap();
        assert_eq!(set.kids(), ["ok"]);
        assert_eq!(refused.len(), 5, "{refused:#?}");
        assert!(
            refused[0].contains("1024 bits is under 2048"),
            "{}",
            refused[0]
        );
        assert!(refused[1].contains("symmetric"), "{}", refused[1]);
    }

    #[test]
    fn lookup_needs_a_matching_kid_and_algorithm() {
        let x = URL_SAFE_NO_PAD.encode([1u8; 32]);
        let document =
            serde_json::json!({"keys": [{"kty": "OKP", "kid": "a", "crv": "Ed25519", "x": x}]});
        let (set, _) = KeySet::from_jwks(document.to_string().as_bytes()).unwrap();
        assert!(set.find(Some("a"), Algorithm::EdDSA).is_some());
        assert!(set.find(Some("a"), Algorithm::RS256).is_none());
        assert!(set.find(Some("b"), Algorithm::EdDSA).is_none());
        assert!(set.find(None, Algorithm::EdDSA).is_some());
        assert!(set.has_kid("a"));
    }

    #[test]
    fn malformed_documents_are_errors() {
        assert!(KeySet::from_jwks(b"{}").is_err());
        assert!(KeySet::from_jwks(b"{\"keys\": [], \"keys\": []}").is_err());
        assert!(KeySet::from_jwks(b"nope").is_err());
    }
}
