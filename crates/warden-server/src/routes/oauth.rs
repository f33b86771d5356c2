//! Warden as an OAuth 2.0 authorization server for its service accounts:
//! `POST /oauth2/token` (client credentials, RFC 6749 §4.4; client authentication by HTTP Basic,
//! `client_secret_post` or `private_key_jwt` per RFC 7523), `POST /oauth2/revoke` (RFC 7009),
//! `GET /.well-known/jwks.json` and `GET /.well-known/openid-configuration`.
//!
//! SECURITY-SENSITIVE: Warden hands out access tokens here.
//!
//! Errors follow RFC 6749 §5.2 and say no more than its codes: a wrong secret, an unknown
//! client, a disabled or expired account and an expired credential are all `invalid_client`
//! (the decision log records which). Every call, issued or refused, is one decision-log record.

use std::collections::HashMap;
use std::time::Instant;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use warden_issuer::access_token::{self, AccessClaims};
use warden_issuer::assertion::{self, ASSERTION_TYPE, AssertionRules};
use warden_issuer::credentials::{self, ScopeRefusal};
use warden_issuer::delegation;
use warden_service::token_exchange::{ExchangeError, ExchangeRequest};
use warden_store::{
    AccountStatus, ClientId, CredentialSecret, Revocation, RevocationKind, ServiceAccount,
};

use crate::clock::unix_now;
use crate::decision_log::{self, Caller, Issuance};
use crate::issuer::TokenIssuer;
use crate::origin::Origin;
use crate::problem::ApiError;
use crate::rate_limit::CallerKey;
use crate::state::AppState;

/// An RFC 6749 §5.2 error answer.
struct OAuthError {
    status: StatusCode,
    code: &'static str,
    description: String,
    /// Logged only, never sent.
    why: String,
    basic_challenge: bool,
    /// `Retry-After` seconds of a 429.
    retry_after_seconds: Option<u64>,
}

impl OAuthError {
    fn new(code: &'static str, description: impl Into<String>) -> Self {
        let description = description.into();
        Self {
            status: if code == "invalid_client" {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::BAD_REQUEST
            },
            code,
            why: description.clone(),
            description,
            basic_challenge: false,
            retry_after_seconds: None,
        }
    }

    /// A 503: Warden cannot answer now (`temporarily_unavailable` or `server_error`); `why` is
    /// for the log only.
    fn unavailable(code: &'static str, description: &str, why: impl std::fmt::Display) -> Self {
        let mut error = Self::new(code, description);
        error.status = StatusCode::SERVICE_UNAVAILABLE;
        error.why = why.to_string();
        error
    }

    /// `invalid_client` with one public description whatever the cause; `why` is for the log.
    fn client(why: impl Into<String>) -> Self {
        let mut error = Self::new("invalid_client", "client authentication failed");
        error.why = why.into();
        error
    }

    /// Settles the client's authentication with the failed-authentication limit
    /// ([`crate::rate_limit::settle`]) before `result` is answered: `invalid_client` is a
    /// failure, an authenticated client a success; past the limit the answer is a 429.
    fn settled<T>(
        state: &AppState,
        caller: Option<&CallerKey>,
        result: Result<T, OAuthError>,
    ) -> Result<T, OAuthError> {
        let authenticated = match &result {
            Ok(_) => true,
            Err(error) if error.code == "invalid_client" => false,
            Err(_) => return result,
        };
        match crate::rate_limit::settle(&state.rate_limits, caller, authenticated) {
            Ok(()) => result,
            Err(ApiError::RateLimited {
                what,
                retry_after_seconds,
            }) => {
                let mut error =
                    Self::new("rate_limited", format!("too many {what}; try again later"));
                error.status = StatusCode::TOO_MANY_REQUESTS;
                error.retry_after_seconds = Some(retry_after_seconds);
                Err(error)
            }
            Err(other) => Err(Self::unavailable(
                "temporarily_unavailable",
                "try again",
                other,
            )),
        }
    }

    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            axum::Json(json!({"error": self.code, "error_description": self.description})),
        )
            .into_response();
        no_store(&mut response);
        let headers = response.headers_mut();
        if let Some(seconds) = self.retry_after_seconds {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.basic_challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"warden\""),
            );
        }
        response
    }
}

