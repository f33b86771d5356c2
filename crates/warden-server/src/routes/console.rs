//! The web console (issue #24): three static files compiled into the binary (no build step),
//! served under a strict Content-Security-Policy, and its session endpoints. The console
//! itself calls the admin API with its session (see [`crate::console_session`]).

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::console_session::{
    COOKIE, SESSION_SECONDS, check_csrf, check_origin, csrf_of, digest_of, session_admin,
    session_secret,
};
use crate::json::Json;
use crate::problem::ApiError;
use crate::rate_limit::CallerKey;
use crate::state::AppState;

const INDEX_HTML: &str = include_str!("../../console/index.html");
const CONSOLE_JS: &str = include_str!("../../console/console.js");
const CONSOLE_CSS: &str = include_str!("../../console/console.css");

/// The console's policy: its own script and style only, nothing inline, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /console`.
pub async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

/// `GET /console/assets/console.js`.
pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", CONSOLE_JS)
}

/// `GET /console/assets/console.css`.
pub async fn style() -> Response {
    asset("text/css; charset=utf-8", CONSOLE_CSS)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    credential: String,
}

#[derive(Debug, Serialize)]
struct AdminJson {
    credential_id: String,
    tenant_scope: Option<String>,
}

#[derive(Debug, Serialize)]
struct SessionAnswer {
    csrf_token: String,
    admin: AdminJson,
    expires_at: i64,
}

fn session_answer(admin: crate::admin_auth::Admin, secret: &str, expires_at: i64) -> Response {
    let mut response = axum::Json(SessionAnswer {
        csrf_token: csrf_of(secret),
        admin: AdminJson {
            credential_id: admin.credential_id,
            tenant_scope: admin.tenant_scope,
        },
        expires_at,
    })
    .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn cookie(state: &AppState, value: &str, max_age: i64) -> Result<HeaderValue, ApiError> {
    let secure = if state.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"
    ))
    .map_err(|error| ApiError::Internal(error.to_string()))
}

/// `POST /console/session`: logs in with an admin credential (`{"credential": "…"}`, JSON
/// only); the session goes in an HttpOnly cookie, the CSRF token in the answer.
pub async fn login(
    State(state): State<AppState>,
    caller_key: Option<Extension<CallerKey>>,
    headers: HeaderMap,
    Json(request): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    let store = crate::routes::admin::store(&state)?;
    // A login from another origin is refused even before the credential is looked at.
    check_origin(&headers)?;
    let caller_key = caller_key.map(|Extension(key)| key);
    let admin = crate::admin_auth::authenticate_secret(
        &state,
        caller_key.as_ref(),
        request.credential.trim(),
    )
    .await?;
    let (secret, digest) = warden_issuer::credentials::new_console_session()
        .map_err(|error| ApiError::Internal(error.to_string()))?;
    let now = crate::clock::unix_now();
    let expires_at = now + SESSION_SECONDS;
    let credential_digest = digest_of(request.credential.trim());
    store
        .open_console_session(
            &digest,
            (&admin.credential_id, &credential_digest),
            now,
            expires_at,
        )
        .await
        .map_err(|error| ApiError::Unavailable(format!("the store failed: {error}")))?;
    tracing::info!(credential = %admin.credential_id, "console session opened");
    let mut response = session_answer(admin, &secret, expires_at);
    response.headers_mut().insert(
        header::SET_COOKIE,
        cookie(&state, &secret, SESSION_SECONDS)?,
    );
    Ok(response)
}

/// `GET /console/session`: the session the cookie names (401 without one), with its CSRF
/// token, so a reloaded page resumes.
pub async fn resume(
    State(state): State<AppState>,
    caller_key: Option<Extension<CallerKey>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_origin(&headers)?;
    let secret = session_secret(&headers).ok_or(ApiError::AdminUnauthenticated)?;
    let caller_key = caller_key.map(|Extension(key)| key);
    let (admin, expires_at) = session_admin(&state, caller_key.as_ref(), &secret).await?;
    Ok(session_answer(admin, &secret, expires_at))
}

/// `DELETE /console/session`: logs out (CSRF token required); the cookie is cleared.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let store = crate::routes::admin::store(&state)?;
    let secret = session_secret(&headers).ok_or(ApiError::AdminUnauthenticated)?;
    check_csrf(&headers, &secret)?;
    store
        .close_console_session(&digest_of(&secret))
        .await
        .map_err(|error| ApiError::Unavailable(format!("the store failed: {error}")))?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(&state, "", 0)?);
    Ok(response)
}
