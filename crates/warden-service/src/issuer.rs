//! Warden as an issuer, at run time: the signing key in use, the published key set (installed
//! into the verifier as Warden's own issuer's keys, so its tokens take the same verification
//! path as any issuer's), the service accounts' current state for the decision path, and the
//! batched records of use (last use per account, scopes that helped allow a decision).
//!
//! SECURITY-SENSITIVE: the state of Warden's own accounts and keys on the decision path.
//!
//! Everything is read from the store by [`TokenIssuer::sync`], which runs at start and whenever
//! the store version moves (any replica's write), and rotates the signing key when it is due.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use serde_json::Value;
use warden_config::{ServiceAccountSettings, TokenIssuance};
use warden_issuer::signing::{self, SigningKey};
use warden_store::{AccountStatus, Store, StoreError};
use warden_token::{Principal, Verifier};

/// What the decision path needs to know of one account.
#[derive(Debug, Clone)]
pub struct AccountState {
    /// Its tenant.
    pub tenant: String,
    /// Lifecycle status.
    pub status: AccountStatus,
    /// Its scopes now (a token's scopes count only where they are still granted).
    pub scopes: HashSet<String>,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Why an account's token is refused although it verified.
#[derive(Debug, PartialEq, Eq)]
pub enum AccountRefusal {
    /// This replica does not know the account (yet).
    Unknown,
    /// Disabled, deleted or expired.
    Inactive(&'static str),
}

impl AccountRefusal {
    /// In words, for the refusal's detail.
    pub fn why(&self) -> &'static str {
        match self {
            AccountRefusal::Unknown => "the service account does not exist",
            AccountRefusal::Inactive(why) => why,
        }
    }
}

#[derive(Debug, Default)]
struct Uses {
    last_used: HashMap<String, i64>,
    policies: HashMap<(String, String), i64>,
}

/// Warden's issuer state.
pub struct TokenIssuer {
    /// `[tokens]`.
    pub settings: TokenIssuance,
    /// `[service_accounts]`.
    pub accounts_settings: ServiceAccountSettings,
    signing_key: RwLock<Option<Arc<SigningKey>>>,
    jwks: RwLock<Arc<Value>>,
    accounts: RwLock<Arc<HashMap<String, AccountState>>>,
    uses: Mutex<Uses>,
    /// When the last out-of-turn store read (for a key or account this replica does not know
    /// yet) started; at most one per second.
    catch_up: tokio::sync::Mutex<Option<std::time::Instant>>,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.settings.issuer)
            .finish_non_exhaustive()
    }
}

/// A sync failure: the store or the keys.
#[derive(Debug, thiserror::Error)]
pub enum IssuerSyncError {
    /// The store failed.
    #[error("the store: {0}")]
    Store(#[from] StoreError),
    /// A key could not be generated, unsealed or parsed.
    #[error("signing keys: {0}")]
    Keys(String),
}

impl TokenIssuer {
    /// State for these settings; nothing is loaded until [`Self::sync`].
    pub fn new(settings: TokenIssuance, accounts_settings: ServiceAccountSettings) -> Self {
        Self {
            settings,
            accounts_settings,
            signing_key: RwLock::new(None),
            jwks: RwLock::new(Arc::new(serde_json::json!({"keys": []}))),
            accounts: RwLock::new(Arc::new(HashMap::new())),
            uses: Mutex::new(Uses::default()),
            catch_up: tokio::sync::Mutex::new(None),
        }
    }