/// Token endpoint answers are never cached (RFC 6749 §5.1).
fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

fn issuer_of(state: &AppState) -> Result<&TokenIssuer, crate::problem::ApiError> {
    state.token_issuer.as_deref().ok_or_else(|| {
        crate::problem::ApiError::NotFound(
            "Warden issues no tokens here ([tokens] is not configured)".to_owned(),
        )
    })
}

/// The form parameters; a repeated parameter is refused (RFC 6749 §3.2).
fn form(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|value| {
            value
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err(OAuthError::new(
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let mut parameters = HashMap::new();
    for (name, value) in form_urlencoded::parse(body) {
        if parameters
            .insert(name.clone().into_owned(), value.into_owned())
            .is_some()
        {
            return Err(OAuthError::new(
                "invalid_request",
                format!("parameter `{name}` is repeated"),
            ));
        }
    }
    Ok(parameters)
}

/// How the client proved who it is.
enum ClientProof {
    Secret {
        client_id: String,
        secret: String,
        basic: bool,
    },
    Assertion {
        client_id: String,
        assertion: String,
    },
}

impl ClientProof {
    fn client_id(&self) -> &str {
        match self {
            ClientProof::Secret { client_id, .. } | ClientProof::Assertion { client_id, .. } => {
                client_id
            }
        }
    }
}

fn decode_component(text: &str) -> String {
    form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

/// Exactly one client authentication method.
fn client_proof(
    headers: &HeaderMap,
    parameters: &HashMap<String, String>,
) -> Result<ClientProof, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, rest) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(rest.trim())
        });
    let assertion_type = parameters.get("client_assertion_type");
    let methods = usize::from(basic.is_some())
        + usize::from(parameters.contains_key("client_secret"))
        + usize::from(assertion_type.is_some());
    if methods > 1 {
        return Err(OAuthError::new(
            "invalid_request",
            "use exactly one client authentication method",
        ));
    }
    if let Some(encoded) = basic {
        let decoded = STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| {
                let mut error = OAuthError::client("the Basic credentials are not base64 text");
                error.basic_challenge = true;
                error
            })?;
        let (client_id, secret) = decoded.split_once(':').unwrap_or((&decoded, ""));
        let client_id = decode_component(client_id);
        if parameters
            .get("client_id")
            .is_some_and(|named| *named != client_id)
        {
            return Err(OAuthError::new(
                "invalid_request",
                "client_id differs from the authenticated client",
            ));
        }
        return Ok(ClientProof::Secret {
            client_id,
            secret: decode_component(secret),
            basic: true,
        });
    }
    if let Some(kind) = assertion_type {
        if kind != ASSERTION_TYPE {
            return Err(OAuthError::new(
                "invalid_request",
                format!("client_assertion_type must be {ASSERTION_TYPE}"),
            ));
        }
        let assertion = parameters
            .get("client_assertion")
            .cloned()
            .ok_or_else(|| OAuthError::new("invalid_request", "client_assertion is missing"))?;
        let claimed = assertion::claimed_client(&assertion)
            .ok_or_else(|| OAuthError::client("the client assertion names no client"))?;
        if parameters
            .get("client_id")
            .is_some_and(|named| *named != claimed)
        {
            return Err(OAuthError::new(
                "invalid_request",
                "client_id differs from the assertion's subject",
            ));
        }
        return Ok(ClientProof::Assertion {
            client_id: claimed,
            assertion,
        });
    }
    match (parameters.get("client_id"), parameters.get("client_secret")) {
        (Some(client_id), Some(secret)) => Ok(ClientProof::Secret {
            client_id: client_id.clone(),
            secret: secret.clone(),
            basic: false,
        }),
        _ => Err(OAuthError::client("no client authentication")),
    }
}

