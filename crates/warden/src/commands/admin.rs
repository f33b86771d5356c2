//! Admin verbs: `admin init` (directly on the store), and `entity import`, `role grant|revoke`,
//! `principal disable|enable` (through a running server's admin API, authenticated by
//! `WARDEN_ADMIN_TOKEN`). Exit 0 done, 1 refused by the server, 2 bad usage or unreachable.

use anyhow::{Context as _, anyhow, bail};
use std::time::Duration;

use serde_json::{Value, json};
use warden_store::{AdminCredential, Store, StoreError};

use super::{Verdict, unix_now};
use crate::cli::{
    AdminCreateArgs, AdminInitArgs, AdminListArgs, AdminRevokeArgs, AdminRotateArgs,
    PrincipalStatusArgs, RevocationsListArgs, RevokeCommand, RoleGrantArgs, RoleRevokeArgs,
    ServerArgs,
};
use crate::config_loading;

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

pub fn init(args: &AdminInitArgs) -> anyhow::Result<Verdict> {
    let config = config_loading::load(Some(&args.config))?;
    let storage = config.storage.as_ref().ok_or_else(|| {
        anyhow!(
            "{}: no [storage] section: admin credentials live in the store",
            args.config.display()
        )
    })?;
    let (id, secret, digest_hex) = warden_issuer::credentials::new_admin_credential()?;
    let credential = AdminCredential {
        id,
        digest_hex,
        tenant_scope: args.tenant.clone(),
    };
    runtime()?.block_on(async {
        let store = Store::connect(&storage.url).await?;
        match store
            .create_admin_directly(&credential, unix_now(), args.force)
            .await
        {
            Ok(()) => {
                println!(
                    "admin credential {} created ({}).",
                    credential.id,
                    args.tenant
                        .as_deref()
                        .map_or("all tenants".to_owned(), |t| format!("tenant {t}"))
                );
                println!("It is shown only this once; Warden keeps only its SHA-256 digest:");
                println!("{secret}");
                Ok(Verdict::Success)
            }
            Err(StoreError::Refused(message)) => {
                println!("refused: {message}");
                Ok(Verdict::Negative)
            }
            Err(other) => Err(other.into()),
        }
    })
}

pub(crate) fn base_url(args: &ServerArgs) -> anyhow::Result<String> {
    if let Some(url) = &args.server {
        return Ok(url.trim_end_matches('/').to_owned());
    }
    let (scheme, listen) = match &args.config {
        Some(path) => {
            let server = config_loading::load(Some(path))?.server;
            let scheme = if server.tls.is_some() {
                "https"
            } else {
                "http"
            };
            (scheme, server.listen.to_string())
        }
        None => ("http", "127.0.0.1:8180".to_owned()),
    };
    Ok(format!("{scheme}://{listen}"))
}

/// The HTTP client of admin verbs: the system's roots plus `--ca-file`, and the client
/// certificate of `--client-cert`/`--client-key` when given.
pub(crate) fn http_client(args: &ServerArgs, timeout: Duration) -> anyhow::Result<reqwest::Client> {
    // A redirect would send the body (a person's token, a new secret) to another place.
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = &args.ca_file {
        let pem =
            std::fs::read(path).with_context(|| format!("reading --ca-file {}", path.display()))?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("--ca-file {} holds no PEM certificate", path.display()))?;
        if certificates.is_empty() {
            return Err(anyhow!(
                "--ca-file {} holds no PEM certificate",
                path.display()
            ));
        }
        builder = builder.tls_certs_merge(certificates);
    }
    if let (Some(cert), Some(key)) = (&args.client_cert, &args.client_key) {
        let mut pem = std::fs::read(cert)
            .with_context(|| format!("reading --client-cert {}", cert.display()))?;
        pem.push(b'\n');
        pem.extend(
            std::fs::read(key)
                .with_context(|| format!("reading --client-key {}", key.display()))?,
        );
        let identity = reqwest::Identity::from_pem(&pem).map_err(|_| {
            anyhow!(
                "--client-cert {} and --client-key {} are not a PEM certificate and its key",
                cert.display(),
                key.display()
            )
        })?;
        builder = builder.identity(identity);
    }
    builder.build().context("setting up the HTTP client")
}

/// One connection to the admin API for many calls.
pub(crate) struct AdminClient {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
    base: String,
    token: String,
}

