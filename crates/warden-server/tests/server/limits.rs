//! Issue #22: each limit has a test. Body size (decisions, filters, the token endpoint, bulk
//! imports), token size, batch size, header size and count, JSON nesting depth and the search
//! page size: over the limit is a 4xx with a reason, nothing changes, and the server answers
//! the next request.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    ADMIN_SECRET, PEP_SECRET, Setup, TestServer, servers_with_a_store, user_token,
};

async fn still_serves(server: &TestServer) {
    let (status, _) = server.get("/healthz").await;
    assert_eq!(status, 200, "the server stopped answering");
    let (status, body) = server
        .pep_post(
            "/access/v1/evaluation",
            &json!({"subject": {"type": "User", "id": "acme/carol"}, "action": {"name": "read"}, "resource": {"type": "Document", "id": "acme/roadmap"}}),
        )
        .await;
    assert_eq!((status, &body["decision"]), (200, &json!(true)), "{body}");
}

#[tokio::test]
async fn bodies_over_max_body_bytes_are_413_on_every_endpoint() {
    let server = TestServer::start(Setup::default()).await;
    let padding = "x".repeat(20_000); // this server's max_body_bytes is 16384
    let token = user_token(&server, "carol", "acme", &[]);
    for (path, bearer) in [
        ("/access/v1/evaluation", PEP_SECRET.to_owned()),
        ("/access/v1/evaluations", PEP_SECRET.to_owned()),
        ("/access/v1/search/resource", PEP_SECRET.to_owned()),
        ("/v1/check", token.clone()),
        ("/v1/checks", token.clone()),
        ("/v1/filter", token.clone()),
    ] {
        let response = server
            .client
            .post(server.url(path))
            .bearer_auth(&bearer)
            .json(&json!({"padding": padding}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 413, "{path}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["status"], 413, "{path}: {problem}");
    }
    let response = server
        .client
        .post(server.url("/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=client_credentials&padding={padding}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413, "/oauth2/token");
    still_serves(&server).await;
}

#[tokio::test]
async fn a_bulk_import_over_max_import_bytes_is_413_and_writes_nothing() {
    for (backend, server) in servers_with_a_store().await {
        // Default max_import_bytes is 8 MiB.
        let users: Vec<Value> = (0..80_000)
            .map(|n| json!({"uid": {"type": "User", "id": format!("big{n}")}, "attrs": {"email": format!("big{n}@acme.example.with.a.long.domain.name")}, "parents": []}))
            .collect();
        let body = json!(users);
        assert!(
            body.to_string().len() > 8 * 1024 * 1024,
            "the body is not over the limit"
        );
        let (status, answer) = server
            .admin(
                Method::POST,
                "/v1/admin/tenants/acme/entities",
                Some(ADMIN_SECRET),
                Some(&body),
            )
            .await;
        assert_eq!(status, 413, "{backend}: {answer}");
        let (status, listed) = server
            .admin(
                Method::GET,
                "/v1/admin/tenants/acme/entities?limit=10",
                Some(ADMIN_SECRET),
                None,
            )
            .await;
        assert_eq!(status, 200, "{backend}: {listed}");
        assert!(
            !listed.to_string().contains("big0"),
            "{backend}: a refused import wrote: {listed}"
        );
        still_serves(&server).await;
    }
}

#[tokio::test]
async fn a_token_over_max_token_bytes_is_refused_before_it_is_parsed() {
    let server = TestServer::start(Setup::default()).await;
    // A well-formed header and payload, padded past the default limit (8 KiB).
    let huge = format!("eyJhbGciOiJSUzI1NiJ9.{}.sig", "A".repeat(20_000));
    let response = server
        .client
        .post(server.url("/v1/check"))
        .bearer_auth(&huge)
        .json(&json!({"action": "read", "resource": {"type": "Document", "id": "acme/roadmap"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["reason"], "token_too_large", "{body}");
    still_serves(&server).await;
}

#[tokio::test]
async fn batches_over_max_batch_size_are_refused_whole() {
    let server = TestServer::start(Setup::default()).await;
    let token = user_token(&server, "carol", "acme", &[]);
    let checks: Vec<Value> = (0..51)
        .map(|_| json!({"action": "read", "resource": {"type": "Document", "id": "acme/roadmap"}}))
        .collect();
    let response = server
        .client
        .post(server.url("/v1/checks"))
        .bearer_auth(&token)
        .json(&json!({"checks": checks}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("50"), "{body}");
    // Exactly the limit is fine.
    let response = server
        .client
        .post(server.url("/v1/checks"))
        .bearer_auth(&token)
        .json(&json!({"checks": checks[..50]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    still_serves(&server).await;
}

#[tokio::test]
async fn oversized_and_too_many_headers_are_refused_and_the_server_survives() {
    let server = TestServer::start(Setup::default()).await;
    let response = server
        .client
        .get(server.url("/healthz"))
        .header("x-padding", "y".repeat(1024 * 1024))
        .send()
        .await;
    match response {
        Ok(response) => assert_eq!(response.status(), 431),
        Err(error) => assert!(
            error.is_request() || error.is_connect() || error.is_body(),
            "{error}"
        ),
    }
    let mut request = server.client.get(server.url("/healthz"));
    for n in 0..200 {
        request = request.header(format!("x-h{n}"), "v");
    }
    match request.send().await {
        Ok(response) => assert_eq!(response.status(), 431),
        Err(error) => assert!(error.is_request() || error.is_body(), "{error}"),
    }
    still_serves(&server).await;
}

#[tokio::test]
async fn deeply_nested_json_is_a_400_not_a_crash() {
    let server = TestServer::start(Setup::default()).await;
    let token = user_token(&server, "carol", "acme", &[]);
    let depth = 5000; // within the body limit, far past serde_json's recursion limit
    let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    for (path, bearer, body) in [
        (
            "/v1/check",
            token.clone(),
            format!(
                r#"{{"action": "read", "resource": {{"type": "Document", "id": "acme/roadmap"}}, "context": {{"deep": {nested}}}}}"#
            ),
        ),
        (
            "/access/v1/evaluation",
            PEP_SECRET.to_owned(),
            format!(
                r#"{{"subject": {{"type": "User", "id": "acme/carol"}}, "action": {{"name": "read"}}, "resource": {{"type": "Document", "id": "acme/roadmap"}}, "context": {nested}}}"#
            ),
        ),
    ] {
        assert!(body.len() < 16_384);
        let response = server
            .client
            .post(server.url(path))
            .bearer_auth(&bearer)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path}");
        let problem: Value = response.json().await.unwrap();
        assert!(
            problem["detail"].as_str().unwrap().contains("recursion"),
            "{path}: {problem}"
        );
    }
    still_serves(&server).await;
}

#[tokio::test]
async fn a_search_page_is_at_most_1000_results_whatever_the_limit_asked() {
    let server = TestServer::start(Setup {
        storage: Some(String::new()),
        ..Setup::default()
    })
    .await;
    let users: Vec<Value> = (0..1200)
        .map(|n| json!({"uid": {"type": "User", "id": format!("reader{n:04}")}, "attrs": {"email": format!("r{n}@acme.example")}, "parents": [{"type": "Role", "id": "viewer"}]}))
        .collect();
    let (status, answer) = server
        .admin(
            Method::POST,
            "/v1/admin/tenants/acme/entities",
            Some(ADMIN_SECRET),
            Some(&json!(users)),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let search = |limit: i64| {
        json!({"subject": {"type": "User"}, "action": {"name": "read"},
               "resource": {"type": "Document", "id": "acme/roadmap"},
               "page": {"limit": limit}})
    };
    let (status, page) = server
        .pep_post("/access/v1/search/subject", &search(5000))
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["results"].as_array().unwrap().len(), 1000);
    assert!(
        !page["page"]["next_token"].as_str().unwrap().is_empty(),
        "{}",
        page["page"]
    );
    let (status, page) = server
        .pep_post("/access/v1/search/subject", &search(0))
        .await;
    assert_eq!(status, 400, "a limit of 0 asks for nothing: {page}");
    assert!(
        page["detail"].as_str().unwrap().contains("page.limit"),
        "{page}"
    );
    still_serves(&server).await;
}

/// A body that is a JSON array where an object is read is refused, not read as the object's
/// fields in order (serde's sequence form of a struct): `["User", "acme/carol"]` is no subject.
#[tokio::test]
async fn a_json_array_where_an_object_is_read_is_a_400() {
    let server = TestServer::start(Setup::default()).await;
    let token = user_token(&server, "carol", "acme", &[]);
    for (path, bearer, body) in [
        (
            "/v1/check",
            token.clone(),
            r#"["read", {"type": "Document", "id": "acme/roadmap"}]"#,
        ),
        (
            "/access/v1/evaluation",
            PEP_SECRET.to_owned(),
            r#" [{"type": "User", "id": "acme/carol"}, {"name": "read"}, {"type": "Document", "id": "acme/roadmap"}]"#,
        ),
    ] {
        let response = server
            .client
            .post(server.url(path))
            .bearer_auth(&bearer)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path}");
        let problem: Value = response.json().await.unwrap();
        assert!(
            problem["detail"].as_str().unwrap().contains("JSON object"),
            "{path}: {problem}"
        );
    }
    still_serves(&server).await;
}

/// Reads from `stream` until the server closes it (EOF or reset), at most `within`; returns
/// what came, or `None` when the connection was still open at the end.
async fn read_until_closed(
    stream: &mut tokio::net::TcpStream,
    within: std::time::Duration,
) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt as _;
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(received),
            Ok(Ok(read)) => received.extend_from_slice(&buffer[..read]),
        }
    }
}

/// A client that sends its headers a little at a time and never finishes them (slowloris), or
/// keeps a connection idle, is disconnected after `server.header_read_timeout_ms`, and holds
/// nothing after.
#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    use tokio::io::AsyncWriteExt as _;
    let server = TestServer::start(Setup {
        server_extra: "header_read_timeout_ms = 400",
        ..Setup::default()
    })
    .await;
    let address = server.base.trim_start_matches("http://").to_owned();
    let started = std::time::Instant::now();
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: warden\r\n")
        .await
        .unwrap();
    let mut idle = tokio::net::TcpStream::connect(&address).await.unwrap();
    // Part of the HTTP/2 preface keeps hyper choosing a protocol, before any timer of its own:
    // one byte of it, and all but its last byte (issue #22 review).
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut one_byte = tokio::net::TcpStream::connect(&address).await.unwrap();
    one_byte.write_all(&preface[..1]).await.unwrap();
    let mut almost = tokio::net::TcpStream::connect(&address).await.unwrap();
    almost.write_all(&preface[..23]).await.unwrap();
    // One header line every 100 ms: each write is in time, the whole never is.
    let trickle = async {
        for n in 0..30 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            if slow
                .write_all(format!("X-Slow-{n}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    };
    trickle.await;
    let received = read_until_closed(&mut slow, std::time::Duration::from_secs(3))
        .await
        .expect("the slow client is still connected");
    assert!(
        !String::from_utf8_lossy(&received).contains("200 OK"),
        "an unfinished request was answered"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        read_until_closed(&mut idle, std::time::Duration::from_secs(3))
            .await
            .is_some(),
        "an idle connection is still open"
    );
    for (what, stream) in [
        ("one byte of the HTTP/2 preface", &mut one_byte),
        ("23 bytes of the HTTP/2 preface", &mut almost),
    ] {
        assert!(
            read_until_closed(stream, std::time::Duration::from_secs(3))
                .await
                .is_some(),
            "{what}: still open"
        );
    }
    still_serves(&server).await;
}

/// One address may hold `server.max_connections_per_address` connections open at once: the
/// next is closed unanswered, other clients are served, and a closed connection gives its place
/// back.
#[tokio::test]
async fn connections_past_the_per_address_cap_are_closed() {
    use tokio::io::AsyncWriteExt as _;
    let server = TestServer::start(Setup {
        server_extra: "max_connections_per_address = 3",
        ..Setup::default()
    })
    .await;
    let address = server.base.trim_start_matches("http://").to_owned();
    let request = b"GET /healthz HTTP/1.1\r\nHost: warden\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut head = [0u8; 12];
        tokio::io::AsyncReadExt::read_exact(&mut stream, &mut head)
            .await
            .unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        held.push(stream);
    }
    let mut fourth = tokio::net::TcpStream::connect(&address).await.unwrap();
    let _ = fourth.write_all(request).await;
    let received = read_until_closed(&mut fourth, std::time::Duration::from_secs(3))
        .await
        .expect("the fourth connection was kept open");
    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );

    drop(held.pop());
    let mut served = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let mut again = tokio::net::TcpStream::connect(&address).await.unwrap();
        if again.write_all(request).await.is_err() {
            continue;
        }
        let mut head = [0u8; 12];
        if tokio::io::AsyncReadExt::read_exact(&mut again, &mut head)
            .await
            .is_ok()
        {
            assert_eq!(&head, b"HTTP/1.1 200");
            served = true;
            break;
        }
    }
    assert!(served, "a closed connection did not give its place back");
}

/// A client that pipelines requests and never reads the answers is disconnected once a write
/// has made no progress for `server.header_read_timeout_ms`, instead of holding its connection
/// (and the answers in flight) for ever (issue #22 review).
#[tokio::test]
async fn a_client_that_never_reads_its_answers_is_disconnected() {
    use tokio::io::AsyncWriteExt as _;
    let server = TestServer::start(Setup {
        server_extra: "header_read_timeout_ms = 500",
        ..Setup::default()
    })
    .await;
    let address = server.base.trim_start_matches("http://").to_owned();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(address.parse().unwrap()).await.unwrap();
    let request = b"GET /openapi.json HTTP/1.1\r\nHost: warden\r\n\r\n";
    let started = std::time::Instant::now();
    // Write until the server stops reading (its answers are not being read), at most 400.
    for _ in 0..400 {
        match tokio::time::timeout(
            std::time::Duration::from_millis(200),
            stream.write_all(request),
        )
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => break,
        }
    }
    // Read nothing for a while: the server's write makes no progress past its bound.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    // Then read everything: the server must have closed the connection.
    let closed = read_until_closed(&mut stream, std::time::Duration::from_secs(20)).await;
    assert!(closed.is_some(), "the connection is still open");
    let answered = closed
        .map(|bytes| {
            String::from_utf8_lossy(&bytes)
                .matches("HTTP/1.1 200")
                .count()
        })
        .unwrap_or_default();
    assert!(answered < 400, "every pipelined request was answered");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    still_serves(&server).await;
}

/// `server.max_connections` bounds the connections of every address together: past it a new
/// connection is closed unanswered, and once one closes the server takes new ones again.
#[tokio::test]
async fn connections_past_the_server_cap_are_closed() {
    use tokio::io::AsyncWriteExt as _;
    let server = TestServer::start(Setup {
        server_extra: "max_connections = 2",
        ..Setup::default()
    })
    .await;
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    let request = b"GET /healthz HTTP/1.1\r\nHost: warden\r\n\r\n";
    let connect_from = |local: &'static str| {
        let port = port.clone();
        async move {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
            socket
                .connect(format!("127.0.0.1:{port}").parse().unwrap())
                .await
                .unwrap()
        }
    };
    let mut held = Vec::new();
    for local in ["127.0.0.2", "127.0.0.3"] {
        let mut stream = connect_from(local).await;
        stream.write_all(request).await.unwrap();
        let mut head = [0u8; 12];
        tokio::io::AsyncReadExt::read_exact(&mut stream, &mut head)
            .await
            .unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
        held.push(stream);
    }
    let mut third = connect_from("127.0.0.4").await;
    let _ = third.write_all(request).await;
    let received = read_until_closed(&mut third, std::time::Duration::from_secs(3))
        .await
        .expect("a third connection was kept open");
    assert!(
        received.is_empty(),
        "{}",
        String::from_utf8_lossy(&received)
    );
    drop(held);
    let mut served = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let mut again = connect_from("127.0.0.4").await;
        if again.write_all(request).await.is_err() {
            continue;
        }
        let mut head = [0u8; 12];
        if tokio::io::AsyncReadExt::read_exact(&mut again, &mut head)
            .await
            .is_ok()
        {
            served = true;
            break;
        }
    }
    assert!(served, "closed connections did not give their places back");
}

/// The bulk delete reads an object, like every body but the import's array.
#[tokio::test]
async fn a_bulk_delete_body_that_is_an_array_is_a_400() {
    let server = TestServer::start(Setup {
        storage: Some(String::new()),
        ..Setup::default()
    })
    .await;
    let (status, answer) = server
        .admin(
            Method::POST,
            "/v1/admin/tenants/acme/entities/delete",
            Some(ADMIN_SECRET),
            Some(&json!([[{"type": "User", "id": "acme/nobody"}]])),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = server
        .admin(
            Method::POST,
            "/v1/admin/tenants/acme/entities",
            Some(ADMIN_SECRET),
            Some(&json!({"uid": {"type": "User", "id": "dave"}, "attrs": {}, "parents": []})),
        )
        .await;
    assert_eq!(status, 400, "an import takes an array: {answer}");
}