    /// The key that signs now, once loaded.
    pub fn signing_key(&self) -> Option<Arc<SigningKey>> {
        self.signing_key
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The published JWKS document.
    pub fn jwks(&self) -> Arc<Value> {
        Arc::clone(&self.jwks.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// How long a retired key stays published: the longest token lifetime plus leeway and a
    /// margin for replicas that have not yet seen the rotation.
    fn overlap_seconds(&self) -> i64 {
        self.settings.max_ttl_seconds + self.settings.leeway_seconds + 300
    }

    /// Reads keys and accounts from the store; creates the first signing key when there is
    /// none, and rotates a key older than `rotate_after_days`.
    pub async fn sync(
        &self,
        store: &Store,
        verifier: &Verifier,
        now: i64,
    ) -> Result<(), IssuerSyncError> {
        let mut records = store.signing_keys(now).await?;
        let current = records.iter().find(|record| record.retired_at.is_none());
        let due = match (current, self.settings.rotate_after) {
            (None, _) => true,
            (Some(record), Some(after)) => {
                now - record.created_at >= i64::try_from(after.as_secs()).unwrap_or(i64::MAX)
            }
            (Some(_), None) => false,
        };
        if due {
            let previous = current.map(|record| record.kid.clone());
            self.rotate(
                store,
                previous.as_deref(),
                "warden (scheduled rotation)",
                now,
            )
            .await?;
            records = store.signing_keys(now).await?;
        }
        let active = records
            .iter()
            .find(|record| record.retired_at.is_none())
            .ok_or_else(|| IssuerSyncError::Keys("no signing key in the store".to_owned()))?;
        let loaded = self.signing_key();
        if loaded.as_ref().is_none_or(|key| key.kid != active.kid) {
            let key = signing::unseal(active, &self.settings.key_encryption_key)
                .map_err(|error| IssuerSyncError::Keys(error.to_string()))?;
            *self
                .signing_key
                .write()
                .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(key));
        }
        let jwks = signing::jwks(&records);
        let (set, refused) = warden_token::keys::KeySet::from_jwks(jwks.to_string().as_bytes())
            .map_err(|error| IssuerSyncError::Keys(error.to_string()))?;
        if !refused.is_empty() {
            return Err(IssuerSyncError::Keys(refused.join("; ")));
        }
        if let Some(own) = verifier.issuer(&self.settings.issuer) {
            own.keys.install(set);
        }
        *self.jwks.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(jwks);

        // Deleted ones too: their tokens and their AuthZEN subjects are refused as deleted.
        let accounts = store
            .service_accounts(None, true)
            .await?
            .into_iter()
            .map(|account| {
                (
                    account.client_id,
                    AccountState {
                        tenant: account.tenant,
                        status: account.status,
                        scopes: account.scopes.into_iter().collect(),
                        expires_at: account.expires_at,
                    },
                )
            })
            .collect();
        *self
            .accounts
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(accounts);
        Ok(())
    }

    /// Reads keys and accounts now, out of turn: one of Warden's tokens names a key or an
    /// account this replica has not seen yet (another replica made it since the last poll). At
    /// most one read per second, whatever the tokens say; `true` when the caller should verify
    /// again (a read just ran, here or in a request that held the lock first).
    pub async fn catch_up(&self, store: &Store, verifier: &Verifier, now: i64) -> bool {
        let mut last = self.catch_up.lock().await;
        if last.is_some_and(|at| at.elapsed() < std::time::Duration::from_secs(1)) {
            return true;
        }
        *last = Some(std::time::Instant::now());
        match self.sync(store, verifier, now).await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%error, "reading signing keys and accounts out of turn failed");
                false
            }
        }
    }

    /// Rotates now: a new key signs, the previous one stays published for the overlap.
    /// Returns the new kid, or `None` when another replica rotated first.
    pub async fn rotate(
        &self,
        store: &Store,
        previous: Option<&str>,
        actor: &str,
        now: i64,
    ) -> Result<Option<String>, IssuerSyncError> {
        let record = signing::generate(
            &self.settings.algorithm,
            &self.settings.key_encryption_key,
            now,
        )
        .map_err(|error| IssuerSyncError::Keys(error.to_string()))?;
        let rotated = store
            .rotate_signing_key(&record, previous, now + self.overlap_seconds(), actor)
            .await?;
        if rotated {
            tracing::info!(kid = %record.kid, previous = ?previous, "signing key rotated");
        }
        Ok(rotated.then_some(record.kid))
    }

    /// Whether `token` came from Warden itself.
    pub fn issued(&self, issuer: &str) -> bool {
        issuer == self.settings.issuer
    }

