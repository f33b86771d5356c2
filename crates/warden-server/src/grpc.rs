//! `[grpc] listen`: Envoy's external authorization over gRPC
//! (`envoy.service.auth.v3.Authorization/Check`, the protos of the `envoy-types` crate) and
//! `grpc.health.v1`, served by the same connection loop as HTTP (`serve.rs`: header and
//! protocol deadlines, per-address and total connection caps).
//!
//! A `CheckRequest` becomes an [`EdgeRequest`]: the method and the request target (`path`,
//! which Envoy sends as the client wrote it, query included) and the `authorization` header, so
//! the decision is the one HTTP forward-auth makes (`crate::edge`), recorded with the entry point
//! `ext_authz`. Allowed: gRPC `OK` with the identity headers to set upstream (overwriting any the
//! client sent) and the others removed. Refused: `PERMISSION_DENIED` (`UNAUTHENTICATED` for a
//! token problem) with the HTTP status, headers and problem body Envoy returns to the client, so
//! Envoy's answer is forward-auth's answer. Every failure Warden can answer, a malformed or
//! too large request included, is such a denial and a record, never a gRPC error Envoy would
//! have to interpret.
//!
//! Two failures are bare gRPC errors, as nothing was read to answer for: a message over four
//! times `[grpc] max_message_bytes` (`OUT_OF_RANGE`, refused by tonic before it is buffered) and
//! a call that has not finished a second past `[server] request_timeout_ms`
//! (`DEADLINE_EXCEEDED`: a stalled client, whose stream must not be held). Envoy fails closed on
//! both unless `failure_mode_allow` is set, which must not be used with Warden.
//!
//! SECURITY-SENSITIVE: what Envoy tells Warden is what it decides on, and what it answers is
//! what Envoy lets through.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request as HttpRequest, State};
use axum::http::HeaderValue as HttpHeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response as HttpResponseOut};
use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, DeniedHttpResponse,
    HeaderAppendAction, HeaderValue, HeaderValueOption, HttpResponse, HttpStatus, OkHttpResponse,
};
use envoy_types::pb::google::rpc::Status as RpcStatus;
use prost::Message as _;
use tonic::{Request, Response, Status};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use warden_service::decision_log::Caller;

use crate::edge::{self, EdgeAllow, EdgeRequest, IDENTITY_HEADERS};
use crate::problem::ApiError;
use crate::state::AppState;

/// The name Envoy's gRPC health check and Kubernetes probes ask about.
const SERVICE_NAME: &str = "envoy.service.auth.v3.Authorization";

/// The largest problem body put into a denial.
const MAX_PROBLEM_BYTES: usize = 16 * 1024;

/// How much larger than `[grpc] max_message_bytes` a message tonic reads may be: up to this,
/// an oversized check is read and answered as a recorded denial.
const DECODE_LIMIT_FACTOR: usize = 4;

/// The `Authorization` service.
struct ExtAuthz {
    state: AppState,
    /// Bound on one decision (the HTTP request timeout); past it the answer is a 503 denial.
    timeout: Duration,
    /// `[grpc] max_message_bytes`.
    max_message_bytes: usize,
}

/// The gRPC routes: `ext_authz` and health, every call bounded by `timeout` plus a second (the
/// decision itself is bounded by `timeout` and answered as a denial; this ends calls whose
/// message never arrives).
pub(crate) fn router(
    state: AppState,
    timeout: Duration,
    max_message_bytes: usize,
    health: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
) -> axum::Router {
    let authorization = AuthorizationServer::new(ExtAuthz {
        state,
        timeout,
        max_message_bytes,
    })
    .max_decoding_message_size(max_message_bytes.saturating_mul(DECODE_LIMIT_FACTOR))
    .max_encoding_message_size(max_message_bytes.max(MAX_PROBLEM_BYTES * 2));
    tonic::service::Routes::new(authorization)
        .add_service(health)
        .into_axum_router()
        .layer(axum::middleware::from_fn_with_state(
            timeout + Duration::from_secs(1),
            deadline,
        ))
}

