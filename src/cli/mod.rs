//! Command-line interface: one file per command; each parses its arguments with clap, calls
//! the library, prints, and returns an exit code. Only this module prints.

mod checkpoints;
mod generate;
mod plan;
mod progress;
mod replay;
mod run;
mod schema;
mod steps;
mod submit;
mod test;
mod validate;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes, documented in the README and `--help`.
pub mod exit {
    /// Success: the pipeline is valid / the run completed.
    pub const OK: u8 = 0;
    /// The pipeline file is invalid (diagnostics were printed).
    pub const INVALID: u8 = 1;
    /// Usage, I/O or runtime error.
    pub const ERROR: u8 = 2;
    /// The run ended without reading one valid record (empty input, or every record bad).
    pub const NO_RECORDS: u8 = 3;
    /// An EMR step followed with `--wait` ended FAILED, CANCELLED or INTERRUPTED, or its
    /// cluster ended first.
    pub const STEP_FAILED: u8 = 4;
    /// Interrupted (Ctrl-C).
    pub const INTERRUPTED: u8 = 130;
}

const AFTER_HELP: &str = "\
Exit codes:
  0    success (valid pipeline / run completed)
  1    the pipeline file is invalid (diagnostics printed)
  2    usage, I/O or runtime error
  3    the run read no valid record (empty input, or every record was bad)
  4    an EMR step followed with --wait ended FAILED, CANCELLED or INTERRUPTED
       (or its cluster ended first)
  130  interrupted (Ctrl-C)

A pipeline (more in pipelines/, every key in schemas/pipeline.schema.json):
  version: 1
  name: clicks-per-minute
  sources:
    clicks:
      type: file                      # kafka | kinesis | file | stdin | generator
      path: clicks.jsonl
      schema: {page: string, ts: timestamp_ms}
      event_time: {field: ts, max_out_of_orderness: 5s}
  transforms:
    per_page:
      type: window                    # filter | select | explode | window
      inputs: [clicks]
      window: {type: tumbling, size: 1m}
      group_by: [page]
      aggregates: {clicks: COUNT(*)}
  sinks:
    out:
      type: s3                        # s3 | file | kafka | kinesis | stdout
      inputs: [per_page]
      url: file:///tmp/clicks/
      path: \"{window_start:%Y-%m-%d}/\"
      format: csv                     # csv | json | parquet

Examples:
  streamctl validate pipelines/*.yaml
  streamctl test pipelines/                # the pipelines' tests (*.test.yaml)
  streamctl plan pipelines/movie-impressions-local.yaml
  streamctl plan pipelines/movie-impressions.yaml --target flink-sql
  streamctl submit pipelines/movie-impressions.yaml --emr-cluster j-2AXXXXXXGAPLF --staging s3://b/streamctl/ --wait
  streamctl steps list --emr-cluster j-2AXXXXXXGAPLF
  streamctl submit pipelines/movie-impressions.yaml --target yarn
  streamctl schema > schemas/pipeline.schema.json

Docs: README.md; pipeline format: schemas/pipeline.schema.json";

/// streamctl: declarative stream processing from one YAML file.
///
/// A pipeline declares sources (Kafka, Kinesis, files, stdin, a generator), transforms
/// (filter, select, explode, event-time windows) and sinks (S3 or local buckets, files,
/// Kafka, Kinesis, stdout). streamctl checks it, runs it on this machine, translates it to
/// Flink SQL, and submits it to a cluster (an Amazon EMR step, YARN).
#[derive(Debug, Parser)]
#[command(name = "streamctl", version, about, long_about, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Validate(validate::Args),
    Run(run::Args),
    Plan(plan::Args),
    Schema(schema::Args),
    Submit(submit::Args),
    Steps(steps::Args),
    Generate(generate::Args),
    Checkpoints(checkpoints::Args),
    Test(test::Args),
    Replay(replay::Args),
}

pub fn main() -> ExitCode {
    end_quietly_when_stdout_closes();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Run(args) => run::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Submit(args) => submit::run(args),
        Command::Steps(args) => steps::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Checkpoints(args) => checkpoints::run(args),
        Command::Test(args) => test::run(args),
        Command::Replay(args) => replay::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::from(exit::OK);
            }
            eprintln!("{} {e:#}", paint("1;31", "error:"));
            ExitCode::from(exit::ERROR)
        }
    }
}

/// `print!` panics when its reader has gone (`streamctl plan … | head -1`). A closed pipe means
/// the reader has what it wanted, so every command that prints with `print!` ends as if it had
/// finished: exit 0, nothing on stderr. Commands that write through `io::Write` see the error
/// instead and end the same way through [`is_broken_pipe`].
fn end_quietly_when_stdout_closes() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        // The message std's `print!` panics with (library/std/src/io/stdio.rs).
        if message.starts_with("failed printing to stdout")
            && message.to_ascii_lowercase().contains("broken pipe")
        {
            std::process::exit(i32::from(exit::OK));
        }
        default_hook(info);
    }));
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Whether to color output on stderr (a terminal, and `NO_COLOR` unset).
pub fn color_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

pub fn paint(code: &str, text: &str) -> String {
    if color_stderr() {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// `--env KEY=VALUE` overrides for `${VAR}` interpolation, then the process environment.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EnvArgs {
    /// Set a variable for `${VAR}` interpolation (overrides the environment); repeatable.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub env: Vec<(String, String)>,
}

impl EnvArgs {
    pub fn lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        move |name| {
            self.env
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .or_else(|| streamctl::config::process_env(name))
        }
    }
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, found `{s}`"))
}
