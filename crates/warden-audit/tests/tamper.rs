//! A log written by the real writer verifies; every kind of tampering is found and pinpointed:
//! a flipped byte, a deleted line, a swapped pair, an inserted record, a truncated tail (cut
//! mid-record or whole records cut), and a chain rewritten by someone without the key.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests"
)]

use std::path::Path;
use std::time::Duration;

use warden_audit::file_sink::{CURRENT, FileSink, HEAD};
use warden_audit::record::{GENESIS, encode};
use warden_audit::verify::{Head, Problem, lines_of, verify};
use warden_audit::{
    AuditLog, Durability, Kind, LogSettings, OnFailure, PublicKey, Record, SigningKey, Sink,
};

fn settings() -> LogSettings {
    LogSettings {
        durability: Durability::Durable,
        on_failure: OnFailure::Deny,
        queue_capacity: 64,
        batch_max: 16,
        checkpoint_every: 10,
        checkpoint_interval: Duration::from_secs(60),
        retry_interval: Duration::from_millis(20),
    }
}

/// Writes `n` decision records through the real writer and closes it.
fn write_log(dir: &Path, n: usize) -> PublicKey {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (file, state) = FileSink::open(dir, 1 << 30, false).unwrap();
        let key = SigningKey::load_or_create(&dir.join("audit-signing.key")).unwrap();
        let public = key.public().clone();
        let (log, writer) = AuditLog::start(Sink::File(file), state, key, settings()).unwrap();
        for i in 0..n {
            let mut record = Record::new(Kind::Decision, format!("d{i}"));
            record.decision = Some(if i % 3 == 0 { "deny" } else { "allow" }.to_owned());
            record.reason = Some("permitted".to_owned());
            log.record(record, None).await.unwrap();
        }
        drop(log);
        tokio::task::spawn_blocking(move || writer.join())
            .await
            .unwrap();
        public
    })
}

fn check(dir: &Path, text: &str, key: &PublicKey) -> warden_audit::verify::Report {
    let head: Head =
        serde_json::from_str(std::fs::read_to_string(dir.join(HEAD)).unwrap().trim()).unwrap();
    verify(
        &lines_of("log", text),
        std::slice::from_ref(key),
        Some(("head", &head)),
    )
}

fn setup(n: usize) -> (tempfile::TempDir, PublicKey, String) {
    let dir = tempfile::tempdir().unwrap();
    let key = write_log(dir.path(), n);
    let text = std::fs::read_to_string(dir.path().join(CURRENT)).unwrap();
    (dir, key, text)
}

fn with_lines(text: &str, edit: impl FnOnce(&mut Vec<String>)) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    edit(&mut lines);
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

#[test]
fn a_clean_log_verifies_with_its_checkpoints_and_head() {
    let (dir, key, text) = setup(25);
    let report = check(dir.path(), &text, &key);
    assert_eq!(report.finding, None);
    // 25 decisions, a checkpoint after every 10 records, one at close.
    assert!(report.checkpoints_verified >= 3, "{report:?}");
    assert_eq!(report.first_seq, Some(0));
    assert!(report.head_checked);
}

#[test]
fn a_flipped_byte_is_an_edited_record_at_its_line() {
    let (dir, key, text) = setup(12);
    let edited = with_lines(&text, |lines| {
        lines[4] = lines[4].replacen("\"allow\"", "\"alloW\"", 1);
    });
    assert_ne!(edited, text);
    let finding = check(dir.path(), &edited, &key).finding.unwrap();
    assert_eq!(finding.line, 5);
    assert_eq!(finding.problem, Problem::Edited);
}

#[test]
fn a_deleted_line_is_reported_as_missing_records() {
    let (dir, key, text) = setup(12);
    let edited = with_lines(&text, |lines| {
        lines.remove(6);
    });
    let finding = check(dir.path(), &edited, &key).finding.unwrap();
    assert_eq!(finding.line, 7);
    assert_eq!(finding.problem, Problem::Deleted { from: 6, to: 6 });
}

#[test]
fn a_swapped_pair_is_reported_as_reordered() {
    let (dir, key, text) = setup(12);
    let edited = with_lines(&text, |lines| lines.swap(3, 4));
    let finding = check(dir.path(), &edited, &key).finding.unwrap();
    assert_eq!(finding.line, 4);
    assert_eq!(
        finding.problem,
        Problem::Reordered {
            expected: 3,
            found: 4
        }
    );
}

#[test]
fn an_inserted_record_with_a_valid_own_hash_is_pinpointed() {
    let (dir, key, text) = setup(12);
    let edited = with_lines(&text, |lines| {
        // A forger who knows the format: correct seq, correct prev, correct own hash.
        let previous = warden_audit::record::decode(&lines[2]).unwrap();
        let mut forged = Record::new(Kind::Decision, "forged");
        forged.decision = Some("allow".to_owned());
        let (line, _) = encode(previous.seq + 1, &previous.hash, &forged).unwrap();
        lines.insert(3, line);
    });
    let finding = check(dir.path(), &edited, &key).finding.unwrap();
    assert_eq!(finding.line, 4, "{finding}");
    assert_eq!(finding.problem, Problem::Inserted);
}

