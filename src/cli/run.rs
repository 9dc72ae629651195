//! `streamctl run`: runs a pipeline on this machine.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use streamctl::checkpoint;
use streamctl::clock::SystemClock;
use streamctl::engine::{self, operator::EngineError};
use streamctl::job::{self, JobOptions};
use streamctl::runtime::{ErrorDomain, IfExists};

use super::progress::{Progress, ProgressMode, count, summary};
use super::{EnvArgs, exit, paint, validate};

/// Run a pipeline on this machine with the embedded engine.
///
/// The pipeline is validated first (exit 1 with diagnostics if invalid). Progress shows
/// records per second, bytes, the watermark and its lag, open windows, late and bad records,
/// and for bounded inputs a bar with an ETA.
///
/// Checkpoints (`--checkpoint-dir`, or `checkpoint:` in the pipeline) make the run
/// exactly-once across crashes: source positions, window state and the sinks' pending files
/// are saved together every interval, output files become visible only when the checkpoint
/// that covers them completes, and running the same command again resumes from the newest
/// checkpoint. Ctrl-C and SIGTERM then take a final checkpoint (a savepoint) before exiting.
/// Without checkpoints, Ctrl-C publishes finished files and reports the windows still open.
/// Press Ctrl-C twice to abort at once.
///
/// A fresh run refuses to write where an earlier run left output (its rows would be mixed
/// with or doubled by the new ones) unless `--if-exists` says what to do.
///
/// Exit codes: 0 the run completed, 1 the pipeline is invalid, 2 runtime error (unreadable
/// input, unwritable output, a bad record under `policy: fail`…), 3 the run read no valid
/// record (empty input, or every record bad), 130 interrupted.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  streamctl run pipelines/movie-impressions-local.yaml
  streamctl run job.yaml --checkpoint-dir /var/lib/streamctl/job --checkpoint-interval 30s
  streamctl run job.yaml --bounded --if-exists overwrite      # redo a backfill
  AWS_PROFILE=prod STREAM=impressions streamctl run pipelines/movie-impressions-kinesis.yaml --bounded")]
