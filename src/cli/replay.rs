//! `streamctl replay`: sends a file's records to a stream (a Kafka topic or a Kinesis data
//! stream), keyed and paced.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use streamctl::aws::AwsSettings;
use streamctl::replay::{Connection, FileFormat, ReplayOptions, ReplayProgress, Target, replay};

use super::progress::{bytes, count};
use super::{exit, paint};

/// Replay a JSON-lines or CSV file (or .gz) into a stream: one message per record.
///
/// JSON records are sent as their lines, byte for byte; CSV records as their rows, without
/// the header (what a `format: csv` source reads). `--key` keys each message by a field, so
/// records of one key land in one partition (shard). `--speedup` paces the records by their
/// event time (`--time-field`, epoch milliseconds or an RFC 3339 text), that many times faster
/// than they happened; without it records go as fast as the target takes them.
///
/// The target is a URL:
///
/// - `kafka://BROKERS/TOPIC`: several brokers separated by commas; the topic must exist.
///   Producer properties pass with `-X key=value`. Records without a key go unkeyed.
///
/// - `kinesis://STREAM`: the stream's name or ARN; it must exist. Records go out in PutRecords
///   batches (up to 500 records, 5 MiB), failed entries of a batch are sent again. The
///   partition key is the `--key` field's value; without `--key` (or for a record without the
///   field) it is the record's number (1, 2, …), which spreads the records evenly over the
///   shards. Region and endpoint: `--region` / `--endpoint-url`, else `AWS_REGION`,
///   `AWS_ENDPOINT_URL_KINESIS`, `AWS_ENDPOINT_URL`; credentials from the standard AWS chain.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  streamctl generate movie_impressions --count 1000000 -o impressions.jsonl
  streamctl replay impressions.jsonl --to kafka://127.0.0.1:9092/movie-impressions --key movieId
  # the seed's producer: one day of impressions in one minute
  streamctl replay impressions.jsonl --to kafka://127.0.0.1:9092/movie-impressions \\
      --key movieId --time-field timestamp --speedup 1440
  # taxi trips into a Kinesis stream, an hour of trips per minute, keyed by trip
  streamctl generate taxi_trips --count 100000 -o trips.jsonl
  streamctl replay trips.jsonl --to kinesis://taxi-trips --key tripId --speedup 60")]
pub struct Args {
    /// The file to replay: JSON lines, or CSV with a header (by a `.csv` name, or `--format`);
    /// `.gz` is decompressed.
    file: PathBuf,
    /// Where to send the records: kafka://BROKERS/TOPIC or kinesis://STREAM.
    #[arg(long, value_name = "URL", value_parser = Target::parse)]
    to: Target,
    /// The field whose value keys each message: the Kafka message key or the Kinesis partition
    /// key (records without it go unkeyed to Kafka, keyed by their number to Kinesis).
    #[arg(long, value_name = "FIELD")]
    key: Option<String>,
    /// The event-time field, for `--speedup` (epoch milliseconds or RFC 3339 text).
    #[arg(long, value_name = "FIELD", default_value = "timestamp")]
    time_field: String,
    /// Pace records by event time, this many times faster than they happened (e.g. 1440: a
    /// day per minute). Default: as fast as possible.
    #[arg(long, value_name = "FACTOR", value_parser = parse_speedup)]
    speedup: Option<f64>,
    /// The file's format (default: by its name; `.csv` is CSV, anything else JSON lines).
    #[arg(long, value_enum)]
    format: Option<FormatArg>,
    /// Send at most this many records.
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
    /// A Kafka producer property, e.g. `-X compression.type=zstd` (repeatable).
    #[arg(short = 'X', long = "property", value_name = "KEY=VALUE", value_parser = parse_property)]
    properties: Vec<(String, String)>,
    /// The AWS region of a Kinesis stream (default: AWS_REGION, or the profile's).
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    /// The Kinesis endpoint, e.g. a local server's http://127.0.0.1:4567 (default:
    /// AWS_ENDPOINT_URL_KINESIS, else AWS_ENDPOINT_URL, else AWS's).
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
    /// Progress display: `auto` (a bar on a terminal), `bar`, `log` or `off`.
    #[arg(long, value_enum, default_value = "auto")]
    progress: super::progress::ProgressMode,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FormatArg {
    Json,
    Csv,
}

fn parse_speedup(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f > 0.0 && f.is_finite() => Ok(f),
        _ => Err("must be a number larger than 0, e.g. 1440".to_string()),
    }
}

