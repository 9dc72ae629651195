//! `streamctl validate`: the CI gate.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use streamctl::diag::{self, OutputFormat};
use streamctl::plan::{Plan, Validated};

use super::{EnvArgs, color_stderr, exit, paint};

/// Check pipeline files: YAML syntax, keys and types, wiring, SQL expressions, fields, event
/// time, windows and sink paths. Every problem is reported in one pass as `file:line:column`
/// with a hint. Offline: needs no broker, bucket or credentials.
///
/// Test files (`*.test.yaml`, see `streamctl test --help`) are checked against their
/// pipeline: source and sink names, record fields and values against the source schemas,
/// expected rows against the fields each sink writes. A pipeline's own test file
/// (`movies.test.yaml` beside `movies.yaml`) is checked with it, so a change to the pipeline
/// that its tests no longer fit shows here.
///
/// Exit code 0 when every file is valid (warnings allowed unless --deny-warnings), 1 when
/// any file is invalid, 2 when a file cannot be read.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pipeline files (and test files, `*.test.yaml`) to check.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Output format: `human` (snippets), `json` (one document), `github` (Actions annotations).
    #[arg(long, value_enum, default_value = "human")]
    format: OutputFormat,
    /// Treat warnings (e.g. outputs nobody reads) as errors.
    #[arg(long)]
    deny_warnings: bool,
    /// The engine to check for: `embedded` (`streamctl run`), or `flink`, which also warns, at
    /// the line, about everything the cluster path (`plan --target flink-sql`, `submit`)
    /// cannot do the way the embedded engine does, with the nearest equivalent.
    #[arg(long, value_enum, default_value = "embedded")]
    target: Target,
    #[command(flatten)]
    env: EnvArgs,
}

/// The engine a pipeline is checked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// The embedded engine.
    Embedded,
    /// Flink SQL on a cluster.
    Flink,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let lookup = args.env.lookup();
    let mut results = Vec::new();
    // A file that cannot be read is reported like an invalid one (the others are still
    // checked), and makes the exit code 2.
    let mut unreadable = false;
    for path in &with_their_tests(&args.files) {
        let checked = if streamctl::testing::is_test_file(path) {
            check_tests(path)
        } else {
            check(path, &lookup, args.target).map(|v| vec![v])
        };
        match checked {
            Ok(v) => {
                // A pipeline named directly and through a test file is reported once.
                for validated in v {
                    if !results.iter().any(|r: &Validated| {
                        r.file.path == validated.file.path && r.diagnostics == validated.diagnostics
                    }) {
                        results.push(validated);
                    }
                }
            }
            Err(e) => {
                unreadable = true;
                results.push(Validated {
                    file: streamctl::diag::SourceFile::new(path.display().to_string(), ""),
                    plan: None,
                    diagnostics: vec![streamctl::diag::Diagnostic::error(
                        "unreadable-file",
                        format!("{e:#}"),
                    )],
                });
            }
        }
    }
    let failed =
        |v: &Validated| v.error_count() > 0 || (args.deny_warnings && v.warning_count() > 0);
    let any_failed = results.iter().any(failed);
    let mut out = std::io::stdout().lock();
    match args.format {
        OutputFormat::Human => {
            let color = color_stderr();
            for v in &results {
                eprint!("{}", diag::render_human(&v.file, &v.diagnostics, color));
            }
            for v in &results {
                let (errors, warnings) = (v.error_count(), v.warning_count());
                let status = if failed(v) {
                    paint("1;31", "invalid")
                } else {
                    paint("1;32", "valid")
                };
                let mut counts = Vec::new();
                if errors > 0 {
                    counts.push(plural(errors, "error"));
                }
                if warnings > 0 {
                    counts.push(plural(warnings, "warning"));
                }
                let counts = if counts.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", counts.join(", "))
                };
                writeln!(out, "{}: {status}{counts}", v.file.path)?;
                for note in v.notes() {
                    writeln!(out, "  note: {note}")?;
                }
            }
        }
        OutputFormat::Json => {
            let files: Vec<serde_json::Value> = results
                .iter()
                .map(|v| {
                    serde_json::json!({
                        "file": v.file.path,
                        "valid": !failed(v),
                        "errors": v.error_count(),
                        "warnings": v.warning_count(),
                        "diagnostics": diag::render_json(&v.file, &v.diagnostics),
                        "notes": v.notes(),
                    })
                })
                .collect();
            let doc = serde_json::json!({ "valid": !any_failed, "files": files });
            writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        }
        OutputFormat::Github => {
            for v in &results {
                write!(out, "{}", diag::render_github(&v.file, &v.diagnostics))?;
            }
        }
    }
    Ok(if unreadable {
        exit::ERROR
    } else if any_failed {
        exit::INVALID
    } else {
        exit::OK
    })
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// The files to check: those named, then the test file beside each pipeline named (when it
/// exists and is not named itself).
fn with_their_tests(files: &[PathBuf]) -> Vec<PathBuf> {
    let same = |a: &Path, b: &Path| {
        a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
    };
    let mut all = files.to_vec();
    for path in files {
        if streamctl::testing::is_test_file(path) {
            continue;
        }
        let tests = streamctl::testing::test_file_for(path);
        if tests.is_file() && !all.iter().any(|p| same(p, &tests)) {
            all.push(tests);
        }
    }
    all
}

