//! Issue #22 review: the operator's controls attacked. A tenant credential reaching other
//! credentials, racing revocations of the last credentials for all tenants, admin and token
//! paths spelled to slip past the per-path limits, failed authentications that must (and must
//! not) count, concurrency against the failed-authentication limit, client certificates that
//! must not make a PEP, and the TLS handshake slots. Real servers on 127.0.0.1 (and other
//! loopback addresses as other clients), real stores.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::operator_controls::{Pki, evaluation, start_with_cert_peps, tls_client};
use crate::support::{
    ADMIN_SECRET, PEP_SECRET, SCOPED_ADMIN_SECRET, Setup, TestServer, now, servers_with_a_store,
    user_token,
};

fn address_of(server: &TestServer) -> SocketAddr {
    server.server.as_ref().unwrap().address()
}

/// A client whose connections come from `local` (any 127.0.0.0/8 address is loopback).
fn client_from(local: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(local.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// Sends `target` byte for byte (no client-side normalisation of `..`, `//` or `%xx`);
/// returns the status and the body.
async fn raw_request(
    address: SocketAddr,
    method: &str,
    target: &str,
    headers: &str,
) -> (u16, String) {
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: 0\r\n{headers}\r\n"
    );
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let text = String::from_utf8_lossy(&answer).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
        (status, body)
    })
    .await
    .unwrap()
}

/// A tenant credential spelling another credential's id in every way it can: never 2xx, and
/// the credential for all tenants keeps working.
#[tokio::test]
async fn a_tenant_credential_cannot_rotate_or_revoke_another_by_spelling_its_id() {
    for (backend, server) in servers_with_a_store().await {
        for (path, body) in [
            ("/v1/admin/credentials/adm_test/rotate", json!({})),
            (
                "/v1/admin/credentials/adm_test/revoke",
                json!({"reason": "takeover", "force": true}),
            ),
            (
                "/v1/admin/credentials/%61dm_test/revoke",
                json!({"reason": "takeover", "force": true}),
            ),
            (
                "/v1/admin/credentials/adm_globex%2F..%2Fadm_test/revoke",
                json!({"reason": "takeover", "force": true}),
            ),
            ("/v1/admin/credentials/ADM_GLOBEX/rotate", json!({})),
            ("/v1/admin/credentials/adm_globex%20/rotate", json!({})),
            ("/v1/admin/credentials/adm_globex%00/rotate", json!({})),
            ("/v1/admin/credentials", json!({})),
            ("/v1/admin/credentials", json!({"tenant": "globex"})),
        ] {
            let (status, answer) = server
                .admin(Method::POST, path, Some(SCOPED_ADMIN_SECRET), Some(&body))
                .await;
            assert_eq!(status, 403, "{backend}: {path} {body}: {answer}");
        }
        let (status, _) = server
            .admin(
                Method::GET,
                "/v1/admin/credentials",
                Some(ADMIN_SECRET),
                None,
            )
            .await;
        assert_eq!(
            status, 200,
            "{backend}: the credential for all tenants was touched"
        );
    }
}

/// An expired credential stays dead: rotating it (which would hand out a working secret) and
/// revoking it are 404, and its secret never authenticates again.
#[tokio::test]
async fn an_expired_credential_is_not_rotated_back_to_life() {
    for (backend, server) in servers_with_a_store().await {
        let store = server
            .server
            .as_ref()
            .unwrap()
            .state()
            .store
            .clone()
            .unwrap();
        let (id, secret, digest_hex) = warden_issuer::credentials::new_admin_credential().unwrap();
        store
            .create_admin_credential(
                &warden_store::NewAdminCredential {
                    credential: warden_store::AdminCredential {
                        id: id.clone(),
                        digest_hex,
                        tenant_scope: None,
                    },
                    label: String::new(),
                    expires_at: Some(now() - 1),
                },
                "test",
                now() - 100,
            )
            .await
            .unwrap();
        let (status, answer) = server
            .admin(
                Method::POST,
                &format!("/v1/admin/credentials/{id}/rotate"),
                Some(ADMIN_SECRET),
                Some(&json!({})),
            )
            .await;
        assert_eq!(status, 404, "{backend}: {answer}");
        assert!(answer.get("secret").is_none(), "{backend}: {answer}");
        let (status, _) = server
            .admin(Method::GET, "/v1/admin/credentials", Some(&secret), None)
            .await;
        assert_eq!(status, 401, "{backend}");
    }
}

