//! The one API error type: every failure leaves as an RFC 9457 problem document.
//!
//! Status codes are decided here and nowhere else. A 5xx body carries no internals (the log
//! does). A bad bearer token is a 401 with `WWW-Authenticate: Bearer error="invalid_token"` and
//! the reason code; nothing a client sends is ever a 500.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use warden_token::TokenError;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request body or parameters are malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The body is larger than `server.max_body_bytes`.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit.
        limit: usize,
    },
    /// Some items of a batch are invalid: each with its index in the batch; nothing was written.
    #[error("{detail}")]
    InvalidItems {
        /// What is wrong, in one line.
        detail: String,
        /// Each invalid item: its index, its uid as written, and what is wrong.
        items: Vec<ItemError>,
    },
    /// A tenant policy was refused: every problem with its position; nothing was written.
    #[error("{detail}")]
    InvalidPolicy {
        /// What is wrong, in one line.
        detail: String,
        /// Each problem.
        problems: Vec<PolicyProblem>,
    },
    /// The end user's bearer token is missing or refused.
    #[error("{0}")]
    InvalidToken(TokenError),
    /// The policy enforcement point did not authenticate.
    #[error("this endpoint needs a PEP credential: Authorization: Bearer <credential>")]
    PepUnauthenticated,
    /// The admin caller did not authenticate.
    #[error("the admin API needs an admin credential: Authorization: Bearer <credential>")]
    AdminUnauthenticated,
    /// `/metrics` is behind a credential (`[metrics] credentials`) and none matched.
    #[error("/metrics needs a metrics credential: Authorization: Bearer <credential>")]
    MetricsUnauthenticated,
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// A gateway's request is denied (forward-auth): the reason code and the decision's id,
    /// never the policy.
    #[error("the request is not allowed")]
    Denied {
        /// The reason code (`no_permit`, `principal_disabled`, `no_route`, `path_refused`, …).
        reason: &'static str,
        /// The decision's id, when one was made.
        decision_id: Option<String>,
    },
    /// The thing named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (e.g. revoking the last admin credential).
    #[error("{0}")]
    Conflict(String),
    /// Too many requests from this caller: try again after `retry_after_seconds`.
    #[error("too many {what} from this address; retry after {retry_after_seconds} s")]
    RateLimited {
        /// What was limited (`token requests`, `admin requests`, `failed authentications`).
        what: &'static str,
        /// Whole seconds until one more is allowed (the `Retry-After` header).
        retry_after_seconds: u64,
    },
    /// The policies cannot be written as a data filter (never answered with a broader one).
    #[error("{detail}")]
    FilterUnsupported {
        /// What cannot be written, in one line.
        detail: String,
        /// The policy that cannot, when one policy is the cause.
        policy: Option<String>,
        /// The decision-log record of the question, when it was recorded.
        decision_id: Option<String>,
    },
    /// Warden cannot decide now (no policy loaded, keys stale); fail closed.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an unexpected failure; details go to the log only.
    #[error("internal error")]
    Internal(String),
}

/// One problem of a refused tenant policy.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PolicyProblem {
    /// The policy as a file: `tenant/<tenant>/<name>.cedar`.
    pub file: String,
    /// The 1-based line, when known.
    pub line: Option<usize>,
    /// The 1-based column, when known.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// One invalid item of a batch.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ItemError {
    /// Its position in the batch, from 0.
    pub index: usize,
    /// Its uid as written (`Type::"id"`), when it has one.
    pub uid: String,
    /// What is wrong.
    pub message: String,
}

impl ApiError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_)
            | ApiError::InvalidItems { .. }
            | ApiError::InvalidPolicy { .. } => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::InvalidToken(_)
            | ApiError::PepUnauthenticated
            | ApiError::AdminUnauthenticated
            | ApiError::MetricsUnauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::Denied { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::FilterUnsupported { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_)
            | ApiError::InvalidItems { .. }
            | ApiError::InvalidPolicy { .. } => "bad-request",
            ApiError::PayloadTooLarge { .. } => "payload-too-large",
            ApiError::InvalidToken(_) => "invalid-token",
            ApiError::PepUnauthenticated => "pep-unauthenticated",
            ApiError::AdminUnauthenticated => "admin-unauthenticated",
            ApiError::MetricsUnauthenticated => "metrics-unauthenticated",
            ApiError::Forbidden(_) | ApiError::Denied { .. } => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::Conflict(_) => "conflict",
            ApiError::RateLimited { .. } => "rate-limited",
            ApiError::FilterUnsupported { .. } => "filter-unsupported",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Internal(details) = &self {
            tracing::error!(error = %details, "internal error");
        }
        let mut body = json!({
            "type": format!("https://warden.dev/problems/{}", self.kind()),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": self.to_string(),
        });
        if let (ApiError::InvalidToken(error), Some(object)) = (&self, body.as_object_mut()) {
            object.insert("reason".to_owned(), json!(error.reason.as_str()));
        }
        if let (
            ApiError::FilterUnsupported {
                policy,
                decision_id,
                ..
            },
            Some(object),
        ) = (&self, body.as_object_mut())
        {
            object.insert("reason".to_owned(), json!("filter_unsupported"));
            object.insert("policy".to_owned(), json!(policy));
            if let Some(decision_id) = decision_id {
                object.insert("decision_id".to_owned(), json!(decision_id));
            }
        }
        if let (
            ApiError::Denied {
                reason,
                decision_id,
            },
            Some(object),
        ) = (&self, body.as_object_mut())
        {
            object.insert("reason".to_owned(), json!(reason));
            if let Some(decision_id) = decision_id {
                object.insert("decision_id".to_owned(), json!(decision_id));
            }
        }
        if let (ApiError::RateLimited { .. }, Some(object)) = (&self, body.as_object_mut()) {
            object.insert("reason".to_owned(), json!("rate_limited"));
        }
        if let (ApiError::InvalidItems { items, .. }, Some(object)) = (&self, body.as_object_mut())
        {
            object.insert("errors".to_owned(), json!(items));
        }
        if let (ApiError::InvalidPolicy { problems, .. }, Some(object)) =
            (&self, body.as_object_mut())
        {
            object.insert("errors".to_owned(), json!(problems));
        }
        let mut response = (status, axum::Json(body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let ApiError::FilterUnsupported {
            decision_id: Some(decision_id),
            ..
        }
        | ApiError::Denied {
            decision_id: Some(decision_id),
            ..
        } = &self
            && let Ok(value) = HeaderValue::from_str(decision_id)
        {
            response.headers_mut().insert("x-decision-id", value);
        }
        if let ApiError::RateLimited {
            retry_after_seconds,
            ..
        } = &self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
        }
        let challenge = match &self {
            ApiError::InvalidToken(error) => Some(format!(
                "Bearer error=\"invalid_token\", error_description=\"{}\"",
                error.reason.as_str()
            )),
            ApiError::PepUnauthenticated => Some("Bearer realm=\"warden-pep\"".to_owned()),
            ApiError::AdminUnauthenticated => Some("Bearer realm=\"warden-admin\"".to_owned()),
            ApiError::MetricsUnauthenticated => Some("Bearer realm=\"warden-metrics\"".to_owned()),
            _ => None,
        };
        if let Some(challenge) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}
