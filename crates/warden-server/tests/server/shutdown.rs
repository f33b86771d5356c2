//! Graceful shutdown: new connections are refused, a request already in flight finishes.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{PEP_SECRET, Setup, TestServer};

#[tokio::test]
async fn in_flight_requests_finish_and_new_ones_are_refused() {
    let mut server = TestServer::start(Setup::default()).await;
    let address = server.server.as_ref().unwrap().address();
    let body = r#"{"subject": {"type": "User", "id": "acme/carol"}, "action": {"name": "read"}, "resource": {"type": "Document", "id": "acme/roadmap"}}"#;
    let (first_half, second_half) = body.split_at(body.len() / 2);

    // A request whose body is still arriving when shutdown starts.
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /access/v1/evaluation HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\nauthorization: Bearer {PEP_SECRET}\r\ncontent-length: {}\r\n\r\n{first_half}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let running = server.server.take().unwrap();
    let shutdown = tokio::spawn(async move { running.shutdown(Duration::from_secs(5)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;

    // No new connections once shutdown has begun.
    let refused = reqwest::Client::new()
        .get(format!("{}/healthz", server.base))
        .send()
        .await;
    assert!(refused.is_err(), "a new request was served during shutdown");

    // The in-flight request completes.
    stream.write_all(second_half.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut buffer = [0u8; 4096];
    for _ in 0..50 {
        let read = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buffer))
            .await
            .unwrap()
            .unwrap();
        if read == 0 {
            break;
        }
        response.extend_from_slice(&buffer[..read]);
        if String::from_utf8_lossy(&response).contains("\"decision\"") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"decision\":true"), "{text}");
    drop(stream);
    shutdown.await.unwrap().unwrap();
}
