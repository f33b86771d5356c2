//! One record of the decision log and its line format.
//!
//! A line is the compact JSON of the record, with `seq` (0, 1, 2, …) and `prev` (the previous
//! line's hash, 64 zeros for the first) first, and `"hash":"<sha256 hex>"` last. The hash is
//! SHA-256 over the exact bytes of the line without its hash member, i.e. the line with
//! `,"hash":"…"` removed. Verification needs no re-serialization: it hashes the bytes as
//! written, so the canonical form is the bytes themselves.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a record is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An authorization decision (allow or deny), including refused tokens.
    Decision,
    /// An administrative change (entities, grants, status, credentials).
    Admin,
    /// A signed statement of the chain's head.
    Checkpoint,
}

/// A principal or resource as recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityRef {
    /// Cedar entity type.
    #[serde(rename = "type")]
    pub entity_type: String,
    /// Entity id.
    pub id: String,
    /// Its tenant, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// A determining policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRef {
    /// Policy id.
    pub id: String,
    /// Its `@description`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The bearer token a decision rested on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRef {
    /// `iss`, when the token got far enough to name one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// `jti`, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// `sub`, when verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// A decision in plain words (the explainer of `warden check`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// One sentence.
    pub summary: String,
    /// Supporting sentences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

/// A signed statement that the chain, through `through_seq`, ends in `through_hash`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Last record covered.
    pub through_seq: u64,
    /// Its hash.
    pub through_hash: String,
    /// Which key signed (the first 16 hex digits of SHA-256 of the public key).
    pub key_id: String,
    /// Ed25519 signature of [`checkpoint_message`], base64url without padding.
    pub signature: String,
}

/// The bytes a checkpoint signs.
pub fn checkpoint_message(through_seq: u64, through_hash: &str) -> Vec<u8> {
    format!("warden-audit-checkpoint/v1\n{through_seq}\n{through_hash}").into_bytes()
}

/// One record, before it is chained. Fields are written in this order; absent ones are left out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Decision, admin or checkpoint.
    pub kind: Kind,
    /// Decision id (UUIDv7) or admin action id.
    pub id: String,
    /// RFC 3339 UTC time with milliseconds.
    pub time: String,
    /// Entry point: `authzen.evaluation`, `authzen.evaluations`, `check`, `admin`, ….
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    /// Who asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<EntityRef>,
    /// Who acted for the principal, by a delegated token (RFC 8693): the current actor first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actors: Vec<EntityRef>,
    /// The action (decisions) or operation (admin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// On what.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<EntityRef>,
    /// `allow` or `deny` (decisions), `ok` or `failed` (admin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// Reason code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Determining policies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<PolicyRef>,
    /// Evaluation errors and refusal details.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// The pack revision that decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_revision: Option<String>,
    /// The bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenRef>,
    /// The enforcement point or admin credential that called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    /// The peer address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Time from request start to decision, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
    /// The request context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// Plain words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
    /// Admin change details (target, before, after).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Value>,
    /// Checkpoint body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<Checkpoint>,
}

impl Record {
    /// An empty record of `kind` with `id`. Its `time` is left empty for the log to stamp with
    /// the moment it was handed over (formatting is done off the request path).
    pub fn new(kind: Kind, id: impl Into<String>) -> Self {
        Self {
            kind,
            id: id.into(),
            time: String::new(),
            entry: None,
            principal: None,
            actors: Vec::new(),
            action: None,
            resource: None,
            decision: None,
            reason: None,
            policies: Vec::new(),
            errors: Vec::new(),
            policy_revision: None,
            token: None,
            caller: None,
            origin: None,
            latency_us: None,
            context: None,
            explanation: None,
            change: None,
            checkpoint: None,
        }
    }

