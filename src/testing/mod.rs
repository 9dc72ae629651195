//! Pipeline tests (`streamctl test`): a `*.test.yaml` file beside a pipeline gives records to
//! its sources, with explicit watermark advances and idle markers between them, and states
//! what its sinks must write: rows (window results, late events, dead letters), `s3` objects
//! by path with their contents, counters, or an error.
//!
//! A test runs the real engine on the real plan ([`crate::engine::run`]); only the connectors
//! are replaced ([`runner`]): sources by scripted ones that decode the test's records with the
//! pipeline's own decoders, sinks by capturing ones (an `s3` sink by the real bucketed sink
//! over an in-memory store). So Kafka, Kinesis and S3 pipelines are tested with no service.
//!
//! The path through this module: [`spec`] reads the file with positions, [`check`] checks
//! each test against the plan and prepares its scripts, [`runner`] runs it, [`compare`] finds
//! the differences, and [`update`] rewrites expectations from what a run wrote.

pub mod check;
pub mod compare;
pub mod config;
pub mod create;
pub mod runner;
pub mod spec;
pub mod update;
pub mod values;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use spec::{is_test_file, test_file_for};

use crate::diag::{Diagnostic, SourceFile, Span};
use crate::plan::{Plan, Validated};

/// One test of a loaded file, checked against its pipeline.
pub struct LoadedTest {
    pub case: spec::TestCase,
    /// The plan under this test's `env` (absent when the pipeline is invalid).
    pub plan: Option<Arc<Plan>>,
    /// Ready to run (absent when the test or the pipeline has errors).
    pub prepared: Option<check::Prepared>,
}

/// A test file, its pipeline, and everything wrong with either.
pub struct Loaded {
    /// The test file.
    pub file: SourceFile,
    pub diagnostics: Vec<Diagnostic>,
    /// The pipeline's own validation when it is invalid (to show its diagnostics).
    pub invalid_pipeline: Vec<Validated>,
    /// Where the pipeline is (when the file could be read).
    pub pipeline_path: Option<PathBuf>,
    pub spec: Option<spec::TestFile>,
    pub tests: Vec<LoadedTest>,
}

impl Loaded {
    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    pub fn warning_count(&self) -> usize {
        self.diagnostics.len() - self.error_count()
    }
}

/// `${VAR}` values of a test: the test's own, then the file's. Tests never read the process
/// environment, so they give the same result on every machine.
fn env_lookup(
    file_env: &[(String, String)],
    test_env: &[(String, String)],
) -> impl Fn(&str) -> Option<String> {
    let env: Vec<(String, String)> = test_env.iter().chain(file_env).cloned().collect();
    move |name| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

/// Reads a test file and checks every test against its pipeline. `shown` is how messages name
/// the file.
pub fn load(path: &Path, shown: &str, text: String) -> Loaded {
    let (file, spec, mut diagnostics) = spec::parse(path, shown, text);
    let Some(spec) = spec else {
        return Loaded {
            file,
            diagnostics,
            invalid_pipeline: Vec::new(),
            pipeline_path: None,
            spec: None,
            tests: Vec::new(),
        };
    };
    let mut invalid_pipeline = Vec::new();
    let pipeline_shown = spec.pipeline.display().to_string();
    let first_line = Span::new(0, file.text.find('\n').unwrap_or(file.text.len()));
    let pipeline_at = spec.pipeline_span.unwrap_or(first_line);
    let pipeline_text = match std::fs::read_to_string(&spec.pipeline) {
        Ok(text) => Some(text),
        Err(e) => {
            let help = if spec.pipeline_span.is_some() {
                "the path is relative to the test file".to_string()
            } else {
                "a test file `x.test.yaml` tests `x.yaml` beside it; name another with `pipeline: <file>`".to_string()
            };
            diagnostics.push(
                Diagnostic::error(
                    "missing-pipeline",
                    format!("cannot read the pipeline `{pipeline_shown}`: {e}"),
                )
                .at(pipeline_at)
                .with_help(help),
            );
            None
        }
    };
    let mut plans: HashMap<Vec<(String, String)>, Option<Arc<Plan>>> = HashMap::new();
    let mut tests = Vec::new();
    for case in &spec.tests {
        let mut plan = None;
        if let Some(text) = &pipeline_text {
            let env_key: Vec<(String, String)> =
                case.env.iter().chain(&spec.env).cloned().collect();
            plan = plans
                .entry(env_key)
                .or_insert_with(|| {
                    let lookup = env_lookup(&spec.env, &case.env);
                    let v = crate::plan::validate(&pipeline_shown, text.clone(), &lookup);
                    match v.plan {
                        Some(p) => Some(Arc::new(p)),
                        None => {
                            let at = if case.env.is_empty() {
                                pipeline_at
                            } else {
                                case.name_span
                            };
                            diagnostics.push(
                                Diagnostic::error(
                                    "invalid-pipeline",
                                    format!(
                                        "the pipeline `{pipeline_shown}` is invalid ({} error{}){}",
                                        v.error_count(),
                                        if v.error_count() == 1 { "" } else { "s" },
                                        if case.env.is_empty() {
                                            ""
                                        } else {
                                            " with this test's `env`"
                                        }
                                    ),
                                )
                                .at(at)
                                .with_help(if v.diagnostics.iter().any(|d| d.code == "undefined-variable") {
                                    "tests do not read the environment: give the pipeline's `${VAR}`s values with `env: {VAR: value}` in the test file (or in this test)".to_string()
                                } else {
                                    format!("its diagnostics are above; `streamctl validate {pipeline_shown}` shows them too")
                                }),
                            );
                            invalid_pipeline.push(v);
                            None
                        }
                    }
                })
                .clone();
        }
        let prepared = match &plan {
            Some(p) => {
                // A test with structural errors is still checked (every problem in one
                // pass), but not run.
                let (prepared, mut d) = check::check(case, p);
                diagnostics.append(&mut d);
                prepared.filter(|_| !case.broken)
            }
            None => None,
        };
        tests.push(LoadedTest {
            case: case.clone(),
            plan,
            prepared,
        });
    }
    crate::diag::sort(&mut diagnostics);
    Loaded {
        file,
        diagnostics,
        invalid_pipeline,
        pipeline_path: Some(spec.pipeline.clone()),
        spec: Some(spec),
        tests,
    }
}

/// What a test run found.
pub struct TestRun {
    pub findings: Vec<compare::Finding>,
    pub outcome: runner::Outcome,
}

impl TestRun {
    pub fn passed(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Runs one prepared test and compares.
pub fn run(plan: &Plan, prepared: &check::Prepared, case: &spec::TestCase) -> TestRun {
    let outcome = runner::run(plan, prepared);
    let mut findings = compare::compare(plan, prepared, &outcome, case.name_span);
    if case.checks_nothing() {
        findings.push(compare::Finding {
            span: case.name_span,
            sink: None,
            headline: "the test checks nothing: it states no sink's `outputs`, no `counts` and \
                       no `error`, so it would pass whatever the pipeline does"
                .to_string(),
            lines: vec![compare::DiffLine::Note(
                "`streamctl test --update` writes what this run wrote (review it)".to_string(),
            )],
        });
    }
    TestRun { findings, outcome }
}
