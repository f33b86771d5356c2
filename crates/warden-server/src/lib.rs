//! `warden serve`: the decision service over HTTP. The only crate that knows HTTP and JSON.
//!
//! Layout:
//! - [`router`] builds the routes; [`Server`] binds, loads policies and keys, serves, and
//!   shuts down gracefully (stop accepting, finish in-flight requests, bounded by a grace period).
//! - `routes/`: thin handlers (AuthZEN, `/v1/check`, search, operations).
//! - `engine`: the decision path without HTTP (entities, request, decide, count).
//! - `wire`: JSON request and response shapes. `problem`: the one error type (RFC 9457).
//! - `pep_auth`: PEP credentials as an extractor. `json`: a JSON extractor with problem rejections.
//! - `reload`: loading and hot-reloading the pack (SIGHUP and file changes).
//!
//! Tests: `tests/server/` start the real server on 127.0.0.1:0.

mod admin_auth;
pub mod admin_routes;
mod console_session;
pub mod edge;
mod grpc;
mod json;
mod origin;
pub mod pep_auth;
pub mod problem;
pub mod rate_limit;
mod routes;
mod serve;
pub mod state;
pub mod tls;
pub mod wire;

// The decision side lives in `warden-service`; re-exported under the old paths for the
// handlers and the benches.
pub use warden_service::{
    clock, decision_cache, decision_log, decision_metrics, engine, issuer, reload, revocation,
    snapshot, store_sync,
};

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use warden_config::Config;

use crate::problem::ApiError;
use crate::state::{AppState, Limits};

/// A server that could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The service that decides could not start (pack, store, keys, decision log, issuer).
    #[error(transparent)]
    Start(#[from] warden_service::start::StartError),
    /// The TLS files cannot be used.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The listener could not bind.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("serving failed: {0}")]
    Serve(std::io::Error),
    /// A `[[routes]]` entry does not fit the policy pack.
    #[error("{0}")]
    Routes(String),
}

fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    metrics_exporter_prometheus::Matcher::Full(
                        "warden_decision_duration_seconds".to_owned(),
                    ),
                    &[
                        0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5,
                        0.001, 0.005, 0.01,
                    ],
                )
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (tests start several servers in one
            // process); the handle still renders this recorder's view.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Drains the recorded histogram samples into their buckets every second. The Prometheus
/// recorder keeps each sample until then; without this task a server nobody scrapes grew by
/// about 1.7 MB a second under load (measured at 90k decisions a second). Each drain holds a
/// worker for the samples of one interval, so the interval is short.
fn spawn_metrics_upkeep(handle: PrometheusHandle) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            handle.run_upkeep();
        }
    })
}

