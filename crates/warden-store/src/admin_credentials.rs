//! Admin credentials as a lifecycle: create (with a tenant scope and an expiry), list, rotate,
//! revoke. SECURITY-SENSITIVE. The store keeps SHA-256 digests only (the secret is shown once
//! by whoever made it); a credential authenticates while it is neither revoked nor expired.
//!
//! Revoking the last usable credential for all tenants would lock every operator out of the
//! admin API, so it is refused unless the caller says `force` (the way back is then
//! `warden admin init` on the store). Every change is in `admin_audit`, in its own transaction.
//! Each write first takes the store-version row's lock, so two revocations racing for the last
//! two all-tenant credentials are ordered and the second one sees the first.

use crate::{AdminCredential, BeginWrite, Store, StoreError};

/// How long another credential for all tenants must stay usable to count as the one left when
/// a credential for all tenants is revoked: one that expires sooner is no way back in.
pub const LAST_CREDENTIAL_MARGIN_SECONDS: i64 = 3600;

/// One admin credential as listed (never its digest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminCredentialRecord {
    /// Public id (`adm_…`), the actor of its audit records.
    pub id: String,
    /// `None` for all tenants, or the one tenant it may administer.
    pub tenant_scope: Option<String>,
    /// Free text to tell credentials apart (`ci`, `alice's laptop`).
    pub label: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Who made it (`admin:adm_…`, or `warden admin init`).
    pub created_by: String,
    /// Unix seconds after which it no longer authenticates.
    pub expires_at: Option<i64>,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
    /// When its secret was last replaced.
    pub rotated_at: Option<i64>,
}

impl AdminCredentialRecord {
    /// `active`, `expired` or `revoked` at `now`.
    pub fn status(&self, now: i64) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.expires_at.is_some_and(|at| at <= now) {
            "expired"
        } else {
            "active"
        }
    }
}

/// A new admin credential to store.
#[derive(Clone, Debug)]
pub struct NewAdminCredential {
    /// Its id, digest and scope.
    pub credential: AdminCredential,
    /// Free text.
    pub label: String,
    /// Unix seconds after which it no longer authenticates.
    pub expires_at: Option<i64>,
}

