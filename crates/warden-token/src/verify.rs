//! Verifying a bearer token completely, in a fixed order, before any claim is trusted.
//!
//! SECURITY-SENSITIVE. The order, each failure a stable [`TokenReason`]:
//! size, structure (three parts; a JWE's five are refused), base64url, header JSON, payload
//! JSON (both refusing duplicate keys), the issuer (the unverified `iss` only selects which
//! issuer's keys and rules apply), `alg` in that issuer's allow-list (`none` never), `crit`,
//! the key by `kid`, the signature, then the claims: `aud`, `exp`, `nbf`, `iat` not in the
//! future, the required claims, the header `typ`, and finally the claim mapping to a principal.
//! Header fields that name keys (`jku`, `x5u`, `jwk`, `x5c`) are never used: keys come only from
//! the issuer's configuration. Time is an argument (`now`, Unix seconds).
//! Tests: `tests/tokens/attacks.rs`, `tests/tokens/properties.rs`.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use crate::cache::{MAX_CACHE_SECONDS, TokenCache, hash_token};
use crate::key_source::{IssuerKeys, KeySourceError};
use crate::keys::VerificationKey;
use crate::principal::{Principal, map_claims};
use crate::reason::{TokenError, TokenReason};
use crate::settings::{IssuerConfig, normalize_type};
use crate::strict_json;

/// A token that passed every check. Only [`Verifier`] builds one.
#[derive(Debug)]
pub struct VerifiedToken {
    /// The issuer (`iss`).
    pub issuer: String,
    /// The algorithm it was signed with.
    pub algorithm: Algorithm,
    /// The `kid` of the key that verified it, as its key set names it (so also for a token
    /// whose header names none); `None` for a shared secret, whose tokens can write any `kid`.
    pub kid: Option<String>,
    /// The RFC 7638 thumbprint of the key that verified it (`None` for a shared secret), so a
    /// key revocation matches whether or not the token or the key names a `kid`.
    pub key_thumbprint: Option<String>,
    /// `jti`, if present.
    pub jti: Option<Jti>,
    /// `sid`, if present.
    pub sid: Option<String>,
    /// `iat`, if present.
    pub issued_at: Option<i64>,
    /// `exp`, if present.
    pub expires_at: Option<i64>,
    /// Every claim, verified.
    pub claims: Map<String, Value>,
    /// The principal the claims map to.
    pub principal: Principal,
    key: Arc<VerificationKey>,
}

/// A verified token's `jti`: built only from a verified token's claims, so a revocation or a
/// record can never take another string for it by mistake.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Jti(String);

impl Jti {
    /// The id as the token states it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Jti {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One configured issuer and its keys.
#[derive(Debug)]
pub struct Issuer {
    /// The checked configuration.
    pub config: IssuerConfig,
    /// Its keys.
    pub keys: Arc<IssuerKeys>,
}

/// Verifies tokens of the configured issuers, with a verified-token cache.
pub struct Verifier {
    issuers: HashMap<String, Arc<Issuer>>,
    max_token_bytes: usize,
    cache: TokenCache<VerifiedToken>,
}

/// Default number of cached verified tokens.
pub const DEFAULT_CACHE_CAPACITY: usize = 100_000;

impl Verifier {
    /// A verifier for these issuers. Keys are not loaded yet: call [`Self::load_keys`].
    pub fn new(configs: Vec<IssuerConfig>, cache_capacity: usize) -> Result<Self, KeySourceError> {
        let mut issuers = HashMap::with_capacity(configs.len());
        let mut max_token_bytes = 0;
        for config in configs {
            max_token_bytes = max_token_bytes.max(config.max_token_bytes);
            let keys = IssuerKeys::new(&config)?;
            issuers.insert(config.issuer.clone(), Arc::new(Issuer { config, keys }));
        }
        Ok(Self {
            issuers,
            max_token_bytes,
            cache: TokenCache::new(cache_capacity),
        })
    }

    /// Loads every issuer's keys once; returns the failures (those issuers' tokens are refused
    /// with `token_key_unknown` until a later load succeeds).
    pub async fn load_keys(&self) -> Vec<KeySourceError> {
        let mut failures = Vec::new();
        for issuer in self.issuers.values() {
            if let Err(error) = issuer.keys.load().await {
                failures.push(error);
            }
        }
        failures
    }

    /// Starts background refreshes of fetched key sets.
    pub fn spawn_refreshers(&self) -> Vec<tokio::task::JoinHandle<()>> {
        self.issuers
            .values()
            .filter_map(|issuer| issuer.keys.spawn_refresher())
            .collect()
    }

