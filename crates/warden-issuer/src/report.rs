//! The service-account inventory: per account its owner and their status, purpose, credentials
//! and their age, last use, expiry, and findings. A pure function of what the store holds, so
//! a seeded store gives an exact, testable list.
//!
//! Findings, in this order:
//! - `expired_but_enabled`: past its expiry, still `active` (it can obtain no token, but it
//!   should be disabled or deleted);
//! - `expiring_soon`: active, expiring within the configured window;
//! - `stale`: active, not used for `stale_after_days` (never used counts from its creation);
//! - `owner_gone`: the owner is disabled, deleted or unknown to Warden;
//! - `credential_too_old`: a usable credential older than the rotation policy;
//! - `unused_scopes`: granted scopes that helped allow no decision in `unused_scope_days` (an
//!   account younger than that window is not judged yet).

use std::collections::HashMap;

use serde::Serialize;
use warden_store::{AccountStatus, ServiceAccount};

const DAY: i64 = 86_400;

/// The report's thresholds, in days.
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    /// `stale` after this many days unused.
    pub stale_after_days: i64,
    /// `expiring_soon` within this many days.
    pub expiring_within_days: i64,
    /// `credential_too_old` past this age.
    pub credential_max_age_days: i64,
    /// `unused_scopes` over this window.
    pub unused_scope_days: i64,
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// A stable code (see the module documentation).
    pub code: &'static str,
    /// Plain words.
    pub detail: String,
}

/// One credential as the report shows it.
#[derive(Clone, Debug, Serialize)]
pub struct CredentialLine {
    /// Its id.
    pub id: String,
    /// `secret` or `public_key`.
    pub kind: &'static str,
    /// Whole days since it was created.
    pub age_days: i64,
    /// When it expires.
    pub expires_at: i64,
    /// Whether it authenticates now.
    pub usable: bool,
}

/// One account's line.
#[derive(Clone, Debug, Serialize)]
pub struct AccountLine {
    /// Client id.
    pub client_id: String,
    /// Tenant.
    pub tenant: String,
    /// Name.
    pub name: String,
    /// Owner uid.
    pub owner: String,
    /// `active`, `disabled`, `deleted` or `unknown`.
    pub owner_status: String,
    /// Purpose.
    pub purpose: String,
    /// Account status.
    pub status: &'static str,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Created.
    pub created_at: i64,
    /// Expires.
    pub expires_at: i64,
    /// Last use.
    pub last_used_at: Option<i64>,
    /// Credentials.
    pub credentials: Vec<CredentialLine>,
    /// Findings (empty when all is well).
    pub findings: Vec<Finding>,
}

/// Builds the report. `owner_status` answers for an owner uid; `usage` maps
/// `(client_id, scope)` to the last time the scope helped allow a decision.
pub fn build(
    accounts: &[ServiceAccount],
    owner_status: &dyn Fn(&ServiceAccount) -> String,
    usage: &HashMap<(String, String), i64>,
    thresholds: Thresholds,
    now: i64,
) -> Vec<AccountLine> {
    accounts
        .iter()
        .filter(|account| account.status != AccountStatus::Deleted)
        .map(|account| line(account, owner_status(account), usage, thresholds, now))
        .collect()
}

fn line(
    account: &ServiceAccount,
    owner_status: String,
    usage: &HashMap<(String, String), i64>,
    thresholds: Thresholds,
    now: i64,
) -> AccountLine {
    let mut findings = Vec::new();
    let active = account.status == AccountStatus::Active;
    if active && account.expires_at <= now {
        findings.push(Finding {
            code: "expired_but_enabled",
            detail: format!(
                "expired {} day(s) ago but still active",
                (now - account.expires_at) / DAY
            ),
        });
    } else if active && account.expires_at - now <= thresholds.expiring_within_days * DAY {
        findings.push(Finding {
            code: "expiring_soon",
            detail: format!("expires in {} day(s)", (account.expires_at - now) / DAY),
        });
    }
    let last_use = account.last_used_at.unwrap_or(account.created_at);
    if active && now - last_use >= thresholds.stale_after_days * DAY {
        findings.push(Finding {
            code: "stale",
            detail: match account.last_used_at {
                Some(_) => format!("not used for {} day(s)", (now - last_use) / DAY),
                None => format!(
                    "never used in the {} day(s) since it was created",
                    (now - last_use) / DAY
                ),
            },
        });
    }
    if owner_status != "active" {
        findings.push(Finding {
            code: "owner_gone",
            detail: format!("its owner {} is {owner_status}", account.owner),
        });
    }
    let credentials: Vec<CredentialLine> = account
        .credentials
        .iter()
        .map(|credential| CredentialLine {
            id: credential.id.clone(),
            kind: credential.kind(),
            age_days: (now - credential.created_at) / DAY,
            expires_at: credential.expires_at,
            usable: credential.usable(now),
        })
        .collect();
    for credential in credentials.iter().filter(|c| c.usable) {
        if credential.age_days >= thresholds.credential_max_age_days {
            findings.push(Finding {
                code: "credential_too_old",
                detail: format!(
                    "{} {} is {} day(s) old (rotation policy: {} days)",
                    credential.kind,
                    credential.id,
                    credential.age_days,
                    thresholds.credential_max_age_days
                ),
            });
        }
    }
    let window_start = now - thresholds.unused_scope_days * DAY;
    if active && account.created_at <= window_start {
        let unused: Vec<&str> = account
            .scopes
            .iter()
            .filter(|scope| {
                usage
                    .get(&(account.client_id.clone(), (*scope).clone()))
                    .is_none_or(|at| *at < window_start)
            })
            .map(String::as_str)
            .collect();
        if !unused.is_empty() {
            findings.push(Finding {
                code: "unused_scopes",
                detail: format!(
                    "granted but used by no allowed decision in {} days: {}",
                    thresholds.unused_scope_days,
                    unused.join(" ")
                ),
            });
        }
    }
    AccountLine {
        client_id: account.client_id.clone(),
        tenant: account.tenant.clone(),
        name: account.name.clone(),
        owner: account.owner.clone(),
        owner_status,
        purpose: account.purpose.clone(),
        status: account.status.as_str(),
        scopes: account.scopes.clone(),
        created_at: account.created_at,
        expires_at: account.expires_at,
        last_used_at: account.last_used_at,
        credentials,
        findings,
    }
}
