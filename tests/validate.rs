//! `streamctl validate` acceptance tests.
//!
//! * `tests/cases/invalid/*.yaml`: one broken pipeline per file. Each starts with
//!   `# expect: <code> <line>:<column>` comment lines, one per diagnostic the file must produce
//!   (warnings too). The test fails when an expected diagnostic is missing or at another
//!   position, and when the file produces a diagnostic it does not expect, so every case
//!   documents everything it triggers. The rendered human output of each case is snapshotted in
//!   `tests/snapshots/<file stem>.snap`.
//! * `pipelines/*.yaml` (the reference pipelines) validate cleanly.
//! * `schemas/pipeline.schema.json` is up to date.
//! * The CLI's exit codes and output formats.
//!
//! Adding a case: write `tests/cases/invalid/NN-what-is-wrong.yaml` with its `# expect:` lines,
//! run `INSTA_UPDATE=always cargo test --test validate`, read the new `.snap` file, commit both.

use std::path::{Path, PathBuf};
use std::process::Command;

use streamctl::plan::{Validated, validate};

const CASES: &str = "tests/cases/invalid";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `*.yaml` pipeline files of a directory (relative to the crate root), sorted; test files
/// (`*.test.yaml`) are checked by tests/pipeline_tests.rs.
fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| !streamctl::testing::is_test_file(p))
        .collect();
    files.sort();
    files
}

