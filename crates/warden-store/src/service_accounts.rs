//! Service accounts and their credentials: the store half of non-human identities.
//!
//! An account belongs to one tenant, has an owner (a principal of that tenant), a purpose,
//! scopes and an expiry. Its credentials are client secrets (only their SHA-256 digest is kept)
//! and public keys for private-key JWT client authentication; each has its own expiry, and
//! several may be active at once so that rotation has an overlap. Every change is audited in
//! `admin_audit` (scope and owner changes with before and after) and bumps the store version, so
//! every replica sees it within one poll. Disabling or deleting an account also writes a client
//! revocation in the same transaction: its outstanding tokens die with it.

use crate::{BeginWrite, ClientId, Revocation, RevocationKind, Store, StoreError, TenantId};

/// An account's lifecycle status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountStatus {
    /// May obtain and use tokens.
    Active,
    /// Offboarded: no token, and every outstanding one revoked.
    Disabled,
    /// Deleted: kept for the record, never listed as live.
    Deleted,
}

impl AccountStatus {
    /// As stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Disabled => "disabled",
            AccountStatus::Deleted => "deleted",
        }
    }

    fn parse(text: &str) -> Result<Self, StoreError> {
        match text {
            "active" => Ok(AccountStatus::Active),
            "disabled" => Ok(AccountStatus::Disabled),
            "deleted" => Ok(AccountStatus::Deleted),
            other => Err(StoreError::Corrupt(format!(
                "unknown service account status `{other}`"
            ))),
        }
    }
}

/// What a credential is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialSecret {
    /// A client secret, as the hex SHA-256 digest of the secret.
    SecretDigest(String),
    /// A public key (one JWK, as JSON text) for `private_key_jwt`.
    PublicKey(String),
}

/// One credential of an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    /// Public id, shown in lists and audit records.
    pub id: String,
    /// The digest or the public key.
    pub secret: CredentialSecret,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds after which it no longer authenticates.
    pub expires_at: i64,
    /// When it was retired, if it was.
    pub retired_at: Option<i64>,
}

impl Credential {
    /// `secret` or `public_key`.
    pub fn kind(&self) -> &'static str {
        match self.secret {
            CredentialSecret::SecretDigest(_) => "secret",
            CredentialSecret::PublicKey(_) => "public_key",
        }
    }

    /// Whether it authenticates at `now`.
    pub fn usable(&self, now: i64) -> bool {
        self.retired_at.is_none() && now < self.expires_at
    }
}

/// One service account with its credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceAccount {
    /// The OAuth client id (globally unique), e.g. `sa_…`.
    pub client_id: String,
    /// Its tenant.
    pub tenant: String,
    /// A name, unique among the tenant's live accounts.
    pub name: String,
    /// The owner, as a Cedar uid (`User::"acme/alice"`).
    pub owner: String,
    /// Why it exists.
    pub purpose: String,
    /// Scopes it may be granted.
    pub scopes: Vec<String>,
    /// Lifetime of its access tokens.
    pub token_ttl_seconds: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
    /// Unix seconds after which it can obtain no token.
    pub expires_at: i64,
    /// Lifecycle status.
    pub status: AccountStatus,
    /// When it last obtained or used a token (recorded in batches).
    pub last_used_at: Option<i64>,
    /// Its credentials, oldest first.
    pub credentials: Vec<Credential>,
}

type AccountRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    String,
    i64,
    String,
    Option<i64>,
);
type CredentialRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    i64,
    Option<i64>,
);

/// The account columns, in [`AccountRow`] order (a macro, so queries stay static strings).
macro_rules! account_columns {
    () => {
        "client_id, tenant, name, owner, purpose, scopes, token_ttl_seconds, created_at, created_by, expires_at, status, last_used_at"
    };
}
/// The credential columns, in [`CredentialRow`] order, of table alias `c`.
macro_rules! credential_columns {
    () => {
        "c.id, c.client_id, c.kind, c.secret_digest, c.public_jwk, c.created_at, c.expires_at, c.retired_at"
    };
}

