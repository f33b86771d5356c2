//! A closed-loop gRPC load generator for `bench/gateways.sh` (wrk speaks no gRPC): `--connections`
//! HTTP/2 connections, each with one call in flight at a time (as wrk keeps one request in flight
//! per connection), on one thread, for `--seconds`. Prints `requests/s p50_ms p99_ms`, the line
//! the benchmark's other rows print, and fails if any answer is not the expected one (ext_authz:
//! an OK response; health: SERVING), so a row never times refusals.
//!
//! `cargo run --release -p warden-server --example grpc_load -- --address 127.0.0.1:9191
//! --call ext-authz --token <jwt> --path /tenants/acme/documents/roadmap`
//! (`--call health` asks `grpc.health.v1.Health/Check`: the gRPC floor).

use std::time::{Duration, Instant};

use envoy_types::ext_authz::v3::pb::{CheckRequest, HttpResponse};
use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

struct Options {
    address: String,
    call: String,
    token: String,
    path: String,
    connections: usize,
    seconds: u64,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        address: String::new(),
        call: "ext-authz".to_owned(),
        token: String::new(),
        path: "/".to_owned(),
        connections: 32,
        seconds: 5,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--address" => options.address = value,
            "--call" => options.call = value,
            "--token" => options.token = value,
            "--path" => options.path = value,
            "--connections" => options.connections = value.parse().map_err(|_| "--connections")?,
            "--seconds" => options.seconds = value.parse().map_err(|_| "--seconds")?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if options.address.is_empty() || options.connections == 0 {
        return Err("--address is required, --connections at least 1".to_owned());
    }
    Ok(options)
}

fn check_request(token: &str, path: &str) -> CheckRequest {
    let mut headers = std::collections::HashMap::new();
    headers.insert("authorization".to_owned(), format!("Bearer {token}"));
    CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                time: None,
                http: Some(HttpRequest {
                    method: "GET".to_owned(),
                    path: path.to_owned(),
                    host: "app.example".to_owned(),
                    headers,
                    size: -1,
                    ..HttpRequest::default()
                }),
            }),
            ..AttributeContext::default()
        }),
    }
}

/// One call; `Err` when the answer is not the allowing one.
async fn call(channel: &Channel, options: &Options) -> Result<(), String> {
    if options.call == "health" {
        let status = HealthClient::new(channel.clone())
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .map_err(|status| status.to_string())?
            .into_inner()
            .status;
        return (status == 1)
            .then_some(())
            .ok_or(format!("health status {status}"));
    }
    let response = AuthorizationClient::new(channel.clone())
        .check(check_request(&options.token, &options.path))
        .await
        .map_err(|status| status.to_string())?
        .into_inner();
    match response.http_response {
        Some(HttpResponse::OkResponse(_)) => Ok(()),
        other => Err(format!("not allowed: {other:?}")),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let options = std::sync::Arc::new(options()?);
    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..options.connections {
        let channel = Endpoint::from_shared(format!("http://{}", options.address))
            .map_err(|error| error.to_string())?
            .connect()
            .await
            .map_err(|error| error.to_string())?;
        let options = std::sync::Arc::clone(&options);
        tasks.spawn(async move {
            let mut latencies: Vec<u32> = Vec::with_capacity(100_000);
            while Instant::now() < deadline {
                let started = Instant::now();
                call(&channel, &options).await?;
                let micros = started.elapsed().as_micros();
                latencies.push(u32::try_from(micros).unwrap_or(u32::MAX));
            }
            Ok::<_, String>(latencies)
        });
    }
    let started = Instant::now();
    let mut all = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        all.extend(joined.map_err(|error| error.to_string())??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let at = |q: f64| {
        let index = ((all.len() as f64 - 1.0) * q).round() as usize;
        f64::from(all.get(index).copied().unwrap_or_default()) / 1000.0
    };
    println!(
        "{:.0} {:.3} {:.3}",
        all.len() as f64 / elapsed,
        at(0.50),
        at(0.99)
    );
    Ok(())
}
