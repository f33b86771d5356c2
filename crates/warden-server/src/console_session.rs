//! Console sessions (issue #24). SECURITY-SENSITIVE.
//!
//! The console logs in with an admin credential once (`POST /console/session`); Warden answers
//! with a session secret in a cookie (`warden_console`: `HttpOnly`, `SameSite=Strict`,
//! `Path=/`, `Secure` behind TLS) and a CSRF token in the body. The store keeps only the
//! secret's SHA-256 digest, with the credential id and an expiry; the credential itself is
//! never kept by the browser. Every admin call made with the cookie must also carry
//! `X-CSRF-Token` (the SHA-256 of the secret under a label, so it needs no storage and a page
//! of another origin cannot know it), and, when the browser sends `Origin`, come from the
//! origin it is addressed to. A session is only as good as its credential: a revoked, expired
//! or rotated credential ends its sessions at the next call. Failed session lookups count
//! against the caller's failure budget like wrong credentials.

use axum::http::HeaderMap;
use axum::http::header;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::admin_auth::{Admin, usable_credentials};
use crate::problem::ApiError;
use crate::rate_limit::{CallerKey, settle};
use crate::state::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "warden_console";
/// The header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts (at most: the credential's own expiry ends it sooner).
pub const SESSION_SECONDS: i64 = 8 * 3600;

/// The session secret the request's `Cookie` header carries, if it is well formed.
/// Two cookies of that name (one planted by another application on the same host, say) are
/// none: which one the browser meant cannot be told.
pub fn session_secret(headers: &HeaderMap) -> Option<String> {
    let mut named = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == COOKIE);
    let first = named.next();
    if named.next().is_some() {
        return None;
    }
    first
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| {
            (16..=128).contains(&value.len())
                && value
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        })
}

/// The hex SHA-256 digest of a session secret (what the store keeps).
pub fn digest_of(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The CSRF token of a session.
pub fn csrf_of(secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"warden console csrf\n");
    hasher.update(secret.as_bytes());
    hex::encode(hasher.finalize())
}

/// 403 when the request says where it comes from (`Origin`) and that is not the origin it
/// was sent to.
pub fn check_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .unwrap_or_default();
        let same = origin.to_str().ok().is_some_and(|origin| {
            origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                .is_some_and(|origin_host| !host.is_empty() && origin_host == host)
        });
        if !same {
            return Err(ApiError::Forbidden(
                "a console call must come from the console's own origin".to_owned(),
            ));
        }
    }
    Ok(())
}

/// 403 unless the request names its session's CSRF token and passes [`check_origin`].
pub fn check_csrf(headers: &HeaderMap, secret: &str) -> Result<(), ApiError> {
    check_origin(headers)?;
    let given = headers
        .get(CSRF_HEADER)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if bool::from(given.as_bytes().ct_eq(csrf_of(secret).as_bytes())) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "the console session's CSRF token (X-CSRF-Token) is missing or wrong".to_owned(),
        ))
    }
}

/// The admin of a live session: the session found by its digest, its credential still usable.
pub async fn session_admin(
    state: &AppState,
    caller_key: Option<&CallerKey>,
    secret: &str,
) -> Result<(Admin, i64), ApiError> {
    let Some(store) = &state.store else {
        return Err(ApiError::Unavailable(
            "the console needs [storage]".to_owned(),
        ));
    };
    let now = crate::clock::unix_now();
    let session = tokio::time::timeout(
        crate::admin_auth::STORE_READ_BOUND,
        store.console_session(&digest_of(secret), now),
    )
    .await
    .map_err(|_| {
        ApiError::Unavailable(
            "the store did not answer in time: the session cannot be checked".to_owned(),
        )
    })?
    .map_err(|error| ApiError::Unavailable(format!("the store cannot be read: {error}")))?;
    let credentials = usable_credentials(state).await?;
    // The credential must still be usable and unchanged: a rotation (a new digest under the
    // same id) ends the sessions opened with the old secret.
    let found = session.and_then(|(credential_id, credential_digest, expires_at)| {
        credentials
            .into_iter()
            .find(|credential| {
                credential.id == credential_id
                    && bool::from(
                        credential
                            .digest_hex
                            .as_bytes()
                            .ct_eq(credential_digest.as_bytes()),
                    )
            })
            .map(|credential| (credential, expires_at))
    });
    settle(&state.rate_limits, caller_key, found.is_some())?;
    let (credential, expires_at) = found.ok_or(ApiError::AdminUnauthenticated)?;
    Ok((
        Admin {
            credential_id: credential.id,
            tenant_scope: credential.tenant_scope,
            via_session: true,
            operator: None,
        },
        expires_at,
    ))
}

/// The admin of an admin API call made with a console session: CSRF checked first.
pub async fn admin_of_request(
    state: &AppState,
    caller_key: Option<&CallerKey>,
    headers: &HeaderMap,
    secret: &str,
) -> Result<Admin, ApiError> {
    check_csrf(headers, secret)?;
    session_admin(state, caller_key, secret)
        .await
        .map(|(admin, _)| admin)
}