/// Authenticates the client against the store (read fresh: a rotation or a disable on another
/// replica counts at once). Returns the account.
async fn authenticate(
    state: &AppState,
    issuer: &TokenIssuer,
    proof: &ClientProof,
    now: i64,
) -> Result<ServiceAccount, OAuthError> {
    let basic = matches!(proof, ClientProof::Secret { basic: true, .. });
    let refuse = |why: String| {
        let mut error = OAuthError::client(why);
        error.basic_challenge = basic;
        error
    };
    let store = state
        .store
        .as_ref()
        .ok_or_else(|| refuse("no store".to_owned()))?;
    let client_id =
        ClientId::parse(proof.client_id()).map_err(|_| refuse("no usable client id".to_owned()))?;
    let account = store
        .service_account(&client_id)
        .await
        .map_err(|error| {
            OAuthError::unavailable(
                "temporarily_unavailable",
                "the store cannot be read; try again",
                error.to_string(),
            )
        })?
        .ok_or_else(|| refuse(format!("unknown client `{}`", proof.client_id())))?;
    match proof {
        ClientProof::Secret { secret, .. } => {
            let digests = account
                .credentials
                .iter()
                .filter(|credential| credential.usable(now))
                .filter_map(|credential| match &credential.secret {
                    CredentialSecret::SecretDigest(digest) => Some(digest.as_str()),
                    CredentialSecret::PublicKey(_) => None,
                });
            if credentials::secret_matches(secret, digests).is_none() {
                return Err(refuse(
                    "the secret matches no active, unexpired credential".to_owned(),
                ));
            }
        }
        ClientProof::Assertion { assertion, .. } => {
            let keys: Vec<_> = account
                .credentials
                .iter()
                .filter(|credential| credential.usable(now))
                .filter_map(|credential| match &credential.secret {
                    CredentialSecret::PublicKey(jwk) => {
                        warden_token::keys::parse_public_jwk(jwk.as_bytes()).ok()
                    }
                    CredentialSecret::SecretDigest(_) => None,
                })
                .collect();
            let audiences =
                assertion::audiences(&issuer.settings.issuer, &issuer.settings.token_endpoint());
            let verified = assertion::verify(
                assertion,
                &keys,
                &AssertionRules {
                    client_id: &account.client_id,
                    audiences: &audiences,
                    leeway_seconds: issuer.settings.leeway_seconds,
                    max_lifetime_seconds: i64::try_from(
                        issuer.accounts_settings.max_assertion_lifetime_seconds,
                    )
                    .unwrap_or(300),
                    now,
                },
            )
            .map_err(|refusal| refuse(refusal.to_string()))?;
            let fresh = store
                .remember_assertion(
                    &client_id,
                    &verified.jti,
                    verified.expires_at + issuer.settings.leeway_seconds,
                    now,
                )
                .await
                .map_err(|error| {
                    OAuthError::unavailable(
                        "temporarily_unavailable",
                        "the store cannot be written; try again",
                        format!("the replay check failed: {error}"),
                    )
                })?;
            if !fresh {
                return Err(refuse(format!(
                    "client assertion jti `{}` was already used (replay)",
                    verified.jti
                )));
            }
        }
    }
    match account.status {
        AccountStatus::Active if now < account.expires_at => Ok(account),
        AccountStatus::Active => Err(refuse("the service account has expired".to_owned())),
        other => Err(refuse(format!("the service account is {}", other.as_str()))),
    }
}

fn caller(entry: &'static str, origin: Option<std::net::SocketAddr>) -> Caller {
    Caller {
        entry,
        label: None,
        origin,
        started: Instant::now(),
    }
}