pub struct Args {
    /// The pipeline file.
    pipeline: PathBuf,
    /// Make every source finite: stop at the end of what exists when it catches up (files to
    /// their end; each Kinesis shard up to its tip, closed shards and their children through),
    /// then fire every window. For backfills of streaming pipelines.
    #[arg(long)]
    bounded: bool,
    /// Keep checkpoints here (a directory, file:///dir/ or s3://bucket/prefix/) and resume
    /// from the newest one. Overrides the pipeline's `checkpoint.url`.
    #[arg(long, value_name = "DIR_OR_URL")]
    checkpoint_dir: Option<String>,
    /// Time between checkpoints, e.g. `10s`, `1m` (default: the pipeline's
    /// `checkpoint.interval`, else 1m). Output becomes visible at each checkpoint.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    checkpoint_interval: Option<i64>,
    /// When a fresh run's output location already holds data: `fail` (default: stop before
    /// reading anything, naming what is there), `overwrite` (delete it first) or `append`
    /// (add new files beside it). A run resuming from a checkpoint ignores this.
    #[arg(long, value_enum, default_value = "fail", value_name = "WHAT")]
    if_exists: IfExistsArg,
    /// Progress display: `auto` (a live bar on a terminal, log lines otherwise), `bar`, `log`
    /// or `off`.
    #[arg(long, value_enum, default_value = "auto")]
    progress: ProgressMode,
    /// Seconds between progress log lines when not on a terminal.
    #[arg(long, default_value = "10", value_name = "SECONDS")]
    log_every: u64,
    /// Most memory window state may take, e.g. `2GiB` (default: half of this machine's
    /// memory, or of the container's limit). Past it the run stops and says which stage holds
    /// how many keys and windows, instead of being killed for running out of memory.
    #[arg(long, value_name = "SIZE", value_parser = parse_byte_size)]
    max_state_memory: Option<u64>,
    #[command(flatten)]
    env: EnvArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum IfExistsArg {
    Fail,
    Overwrite,
    Append,
}

fn parse_duration(s: &str) -> Result<i64, String> {
    let d = streamctl::config::Duration::parse(s)?;
    if d.millis <= 0 {
        return Err("must be longer than 0".to_string());
    }
    Ok(d.millis)
}

/// glibc's mmap threshold, fixed for a run: window state is many large vectors that live for
/// one window and then are freed. With glibc's default the threshold rises to the first large
/// block freed, after which every freed window vector stays on the heap (and in the process's
/// resident memory) instead of going back to the system; fixed at 4 MiB, blocks that large are
/// mapped and unmapped on their own, and smaller ones (batches, buffers) stay on the heap.
const MMAP_THRESHOLD: usize = 4 << 20;

/// Free memory a heap keeps at its top before giving it back: twice the mmap threshold, as
/// glibc itself sets it when it moves the threshold. Fixing the threshold leaves this at its
/// 128 KiB default, and the heap then gave back and faulted in again the room of every
/// batch (twice the page faults, measured on the movie job).
const TRIM_THRESHOLD: usize = 2 * MMAP_THRESHOLD;

/// Applies [`MMAP_THRESHOLD`] and [`TRIM_THRESHOLD`] (glibc only; other C libraries manage
/// memory their own way).
fn fix_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's tuning; it is called before the run
    // starts any thread of its own.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int);
    }
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    fix_mmap_threshold();
    let Some(plan) = validate::load_plan(&args.pipeline, &args.env)? else {
        return Ok(exit::INVALID);
    };
    let stop = Arc::new(AtomicBool::new(false));
    let checkpointing = args.checkpoint_dir.is_some() || plan.checkpoint.is_some();
    if !checkpointing && !args.bounded {
        for (node, source) in plan.sources() {
            if let streamctl::plan::connectors::SourceConnector::Kafka(k) = &source.connector {
                eprintln!(
                    "{} Kafka source `{}` runs without checkpoints and without --bounded: offsets are committed to group `{}` only at the end of a bounded run, so after a stop or crash the next run re-reads from the last commit; add --checkpoint-dir for exactly-once progress",
                    paint("1;33", "warning:"),
                    plan.nodes[node].name,
                    k.group_id
                );
            }
        }
    }
    {
        let stop = stop.clone();
        // First Ctrl-C or SIGTERM: stop cleanly (a savepoint with checkpoints). Second: leave
        // now, and say what that means.
        let _ = ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                let lost = if checkpointing {
                    "the next run resumes from the newest checkpoint"
                } else {
                    "files not yet complete were not committed"
                };
                eprintln!(
                    "\n{} at the second Ctrl-C: {lost}",
                    paint("1;31", "aborted")
                );
                std::process::exit(i32::from(exit::INTERRUPTED));
            }
            if checkpointing {
                eprintln!("\nstopping: taking a final checkpoint… (press Ctrl-C again to abort)");
            } else {
                eprintln!("\nstopping… (press Ctrl-C again to abort)");
            }
        });
    }
    let options = JobOptions {
        bounded: args.bounded,
        clock: Arc::new(SystemClock),
        stop,
        if_exists: match args.if_exists {
            IfExistsArg::Fail => IfExists::Fail,
            IfExistsArg::Overwrite => IfExists::Overwrite,
            IfExistsArg::Append => IfExists::Append,
        },
        checkpoint_dir: args.checkpoint_dir.clone(),
        checkpoint_interval_ms: args.checkpoint_interval,
        max_state_bytes: args
            .max_state_memory
            .or_else(|| memory_available().map(|m| m / 2)),
    };
    let metrics = engine::metrics_for(&plan);
    let prepared = match job::prepare(&plan, &options, &metrics) {
        Ok(p) => p,
        Err(e) => return Ok(report_error(&e, None)),
    };
    if let Some(resume) = &prepared.resume {
        describe_resume(resume);
    }
    let started = Instant::now();
    let progress = Progress::start(
        metrics.clone(),
        args.progress,
        Duration::from_secs(args.log_every.max(1)),
    );
    let result = prepared.run(&options, metrics.clone());
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
            match (summary_.final_checkpoint, summary_.open_windows) {
                (Some(id), n) => eprintln!(
                    "  savepoint: checkpoint {id} holds {n} open windows and every position; run the same command again to continue"
                ),
                (None, 0) => {}
                (None, 1) => eprintln!("  1 window was still open and was not written"),
                (None, n) => eprintln!("  {n} windows were still open and were not written"),
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
            checkpoint_summary(&metrics);
            if let Some(id) = summary_.final_checkpoint {
                eprintln!(
                    "  final checkpoint: {id} (the run is complete; running it again with the same checkpoint directory does nothing)"
                );
            }
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
        Err(EngineError::OutputClosed) => Ok(exit::OK),
        Err(e) => Ok(report_error(
            &e,
            Some(summary(
                &metrics.snapshot(),
                &metrics.late_stages(),
                elapsed,
                metrics.first_bad(),
            )),
        )),
    }
}