/// The path as shown in diagnostics: relative to the crate root, with `/` separators.
fn display_path(path: &Path) -> String {
    let relative = path.strip_prefix(root()).unwrap_or(path);
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Validates a file with an empty environment (so `${VAR:-default}` takes the default and the
/// results do not depend on the machine).
fn validate_file(path: &Path) -> Validated {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    validate(&display_path(path), text, &|_| None)
}

/// A diagnostic as `code line:column` (or `code -` when it has no position).
fn located(v: &Validated) -> Vec<String> {
    v.diagnostics
        .iter()
        .map(|d| match d.span {
            Some(span) => {
                let at = v.file.line_col(span.start);
                format!("{} {}:{}", d.code, at.line, at.column)
            }
            None => format!("{} -", d.code),
        })
        .collect()
}

/// The `# expect: code line:column` lines at the top of a case, normalised like [`located`].
fn expectations(text: &str) -> Result<Vec<String>, String> {
    let mut expected = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(rest) = line.strip_prefix("# expect:") else {
            continue;
        };
        let words: Vec<&str> = rest.split_whitespace().collect();
        let well_formed = match words.as_slice() {
            [code, at] => {
                !code.is_empty()
                    && (*at == "-"
                        || at.split_once(':').is_some_and(|(l, c)| {
                            l.parse::<usize>().is_ok() && c.parse::<usize>().is_ok()
                        }))
            }
            _ => false,
        };
        if !well_formed {
            return Err(format!(
                "line {}: write `# expect: <code> <line>:<column>`, found `{line}`",
                i + 1
            ));
        }
        expected.push(words.join(" "));
    }
    if expected.is_empty() {
        return Err("no `# expect: <code> <line>:<column>` line".to_string());
    }
    Ok(expected)
}

/// Removes one occurrence of each of `items` from `from`; returns what was not found.
fn take_each(from: &mut Vec<String>, items: &[String]) -> Vec<String> {
    let mut missing = Vec::new();
    for item in items {
        match from.iter().position(|x| x == item) {
            Some(i) => {
                from.remove(i);
            }
            None => missing.push(item.clone()),
        }
    }
    missing
}

#[test]
fn invalid_cases_report_exactly_what_they_expect() {
    let files = yaml_files(CASES);
    assert!(
        files.len() >= 40,
        "expected at least 40 cases in {CASES}, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for path in &files {
        let name = display_path(path);
        let text = std::fs::read_to_string(path).expect("readable case");
        let expected = match expectations(&text) {
            Ok(e) => e,
            Err(problem) => {
                failures.push(format!("{name}: {problem}"));
                continue;
            }
        };
        let v = validate_file(path);
        let mut actual = located(&v);
        let missing = take_each(&mut actual, &expected);
        if !missing.is_empty() || !actual.is_empty() {
            let mut report = format!("{name}:");
            for m in &missing {
                report.push_str(&format!("\n    expected but not reported: {m}"));
            }
            for u in &actual {
                report.push_str(&format!("\n    reported but not expected: {u}"));
            }
            report.push_str(&format!(
                "\n    everything reported: {:?}\n{}",
                located(&v),
                indent(&streamctl::diag::render_human(
                    &v.file,
                    &v.diagnostics,
                    false
                ))
            ));
            failures.push(report);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases do not match their `# expect:` lines:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    | {l}\n"))
        .collect::<String>()
}

#[test]
fn invalid_cases_render_as_snapshotted() {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| {
        for path in yaml_files(CASES) {
            let v = validate_file(&path);
            let stem = path
                .file_stem()
                .expect("file name")
                .to_string_lossy()
                .to_string();
            let rendered = streamctl::diag::render_human(&v.file, &v.diagnostics, false);
            insta::assert_snapshot!(stem, rendered);
        }
    });
}

#[test]
fn every_case_fails_validation_or_warns() {
    for path in yaml_files(CASES) {
        let v = validate_file(&path);
        assert!(
            !v.diagnostics.is_empty(),
            "{}: validates cleanly, so it is not an invalid case",
            display_path(&path)
        );
        if v.error_count() > 0 {
            assert!(
                v.plan.is_none(),
                "{}: has errors but produced a plan",
                display_path(&path)
            );
        }
    }
}

#[test]
fn reference_pipelines_are_valid() {
    let files = yaml_files("pipelines");
    assert!(!files.is_empty(), "no pipelines/*.yaml");
    let mut problems = Vec::new();
    for path in &files {
        let v = validate_file(path);
        if !v.diagnostics.is_empty() {
            problems.push(streamctl::diag::render_human(
                &v.file,
                &v.diagnostics,
                false,
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "reference pipelines must validate cleanly:\n{}",
        problems.concat()
    );
}

#[test]
fn checked_in_schema_is_up_to_date() {
    let generated = serde_json::to_string_pretty(&streamctl::config::json_schema())
        .expect("schema serializes")
        + "\n";
    let path = root().join("schemas/pipeline.schema.json");
    let checked_in = std::fs::read_to_string(&path).expect("schemas/pipeline.schema.json");
    assert!(
        checked_in == generated,
        "schemas/pipeline.schema.json is stale: the config types changed. Regenerate it with \
         `streamctl schema -o schemas/pipeline.schema.json` (or \
         `cargo run -- schema -o schemas/pipeline.schema.json`) and commit it"
    );
}

// ----- the binary -------------------------------------------------------------------------

/// Runs `streamctl` in the crate root with a clean environment for `${VAR}` lookups.
fn streamctl(args: &[&str]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_streamctl"));
    command.args(args).current_dir(root()).env("NO_COLOR", "1");
    for var in [
        "INPUT",
        "OUTPUT",
        "KAFKA_BROKERS",
        "TOPIC",
        "STREAM",
        "AWS_REGION",
    ] {
        command.env_remove(var);
    }
    command.output().expect("streamctl runs")
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const VALID: &str = "pipelines/movie-impressions-local.yaml";
const INVALID: &str = "tests/cases/invalid/21-unknown-input-typo.yaml";
const WARNING_ONLY: &str = "tests/cases/invalid/25-unused-output.yaml";

/// The position of the first `# expect:` line of a case, as (line, column).
fn first_expected_position(case: &str) -> (u64, u64) {
    let text = std::fs::read_to_string(root().join(case)).expect("case file");
    let first = expectations(&text).expect("expectations")[0].clone();
    let at = first.split_whitespace().nth(1).expect("position");
    let (line, column) = at.split_once(':').expect("line:column");
    (line.parse().unwrap(), column.parse().unwrap())
}

#[test]
fn cli_exit_code_0_for_a_valid_file() {
    let o = streamctl(&["validate", VALID]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert!(stdout(&o).contains("valid"), "{}", stdout(&o));
}

#[test]
fn cli_exit_code_1_for_an_invalid_file() {
    let o = streamctl(&["validate", VALID, INVALID]);
    assert_eq!(o.status.code(), Some(1), "stderr: {}", stderr(&o));
    let (line, column) = first_expected_position(INVALID);
    let err = stderr(&o);
    assert!(
        err.contains(&format!("--> {INVALID}:{line}:{column}")),
        "{err}"
    );
    assert!(err.contains("help: did you mean"), "{err}");
    assert!(
        stdout(&o).contains(&format!("{INVALID}: invalid")),
        "{}",
        stdout(&o)
    );
}

#[test]
fn cli_exit_code_2_for_a_missing_file() {
    let o = streamctl(&["validate", "tests/cases/no-such-file.yaml"]);
    assert_eq!(o.status.code(), Some(2), "stderr: {}", stderr(&o));
    assert!(stderr(&o).contains("no-such-file.yaml"), "{}", stderr(&o));
}

#[test]
fn cli_json_output_parses_and_carries_positions() {
    let o = streamctl(&["validate", "--format", "json", VALID, INVALID]);
    assert_eq!(o.status.code(), Some(1));
    let doc: serde_json::Value =
        serde_json::from_str(&stdout(&o)).expect("--format json prints one JSON document");
    assert_eq!(doc["valid"], false);
    let files = doc["files"].as_array().expect("files");
    // The two files named, then the valid pipeline's own tests, checked with it.
    assert_eq!(files.len(), 3);
    assert_eq!(files[0]["valid"], true);
    assert_eq!(files[1]["valid"], false);
    assert_eq!(files[1]["file"], INVALID);
    assert_eq!(
        files[2]["file"],
        "pipelines/movie-impressions-local.test.yaml"
    );
    assert_eq!(files[2]["valid"], true);
    let d = &files[1]["diagnostics"][0];
    let (line, column) = first_expected_position(INVALID);
    assert_eq!(d["code"], "unknown-input");
    assert_eq!(d["severity"], "error");
    assert_eq!(d["line"], line);
    assert_eq!(d["column"], column);
    assert!(d["end_column"].as_u64().unwrap() > column);
    assert!(d["help"].as_str().unwrap().contains("did you mean"));
}

#[test]
fn cli_github_output_annotates_lines() {
    let o = streamctl(&["validate", "--format", "github", INVALID]);
    assert_eq!(o.status.code(), Some(1));
    let (line, column) = first_expected_position(INVALID);
    let out = stdout(&o);
    let prefix = format!("::error file={INVALID},line={line},col={column},");
    assert!(
        out.lines().any(|l| l.starts_with(&prefix)),
        "no line starting with {prefix}:\n{out}"
    );
    assert!(out.contains("title=streamctl unknown-input::"), "{out}");
}

#[test]
fn cli_deny_warnings_fails_a_warning_only_file() {
    let o = streamctl(&["validate", WARNING_ONLY]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert!(
        stderr(&o).contains("warning[unused-output]"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains("valid (1 warning)"), "{}", stdout(&o));
    let o = streamctl(&["validate", "--deny-warnings", WARNING_ONLY]);
    assert_eq!(o.status.code(), Some(1), "stderr: {}", stderr(&o));
    assert!(stdout(&o).contains("invalid (1 warning)"), "{}", stdout(&o));
    let o = streamctl(&["validate", "--format", "github", WARNING_ONLY]);
    assert!(stdout(&o).starts_with("::warning file="), "{}", stdout(&o));
}

/// The pipeline shown in `streamctl --help` is valid.
#[test]
fn the_help_example_validates() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_streamctl"))
        .arg("--help")
        .output()
        .expect("run streamctl --help");
    let text = String::from_utf8_lossy(&help.stdout);
    let start = text.find("  version: 1").expect("an example in --help");
    let end = text[start..]
        .find("\nExamples:")
        .map_or(text.len(), |i| start + i);
    let yaml: String = text[start..end]
        .lines()
        .map(|l| l.strip_prefix("  ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let v = streamctl::plan::validate("help.yaml", yaml, &|_| None);
    assert!(
        v.diagnostics.is_empty(),
        "{}",
        streamctl::diag::render_human(&v.file, &v.diagnostics, false)
    );
}
