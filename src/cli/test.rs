//! `streamctl test`: runs pipeline tests (`*.test.yaml`) on the embedded engine.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use streamctl::diag::{self, Severity};
use streamctl::testing::compare::{DiffLine, Finding};
use streamctl::testing::{self, Loaded};

use super::{color_stderr, exit};

const AFTER_HELP: &str = "\
A test file sits beside its pipeline: `movies.test.yaml` tests `movies.yaml`. Each test gives
records to the pipeline's sources (by source name) and states what its sinks must write (by
sink name). Sources and sinks are the pipeline's own, replaced for the test: records are
decoded by the source's format and schema like real input, and an `s3` sink writes through
the real bucketing into memory. Kafka, Kinesis and S3 pipelines need no services.

  # movies.test.yaml, beside movies.yaml (pipelines/movie-impressions-local.yaml)
  tests:
    - name: impressions are counted per movie and user every 15 minutes
      inputs:
        impressions:                       # a source of movies.yaml
          - {movieId: m1, userId: u1, timestamp: 2019-01-07T00:01:00Z}
          - {movieId: m1, userId: u1, timestamp: 2019-01-07T00:07:00Z}
          - raw: '{\"movieId\": \"m2\", \"timestamp\": \"soon\"}'   # exact bytes: a bad record
          - watermark: 2019-01-07T00:20:00Z    # the source's watermark advances to this
          - {movieId: m1, userId: u1, timestamp: 2019-01-07T00:09:00Z}   # late now
      outputs:
        hourly:                            # a sink of movies.yaml: its rows, in any order
          - {movieId: m1, userId: u1, impressions: 2, latestImpression: 2019-01-07T00:07:00Z}
      counts: {late_events: {per_user: 1}, bad_records: 1}

Inputs, per source, in order (sources are fed one after another, in the order listed):
  - {field: value, …}              a record; values are typed by the source's schema, and an
                                   instant is converted for timestamp_ms/timestamp_s fields
  - record: {…}  partition: 1      a record in another partition (default 0)
  - raw: '<one record's bytes>'    exactly as the source would read it (JSON, a CSV line)
  - file: sample.jsonl             every record of a file (relative to the test file)
  - watermark: <instant>           the watermark advances to at least this (every partition,
                                   or `partition: n`); a record whose window ended is late
  - idle: true                     the partition goes quiet as when `idle_timeout` passes
                                   (the source needs one); it stops holding the watermark
Then the input ends: the watermark goes to +infinity and every open window fires.

Outputs, per sink (a sink not listed is not checked; `[]` says it writes nothing):
  - {field: value, …}              its rows in any order; fields left out are not compared
  rows: […]  ordered: true         rows in the order written
  objects: {<path>/: […]}          s3 sinks: rows (or `content: |`) per object path under
                                   the url, as the path template renders it
  content: |                       the exact text written (CSV, JSON lines)
Also `counts: {late_events: {<window>: n}, bad_records: n}`, and `error: <text>` for a run
that must fail. A test that states no outputs, counts or error checks nothing, and fails. Dead letters have position `<source>:<n>` (the n-th record of that source).
Tests never read the environment: `env: {VAR: value}` (per file or test) sets `${VAR}`.

A failure names the test and the line of the expectation, and for rows the window and key
(with the object path) and each field that differs. `--update` rewrites the expected outputs
and counts from what the run wrote (comments and matching rows stay as written);
`--create-from FILE` adds a test from the first records of real input, with its outputs.
`streamctl validate` checks test files too. Schema for editors:
schemas/pipeline-test.schema.json.

Exit codes: 0 every test passed, 1 a test failed or a test file is invalid, 2 usage or I/O
error (no test files found, unreadable files).

Examples:
  streamctl test pipelines/
  streamctl test pipelines/movie-impressions-local.yaml --filter late
  streamctl test pipelines/movie-impressions-local.test.yaml --update
  streamctl test pipelines/movie-impressions-local.yaml --create-from data/movie-impressions.jsonl --records 20
  streamctl test pipelines/ --format github        # annotations in GitHub Actions";

