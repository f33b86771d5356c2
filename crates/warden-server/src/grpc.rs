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
//! Envoy's answer is forward-auth's answer. Every failure, a malformed request included, is such
//! a denial, never a gRPC error Envoy would have to interpret.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::HeaderValue as HttpHeaderValue;
use axum::response::IntoResponse;
use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, DeniedHttpResponse,
    HeaderAppendAction, HeaderValue, HeaderValueOption, HttpResponse, HttpStatus, OkHttpResponse,
};
use envoy_types::pb::google::rpc::Status as RpcStatus;
use tonic::{Request, Response, Status};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use warden_service::decision_log::Caller;

use crate::edge::{self, EdgeAllow, EdgeRequest, IDENTITY_HEADERS, METHOD_OVERRIDES};
use crate::problem::ApiError;
use crate::state::AppState;

/// The name Envoy's gRPC health check and Kubernetes probes ask about.
const SERVICE_NAME: &str = "envoy.service.auth.v3.Authorization";

/// The largest problem body put into a denial.
const MAX_PROBLEM_BYTES: usize = 16 * 1024;

/// The `Authorization` service.
struct ExtAuthz {
    state: AppState,
    /// Bound on one check (the HTTP request timeout); past it the answer is a 503 denial.
    timeout: Duration,
}

/// The gRPC routes: `ext_authz` and health.
pub(crate) fn router(
    state: AppState,
    timeout: Duration,
    max_message_bytes: usize,
    health: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
) -> axum::Router {
    let authorization = AuthorizationServer::new(ExtAuthz { state, timeout })
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes.max(MAX_PROBLEM_BYTES * 2));
    tonic::service::Routes::new(authorization)
        .add_service(health)
        .into_axum_router()
}

/// Keeps the health status in step with whether Warden can decide (a policy pack is loaded):
/// checked every second until the task is aborted.
pub(crate) fn spawn_health(
    state: AppState,
    reporter: HealthReporter,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = None;
        loop {
            let status = if state.policy.current().is_some() {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            if last != Some(status) {
                reporter.set_service_status(SERVICE_NAME, status).await;
                reporter.set_service_status("", status).await;
                last = Some(status);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
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
        let answer = tokio::time::timeout(self.timeout, self.decide(&caller, request.into_inner()))
            .await
            .unwrap_or_else(|_| {
                Err(ApiError::Unavailable(
                    "the decision did not finish in time".to_owned(),
                ))
            });
        let response = match answer {
            Ok(allow) => allowed(allow),
            Err(error) => denied(error).await,
        };
        Ok(Response::new(response))
    }
}

impl ExtAuthz {
    async fn decide(&self, caller: &Caller, check: CheckRequest) -> Result<EdgeAllow, ApiError> {
        let http = check
            .attributes
            .and_then(|attributes| attributes.request)
            .and_then(|request| request.http)
            .ok_or_else(|| {
                ApiError::BadRequest(
                    "the CheckRequest carries no HTTP request attributes".to_owned(),
                )
            })?;
        let headers = Headers::of(&http)?;
        let authorization = headers
            .one("authorization")?
            .map(|value| {
                HttpHeaderValue::from_bytes(value).map_err(|_| {
                    ApiError::BadRequest(
                        "the authorization header is not a header value".to_owned(),
                    )
                })
            })
            .transpose()?;
        let method = http.method.to_ascii_uppercase();
        if method.is_empty() || http.path.is_empty() {
            return Err(ApiError::BadRequest(
                "the CheckRequest names no method or path".to_owned(),
            ));
        }
        let request = EdgeRequest {
            method: &method,
            target: &http.path,
            authorization: authorization.as_ref(),
            method_override: METHOD_OVERRIDES.into_iter().find(|name| headers.has(name)),
        };
        edge::decide(&self.state, caller, request).await
    }
}

/// The request's headers: Envoy's lower-cased map, or with `encode_raw_headers` the list of
/// raw headers (where a name may come more than once).
enum Headers<'a> {
    Map(&'a std::collections::HashMap<String, String>),
    Raw(&'a [HeaderValue]),
}

impl<'a> Headers<'a> {
    fn of(
        http: &'a envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest,
    ) -> Result<Headers<'a>, ApiError> {
        match &http.header_map {
            Some(map) if !map.headers.is_empty() => Ok(Headers::Raw(&map.headers)),
            _ => Ok(Headers::Map(&http.headers)),
        }
    }

    fn has(&self, name: &str) -> bool {
        match self {
            Headers::Map(map) => map.contains_key(name),
            Headers::Raw(list) => list.iter().any(|h| h.key.eq_ignore_ascii_case(name)),
        }
    }

    /// The one value of `name`; more than one is refused, as forward-auth refuses it.
    fn one(&self, name: &str) -> Result<Option<&'a [u8]>, ApiError> {
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
                    return Err(ApiError::BadRequest(format!(
                        "the {name} header appears more than once"
                    )));
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
    let code = match &error {
        ApiError::InvalidToken(_) => tonic::Code::Unauthenticated,
        _ => tonic::Code::PermissionDenied,
    };
    let message = error.to_string();
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
