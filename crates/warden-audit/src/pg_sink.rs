//! The PostgreSQL sink: one row per record in `warden_decision_log`, with the canonical line
//! as written to a file plus indexed columns for queries, and the signed head in
//! `warden_decision_log_head`.
//!
//! Several replicas share one chain: each batch takes the head row's lock, chains its records
//! after it, inserts them and moves the head, in one transaction. The head row is signed on
//! every batch, so a record cut from the end is always detected.

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Connection, Row};

use crate::file_sink::ChainState;
use crate::record::{GENESIS, Kind, Record, encode};
use crate::signing::SigningKey;
use crate::verify::Head;

/// Why the table could not be reached or written.
#[derive(Debug, thiserror::Error)]
pub enum PgSinkError {
    /// Database error.
    #[error("decision log table: {0}")]
    Database(#[from] sqlx::Error),
    /// A record could not be serialized.
    #[error("decision log record: {0}")]
    Encode(#[from] serde_json::Error),
}

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS warden_decision_log (
        seq BIGINT PRIMARY KEY,
        id TEXT NOT NULL,
        kind TEXT NOT NULL,
        time TEXT NOT NULL,
        tenant TEXT,
        principal TEXT,
        resource TEXT,
        decision TEXT,
        reason TEXT,
        line TEXT NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS warden_decision_log_id ON warden_decision_log (id)",
    "CREATE INDEX IF NOT EXISTS warden_decision_log_tenant ON warden_decision_log (tenant, seq)",
    "CREATE TABLE IF NOT EXISTS warden_decision_log_head (
        singleton INT PRIMARY KEY CHECK (singleton = 1),
        seq BIGINT NOT NULL,
        hash TEXT NOT NULL,
        head TEXT
    )",
    "INSERT INTO warden_decision_log_head (singleton, seq, hash) VALUES (1, -1, '0000000000000000000000000000000000000000000000000000000000000000') ON CONFLICT DO NOTHING",
];

/// A decision-log table.
#[derive(Debug, Clone)]
pub struct PgSink {
    pool: PgPool,
}

impl PgSink {
    /// Connects and creates the tables when missing.
    pub async fn open(url: &str) -> Result<(Self, ChainState), PgSinkError> {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect(url)
            .await?;
        let mut connection = pool.acquire().await?;
        let mut tx = connection.begin().await?;
        // Two replicas starting at once must not race on CREATE TABLE.
        sqlx::query("SELECT pg_advisory_xact_lock(7417001)")
            .execute(&mut *tx)
            .await?;
        for statement in SCHEMA {
            sqlx::query(*statement).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        drop(connection);
        let sink = Self { pool };
        let state = sink.state().await?;
        Ok((sink, state))
    }

    async fn state(&self) -> Result<ChainState, PgSinkError> {
        let row = sqlx::query("SELECT seq, hash FROM warden_decision_log_head WHERE singleton = 1")
            .fetch_one(&self.pool)
            .await?;
        let seq: i64 = row.try_get("seq")?;
        Ok(ChainState {
            next_seq: u64::try_from(seq.saturating_add(1)).unwrap_or_default(),
            head: row.try_get("hash")?,
        })
    }

    /// Chains `records` after the table's head and inserts them, in one transaction; returns
    /// the new head. Checkpoint records are signed here, over the head they actually follow.
    pub async fn append(
        &self,
        records: &mut [Record],
        key: &SigningKey,
    ) -> Result<ChainState, PgSinkError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT seq, hash FROM warden_decision_log_head WHERE singleton = 1 FOR UPDATE",
        )
        .fetch_one(&mut *tx)
        .await?;
        let seq: i64 = row.try_get("seq")?;
        let mut state = ChainState {
            next_seq: u64::try_from(seq.saturating_add(1)).unwrap_or_default(),
            head: row.try_get("hash")?,
        };
        if state.next_seq == 0 {
            state.head = GENESIS.to_owned();
        }
        for record in records.iter_mut() {
            if record.kind == Kind::Checkpoint
                && let Some(through) = state.next_seq.checked_sub(1)
            {
                record.checkpoint = Some(key.checkpoint(through, &state.head));
            }
            let (line, hash) = encode(state.next_seq, &state.head, record)?;
            sqlx::query(
                "INSERT INTO warden_decision_log (seq, id, kind, time, tenant, principal, resource, decision, reason, line)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(i64::try_from(state.next_seq).unwrap_or(i64::MAX))
            .bind(&record.id)
            .bind(kind_name(record.kind))
            .bind(&record.time)
            .bind(record.tenant())
            .bind(record.principal.as_ref().map(entity_text))
            .bind(record.resource.as_ref().map(entity_text))
            .bind(record.decision.as_deref())
            .bind(record.reason.as_deref())
            .bind(&line)
            .execute(&mut *tx)
            .await?;
            state.next_seq = state.next_seq.saturating_add(1);
            state.head = hash;
        }
        let last = state.next_seq.saturating_sub(1);
        let head = Head {
            checkpoint: key.checkpoint(last, &state.head),
        };
        sqlx::query("UPDATE warden_decision_log_head SET seq = $1, hash = $2, head = $3 WHERE singleton = 1")
            .bind(i64::try_from(last).unwrap_or(i64::MAX))
            .bind(&state.head)
            .bind(serde_json::to_string(&head)?)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(state)
    }

    /// Every line in chain order, from `after_seq` on, at most `limit`.
    pub async fn lines(
        &self,
        after_seq: Option<u64>,
        limit: i64,
    ) -> Result<Vec<String>, PgSinkError> {
        let after = after_seq.map_or(-1, |s| i64::try_from(s).unwrap_or(i64::MAX));
        let rows = sqlx::query(
            "SELECT line FROM warden_decision_log WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| row.try_get::<String, _>("line").map_err(PgSinkError::from))
            .collect()
    }

    /// Lines newest first, before `before_seq` (or from the newest), at most `limit`.
    pub async fn lines_newest_first(
        &self,
        before_seq: Option<u64>,
        limit: i64,
    ) -> Result<Vec<String>, PgSinkError> {
        let before = before_seq.map_or(i64::MAX, |s| i64::try_from(s).unwrap_or(i64::MAX));
        let rows = sqlx::query(
            "SELECT line FROM warden_decision_log WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| row.try_get::<String, _>("line").map_err(PgSinkError::from))
            .collect()
    }

    /// The signed head, if any batch was written.
    pub async fn head(&self) -> Result<Option<Head>, PgSinkError> {
        let row = sqlx::query("SELECT head FROM warden_decision_log_head WHERE singleton = 1")
            .fetch_optional(&self.pool)
            .await?;
        let text: Option<String> = match row {
            Some(row) => row.try_get("head")?,
            None => None,
        };
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// The line of record `id`.
    pub async fn find(&self, id: &str) -> Result<Option<String>, PgSinkError> {
        let row = sqlx::query(
            "SELECT line FROM warden_decision_log WHERE id = $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(row) => Some(row.try_get("line")?),
            None => None,
        })
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Decision => "decision",
        Kind::Admin => "admin",
        Kind::Checkpoint => "checkpoint",
    }
}

fn entity_text(entity: &crate::record::EntityRef) -> String {
    format!(
        "{}::{}",
        entity.entity_type,
        serde_json::Value::String(entity.id.clone())
    )
}
