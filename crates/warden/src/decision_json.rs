//! The JSON form of a decision, shared by `check --json` and `check --requests`.
//! Field names are a contract: `decision`, `reason`, `reasons`, `errors`, `policy_revision`.

use serde_json::{Value, json};
use warden_core::{Decision, Explanation, PolicyRef};

fn policy_json(policy: &PolicyRef) -> Value {
    json!({"policy": policy.id.to_string(), "description": policy.description.as_deref()})
}

/// A decision and its explanation as one JSON object.
pub fn decision_json(decision: &Decision, explanation: &Explanation) -> Value {
    json!({
        "decision": decision.outcome.as_str(),
        "reason": decision.reason.as_str(),
        "reasons": decision.determining.iter().map(policy_json).collect::<Vec<_>>(),
        "errors": decision.errors.iter().map(|e| json!({"policy": e.policy.to_string(), "message": e.message})).collect::<Vec<_>>(),
        "policy_revision": decision.revision.as_str(),
        "cross_tenant": decision.cross_tenant.as_ref().map(|grant| json!({
            "principal_tenant": grant.principal_tenant.to_string(),
            "resource_tenant": grant.resource_tenant.to_string(),
            "grants": grant.grants.iter().map(|(policy, why)| json!({"policy": policy.to_string(), "reason": &**why})).collect::<Vec<_>>(),
        })),
        "near_misses": explanation.near_misses.iter().map(policy_json).collect::<Vec<_>>(),
        "explanation": {"summary": explanation.summary, "details": explanation.details},
        "evaluation_micros": decision.elapsed.as_secs_f64() * 1e6,
    })
}

/// A deny decided before the policies were consulted (a disabled principal, say), in the same
/// shape as [`decision_json`].
pub fn refusal_json(reason: &str, explanation: &Explanation, revision: &str) -> Value {
    json!({
        "decision": "deny",
        "reason": reason,
        "reasons": [],
        "errors": explanation.details.iter().map(|detail| json!({"policy": null, "message": detail})).collect::<Vec<_>>(),
        "policy_revision": revision,
        "cross_tenant": null,
        "near_misses": [],
        "explanation": {"summary": explanation.summary, "details": explanation.details},
    })
}

/// A bearer token refused before any decision, in the same shape as [`decision_json`].
pub fn token_refusal_json(error: &warden_token::TokenError, revision: &str) -> Value {
    let summary = format!(
        "DENY: the bearer token was refused ({}); no policy was consulted.",
        error.reason.as_str()
    );
    json!({
        "decision": "deny",
        "reason": error.reason.as_str(),
        "reasons": [],
        "errors": error.detail.iter().map(|detail| json!({"policy": null, "message": detail})).collect::<Vec<_>>(),
        "policy_revision": revision,
        "cross_tenant": null,
        "near_misses": [],
        "explanation": {"summary": summary, "details": error.detail.iter().collect::<Vec<_>>()},
    })
}