/// Echoes `X-Request-ID` (AuthZEN §"Request Identification").
async fn echo_request_id(request: Request, next: Next) -> Response {
    let request_id = request.headers().get("x-request-id").cloned();
    let mut response = next.run(request).await;
    if let Some(value) = request_id {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// Whether an admin write only takes access away (a revocation, disabling a service account,
/// revoking an admin credential):
/// those go through even while the decision log refuses records. Matched on the exact route,
/// never on a suffix (an entity whose id is `disable` is not a service account's disable).
fn takes_access_away(method: &axum::http::Method, path: &str) -> bool {
    if method != axum::http::Method::POST {
        return false;
    }
    if path == "/v1/admin/revocations" {
        return true;
    }
    let segments: Vec<&str> = path.split('/').collect();
    matches!(
        segments.as_slice(),
        ["", "v1", "admin", "tenants", tenant, "service-accounts", client, "disable"]
            if !tenant.is_empty() && !client.is_empty()
    ) || matches!(
        segments.as_slice(),
        ["", "v1", "admin", "credentials", id, "revoke"] if !id.is_empty()
    )
}

/// A path as an admin call's decision-log record keeps it: a segment that is a Warden secret
/// (an admin or client secret pasted where an id goes, `warden admin revoke wdn_admin_…`) is
/// written `<secret>`. The decision log is append-only and signed: a secret written there could
/// not be scrubbed.
fn recorded_path(path: &str) -> String {
    let secret_prefixes = [
        warden_issuer::credentials::ADMIN_SECRET_PREFIX,
        warden_issuer::credentials::SECRET_PREFIX,
    ];
    path.split('/')
        .map(|segment| {
            let decoded = percent_decoded(segment).to_ascii_lowercase();
            if secret_prefixes
                .iter()
                .any(|prefix| decoded.starts_with(prefix))
            {
                "<secret>"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// `%xx` escapes of a path segment decoded (a malformed one is kept as written).
fn percent_decoded(segment: &str) -> String {
    let mut decoded = Vec::with_capacity(segment.len());
    let mut rest = segment.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first == b'%'
            && let Some((pair, after)) = tail.split_at_checked(2)
            && let Ok(byte) = hex::decode(pair)
            && let [byte] = byte.as_slice()
        {
            decoded.push(*byte);
            rest = after;
        } else {
            decoded.push(first);
            rest = tail;
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// Every admin write (any non-GET under `/v1/admin/`) becomes a decision-log record, whether it
/// succeeded or not; the store's admin audit trail keeps the before/after details.
async fn record_admin_calls(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    if request.method() == axum::http::Method::GET
        || !request.uri().path().starts_with("/v1/admin/")
        || state.decision_log.is_none()
    {
        return next.run(request).await;
    }
    // Fail closed (issue #18): with the decision log down in the `deny` mode, a write that
    // grants or changes access is refused before anything changes. Writes that only take
    // access away (revocations, disabling a service account) go ahead: refusing them would
    // keep a compromised credential alive; the store's own audit trail records them.
    let only_takes_access_away = takes_access_away(request.method(), request.uri().path());
    if !only_takes_access_away
        && let Some(unavailable) = decision_log::refuses_writes(state.decision_log.as_ref())
    {
        return ApiError::Unavailable(format!(
            "nothing was changed: admin writes are refused while {unavailable}"
        ))
        .into_response();
    }
    let started = std::time::Instant::now();
    let slot = admin_auth::ActorSlot::default();
    request.extensions_mut().insert(slot.clone());
    let operation = format!(
        "{} {}",
        request.method(),
        recorded_path(request.uri().path())
    );
    let origin = request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    let response = next.run(request).await;
    let caller = decision_log::Caller {
        entry: "admin",
        label: Some(slot.get().unwrap_or_else(|| "unauthenticated".to_owned())),
        origin,
        started,
    };
    let status = response.status();
    match decision_log::record_admin(
        state.decision_log.as_ref(),
        &caller,
        operation.clone(),
        status.as_u16(),
        slot.tenant(),
    )
    .await
    {
        Ok(()) => response,
        // A write that went through but could not be recorded is not answered as done: the
        // caller learns it, and the store's audit trail (written in the write's own
        // transaction) still holds it.
        Err(unavailable) if status.is_success() && !only_takes_access_away => {
            tracing::error!(%operation, error = %unavailable, "an admin write was applied but its decision-log record was not kept");
            ApiError::Unavailable(format!(
                "the change was applied and is in the store's audit trail, but its decision-log record could not be kept ({unavailable})"
            ))
            .into_response()
        }
        Err(unavailable) => {
            tracing::error!(%operation, error = %unavailable, "an admin call's decision-log record was not kept");
            response
        }
    }
}

async fn not_found() -> Response {
    ApiError::BadRequest("no such endpoint".to_owned()).into_response()
}

/// The routes, with limits and timeouts, over shared state.
pub fn router(state: AppState, request_timeout: Duration) -> Router {
    let max_body = state.limits.max_body_bytes;
    Router::new()
        .route("/access/v1/evaluation", post(routes::authzen::evaluation))
        .route("/access/v1/evaluations", post(routes::authzen::evaluations))
        .route("/access/v1/search/subject", post(routes::search::subjects))
        .route(
            "/access/v1/search/resource",
            post(routes::search::resources),
        )
        .route("/access/v1/search/action", post(routes::search::actions))
        .route(
            "/.well-known/authzen-configuration",
            get(routes::authzen::metadata),
        )
        .route("/v1/check", post(routes::check::check))
        .route("/v1/checks", post(routes::check::checks))
        .route("/v1/authenticate", post(routes::check::authenticate))
        .route("/v1/filter", post(routes::filter::filter))
        .route("/healthz", get(routes::ops::healthz))
        .route("/readyz", get(routes::ops::readyz))
        .route("/metrics", get(routes::ops::metrics))
        .route("/openapi.json", get(routes::ops::openapi))
        .route(
            "/v1/forward-auth",
            get(routes::forward_auth::forward_auth).post(routes::forward_auth::forward_auth),
        )
        .route("/oauth2/token", post(routes::oauth::token))
        .route("/oauth2/revoke", post(routes::oauth::revoke))
        .route("/.well-known/jwks.json", get(routes::oauth::jwks))
        .route(
            "/.well-known/openid-configuration",
            get(routes::oauth::openid_configuration),
        )
        .route("/v1/reviews", get(routes::reviews::assigned))
        .route(
            "/v1/reviews/{id}/items/{item}",
            post(routes::reviews::decide_as_reviewer),
        )
        .route("/console", get(routes::console::index))
        .route("/console/", get(routes::console::index))
        .route("/console/assets/console.js", get(routes::console::script))
        .route("/console/assets/console.css", get(routes::console::style))
        .route(
            "/console/session",
            post(routes::console::login)
                .get(routes::console::resume)
                .delete(routes::console::logout),
        )
        .merge(admin_routes::router())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_admin_calls,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            rate_limit::enforce,
        ))
        .layer(middleware::from_fn(tls::expose_peer))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(echo_request_id))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("a handler panicked".to_owned()).into_response()
        }))
        .with_state(state)
}

/// The bound listener: plain TCP, or TLS over it.
enum Bound {
    Plain(tokio::net::TcpListener),
    Tls(tls::TlsListener),
}

/// The running gRPC listener (`[grpc]`).
struct GrpcListener {
    address: SocketAddr,
    /// Set to NOT_SERVING when the shutdown starts, so Envoy stops sending checks.
    health: tonic_health::server::HealthReporter,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

/// A running server.
pub struct Server {
    address: SocketAddr,
    state: AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), ServerError>>,
    grpc: Option<GrpcListener>,
    background: Vec<tokio::task::JoinHandle<()>>,
    audit_writer: Option<warden_audit::WriterHandle>,
}

impl Server {
    /// Loads the policy and the keys, binds, and starts serving. Keys that cannot be loaded yet
    /// are retried in the background (their tokens are refused until then; `/readyz` says so).
    pub async fn start(config: Config) -> Result<Server, ServerError> {
        // First: metric handles are bound to the recorder installed when they are made.
        let metrics = metrics_handle();
        let (service, started) = warden_service::start::start(&config).await?;
        let mut background = started.tasks;
        background.push(spawn_metrics_upkeep(metrics.clone()));
        let audit_writer = started.audit_writer;

        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .map_err(|source| ServerError::Bind {
                address: config.server.listen,
                source,
            })?;
        let address = listener.local_addr().map_err(ServerError::Serve)?;
        // Bound before anything is served, so a port in use stops the start cleanly.
        let grpc_listener = match &config.grpc {
            Some(settings) => Some(
                tokio::net::TcpListener::bind(settings.listen)
                    .await
                    .map_err(|source| ServerError::Bind {
                        address: settings.listen,
                        source,
                    })?,
            ),
            None => None,
        };
        // With [server.tls], the listener is handed to the TLS accept loop (files loaded now:
        // a certificate that does not load stops the start).
        let (bound, scheme) = match &config.server.tls {
            None => (Bound::Plain(listener), "http"),
            Some(settings) => {
                let (tls_listener, holder) = tls::TlsListener::start(listener, settings)?;
                background.push(tls::spawn_reload(settings.clone(), holder));
                (Bound::Tls(tls_listener), "https")
            }
        };
        // The gateways' routes, checked against the pack in force at start.
        let routes = {
            let snapshot = service.policy.current();
            match snapshot.as_ref() {
                Some(snapshot) => warden_service::routes::RouteTable::new(
                    &config.routes,
                    config.forward_auth.default,
                    &snapshot.pack,
                ),
                None if config.routes.is_empty() => Ok(warden_service::routes::RouteTable::empty(
                    config.forward_auth.default,
                )),
                None => {
                    return Err(ServerError::Routes(
                        "[[routes]] need a policy pack to be checked against, and none loaded"
                            .to_owned(),
                    ));
                }
            }
            .map_err(|error| ServerError::Routes(error.to_string()))?
        };
        let state = AppState(Arc::new(state::Shared {
            service,
            limits: Limits {
                max_body_bytes: config.server.max_body_bytes,
                max_batch_size: config.server.max_batch_size,
                max_import_bytes: config.server.max_import_bytes,
                search_budget: Duration::from_millis(config.server.request_timeout_ms / 2),
            },
            pep_credentials: Arc::new(config.pep_credential_hashes.clone()),
            allow_unauthenticated_peps: config.allow_unauthenticated_peps,
            metrics,
            public_url: Arc::from(format!("{scheme}://{address}")),
            rate_limits: rate_limit::RateLimits::new(&config.rate_limits),
            metrics_credentials: config.metrics_credential_hashes.clone(),
            pep_client_certificates: config.pep_client_certificates,
            routes: Arc::new(routes),
            unknown_resources: config.forward_auth.unknown_resources,
            context_token: config.context_token.clone(),
        }));
        background.push(rate_limit::spawn_upkeep(state.clone()));
        let app = router(
            state.clone(),
            Duration::from_millis(config.server.request_timeout_ms),
        );
        let (shutdown_sender, shutdown_receiver) = tokio::sync::oneshot::channel::<()>();
        let shutdown_signal = async move {
            let _ = shutdown_receiver.await;
        };
        let connection_limits = serve::ConnectionLimits {
            header_read_timeout: Duration::from_millis(config.server.header_read_timeout_ms),
            max_per_address: config.server.max_connections_per_address,
            max_total: serve::total_connection_cap(config.server.max_connections),
            h2_max_concurrent_streams: serve::HTTP2_MAX_CONCURRENT_STREAMS,
        };
        let task = match bound {
            Bound::Plain(listener) => tokio::spawn(async move {
                let listener = listener.tap_io(serve::no_delay);
                serve::serve(listener, app, connection_limits, shutdown_signal).await;
                Ok(())
            }),
            Bound::Tls(tls_listener) => tokio::spawn(async move {
                serve::serve(tls_listener, app, connection_limits, shutdown_signal).await;
                Ok(())
            }),
        };
        tracing::info!(%address, "warden is listening");
        let grpc = match (&config.grpc, grpc_listener) {
            (Some(settings), Some(listener)) => {
                let grpc_address = listener.local_addr().map_err(ServerError::Serve)?;
                let (reporter, health) = tonic_health::server::health_reporter();
                background.push(grpc::spawn_health(state.clone(), reporter.clone()));
                let app = grpc::router(
                    state.clone(),
                    Duration::from_millis(config.server.request_timeout_ms),
                    settings.max_message_bytes,
                    health,
                );
                let limits = serve::ConnectionLimits {
                    h2_max_concurrent_streams: settings.max_concurrent_streams,
                    ..connection_limits
                };
                let (sender, receiver) = tokio::sync::oneshot::channel::<()>();
                let task = tokio::spawn(async move {
                    let stop = async move {
                        let _ = receiver.await;
                    };
                    serve::serve(listener.tap_io(serve::no_delay), app, limits, stop).await;
                });
                tracing::info!(address = %grpc_address, "ext_authz (gRPC) is listening");
                Some(GrpcListener {
                    address: grpc_address,
                    shutdown: Some(sender),
                    task,
                    health: reporter,
                })
            }
            _ => None,
        };
        Ok(Server {
            address,
            state,
            shutdown: Some(shutdown_sender),
            task,
            grpc,
            background,
            audit_writer,
        })
    }

    /// The bound address (useful with port 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The bound gRPC address, with `[grpc]`.
    pub fn grpc_address(&self) -> Option<SocketAddr> {
        self.grpc.as_ref().map(|grpc| grpc.address)
    }

    /// The shared state (for tests and metrics).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops accepting connections and waits for in-flight requests, at most `grace`.
    pub async fn shutdown(mut self, grace: Duration) -> Result<(), ServerError> {
        // One deadline for both steps: a client that stalls past the grace keeps its
        // connection's task (and so a handle to the decision log) alive, and must not double it.
        let deadline = tokio::time::Instant::now() + grace;
        if let Some(grpc) = &self.grpc {
            // The health task is stopped first, so it cannot report SERVING again.
            for task in &self.background {
                task.abort();
            }
            grpc::set_health(&grpc.health, tonic_health::ServingStatus::NotServing).await;
        }
        if let Some(sender) = self.shutdown.take() {
            let _ = sender.send(());
        }
        if let Some(sender) = self.grpc.as_mut().and_then(|grpc| grpc.shutdown.take()) {
            let _ = sender.send(());
        }
        for task in &self.background {
            task.abort();
        }
        let served = match tokio::time::timeout(grace, &mut self.task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join_error)) => Err(ServerError::Serve(std::io::Error::other(
                join_error.to_string(),
            ))),
            Err(_) => {
                tracing::warn!("in-flight requests did not finish within the grace period");
                self.task.abort();
                Ok(())
            }
        };
        if let Some(grpc) = self.grpc.as_mut() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if tokio::time::timeout(left, &mut grpc.task).await.is_err() {
                tracing::warn!("in-flight ext_authz calls did not finish within the grace period");
                grpc.task.abort();
            }
        }
        // The last handle to the decision log goes; the writer drains the queue, signs the
        // head and stops.
        let Server {
            state,
            audit_writer,
            ..
        } = self;
        drop(state);
        if let Some(writer) = audit_writer {
            // Close rather than wait for the last handle: a connection stalled past the grace
            // still holds one.
            let joined = tokio::task::spawn_blocking(move || writer.close_and_join());
            // At least a moment for the writer to drain what was answered and sign the head.
            let left = deadline
                .saturating_duration_since(tokio::time::Instant::now())
                .max(Duration::from_millis(250));
            if tokio::time::timeout(left, joined).await.is_err() {
                tracing::error!("the decision log did not finish writing within the grace period");
            }
        }
        served
    }
}

