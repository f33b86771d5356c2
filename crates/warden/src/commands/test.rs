//! `warden test [DIR]`: run a pack's regression suites (`DIR/tests/*.yaml`), the adversarial
//! cases generated from every expected allow, and report coverage.
//!
//! With `--store URL`, the store's tenant-managed policies decide with the pack (as on a server
//! on that store) and are listed first.
//!
//! Exit 0 when every case passed and coverage is at least `--min-coverage`; 1 when a case
//! failed, coverage is too low or the pack does not compile; 2 when a suite is invalid
//! (malformed YAML, unknown keys, bad UIDs, a request the schema refuses), with its file and
//! line. Reading files happens here and in `suite_file`; running is `warden_core::suite`.
//! Tests: `tests/cli/test_verb.rs`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::bail;
use serde_json::Value;
use warden_core::Pack;
use warden_core::suite::{self, Attack, GeneratedStatus, RunReport, Suite};

use super::Verdict;
use crate::cli::{PackArgs, TestArgs, TestFormat};
use crate::{config_loading, junit, pack_loading, suite_file};

/// Where suites live, relative to the pack directory.
pub const SUITE_DIR: &str = "tests";

pub fn run(args: &TestArgs) -> anyhow::Result<Verdict> {
    if let Some(min) = args.min_coverage
        && !(0.0..=100.0).contains(&min)
    {
        bail!("--min-coverage must be a percentage between 0 and 100, not {min}");
    }
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    let pack_path = args.policies.clone().unwrap_or_else(|| dir.clone());
    let suite_paths = find_suites(&dir)?;

    let pack = match pack_loading::load(&PackArgs {
        policies: pack_path.clone(),
        schema: None,
    })? {
        Ok(compiled) => compiled.pack,
        Err(error) => {
            for diagnostic in error.errors() {
                eprintln!("{diagnostic}");
            }
            println!(
                "FAIL: the policy pack {} does not compile, so no case can pass",
                pack_path.display()
            );
            return Ok(Verdict::Negative);
        }
    };

    let mut suites = Vec::with_capacity(suite_paths.len());
    let mut invalid = Vec::new();
    for path in &suite_paths {
        match read_suite(path) {
            Ok(suite) => suites.push(suite),
            Err(error) => invalid.push(error),
        }
    }
    if !invalid.is_empty() {
        for error in &invalid {
            eprintln!("{error}");
        }
        bail!("{} invalid suite file(s)", invalid.len());
    }
    // The service's engine decides every case, as `warden serve` would.
    let (verifier, claim_attributes) = match &args.config {
        Some(path) => {
            let config = config_loading::load(Some(path))?;
            let verifier = warden_token::Verifier::new(config.issuers.clone(), 0)
                .map_err(|error| anyhow::anyhow!("{error}"))?;
            (Some(verifier), config.claim_attributes.clone())
        }
        None => (None, Vec::new()),
    };
    // A store's tenant policies decide with the pack, as on a server on that store; one that
    // no longer fits the pack fails the run, as it would stop that server's reload.
    let (listed, tenant_policies) = match &args.store {
        Some(url) => {
            let records = super::validate::read_stored_policies(url)?;
            match warden_service::snapshot::tenant_policies_of(&pack, &records) {
                Ok(policies) => (
                    Some(records),
                    Some(std::sync::Arc::new(std::sync::RwLock::new(policies))),
                ),
                Err(error) => {
                    println!("FAIL: {error}");
                    return Ok(Verdict::Negative);
                }
            }
        }
        None => (None, None),
    };
    let pack = std::sync::Arc::new(pack);
    let decider = warden_service::suite::ServiceDecider {
        pack: std::sync::Arc::clone(&pack),
        claim_attributes: std::sync::Arc::new(claim_attributes),
        verifier: verifier.as_ref(),
        tenant_policies,
    };
    let report = suite::run(&pack, &suites, &decider)?;

    let coverage_ok = args.min_coverage.is_none_or(|min| {
        report.coverage.policy_percent() >= min && report.coverage.action_percent() >= min
    });
    match args.format {
        TestFormat::Text => {
            if let Some(records) = &listed {
                print!("{}", render_stored(records));
            }
            print!("{}", render_text(&pack, &report, args.min_coverage));
        }
        TestFormat::Junit => print!("{}", junit::render(&report, args.min_coverage)),
    }
    Ok(if report.all_passed() && coverage_ok {
        Verdict::Success
    } else {
        Verdict::Negative
    })
}

/// `DIR/tests/*.yaml` and `*.yml`, sorted.
fn find_suites(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        bail!("{}: not a directory", dir.display());
    }
    let suite_dir = dir.join(SUITE_DIR);
    let entries = match std::fs::read_dir(&suite_dir) {
        Ok(entries) => entries,
        Err(_) => bail!(
            "{}: no test suites (expected YAML files in {})",
            dir.display(),
            suite_dir.display()
        ),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let is_yaml = path
            .extension()
            .and_then(|extension| extension.to_str())
            .is_some_and(|extension| extension == "yaml" || extension == "yml");
        if is_yaml && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    if paths.is_empty() {
        bail!(
            "{}: no test suites (expected *.yaml files)",
            suite_dir.display()
        );
    }
    Ok(paths)
}

fn read_suite(path: &Path) -> Result<Suite, String> {
    let shown = path.display().to_string();
    let text = warden_packdir::read_text(path).map_err(|error| error.to_string())?;
    let base = path.parent().unwrap_or_else(|| Path::new("."));
    let mut load = |relative: &str| read_entity_file(&base.join(relative));
    suite_file::parse(&shown, &text, &mut load).map_err(|error| error.to_string())
}

