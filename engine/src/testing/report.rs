//! Renders a test run as text, JSON or JUnit XML.

use std::fmt::Write as _;

use similar::{ChangeTag, TextDiff};

use crate::testing::run::{CaseResult, Report};

/// Renders the report for a terminal: every failure with its location, reasons and a diff
/// of the plans, then the coverage when asked, then `N passed, N failed`.
pub fn text(report: &Report, with_coverage: bool) -> String {
    let mut out = String::new();
    for message in &report.load_errors {
        let _ = writeln!(out, "error: {message}");
    }
    for diagnostic in report.errors.iter().chain(&report.warnings) {
        out.push_str(&diagnostic.render());
        out.push('\n');
    }
    for case in report.cases.iter().filter(|case| !case.passed()) {
        out.push_str(&failure_text(case));
    }
    if with_coverage {
        out.push_str(&coverage_text(report));
    }
    let errors = report.errors.len() + report.load_errors.len();
    if errors > 0 {
        let noun = if errors == 1 { "error" } else { "errors" };
        let _ = writeln!(out, "{errors} {noun} stopped test files from running");
    }
    let warnings = report.warnings.len();
    if warnings > 0 {
        let noun = if warnings == 1 { "warning" } else { "warnings" };
        let _ = writeln!(out, "{warnings} {noun} in rule files");
    }
    let _ = writeln!(
        out,
        "{} passed, {} failed",
        report.passed(),
        report.failed()
    );
    out
}

fn failure_text(case: &CaseResult) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "FAIL {} {}", case.location, case.name);
    for failure in &case.failures {
        let _ = writeln!(out, "  {failure}");
    }
    if let Some(diff) = &case.diff {
        out.push_str("  plan (- expected, + actual):\n");
        for change in TextDiff::from_lines(&diff.expected, &diff.actual).iter_all_changes() {
            let sign = match change.tag() {
                ChangeTag::Delete => '-',
                ChangeTag::Insert => '+',
                ChangeTag::Equal => ' ',
            };
            let _ = write!(out, "  {sign} {}", change.value());
            if change.missing_newline() {
                out.push('\n');
            }
        }
    }
    out.push('\n');
    out
}

fn coverage_text(report: &Report) -> String {
    let coverage = &report.coverage;
    let mut out = String::new();
    let rules_hit = coverage.rules - coverage.rules_not_matched.len();
    let branches_hit = coverage.branches - coverage.branches_not_taken.len();
    if coverage.rules == 0 && !(report.errors.is_empty() && report.load_errors.is_empty()) {
        out.push_str("coverage: no rules were loaded, because of the errors above\n");
        return out;
    }
    let _ = writeln!(
        out,
        "coverage: {rules_hit} of {} rules matched in a case, {branches_hit} of {} `any` conditions held",
        coverage.rules, coverage.branches
    );
    for rule in &coverage.rules_not_matched {
        let _ = writeln!(out, "  rule never matched: {rule}");
    }
    for branch in &coverage.branches_not_taken {
        let _ = writeln!(out, "  `any` condition never held: {branch}");
    }
    out
}

/// Renders the report as JSON.
pub fn json(report: &Report) -> String {
    let errors: Vec<String> = report
        .errors
        .iter()
        .map(ToString::to_string)
        .chain(report.load_errors.iter().cloned())
        .collect();
    let value = serde_json::json!({
        "passed": report.passed(),
        "failed": report.failed(),
        "errors": errors,
        "warnings": report.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "cases": report.cases.iter().map(|case| serde_json::json!({
            "name": case.name,
            "location": case.location,
            "file": case.file,
            "status": if case.passed() { "passed" } else { "failed" },
            "failures": case.failures,
            "diff": case.diff,
        })).collect::<Vec<_>>(),
        "coverage": report.coverage,
    });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

/// Renders the report as JUnit XML: one `testsuite` per test file, one `testcase` per case;
/// files that could not run appear as a suite with one errored case.
pub fn junit(report: &Report) -> String {
    let mut suites: Vec<(&str, Vec<&CaseResult>)> = Vec::new();
    for case in &report.cases {
        match suites.iter_mut().find(|(file, _)| *file == case.file) {
            Some((_, cases)) => cases.push(case),
            None => suites.push((&case.file, vec![case])),
        }
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let errors = report.errors.len() + report.load_errors.len();
    let _ = writeln!(
        out,
        "<testsuites name=\"cordon\" tests=\"{}\" failures=\"{}\" errors=\"{errors}\">",
        report.cases.len(),
        report.failed()
    );
    for (file, cases) in suites {
        let failures = cases.iter().filter(|case| !case.passed()).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\">",
            escape(file),
            cases.len()
        );
        for case in cases {
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\"",
                escape(&case.name),
                escape(file),
                escape(&case.location)
            );
            if case.passed() {
                out.push_str("/>\n");
                continue;
            }
            out.push_str(">\n");
            let message = case
                .failures
                .first()
                .map(String::as_str)
                .unwrap_or_default();
            let body = failure_text(case);
            let _ = writeln!(
                out,
                "      <failure message=\"{}\">{}</failure>",
                escape(message),
                escape(&body)
            );
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    let messages: Vec<String> = report
        .errors
        .iter()
        .map(ToString::to_string)
        .chain(report.load_errors.iter().cloned())
        .collect();
    if !messages.is_empty() {
        let _ = writeln!(
            out,
            "  <testsuite name=\"load\" tests=\"{errors}\" errors=\"{errors}\">"
        );
        for message in messages {
            let _ = writeln!(
                out,
                "    <testcase name=\"{}\" classname=\"load\"><error message=\"{}\"/></testcase>",
                escape(&message),
                escape(&message)
            );
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_without_loaded_rules_says_why() {
        let mut report = Report::default();
        report.load_errors.push("cannot read `rules/`".to_owned());
        let out = text(&report, true);
        assert!(
            out.contains("coverage: no rules were loaded, because of the errors above"),
            "{out}"
        );
        assert!(!out.contains("0 of 0"), "{out}");
    }
}
