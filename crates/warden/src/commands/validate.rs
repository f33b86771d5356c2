//! `warden validate`: load a pack and report every problem with file, line and column.

use serde_json::json;
use warden_core::pack::Pack;

use super::Verdict;
use crate::cli::ValidateArgs;
use crate::pack_loading;

pub fn run(args: &ValidateArgs) -> anyhow::Result<Verdict> {
    let compiled = pack_loading::load(&args.pack)?;
    let (diagnostics, pack) = match &compiled {
        Ok(compiled) => (&compiled.warnings, Some(&compiled.pack)),
        Err(error) => (&error.diagnostics, None),
    };
    if args.json {
        let report = json!({
            "valid": pack.is_some(),
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
            Some(pack) => print_summary(pack),
            None => {
                let errors = diagnostics.iter().filter(|d| d.is_error()).count();
                println!("invalid: {errors} error(s)");
            }
        }
    }
    Ok(if pack.is_some() {
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