fn account_from_row(row: AccountRow) -> Result<ServiceAccount, StoreError> {
    let (
        client_id,
        tenant,
        name,
        owner,
        purpose,
        scopes,
        token_ttl_seconds,
        created_at,
        created_by,
        expires_at,
        status,
        last_used_at,
    ) = row;
    Ok(ServiceAccount {
        status: AccountStatus::parse(&status)?,
        scopes: scopes.split_whitespace().map(str::to_owned).collect(),
        client_id,
        tenant,
        name,
        owner,
        purpose,
        token_ttl_seconds,
        created_at,
        created_by,
        expires_at,
        last_used_at,
        credentials: Vec::new(),
    })
}

fn credential_from_row(row: CredentialRow) -> Result<(String, Credential), StoreError> {
    let (id, client_id, kind, digest, jwk, created_at, expires_at, retired_at) = row;
    let secret = match (kind.as_str(), digest, jwk) {
        ("secret", Some(digest), _) => CredentialSecret::SecretDigest(digest),
        ("public_key", _, Some(jwk)) => CredentialSecret::PublicKey(jwk),
        _ => {
            return Err(StoreError::Corrupt(format!(
                "credential {id} of {client_id} has kind `{kind}` without its material"
            )));
        }
    };
    Ok((
        client_id,
        Credential {
            id,
            secret,
            created_at,
            expires_at,
            retired_at,
        },
    ))
}

/// Inserts one credential inside a transaction.
macro_rules! insert_credential {
    ($tx:ident, $client_id:expr, $credential:expr) => {{
        let credential: &Credential = $credential;
        let (kind, digest, jwk) = match &credential.secret {
            CredentialSecret::SecretDigest(digest) => ("secret", Some(digest.clone()), None),
            CredentialSecret::PublicKey(jwk) => ("public_key", None, Some(jwk.clone())),
        };
        sqlx::query(
            "INSERT INTO service_account_credentials (id, client_id, kind, secret_digest, public_jwk, created_at, expires_at, retired_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&credential.id)
        .bind($client_id)
        .bind(kind)
        .bind(digest)
        .bind(jwk)
        .bind(credential.created_at)
        .bind(credential.expires_at)
        .bind(credential.retired_at)
        .execute(&mut *$tx)
        .await?;
    }};
}

/// Locks and reads one live (not deleted) account inside a transaction, or fails `NotFound`.
macro_rules! live_account {
    ($tx:ident, $tenant:expr, $client_id:expr) => {{
        let row: Option<(String, String, String)> = sqlx::query_as(
            "SELECT scopes, owner, status FROM service_accounts WHERE tenant = $1 AND client_id = $2",
        )
        .bind($tenant)
        .bind($client_id)
        .fetch_optional(&mut *$tx)
        .await?;
        match row {
            Some(row) if row.2 != "deleted" => row,
            _ => {
                return Err(StoreError::NotFound(format!(
                    "no service account `{}` in tenant `{}`",
                    $client_id, $tenant
                )));
            }
        }
    }};
}

/// What an account's offboarding writes besides its status.
#[derive(Clone, Debug)]
pub struct Offboarding<'a> {
    /// Why.
    pub reason: &'a str,
    /// Who.
    pub actor: &'a str,
    /// Unix seconds.
    pub now: i64,
    /// Tokens issued before this second are revoked (the client revocation's time).
    pub revoke_before: i64,
    /// When the revocation may lapse (after every outstanding token has expired).
    pub revocation_expires_at: i64,
}

