//! Issue #20: `warden entity import` streams files of any size (JSON lines or an array),
//! reports each refused entity with its line and goes on with the rest, and `--replace` makes
//! a tenant's stored entities exactly the file's.

use std::process::Command;

use crate::support::{Run, admin_init, serve_example};

fn import(port: u16, secret: &str, file: &std::path::Path, extra: &[&str]) -> Run {
    let server = format!("http://127.0.0.1:{port}");
    let file = file.display().to_string();
    let mut args = vec![
        "entity", "import", "--server", &server, "--tenant", "acme", &file,
    ];
    args.extend_from_slice(extra);
    let output = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(&args)
        .env("WARDEN_ADMIN_TOKEN", secret)
        .output()
        .unwrap();
    Run {
        code: output.status.code().unwrap(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn user(n: usize) -> String {
    format!(
        "{{\"uid\": {{\"type\": \"User\", \"id\": \"u{n}\"}}, \"attrs\": {{\"email\": \"u{n}@acme.example\"}}, \"parents\": [{{\"type\": \"Role\", \"id\": \"viewer\"}}]}}"
    )
}

#[test]
fn a_large_file_streams_in_batches_and_refused_lines_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let storage = format!(
        "[storage]\nurl = \"sqlite://{}\"\n",
        dir.path().join("warden.db").display()
    );
    let served = serve_example(dir.path(), "warden", &storage);
    let secret = admin_init(&served.config);

    // 5,000 users as JSON lines (far over the 64 KiB request body), line 3 malformed, line
    // 4,000 of the wrong type, a blank line skipped.
    let mut lines: Vec<String> = (0..5000).map(user).collect();
    lines[2] = "{\"uid\": {\"type\": \"User\", \"id\": \"broken\"".to_owned();
    lines[3999] = "{\"uid\": {\"type\": \"User\", \"id\": \"typo\"}, \"attrs\": {\"email\": 7}, \"parents\": []}".to_owned();
    lines.insert(10, String::new());
    let jsonl = dir.path().join("users.jsonl");
    std::fs::write(&jsonl, lines.join("\n")).unwrap();
    assert!(std::fs::metadata(&jsonl).unwrap().len() > 64 * 1024);
    let run = import(served.port, &secret, &jsonl, &["--batch-size", "700"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let jsonl_name = jsonl.display().to_string();
    assert!(
        run.stdout
            .contains(&format!("{jsonl_name}:3: malformed JSON")),
        "{}",
        run.stdout
    );
    // Line 4,000 of the data is line 4,001 of the file (the blank line came first).
    assert!(
        run.stdout
            .contains(&format!("{jsonl_name}:4001: User::\"typo\" refused")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("imported 4998 entities into tenant `acme`"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("2 refused"), "{}", run.stdout);

    // --replace with a refused entity deletes nothing.
    let run = import(served.port, &secret, &jsonl, &["--replace"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("--replace: nothing deleted"),
        "{}",
        run.stdout
    );

    // An array of ten users with --replace: the other 4,989 stored users go (u2 was the
    // malformed line, so nine of the ten were stored).
    let array = dir.path().join("ten.json");
    let ten: Vec<String> = (0..10).map(user).collect();
    std::fs::write(&array, format!("[\n{}\n]\n", ten.join(",\n"))).unwrap();
    let run = import(served.port, &secret, &array, &["--replace"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("imported 10 entities"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("--replace: deleted 4989 stored entities"),
        "{}",
        run.stdout
    );
    let run = import(served.port, &secret, &array, &["--replace"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("--replace: deleted 0 stored entities"),
        "{}",
        run.stdout
    );

    // A truncated array is an error with its line, and nothing after the break is sent.
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, format!("[\n{},\n{{\"uid\": ", user(1))).unwrap();
    let run = import(served.port, &secret, &broken, &[]);
    assert_ne!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("line 3"), "{}", run.stderr);
}