    /// The configured issuers.
    pub fn issuers(&self) -> impl Iterator<Item = &Arc<Issuer>> {
        self.issuers.values()
    }

    /// One configured issuer by its exact `iss`.
    pub fn issuer(&self, issuer: &str) -> Option<&Arc<Issuer>> {
        self.issuers.get(issuer)
    }

    /// The verified-token cache (for metrics and tests).
    pub fn cache(&self) -> &TokenCache<VerifiedToken> {
        &self.cache
    }

    /// Verifies a token, answering from the cache when it verified this exact token before.
    pub async fn verify(&self, token: &str, now: i64) -> Result<Arc<VerifiedToken>, TokenError> {
        if token.is_empty() {
            return Err(TokenReason::Missing.into());
        }
        if token.len() > self.max_token_bytes {
            return Err(TokenError::with(
                TokenReason::TooLarge,
                format!("{} bytes", token.len()),
            ));
        }
        let hash = hash_token(token);
        if let Some(cached) = self.cache.get(&hash, now) {
            let key_still_current = self
                .issuers
                .get(&cached.issuer)
                .is_some_and(|issuer| issuer.keys.still_has(&cached.key));
            if key_still_current {
                return Ok(cached);
            }
            self.cache.remove(&hash);
        }
        let verified = Arc::new(self.verify_uncached(token, now).await?);
        let leeway = self
            .issuers
            .get(&verified.issuer)
            .map_or(0, |issuer| issuer.config.leeway_seconds);
        let valid_until = verified
            .expires_at
            .map_or(now + 60, |exp| exp.saturating_add(leeway))
            .min(now + MAX_CACHE_SECONDS);
        self.cache
            .insert(hash, Arc::clone(&verified), valid_until, now);
        Ok(verified)
    }

    /// Verifies a token without the cache: every check of `docs/tokens.md`, in its order, one
    /// function each (named as the table names the check).
    pub async fn verify_uncached(
        &self,
        token: &str,
        now: i64,
    ) -> Result<VerifiedToken, TokenError> {
        check_presented_and_size(token, self.max_token_bytes)?; // 1, 2
        let parts = split_parts(token)?; // 3
        let header = decode_json(parts.header, "header")?; // 4, 5
        let claims = decode_json(parts.payload, "payload")?;
        let issuer = self.select_issuer(&claims)?; // 6
        let config = &issuer.config;
        check_presented_and_size(token, config.max_token_bytes)?;
        let algorithm = check_algorithm_allowed(&header, config)?; // 7
        check_no_crit(&header)?; // 8
        let kid = header_kid(&header)?;
        let key = find_key(issuer, kid, algorithm).await?; // 9
        check_signature(token, &parts, &key, algorithm)?; // 10
        // From here on the claims are verified; they are checked, then trusted.
        check_audience(&claims, &config.audiences)?; // 11
        let expires_at = check_expiry(&claims, now, config.leeway_seconds)?; // 12
        check_not_before(&claims, now, config.leeway_seconds)?; // 13
        let issued_at = check_issued_at(&claims, now, config.leeway_seconds)?; // 14
        check_required_claims(&claims, &config.required_claims)?; // 15
        check_type(&header, config.token_type.as_deref())?; // 16
        let principal = map_claims(&claims, &config.claims)?; // 17
        let text_claim = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        Ok(VerifiedToken {
            issuer: config.issuer.clone(),
            algorithm,
            // The verifying key's own `kid`: a JWKS key is found by the header's `kid` (equal
            // to it), and a shared secret has none, whatever `kid` its tokens write.
            kid: key.kid.clone(),
            key_thumbprint: key.thumbprint.clone(),
            jti: text_claim("jti").map(Jti),
            sid: text_claim("sid"),
            issued_at,
            expires_at,
            principal,
            claims,
            key,
        })
    }

    /// Check 6: the unverified `iss` names a configured issuer. It only selects whose keys and
    /// rules apply; nothing else of the payload is read before the signature.
    fn select_issuer(&self, claims: &Map<String, Value>) -> Result<&Arc<Issuer>, TokenError> {
        match claims.get("iss") {
            Some(Value::String(iss)) => self.issuers.get(iss).ok_or_else(|| {
                TokenError::with(
                    TokenReason::IssuerUnknown,
                    "no issuer with this `iss` is configured",
                )
            }),
            _ => Err(TokenError::with(
                TokenReason::IssuerUnknown,
                "no `iss` claim",
            )),
        }
    }
}

/// The three base64url segments of a compact JWS.
struct Parts<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
}