impl Store {
    /// Creates an account with its first credential, audited. A live account of the same name
    /// in the tenant is refused.
    pub async fn create_service_account(&self, account: &ServiceAccount) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let (taken,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM service_accounts WHERE tenant = $1 AND name = $2 AND status <> 'deleted'")
                .bind(&account.tenant).bind(&account.name).fetch_one(&mut *tx).await?;
            if taken > 0 {
                return Err(StoreError::Refused(format!(
                    "tenant `{}` already has a service account named `{}`",
                    account.tenant, account.name
                )));
            }
            sqlx::query(concat!("INSERT INTO service_accounts (", account_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"))
                .bind(&account.client_id).bind(&account.tenant).bind(&account.name).bind(&account.owner)
                .bind(&account.purpose).bind(account.scopes.join(" ")).bind(account.token_ttl_seconds)
                .bind(account.created_at).bind(&account.created_by).bind(account.expires_at)
                .bind(account.status.as_str()).bind(account.last_used_at)
                .execute(&mut *tx).await?;
            for credential in &account.credentials {
                insert_credential!(tx, &account.client_id, credential);
            }
            let detail = serde_json::json!({
                "client_id": account.client_id,
                "name": account.name,
                "owner": account.owner,
                "purpose": account.purpose,
                "scopes": account.scopes,
                "expires_at": account.expires_at,
                "credentials": account.credentials.iter().map(|c| &c.id).collect::<Vec<_>>(),
            }).to_string();
            finish_write!(tx, account.created_at, &account.created_by, "service_account.create", &account.tenant, detail);
            Ok(())
        })
    }