/// Two revocations racing for the last two credentials for all tenants, each made with the
/// other credential: at most one goes through, and a credential for all tenants is left.
#[tokio::test]
async fn racing_revocations_never_leave_no_credential_for_all_tenants() {
    for (backend, server) in servers_with_a_store().await {
        let mut current = ("adm_test".to_owned(), ADMIN_SECRET.to_owned());
        for round in 0..8 {
            let (status, created) = server
                .admin(
                    Method::POST,
                    "/v1/admin/credentials",
                    Some(&current.1),
                    Some(&json!({"label": format!("round {round}")})),
                )
                .await;
            assert_eq!(status, 201, "{backend}: {created}");
            let other = (
                created["id"].as_str().unwrap().to_owned(),
                created["secret"].as_str().unwrap().to_owned(),
            );
            let body = json!({"reason": "race"});
            let current_path = format!("/v1/admin/credentials/{}/revoke", current.0);
            let other_path = format!("/v1/admin/credentials/{}/revoke", other.0);
            let revoke_current =
                server.admin(Method::POST, &current_path, Some(&other.1), Some(&body));
            let revoke_other =
                server.admin(Method::POST, &other_path, Some(&current.1), Some(&body));
            let ((first, a), (second, b)) = tokio::join!(revoke_current, revoke_other);
            assert!(
                !(first == 200 && second == 200),
                "{backend} round {round}: both revocations went through: {a} {b}"
            );
            let mut survivors = Vec::new();
            for candidate in [&current, &other] {
                let (status, _) = server
                    .admin(
                        Method::GET,
                        "/v1/admin/credentials",
                        Some(&candidate.1),
                        None,
                    )
                    .await;
                if status == 200 {
                    survivors.push(candidate.clone());
                }
            }
            assert_eq!(
                survivors.len(),
                1,
                "{backend} round {round}: {first} {a} / {second} {b}"
            );
            current = survivors.remove(0);
        }
    }
}

/// With the admin bucket used up, an admin path spelled otherwise (double slashes, `%xx`, dot
/// segments, a trailing slash, `/.well-known/..`) must not reach an admin handler; a token
/// path spelled otherwise must not reach the token handler.
#[tokio::test]
async fn paths_spelled_otherwise_do_not_escape_the_per_path_limits() {
    let server = TestServer::start(Setup {
        storage: Some(String::new()),
        extra: "[rate_limits]\nadmin_per_minute = 2\ntoken_per_minute = 2\nfailed_auth_per_minute = 1000\n",
        ..Setup::default()
    })
    .await;
    let address = address_of(&server);
    let bearer = format!("Authorization: Bearer {ADMIN_SECRET}\r\n");
    for _ in 0..2 {
        let (status, body) = raw_request(address, "GET", "/v1/admin/credentials", &bearer).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, _) = raw_request(address, "GET", "/v1/admin/credentials", &bearer).await;
    assert_eq!(status, 429);
    for target in [
        "//v1/admin/credentials",
        "/v1//admin/credentials",
        "/v1/%61dmin/credentials",
        "/v1/admin/%63redentials",
        "/v1/admin/credentials/",
        "/v1/admin/./credentials",
        "/v1/x/../admin/credentials",
        "/.well-known/../v1/admin/credentials",
        "/healthz/../v1/admin/credentials",
        "/V1/admin/credentials",
        "/v1/admin/credentials;x",
        "/v1/admin/credentials%3Fx",
        "http://example.test/v1/admin/credentials",
        "/v1/decisions/../admin/credentials",
    ] {
        let (status, body) = raw_request(address, "GET", target, &bearer).await;
        assert_ne!(
            status, 200,
            "{target} reached the admin API past its limit: {body}"
        );
        assert!(
            !body.contains("\"credentials\""),
            "{target} answered the list: {body}"
        );
    }
    // The token endpoint (without [tokens] it answers 404 "issues no tokens"): its bucket is
    // spent; a path spelled otherwise gets the fallback, never the handler.
    for _ in 0..2 {
        raw_request(address, "POST", "/oauth2/token", "").await;
    }
    let (status, _) = raw_request(address, "POST", "/oauth2/token", "").await;
    assert_eq!(status, 429);
    for target in [
        "/oauth2/token/",
        "//oauth2/token",
        "/oauth2//token",
        "/oauth2/%74oken",
        "/oauth2/./token",
        "/x/../oauth2/token",
    ] {
        let (status, body) = raw_request(address, "POST", target, "").await;
        assert!(
            status == 429 || body.contains("no such endpoint"),
            "{target} reached the token handler past its limit: {status} {body}"
        );
    }
}