/// Checks 1 and 2: a token was presented, within the size limit.
fn check_presented_and_size(token: &str, max_bytes: usize) -> Result<(), TokenError> {
    if token.is_empty() {
        return Err(TokenReason::Missing.into());
    }
    if token.len() > max_bytes {
        return Err(TokenError::with(
            TokenReason::TooLarge,
            format!("{} bytes", token.len()),
        ));
    }
    Ok(())
}

/// Check 3: three dot-separated parts (a JWE's five are refused).
fn split_parts(token: &str) -> Result<Parts<'_>, TokenError> {
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(header), Some(payload), Some(signature), None) => Ok(Parts {
            header,
            payload,
            signature,
        }),
        _ => {
            let n_parts = token.split('.').count();
            let detail = if n_parts == 5 {
                "5 parts: an encrypted token (JWE) is not accepted".to_owned()
            } else {
                format!("{n_parts} parts, expected 3")
            };
            Err(TokenError::with(TokenReason::Malformed, detail))
        }
    }
}

/// Check 7: `alg` is in the issuer's allow-list; `none`, in any casing, never is.
fn check_algorithm_allowed(
    header: &Map<String, Value>,
    config: &IssuerConfig,
) -> Result<Algorithm, TokenError> {
    match header.get("alg") {
        Some(Value::String(name)) => {
            if name.eq_ignore_ascii_case("none") {
                return Err(TokenError::with(
                    TokenReason::AlgNotAllowed,
                    "`none` is never allowed",
                ));
            }
            Algorithm::from_str(name)
                .ok()
                .filter(|algorithm| config.algorithms.contains(algorithm))
                .ok_or_else(|| {
                    TokenError::with(
                        TokenReason::AlgNotAllowed,
                        format!("`{}` is not allowed for this issuer", printable(name)),
                    )
                })
        }
        _ => Err(TokenError::with(
            TokenReason::Malformed,
            "the header has no `alg` string",
        )),
    }
}

/// Check 8: no `crit` header (Warden understands no extensions).
fn check_no_crit(header: &Map<String, Value>) -> Result<(), TokenError> {
    if header.contains_key("crit") {
        return Err(TokenError::with(
            TokenReason::CritUnsupported,
            "no `crit` extension is supported",
        ));
    }
    Ok(())
}

/// The header's `kid`, when it names one (a string).
fn header_kid(header: &Map<String, Value>) -> Result<Option<&str>, TokenError> {
    match header.get("kid") {
        None => Ok(None),
        Some(Value::String(kid)) => Ok(Some(kid.as_str())),
        Some(_) => Err(TokenError::with(
            TokenReason::Malformed,
            "`kid` is not a string",
        )),
    }
}

/// Check 9: a key of the issuer fits `kid` and `alg` (after at most one rate-limited refresh).
async fn find_key(
    issuer: &Issuer,
    kid: Option<&str>,
    algorithm: Algorithm,
) -> Result<Arc<VerificationKey>, TokenError> {
    issuer.keys.key_for(kid, algorithm).await.ok_or_else(|| {
        TokenError::with(
            TokenReason::KeyUnknown,
            format!(
                "no key for kid {} and {algorithm:?}",
                kid.map_or_else(|| "(none)".to_owned(), printable)
            ),
        )
    })
}

/// Check 10: the signature verifies (an empty one never does).
fn check_signature(
    token: &str,
    parts: &Parts<'_>,
    key: &VerificationKey,
    algorithm: Algorithm,
) -> Result<(), TokenError> {
    if parts.signature.is_empty() {
        return Err(TokenError::with(
            TokenReason::SignatureInvalid,
            "no signature",
        ));
    }
    let signing_input = token
        .get(..parts.header.len() + 1 + parts.payload.len())
        .ok_or_else(|| TokenError::new(TokenReason::Malformed))?;
    let signature_ok = jsonwebtoken::crypto::verify(
        parts.signature,
        signing_input.as_bytes(),
        &key.key,
        algorithm,
    )
    .unwrap_or(false);
    if signature_ok {
        Ok(())
    } else {
        Err(TokenReason::SignatureInvalid.into())
    }
}

/// Check 12: `exp` is not past (plus leeway). Returns `exp`.
fn check_expiry(
    claims: &Map<String, Value>,
    now: i64,
    leeway: i64,
) -> Result<Option<i64>, TokenError> {
    let expires_at = numeric_date(claims, "exp")?;
    if let Some(exp) = expires_at
        && now > exp.saturating_add(leeway)
    {
        return Err(TokenReason::Expired.into());
    }
    Ok(expires_at)
}

