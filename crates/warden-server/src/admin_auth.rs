//! Authentication and authorization of admin callers, as extractors: [`TenantAdmin`],
//! [`GlobalAdmin`] and [`AnyAdmin`]. SECURITY-SENSITIVE. An admin is only ever obtained
//! through one of them, so no handler can forget to authorize; the router test in
//! `tests/server/admin_routes.rs` calls every admin route without a credential and with a
//! credential of another tenant.
//!
//! An admin sends `Authorization: Bearer <admin credential>`. The store keeps only SHA-256
//! digests (made by `warden admin init` or `POST /v1/admin/credentials`, shown once); the
//! presented credential's digest is compared in constant time with every usable stored one
//! (revoked and expired credentials are not read at all). A credential is either for all tenants or
//! for one; a write to another tenant is 403. There is no default credential.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use warden_store::TenantId;

use crate::problem::ApiError;
use crate::rate_limit::{CallerKey, settle};
use crate::state::AppState;

/// How long an admin call waits for the store to read the credentials.
pub(crate) const STORE_READ_BOUND: std::time::Duration = std::time::Duration::from_millis(750);

/// Where the admin extractors leave the actor and the tenant for the decision-log middleware:
/// the tenant as the extractor decoded and checked it, not as the raw path spells it (a
/// percent-encoded `%61cme` is `acme`, and its record must say so).
#[derive(Clone, Debug, Default)]
pub struct ActorSlot(std::sync::Arc<std::sync::Mutex<Slot>>);

#[derive(Clone, Debug, Default)]
struct Slot {
    actor: Option<String>,
    tenant: Option<String>,
}

