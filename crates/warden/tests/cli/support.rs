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

/// A `warden serve` child process, killed when dropped.
pub struct Served {
    pub child: std::process::Child,
    pub port: u16,
    pub config: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `<dir>/<name>.toml` (a free loopback port, the example pack and its entities, then
/// `extra` sections), starts `warden serve` on it and waits until it listens.
pub fn serve_example(dir: &Path, name: &str, extra: &str) -> Served {
    let port = free_port();
    let pack = repo_root().join("examples/saas");
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n[policy]\ndir = {:?}\nentities_file = {:?}\nwatch = false\n{extra}",
            pack.display().to_string(),
            pack.join("entities.json").display().to_string()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["serve", "--config", &config])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_ready(port);
    Served {
        child,
        port,
        config,
    }
}

/// `warden admin init --config CONFIG` must succeed; returns the admin secret it printed once.
pub fn admin_init(config: &str) -> String {
    let init = warden(&["admin", "init", "--config", config]);
    assert_eq!(init.code, 0, "{}{}", init.stdout, init.stderr);
    init.stdout
        .lines()
        .find(|line| line.starts_with("wdn_admin_"))
        .expect("admin init prints the secret")
        .to_owned()
}

/// Copies a pack directory (and its subdirectories) to `to`.
pub fn copy_pack(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_pack(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
