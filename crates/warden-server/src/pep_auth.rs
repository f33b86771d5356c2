//! Authentication of policy enforcement points, as an extractor so no AuthZEN handler can
//! forget it.
//!
//! SECURITY-SENSITIVE: who may ask the AuthZEN endpoints.
//!
//! A PEP sends `Authorization: Bearer <credential>`. Warden keeps only SHA-256 digests of the
//! credentials (`[peps] credentials = ["sha256:…"]`) and compares digests in constant time
//! against every configured one (no early exit, so timing does not reveal which one matched).
//! `allow_unauthenticated` (loopback only, checked at start) lets local development skip it.
//! With `[peps] client_certificates = true`, a request without a bearer credential on a TLS
//! connection whose client certificate verified against `server.tls.client_ca_file` is an
//! authenticated PEP too; a bearer credential that is presented must still match.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::problem::ApiError;
use crate::rate_limit::CallerKey;
use crate::state::AppState;
use crate::tls::ClientCertificate;

/// The PEP that called, by the index of its credential (or unauthenticated in development).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pep {
    /// Matched the credential at this index of `[peps] credentials`.
    Credential(usize),
    /// A verified TLS client certificate, by the first 16 hex digits of its SHA-256.
    ClientCertificate(String),
    /// `allow_unauthenticated` is on.
    Unauthenticated,
}

impl Pep {
    /// A label for logs (never the credential).
    pub fn label(&self) -> String {
        match self {
            Pep::Credential(index) => format!("pep-credential-{index}"),
            Pep::ClientCertificate(fingerprint) => format!("pep-certificate-{fingerprint}"),
            Pep::Unauthenticated => "unauthenticated-dev".to_owned(),
        }
    }
}

/// Extracts and checks the PEP credential.
pub struct AuthenticatedPep(pub Pep);

impl FromRequestParts<AppState> for AuthenticatedPep {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        authenticate(
            parts.headers.get(header::AUTHORIZATION),
            parts.extensions.get::<ClientCertificate>(),
            parts.extensions.get::<CallerKey>(),
            state,
        )
        .map(AuthenticatedPep)
    }
}

/// Checks an `Authorization` header as a PEP credential (for a route that accepts either an
/// end user's token or a PEP credential, decided by what its body asks).
/// The outcome is settled with the failed-authentication limit before it is returned
/// ([`crate::rate_limit::settle`]).
pub fn authenticate(
    authorization: Option<&axum::http::HeaderValue>,
    certificate: Option<&ClientCertificate>,
    caller_key: Option<&CallerKey>,
    state: &AppState,
) -> Result<Pep, ApiError> {
    let checked = check(authorization, certificate, state);
    let authenticated = match &checked {
        Ok(_) => true,
        Err(ApiError::PepUnauthenticated) => false,
        Err(_) => return checked,
    };
    crate::rate_limit::settle(&state.rate_limits, caller_key, authenticated)?;
    checked
}

fn check(
    authorization: Option<&axum::http::HeaderValue>,
    certificate: Option<&ClientCertificate>,
    state: &AppState,
) -> Result<Pep, ApiError> {
    match bearer(authorization) {
        Some(credential) => match matching_digest(credential, &state.pep_credentials) {
            Some(index) => Ok(Pep::Credential(index)),
            None if state.allow_unauthenticated_peps => Ok(Pep::Unauthenticated),
            None => Err(ApiError::PepUnauthenticated),
        },
        _ => match certificate {
            Some(certificate) if state.pep_client_certificates => Ok(Pep::ClientCertificate(
                certificate.fingerprint.chars().take(16).collect(),
            )),
            _ if state.allow_unauthenticated_peps => Ok(Pep::Unauthenticated),
            _ => Err(ApiError::PepUnauthenticated),
        },
    }
}

/// The non-empty credential of an `Authorization: Bearer …` header.
pub(crate) fn bearer(authorization: Option<&axum::http::HeaderValue>) -> Option<&str> {
    authorization
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|credential| !credential.is_empty())
}

/// The index of the configured SHA-256 digest `presented` hashes to, comparing every one in
/// constant time (no early exit, so timing does not tell which matched).
pub(crate) fn matching_digest(presented: &str, known: &[[u8; 32]]) -> Option<usize> {
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    let mut matched = None;
    for (index, candidate) in known.iter().enumerate() {
        if bool::from(candidate.ct_eq(&digest)) {
            matched = Some(index);
        }
    }
    matched
}