/// Run pipeline tests: records in, expected rows out, with event time, watermarks, late
/// events and dead letters, on the embedded engine with no services.
///
/// PATHS are test files (`*.test.yaml`), pipelines (their `*.test.yaml` is run) or
/// directories (every `*.test.yaml` below them). Default: the current directory.
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// Test files, pipelines or directories.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Run only tests whose name contains this text.
    #[arg(long, value_name = "TEXT")]
    filter: Option<String>,
    /// Rewrite the expected outputs (and counts) of failing tests from what their run wrote.
    #[arg(long, conflicts_with = "create_from")]
    update: bool,
    /// Add a test to the pipeline's test file from the first records of this input file
    /// (JSON lines or CSV in the source's format; `.gz` is decompressed), with the outputs
    /// the pipeline writes for them.
    #[arg(long, value_name = "FILE")]
    create_from: Option<PathBuf>,
    /// With --create-from: how many records to take.
    #[arg(long, value_name = "N", default_value = "10", requires = "create_from")]
    records: usize,
    /// With --create-from: the source that receives them (default: the only one).
    #[arg(long, value_name = "NAME", requires = "create_from")]
    source: Option<String>,
    /// With --create-from: the new test's name.
    #[arg(long, value_name = "TEXT", requires = "create_from")]
    name: Option<String>,
    /// `human`, or `github` (also prints GitHub Actions annotations at the failing lines).
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Human,
    Github,
}

/// Colors for standard output.
struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    if let Some(input) = &args.create_from {
        return create(&args, input);
    }
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let mut files = Vec::new();
    let mut untested = Vec::new();
    for path in &paths {
        collect(path, &mut files, &mut untested)?;
    }
    if files.is_empty() {
        bail!(
            "no test files (`*.test.yaml`) in {}; write one beside a pipeline (see `streamctl test --help`), or create one with `--create-from`",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let style = Style {
        color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let mut out = std::io::stdout().lock();
    let mut totals = Totals::default();
    let mut failures: Vec<String> = Vec::new();
    let mut annotations = String::new();
    for file in &files {
        run_file(
            file,
            &args,
            &style,
            &mut out,
            &mut totals,
            &mut failures,
            &mut annotations,
        )?;
    }
    if !failures.is_empty() {
        writeln!(
            out,
            "\n{}",
            style.paint("1", "failures (- expected, + actual):")
        )?;
        for f in &failures {
            write!(out, "\n{f}")?;
        }
    }
    if !untested.is_empty() {
        untested.sort();
        writeln!(
            out,
            "\nnote: no tests for {} (write <name>.test.yaml beside each)",
            untested.join(", ")
        )?;
    }
    let verdict = if totals.failed + totals.invalid == 0 {
        style.paint("1;32", "ok")
    } else {
        style.paint("1;31", "FAILED")
    };
    let mut parts = vec![format!("{} passed", totals.passed)];
    if totals.failed > 0 {
        parts.push(format!("{} failed", totals.failed));
    }
    if totals.updated > 0 {
        parts.push(format!("{} updated", totals.updated));
    }
    if totals.filtered > 0 {
        parts.push(format!("{} filtered out", totals.filtered));
    }
    if totals.invalid > 0 {
        parts.push(format!(
            "{} invalid test file{}",
            totals.invalid,
            if totals.invalid == 1 { "" } else { "s" }
        ));
    }
    writeln!(out, "\ntest result: {verdict}. {}", parts.join(", "))?;
    if args.format == Format::Github {
        write!(out, "{annotations}")?;
    }
    Ok(if totals.failed + totals.invalid == 0 {
        exit::OK
    } else {
        exit::INVALID
    })
}

#[derive(Default)]
struct Totals {
    passed: usize,
    failed: usize,
    updated: usize,
    filtered: usize,
    invalid: usize,
}

/// Test files under `path`, and pipelines found there without one.
fn collect(
    path: &Path,
    files: &mut Vec<PathBuf>,
    untested: &mut Vec<String>,
) -> anyhow::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading directory {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for entry in entries {
            let name = entry
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if entry.is_dir() {
                if !name.starts_with('.') && name != "target" && name != "node_modules" {
                    collect(&entry, files, untested)?;
                }
            } else if testing::is_test_file(&entry) {
                files.push(entry);
            } else if (name.ends_with(".yaml") || name.ends_with(".yml"))
                && !testing::test_file_for(&entry).exists()
                && looks_like_pipeline(&entry)
            {
                untested.push(entry.display().to_string());
            }
        }
        return Ok(());
    }
    if !path.exists() {
        bail!("{} does not exist", path.display());
    }
    if testing::is_test_file(path) {
        files.push(path.to_path_buf());
        return Ok(());
    }
    let test_file = testing::test_file_for(path);
    if !test_file.exists() {
        bail!(
            "{} has no tests: write {} (see `streamctl test --help`), or create one with `streamctl test {} --create-from <input file>`",
            path.display(),
            test_file.display(),
            path.display()
        );
    }
    files.push(test_file);
    Ok(())
}

fn looks_like_pipeline(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| {
        t.lines().any(|l| l.starts_with("sources:")) && t.lines().any(|l| l.starts_with("sinks:"))
    })
}