impl AdminClient {
    /// A client of the server `server` names, with the admin token of the environment.
    pub(crate) fn new(server: &ServerArgs, timeout: Duration) -> anyhow::Result<Self> {
        let token = std::env::var("WARDEN_ADMIN_TOKEN").map_err(|_| {
            anyhow!("WARDEN_ADMIN_TOKEN is not set (make one with `warden admin init`)")
        })?;
        Ok(AdminClient {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the runtime")?,
            client: http_client(server, timeout)?,
            base: base_url(server)?,
            token: token.trim().to_owned(),
        })
    }

    /// Sends one request; returns the status and the JSON answer (`null` when none).
    pub(crate) fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(reqwest::StatusCode, Value)> {
        let url = format!("{}{path}", self.base);
        self.runtime.block_on(async {
            let mut request = self.client.request(method, &url).bearer_auth(&self.token);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request
                .send()
                .await
                .with_context(|| format!("reaching {url}"))?;
            let status = response.status();
            Ok((status, response.json().await.unwrap_or(Value::Null)))
        })
    }
}

/// Sends one admin request; returns the status and the JSON answer (`null` when none).
pub(crate) fn call(
    server: &ServerArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<(reqwest::StatusCode, Value)> {
    AdminClient::new(server, Duration::from_secs(30))?.call(method, path, body.as_ref())
}

/// Prints a refusal's detail and answers `Negative`.
pub(crate) fn refused(status: reqwest::StatusCode, answer: &Value) -> Verdict {
    let detail = answer
        .get("detail")
        .and_then(Value::as_str)
        .unwrap_or("no detail");
    println!("refused ({}): {detail}", status.as_u16());
    Verdict::Negative
}

/// Sends one admin request; prints the answer; maps the status to a verdict.
pub(crate) fn send(
    server: &ServerArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Verdict> {
    let (status, answer) = call(server, method, path, body)?;
    if status.is_success() {
        println!("{answer}");
        Ok(Verdict::Success)
    } else {
        Ok(refused(status, &answer))
    }
}

/// `text` as one path segment: percent-encoded, and never a dot segment (`.`, `..`), which an
/// HTTP client resolves, walking to another route (`admin rotate ../keys` would rotate
/// Warden's signing key). `what` names the argument for the error.
pub(crate) fn segment(what: &str, text: &str) -> anyhow::Result<String> {
    if matches!(text, "" | "." | "..") {
        bail!("{what} {text:?} is not a usable id");
    }
    Ok(text
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(byte).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect())
}

/// The path segment of an admin credential's id; an admin secret pasted in its place is
/// refused before anything is sent (it would land in the server's logs and decision log).
fn credential_segment(id: &str) -> anyhow::Result<String> {
    if id.starts_with(warden_issuer::credentials::ADMIN_SECRET_PREFIX) {
        bail!(
            "that is an admin secret, not a credential id (`adm_…`, see `warden admin list`); nothing was sent"
        );
    }
    segment("credential", id)
}

/// `90s`, `30m`, `1h`, `7d` as seconds.
pub(crate) fn parse_duration(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| anyhow!("duration {text:?}: expected a number and a unit (s, m, h, d)"))?;
    let factor = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => bail!("duration {text:?}: the unit must be s, m, h or d"),
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| anyhow!("duration {text:?}: too long"))
}

/// RFC 3339 (`2026-12-01T18:00:00Z`, `…+02:00`, fractions ignored) as Unix seconds.
fn parse_rfc3339(text: &str) -> anyhow::Result<i64> {
    warden_audit::record::parse_time_ms(text)
        .and_then(|ms| i64::try_from(ms.div_euclid(1000)).ok())
        .ok_or_else(|| anyhow!("--until {text}: expected RFC 3339, e.g. 2026-12-01T18:00:00Z"))
}

pub fn grant(args: &RoleGrantArgs) -> anyhow::Result<Verdict> {
    let ttl_seconds = args.ttl.as_deref().map(parse_duration).transpose()?;
    let expires_at = args.until.as_deref().map(parse_rfc3339).transpose()?;
    let mut body = serde_json::Map::new();
    body.insert("principal".into(), json!(args.principal));
    body.insert("role".into(), json!(args.role));
    body.insert("reason".into(), json!(args.reason));
    if let Some(ttl) = ttl_seconds {
        body.insert("ttl_seconds".into(), json!(ttl));
    }
    if let Some(at) = expires_at {
        body.insert("expires_at".into(), json!(at));
    }
    let body = Value::Object(body);
    send(
        &args.server,
        reqwest::Method::POST,
        &format!(
            "/v1/admin/tenants/{}/roles/grant",
            segment("--tenant", &args.tenant)?
        ),
        Some(body),
    )
}