    /// The account behind one of Warden's tokens must be active and unexpired; its principal
    /// keeps only the scopes the account still holds (narrowing takes effect at once). Returns
    /// the narrowed principal when it differs from the token's.
    pub fn check_account(
        &self,
        client_id: &str,
        principal: &Principal,
        now: i64,
    ) -> Result<Option<Principal>, AccountRefusal> {
        let kept = self.with_active_account(client_id, now, |account| {
            if principal
                .scopes
                .iter()
                .all(|scope| account.scopes.contains(scope))
            {
                return None;
            }
            let mut narrowed = principal.clone();
            narrowed
                .scopes
                .retain(|scope| account.scopes.contains(scope));
            Some(narrowed)
        })?;
        self.note_use(client_id, now);
        Ok(kept)
    }

    /// Runs `f` on the account when it is active and unexpired; else why not.
    pub fn with_active_account<T>(
        &self,
        client_id: &str,
        now: i64,
        f: impl FnOnce(&AccountState) -> T,
    ) -> Result<T, AccountRefusal> {
        let accounts = Arc::clone(&self.accounts.read().unwrap_or_else(PoisonError::into_inner));
        let account = accounts.get(client_id).ok_or(AccountRefusal::Unknown)?;
        match account.status {
            AccountStatus::Active if now < account.expires_at => Ok(f(account)),
            AccountStatus::Active => {
                Err(AccountRefusal::Inactive("the service account has expired"))
            }
            AccountStatus::Disabled => {
                Err(AccountRefusal::Inactive("the service account is disabled"))
            }
            AccountStatus::Deleted => {
                Err(AccountRefusal::Inactive("the service account is deleted"))
            }
        }
    }

    /// The account's current state (for the token endpoint's quick refusals and tests).
    pub fn account(&self, client_id: &str) -> Option<AccountState> {
        self.accounts
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(client_id)
            .cloned()
    }

    /// Notes that an account obtained a token.
    pub fn note_use(&self, client_id: &str, now: i64) {
        self.uses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .last_used
            .insert(client_id.to_owned(), now);
    }

    /// Notes the policies that allowed a decision for an account (mapped to scopes at flush).
    pub fn note_allowed(&self, client_id: &str, policies: impl Iterator<Item = String>, now: i64) {
        let mut uses = self.uses.lock().unwrap_or_else(PoisonError::into_inner);
        for policy in policies {
            uses.policies.insert((client_id.to_owned(), policy), now);
        }
    }

    /// Writes the batched uses to the store. `scopes_of_policy` names the scope literals a
    /// policy mentions (from the current pack).
    pub async fn flush_uses(
        &self,
        store: &Store,
        scopes_of_policy: &(dyn Fn(&str) -> Vec<String> + Sync),
    ) -> Result<(), StoreError> {
        let uses = std::mem::take(&mut *self.uses.lock().unwrap_or_else(PoisonError::into_inner));
        let last_used: Vec<(String, i64)> = uses.last_used.into_iter().collect();
        store.record_last_used(&last_used).await?;
        let accounts = Arc::clone(&self.accounts.read().unwrap_or_else(PoisonError::into_inner));
        let mut scope_uses: HashMap<(String, String), i64> = HashMap::new();
        for ((client_id, policy), at) in uses.policies {
            let Some(account) = accounts.get(&client_id) else {
                continue;
            };
            for scope in scopes_of_policy(&policy) {
                if account.scopes.contains(&scope) {
                    let entry = scope_uses.entry((client_id.clone(), scope)).or_insert(at);
                    *entry = (*entry).max(at);
                }
            }
        }
        let rows: Vec<(String, String, i64)> = scope_uses
            .into_iter()
            .map(|((client_id, scope), at)| (client_id, scope, at))
            .collect();
        store.record_scope_usage(&rows).await
    }
}

/// The string literals a policy's text mentions (candidate scope names).
pub fn string_literals(text: &str) -> Vec<String> {
    let mut literals = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('"') {
        let after = rest.get(start + 1..).unwrap_or_default();
        let Some(end) = after.find('"') else {
            break;
        };
        literals.push(after.get(..end).unwrap_or_default().to_owned());
        rest = after.get(end + 1..).unwrap_or_default();
    }
    literals
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_literals_are_found_in_policy_text() {
        assert_eq!(
            string_literals(
                r#"permit(principal, action, resource) when { principal.scopes.contains("documents:read") && resource.x == "y" };"#
            ),
            vec!["documents:read", "y"]
        );
        assert!(string_literals("no quotes").is_empty());
    }
}