    /// Accounts (with credentials) of one tenant, or of all tenants; deleted ones only when
    /// asked.
    pub async fn service_accounts(
        &self,
        tenant: Option<&str>,
        include_deleted: bool,
    ) -> Result<Vec<ServiceAccount>, StoreError> {
        let (accounts, credentials): (Vec<AccountRow>, Vec<CredentialRow>) = on_pool!(self, pool => {
            let accounts = sqlx::query_as(concat!("SELECT ", account_columns!(), " FROM service_accounts WHERE ($1 IS NULL OR tenant = $1) ORDER BY tenant, name, client_id"))
                .bind(tenant).fetch_all(pool).await?;
            let credentials = sqlx::query_as(concat!(
                "SELECT ", credential_columns!(), " FROM service_account_credentials c JOIN service_accounts a ON a.client_id = c.client_id WHERE ($1 IS NULL OR a.tenant = $1) ORDER BY c.created_at, c.id"
            ))
                .bind(tenant).fetch_all(pool).await?;
            (accounts, credentials)
        });
        let mut accounts = accounts
            .into_iter()
            .map(account_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        accounts.retain(|account| include_deleted || account.status != AccountStatus::Deleted);
        let mut index: std::collections::HashMap<String, usize> = accounts
            .iter()
            .enumerate()
            .map(|(position, account)| (account.client_id.clone(), position))
            .collect();
        for row in credentials {
            let (client_id, credential) = credential_from_row(row)?;
            if let Some(account) = index
                .get_mut(&client_id)
                .and_then(|position| accounts.get_mut(*position))
            {
                account.credentials.push(credential);
            }
        }
        Ok(accounts)
    }

    /// One account by client id (any tenant, any status), with its credentials.
    pub async fn service_account(
        &self,
        client_id: &ClientId,
    ) -> Result<Option<ServiceAccount>, StoreError> {
        let client_id = client_id.as_str();
        let (account, credentials): (Option<AccountRow>, Vec<CredentialRow>) = on_pool!(self, pool => {
            let account = sqlx::query_as(concat!("SELECT ", account_columns!(), " FROM service_accounts WHERE client_id = $1"))
                .bind(client_id).fetch_optional(pool).await?;
            let credentials = sqlx::query_as(concat!("SELECT ", credential_columns!(), " FROM service_account_credentials c WHERE c.client_id = $1 ORDER BY c.created_at, c.id"))
                .bind(client_id).fetch_all(pool).await?;
            (account, credentials)
        });
        let Some(row) = account else {
            return Ok(None);
        };
        let mut account = account_from_row(row)?;
        for row in credentials {
            account.credentials.push(credential_from_row(row)?.1);
        }
        Ok(Some(account))
    }

    /// Adds a credential to a live account, audited. With `overlap_until`, every other usable
    /// secret of the account expires then at the latest (a rotation).
    pub async fn add_credential(
        &self,
        tenant: &TenantId,
        client_id: &ClientId,
        credential: &Credential,
        overlap_until: Option<i64>,
        actor: &str,
    ) -> Result<(), StoreError> {
        let tenant = tenant.as_str();
        let client_id = client_id.as_str();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let _ = live_account!(tx, tenant, client_id);
            insert_credential!(tx, client_id, credential);
            let action = if let Some(until) = overlap_until {
                sqlx::query("UPDATE service_account_credentials SET expires_at = $1 WHERE client_id = $2 AND kind = 'secret' AND id <> $3 AND retired_at IS NULL AND expires_at > $1")
                    .bind(until).bind(client_id).bind(&credential.id)
                    .execute(&mut *tx).await?;
                "service_account.credential.rotate"
            } else {
                "service_account.credential.add"
            };
            let detail = serde_json::json!({
                "client_id": client_id,
                "credential": credential.id,
                "kind": credential.kind(),
                "expires_at": credential.expires_at,
                "others_expire_at": overlap_until,
            }).to_string();
            finish_write!(tx, credential.created_at, actor, action, tenant, detail);
            Ok(())
        })
    }

    /// Retires one credential at once, audited.
    pub async fn retire_credential(
        &self,
        tenant: &TenantId,
        client_id: &ClientId,
        credential_id: &str,
        actor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let tenant = tenant.as_str();
        let client_id = client_id.as_str();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let _ = live_account!(tx, tenant, client_id);
            let retired = sqlx::query("UPDATE service_account_credentials SET retired_at = $1 WHERE client_id = $2 AND id = $3 AND retired_at IS NULL")
                .bind(now).bind(client_id).bind(credential_id)
                .execute(&mut *tx).await?.rows_affected();
            if retired == 0 {
                return Err(StoreError::NotFound(format!("service account `{client_id}` has no unretired credential `{credential_id}`")));
            }
            let detail = serde_json::json!({"client_id": client_id, "credential": credential_id}).to_string();
            finish_write!(tx, now, actor, "service_account.credential.retire", tenant, detail);
            Ok(())
        })
    }

    /// Replaces an account's scopes, audited with before and after; returns the old scopes.
    pub async fn set_service_account_scopes(
        &self,
        tenant: &TenantId,
        client_id: &ClientId,
        scopes: &[String],
        reason: &str,
        actor: &str,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        let tenant = tenant.as_str();
        let client_id = client_id.as_str();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let (before, _, _) = live_account!(tx, tenant, client_id);
            sqlx::query("UPDATE service_accounts SET scopes = $1 WHERE client_id = $2")
                .bind(scopes.join(" ")).bind(client_id)
                .execute(&mut *tx).await?;
            let before: Vec<String> = before.split_whitespace().map(str::to_owned).collect();
            let detail = serde_json::json!({"client_id": client_id, "before": before, "after": scopes, "reason": reason}).to_string();
            finish_write!(tx, now, actor, "service_account.scopes", tenant, detail);
            Ok(before)
        })
    }

    /// Transfers ownership, audited with before and after; returns the old owner.
    pub async fn set_service_account_owner(
        &self,
        tenant: &TenantId,
        client_id: &ClientId,
        owner: &str,
        reason: &str,
        actor: &str,
        now: i64,
    ) -> Result<String, StoreError> {
        let tenant = tenant.as_str();
        let client_id = client_id.as_str();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let (_, before, _) = live_account!(tx, tenant, client_id);
            sqlx::query("UPDATE service_accounts SET owner = $1 WHERE client_id = $2")
                .bind(owner).bind(client_id)
                .execute(&mut *tx).await?;
            let detail = serde_json::json!({"client_id": client_id, "before": before, "after": owner, "reason": reason}).to_string();
            finish_write!(tx, now, actor, "service_account.owner", tenant, detail);
            Ok(before)
        })
    }

    /// Disables (or deletes) an account: its status, every credential retired on delete, and a
    /// client revocation of its outstanding tokens, in one transaction.
    pub async fn offboard_service_account(
        &self,
        tenant: &TenantId,
        client_id: &ClientId,
        status: AccountStatus,
        offboarding: &Offboarding<'_>,
    ) -> Result<(), StoreError> {
        let tenant = tenant.as_str();
        let client_id = client_id.as_str();
        let action = match status {
            AccountStatus::Disabled => "service_account.disable",
            AccountStatus::Deleted => "service_account.delete",
            AccountStatus::Active => {
                return Err(StoreError::Refused(
                    "offboarding sets disabled or deleted".to_owned(),
                ));
            }
        };
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let (_, _, current) = live_account!(tx, tenant, client_id);
            if current == status.as_str() {
                return Err(StoreError::Refused(format!("service account `{client_id}` is already {current}")));
            }
            sqlx::query("UPDATE service_accounts SET status = $1 WHERE client_id = $2")
                .bind(status.as_str()).bind(client_id)
                .execute(&mut *tx).await?;
            if status == AccountStatus::Deleted {
                sqlx::query("UPDATE service_account_credentials SET retired_at = $1 WHERE client_id = $2 AND retired_at IS NULL")
                    .bind(offboarding.now).bind(client_id)
                    .execute(&mut *tx).await?;
            }
            let _ = insert_revocation!(tx, &Revocation {
                id: 0,
                version: 0,
                kind: RevocationKind::Client,
                issuer: String::new(),
                value: client_id.to_owned(),
                revoked_at: offboarding.revoke_before,
                expires_at: Some(offboarding.revocation_expires_at),
                reason: offboarding.reason.to_owned(),
                actor: offboarding.actor.to_owned(),
            });
            let detail = serde_json::json!({"client_id": client_id, "reason": offboarding.reason, "tokens_revoked_before": offboarding.revoke_before}).to_string();
            sqlx::query("INSERT INTO admin_audit (at, actor, action, tenant, detail) VALUES ($1, $2, $3, $4, $5)")
                .bind(offboarding.now).bind(offboarding.actor).bind(action).bind(tenant).bind(detail)
                .execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Records when accounts were last used (batched by the caller; not audited, no version
    /// bump: nothing a decision depends on). Never moves a time backwards.
    pub async fn record_last_used(&self, uses: &[(String, i64)]) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            for (client_id, at) in uses {
                sqlx::query("UPDATE service_accounts SET last_used_at = $1 WHERE client_id = $2 AND (last_used_at IS NULL OR last_used_at < $1)")
                    .bind(*at).bind(client_id)
                    .execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Records that scopes of accounts helped allow decisions (batched by the caller).
    pub async fn record_scope_usage(
        &self,
        uses: &[(String, String, i64)],
    ) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            for (client_id, scope, at) in uses {
                sqlx::query("INSERT INTO service_account_scope_usage (client_id, scope, last_used_at) VALUES ($1, $2, $3) \
                             ON CONFLICT (client_id, scope) DO UPDATE SET last_used_at = excluded.last_used_at WHERE service_account_scope_usage.last_used_at < excluded.last_used_at")
                    .bind(client_id).bind(scope).bind(*at)
                    .execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// When each scope of each account last helped allow a decision: `(client_id, scope, at)`.
    pub async fn scope_usage(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        let rows: Vec<(String, String, i64)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT client_id, scope, last_used_at FROM service_account_scope_usage ORDER BY client_id, scope",
        ).fetch_all(pool).await?);
        Ok(rows)
    }

    /// Remembers a client assertion's `jti` until it expires; `false` when it was seen before
    /// (a replay). Forgotten assertions are purged on the way.
    pub async fn remember_assertion(
        &self,
        client_id: &ClientId,
        jti: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let client_id = client_id.as_str();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            sqlx::query("DELETE FROM client_assertion_jtis WHERE expires_at < $1")
                .bind(now).execute(&mut *tx).await?;
            let inserted = sqlx::query("INSERT INTO client_assertion_jtis (client_id, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT (client_id, jti) DO NOTHING")
                .bind(client_id).bind(jti).bind(expires_at)
                .execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            Ok(inserted == 1)
        })
    }
}