pub fn revoke(args: &RoleRevokeArgs) -> anyhow::Result<Verdict> {
    let body = json!({"principal": args.principal, "role": args.role, "reason": args.reason});
    send(
        &args.server,
        reqwest::Method::POST,
        &format!(
            "/v1/admin/tenants/{}/roles/revoke",
            segment("--tenant", &args.tenant)?
        ),
        Some(body),
    )
}

pub fn status(args: &PrincipalStatusArgs, status: &str) -> anyhow::Result<Verdict> {
    let body = json!({"principal": args.principal, "status": status});
    send(
        &args.server,
        reqwest::Method::POST,
        &format!(
            "/v1/admin/tenants/{}/principals/status",
            segment("--tenant", &args.tenant)?
        ),
        Some(body),
    )
}

/// `warden revoke token|session|subject|client|key`.
pub fn revoke_access(command: &RevokeCommand) -> anyhow::Result<Verdict> {
    let (kind, issuer, value, common) = match command {
        RevokeCommand::Token(a) => ("token", Some(&a.issuer), &a.jti, &a.common),
        RevokeCommand::Session(a) => ("session", Some(&a.issuer), &a.sid, &a.common),
        RevokeCommand::Subject(a) => ("subject", Some(&a.issuer), &a.sub, &a.common),
        RevokeCommand::Client(a) => ("client", None, &a.id, &a.common),
        RevokeCommand::Key(a) => {
            let key = a
                .kid
                .as_ref()
                .or(a.thumbprint.as_ref())
                .ok_or_else(|| anyhow::anyhow!("give --kid or --thumbprint"))?;
            ("key", None, key, &a.common)
        }
    };
    let expires_at = match (&common.until, &common.ttl) {
        (Some(until), _) => Some(parse_rfc3339(until)?),
        (None, Some(ttl)) => {
            Some(unix_now().saturating_add(i64::try_from(parse_duration(ttl)?).unwrap_or(i64::MAX)))
        }
        (None, None) => None,
    };
    let mut body = json!({"kind": kind, "value": value, "reason": common.reason});
    if let Some(object) = body.as_object_mut() {
        if let Some(issuer) = issuer {
            object.insert("issuer".into(), json!(issuer));
        }
        if let Some(at) = expires_at {
            object.insert("expires_at".into(), json!(at));
        }
    }
    send(
        &common.server,
        reqwest::Method::POST,
        "/v1/admin/revocations",
        Some(body),
    )
}

/// `warden admin create`.
pub fn create(args: &AdminCreateArgs) -> anyhow::Result<Verdict> {
    let expires_in_seconds = args.expires_in.as_deref().map(parse_duration).transpose()?;
    let body = json!({
        "tenant": args.tenant,
        "label": args.label,
        "expires_in_seconds": expires_in_seconds,
    });
    send(
        &args.server,
        reqwest::Method::POST,
        "/v1/admin/credentials",
        Some(body),
    )
}

/// `warden admin list`.
pub fn list(args: &AdminListArgs) -> anyhow::Result<Verdict> {
    send(
        &args.server,
        reqwest::Method::GET,
        "/v1/admin/credentials",
        None,
    )
}

/// `warden admin rotate ID`.
pub fn rotate(args: &AdminRotateArgs) -> anyhow::Result<Verdict> {
    send(
        &args.server,
        reqwest::Method::POST,
        &format!(
            "/v1/admin/credentials/{}/rotate",
            credential_segment(&args.id)?
        ),
        Some(json!({})),
    )
}

/// `warden admin revoke ID --reason R [--force]`.
pub fn revoke_credential(args: &AdminRevokeArgs) -> anyhow::Result<Verdict> {
    send(
        &args.server,
        reqwest::Method::POST,
        &format!(
            "/v1/admin/credentials/{}/revoke",
            credential_segment(&args.id)?
        ),
        Some(json!({"reason": args.reason, "force": args.force})),
    )
}

/// `warden revocations list`.
pub fn list_revocations(args: &RevocationsListArgs) -> anyhow::Result<Verdict> {
    send(
        &args.server,
        reqwest::Method::GET,
        &format!("/v1/admin/revocations?limit={}", args.limit),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_times_parse() {
        assert_eq!(parse_duration("90s").unwrap(), 90);
        assert_eq!(parse_duration("1h").unwrap(), 3600);
        assert_eq!(parse_duration("7d").unwrap(), 604_800);
        assert!(parse_duration("1w").is_err());
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(
            parse_rfc3339("2026-12-01T18:00:00Z").unwrap(),
            1_796_148_000
        );
        assert_eq!(
            parse_rfc3339("2026-12-01T20:00:00+02:00").unwrap(),
            1_796_148_000
        );
        assert!(parse_rfc3339("yesterday").is_err());
    }
}
