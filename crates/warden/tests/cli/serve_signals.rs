//! Issue #22: graceful shutdown of the real `warden serve` process by SIGTERM: a request in
//! flight when the signal arrives is answered, new connections are refused, and the process
//! exits 0 within `server.shutdown_grace_seconds`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::serve_example;

#[test]
fn sigterm_finishes_the_request_in_flight_refuses_new_ones_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = serve_example(
        dir.path(),
        "signals",
        "[peps]\nallow_unauthenticated = true\n[audit]\ndir = \"audit-signals\"\n",
    );
    let body = r#"{"subject": {"type": "User", "id": "acme/carol"}, "action": {"name": "read"}, "resource": {"type": "Document", "id": "acme/roadmap"}}"#;
    let (first_half, second_half) = body.split_at(body.len() / 2);
    let mut stream = TcpStream::connect(("127.0.0.1", served.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "POST /access/v1/evaluation HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{first_half}",
        body.len()
    )
    .unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let status = Command::new("kill")
        .args(["-TERM", &served.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());

    // New connections are refused once shutdown has begun (bounded wait for the signal to land).
    let began = Instant::now();
    let mut refused = false;
    while began.elapsed() < Duration::from_secs(5) {
        if TcpStream::connect(("127.0.0.1", served.port)).is_err() {
            refused = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        refused,
        "new connections were still accepted 5 s after SIGTERM"
    );

    // The request in flight is answered.
    stream.write_all(second_half.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"decision\":true"), "{answer}");

    // And the process exits 0 within the grace period (default 10 s).
    let began = Instant::now();
    let code = loop {
        if let Some(status) = served.child.try_wait().unwrap() {
            break status.code();
        }
        assert!(
            began.elapsed() < Duration::from_secs(12),
            "warden serve did not exit within the grace period"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(0));
}