fn load(path: &Path) -> anyhow::Result<Loaded> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read test file {}", path.display()))?;
    Ok(testing::load(path, &path.display().to_string(), text))
}

/// Prints a file's diagnostics (and its pipeline's); `true` when it has errors.
fn report_diagnostics(loaded: &Loaded, format: Format, annotations: &mut String) -> bool {
    let color = color_stderr();
    for v in &loaded.invalid_pipeline {
        eprint!("{}", diag::render_human(&v.file, &v.diagnostics, color));
    }
    eprint!(
        "{}",
        diag::render_human(&loaded.file, &loaded.diagnostics, color)
    );
    if format == Format::Github {
        for v in &loaded.invalid_pipeline {
            annotations.push_str(&diag::render_github(&v.file, &v.diagnostics));
        }
        annotations.push_str(&diag::render_github(&loaded.file, &loaded.diagnostics));
    }
    loaded
        .diagnostics
        .iter()
        .any(|d| d.severity == Severity::Error)
}

#[allow(clippy::too_many_arguments)]
fn run_file(
    path: &Path,
    args: &Args,
    style: &Style,
    out: &mut impl Write,
    totals: &mut Totals,
    failures: &mut Vec<String>,
    annotations: &mut String,
) -> anyhow::Result<()> {
    let loaded = load(path)?;
    let pipeline = loaded
        .pipeline_path
        .as_ref()
        .map(|p| format!(" (pipeline {})", p.display()))
        .unwrap_or_default();
    writeln!(out, "{}{pipeline}", style.paint("1", &loaded.file.path))?;
    if report_diagnostics(&loaded, args.format, annotations) {
        writeln!(
            out,
            "  {} the test file is invalid ({} error{}, shown above)",
            style.paint("1;31", "error"),
            loaded.error_count(),
            if loaded.error_count() == 1 { "" } else { "s" }
        )?;
        totals.invalid += 1;
        return Ok(());
    }
    let mut edits = Vec::new();
    let mut updated = Vec::new();
    for test in &loaded.tests {
        let case = &test.case;
        if args
            .filter
            .as_ref()
            .is_some_and(|f| !case.name.contains(f.as_str()))
        {
            totals.filtered += 1;
            continue;
        }
        let (Some(plan), Some(prepared)) = (&test.plan, &test.prepared) else {
            continue;
        };
        let result = testing::run(plan, prepared, case);
        // A test that states no outputs yet gets them written by --update.
        let unstated = case.states_no_outputs() && prepared.error.is_none();
        if result.passed() && !(args.update && unstated) {
            totals.passed += 1;
            writeln!(out, "  {}    {}", style.paint("32", "ok"), case.name)?;
            continue;
        }
        if args.update && prepared.error.is_none() && result.outcome.result.is_ok() {
            edits.extend(testing::update::edits(
                &loaded.file.text,
                case,
                plan,
                prepared,
                &result.outcome,
            ));
            updated.push(case.name.clone());
            writeln!(out, "  {} {}", style.paint("33", "updated"), case.name)?;
            continue;
        }
        totals.failed += 1;
        writeln!(out, "  {}  {}", style.paint("1;31", "FAIL"), case.name)?;
        failures.push(render_failure(&loaded, case, &result.findings, style));
        if args.format == Format::Github {
            annotations.push_str(&github_annotations(&loaded, case, &result.findings));
        }
    }
    if !edits.is_empty() {
        let text = testing::update::apply(&loaded.file.text, edits);
        std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
        // The rewritten file must pass: run its updated tests again to be sure.
        let again = load(path)?;
        let mut still_failing = Vec::new();
        for test in &again.tests {
            if !updated.contains(&test.case.name) {
                continue;
            }
            match (&test.plan, &test.prepared) {
                (Some(plan), Some(prepared))
                    if testing::run(plan, prepared, &test.case).passed() => {}
                _ => still_failing.push(test.case.name.clone()),
            }
        }
        totals.updated += updated.len() - still_failing.len();
        totals.failed += still_failing.len();
        writeln!(
            out,
            "  rewrote the expected outputs of {} test{} in {}",
            updated.len(),
            if updated.len() == 1 { "" } else { "s" },
            path.display()
        )?;
        for name in still_failing {
            writeln!(
                out,
                "  {}  {name}: still fails after --update (a bug in streamctl, please report it)",
                style.paint("1;31", "FAIL")
            )?;
        }
    }
    Ok(())
}

