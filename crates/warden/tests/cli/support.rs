//! Running the real binary and reading what it printed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn example(file: &str) -> String {
    repo_root()
        .join("examples/saas")
        .join(file)
        .display()
        .to_string()
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn warden(args: &[&str]) -> Run {
    let output: Output = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("the warden binary runs");
    Run {
        code: output
            .status
            .code()
            .expect("exited, not killed by a signal"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// `warden check` on the example pack with its entities.
pub fn check_example(principal: &str, action: &str, resource: &str, extra: &[&str]) -> Run {
    let policies = example("");
    let entities = example("entities.json");
    let mut args = vec![
        "check",
        "--policies",
        &policies,
        "--entities",
        &entities,
        "--principal",
        principal,
        "--action",
        action,
        "--resource",
        resource,
    ];
    args.extend_from_slice(extra);
    warden(&args)
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (at most 20 s) until something listens on the port.
pub fn wait_ready(port: u16) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
