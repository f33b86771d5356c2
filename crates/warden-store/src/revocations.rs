//! Revocations: by token id, session, subject, client and signing key. Append-only rows with
//! the store version their write bumped to, so every replica reads exactly what is new since
//! the version it last saw; expired rows are deleted by whichever replica cleans up first.

use crate::{BeginWrite, Store, StoreError};

/// What a revocation covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RevocationKind {
    /// One token, by `(iss, jti)`.
    Token,
    /// Every token of a session, by `(iss, sid)`.
    Session,
    /// Every token of a subject issued before the revocation, by `(iss, sub)`.
    Subject,
    /// Every token of a client (service account) issued before the revocation, by client id.
    Client,
    /// Every token signed with a key, by `kid`.
    Key,
}

impl RevocationKind {
    /// As stored and shown: `token`, `session`, `subject`, `client`, `key`.
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationKind::Token => "token",
            RevocationKind::Session => "session",
            RevocationKind::Subject => "subject",
            RevocationKind::Client => "client",
            RevocationKind::Key => "key",
        }
    }

    /// Parses [`RevocationKind::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        [
            RevocationKind::Token,
            RevocationKind::Session,
            RevocationKind::Subject,
            RevocationKind::Client,
            RevocationKind::Key,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }

    /// Whether the issuer is part of the key (token, session, subject).
    pub fn issuer_scoped(self) -> bool {
        matches!(
            self,
            RevocationKind::Token | RevocationKind::Session | RevocationKind::Subject
        )
    }
}

/// One revocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation {
    /// Row id.
    pub id: i64,
    /// The store version it was written at.
    pub version: i64,
    /// What it covers.
    pub kind: RevocationKind,
    /// The issuer (empty for client and key revocations).
    pub issuer: String,
    /// The jti, sid, sub, client id or kid.
    pub value: String,
    /// When (Unix seconds); subject and client revocations cover tokens issued before it.
    pub revoked_at: i64,
    /// When it lapses (Unix seconds), if ever.
    pub expires_at: Option<i64>,
    /// Why.
    pub reason: String,
    /// Who.
    pub actor: String,
}

type RevocationRow = (
    i64,
    i64,
    String,
    String,
    String,
    i64,
    Option<i64>,
    String,
    String,
);

fn from_row(row: RevocationRow) -> Result<Revocation, StoreError> {
    let (id, version, kind, issuer, value, revoked_at, expires_at, reason, actor) = row;
    Ok(Revocation {
        id,
        version,
        kind: RevocationKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("revocation {id} has kind `{kind}`")))?,
        issuer,
        value,
        revoked_at,
        expires_at,
        reason,
        actor,
    })
}

impl Store {
    /// Records a revocation (audited) and returns it with its id and version.
    pub async fn revoke(&self, revocation: &Revocation) -> Result<Revocation, StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let (id, version) = insert_revocation!(tx, revocation);
            let detail = serde_json::json!({
                "kind": revocation.kind.as_str(),
                "issuer": revocation.issuer,
                "value": revocation.value,
                "expires_at": revocation.expires_at,
                "reason": revocation.reason,
            }).to_string();
            sqlx::query("INSERT INTO admin_audit (at, actor, action, tenant, detail) VALUES ($1, $2, $3, $4, $5)")
                .bind(revocation.revoked_at).bind(&revocation.actor).bind("revoke").bind("").bind(detail)
                .execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(Revocation { id, version, ..revocation.clone() })
        })
    }

    /// Revocations written after store version `after`, in force at `now`.
    pub async fn revocations_since(
        &self,
        after: i64,
        now: i64,
    ) -> Result<Vec<Revocation>, StoreError> {
        let rows: Vec<RevocationRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id, version, kind, issuer, value, revoked_at, expires_at, reason, actor FROM revocations WHERE version > $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY version",
        ).bind(after).bind(now).fetch_all(pool).await?);
        rows.into_iter().map(from_row).collect()
    }

    /// Every revocation in force at `now`, newest first, at most `limit`.
    pub async fn revocations(&self, now: i64, limit: i64) -> Result<Vec<Revocation>, StoreError> {
        let rows: Vec<RevocationRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT id, version, kind, issuer, value, revoked_at, expires_at, reason, actor FROM revocations WHERE expires_at IS NULL OR expires_at > $1 ORDER BY id DESC LIMIT $2",
        ).bind(now).bind(limit).fetch_all(pool).await?);
        rows.into_iter().map(from_row).collect()
    }

    /// Deletes revocations that lapsed before `now`; returns how many.
    pub async fn purge_expired_revocations(&self, now: i64) -> Result<u64, StoreError> {
        let deleted = on_pool!(self, pool => sqlx::query("DELETE FROM revocations WHERE expires_at IS NOT NULL AND expires_at <= $1")
            .bind(now).execute(pool).await?.rows_affected());
        Ok(deleted)
    }
}
