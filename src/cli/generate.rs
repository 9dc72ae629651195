//! `streamctl generate`: writes generator records as JSON lines or CSV (test data, demos,
//! benchmarks). The same records the `generator` source produces.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use streamctl::config::sink::{CsvOutput, OutputFormat};
use streamctl::config::{Duration, Instant};
use streamctl::data::ColumnData;
use streamctl::format::encode::{EncodeOptions, Projection, row_writer};
use streamctl::plan::connectors::{GeneratorPreset, GeneratorSource};
use streamctl::sources::generator::Generator;

use super::exit;

/// Write synthetic records: movie impressions, taxi trips, stock ticks, delivery pings or
/// auction bids.
///
/// Deterministic: the same options give the same bytes. Record i has event time
/// `start + i * interval`, moved up to `disorder` into the past.
///
/// Preset names are written as in a pipeline's `preset:` (`taxi_trips`); `taxi-trips` works too.
///
/// `--late` and `--malformed` spoil a few records on purpose, to see what a pipeline does with
/// late events and bad records (`make demo` does).
///
/// Example: 10 million movie impressions, 3 ms apart, up to 4 s out of order:
///   streamctl generate movie_impressions --count 10000000 --disorder 4s -o impressions.jsonl
///
/// Many keys (a new user in almost every record, about a million per 15 minutes):
///   streamctl generate movie_impressions --count 5000000 --users 2000000 --interval 1ms \
///     --disorder 4s -o many-keys.jsonl
///
/// Skewed keys, Nexmark-style (half the bids for 10 hot auctions and bidders):
///   streamctl generate bids --count 10000000 --interval 1ms --users 20000 --hot-share 0.5
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
    /// Move this many records (spread evenly over the output) `--late-by` into the past, so
    /// that windows shorter than that see them late.
    #[arg(long, default_value = "0", value_name = "N")]
    late: u64,
    /// How far `--late` records are moved into the past.
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    late_by: Duration,
    /// Spoil this many records (spread evenly over the output), in turn: cut short, a
    /// timestamp that is not a number, no timestamp, bytes that are not UTF-8.
    #[arg(long, default_value = "0", value_name = "N")]
    malformed: u64,
    /// Distinct users: `userId`s of movie_impressions (default 1000), bidders and auctions
    /// of bids beyond the hot ones (default 20000).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    users: Option<u64>,
    /// Share of records (0 to 1) whose user, bidder and auction is one of 10 hot ones; the
    /// rest spread evenly over `--users` (default 0, and 0.5 for bids).
    #[arg(long, value_parser = parse_share)]
    hot_share: Option<f64>,
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
    /// {auction, bidder, price, channel, timestamp}, shaped like Nexmark's bids: hot auctions
    /// and bidders plus a long tail (`--users`, `--hot-share`).
    #[value(name = "bids")]
    Bids,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Json,
    Csv,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    Duration::parse(s)
}

fn parse_share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(share) if (0.0..=1.0).contains(&share) => Ok(share),
        _ => Err(format!("`{s}` is not a share from 0 to 1 (e.g. 0.5)")),
    }
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
        Preset::Bids => GeneratorPreset::Bids,
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
        users: args.users.unwrap_or(preset.default_users()),
        hot_share: args.hot_share.unwrap_or(preset.default_hot_share()),
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
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout()),
    };
    let header_lines = u64::from(matches!(args.format, Format::Csv) && options.csv.header);
    let out = Spoiler {
        inner: out,
        targets: spread(args.malformed, args.count, 0.25),
        line: 0,
        header_lines,
        csv: matches!(args.format, Format::Csv),
        current: Vec::new(),
        spoiled: 0,
    };
    let late = spread(args.late, args.count, 0.5);
    // Every preset's event time is its last field.
    let time_column = schema.len() - 1;
    let mut writer = row_writer(&options, &projection, out)?;
    let mut first_row = 0u64;
    while let Some((_, mut batch)) = generator.next_batch(8192) {
        let rows = first_row..first_row + batch.num_rows as u64;
        if let ColumnData::Int(times) = &mut batch.columns[time_column].data {
            for i in late.range(rows.clone()) {
                let t = &mut times[(i - rows.start) as usize];
                *t = t.saturating_sub(args.late_by.millis);
            }
        }
        first_row = rows.end;
        let rows: Vec<u32> = (0..batch.num_rows as u32).collect();
        writer.write_rows(&batch, &rows)?;
    }
    let mut out = writer.finish()?;
    if !out.current.is_empty() {
        out.end_line()?;
    }
    out.flush()?;
    Ok(exit::OK)
}

/// `n` record indexes out of `count`, evenly spread: the k-th at `(k + offset) / n` of the way.
fn spread(n: u64, count: u64, offset: f64) -> BTreeSet<u64> {
    let n = n.min(count);
    (0..n)
        .map(|k| ((k as f64 + offset) * count as f64 / n as f64) as u64)
        .collect()
}

/// Writes text through, spoiling the record lines whose index is in `targets`, each in the
/// next of four ways: cut short, a timestamp (the last field) that is not a number, no
/// timestamp, bytes that are not UTF-8.
struct Spoiler<W: Write> {
    inner: W,
    targets: BTreeSet<u64>,
    /// Lines seen so far.
    line: u64,
    /// Lines before the first record (a CSV header).
    header_lines: u64,
    csv: bool,
    current: Vec<u8>,
    spoiled: u64,
}

impl<W: Write> Spoiler<W> {
    fn end_line(&mut self) -> std::io::Result<()> {
        let line = std::mem::take(&mut self.current);
        let record = self.line.checked_sub(self.header_lines);
        self.line += 1;
        if !record.is_some_and(|r| self.targets.contains(&r)) {
            return self.inner.write_all(&line);
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        // The last field: after the last `:` of a JSON object, the last `,` of a CSV row.
        let last = if self.csv {
            text.iter().rposition(|&b| b == b',').map(|i| i + 1)
        } else {
            text.iter().rposition(|&b| b == b':').map(|i| i + 1)
        }
        .unwrap_or(text.len());
        let mut spoiled: Vec<u8> = match self.spoiled % 4 {
            // A CSV row one column short; a JSON object cut in the middle.
            0 if self.csv => text[..last.saturating_sub(1)].to_vec(),
            0 => text[..text.len() / 2].to_vec(),
            1 if self.csv => [&text[..last], b"soon"].concat(),
            1 => [&text[..last], b"\"soon\"}"].concat(),
            2 if self.csv => text[..last].to_vec(),
            2 => {
                let comma = text
                    .iter()
                    .rposition(|&b| b == b',')
                    .unwrap_or(text.len() - 1);
                [&text[..comma], b"}"].concat()
            }
            _ => [
                &text[..text.len() / 2],
                &[0xff, 0xfe],
                &text[text.len() / 2..],
            ]
            .concat(),
        };
        self.spoiled += 1;
        spoiled.push(b'\n');
        self.inner.write_all(&spoiled)
    }
}

impl<W: Write> Write for Spoiler<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.targets.is_empty() {
            return self.inner.write(buf);
        }
        for piece in buf.split_inclusive(|&b| b == b'\n') {
            self.current.extend_from_slice(piece);
            if piece.ends_with(b"\n") {
                self.end_line()?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        // A line written in pieces stays held until its end.
        self.inner.flush()
    }
}
