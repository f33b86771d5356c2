//! Parsing each `*.cedar` file and giving every policy its id.
//!
//! A policy's id is its `@id("…")` annotation. Without one it is Cedar's own numbering within
//! its file (`policy0`, `policy1`, …), prefixed with the file's path (`docs.cedar#policy0`)
//! when the pack has more than one file, so that two files cannot collide. Ids must be unique
//! across the pack; a duplicate is an error at the second policy, naming the first.

use std::collections::HashMap;
use std::str::FromStr;

use cedar_policy::{Policy, PolicyId, PolicySet};

use super::diagnostics::{LineCounter, PackDiagnostic, Severity, flatten_miette};
use super::sources::SourceFile;

/// A parsed policy with its final id and where it came from.
pub(crate) struct NamedPolicy {
    pub(crate) policy: Policy,
    pub(crate) file: String,
    pub(crate) line: usize,
}

pub(crate) fn name_policies(
    files: &[SourceFile],
    diagnostics: &mut Vec<PackDiagnostic>,
) -> Vec<NamedPolicy> {
    let qualify_default_ids = files.len() > 1;
    let mut named = Vec::new();
    let mut seen: HashMap<String, (String, usize)> = HashMap::new();
    for file in files {
        let parsed = match PolicySet::from_str(&file.text) {
            Ok(parsed) => parsed,
            Err(errors) => {
                for error in errors.iter() {
                    for (message, offset) in flatten_miette(error) {
                        diagnostics.push(PackDiagnostic::at_offset(
                            Severity::Error,
                            &file.path,
                            &file.text,
                            offset,
                            message,
                        ));
                    }
                }
                continue;
            }
        };
        for template in parsed.templates() {
            diagnostics.push(PackDiagnostic::in_file(
                Severity::Error,
                &file.path,
                format!(
                    "`{}` is a template (it has a ?principal or ?resource slot); packs hold static policies only",
                    template.id()
                ),
            ));
        }
        let mut in_file_order: Vec<&Policy> = parsed.policies().collect();
        in_file_order.sort_by_key(|policy| default_number(policy.id()));
        let mut cursor = 0;
        let mut lines = LineCounter::new(&file.text);
        for policy in in_file_order {
            let offset = policy
                .to_cedar()
                .and_then(|text| find_from(&file.text, &text, cursor))
                .unwrap_or(cursor);
            cursor = offset.saturating_add(1);
            let (line, column) = lines.at(offset);
            let final_id = match policy.annotation("id") {
                Some(explicit) if explicit.trim().is_empty() => {
                    diagnostics.push(at(
                        file,
                        line,
                        column,
                        Severity::Error,
                        "@id must not be empty".to_owned(),
                    ));
                    continue;
                }
                Some(explicit) => explicit.to_owned(),
                None => {
                    let default = if qualify_default_ids {
                        format!("{}#{}", file.path, policy.id())
                    } else {
                        policy.id().to_string()
                    };
                    diagnostics.push(at(
                        file,
                        line,
                        column,
                        Severity::Warning,
                        format!(
                            "policy has no @id(\"…\"); its id is `{default}`, which changes when policies are added above it"
                        ),
                    ));
                    default
                }
            };
            if final_id.starts_with(crate::tenant_policies::TENANT_POLICY_PREFIX) {
                diagnostics.push(at(
                    file,
                    line,
                    column,
                    Severity::Error,
                    format!(
                        "policy id `{final_id}`: ids starting with `{}` are reserved for tenant-managed policies",
                        crate::tenant_policies::TENANT_POLICY_PREFIX
                    ),
                ));
                continue;
            }
            if let Some((first_file, first_line)) = seen.get(&final_id) {
                diagnostics.push(at(
                    file,
                    line,
                    column,
                    Severity::Error,
                    format!(
                        "duplicate policy id `{final_id}` (first used at {first_file}:{first_line})"
                    ),
                ));
                continue;
            }
            seen.insert(final_id.clone(), (file.path.clone(), line));
            named.push(NamedPolicy {
                policy: policy.new_id(PolicyId::new(final_id)),
                file: file.path.clone(),
                line,
            });
        }
    }
    named
}

fn at(
    file: &SourceFile,
    line: usize,
    column: usize,
    severity: Severity,
    message: String,
) -> PackDiagnostic {
    PackDiagnostic {
        severity,
        file: Some(file.path.clone()),
        line: Some(line),
        column: Some(column),
        message,
    }
}

/// Cedar numbers the policies of one text `policy0`, `policy1`, … in source order.
fn default_number(id: &PolicyId) -> usize {
    id.to_string()
        .strip_prefix("policy")
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

fn find_from(haystack: &str, needle: &str, from: usize) -> Option<usize> {
    haystack.get(from..)?.find(needle).map(|found| found + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(files: &[SourceFile]) -> (Vec<(String, usize)>, Vec<PackDiagnostic>) {
        let mut diagnostics = Vec::new();
        let named = name_policies(files, &mut diagnostics);
        (
            named
                .iter()
                .map(|n| (n.policy.id().to_string(), n.line))
                .collect(),
            diagnostics,
        )
    }

    #[test]
    fn explicit_ids_win_and_lines_are_found() {
        let file = SourceFile::new(
            "a.cedar",
            "// header\n@id(\"first\")\npermit(principal, action, resource);\n\n@id(\"second\") forbid(principal, action, resource);\n",
        );
        let (named, diagnostics) = names(&[file]);
        assert_eq!(named, [("first".to_owned(), 2), ("second".to_owned(), 5)]);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
    }

    #[test]
    fn default_ids_are_qualified_by_file_when_there_are_several() {
        let a = SourceFile::new("a.cedar", "permit(principal, action, resource);");
        let b = SourceFile::new("b.cedar", "permit(principal, action, resource);");
        let (named, _) = names(&[a, b]);
        let ids: Vec<&str> = named.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["a.cedar#policy0", "b.cedar#policy0"]);
    }

    #[test]
    fn duplicate_ids_are_rejected_at_the_second() {
        let a = SourceFile::new(
            "a.cedar",
            "@id(\"same\")\npermit(principal, action, resource);",
        );
        let b = SourceFile::new(
            "b.cedar",
            "\n\n@id(\"same\")\nforbid(principal, action, resource);",
        );
        let (named, diagnostics) = names(&[a, b]);
        assert_eq!(named.len(), 1);
        let error = diagnostics.iter().find(|d| d.is_error()).unwrap();
        assert_eq!(
            error.to_string(),
            "b.cedar:3:1: error: duplicate policy id `same` (first used at a.cedar:1)"
        );
    }

    #[test]
    fn parse_errors_are_located() {
        let file = SourceFile::new(
            "bad.cedar",
            "permit(principal, action, resource);\npermit(principal, action resource);",
        );
        let (_, diagnostics) = names(&[file]);
        let error = diagnostics.iter().find(|d| d.is_error()).unwrap();
        assert_eq!(error.file.as_deref(), Some("bad.cedar"));
        assert_eq!(error.line, Some(2));
    }
}