/// A server with `[tokens]` (so the OAuth endpoints authenticate clients), `/metrics` behind a
/// credential, and `failed_auth_per_minute = failures`.
async fn server_for_failures(failures: u32) -> TestServer {
    let (_key_file, tokens) = crate::support::tokens_section("http://127.0.0.1:8180");
    let extra = format!(
        "{tokens}[metrics]\ncredentials = [\"sha256:{}\"]\n[rate_limits]\nfailed_auth_per_minute = {failures}\n",
        hex::encode(Sha256::digest(b"the-metrics-credential"))
    );
    TestServer::start(Setup {
        storage: Some(String::new()),
        extra: Box::leak(extra.into_boxed_str()),
        ..Setup::default()
    })
    .await
}

/// Every way a caller can fail to authenticate itself counts: past the bucket, even the right
/// admin credential from that address is refused. Each case from its own loopback address.
#[tokio::test]
async fn every_failed_caller_authentication_counts() {
    let server = server_for_failures(2).await;
    let pep_subject = json!({"subject": {"type": "User", "id": "acme/alice"}, "action": "read", "resource_type": "Document"});
    type Attempt = Box<dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder>;
    let base = server.base.clone();
    let url = move |path: &str| format!("{base}{path}");
    let cases: Vec<(&str, Attempt)> = vec![
        ("filter as a PEP", {
            let url = url.clone();
            let body = pep_subject.clone();
            Box::new(move |client| {
                client
                    .post(url("/v1/filter"))
                    .bearer_auth("pep-guess")
                    .json(&body)
            })
        }),
        ("search as a PEP", {
            let url = url.clone();
            Box::new(move |client| {
                client
                    .post(url("/access/v1/search/subject"))
                    .bearer_auth("pep-guess")
                    .json(&json!({}))
            })
        }),
        ("metrics", {
            let url = url.clone();
            Box::new(move |client| client.get(url("/metrics")).bearer_auth("metrics-guess"))
        }),
        ("a recorded decision", {
            let url = url.clone();
            Box::new(move |client| {
                client
                    .get(url("/v1/decisions/0190b1c2-0000-7000-8000-000000000000"))
                    .bearer_auth("wdn_admin_guess")
            })
        }),
        ("token, client_secret_post", {
            let url = url.clone();
            Box::new(move |client| {
                client
                    .post(url("/oauth2/token"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body("grant_type=client_credentials&client_id=sa_guess&client_secret=guess")
            })
        }),
        ("token, Basic", {
            let url = url.clone();
            Box::new(move |client| {
                client
                    .post(url("/oauth2/token"))
                    .basic_auth("sa_guess", Some("guess"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body("grant_type=client_credentials")
            })
        }),
        ("revoke, Basic", {
            let url = url.clone();
            Box::new(move |client| {
                client
                    .post(url("/oauth2/revoke"))
                    .basic_auth("sa_guess", Some("guess"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body("token=x")
            })
        }),
    ];
    for (index, (case, attempt)) in cases.iter().enumerate() {
        let client = client_from(&format!("127.0.0.{}", 10 + index));
        for round in 0..2 {
            let status = attempt(&client).send().await.unwrap().status().as_u16();
            assert_eq!(status, 401, "{case}: attempt {round}");
        }
        let third = attempt(&client).send().await.unwrap();
        assert_eq!(
            third.status(),
            429,
            "{case}: the failure that finds the bucket empty is refused, not checked"
        );
        assert!(third.headers().contains_key("retry-after"), "{case}");
        let response = client
            .get(server.url("/v1/admin/credentials"))
            .bearer_auth(ADMIN_SECRET)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            429,
            "{case}: three failures did not lock the address out"
        );
    }
}

/// What is not a caller failing to authenticate is never counted: end users' tokens (on each
/// entry point that takes one), a forwarded token a PEP names, a tenant credential's 403.
#[tokio::test]
async fn end_user_tokens_and_authorization_refusals_are_not_counted() {
    let server = server_for_failures(2).await;
    let check = json!({"action": "read", "resource": {"type": "Document", "id": "acme/roadmap"}});
    let forwarded = json!({
        "subject": {"type": "User", "id": "acme/alice", "properties": {"token": {"iss": "https://idp.test", "jti": "revoked-or-not"}}},
        "action": {"name": "read"},
        "resource": {"type": "Document", "id": "acme/roadmap"}
    });
    let token = user_token(&server, "alice", "acme", &["admin"]);
    let forged = format!("{}x", &token[..token.len() - 1]);
    let client = client_from("127.0.0.60");
    for _ in 0..6 {
        for (path, bearer, body) in [
            ("/v1/check", forged.as_str(), check.clone()),
            (
                "/v1/checks",
                "not-a-token",
                json!({"checks": [check.clone()]}),
            ),
            ("/v1/authenticate", "not-a-token", json!({})),
            (
                "/v1/filter",
                "not-a-token",
                json!({"action": "read", "resource_type": "Document"}),
            ),
            ("/access/v1/evaluation", PEP_SECRET, forwarded.clone()),
            (
                "/v1/admin/tenants/acme/entities",
                SCOPED_ADMIN_SECRET,
                json!({"entities": []}),
            ),
        ] {
            let status = client
                .post(server.url(path))
                .bearer_auth(bearer)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16();
            assert_ne!(status, 429, "{path}");
        }
    }
    let response = client
        .get(server.url("/v1/admin/credentials"))
        .bearer_auth(ADMIN_SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        200,
        "refusals that are not failed authentications counted"
    );
}

/// A locked-out address is let back once `Retry-After` has passed, and not before.
#[tokio::test]
async fn a_locked_out_address_is_let_back_after_retry_after() {
    let server = TestServer::start(Setup {
        storage: Some(String::new()),
        extra: "[rate_limits]\nfailed_auth_per_minute = 30\n",
        ..Setup::default()
    })
    .await;
    let client = client_from("127.0.0.70");
    let mut retry_after = None;
    for _ in 0..40 {
        let response = client
            .get(server.url("/v1/admin/credentials"))
            .bearer_auth("wdn_admin_guess")
            .send()
            .await
            .unwrap();
        if response.status() == 429 {
            retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse::<u64>().ok());
            break;
        }
    }
    let retry_after = retry_after.expect("locked out with a Retry-After");
    assert!(
        (1..=2).contains(&retry_after),
        "{retry_after} (one cell is 2 s)"
    );
    tokio::time::sleep(Duration::from_millis(retry_after * 1000 + 100)).await;
    let response = client
        .get(server.url("/v1/admin/credentials"))
        .bearer_auth(ADMIN_SECRET)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "still refused after Retry-After");
}

/// Sends `count` guesses at once from `local` (each on its own connection, each request's
/// last byte held back until all are written, so they arrive together); returns how many were
/// answered 401 (checked) and how many 429.
async fn guesses_at_once(
    address: SocketAddr,
    local: &str,
    count: usize,
    request: impl Fn(usize) -> String,
) -> (usize, usize) {
    let local: IpAddr = local.parse().unwrap();
    let requests: Vec<String> = (0..count).map(request).collect();
    let mut connected = Vec::new();
    for _ in 0..count {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(local, 0)).unwrap();
        let stream = socket.connect(address).await.unwrap().into_std().unwrap();
        stream.set_nonblocking(false).unwrap();
        connected.push(stream);
    }
    tokio::task::spawn_blocking(move || {
        let mut streams = Vec::new();
        for (mut stream, request) in connected.into_iter().zip(&requests) {
            stream.set_nodelay(true).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let bytes = request.as_bytes();
            stream.write_all(&bytes[..bytes.len() - 1]).unwrap();
            streams.push(stream);
        }
        std::thread::sleep(Duration::from_millis(200));
        for (stream, request) in streams.iter_mut().zip(&requests) {
            stream
                .write_all(&request.as_bytes()[request.len() - 1..])
                .unwrap();
        }
        let (mut answered, mut refused) = (0, 0);
        for mut stream in streams {
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
            let text = String::from_utf8_lossy(&answer);
            match text.split_whitespace().nth(1) {
                Some("401") => answered += 1,
                Some("429") => refused += 1,
                other => panic!("unexpected answer {other:?}: {text}"),
            }
        }
        (answered, refused)
    })
    .await
    .unwrap()
}

/// Many guesses sent at once must not outrun the failed-authentication limit: the bucket
/// allows 4 and the 5th failure locks the address out, so at most 5 guesses may be checked
/// and answered 401, however they are timed (now at most 4: the failure that finds the bucket
/// empty is answered 429). Admin credentials (checked against the store, an
/// await during which the other guesses pass the lock-out check) and PEP credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_do_not_outrun_the_failed_authentication_limit() {
    let server = TestServer::start(Setup {
        storage: Some(String::new()),
        extra: "[rate_limits]\nfailed_auth_per_minute = 4\n",
        ..Setup::default()
    })
    .await;
    let address = address_of(&server);
    let admin = guesses_at_once(address, "127.0.0.80", 64, |guess| {
        format!(
            "GET /v1/admin/credentials HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nAuthorization: Bearer wdn_admin_guess-{guess}\r\n\r\n"
        )
    })
    .await;
    let body = evaluation().to_string();
    let pep = guesses_at_once(address, "127.0.0.81", 64, |guess| {
        format!(
            "POST /access/v1/evaluation HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nAuthorization: Bearer pep-guess-{guess}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    })
    .await;
    eprintln!("admin (answered, refused) {admin:?}; pep {pep:?}");
    assert!(
        admin.0 <= 5 && pep.0 <= 5,
        "guesses checked and answered 401 (the limit allows 5): admin {} of 64, PEP {} of 64",
        admin.0,
        pep.0
    );
}

/// A TLS server whose PEPs may authenticate by client certificates of `clients`, reloading
/// its files every second; returns the server (base on https) and the directory of its files.
async fn certificate_pep_server(
    pki: &Pki,
    clients: &Pki,
    client_auth: &str,
) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (certificate, key) = pki.leaf("warden.test", false);
    std::fs::write(dir.path().join("server.pem"), &certificate).unwrap();
    std::fs::write(dir.path().join("server.key"), &key).unwrap();
    std::fs::write(dir.path().join("clients-ca.pem"), &clients.ca_pem).unwrap();
    let extra = format!(
        "[server.tls]\ncert_file = {:?}\nkey_file = {:?}\nclient_ca_file = {:?}\nclient_auth = {client_auth:?}\nreload_interval_seconds = 1\n",
        dir.path().join("server.pem"),
        dir.path().join("server.key"),
        dir.path().join("clients-ca.pem"),
    );
    let mut server = start_with_cert_peps(&extra).await;
    server.base = server.base.replace("http://", "https://");
    (server, dir)
}

/// A client certificate must chain to the client CA *for client use*: one from that CA made
/// for a server, an expired one, and the CA's own certificate are no PEP; no header a client
/// sends stands in for a certificate.
#[tokio::test]
async fn only_a_valid_client_certificate_makes_a_pep() {
    let pki = Pki::new("Warden test CA");
    let clients = Pki::new("PEP CA");
    let (server, _dir) = certificate_pep_server(&pki, &clients, "optional").await;
    let url = server.url("/access/v1/evaluation");

    let for_a_server = clients.leaf("not-a-client", false);
    let expired = {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "gateway-old");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        let certificate = params.signed_by(&key, &clients.ca).unwrap();
        (certificate.pem(), key.serialize_pem())
    };
    for (what, identity) in [
        ("a server certificate", for_a_server),
        ("an expired certificate", expired),
    ] {
        let client = tls_client(&pki.ca_pem, Some(&identity));
        match client.post(&url).json(&evaluation()).send().await {
            Err(_) => {}
            Ok(response) => assert_eq!(response.status(), 401, "{what} made a PEP"),
        }
    }

    let anonymous = tls_client(&pki.ca_pem, None);
    for (name, value) in [
        ("x-client-cert", "anything"),
        ("x-ssl-client-verify", "SUCCESS"),
        (
            "x-forwarded-client-cert",
            "Hash=00;Subject=\"CN=gateway-1\"",
        ),
        ("ssl-client-cert", "-----BEGIN CERTIFICATE-----"),
    ] {
        let response = anonymous
            .post(&url)
            .header(name, value)
            .json(&evaluation())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{name} stood in for a certificate");
    }
}

/// One address opening connections and saying nothing must not take every handshake slot:
/// a client from another address still gets its answer.
#[tokio::test]
async fn one_silent_address_does_not_take_every_handshake_slot() {
    let pki = Pki::new("Warden test CA");
    let clients = Pki::new("PEP CA");
    let (server, _dir) = certificate_pep_server(&pki, &clients, "optional").await;
    let address = address_of(&server);
    let mut silent = Vec::new();
    for _ in 0..1100 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        silent.push(socket.connect(address).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap()])
        .local_address("127.0.0.90".parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let answer = client.get(server.url("/healthz")).send().await;
    assert!(
        answer
            .as_ref()
            .is_ok_and(|response| response.status() == 200),
        "a client from another address got no answer while one address held the handshakes: {answer:?}"
    );
    drop(silent);
}

/// A PEP authenticated by a certificate stays authenticated only while its CA is trusted:
/// after the client CA file is replaced (and reloaded), requests on a connection opened
/// before are no longer a PEP.
#[tokio::test]
async fn a_removed_client_ca_no_longer_authenticates_open_connections() {
    let pki = Pki::new("Warden test CA");
    let clients = Pki::new("PEP CA");
    let (server, dir) = certificate_pep_server(&pki, &clients, "optional").await;
    let url = server.url("/access/v1/evaluation");
    let gateway = tls_client(&pki.ca_pem, Some(&clients.leaf("gateway-1", true)));
    let response = gateway.post(&url).json(&evaluation()).send().await.unwrap();
    assert_eq!(response.status(), 200);

    // Renewing the server's own certificate leaves the PEPs' open connections alone.
    let (certificate, key) = pki.leaf("warden.test", false);
    std::fs::write(dir.path().join("server.key"), &key).unwrap();
    std::fs::write(dir.path().join("server.pem"), &certificate).unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let response = gateway.post(&url).json(&evaluation()).send().await.unwrap();
    assert_eq!(
        response.status(),
        200,
        "a server certificate renewal dropped the PEP identity"
    );

    // The PEP CA is compromised: the operator replaces it.
    let replacement = Pki::new("New PEP CA");
    std::fs::write(dir.path().join("clients-ca.pem.new"), &replacement.ca_pem).unwrap();
    std::fs::rename(
        dir.path().join("clients-ca.pem.new"),
        dir.path().join("clients-ca.pem"),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // A new connection with the old certificate is refused in the handshake …
    let fresh = tls_client(&pki.ca_pem, Some(&clients.leaf("gateway-2", true)));
    assert!(fresh.post(&url).json(&evaluation()).send().await.is_err());
    // … and the connection the gateway kept open must not keep its PEP identity.
    let response = gateway.post(&url).json(&evaluation()).send().await.unwrap();
    assert_eq!(
        response.status(),
        401,
        "a certificate whose CA was removed still authenticates on its open connection"
    );
}

/// An admin mistake: a secret pasted where its credential's id goes (`warden admin revoke
/// wdn_admin_…`). The call fails, but nothing may keep the secret: the decision log is
/// append-only and signed, so a secret written there cannot be scrubbed.
#[tokio::test]
async fn a_secret_pasted_as_a_credential_id_is_not_written_to_the_decision_log() {
    let server = TestServer::start(Setup {
        storage: Some(String::new()),
        extra: "[audit]\ndir = \"audit\"\n",
        ..Setup::default()
    })
    .await;
    let (status, created) = server
        .admin(
            Method::POST,
            "/v1/admin/credentials",
            Some(ADMIN_SECRET),
            Some(&json!({"tenant": "acme", "label": "ci"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let pasted = created["secret"].as_str().unwrap().to_owned();
    for verb in ["revoke", "rotate"] {
        let (status, _) = server
            .admin(
                Method::POST,
                &format!("/v1/admin/credentials/{pasted}/{verb}"),
                Some(ADMIN_SECRET),
                Some(&json!({"reason": "leaked"})),
            )
            .await;
        assert!((400..500).contains(&status), "{verb}: {status}");
    }
    let dir = server.dir.path().join("audit");
    let TestServer {
        server: running, ..
    } = server;
    running
        .unwrap()
        .shutdown(Duration::from_secs(5))
        .await
        .unwrap();
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap_or_default();
        if String::from_utf8_lossy(&bytes).contains(&pasted) {
            found.push(path.display().to_string());
        }
    }
    assert!(found.is_empty(), "the pasted secret is in {found:?}");
}

/// The last credential for all tenants is not revoked by accident, and one that expires in a
/// moment is no safety net: revoking the only lasting one while the other all-tenants
/// credential expires within a minute locks every operator out a minute later.
#[tokio::test]
async fn a_credential_about_to_expire_does_not_count_as_the_one_left() {
    for (backend, server) in servers_with_a_store().await {
        let (status, temporary) = server
            .admin(
                Method::POST,
                "/v1/admin/credentials",
                Some(ADMIN_SECRET),
                Some(&json!({"label": "contractor", "expires_in_seconds": 30})),
            )
            .await;
        assert_eq!(status, 201, "{backend}: {temporary}");
        let (status, answer) = server
            .admin(
                Method::POST,
                "/v1/admin/credentials/adm_test/revoke",
                Some(temporary["secret"].as_str().unwrap()),
                Some(&json!({"reason": "tidying up"})),
            )
            .await;
        assert_eq!(
            status, 409,
            "{backend}: the lasting credential was revoked with only a 30-second one left: {answer}"
        );
    }
}

/// A role given to a shared entity (a role within a role holds in every tenant) is for a
/// credential for all tenants to grant and to revoke: a tenant's credential gets 403 for both,
/// and the grant stands. A grant for 0 seconds (lapsed when made) is refused.
#[tokio::test]
async fn a_tenant_credential_cannot_revoke_a_shared_entitys_role() {
    for (backend, server) in servers_with_a_store().await {
        let grant = json!({"principal": "Role::\"admin\"", "role": "Role::\"viewer\"", "reason": "nesting"});
        let path = "/v1/admin/tenants/globex/roles";
        let (status, answer) = server
            .admin(
                Method::POST,
                &format!("{path}/grant"),
                Some(SCOPED_ADMIN_SECRET),
                Some(&grant),
            )
            .await;
        assert_eq!(status, 403, "{backend}: scoped grant: {answer}");
        let (status, answer) = server
            .admin(
                Method::POST,
                &format!("{path}/grant"),
                Some(ADMIN_SECRET),
                Some(&grant),
            )
            .await;
        assert_eq!(status, 200, "{backend}: grant for all tenants: {answer}");
        let (status, answer) = server
            .admin(
                Method::POST,
                &format!("{path}/revoke"),
                Some(SCOPED_ADMIN_SECRET),
                Some(&grant),
            )
            .await;
        assert_eq!(status, 403, "{backend}: scoped revoke: {answer}");
        let (status, answer) = server
            .admin(
                Method::POST,
                &format!("{path}/revoke"),
                Some(ADMIN_SECRET),
                Some(&grant),
            )
            .await;
        assert_eq!(
            status, 200,
            "{backend}: the grant did not stand after the refused revoke: {answer}"
        );

        let lapsed = json!({"principal": "User::\"carol\"", "role": "Role::\"viewer\"", "reason": "x", "ttl_seconds": 0});
        let (status, answer) = server
            .admin(
                Method::POST,
                "/v1/admin/tenants/acme/roles/grant",
                Some(ADMIN_SECRET),
                Some(&lapsed),
            )
            .await;
        assert_eq!(status, 400, "{backend}: ttl_seconds 0: {answer}");
        assert!(answer.to_string().contains("ttl_seconds"), "{answer}");
    }
}