/// Ends a call that has not finished by `limit` with `DEADLINE_EXCEEDED`.
async fn deadline(
    State(limit): State<Duration>,
    request: HttpRequest,
    next: Next,
) -> HttpResponseOut {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            Status::deadline_exceeded("the call did not arrive or finish in time").into_http()
        }
    }
}

/// Keeps the health status in step with whether Warden can answer allows (a policy pack is
/// loaded and, with `[context_token]`, the signing key): checked every second until the task
/// is aborted.
pub(crate) fn spawn_health(
    state: AppState,
    reporter: HealthReporter,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = None;
        loop {
            let signing_ready = state.context_token.is_none()
                || state
                    .token_issuer
                    .as_ref()
                    .and_then(|issuer| issuer.signing_key())
                    .is_some();
            let status = if state.policy.current().is_some() && signing_ready {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            if last != Some(status) {
                set_health(&reporter, status).await;
                last = Some(status);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

/// Reports `status` for the `ext_authz` service and the server as a whole.
pub(crate) async fn set_health(reporter: &HealthReporter, status: ServingStatus) {
    reporter.set_service_status(SERVICE_NAME, status).await;
    reporter.set_service_status("", status).await;
}

#[tonic::async_trait]
impl Authorization for ExtAuthz {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let origin = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| *address);
        let caller = Caller {
            entry: "ext_authz",
            label: None,
            origin,
            started: Instant::now(),
        };
        let check = request.into_inner();
        let answer = if check.encoded_len() > self.max_message_bytes {
            let what = format!(
                "a CheckRequest of {} bytes, over [grpc] max_message_bytes ({})",
                check.encoded_len(),
                self.max_message_bytes
            );
            Err(edge::refuse_too_large(&self.state, &caller, what).await)
        } else {
            tokio::time::timeout(self.timeout, self.decide(&caller, check))
                .await
                .unwrap_or_else(|_| {
                    Err(ApiError::Unavailable(
                        "authorization is unavailable; the request was not decided in time"
                            .to_owned(),
                    ))
                })
        };
        let response = match answer {
            Ok(allow) => allowed(allow),
            Err(error) => denied(error).await,
        };
        Ok(Response::new(response))
    }
}

impl ExtAuthz {
    async fn decide(&self, caller: &Caller, check: CheckRequest) -> Result<EdgeAllow, ApiError> {
        let read = read_request(
            check
                .attributes
                .and_then(|a| a.request)
                .and_then(|r| r.http),
        );
        let (http, authorization) = match read {
            Ok(read) => read,
            Err(message) => return Err(edge::refuse_malformed(&self.state, caller, message).await),
        };
        let method = http.method.to_ascii_uppercase();
        let headers = Headers::of(&http);
        let request = EdgeRequest {
            method: &method,
            target: &http.path,
            authorization: authorization.as_ref(),
            screened: edge::screen_headers(headers.names()),
        };
        edge::decide(&self.state, caller, request).await
    }
}

type HttpAttributes = envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest;

/// The HTTP attributes and the `authorization` header of a check, or why they cannot be read.
fn read_request(
    http: Option<HttpAttributes>,
) -> Result<(HttpAttributes, Option<HttpHeaderValue>), String> {
    let http = http.ok_or("the CheckRequest carries no HTTP request attributes")?;
    if http.method.is_empty() || http.path.is_empty() {
        return Err("the CheckRequest names no method or path".to_owned());
    }
    let authorization = Headers::of(&http)
        .one("authorization")?
        .map(|value| {
            HttpHeaderValue::from_bytes(value)
                .map_err(|_| "the authorization header is not a header value".to_owned())
        })
        .transpose()?;
    Ok((http, authorization))
}

/// The request's headers: Envoy's lower-cased map, or with `encode_raw_headers` the list of
/// raw headers (where a name may come more than once).
enum Headers<'a> {
    Map(&'a std::collections::HashMap<String, String>),
    Raw(&'a [HeaderValue]),
}

impl<'a> Headers<'a> {
    fn of(http: &'a HttpAttributes) -> Headers<'a> {
        match &http.header_map {
            Some(map) if !map.headers.is_empty() => Headers::Raw(&map.headers),
            _ => Headers::Map(&http.headers),
        }
    }

    /// Every header name (as sent: the map's are lower case, raw ones may not be).
    fn names(&self) -> Box<dyn Iterator<Item = &'a str> + 'a> {
        match self {
            Headers::Map(map) => Box::new(map.keys().map(String::as_str)),
            Headers::Raw(list) => Box::new(list.iter().map(|h| h.key.as_str())),
        }
    }

    /// The one value of `name`; more than one is refused, as forward-auth refuses it.
    fn one(&self, name: &str) -> Result<Option<&'a [u8]>, String> {
        match self {
            Headers::Map(map) => Ok(map.get(name).map(|value| value.as_bytes())),
            Headers::Raw(list) => {
                let mut values = list
                    .iter()
                    .filter(|h| h.key.eq_ignore_ascii_case(name))
                    .map(|h| {
                        if h.raw_value.is_empty() {
                            h.value.as_bytes()
                        } else {
                            h.raw_value.as_slice()
                        }
                    });
                let first = values.next();
                if values.next().is_some() {
                    return Err(format!("the {name} header appears more than once"));
                }
                Ok(first)
            }
        }
    }
}

fn header(key: &str, value: String) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_owned(),
            value,
            raw_value: Vec::new(),
        }),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..HeaderValueOption::default()
    }
}

