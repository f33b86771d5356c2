//! Why a token was refused: stable reason codes, documented in `docs/tokens.md`.
//!
//! Refusals are common traffic (expired and forged tokens), so a reason is a plain `Copy` enum;
//! the optional detail (which claim, which kid) is for logs and operators, never for control
//! flow, and never contains the token itself.

use std::fmt;

/// The stable code of a refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenReason {
    /// No token was presented.
    Missing,
    /// Not a compact JWS: wrong number of parts, bad base64url, bad or duplicate-key JSON, a JWE.
    Malformed,
    /// Larger than the issuer's `max_token_bytes`.
    TooLarge,
    /// The header's `alg` is not in the issuer's allow-list (`none` never is).
    AlgNotAllowed,
    /// The header lists `crit` extensions; Warden understands none.
    CritUnsupported,
    /// No key of the issuer matches the `kid` and the algorithm.
    KeyUnknown,
    /// The signature does not verify (or is missing).
    SignatureInvalid,
    /// The `iss` claim names no configured issuer (or is missing).
    IssuerUnknown,
    /// The `aud` claim contains none of the issuer's audiences.
    AudienceMismatch,
    /// `exp` is in the past (beyond the leeway).
    Expired,
    /// `nbf` or `iat` is in the future (beyond the leeway).
    NotYetValid,
    /// A required claim, or a claim the mapping needs, is absent.
    ClaimMissing,
    /// A claim has the wrong type (e.g. `exp` as a string, `roles` as a number).
    ClaimInvalid,
    /// The header's `typ` is not the issuer's `token_type`.
    TypeInvalid,
    /// Verified, but revoked (by token id, session, subject, client or key).
    Revoked,
}

impl TokenReason {
    /// The code as written in responses, logs, metrics and docs.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenReason::Missing => "token_missing",
            TokenReason::Malformed => "token_malformed",
            TokenReason::TooLarge => "token_too_large",
            TokenReason::AlgNotAllowed => "token_alg_not_allowed",
            TokenReason::CritUnsupported => "token_crit_unsupported",
            TokenReason::KeyUnknown => "token_key_unknown",
            TokenReason::SignatureInvalid => "token_signature_invalid",
            TokenReason::IssuerUnknown => "token_issuer_unknown",
            TokenReason::AudienceMismatch => "token_audience_mismatch",
            TokenReason::Expired => "token_expired",
            TokenReason::NotYetValid => "token_not_yet_valid",
            TokenReason::ClaimMissing => "token_claim_missing",
            TokenReason::ClaimInvalid => "token_claim_invalid",
            TokenReason::TypeInvalid => "token_type_invalid",
            TokenReason::Revoked => "token_revoked",
        }
    }

    /// Every code, for docs and metrics.
    pub const ALL: [TokenReason; 15] = [
        TokenReason::Missing,
        TokenReason::Malformed,
        TokenReason::TooLarge,
        TokenReason::AlgNotAllowed,
        TokenReason::CritUnsupported,
        TokenReason::KeyUnknown,
        TokenReason::SignatureInvalid,
        TokenReason::IssuerUnknown,
        TokenReason::AudienceMismatch,
        TokenReason::Expired,
        TokenReason::NotYetValid,
        TokenReason::ClaimMissing,
        TokenReason::ClaimInvalid,
        TokenReason::TypeInvalid,
        TokenReason::Revoked,
    ];
}

impl fmt::Display for TokenReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused token: the code, and a short detail for operators.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}{}", .detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
pub struct TokenError {
    /// The stable code.
    pub reason: TokenReason,
    /// What exactly (a claim name, a kid); never token material.
    pub detail: Option<String>,
}

impl TokenError {
    /// A refusal without detail.
    pub fn new(reason: TokenReason) -> Self {
        Self {
            reason,
            detail: None,
        }
    }

    /// A refusal with a detail.
    pub fn with(reason: TokenReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: Some(detail.into()),
        }
    }
}

impl From<TokenReason> for TokenError {
    fn from(reason: TokenReason) -> Self {
        Self::new(reason)
    }
}
