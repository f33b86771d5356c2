//! `warden validate`: load a pack and report every problem with file, line and column.

use anyhow::Context;
use serde_json::json;
use warden_core::pack::{Pack, PackDiagnostic};
use warden_core::tenant_policies::{TenantPolicy, TenantPolicyError, tenant_policy_file};

use super::Verdict;
use crate::cli::ValidateArgs;
use crate::pack_loading;

pub fn run(args: &ValidateArgs) -> anyhow::Result<Verdict> {
    let compiled = pack_loading::load(&args.pack)?;
    let (pack_diagnostics, pack) = match &compiled {
        Ok(compiled) => (&compiled.warnings, Some(&compiled.pack)),
        Err(error) => (&error.diagnostics, None),
    };
    let stored = match (&args.store, pack) {
        (Some(url), Some(pack)) => Some(check_stored(url, pack)?),
        _ => None,
    };
    let mut diagnostics: Vec<PackDiagnostic> = pack_diagnostics.clone();
    if let Some(stored) = &stored {
        diagnostics.extend(stored.problems.iter().cloned());
    }
    let diagnostics = &diagnostics;
    let valid = pack.is_some() && !diagnostics.iter().any(PackDiagnostic::is_error);
    if args.json {
        let report = json!({
            "valid": valid,
            "tenant_policies": stored.as_ref().map(|stored| stored.listed.iter().map(|(tenant, name, id)| json!({
                "tenant": tenant, "name": name, "id": id,
            })).collect::<Vec<_>>()),
            "diagnostics": diagnostics.iter().map(|d| json!({
                "severity": if d.is_error() { "error" } else { "warning" },
                "file": d.file,
                "line": d.line,
                "column": d.column,
                "message": d.message,
            })).collect::<Vec<_>>(),
            "pack": pack.map(summary_json),
        });
        println!("{report:#}");
    } else {
        for diagnostic in diagnostics {
            println!("{diagnostic}");
        }
        match pack {
            Some(pack) if valid => print_summary(pack),
            _ => {
                let errors = diagnostics.iter().filter(|d| d.is_error()).count();
                println!("invalid: {errors} error(s)");
            }
        }
        if let Some(stored) = &stored {
            let tenants: std::collections::BTreeSet<&str> = stored
                .listed
                .iter()
                .map(|(tenant, _, _)| tenant.as_str())
                .collect();
            println!(
                "tenant policies: {} in {} tenant(s), {} refused",
                stored.listed.len(),
                tenants.len(),
                stored.refused
            );
            for (_, _, id) in &stored.listed {
                println!("  {id}");
            }
        }
    }
    Ok(if valid {
        Verdict::Success
    } else {
        Verdict::Negative
    })
}

fn tenancy_line(pack: &Pack) -> String {
    match pack.tenancy() {
        Some(tenancy) => format!(
            "tenancy: on (every principal and resource carries `{}`, a {} entity; the tenant guard applies)",
            tenancy.attribute, tenancy.tenant_type
        ),
        None => "tenancy: off (no [tenancy] in pack.toml): plain single-tenant Cedar, decided exactly as Cedar decides".to_owned(),
    }
}

fn print_summary(pack: &Pack) {
    let name = pack.name().unwrap_or("(unnamed)");
    println!(
        "valid: pack {name}, {} policies, revision {}",
        pack.policies().len(),
        pack.revision()
    );
    println!(
        "schema: {}",
        if pack.schema().is_some() {
            "yes, policies validated in strict mode"
        } else {
            "none, policies not validated"
        }
    );
    println!("{}", tenancy_line(pack));
    if let Some(lifecycle) = pack.lifecycle() {
        println!(
            "lifecycle: a principal whose `{}` is not \"active\" is disabled",
            lifecycle.status_attribute
        );
    }
}

fn summary_json(pack: &Pack) -> serde_json::Value {
    json!({
        "name": pack.name(),
        "revision": pack.revision().as_str(),
        "schema": pack.schema().is_some(),
        "tenancy": pack.tenancy().map(|t| json!({"attribute": t.attribute, "tenant_type": t.tenant_type.to_string()})),
        "lifecycle": pack.lifecycle().map(|l| json!({"status_attribute": l.status_attribute})),
        "policies": pack.policies().iter().map(|p| json!({
            "id": p.id.to_string(),
            "effect": match p.effect { warden_core::cedar_policy::Effect::Permit => "permit", warden_core::cedar_policy::Effect::Forbid => "forbid" },
            "description": p.description.as_deref(),
            "cross_tenant": p.cross_tenant.as_deref(),
            "file": &*p.file,
            "line": p.line,
        })).collect::<Vec<_>>(),
    })
}

/// The store's tenant policies checked against the pack.
struct StoredPolicies {
    /// Each policy: tenant, name, id.
    listed: Vec<(String, String, String)>,
    /// Every problem found.
    problems: Vec<PackDiagnostic>,
    /// How many were refused.
    refused: usize,
}

/// Every tenant policy a store holds (`--store`).
pub fn read_stored_policies(url: &str) -> anyhow::Result<Vec<warden_store::TenantPolicyRecord>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        let store = warden_store::Store::connect(url)
            .await
            .with_context(|| format!("opening the store {url}"))?;
        store
            .all_tenant_policies()
            .await
            .context("reading the tenant policies")
    })
}

fn check_stored(url: &str, pack: &Pack) -> anyhow::Result<StoredPolicies> {
    let records = read_stored_policies(url)?;
    let mut stored = StoredPolicies {
        listed: Vec::with_capacity(records.len()),
        problems: Vec::new(),
        refused: 0,
    };
    for record in records {
        let id = warden_core::tenant_policies::tenant_policy_id(&record.tenant, &record.name);
        match TenantPolicy::check(pack, &record.tenant, &record.name, &record.text) {
            Ok(_) => {}
            Err(TenantPolicyError::Invalid(problems)) => {
                stored.refused += 1;
                stored.problems.extend(problems);
            }
            Err(other) => {
                stored.refused += 1;
                stored.problems.push(PackDiagnostic {
                    severity: warden_core::Severity::Error,
                    file: Some(tenant_policy_file(&record.tenant, &record.name)),
                    line: None,
                    column: None,
                    message: other.to_string(),
                });
            }
        }
        stored
            .listed
            .push((record.tenant, record.name, id.to_string()));
    }
    Ok(stored)
}