/// Runs until `stop` resolves (SIGTERM or SIGINT in the binary), then shuts down gracefully.
pub async fn run(config: Config, stop: impl Future<Output = ()>) -> Result<(), ServerError> {
    let grace = Duration::from_secs(config.server.shutdown_grace_seconds);
    let server = Server::start(config).await?;
    stop.await;
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
    server.shutdown(grace).await
}

/// Resolves on SIGTERM or SIGINT.
pub async fn termination_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Method;

    use super::{recorded_path, takes_access_away};

    /// Issue #22 review: a secret pasted as an id is not written into the decision log.
    #[test]
    fn secrets_in_a_path_are_not_recorded() {
        assert_eq!(
            recorded_path("/v1/admin/credentials/wdn_admin_AbC-123/revoke"),
            "/v1/admin/credentials/<secret>/revoke"
        );
        assert_eq!(
            recorded_path("/v1/admin/tenants/acme/service-accounts/%77sa_xyz/disable"),
            "/v1/admin/tenants/acme/service-accounts/<secret>/disable"
        );
        assert_eq!(
            recorded_path("/v1/admin/credentials/adm_0123456789ab/rotate"),
            "/v1/admin/credentials/adm_0123456789ab/rotate"
        );
        assert_eq!(recorded_path("/v1/admin/x%2/%zz%"), "/v1/admin/x%2/%zz%");
    }

    /// Issue #18 review: the fail-closed exemption matches routes exactly.
    #[test]
    fn only_revocations_disables_and_credential_revocations_take_access_away() {
        assert!(takes_access_away(&Method::POST, "/v1/admin/revocations"));
        assert!(takes_access_away(
            &Method::POST,
            "/v1/admin/tenants/acme/service-accounts/sa_1/disable"
        ));
        assert!(takes_access_away(
            &Method::POST,
            "/v1/admin/credentials/adm_1/revoke"
        ));
        for (method, path) in [
            (Method::POST, "/v1/admin/credentials/adm_1/rotate"),
            (Method::POST, "/v1/admin/credentials"),
            (Method::POST, "/v1/admin/credentials//revoke"),
            (
                Method::DELETE,
                "/v1/admin/tenants/acme/entities/Document/disable",
            ),
            (Method::POST, "/v1/admin/tenants/acme/entities/disable"),
            (Method::POST, "/v1/admin/tenants/acme/roles/grant"),
            (Method::GET, "/v1/admin/revocations"),
            (
                Method::POST,
                "/v1/admin/tenants/acme/service-accounts/sa_1/disable/x",
            ),
            (
                Method::POST,
                "/v1/admin/tenants//service-accounts/sa_1/disable",
            ),
        ] {
            assert!(!takes_access_away(&method, path), "{method} {path}");
        }
    }
}
