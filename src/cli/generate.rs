//! `streamctl generate`: writes generator records as JSON lines or CSV (test data, demos,
//! benchmarks). The same records the `generator` source produces.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use streamctl::config::sink::{CsvOutput, OutputFormat};
use streamctl::config::{Duration, Instant};
use streamctl::format::encode::{EncodeOptions, Projection, row_writer};
use streamctl::plan::connectors::{GeneratorPreset, GeneratorSource};
use streamctl::sources::generator::Generator;

use super::exit;

/// Write synthetic records: movie impressions, taxi trips, stock ticks or delivery pings.
///
/// Deterministic: the same options give the same bytes. Record i has event time
/// `start + i * interval`, moved up to `disorder` into the past.
///
/// Preset names are written as in a pipeline's `preset:` (`taxi_trips`); `taxi-trips` works too.
///
/// Example: 10 million movie impressions, 3 ms apart, up to 4 s out of order:
///   streamctl generate movie_impressions --count 10000000 --disorder 4s -o impressions.jsonl
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to generate.
    #[arg(value_enum)]
    preset: Preset,
    /// How many records.
    #[arg(long, default_value = "1000")]
    count: u64,
    /// Random seed.
    #[arg(long, default_value = "0")]
    seed: u64,
    /// Event time of the first record (RFC 3339).
    #[arg(long, default_value = "2019-01-07T00:00:00Z", value_parser = parse_instant)]
    start: Instant,
    /// Event-time distance between records, e.g. `3ms`.
    #[arg(long, default_value = "3ms", value_parser = parse_duration)]
    interval: Duration,
    /// Largest amount a record is moved into the past, e.g. `4s`.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    disorder: Duration,
    /// Output encoding.
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
    /// Write to this file instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Preset {
    /// {movieId, userId, timestamp}: 50 movies × 1000 users.
    #[value(name = "movie_impressions", alias = "movie-impressions")]
    MovieImpressions,
    /// Taxi trip start/end events with locations, durations and airports; a trip ends
    /// `durationSec` after it starts.
    #[value(name = "taxi_trips", alias = "taxi-trips")]
    TaxiTrips,
    /// {symbol, price, volume, timestamp} for 10 symbols.
    #[value(name = "stock_ticks", alias = "stock-ticks")]
    StockTicks,
    /// {agentId, lat, lon, speedKmh, timestamp} for 200 agents working in shifts.
    #[value(name = "delivery_pings", alias = "delivery-pings")]
    DeliveryPings,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Json,
    Csv,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    Duration::parse(s)
}

fn parse_instant(s: &str) -> Result<Instant, String> {
    Instant::parse(s)
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let preset = match args.preset {
        Preset::MovieImpressions => GeneratorPreset::MovieImpressions,
        Preset::TaxiTrips => GeneratorPreset::TaxiTrips,
        Preset::StockTicks => GeneratorPreset::StockTicks,
        Preset::DeliveryPings => GeneratorPreset::DeliveryPings,
    };
    let config = GeneratorSource {
        preset,
        count: Some(args.count),
        rate: None,
        seed: args.seed,
        partitions: 1,
        start_ms: args.start.millis,
        interval_ms: args.interval.millis.max(1),
        disorder_ms: args.disorder.millis.max(0),
    };
    let mut generator = Generator::new(&config);
    let schema = generator.schema().clone();
    let projection = Projection {
        columns: (0..schema.len()).collect(),
        fields: schema.fields.clone(),
    };
    let options = EncodeOptions {
        format: match args.format {
            Format::Json => OutputFormat::Json,
            Format::Csv => OutputFormat::Csv,
        },
        csv: CsvOutput::default(),
    };
    let out: Box<dyn Write + Send> = match &args.output {
        Some(path) => Box::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout()),
    };
    let mut writer = row_writer(&options, &projection, out)?;
    while let Some((_, batch)) = generator.next_batch(8192) {
        let rows: Vec<u32> = (0..batch.num_rows as u32).collect();
        writer.write_rows(&batch, &rows)?;
    }
    writer.finish()?.flush()?;
    Ok(exit::OK)
}