/// "  4 checkpoints taken (the last 1.2 MiB); the engine paused 3 ms each on average, 5 ms at most"
fn checkpoint_summary(metrics: &streamctl::runtime::Metrics) {
    let n = metrics.checkpoints.load(Ordering::Relaxed);
    let Some(last) = metrics.last_checkpoint() else {
        return;
    };
    let total = metrics.checkpoint_pause_total_ms.load(Ordering::Relaxed);
    let max = metrics.checkpoint_pause_max_ms.load(Ordering::Relaxed);
    eprintln!(
        "  {n} checkpoint{} taken (the last {}); the engine paused {} ms each on average, {max} ms at most",
        if n == 1 { "" } else { "s" },
        super::progress::bytes(last.bytes),
        total / n.max(1)
    );
}

/// Prints where a checkpointed run starts from.
fn describe_resume(resume: &job::Resume) {
    let Some(restored) = &resume.restored else {
        eprintln!(
            "checkpoints: {} (none yet: starting from the beginning)",
            resume.location
        );
        return;
    };
    for warning in &restored.warnings {
        eprintln!("{} {warning}", paint("1;33", "warning:"));
    }
    let c = &restored.checkpoint;
    if c.finished {
        eprintln!(
            "checkpoint {} in {} is of a run that completed: publishing its last files again if needed, nothing to read",
            c.id, resume.location
        );
        return;
    }
    eprintln!(
        "resuming from checkpoint {} in {} (taken {} UTC)",
        c.id,
        resume.location,
        &checkpoint::watermark(c.created_ms)
    );
    for s in &c.sources {
        let positions: Vec<String> = s.positions.iter().map(ToString::to_string).collect();
        if !positions.is_empty() {
            eprintln!("  {}: {}", s.name, positions.join(", "));
        }
    }
    let open: u64 = c.stages.iter().map(|s| s.open_windows).sum();
    if open > 0 {
        eprintln!("  {open} open windows restored");
    }
}

fn report_error(e: &EngineError, after: Option<String>) -> u8 {
    let whose = match e.domain() {
        ErrorDomain::External { retryable: true } => {
            "\n  this is a temporary problem of an external system: running again may succeed"
        }
        ErrorDomain::Internal => "",
        _ => "",
    };
    match after {
        // A bad record's message names the record and where it is; a count of records read
        // would only mislead (sources decode ahead of the record that stopped the run).
        Some(after)
            if !matches!(
                e,
                EngineError::Setup(_) | EngineError::Checkpoint(_) | EngineError::BadRecord { .. }
            ) =>
        {
            eprintln!("{} {e}{whose}\n  after {after}", paint("1;31", "error:"));
        }
        _ => eprintln!("{} {e}{whose}", paint("1;31", "error:")),
    }
    exit::ERROR
}

fn parse_byte_size(s: &str) -> Result<u64, String> {
    streamctl::config::values::ByteSize::parse(s).map(|b| b.bytes)
}

/// Memory this process may use: the container's limit (cgroup v2 `memory.max`) when there is
/// one, else the machine's total (`MemTotal`).
fn memory_available() -> Option<u64> {
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    match (cgroup, total) {
        (Some(c), Some(t)) => Some(c.min(t)),
        (c, t) => c.or(t),
    }
}
