//! Checking a log: every line's own hash, the chain from line to line, the sequence numbers,
//! every checkpoint's signature, and the signed head (which catches records cut from the end).
//!
//! Verification stops at the first break and says where it is and what it looks like: an
//! edited record, a deleted one, a reordered pair, an inserted record, a truncated tail.

use std::collections::HashMap;
use std::fmt;

use crate::record::{GENESIS, Kind, LineError, StoredRecord, decode};
use crate::signing::PublicKey;

/// One line handed to the verifier.
#[derive(Clone, Debug)]
pub struct Line<'a> {
    /// The file (or table) it came from.
    pub source: &'a str,
    /// 1-based line number within `source`.
    pub number: usize,
    /// The text, without the newline.
    pub text: &'a str,
    /// Whether a newline ended it (false only for a last line cut short).
    pub terminated: bool,
}

/// What is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The record's content does not match its hash.
    Edited,
    /// Not a record at all.
    Malformed(String),
    /// The last line is incomplete.
    Truncated,
    /// Records `from..=to` are missing.
    Deleted {
        /// First missing sequence number.
        from: u64,
        /// Last missing sequence number.
        to: u64,
    },
    /// A record is out of order.
    Reordered {
        /// The sequence number expected here.
        expected: u64,
        /// The one found.
        found: u64,
    },
    /// A record that does not belong to the chain (inserted, or edited and re-hashed).
    Inserted,
    /// A checkpoint whose signature or coverage is wrong.
    BadCheckpoint(String),
    /// The log has checkpoints, so a signed head was written, but it is gone.
    HeadMissing,
    /// The signed head says the log goes further than it does.
    TailMissing {
        /// The last record present.
        last: Option<u64>,
        /// The last record the head covers.
        head: u64,
    },
}

/// Where the first break is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// File or table.
    pub source: String,
    /// Line number (0 when the finding is about the log as a whole).
    pub line: usize,
    /// The record's sequence number, when it could be read.
    pub seq: Option<u64>,
    /// What is wrong.
    pub problem: Problem,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.line == 0 {
            self.source.clone()
        } else {
            format!("{}:{}", self.source, self.line)
        };
        let seq = self.seq.map(|s| format!(" (seq {s})")).unwrap_or_default();
        match &self.problem {
            Problem::Edited => write!(
                f,
                "{at}{seq}: record edited: its content does not match its hash"
            ),
            Problem::Malformed(why) => write!(f, "{at}: not a decision-log record: {why}"),
            Problem::Truncated => write!(f, "{at}: truncated: the last record is incomplete"),
            Problem::Deleted { from, to } if from == to => {
                write!(f, "{at}{seq}: record seq {from} is missing (deleted)")
            }
            Problem::Deleted { from, to } => {
                write!(
                    f,
                    "{at}{seq}: records seq {from} to {to} are missing (deleted)"
                )
            }
            Problem::Reordered { expected, found } => write!(
                f,
                "{at}: records reordered: seq {found} stands where seq {expected} belongs"
            ),
            Problem::Inserted => write!(
                f,
                "{at}{seq}: record does not follow the one before it (inserted, or edited and re-hashed)"
            ),
            Problem::BadCheckpoint(why) => write!(f, "{at}{seq}: checkpoint invalid: {why}"),
            Problem::HeadMissing => write!(
                f,
                "{at}: the signed head is missing, though the log has signed checkpoints (deleted?): records after the last checkpoint cannot be vouched for"
            ),
            Problem::TailMissing { last, head } => write!(
                f,
                "{at}: truncated: the signed head covers seq {head}, but the log ends at {}",
                last.map_or_else(|| "nothing".to_owned(), |l| format!("seq {l}"))
            ),
        }
    }
}