#[test]
fn a_tail_cut_mid_record_is_truncated() {
    let (dir, key, text) = setup(12);
    let cut = &text[..text.len() - 30];
    let report = check(dir.path(), cut, &key);
    assert_eq!(report.finding.unwrap().problem, Problem::Truncated);
}

#[test]
fn whole_records_cut_from_the_end_are_caught_by_the_signed_head() {
    let (dir, key, text) = setup(12);
    let edited = with_lines(&text, |lines| {
        lines.truncate(lines.len() - 3);
    });
    let finding = check(dir.path(), &edited, &key).finding.unwrap();
    assert!(
        matches!(finding.problem, Problem::TailMissing { .. }),
        "{finding}"
    );
}

#[test]
fn a_chain_rewritten_without_the_key_fails_at_the_first_checkpoint() {
    let (dir, key, text) = setup(12);
    // Re-chain every record after editing one: each line's own hash and the links are valid,
    // only the signatures betray it.
    let mut rewritten = String::new();
    let mut prev = GENESIS.to_owned();
    for (seq, line) in text.lines().enumerate() {
        let mut stored = warden_audit::record::decode(line).unwrap();
        if stored.record.id == "d3" {
            stored.record.decision = Some("allow".to_owned());
        }
        let (line, hash) = encode(seq as u64, &prev, &stored.record).unwrap();
        rewritten.push_str(&line);
        rewritten.push('\n');
        prev = hash;
    }
    let finding = check(dir.path(), &rewritten, &key).finding.unwrap();
    assert!(
        matches!(finding.problem, Problem::BadCheckpoint(_)),
        "{finding}"
    );
}

#[test]
fn a_reopened_log_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 5);
    let key = write_log(dir.path(), 5);
    let text = std::fs::read_to_string(dir.path().join(CURRENT)).unwrap();
    let report = check(dir.path(), &text, &key);
    assert_eq!(report.finding, None);
    let decisions = text
        .lines()
        .filter(|l| l.contains("\"kind\":\"decision\""))
        .count();
    assert_eq!(decisions, 10);
}

#[test]
fn rotation_keeps_one_chain_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let key = runtime.block_on(async {
        let (file, state) = FileSink::open(dir.path(), 4096, false).unwrap();
        let key = SigningKey::load_or_create(&dir.path().join("audit-signing.key")).unwrap();
        let public = key.public().clone();
        let (log, writer) = AuditLog::start(Sink::File(file), state, key, settings()).unwrap();
        for i in 0..60 {
            let mut record = Record::new(Kind::Decision, format!("r{i}"));
            record.errors = vec!["x".repeat(100)];
            log.record(record, None).await.unwrap();
        }
        drop(log);
        tokio::task::spawn_blocking(move || writer.join())
            .await
            .unwrap();
        public
    });
    let files = warden_audit::file_sink::log_files(dir.path()).unwrap();
    assert!(files.len() > 2, "rotated into {} files", files.len());
    let texts: Vec<(String, String)> = files
        .iter()
        .map(|f| (f.display().to_string(), std::fs::read_to_string(f).unwrap()))
        .collect();
    let lines: Vec<_> = texts.iter().flat_map(|(n, t)| lines_of(n, t)).collect();
    let head: Head = serde_json::from_str(
        std::fs::read_to_string(dir.path().join(HEAD))
            .unwrap()
            .trim(),
    )
    .unwrap();
    let report = verify(&lines, &[key], Some(("head", &head)));
    assert_eq!(report.finding, None);
    let found = warden_audit::query::find_in_dir(dir.path(), "r3")
        .unwrap()
        .unwrap();
    assert_eq!(found.record.id, "r3");
}

#[test]
fn fail_closed_reports_a_failed_write_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let (file, state) = FileSink::open(dir.path(), 1 << 20, false).unwrap();
        let key = SigningKey::load_or_create(&dir.path().join("audit-signing.key")).unwrap();
        let (log, writer) = AuditLog::start(Sink::File(file), state, key, settings()).unwrap();
        log.record(Record::new(Kind::Decision, "ok-1"), None)
            .await
            .unwrap();
        let current = dir.path().join(CURRENT);
        std::fs::rename(&current, dir.path().join("aside")).unwrap();
        std::fs::create_dir(&current).unwrap();
        let failed = log
            .record(Record::new(Kind::Decision, "while-broken"), None)
            .await;
        assert!(failed.is_err());
        assert!(log.refuses_new_decisions().is_some());
        std::fs::remove_dir(&current).unwrap();
        std::fs::rename(dir.path().join("aside"), &current).unwrap();
        let mut healthy = false;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if log.refuses_new_decisions().is_none() {
                healthy = true;
                break;
            }
        }
        assert!(healthy);
        log.record(Record::new(Kind::Decision, "ok-2"), None)
            .await
            .unwrap();
        drop(log);
        tokio::task::spawn_blocking(move || writer.join())
            .await
            .unwrap();
    });
    let text = std::fs::read_to_string(dir.path().join(CURRENT)).unwrap();
    let ids: Vec<String> = text
        .lines()
        .map(|l| warden_audit::record::decode(l).unwrap())
        .filter(|r| r.record.kind == Kind::Decision)
        .map(|r| r.record.id)
        .collect();
    assert_eq!(
        ids,
        ["ok-1", "while-broken", "ok-2"],
        "nothing lost, in order"
    );
}