/// `POST /oauth2/token`.
pub async fn token(
    State(state): State<AppState>,
    Origin(origin): Origin,
    caller_key: Option<Extension<CallerKey>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller_key = caller_key.map(|Extension(key)| key);
    let issuer = match issuer_of(&state) {
        Ok(issuer) => issuer,
        Err(error) => return error.into_response(),
    };
    let caller = caller("oauth2", origin);
    // Fail closed: no token leaves without its decision-log record (issue #18).
    if let Some(unavailable) = decision_log::refuses_writes(state.decision_log.as_ref()) {
        return log_unavailable(&unavailable).into_response();
    }
    let now = unix_now();
    let mut client = None;
    match issue(
        &state,
        issuer,
        caller_key.as_ref(),
        &headers,
        &body,
        now,
        &mut client,
    )
    .await
    {
        Ok(issued) => {
            let issuance = Issuance {
                operation: "token",
                client,
                allowed: true,
                reason: issued.reason,
                detail: issued.detail,
                token: Some(warden_audit::TokenRef {
                    issuer: Some(issuer.settings.issuer.clone()),
                    jti: Some(issued.jti),
                    subject: Some(issued.subject),
                }),
            };
            let answer = issued.answer;
            // The token is handed out only once its record is kept; when it cannot be, the
            // token (signed, never sent) is dropped here.
            match decision_log::record_issuance(state.decision_log.as_ref(), &caller, issuance)
                .await
            {
                Ok(()) => {
                    let mut response = axum::Json(answer).into_response();
                    no_store(&mut response);
                    response
                }
                Err(unavailable) => log_unavailable(&unavailable).into_response(),
            }
        }
        Err(error) => {
            tracing::info!(error = error.code, why = ?error.why, "token request refused");
            let issuance = Issuance {
                operation: "token",
                client,
                allowed: false,
                reason: error.code,
                detail: Some(error.why.clone()),
                token: None,
            };
            // A refusal stands without its record; a lost one is counted by the log.
            let _refusal_recorded =
                decision_log::record_issuance(state.decision_log.as_ref(), &caller, issuance).await;
            error.into_response()
        }
    }
}

/// The 503 for a decision log that cannot keep a record now.
fn log_unavailable(unavailable: &warden_audit::Unavailable) -> OAuthError {
    tracing::error!(error = %unavailable, "no token issued: the decision log cannot record it");
    OAuthError::unavailable(
        "temporarily_unavailable",
        "the decision log is unavailable; try again",
        unavailable,
    )
}

async fn issue(
    state: &AppState,
    issuer: &TokenIssuer,
    caller_key: Option<&CallerKey>,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
    client: &mut Option<(String, String)>,
) -> Result<Issued, OAuthError> {
    let parameters = form(headers, body)?;
    let proof = OAuthError::settled(state, caller_key, client_proof(headers, &parameters))?;
    *client = Some((String::new(), proof.client_id().to_owned()));
    let account = OAuthError::settled(
        state,
        caller_key,
        authenticate(state, issuer, &proof, now).await,
    )?;
    *client = Some((account.tenant.clone(), account.client_id.clone()));
    match parameters.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {}
        Some(delegation::GRANT_TYPE) => {
            return exchange(state, issuer, &account, &parameters, now).await;
        }
        Some(other) => {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                format!(
                    "grant_type `{other}` is not supported; use client_credentials or {}",
                    delegation::GRANT_TYPE
                ),
            ));
        }
        None => return Err(OAuthError::new("invalid_request", "grant_type is missing")),
    }
    let scopes = credentials::narrow(parameters.get("scope").map(String::as_str), &account.scopes)
        .map_err(|refusal| match refusal {
            ScopeRefusal::Malformed => {
                OAuthError::new("invalid_scope", "scope is not a list of scope names")
            }
            ScopeRefusal::NotGranted(scope) => OAuthError::new(
                "invalid_scope",
                format!("scope `{scope}` is not granted to this client"),
            ),
        })?;
    let key = issuer.signing_key().ok_or_else(|| {
        OAuthError::unavailable(
            "temporarily_unavailable",
            "no signing key is loaded yet",
            "no signing key is loaded yet",
        )
    })?;
    let ttl = account
        .token_ttl_seconds
        .clamp(1, issuer.settings.max_ttl_seconds);
    let expires_at = (now + ttl).min(account.expires_at);
    let jti = credentials::new_jti().map_err(|error| {
        OAuthError::unavailable(
            "server_error",
            "the token could not be made",
            error.to_string(),
        )
    })?;
    let scope = scopes.join(" ");
    let token = access_token::mint(
        &key,
        &AccessClaims {
            iss: &issuer.settings.issuer,
            sub: &account.client_id,
            aud: &issuer.settings.audience,
            exp: expires_at,
            iat: now,
            nbf: now,
            jti: &jti,
            client_id: &account.client_id,
            tenant: &account.tenant,
            scope: &scope,
        },
    )
    .map_err(|error| {
        OAuthError::unavailable(
            "server_error",
            "the token could not be signed",
            error.to_string(),
        )
    })?;
    issuer.note_use(&account.client_id, now);
    Ok(Issued {
        answer: json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": expires_at - now,
            "scope": scope,
        }),
        jti,
        subject: account.client_id,
        reason: "token_issued",
        detail: None,
    })
}