/// The outcome of a verification.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Records read (checkpoints included).
    pub records: u64,
    /// First sequence number seen.
    pub first_seq: Option<u64>,
    /// Last sequence number seen.
    pub last_seq: Option<u64>,
    /// Its hash.
    pub last_hash: Option<String>,
    /// Checkpoints whose signature was checked.
    pub checkpoints_verified: u64,
    /// Checkpoints whose key was not given, so not checked.
    pub checkpoints_unchecked: u64,
    /// Whether a signed head was compared.
    pub head_checked: bool,
    /// The first break, if any.
    pub finding: Option<Finding>,
}

/// The signed head kept beside a log.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Head {
    /// The checkpoint over the last record written.
    pub checkpoint: crate::record::Checkpoint,
}

/// Verifies `lines`, in order, against `keys` (checkpoints by another key are unchecked when
/// `keys` is empty, and a break otherwise), and then `head` when given.
pub fn verify(lines: &[Line<'_>], keys: &[PublicKey], head: Option<(&str, &Head)>) -> Report {
    let mut report = Report::default();
    let mut seen: HashMap<u64, (String, usize)> = HashMap::new();
    let mut expected: Option<u64> = None;
    let mut previous_hash: Option<String> = None;
    for (index, line) in lines.iter().enumerate() {
        let finding = |seq, problem| Finding {
            source: line.source.to_owned(),
            line: line.number,
            seq,
            problem,
        };
        let record = match decode(line.text) {
            Ok(record) => record,
            Err(_) if !line.terminated && index + 1 == lines.len() => {
                report.finding = Some(finding(None, Problem::Truncated));
                return report;
            }
            Err(LineError::HashMismatch) => {
                let seq = serde_json::from_str::<serde_json::Value>(line.text)
                    .ok()
                    .and_then(|v| v.get("seq").and_then(serde_json::Value::as_u64));
                report.finding = Some(finding(seq, Problem::Edited));
                return report;
            }
            Err(error) => {
                report.finding = Some(finding(None, Problem::Malformed(error.to_string())));
                return report;
            }
        };
        if !line.terminated && index + 1 == lines.len() {
            report.finding = Some(finding(Some(record.seq), Problem::Truncated));
            return report;
        }
        if let Some(problem) = chain_problem(
            &record,
            expected,
            previous_hash.as_deref(),
            lines,
            index,
            &seen,
        ) {
            // An inserted record is found by the genuine one after it: point at the insertion.
            let at_previous = problem == Problem::Inserted && Some(record.seq) < expected;
            report.finding = Some(
                match (at_previous, index.checked_sub(1).and_then(|i| lines.get(i))) {
                    (true, Some(previous)) => Finding {
                        source: previous.source.to_owned(),
                        line: previous.number,
                        seq: Some(record.seq),
                        problem,
                    },
                    _ => finding(Some(record.seq), problem),
                },
            );
            return report;
        }
        if record.record.kind == Kind::Checkpoint {
            match checkpoint_problem(&record, keys) {
                CheckpointCheck::Verified => report.checkpoints_verified += 1,
                CheckpointCheck::Unchecked => report.checkpoints_unchecked += 1,
                CheckpointCheck::Bad(why) => {
                    report.finding = Some(finding(Some(record.seq), Problem::BadCheckpoint(why)));
                    return report;
                }
            }
        }
        report.records += 1;
        report.first_seq.get_or_insert(record.seq);
        report.last_seq = Some(record.seq);
        report.last_hash = Some(record.hash.clone());
        seen.insert(record.seq, (record.hash.clone(), line.number));
        expected = Some(record.seq.saturating_add(1));
        previous_hash = Some(record.hash);
    }
    if let Some((source, head)) = head {
        report.head_checked = true;
        let checkpoint = &head.checkpoint;
        let problem = if !keys.is_empty()
            && !keys
                .iter()
                .any(|key| key.key_id == checkpoint.key_id && key.verifies(checkpoint))
        {
            Some(Problem::BadCheckpoint(
                "the head's signature does not verify".to_owned(),
            ))
        } else if report
            .last_seq
            .is_none_or(|last| last < checkpoint.through_seq)
        {
            Some(Problem::TailMissing {
                last: report.last_seq,
                head: checkpoint.through_seq,
            })
        } else if let Some((hash, _)) = seen.get(&checkpoint.through_seq)
            && *hash != checkpoint.through_hash
        {
            Some(Problem::BadCheckpoint(format!(
                "the head names a different hash for seq {}",
                checkpoint.through_seq
            )))
        } else {
            None
        };
        if let Some(problem) = problem {
            report.finding = Some(Finding {
                source: source.to_owned(),
                line: 0,
                seq: Some(checkpoint.through_seq),
                problem,
            });
        }
    }
    report
}

fn chain_problem(
    record: &StoredRecord,
    expected: Option<u64>,
    previous_hash: Option<&str>,
    lines: &[Line<'_>],
    index: usize,
    seen: &HashMap<u64, (String, usize)>,
) -> Option<Problem> {
    let Some(expected) = expected else {
        // The first record read: the chain's genesis, or the continuation of an earlier file.
        return (record.seq == 0 && record.prev != GENESIS).then_some(Problem::Inserted);
    };
    if record.seq == expected {
        return (previous_hash != Some(record.prev.as_str())).then_some(Problem::Inserted);
    }
    if record.seq > expected {
        // A swapped pair shows the missing record just after; a deletion does not.
        let comes_later = lines
            .iter()
            .skip(index.saturating_add(1))
            .take(8)
            .filter_map(|line| decode(line.text).ok())
            .any(|later| later.seq == expected);
        return Some(if comes_later {
            Problem::Reordered {
                expected,
                found: record.seq,
            }
        } else {
            Problem::Deleted {
                from: expected,
                to: record.seq.saturating_sub(1),
            }
        });
    }
    // A sequence number already passed. If this record chains onto the one two lines up, the
    // line before it was slipped in.
    let chains_before = record
        .seq
        .checked_sub(1)
        .and_then(|before| seen.get(&before));
    if record.seq.saturating_add(1) == expected
        && chains_before.is_some_and(|(hash, _)| *hash == record.prev)
    {
        return Some(Problem::Inserted);
    }
    Some(Problem::Reordered {
        expected,
        found: record.seq,
    })
}

enum CheckpointCheck {
    Verified,
    Unchecked,
    Bad(String),
}

fn checkpoint_problem(record: &StoredRecord, keys: &[PublicKey]) -> CheckpointCheck {
    let Some(checkpoint) = &record.record.checkpoint else {
        return CheckpointCheck::Bad("a checkpoint record without a checkpoint".to_owned());
    };
    if checkpoint.through_seq.saturating_add(1) != record.seq
        || checkpoint.through_hash != record.prev
    {
        return CheckpointCheck::Bad("it does not cover the record just before it".to_owned());
    }
    if keys.is_empty() {
        return CheckpointCheck::Unchecked;
    }
    match keys.iter().find(|key| key.key_id == checkpoint.key_id) {
        None => CheckpointCheck::Bad(format!("signed by unknown key {}", checkpoint.key_id)),
        Some(key) if key.verifies(checkpoint) => CheckpointCheck::Verified,
        Some(_) => CheckpointCheck::Bad("the signature does not verify".to_owned()),
    }
}

/// Splits a file's text into [`Line`]s.
pub fn lines_of<'a>(source: &'a str, text: &'a str) -> Vec<Line<'a>> {
    let mut lines = Vec::new();
    let mut rest = text;
    let mut number = 0;
    while !rest.is_empty() {
        number += 1;
        let (line, terminated, next) = match rest.find('\n') {
            Some(at) => (
                rest.get(..at).unwrap_or_default(),
                true,
                rest.get(at + 1..).unwrap_or_default(),
            ),
            None => (rest, false, ""),
        };
        lines.push(Line {
            source,
            number,
            text: line,
            terminated,
        });
        rest = next;
    }
    lines
}
