//! A JSON body extractor whose rejections are problem documents like every other error:
//! malformed JSON, a body that is not an object, and missing fields are 400, an oversized
//! body is 413.
//!
//! A well-formed body is read with `serde_json` directly. Only a body that fails is read again
//! through `axum::Json`, whose message names the path of the offending field: the slower reader
//! runs for errors alone (it was a tenth of the request's time on the decision endpoints).

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use crate::problem::ApiError;
use crate::state::AppState;

/// `axum::Json`, with Warden's rejections.
pub struct Json<T>(pub T);

const NOT_JSON: &str = "the body must be JSON with Content-Type: application/json";

impl<T: DeserializeOwned> FromRequest<AppState> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let limit = state.limits.max_body_bytes;
        if !is_json(request.headers()) {
            return Err(ApiError::BadRequest(NOT_JSON.to_owned()));
        }
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge { limit }
                } else {
                    ApiError::BadRequest(rejection.body_text())
                }
            })?;
        // Every request body Warden reads with this extractor is an object; serde would also
        // read a struct from an array of its fields in order, which no client means to send.
        if !opens_with(&body, b'{') {
            return Err(ApiError::BadRequest(
                "the body must be a JSON object".to_owned(),
            ));
        }
        if let Ok(value) = serde_json::from_slice::<T>(&body) {
            return Ok(Json(value));
        }
        match axum::Json::<T>::from_bytes(&body) {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(rejection) => Err(reject(rejection, limit)),
        }
    }
}

/// A JSON object body for bulk admin calls (entity delete): read up to
/// `server.max_import_bytes` instead of `server.max_body_bytes`, with the same rejections.
pub struct LargeJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for LargeJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        read_large(request, state, b'{').await.map(LargeJson)
    }
}

/// A JSON array body for bulk admin calls (entity import), read like [`LargeJson`].
pub struct LargeJsonArray<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for LargeJsonArray<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        read_large(request, state, b'[').await.map(LargeJsonArray)
    }
}

/// Reads a bulk body that must open with `opening` (`{` or `[`).
async fn read_large<T: DeserializeOwned>(
    request: Request,
    state: &AppState,
    opening: u8,
) -> Result<T, ApiError> {
    let limit = state.limits.max_import_bytes;
    if !is_json(request.headers()) {
        return Err(ApiError::BadRequest(NOT_JSON.to_owned()));
    }
    // The route-wide `DefaultBodyLimit` only binds extractors that consult it; the body is
    // read here with this endpoint's own bound.
    let body = axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge { limit })?;
    if !opens_with(&body, opening) {
        return Err(ApiError::BadRequest(if opening == b'[' {
            "the body must be a JSON array".to_owned()
        } else {
            "the body must be a JSON object".to_owned()
        }));
    }
    if let Ok(value) = serde_json::from_slice::<T>(&body) {
        return Ok(value);
    }
    match axum::Json::<T>::from_bytes(&body) {
        Ok(axum::Json(value)) => Ok(value),
        Err(rejection) => Err(reject(rejection, limit)),
    }
}

/// Whether the first byte after JSON whitespace is `opening`.
fn opens_with(body: &[u8], opening: u8) -> bool {
    body.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&opening)
}

/// `application/json` or any `application/*+json`, parameters allowed: the rule of
/// `axum::Json`, with the same media-type parser, after a shortcut for the usual exact value.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    if value == "application/json" {
        return true;
    }
    let Ok(media_type) = value.parse::<mime::Mime>() else {
        return false;
    };
    media_type.type_() == "application"
        && (media_type.subtype() == "json" || media_type.suffix().is_some_and(|s| s == "json"))
}

fn reject(rejection: JsonRejection, limit: usize) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::PayloadTooLarge { limit };
    }
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::BadRequest(NOT_JSON.to_owned()),
        other => ApiError::BadRequest(other.body_text()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(content_type) {
            headers.insert(header::CONTENT_TYPE, value);
        }
        headers
    }

    #[test]
    fn json_media_types_are_recognised_like_axum_does() {
        for accepted in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/vnd.api+json",
            "application/problem+json;x=y",
        ] {
            assert!(is_json(&headers(accepted)), "{accepted}");
        }
        for refused in [
            "",
            "text/json",
            "application/jsonx",
            "application/x-www-form-urlencoded",
            "text/plain; a=application/json",
            "json",
            "application/json; charset",
        ] {
            assert!(!is_json(&headers(refused)), "{refused}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }
}