/// A token made, with what its decision-log record says.
struct Issued {
    answer: Value,
    jti: String,
    subject: String,
    reason: &'static str,
    detail: Option<String>,
}

/// A token exchange (RFC 8693) for the authenticated `account`: parse, call the service, render.
async fn exchange(
    state: &AppState,
    issuer: &TokenIssuer,
    account: &ServiceAccount,
    parameters: &HashMap<String, String>,
    now: i64,
) -> Result<Issued, OAuthError> {
    let named = |name: &str| parameters.get(name).map(String::as_str);
    let request = ExchangeRequest {
        subject_token: named("subject_token"),
        subject_token_type: named("subject_token_type"),
        requested_token_type: named("requested_token_type"),
        actor_token: parameters.contains_key("actor_token")
            || parameters.contains_key("actor_token_type"),
        scope: named("scope"),
        audience: named("audience"),
        resource: parameters.contains_key("resource"),
    };
    let exchanged = state
        .service
        .exchange(issuer, account, &request, now)
        .await
        .map_err(|error| match error {
            ExchangeError::Unavailable(why) => {
                OAuthError::unavailable("temporarily_unavailable", "try again", why)
            }
            refused => OAuthError::new(refused.code(), refused.to_string()),
        })?;
    Ok(Issued {
        answer: json!({
            "access_token": exchanged.access_token,
            "issued_token_type": delegation::ACCESS_TOKEN_TYPE,
            "token_type": "Bearer",
            "expires_in": exchanged.expires_in,
            "scope": exchanged.scope,
        }),
        jti: exchanged.jti,
        subject: exchanged.subject,
        reason: "token_exchanged",
        detail: Some(format!(
            "for {} with {} acting (RFC 8693)",
            exchanged.principal, account.client_id
        )),
    })
}

/// `POST /oauth2/revoke` (RFC 7009): the client revokes one of its own access tokens. The
/// answer is 200 whether or not the token was valid (§2.2), once the client authenticated.
pub async fn revoke(
    State(state): State<AppState>,
    Origin(origin): Origin,
    caller_key: Option<Extension<CallerKey>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller_key = caller_key.map(|Extension(key)| key);
    let issuer = match issuer_of(&state) {
        Ok(issuer) => issuer,
        Err(error) => return error.into_response(),
    };
    let caller = caller("oauth2", origin);
    let now = unix_now();
    let mut issuance = Issuance {
        operation: "revoke",
        client: None,
        allowed: false,
        reason: "invalid_request",
        detail: None,
        token: None,
    };
    let response = match revoke_inner(
        &state,
        issuer,
        caller_key.as_ref(),
        &headers,
        &body,
        now,
        &mut issuance,
    )
    .await
    {
        Ok(()) => {
            let mut response = StatusCode::OK.into_response();
            no_store(&mut response);
            response
        }
        Err(error) => {
            issuance.reason = error.code;
            issuance.detail = Some(error.why.clone());
            error.into_response()
        }
    };
    // A revocation only takes access away: it stands even when its record cannot be kept (the
    // decision log counts and logs the loss; the store's revocation row is the durable trace).
    let _revocation_recorded =
        decision_log::record_issuance(state.decision_log.as_ref(), &caller, issuance).await;
    response
}