type RecordRow = (
    String,
    Option<String>,
    String,
    i64,
    String,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// The columns of a listed record, in [`RecordRow`]'s order.
macro_rules! record_columns {
    () => {
        "id, tenant_scope, label, created_at, created_by, expires_at, revoked_at, rotated_at"
    };
}

fn record(row: RecordRow) -> AdminCredentialRecord {
    let (id, tenant_scope, label, created_at, created_by, expires_at, revoked_at, rotated_at) = row;
    AdminCredentialRecord {
        id,
        tenant_scope,
        label,
        created_at,
        created_by,
        expires_at,
        revoked_at,
        rotated_at,
    }
}

/// SQL: the credential is usable at `$1`.
macro_rules! usable {
    () => {
        "revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)"
    };
}

impl Store {
    /// The credentials that authenticate at `now` (digests, for constant-time matching).
    pub async fn active_admin_credentials(
        &self,
        now: i64,
    ) -> Result<Vec<AdminCredential>, StoreError> {
        let sql = concat!(
            "SELECT id, digest, tenant_scope FROM admin_credentials WHERE ",
            usable!(),
            " ORDER BY id"
        );
        let rows: Vec<(String, String, Option<String>)> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(now).fetch_all(pool).await?);
        Ok(rows
            .into_iter()
            .map(|(id, digest_hex, tenant_scope)| AdminCredential {
                id,
                digest_hex,
                tenant_scope,
            })
            .collect())
    }

    /// Every admin credential, revoked and expired ones too, oldest first.
    pub async fn list_admin_credentials(&self) -> Result<Vec<AdminCredentialRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            record_columns!(),
            " FROM admin_credentials ORDER BY created_at, id"
        );
        let rows: Vec<RecordRow> =
            on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await?);
        Ok(rows.into_iter().map(record).collect())
    }

    /// One credential, as listed.
    pub async fn admin_credential(
        &self,
        id: &str,
    ) -> Result<Option<AdminCredentialRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            record_columns!(),
            " FROM admin_credentials WHERE id = $1"
        );
        let row: Option<RecordRow> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(id).fetch_optional(pool).await?);
        Ok(row.map(record))
    }

    /// Stores a new credential made by `actor` (audited `admin.credential.create`).
    pub async fn create_admin_credential(
        &self,
        new: &NewAdminCredential,
        actor: &str,
        now: i64,
    ) -> Result<AdminCredentialRecord, StoreError> {
        let credential = &new.credential;
        let detail = serde_json::json!({
            "credential": credential.id,
            "tenant_scope": credential.tenant_scope,
            "expires_at": new.expires_at,
            "label": new.label,
        })
        .to_string();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query("INSERT INTO admin_credentials (id, digest, tenant_scope, created_at, created_by, expires_at, label) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(&credential.id).bind(&credential.digest_hex).bind(&credential.tenant_scope)
                .bind(now).bind(actor).bind(new.expires_at).bind(&new.label)
                .execute(&mut *tx).await?;
            sqlx::query("INSERT INTO admin_audit (at, actor, action, tenant, detail) VALUES ($1, $2, $3, $4, $5)")
                .bind(now).bind(actor).bind("admin.credential.create").bind(&credential.tenant_scope).bind(&detail)
                .execute(&mut *tx).await?;
            tx.commit().await?;
        });
        Ok(AdminCredentialRecord {
            id: credential.id.clone(),
            tenant_scope: credential.tenant_scope.clone(),
            label: new.label.clone(),
            created_at: now,
            created_by: actor.to_owned(),
            expires_at: new.expires_at,
            revoked_at: None,
            rotated_at: None,
        })
    }

    /// Replaces the secret (its digest) of a usable credential; the old secret stops working at
    /// once. Audited `admin.credential.rotate`. NotFound when it is unknown, revoked or expired.
    pub async fn rotate_admin_credential(
        &self,
        id: &str,
        new_digest_hex: &str,
        actor: &str,
        now: i64,
    ) -> Result<AdminCredentialRecord, StoreError> {
        let update = concat!(
            "UPDATE admin_credentials SET digest = $2, rotated_at = $1 WHERE id = $3 AND ",
            usable!()
        );
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let done = sqlx::query(update).bind(now).bind(new_digest_hex).bind(id)
                .execute(&mut *tx).await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!("no usable admin credential `{id}`")));
            }
            sqlx::query("INSERT INTO admin_audit (at, actor, action, tenant, detail) VALUES ($1, $2, $3, $4, $5)")
                .bind(now).bind(actor).bind("admin.credential.rotate").bind(Option::<String>::None)
                .bind(serde_json::json!({"credential": id}).to_string())
                .execute(&mut *tx).await?;
            tx.commit().await?;
        });
        self.admin_credential(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no admin credential `{id}`")))
    }

    /// Revokes a usable credential (audited `admin.credential.revoke` with the reason).
    /// Refused when it is the last usable credential for all tenants, unless `force`; another
    /// counts only if it stays usable for [`LAST_CREDENTIAL_MARGIN_SECONDS`] more.
    pub async fn revoke_admin_credential(
        &self,
        id: &str,
        reason: &str,
        force: bool,
        actor: &str,
        now: i64,
    ) -> Result<AdminCredentialRecord, StoreError> {
        let target = concat!(
            "SELECT tenant_scope FROM admin_credentials WHERE id = $2 AND ",
            usable!()
        );
        let others = concat!(
            "SELECT COUNT(*) FROM admin_credentials WHERE id <> $2 AND tenant_scope IS NULL AND ",
            usable!()
        );
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            // Serialises credential revocations (and every other audited write) on both back ends.
            sqlx::query("UPDATE store_version SET version = version WHERE id = 1")
                .execute(&mut *tx).await?;
            let scope: Option<(Option<String>,)> = sqlx::query_as(target).bind(now).bind(id)
                .fetch_optional(&mut *tx).await?;
            let Some((scope,)) = scope else {
                return Err(StoreError::NotFound(format!("no usable admin credential `{id}`")));
            };
            if scope.is_none() && !force {
                let (remaining,): (i64,) = sqlx::query_as(others)
                    .bind(now.saturating_add(LAST_CREDENTIAL_MARGIN_SECONDS)).bind(id)
                    .fetch_one(&mut *tx).await?;
                if remaining == 0 {
                    return Err(StoreError::Refused(format!(
                        "`{id}` is the last usable admin credential for all tenants (another expiring within {LAST_CREDENTIAL_MARGIN_SECONDS} s does not count): revoking it would lock every operator out of the admin API; create another first, or pass force"
                    )));
                }
            }
            sqlx::query("UPDATE admin_credentials SET revoked_at = $1 WHERE id = $2")
                .bind(now).bind(id).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO admin_audit (at, actor, action, tenant, detail) VALUES ($1, $2, $3, $4, $5)")
                .bind(now).bind(actor).bind("admin.credential.revoke").bind(&scope)
                .bind(serde_json::json!({"credential": id, "reason": reason, "force": force}).to_string())
                .execute(&mut *tx).await?;
            tx.commit().await?;
        });
        self.admin_credential(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no admin credential `{id}`")))
    }
}