/// Reads and checks a test file against its pipeline: the test file's diagnostics, and the
/// pipeline's when it is invalid (a test file does not read the environment).
fn check_tests(path: &Path) -> anyhow::Result<Vec<Validated>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read test file {}", path.display()))?;
    let loaded = streamctl::testing::load(path, &path.display().to_string(), text);
    let mut results = vec![Validated {
        file: loaded.file,
        plan: None,
        diagnostics: loaded.diagnostics,
    }];
    results.extend(loaded.invalid_pipeline);
    Ok(results)
}

/// Reads and validates one file.
fn check(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    target: Target,
) -> anyhow::Result<Validated> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read pipeline {}", path.display()))?;
    let name = path.display().to_string();
    Ok(match target {
        Target::Embedded => streamctl::plan::validate(&name, text, env),
        Target::Flink => streamctl::flink::validate(&name, text, env, &flink_options(path)?),
    })
}

/// Translation settings for a pipeline file: relative paths are taken from the current
/// directory, as `streamctl run` reads them.
pub fn flink_options(path: &Path) -> anyhow::Result<streamctl::flink::Options> {
    Ok(streamctl::flink::Options {
        base_dir: std::env::current_dir().context("reading the current directory")?,
        include_secrets: false,
        pipeline_file: Some(path.display().to_string()),
    })
}

/// For commands that run or show a pipeline: the plan, or `None` after printing diagnostics.
/// Warnings are printed too.
pub fn load_plan(path: &Path, env: &EnvArgs) -> anyhow::Result<Option<Plan>> {
    load_plan_for(path, env, Target::Embedded)
}

/// As [`load_plan`], checking for `target` (for Flink, its gaps are printed as warnings).
pub fn load_plan_for(path: &Path, env: &EnvArgs, target: Target) -> anyhow::Result<Option<Plan>> {
    load_with(path, &env.lookup(), target)
}

/// The `${VAR}`s a pipeline file uses that have a value, with their values, in order of use.
pub type UsedVariables = Vec<(String, String)>;

/// As [`load_plan_for`], with the variables the file uses (for running the same file
/// elsewhere).
pub fn load_plan_with_variables(
    path: &Path,
    env: &EnvArgs,
    target: Target,
) -> anyhow::Result<(Option<Plan>, UsedVariables)> {
    let lookup = env.lookup();
    let used = std::cell::RefCell::new(UsedVariables::new());
    let recording = |name: &str| {
        let value = lookup(name);
        if let Some(v) = &value {
            let mut used = used.borrow_mut();
            if !used.iter().any(|(k, _)| k == name) {
                used.push((name.to_string(), v.clone()));
            }
        }
        value
    };
    let plan = load_with(path, &recording, target)?;
    Ok((plan, used.into_inner()))
}

fn load_with(
    path: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
    target: Target,
) -> anyhow::Result<Option<Plan>> {
    let v = check(path, lookup, target)?;
    eprint!(
        "{}",
        diag::render_human(&v.file, &v.diagnostics, color_stderr())
    );
    if v.plan.is_none() {
        eprintln!(
            "{} {} is invalid ({})",
            paint("1;31", "error:"),
            v.file.path,
            plural(v.error_count(), "error")
        );
    }
    Ok(v.plan)
}