async fn revoke_inner(
    state: &AppState,
    issuer: &TokenIssuer,
    caller_key: Option<&CallerKey>,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
    issuance: &mut Issuance<'_>,
) -> Result<(), OAuthError> {
    let parameters = form(headers, body)?;
    let proof = OAuthError::settled(state, caller_key, client_proof(headers, &parameters))?;
    issuance.client = Some((String::new(), proof.client_id().to_owned()));
    let account = OAuthError::settled(
        state,
        caller_key,
        authenticate(state, issuer, &proof, now).await,
    )?;
    issuance.client = Some((account.tenant.clone(), account.client_id.clone()));
    let token = parameters
        .get("token")
        .ok_or_else(|| OAuthError::new("invalid_request", "token is missing"))?;
    // Only a token that verifies as Warden's, of this very client, is revoked; anything else is
    // answered 200 and changes nothing (RFC 7009 §2.2).
    let verified = match state.verifier.verify(token, now).await {
        Ok(verified) if issuer.issued(&verified.issuer) => verified,
        Ok(_) | Err(_) => {
            issuance.allowed = true;
            issuance.reason = "token_not_revocable";
            issuance.detail = Some("not a valid token issued by Warden".to_owned());
            return Ok(());
        }
    };
    let owner = verified
        .claims
        .get("client_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (Some(jti), true) = (verified.jti.clone(), owner == account.client_id) else {
        issuance.allowed = true;
        issuance.reason = "token_not_revocable";
        issuance.detail = Some("the token belongs to another client".to_owned());
        return Ok(());
    };
    let store = state
        .store
        .as_ref()
        .ok_or_else(|| OAuthError::client("no store"))?;
    let stored = store
        .revoke(&Revocation {
            id: 0,
            version: 0,
            kind: RevocationKind::Token,
            issuer: issuer.settings.issuer.clone(),
            value: jti.to_string(),
            revoked_at: now,
            expires_at: verified.expires_at,
            reason: "revoked by its client (RFC 7009)".to_owned(),
            actor: format!("client {}", account.client_id),
        })
        .await
        .map_err(|error| {
            OAuthError::unavailable(
                "temporarily_unavailable",
                "the revocation could not be stored",
                error.to_string(),
            )
        })?;
    state.revocations.apply_local(&stored);
    issuance.allowed = true;
    issuance.reason = "token_revoked";
    issuance.token = Some(warden_audit::TokenRef {
        issuer: Some(issuer.settings.issuer.clone()),
        jti: Some(jti.to_string()),
        subject: Some(account.client_id.clone()),
    });
    Ok(())
}

/// `GET /.well-known/jwks.json`.
pub async fn jwks(State(state): State<AppState>) -> Response {
    match issuer_of(&state) {
        Ok(issuer) => {
            let mut response = axum::Json(issuer.jwks().as_ref().clone()).into_response();
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            );
            response
        }
        Err(error) => error.into_response(),
    }
}

/// `GET /.well-known/openid-configuration`.
pub async fn openid_configuration(State(state): State<AppState>) -> Response {
    match issuer_of(&state) {
        Ok(issuer) => {
            let base = &issuer.settings.issuer;
            axum::Json(json!({
                "issuer": base,
                "jwks_uri": format!("{base}/.well-known/jwks.json"),
                "token_endpoint": issuer.settings.token_endpoint(),
                "revocation_endpoint": format!("{base}/oauth2/revoke"),
                "grant_types_supported": ["client_credentials", delegation::GRANT_TYPE],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
                "token_endpoint_auth_signing_alg_values_supported": ["EdDSA", "ES256", "ES384", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"],
                "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
                "access_token_signing_alg_values_supported": [issuer.settings.algorithm],
            }))
            .into_response()
        }
        Err(error) => error.into_response(),
    }
}