fn allowed(allow: EdgeAllow) -> CheckResponse {
    let set: Vec<&str> = allow.headers.iter().map(|(name, _)| *name).collect();
    let headers_to_remove = IDENTITY_HEADERS
        .iter()
        .filter(|name| !set.contains(name))
        .map(|name| (*name).to_owned())
        .collect();
    let headers = allow
        .headers
        .into_iter()
        .map(|(name, value)| header(name, value.to_str().unwrap_or_default().to_owned()))
        .collect();
    CheckResponse {
        status: Some(RpcStatus {
            code: tonic::Code::Ok as i32,
            message: String::new(),
            details: Vec::new(),
        }),
        dynamic_metadata: None,
        http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
            headers,
            headers_to_remove,
            ..OkHttpResponse::default()
        })),
    }
}

/// The refusal as Envoy returns it to the client: forward-auth's status, headers and body.
async fn denied(error: ApiError) -> CheckResponse {
    let (code, message) = match &error {
        ApiError::InvalidToken(refused) => (
            tonic::Code::Unauthenticated,
            format!("unauthenticated: {}", refused.reason.as_str()),
        ),
        ApiError::Denied { reason, .. } => {
            (tonic::Code::PermissionDenied, format!("denied: {reason}"))
        }
        other => (
            tonic::Code::PermissionDenied,
            format!("denied: {}", other.status()),
        ),
    };
    let response = error.into_response();
    let status = response.status();
    let headers = response
        .headers()
        .iter()
        .filter(|(name, _)| {
            matches!(
                name.as_str(),
                "content-type" | "www-authenticate" | "x-decision-id" | "retry-after"
            )
        })
        .filter_map(|(name, value)| Some(header(name.as_str(), value.to_str().ok()?.to_owned())))
        .collect();
    let body = axum::body::to_bytes(response.into_body(), MAX_PROBLEM_BYTES)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    CheckResponse {
        status: Some(RpcStatus {
            code: code as i32,
            message,
            details: Vec::new(),
        }),
        dynamic_metadata: None,
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: i32::from(status.as_u16()),
            }),
            headers,
            body,
        })),
    }
}