fn location(loaded: &Loaded, span: diag::Span) -> String {
    let at = loaded.file.line_col(span.start);
    format!("{}:{}", loaded.file.path, at.line)
}

fn render_failure(
    loaded: &Loaded,
    case: &testing::spec::TestCase,
    findings: &[Finding],
    style: &Style,
) -> String {
    let mut text = format!(
        "{} {}\n",
        style.paint("1;31", "----"),
        style.paint(
            "1",
            &format!("{}: {}", location(loaded, case.name_span), case.name)
        )
    );
    for f in findings {
        let line = loaded.file.line_col(f.span.start).line;
        let what = match &f.sink {
            Some(sink) => format!("sink `{sink}`, line {line}: "),
            None => format!("line {line}: "),
        };
        text.push_str(&format!("  {}{}\n", what, f.headline));
        for l in &f.lines {
            match l {
                DiffLine::Note(n) => text.push_str(&format!("      {n}\n")),
                DiffLine::Expected(e) => {
                    text.push_str(&format!("    {}\n", style.paint("31", &format!("- {e}"))));
                }
                DiffLine::Actual(a) => {
                    text.push_str(&format!("    {}\n", style.paint("32", &format!("+ {a}"))));
                }
            }
        }
    }
    text
}

fn github_annotations(
    loaded: &Loaded,
    case: &testing::spec::TestCase,
    findings: &[Finding],
) -> String {
    let diagnostics: Vec<diag::Diagnostic> = findings
        .iter()
        .map(|f| {
            let mut message = match &f.sink {
                Some(sink) => format!("test `{}`: sink `{sink}`: {}", case.name, f.headline),
                None => format!("test `{}`: {}", case.name, f.headline),
            };
            for l in &f.lines {
                message.push('\n');
                message.push_str(&match l {
                    DiffLine::Note(n) => n.clone(),
                    DiffLine::Expected(e) => format!("- {e}"),
                    DiffLine::Actual(a) => format!("+ {a}"),
                });
            }
            diag::Diagnostic::error("test-failed", message).at(f.span)
        })
        .collect();
    diag::render_github(&loaded.file, &diagnostics)
}