fn parse_property(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| "write KEY=VALUE, e.g. compression.type=zstd".to_string())
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let options = ReplayOptions {
        format: match args.format {
            Some(FormatArg::Json) => FileFormat::Json,
            Some(FormatArg::Csv) => FileFormat::Csv,
            None => FileFormat::of(&args.file),
        },
        path: args.file.clone(),
        key: args.key.clone(),
        time_field: args.speedup.map(|_| args.time_field.clone()),
        speedup: args.speedup,
        limit: args.limit,
    };
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        let _ = ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                std::process::exit(i32::from(exit::INTERRUPTED));
            }
            eprintln!("\nstopping: waiting for the records sent so far to be stored…");
        });
    }
    let connection = Connection {
        properties: args.properties.clone(),
        aws: AwsSettings {
            region: args.region.clone(),
            endpoint: args.endpoint_url.clone(),
        },
    };
    let mut outlet = args
        .to
        .open(&connection)
        .with_context(|| format!("connecting to {}", describe(&args.to)))?;
    let progress = Arc::new(ReplayProgress::default());
    let started = Instant::now();
    let display = Display::start(progress.clone(), args.progress);
    let result = replay(&options, outlet.as_mut(), &progress, &stop);
    display.stop();
    let sent = result.with_context(|| format!("replaying {}", args.file.display()))?;
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    eprintln!(
        "{} {} records from {} to {} in {:.1} s ({}/s)",
        paint("1;32", "sent:"),
        count(sent),
        args.file.display(),
        describe(&args.to),
        secs,
        count((sent as f64 / secs) as u64)
    );
    let unkeyed = progress.unkeyed.load(Ordering::Relaxed);
    if unkeyed > 0 {
        eprintln!(
            "{} {} records had no `{}` and went {}",
            paint("1;33", "warning:"),
            count(unkeyed),
            args.key.as_deref().unwrap_or_default(),
            match args.to {
                Target::Kafka { .. } => "without a key",
                Target::Kinesis { .. } => "with their record number as partition key",
            }
        );
    }
    let untimed = progress.untimed.load(Ordering::Relaxed);
    if untimed > 0 {
        eprintln!(
            "{} {} records had no usable `{}` and were sent without pacing",
            paint("1;33", "warning:"),
            count(untimed),
            args.time_field
        );
    }
    Ok(if stop.load(Ordering::Relaxed) {
        exit::INTERRUPTED
    } else {
        exit::OK
    })
}

fn describe(target: &Target) -> String {
    match target {
        Target::Kafka { brokers, topic } => format!("Kafka topic `{topic}` at {brokers}"),
        Target::Kinesis { stream } => format!("Kinesis stream `{stream}`"),
    }
}

/// A progress bar (or log lines) over the bytes of the file read.
struct Display {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Display {
    fn start(progress: Arc<ReplayProgress>, mode: super::progress::ProgressMode) -> Display {
        use super::progress::ProgressMode;
        let done = Arc::new(AtomicBool::new(false));
        let bar = match mode {
            ProgressMode::Auto | ProgressMode::Bar => std::io::stderr().is_terminal(),
            ProgressMode::Log | ProgressMode::Off => false,
        };
        let thread = (mode != ProgressMode::Off).then(|| {
            let done = done.clone();
            std::thread::spawn(move || show(&progress, &done, bar))
        });
        Display { done, thread }
    }

    fn stop(mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn show(progress: &ReplayProgress, done: &AtomicBool, bar: bool) {
    let total = progress.total_bytes.load(Ordering::Relaxed);
    let pb = bar.then(|| {
        let pb = indicatif::ProgressBar::new(total.max(1));
        pb.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {percent:>3}% {msg} (ETA {eta})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let started = Instant::now();
    let mut last_log = Instant::now();
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
        let records = progress.records.load(Ordering::Relaxed);
        let read = progress.bytes.load(Ordering::Relaxed);
        let rate = records as f64 / started.elapsed().as_secs_f64().max(1e-3);
        let msg = format!(
            "{} records, {} read, {}/s",
            count(records),
            bytes(read),
            count(rate as u64)
        );
        match &pb {
            Some(pb) => {
                pb.set_position(read.min(total));
                pb.set_message(msg);
            }
            None if last_log.elapsed() >= Duration::from_secs(10) => {
                last_log = Instant::now();
                let percent = if total > 0 {
                    format!(" ({:.0}%)", read as f64 * 100.0 / total as f64)
                } else {
                    String::new()
                };
                eprintln!("replay: {msg}{percent}");
            }
            None => {}
        }
    }
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
}