/// A Cedar entity JSON file: an array of entity objects.
fn read_entity_file(path: &Path) -> Result<Vec<Value>, String> {
    let text = warden_packdir::read_text(path).map_err(|error| error.to_string())?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(entities)) => Ok(entities),
        Ok(_) => Err(format!(
            "{}: expected a JSON array of Cedar entities",
            path.display()
        )),
        Err(error) => Err(format!("{}: malformed JSON: {error}", path.display())),
    }
}

/// The store's tenant policies in force for the run, by id.
fn render_stored(records: &[warden_store::TenantPolicyRecord]) -> String {
    let mut out = String::new();
    let tenants: std::collections::BTreeSet<&str> = records
        .iter()
        .map(|record| record.tenant.as_str())
        .collect();
    let _ = writeln!(
        out,
        "tenant policies from the store: {} in {} tenant(s)",
        records.len(),
        tenants.len()
    );
    for record in records {
        let _ = writeln!(
            out,
            "  {}",
            warden_core::tenant_policies::tenant_policy_id(&record.tenant, &record.name)
        );
    }
    out
}

/// The report for people: failures explained, generated cases by invariant, coverage.
fn render_text(pack: &Pack, report: &RunReport, min_coverage: Option<f64>) -> String {
    let mut out = String::new();
    let name = pack.name().unwrap_or("(unnamed)");
    let _ = writeln!(out, "pack {name}, revision {}", pack.revision());
    let (mut passed, mut failed) = (0usize, 0usize);
    for suite in &report.suites {
        let _ = writeln!(out, "\n{}", suite.name);
        for case in &suite.cases {
            match &case.failure {
                None => {
                    passed += 1;
                    let _ = writeln!(out, "  ok    {}", case.name);
                }
                Some(failure) => {
                    failed += 1;
                    let _ = writeln!(out, "  FAIL  {} ({}:{})", case.name, suite.name, case.line);
                    write_failure(&mut out, failure, "        ");
                }
            }
        }
    }

    let _ = writeln!(out, "\ngenerated adversarial cases (each must be denied)");
    let mut generated_counts = (0usize, 0usize, 0usize);
    for attack in Attack::ALL {
        let _ = writeln!(out, "  {}: {}", attack.as_str(), attack.invariant());
        let (mut ok, mut bad, mut skipped) = (0usize, 0usize, 0usize);
        let mut details = String::new();
        let mut not_generated: BTreeMap<&str, usize> = BTreeMap::new();
        for suite in &report.suites {
            for case in &suite.cases {
                for generated in case.generated.iter().filter(|g| g.attack == attack) {
                    match &generated.status {
                        GeneratedStatus::Passed => ok += 1,
                        GeneratedStatus::Failed(failure) => {
                            bad += 1;
                            let _ = writeln!(
                                details,
                                "    FAIL  {}: {} ({}:{})",
                                case.name, generated.variant, suite.name, case.line
                            );
                            write_failure(&mut details, failure, "          ");
                        }
                        GeneratedStatus::Skipped { reason } => {
                            skipped += 1;
                            let _ = writeln!(
                                details,
                                "    skip  {} ({}:{}): {reason}",
                                case.name, suite.name, case.line
                            );
                        }
                        GeneratedStatus::NotGenerated { why } => {
                            *not_generated.entry(why.as_str()).or_default() += 1;
                        }
                    }
                }
            }
        }
        let _ = writeln!(out, "    {ok} passed, {bad} failed, {skipped} skipped");
        for (why, count) in not_generated {
            let _ = writeln!(out, "    not generated for {count} case(s): {why}");
        }
        out.push_str(&details);
        generated_counts.0 += ok;
        generated_counts.1 += bad;
        generated_counts.2 += skipped;
    }

    let coverage = &report.coverage;
    let covered_policies = coverage.policies.iter().filter(|(_, c)| *c).count();
    let covered_actions = coverage.actions.iter().filter(|(_, c)| *c).count();
    let _ = writeln!(out, "\ncoverage");
    let _ = writeln!(
        out,
        "  policies made determining: {covered_policies}/{} ({:.1}%)",
        coverage.policies.len(),
        coverage.policy_percent()
    );
    for info in coverage.uncovered_policies() {
        let _ = writeln!(
            out,
            "    never determining: `{}` ({}:{})",
            info.id, info.file, info.line
        );
    }
    let _ = writeln!(
        out,
        "  schema actions exercised: {covered_actions}/{} ({:.1}%)",
        coverage.actions.len(),
        coverage.action_percent()
    );
    for action in coverage.uncovered_actions() {
        let _ = writeln!(out, "    never exercised: {action}");
    }
    let low = min_coverage
        .is_some_and(|min| coverage.policy_percent() < min || coverage.action_percent() < min);
    if let Some(min) = min_coverage {
        let _ = writeln!(
            out,
            "  minimum {min:.1}%: {}",
            if low { "NOT MET" } else { "met" }
        );
    }

    let verdict = if failed == 0 && generated_counts.1 == 0 && !low {
        "ok"
    } else {
        "FAILED"
    };
    let _ = writeln!(
        out,
        "\ntest result: {verdict}. cases: {passed} passed, {failed} failed; generated: {} passed, {} failed, {} skipped",
        generated_counts.0, generated_counts.1, generated_counts.2
    );
    out
}

fn write_failure(out: &mut String, failure: &suite::Failure, indent: &str) {
    for problem in &failure.problems {
        let _ = writeln!(out, "{indent}{problem}");
    }
    let _ = writeln!(out, "{indent}{}", failure.explanation.summary);
    for detail in &failure.explanation.details {
        let _ = writeln!(out, "{indent}  - {detail}");
    }
}
