//! Authentication and authorization of admin callers, as an extractor.
//!
//! An admin sends `Authorization: Bearer <admin credential>`. The store keeps only SHA-256
//! digests (made by `warden admin init`, shown once); the presented credential's digest is
//! compared in constant time with every stored one. A credential is either for all tenants or
//! for one; a write to another tenant is 403. There is no default credential.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::problem::ApiError;
use crate::state::AppState;

/// Where the admin extractor leaves the actor for the decision-log middleware.
#[derive(Clone, Debug, Default)]
pub struct ActorSlot(std::sync::Arc<std::sync::Mutex<Option<String>>>);

impl ActorSlot {
    fn set(&self, actor: String) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(actor);
    }

    /// The actor, once authenticated.
    pub fn get(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// An authenticated admin.
#[derive(Debug, Clone)]
pub struct Admin {
    /// The credential id (recorded as the actor of every write).
    pub credential_id: String,
    /// `None` for all tenants, or the one tenant it may administer.
    pub tenant_scope: Option<String>,
}

impl Admin {
    /// 403 unless this admin may act on `tenant`.
    pub fn authorize(&self, tenant: &str) -> Result<(), ApiError> {
        match &self.tenant_scope {
            Some(scope) if scope != tenant => Err(ApiError::Forbidden(format!(
                "admin credential {} may not administer tenant `{tenant}`",
                self.credential_id
            ))),
            _ => Ok(()),
        }
    }

    /// 403 unless this admin may act on every tenant; `needs` names what asks for it
    /// (`"revocations need"`).
    pub fn require_all_tenants(&self, needs: &str) -> Result<(), ApiError> {
        match &self.tenant_scope {
            None => Ok(()),
            Some(tenant) => Err(ApiError::Forbidden(format!(
                "admin credential {} is limited to tenant `{tenant}`; {needs} an admin credential for all tenants",
                self.credential_id
            ))),
        }
    }

    /// The actor written into audit records.
    pub fn actor(&self) -> String {
        format!("admin:{}", self.credential_id)
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(store) = &state.store else {
            return Err(ApiError::Unavailable(
                "the admin API needs [storage]".to_owned(),
            ));
        };
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|credential| !credential.is_empty())
            .ok_or(ApiError::AdminUnauthenticated)?;
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let digest_hex = hex::encode(digest);
        let credentials = store
            .admin_credentials()
            .await
            .map_err(|error| ApiError::Unavailable(format!("the store cannot be read: {error}")))?;
        let mut matched = None;
        for credential in &credentials {
            if bool::from(
                credential
                    .digest_hex
                    .as_bytes()
                    .ct_eq(digest_hex.as_bytes()),
            ) {
                matched = Some(credential);
            }
        }
        match matched {
            Some(credential) => {
                let admin = Admin {
                    credential_id: credential.id.clone(),
                    tenant_scope: credential.tenant_scope.clone(),
                };
                if let Some(slot) = parts.extensions.get::<ActorSlot>() {
                    slot.set(admin.actor());
                }
                Ok(admin)
            }
            None => Err(ApiError::AdminUnauthenticated),
        }
    }
}