    /// The tenant the record belongs to: the resource's, else the principal's.
    pub fn tenant(&self) -> Option<&str> {
        self.resource
            .as_ref()
            .and_then(|r| r.tenant.as_deref())
            .or_else(|| self.principal.as_ref().and_then(|p| p.tenant.as_deref()))
    }
}

#[derive(Serialize)]
struct Chained<'a> {
    seq: u64,
    prev: &'a str,
    #[serde(flatten)]
    record: &'a Record,
}

/// A record as read back from the log.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct StoredRecord {
    /// Position in the chain.
    pub seq: u64,
    /// The previous line's hash.
    pub prev: String,
    /// This line's hash.
    pub hash: String,
    /// The record.
    #[serde(flatten)]
    pub record: Record,
}

const HASH_PREFIX: &str = ",\"hash\":\"";
/// Length of `,"hash":"<64 hex>"}`.
const HASH_SUFFIX_LEN: usize = HASH_PREFIX.len() + 64 + 2;

/// Writes `record` as the line after `prev` at `seq`; returns the line (no newline) and its hash.
pub fn encode(
    seq: u64,
    prev: &str,
    record: &Record,
) -> Result<(String, String), serde_json::Error> {
    let mut body = serde_json::to_string(&Chained { seq, prev, record })?;
    let hash = hex::encode(Sha256::digest(body.as_bytes()));
    // `body` is a JSON object: it ends with `}`.
    body.pop();
    body.push_str(HASH_PREFIX);
    body.push_str(&hash);
    body.push_str("\"}");
    Ok((body, hash))
}

/// Why a line is not a well-formed record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LineError {
    /// The line does not end in a hash member.
    #[error("the line does not end with a \"hash\" member")]
    NoHash,
    /// The stated hash is not the hash of the line's bytes.
    #[error("the line's content does not match its hash (edited)")]
    HashMismatch,
    /// Not a record.
    #[error("the line is not a valid record: {0}")]
    Json(String),
}

/// Checks a line's own hash and parses it.
pub fn decode(line: &str) -> Result<StoredRecord, LineError> {
    let split = line
        .len()
        .checked_sub(HASH_SUFFIX_LEN)
        .filter(|at| line.is_char_boundary(*at))
        .ok_or(LineError::NoHash)?;
    let (body, suffix) = line.split_at(split);
    let stated = suffix
        .strip_prefix(HASH_PREFIX)
        .and_then(|rest| rest.strip_suffix("\"}"))
        .filter(|hash| hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or(LineError::NoHash)?;
    let mut hasher = Sha256::new();
    hasher.update(body.as_bytes());
    hasher.update(b"}");
    let actual = hex::encode(hasher.finalize());
    if actual != stated {
        return Err(LineError::HashMismatch);
    }
    serde_json::from_str(line).map_err(|error| LineError::Json(error.to_string()))
}

/// Now, as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    rfc3339(std::time::SystemTime::now())
}

/// `at` as RFC 3339 UTC with exactly three fractional digits (fixed width, so the text sorts
/// as the time does).
pub fn rfc3339(at: std::time::SystemTime) -> String {
    let at = time::OffsetDateTime::from(at);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

/// Parses an RFC 3339 time to Unix milliseconds.
pub fn parse_time_ms(text: &str) -> Option<i128> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp_nanos() / 1_000_000)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use super::*;

    #[test]
    fn a_line_round_trips_and_its_hash_covers_every_byte() {
        let mut record = Record::new(Kind::Decision, "d1");
        record.decision = Some("allow".into());
        let (line, hash) = encode(0, GENESIS, &record).unwrap();
        assert!(line.starts_with("{\"seq\":0,\"prev\":\"000"));
        let stored = decode(&line).unwrap();
        assert_eq!(stored.hash, hash);
        assert_eq!(stored.record, record);
        let edited = line.replace("allow", "alloW");
        assert_eq!(decode(&edited), Err(LineError::HashMismatch));
        assert_eq!(decode(&line[..line.len() - 3]), Err(LineError::NoHash));
    }
}
