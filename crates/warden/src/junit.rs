//! The JUnit XML form of a `warden test` run, for CI systems that show test reports.
//!
//! One `<testsuite>` per suite file for its hand-written cases, one `<testsuite>` per suite
//! file for its generated adversarial cases (named `<file> (adversarial)`, test names
//! `<case> / <kind>: <variant>`), and with `--min-coverage` a `coverage` suite with one test per
//! measure. Failures carry the explanation as their text. Cases that generate nothing are not
//! listed. Tests: `tests/cli/test_verb.rs`.

use std::fmt::Write as _;

use warden_core::suite::{Failure, GeneratedStatus, RunReport};

struct TestCase {
    class: String,
    name: String,
    line: Option<usize>,
    failure: Option<(String, String)>,
    skipped: Option<String>,
}

pub fn render(report: &RunReport, min_coverage: Option<f64>) -> String {
    let mut groups: Vec<(String, Vec<TestCase>)> = Vec::new();
    for suite in &report.suites {
        let mut cases = Vec::new();
        let mut generated = Vec::new();
        for case in &suite.cases {
            cases.push(TestCase {
                class: suite.name.clone(),
                name: case.name.clone(),
                line: Some(case.line),
                failure: case.failure.as_ref().map(failure_parts),
                skipped: None,
            });
            for item in &case.generated {
                let name = if item.variant.is_empty() {
                    format!("{} / {}", case.name, item.attack.as_str())
                } else {
                    format!("{} / {}: {}", case.name, item.attack.as_str(), item.variant)
                };
                let (failure, skipped) = match &item.status {
                    GeneratedStatus::Passed => (None, None),
                    GeneratedStatus::Failed(failure) => (Some(failure_parts(failure)), None),
                    GeneratedStatus::Skipped { reason } => (None, Some(reason.clone())),
                    GeneratedStatus::NotGenerated { .. } => continue,
                };
                generated.push(TestCase {
                    class: format!("{}.{}", suite.name, item.attack.as_str()),
                    name,
                    line: Some(case.line),
                    failure,
                    skipped,
                });
            }
        }
        groups.push((suite.name.clone(), cases));
        groups.push((format!("{} (adversarial)", suite.name), generated));
    }
    if let Some(min) = min_coverage {
        let coverage = &report.coverage;
        let measure = |what: &str, percent: f64, missing: Vec<String>| TestCase {
            class: "coverage".to_owned(),
            name: format!("{what} coverage >= {min:.1}%"),
            line: None,
            failure: (percent < min).then(|| {
                (
                    format!("{what} coverage {percent:.1}% is below {min:.1}%"),
                    missing.join("\n"),
                )
            }),
            skipped: None,
        };
        groups.push((
            "coverage".to_owned(),
            vec![
                measure(
                    "policy",
                    coverage.policy_percent(),
                    coverage
                        .uncovered_policies()
                        .map(|info| {
                            format!(
                                "never determining: {} ({}:{})",
                                info.id, info.file, info.line
                            )
                        })
                        .collect(),
                ),
                measure(
                    "action",
                    coverage.action_percent(),
                    coverage
                        .uncovered_actions()
                        .map(|action| format!("never exercised: {action}"))
                        .collect(),
                ),
            ],
        ));
    }

    let count = |cases: &[TestCase]| {
        (
            cases.len(),
            cases.iter().filter(|c| c.failure.is_some()).count(),
            cases.iter().filter(|c| c.skipped.is_some()).count(),
        )
    };
    let (mut total, mut failures, mut skipped) = (0, 0, 0);
    for (_, cases) in &groups {
        let (t, f, s) = count(cases);
        total += t;
        failures += f;
        skipped += s;
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"warden test\" tests=\"{total}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\">"
    );
    for (name, cases) in &groups {
        let (t, f, s) = count(cases);
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{t}\" failures=\"{f}\" errors=\"0\" skipped=\"{s}\">",
            escape(name)
        );
        for case in cases {
            let line = case
                .line
                .map(|line| format!(" line=\"{line}\""))
                .unwrap_or_default();
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\"{line}",
                escape(&case.class),
                escape(&case.name)
            );
            match (&case.failure, &case.skipped) {
                (Some((message, text)), _) => {
                    let _ = writeln!(
                        out,
                        ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                        escape(message),
                        escape(text)
                    );
                }
                (None, Some(reason)) => {
                    let _ = writeln!(
                        out,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        escape(reason)
                    );
                }
                (None, None) => out.push_str("/>\n"),
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn failure_parts(failure: &Failure) -> (String, String) {
    let message = failure.problems.join("; ");
    let mut text = failure.explanation.summary.clone();
    for detail in &failure.explanation.details {
        text.push_str("\n  - ");
        text.push_str(detail);
    }
    (message, text)
}

/// Escapes text for XML attributes and content; drops characters XML 1.0 cannot carry.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup_and_drops_control_characters() {
        assert_eq!(
            escape("User::\"a\" <&> 'b'\u{1}"),
            "User::&quot;a&quot; &lt;&amp;&gt; &apos;b&apos;"
        );
    }
}
