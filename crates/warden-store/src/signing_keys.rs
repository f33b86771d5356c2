//! Warden's own token-signing keys. The private half is stored sealed (the caller encrypts it
//! with the key-encryption key; the store never sees it in the clear). Exactly one key signs at
//! a time (the one not retired); a retired key stays published until `publish_until`, so every
//! token it signed can still be verified until it expires.

use crate::{BeginWrite, Store, StoreError};

/// One signing key, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// Key id (the JWK thumbprint).
    pub kid: String,
    /// `EdDSA` or `ES256`.
    pub algorithm: String,
    /// The public JWK, as JSON text.
    pub public_jwk: String,
    /// The private key, sealed by the caller.
    pub private_key_sealed: String,
    /// Unix seconds.
    pub created_at: i64,
    /// When it stopped signing.
    pub retired_at: Option<i64>,
    /// When it leaves the published key set.
    pub publish_until: Option<i64>,
}

type KeyRow = (
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
);

fn from_row(row: KeyRow) -> SigningKeyRecord {
    let (kid, algorithm, public_jwk, private_key_sealed, created_at, retired_at, publish_until) =
        row;
    SigningKeyRecord {
        kid,
        algorithm,
        public_jwk,
        private_key_sealed,
        created_at,
        retired_at,
        publish_until,
    }
}

impl Store {
    /// Keys still published at `now` (the signing one and retired ones within their overlap),
    /// newest first.
    pub async fn signing_keys(&self, now: i64) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let rows: Vec<KeyRow> = on_pool!(self, pool => sqlx::query_as(
            "SELECT kid, algorithm, public_jwk, private_key_sealed, created_at, retired_at, publish_until FROM signing_keys \
             WHERE publish_until IS NULL OR publish_until > $1 ORDER BY created_at DESC, kid",
        ).bind(now).fetch_all(pool).await?);
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// Installs `new` as the signing key. When `expected_current` is given, the key signing now
    /// must be that one (it is retired, published until `old_publish_until`); when another
    /// replica rotated first, nothing changes and `false` comes back. With `None`, the key is
    /// installed only if no key signs yet (first start). Audited.
    pub async fn rotate_signing_key(
        &self,
        new: &SigningKeyRecord,
        expected_current: Option<&str>,
        old_publish_until: i64,
        actor: &str,
    ) -> Result<bool, StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            // The version row's lock serialises replicas racing to rotate.
            sqlx::query("UPDATE store_version SET version = version WHERE id = 1").execute(&mut *tx).await?;
            let current: Option<(String,)> = sqlx::query_as("SELECT kid FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1")
                .fetch_optional(&mut *tx).await?;
            if current.as_ref().map(|row| row.0.as_str()) != expected_current {
                return Ok(false);
            }
            if let Some(old) = expected_current {
                sqlx::query("UPDATE signing_keys SET retired_at = $1, publish_until = $2 WHERE kid = $3")
                    .bind(new.created_at).bind(old_publish_until).bind(old)
                    .execute(&mut *tx).await?;
            }
            sqlx::query(
                "INSERT INTO signing_keys (kid, algorithm, public_jwk, private_key_sealed, created_at, retired_at, publish_until) VALUES ($1, $2, $3, $4, $5, NULL, NULL)",
            )
            .bind(&new.kid).bind(&new.algorithm).bind(&new.public_jwk).bind(&new.private_key_sealed).bind(new.created_at)
            .execute(&mut *tx).await?;
            let detail = serde_json::json!({"kid": new.kid, "algorithm": new.algorithm, "previous": expected_current, "previous_published_until": expected_current.map(|_| old_publish_until)}).to_string();
            finish_write!(tx, new.created_at, actor, "keys.rotate", Option::<String>::None, detail);
            Ok(true)
        })
    }
}