/// Check 13: `nbf` is not in the future (minus leeway).
fn check_not_before(claims: &Map<String, Value>, now: i64, leeway: i64) -> Result<(), TokenError> {
    if let Some(nbf) = numeric_date(claims, "nbf")?
        && now.saturating_add(leeway) < nbf
    {
        return Err(TokenError::with(TokenReason::NotYetValid, "nbf"));
    }
    Ok(())
}

/// Check 14: `iat` is not in the future (minus leeway). Returns `iat`.
fn check_issued_at(
    claims: &Map<String, Value>,
    now: i64,
    leeway: i64,
) -> Result<Option<i64>, TokenError> {
    let issued_at = numeric_date(claims, "iat")?;
    if let Some(iat) = issued_at
        && iat > now.saturating_add(leeway)
    {
        return Err(TokenError::with(
            TokenReason::NotYetValid,
            "iat is in the future",
        ));
    }
    Ok(issued_at)
}

/// Check 15: every required claim is present (and not null).
fn check_required_claims(
    claims: &Map<String, Value>,
    required: &[String],
) -> Result<(), TokenError> {
    match required
        .iter()
        .find(|name| claims.get(name.as_str()).is_none_or(Value::is_null))
    {
        Some(missing) => Err(TokenError::with(TokenReason::ClaimMissing, missing.clone())),
        None => Ok(()),
    }
}

/// Check 16: the header `typ` is the issuer's `token_type`, when one is set.
fn check_type(header: &Map<String, Value>, expected: Option<&str>) -> Result<(), TokenError> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let typ = header
        .get("typ")
        .and_then(Value::as_str)
        .map(normalize_type);
    if typ.as_deref() == Some(expected) {
        Ok(())
    } else {
        Err(TokenError::with(
            TokenReason::TypeInvalid,
            format!("expected `{expected}`"),
        ))
    }
}

/// Checks 4 and 5: a segment is canonical base64url of a JSON object without duplicate keys.
fn decode_json(segment: &str, what: &str) -> Result<Map<String, Value>, TokenError> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).map_err(|_| {
        TokenError::with(
            TokenReason::Malformed,
            format!("the {what} is not base64url"),
        )
    })?;
    strict_json::parse_object(&bytes)
        .map_err(|error| TokenError::with(TokenReason::Malformed, format!("the {what}: {error}")))
}

/// Check 11: `aud` (a string or an array of strings) contains one of the issuer's audiences.
fn check_audience(claims: &Map<String, Value>, audiences: &[String]) -> Result<(), TokenError> {
    let matches = |aud: &str| audiences.iter().any(|ours| ours == aud);
    let ok = match claims.get("aud") {
        Some(Value::String(aud)) => matches(aud),
        Some(Value::Array(items)) => {
            if items.iter().any(|item| !item.is_string()) {
                return Err(TokenError::with(
                    TokenReason::ClaimInvalid,
                    "`aud` holds a non-string",
                ));
            }
            items.iter().filter_map(Value::as_str).any(matches)
        }
        None | Some(Value::Null) => false,
        Some(_) => {
            return Err(TokenError::with(
                TokenReason::ClaimInvalid,
                "`aud` is not a string or an array",
            ));
        }
    };
    if ok {
        Ok(())
    } else {
        Err(TokenReason::AudienceMismatch.into())
    }
}

/// A NumericDate claim (RFC 7519 §2): seconds, possibly fractional; fractions are dropped.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, TokenError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => {
            if let Some(seconds) = number.as_i64() {
                Ok(Some(seconds))
            } else if let Some(seconds) =
                number.as_f64().filter(|s| s.is_finite() && s.abs() < 1e15)
            {
                // Bounded above, so the cast cannot saturate surprisingly.
                #[allow(
                    clippy::cast_possible_truncation,
                    reason = "bounded to |x| < 1e15 just above"
                )]
                Ok(Some(seconds.floor() as i64))
            } else {
                Err(TokenError::with(
                    TokenReason::ClaimInvalid,
                    format!("`{name}` is out of range"),
                ))
            }
        }
        Some(_) => Err(TokenError::with(
            TokenReason::ClaimInvalid,
            format!("`{name}` is not a number"),
        )),
    }
}

/// A value from an untrusted header, cut short and stripped of control characters for logs.
fn printable(value: &str) -> String {
    value.chars().filter(|c| !c.is_control()).take(64).collect()
}
