//! `streamctl run`: runs a pipeline on this machine.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use streamctl::clock::SystemClock;
use streamctl::engine::{self, RunOptions};

use super::progress::{Progress, ProgressMode, count, summary};
use super::{EnvArgs, exit, paint, validate};

/// Run a pipeline on this machine with the embedded engine.
///
/// The pipeline is validated first (exit 1 with diagnostics if invalid). Progress shows
/// records per second, bytes, the watermark and its lag, open windows, late and bad records,
/// and for bounded inputs a bar with an ETA. Ctrl-C stops cleanly: finished files are
/// committed, windows still open are reported and not written; press it twice to abort.
///
/// Exit codes: 0 the run completed, 1 the pipeline is invalid, 2 runtime error (unreadable
/// input, unwritable output, a bad record under `policy: fail`…), 3 the run read no valid
/// record (empty input, or every record bad), 130 interrupted.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pipeline file.
    pipeline: PathBuf,
    /// Make every source finite: stop at the end of what exists when it catches up (files to
    /// their end), then fire every window. For backfills of streaming pipelines.
    #[arg(long)]
    bounded: bool,
    /// Progress display: `auto` (a live bar on a terminal, log lines otherwise), `bar`, `log`
    /// or `off`.
    #[arg(long, value_enum, default_value = "auto")]
    progress: ProgressMode,
    /// Seconds between progress log lines when not on a terminal.
    #[arg(long, default_value = "10", value_name = "SECONDS")]
    log_every: u64,
    #[command(flatten)]
    env: EnvArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let Some(plan) = validate::load_plan(&args.pipeline, &args.env)? else {
        return Ok(exit::INVALID);
    };
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // First Ctrl-C: stop cleanly. Second: leave now, and say what that means.
        let _ = ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                eprintln!(
                    "\n{} at the second Ctrl-C: files not yet complete were not committed",
                    paint("1;31", "aborted")
                );
                std::process::exit(i32::from(exit::INTERRUPTED));
            }
            eprintln!("\nstopping… (press Ctrl-C again to abort)");
        });
    }
    let options = RunOptions {
        bounded: args.bounded,
        clock: Arc::new(SystemClock),
        stop,
    };
    let metrics = engine::metrics_for(&plan);
    let started = Instant::now();
    let progress = Progress::start(
        metrics.clone(),
        args.progress,
        Duration::from_secs(args.log_every.max(1)),
    );
    let result = engine::run(&plan, &options, metrics.clone());
    // Measured before the display thread winds down, which takes up to one refresh.
    let elapsed = started.elapsed();
    progress.stop();
    match result {
        Ok(summary_) if summary_.interrupted => {
            eprintln!(
                "{} {}",
                paint("1;33", "interrupted:"),
                summary(
                    &summary_.snapshot,
                    &metrics.late_stages(),
                    elapsed,
                    metrics.first_bad()
                )
            );
            if summary_.discarded_windows > 0 {
                match summary_.discarded_windows {
                    1 => eprintln!("  1 window was still open and was not written"),
                    n => eprintln!("  {n} windows were still open and were not written"),
                }
            }
            Ok(exit::INTERRUPTED)
        }
        Ok(summary_) => {
            eprintln!(
                "{} {}",
                paint("1;32", "done:"),
                summary(
                    &summary_.snapshot,
                    &metrics.late_stages(),
                    elapsed,
                    metrics.first_bad()
                )
            );
            let s = &summary_.snapshot;
            if s.records_in > 0 {
                return Ok(exit::OK);
            }
            // A run over nothing usually means the wrong input, format or schema: say so
            // rather than report an empty success.
            let why = match s.bad_records {
                0 => "the input was empty".to_string(),
                1 => "the only record was bad".to_string(),
                n => format!("all {} records were bad", count(n)),
            };
            eprintln!(
                "{} no valid record was read: {why}; check the sources' `path`, `format` and `schema` against the input (exit code {})",
                paint("1;31", "error:"),
                exit::NO_RECORDS
            );
            Ok(exit::NO_RECORDS)
        }
        // `streamctl run … | head`: the reader has what it wanted.
        Err(engine::operator::EngineError::OutputClosed) => Ok(exit::OK),
        // The message names the record and where it is; a count of records read would only
        // mislead (sources decode ahead of the record that stopped the run).
        Err(
            e @ (engine::operator::EngineError::Setup(_)
            | engine::operator::EngineError::BadRecord { .. }),
        ) => {
            eprintln!("{} {e}", paint("1;31", "error:"));
            Ok(exit::ERROR)
        }
        Err(e) => {
            eprintln!(
                "{} {e}\n  after {}",
                paint("1;31", "error:"),
                summary(
                    &metrics.snapshot(),
                    &metrics.late_stages(),
                    elapsed,
                    metrics.first_bad()
                )
            );
            Ok(exit::ERROR)
        }
    }
}
