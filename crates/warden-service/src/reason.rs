//! One reason type for every answer Warden gives: what the policies decided
//! ([`ReasonCode`]), a refusal before them ([`RefusalReason`]), or a bearer token refused
//! ([`TokenReason`]). Answers, the decision log, metrics and policy suites all name reasons
//! through it, so a code means one thing everywhere.

use warden_core::decision::ReasonCode;
use warden_token::TokenReason;

/// Why a request was denied before the policies were consulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// The request cannot be decided as sent (unknown action, a type the schema refuses,
    /// properties that do not fit it or name another tenant).
    InvalidRequest,
    /// The store has not been read within the staleness bound.
    StoreUnavailable,
    /// The decision log cannot keep records and fails closed.
    AuditUnavailable,
    /// The store disabled the principal.
    PrincipalDisabled,
    /// The store deleted the principal.
    PrincipalDeleted,
    /// Identifiers of a forwarded token are revoked.
    TokenRevoked,
    /// The principal or the resource belongs to a tenant this replica does not serve
    /// (`[storage] tenants`): it does not hold that tenant's data, so it cannot decide.
    TenantNotServed,
}

impl RefusalReason {
    /// The reason code as written in answers, logs and docs.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::InvalidRequest => "invalid_request",
            RefusalReason::StoreUnavailable => "store_unavailable",
            RefusalReason::AuditUnavailable => "audit_unavailable",
            RefusalReason::PrincipalDisabled => "principal_disabled",
            RefusalReason::PrincipalDeleted => "principal_deleted",
            RefusalReason::TokenRevoked => "token_revoked",
            RefusalReason::TenantNotServed => "tenant_not_served",
        }
    }
}

/// Why Warden answered as it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The policies decided (allow or deny).
    Decision(ReasonCode),
    /// Denied before the policies were consulted.
    Refused(RefusalReason),
    /// The bearer token was refused (a 401).
    Token(TokenReason),
}

impl RefusalReason {
    /// Every refusal reason, in declaration order.
    pub const ALL: [RefusalReason; 7] = [
        RefusalReason::InvalidRequest,
        RefusalReason::StoreUnavailable,
        RefusalReason::AuditUnavailable,
        RefusalReason::PrincipalDisabled,
        RefusalReason::PrincipalDeleted,
        RefusalReason::TokenRevoked,
        RefusalReason::TenantNotServed,
    ];
}

impl Reason {
    /// Every reason, each once: decisions, refusals, then token reasons. `token_revoked` is
    /// both a refusal (a forwarded token's identifiers) and a token reason; it is listed once,
    /// as the refusal.
    pub fn all() -> impl Iterator<Item = Reason> {
        ReasonCode::ALL
            .into_iter()
            .map(Reason::Decision)
            .chain(RefusalReason::ALL.into_iter().map(Reason::Refused))
            .chain(
                TokenReason::ALL
                    .into_iter()
                    .filter(|reason| *reason != TokenReason::Revoked)
                    .map(Reason::Token),
            )
    }

    /// The code as written in answers, logs and docs, e.g. `no_permit`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Decision(code) => code.as_str(),
            Reason::Refused(reason) => reason.as_str(),
            Reason::Token(reason) => reason.as_str(),
        }
    }

    /// The reason a code names.
    pub fn parse(text: &str) -> Option<Reason> {
        Self::all().find(|reason| reason.as_str() == text)
    }

    /// Whether an answer with this reason is an allow.
    pub fn allows(self) -> bool {
        matches!(
            self,
            Reason::Decision(ReasonCode::Permitted | ReasonCode::PermittedCrossTenant)
        )
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_unique_and_parses_back() {
        let codes: Vec<&str> = Reason::all().map(Reason::as_str).collect();
        let mut unique = codes.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), codes.len(), "{codes:?}");
        for reason in Reason::all() {
            assert_eq!(Reason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(
            TokenReason::Revoked.as_str(),
            RefusalReason::TokenRevoked.as_str()
        );
    }
}