impl ActorSlot {
    fn with<T>(&self, f: impl FnOnce(&mut Slot) -> T) -> T {
        f(&mut self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    fn set(&self, actor: String) {
        self.with(|slot| slot.actor = Some(actor));
    }

    fn set_tenant(&self, tenant: &TenantId) {
        self.with(|slot| slot.tenant = Some(tenant.to_string()));
    }

    /// The actor, once authenticated.
    pub fn get(&self) -> Option<String> {
        self.with(|slot| slot.actor.clone())
    }

    /// The tenant the call acted on, once authorized for it.
    pub fn tenant(&self) -> Option<String> {
        self.with(|slot| slot.tenant.clone())
    }
}

/// An authenticated admin.
#[derive(Debug, Clone)]
pub struct Admin {
    /// The credential id (recorded as the actor of every write).
    pub credential_id: String,
    /// `None` for all tenants, or the one tenant it may administer.
    pub tenant_scope: Option<String>,
    /// Authenticated by a console session rather than the credential itself.
    pub via_session: bool,
    /// For an operator acting through an admin tool (a delegated token, RFC 8693): the person
    /// and the tool, as the audit trail names them (`User::"acme/alice" via sa_…`).
    pub operator: Option<String>,
}

impl Admin {
    /// 403 for a console session: making, rotating and revoking admin credentials needs the
    /// credential itself (a stolen session must not become a lasting credential).
    pub fn require_credential(&self, needs: &str) -> Result<(), ApiError> {
        if self.via_session {
            return Err(ApiError::Forbidden(format!(
                "{needs} the admin credential itself, not a console session"
            )));
        }
        if self.operator.is_some() {
            return Err(ApiError::Forbidden(format!(
                "{needs} an admin credential, not an operator's delegated token"
            )));
        }
        Ok(())
    }

    /// 403 unless this admin may act on `tenant`.
    fn authorize(&self, tenant: &str) -> Result<(), ApiError> {
        match &self.tenant_scope {
            Some(scope) if scope != tenant => Err(ApiError::Forbidden(format!(
                "{} may not administer tenant `{tenant}`",
                self.who()
            ))),
            _ => Ok(()),
        }
    }

    /// 403 unless this admin may act on every tenant; `needs` names what asks for it
    /// (`"revocations need"`).
    fn require_all_tenants(&self, needs: &str) -> Result<(), ApiError> {
        match &self.tenant_scope {
            None => Ok(()),
            Some(tenant) => Err(ApiError::Forbidden(format!(
                "{} is limited to tenant `{tenant}`; {needs} an admin credential for all tenants",
                self.who()
            ))),
        }
    }

    /// Who, in a refusal's words.
    fn who(&self) -> String {
        match &self.operator {
            Some(operator) => format!("operator {operator}"),
            None => format!("admin credential {}", self.credential_id),
        }
    }

    /// The actor written into audit records: the credential, or the person and the tool.
    pub fn actor(&self) -> String {
        match &self.operator {
            Some(operator) => format!("operator:{operator}"),
            None => format!("admin:{}", self.credential_id),
        }
    }
}

/// Authenticates the admin of a request: `Authorization: Bearer <admin credential>`, or a
/// console session (its cookie and its CSRF header, see [`crate::console_session`]). Private:
/// a handler gets an admin only through [`TenantAdmin`], [`GlobalAdmin`] or [`AnyAdmin`], each
/// of which also authorizes.
async fn authenticate(parts: &mut Parts, state: &AppState) -> Result<Admin, ApiError> {
    let caller_key = parts.extensions.get::<CallerKey>().copied();
    let presented = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|credential| !credential.is_empty());
    let admin = match presented {
        Some(presented) if looks_like_jwt(presented) && state.token_issuer.is_some() => {
            authenticate_operator(state, caller_key.as_ref(), presented).await?
        }
        Some(presented) => authenticate_secret(state, caller_key.as_ref(), presented).await?,
        None => match crate::console_session::session_secret(&parts.headers) {
            Some(secret) => {
                crate::console_session::admin_of_request(
                    state,
                    caller_key.as_ref(),
                    &parts.headers,
                    &secret,
                )
                .await?
            }
            None => {
                if state.store.is_none() {
                    return Err(ApiError::Unavailable(
                        "the admin API needs [storage]".to_owned(),
                    ));
                }
                settle(&state.rate_limits, caller_key.as_ref(), false)?;
                return Err(ApiError::AdminUnauthenticated);
            }
        },
    };
    if let Some(slot) = parts.extensions.get::<ActorSlot>() {
        slot.set(admin.actor());
    }
    Ok(admin)
}

/// The usable admin credentials, read within [`STORE_READ_BOUND`] (503 past it).
pub(crate) async fn usable_credentials(
    state: &AppState,
) -> Result<Vec<warden_store::AdminCredential>, ApiError> {
    let Some(store) = &state.store else {
        return Err(ApiError::Unavailable(
            "the admin API needs [storage]".to_owned(),
        ));
    };
    // A store that is down or cut off must not hold admin calls (the pool would wait for a
    // connection, a partition for ever): past the bound the answer is 503.
    tokio::time::timeout(
        STORE_READ_BOUND,
        store.active_admin_credentials(crate::clock::unix_now()),
    )
    .await
    .map_err(|_| {
        ApiError::Unavailable(format!(
            "the store did not answer within {} ms: admin credentials cannot be checked",
            STORE_READ_BOUND.as_millis()
        ))
    })?
    .map_err(|error| ApiError::Unavailable(format!("the store cannot be read: {error}")))
}

/// Authenticates a presented admin credential secret: its digest compared in constant time
/// with every usable stored one, counted against the caller's failure budget before answering.
pub(crate) async fn authenticate_secret(
    state: &AppState,
    caller_key: Option<&CallerKey>,
    presented: &str,
) -> Result<Admin, ApiError> {
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    let digest_hex = hex::encode(digest);
    let credentials = usable_credentials(state).await?;
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
    // Counted before it is answered, so guesses sent together cannot outrun the limit.
    settle(&state.rate_limits, caller_key, matched.is_some())?;
    match matched {
        Some(credential) => Ok(Admin {
            credential_id: credential.id.clone(),
            tenant_scope: credential.tenant_scope.clone(),
            via_session: false,
            operator: None,
        }),
        None => Err(ApiError::AdminUnauthenticated),
    }
}

/// Three base64url parts: a JWT, never an admin secret (`wdn_admin_…` holds no dot).
fn looks_like_jwt(presented: &str) -> bool {
    presented.split('.').count() == 3
}

/// An operator acting through an admin tool: a delegated token of Warden's (RFC 8693, the tool's
/// service account acting for the person) verified as any bearer is (revocations, the
/// person's state, every account in the chain), whose scopes hold `warden:admin` (so the
/// person's token and the tool's account both held it). It administers the token's tenant
/// only, and every record names the person and the tool.
async fn authenticate_operator(
    state: &AppState,
    caller_key: Option<&CallerKey>,
    presented: &str,
) -> Result<Admin, ApiError> {
    let bearer = match state.service.identify(presented).await {
        Ok(bearer) => bearer,
        Err(warden_service::pipeline::IdentifyError::Stale(why)) => {
            return Err(ApiError::Unavailable(why));
        }
        Err(warden_service::pipeline::IdentifyError::Token(error)) => {
            tracing::info!(
                reason = error.reason.as_str(),
                "an operator token was refused"
            );
            settle(&state.rate_limits, caller_key, false)?;
            return Err(ApiError::AdminUnauthenticated);
        }
    };
    let principal = bearer.principal();
    // An operator token is a delegated token of Warden's, for Warden's own audience (not one
    // made for another service), whose chain starts at a person's token from an identity
    // provider (never at one of Warden's own accounts).
    let operator = match (&state.token_issuer, &bearer.delegation) {
        (Some(issuer), Some(delegation)) => {
            issuer.issued(&bearer.token.issuer)
                && !issuer.issued(&delegation.origin.iss)
                && bearer
                    .token
                    .claims
                    .get("aud")
                    .and_then(serde_json::Value::as_str)
                    == Some(issuer.settings.audience.as_str())
        }
        _ => false,
    };
    settle(&state.rate_limits, caller_key, operator)?;
    let (true, Some(tenant)) = (operator, principal.tenant.clone()) else {
        return Err(ApiError::AdminUnauthenticated);
    };
    if !principal
        .scopes
        .iter()
        .any(|scope| scope == warden_issuer::delegation::ADMIN_SCOPE)
    {
        return Err(ApiError::Forbidden(format!(
            "the operator's delegated token does not hold the `{}` scope",
            warden_issuer::delegation::ADMIN_SCOPE
        )));
    }
    let tools: Vec<&str> = bearer
        .actors()
        .iter()
        .map(|actor| actor.client_id.as_str())
        .collect();
    Ok(Admin {
        credential_id: bearer
            .token
            .jti
            .as_ref()
            .map_or_else(|| "delegated".to_owned(), ToString::to_string),
        tenant_scope: Some(tenant),
        via_session: false,
        operator: Some(format!(
            "{} via {}",
            principal.uid_string(),
            tools.join(" via ")
        )),
    })
}

/// An admin authorized for the tenant the route's `{tenant}` names: authenticated (401),
/// the tenant id well formed (400), the credential for all tenants or for this one (403).
/// Every route under `/v1/admin/tenants/{tenant}/` takes it.
#[derive(Debug, Clone)]
pub struct TenantAdmin {
    /// The admin.
    pub admin: Admin,
    /// The tenant of the route.
    pub tenant: TenantId,
}

impl FromRequestParts<AppState> for TenantAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let admin = authenticate(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::BadRequest("the path names no tenant".to_owned()))?;
        let tenant = params
            .iter()
            .find(|(name, _)| *name == "tenant")
            .map(|(_, value)| value.to_owned())
            .ok_or_else(|| ApiError::BadRequest("the path names no tenant".to_owned()))?;
        let tenant =
            TenantId::parse(&tenant).map_err(|error| ApiError::BadRequest(error.to_string()))?;
        admin.authorize(tenant.as_str())?;
        if let Some(slot) = parts.extensions.get::<ActorSlot>() {
            slot.set_tenant(&tenant);
        }
        Ok(TenantAdmin { admin, tenant })
    }
}

/// An admin whose credential is for every tenant (revocations, Warden's signing keys, the
/// report over all tenants): authenticated (401), and 403 for a tenant-scoped credential.
#[derive(Debug, Clone)]
pub struct GlobalAdmin(pub Admin);

impl FromRequestParts<AppState> for GlobalAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let admin = authenticate(parts, state).await?;
        admin.require_all_tenants("this needs")?;
        Ok(GlobalAdmin(admin))
    }
}

/// Any authenticated admin, for reads across tenants that show each admin only what its
/// scope covers (the audit trail, a recorded decision): the handler filters with
/// [`AnyAdmin::sees`].
#[derive(Debug, Clone)]
pub struct AnyAdmin(pub Admin);

impl AnyAdmin {
    /// Whether a record of `tenant` (`None`: of no tenant) is within this admin's scope.
    pub fn sees(&self, tenant: Option<&str>) -> bool {
        match &self.0.tenant_scope {
            None => true,
            Some(scope) => tenant == Some(scope.as_str()),
        }
    }
}

impl FromRequestParts<AppState> for AnyAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        authenticate(parts, state).await.map(AnyAdmin)
    }
}