/// `--create-from`: appends a test made from the first records of `input`.
fn create(args: &Args, input: &Path) -> anyhow::Result<u8> {
    let [path] = args.paths.as_slice() else {
        bail!("--create-from needs exactly one pipeline (or its test file) to add the test to");
    };
    let (pipeline, test_path) = if testing::is_test_file(path) {
        (testing::spec::default_pipeline_for(path), path.clone())
    } else {
        (path.clone(), testing::test_file_for(path))
    };
    let existing = if test_path.exists() {
        Some(
            std::fs::read_to_string(&test_path)
                .with_context(|| format!("reading {}", test_path.display()))?,
        )
    } else {
        None
    };
    // The plan, with the test file's `env` when it has one.
    let (pipeline, file_env) = match &existing {
        Some(text) => {
            let loaded = testing::load(&test_path, &test_path.display().to_string(), text.clone());
            let env = loaded
                .spec
                .as_ref()
                .map(|s| s.env.clone())
                .unwrap_or_default();
            (loaded.pipeline_path.unwrap_or(pipeline), env)
        }
        None => (pipeline, Vec::new()),
    };
    let pipeline_text = std::fs::read_to_string(&pipeline)
        .with_context(|| format!("reading pipeline {}", pipeline.display()))?;
    let lookup = |name: &str| {
        file_env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let v = streamctl::plan::validate(&pipeline.display().to_string(), pipeline_text, &lookup);
    let Some(plan) = v.plan else {
        eprint!(
            "{}",
            diag::render_human(&v.file, &v.diagnostics, color_stderr())
        );
        bail!("{} is invalid", pipeline.display());
    };
    let sources: Vec<(usize, String)> = plan
        .sources()
        .map(|(i, _)| (i, plan.nodes[i].name.clone()))
        .collect();
    let (node, source) = match (&args.source, sources.as_slice()) {
        (Some(name), _) => sources
            .iter()
            .find(|(_, n)| n == name)
            .cloned()
            .with_context(|| {
                format!(
                    "the pipeline has no source `{name}`; its sources: {}",
                    sources
                        .iter()
                        .map(|(_, n)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?,
        (None, [only]) => only.clone(),
        (None, _) => bail!(
            "the pipeline has several sources ({}): say which receives the records with --source",
            sources
                .iter()
                .map(|(_, n)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let bytes = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let gzip = input.extension().is_some_and(|e| e == "gz");
    let steps = testing::create::sample_steps(&plan, node, &bytes, gzip, args.records)
        .map_err(|e| anyhow::anyhow!("{}: {e}", input.display()))?;
    if steps.is_empty() {
        bail!("{} holds no records", input.display());
    }
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("the first {} records of {}", steps.len(), input.display()));
    let item = testing::create::test_item(&name, &source, &steps);
    let text = testing::create::append_test(existing.as_deref(), &item);
    // Run the new test (the file's last) and write its outputs into it.
    let loaded = testing::load(&test_path, &test_path.display().to_string(), text.clone());
    if report_diagnostics(&loaded, Format::Human, &mut String::new()) {
        bail!("the new test is invalid (a bug in streamctl, please report it)");
    }
    let Some(test) = loaded.tests.iter().rev().find(|t| t.case.name == name) else {
        bail!("the new test was not found after writing it (a bug in streamctl, please report it)");
    };
    let (Some(plan), Some(prepared)) = (&test.plan, &test.prepared) else {
        bail!("the new test cannot run");
    };
    let result = testing::run(plan, prepared, &test.case);
    if let Err(e) = &result.outcome.result {
        bail!("the pipeline failed on these records: {e}");
    }
    let edits = testing::update::edits(&text, &test.case, plan, prepared, &result.outcome);
    let text = testing::update::apply(&text, edits);
    std::fs::write(&test_path, &text)
        .with_context(|| format!("writing {}", test_path.display()))?;
    let rows: usize = result
        .outcome
        .captures
        .values()
        .map(|c| c.batches.iter().map(|b| b.num_rows).sum::<usize>())
        .sum();
    println!(
        "added test `{name}` to {}: {} records into `{source}`, {rows} rows expected from the sinks. Review it, then add what the sample lacks (a late event, a bad record) and run `streamctl test {}`.",
        test_path.display(),
        steps.len(),
        test_path.display()
    );
    Ok(exit::OK)
}
