//! Sources: where records come from. Each connector lives in the file named by its `type:`;
//! [`build`] is the registry (one `match`).
//!
//! A source runs on its own thread(s) and sends [`SourceEvent`]s to the engine: partitions
//! opening and closing (a file, a Kafka partition, a Kinesis shard), decoded batches with
//! their event times, records that could not be decoded, and the end of its input. Positions
//! travel with the data so checkpoints can record them.

pub mod file;
pub mod generator;
pub mod lines;
pub mod stdin;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;

use crate::clock::Clock;
use crate::config::SourceConfig;
use crate::config::source::{DataFormat, Decoding, TypeChecking};
use crate::data::{Batch, ColumnData, SchemaRef};
use crate::engine::metrics::Metrics;
use crate::format::{BadRecord, Decoder};
use crate::plan::EventTimePlan;

/// What a source tells the engine.
#[derive(Debug)]
pub enum SourceEvent {
    /// A partition started; it holds the watermark until it has data.
    Opened { partition: u32, name: String },
    /// Records of one partition, in order, with event times filled in when the source has
    /// event time. `bad` are the records of this stretch that could not be decoded.
    Data {
        partition: u32,
        batch: Batch,
        bad: Vec<BadRecord>,
        /// Bytes of input consumed.
        bytes: u64,
    },
    /// A partition reached its end (bounded input).
    Closed { partition: u32 },
    /// The source has no more data.
    Finished,
    /// The source cannot continue.
    Failed(String),
}

/// A source event tagged with the plan node of its source.
#[derive(Debug)]
pub struct SourceMessage {
    pub node: usize,
    pub event: SourceEvent,
}

/// What a running source needs.
#[derive(Clone)]
pub struct SourceContext {
    pub node: usize,
    pub name: String,
    pub schema: SchemaRef,
    pub event_time: Option<EventTimePlan>,
    /// Stop at the end of what exists now (`run --bounded`).
    pub bounded: bool,
    pub sender: SyncSender<SourceMessage>,
    pub stop: Arc<AtomicBool>,
    pub metrics: Arc<Metrics>,
    /// This source's index in `metrics.sources`.
    pub metrics_index: usize,
    pub clock: Arc<dyn Clock>,
}

impl SourceContext {
    /// Sends an event; `false` when the engine is gone or a stop was requested.
    pub fn send(&self, event: SourceEvent) -> bool {
        if let SourceEvent::Data { batch, bytes, .. } = &event {
            let m = &self.metrics.sources[self.metrics_index];
            m.records
                .fetch_add(batch.num_rows as u64, Ordering::Relaxed);
            m.bytes.fetch_add(*bytes, Ordering::Relaxed);
        }
        self.sender
            .send(SourceMessage {
                node: self.node,
                event,
            })
            .is_ok()
    }

    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Sets the total number of records, when known (a bounded generator), for the progress ETA.
    pub fn set_total_records(&self, records: u64) {
        self.metrics.sources[self.metrics_index]
            .total_records
            .store(records, Ordering::Relaxed);
    }

    /// Sets the total input size, when known, for the progress ETA.
    pub fn set_total_bytes(&self, bytes: u64) {
        self.metrics.sources[self.metrics_index]
            .total_bytes
            .store(bytes, Ordering::Relaxed);
    }
}

/// A running connector.
pub trait Source: Send {
    /// Reads until the input ends (bounded) or a stop is requested, sending events.
    ///
    /// # Errors
    /// Why the source cannot continue (unreadable file, unreachable broker…).
    fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), String>;
}

/// The connector for a source plan.
///
/// # Errors
/// When the connector is not available in this build.
pub fn build(config: &SourceConfig, bounded: bool) -> Result<Box<dyn Source>, String> {
    match config {
        SourceConfig::File(f) => Ok(Box::new(file::FileSource::new(f.clone()))),
        SourceConfig::Stdin(s) => Ok(Box::new(stdin::StdinSource::new(s.decoding.clone()))),
        SourceConfig::Generator(g) => {
            if bounded && g.count.is_none() {
                return Err(
                    "this generator has no `count`, so `--bounded` cannot end it; set `count:`"
                        .to_string(),
                );
            }
            Ok(Box::new(generator::GeneratorSource::new(g.clone())))
        }
        SourceConfig::Kafka(_) => Err(
            "the Kafka connector is not in this build yet; for local runs use a `file`, `stdin` or `generator` source".to_string(),
        ),
        SourceConfig::Kinesis(_) => Err(
            "the Kinesis connector is not in this build yet; for local runs use a `file`, `stdin` or `generator` source".to_string(),
        ),
    }
}

/// The decoder for a source's format and schema.
pub fn decoder(decoding: &Decoding, schema: &crate::data::Schema) -> Box<dyn Decoder> {
    match decoding.format {
        DataFormat::Json => Box::new(
            crate::format::json::JsonDecoder::new(schema)
                .with_strict_types(decoding.types == TypeChecking::Strict),
        ),
        DataFormat::Csv => {
            let csv = decoding.csv.clone().unwrap_or_default();
            Box::new(
                crate::format::csv::CsvDecoder::new(schema, csv.delimiter as u8, csv.header)
                    .with_strict_types(decoding.types == TypeChecking::Strict),
            )
        }
    }
}

/// Fills `batch.times` from the event-time column; rows without an event time become bad
/// records. `origin` gives a row's line number and its bytes as read, when the source has
/// them (otherwise the dead letter holds the row as JSON).
pub fn extract_event_time<'c>(
    batch: &mut Batch,
    event_time: &EventTimePlan,
    schema: &crate::data::Schema,
    origin: &dyn Fn(usize) -> Option<(u64, &'c [u8])>,
    bad: &mut Vec<BadRecord>,
) {
    let column = &batch.columns[event_time.column];
    let unit = event_time.epoch_unit_ms.unwrap_or(1);
    let values = match &column.data {
        ColumnData::Int(v) | ColumnData::Timestamp(v) => v,
        _ => return,
    };
    let mut times = Vec::with_capacity(batch.num_rows);
    let mut keep: Option<Vec<bool>> = None;
    for (row, &value) in values.iter().enumerate().take(batch.num_rows) {
        if column.is_null(row) {
            let field = &schema.fields[event_time.column].name;
            let (line, raw) = match origin(row) {
                Some((line, raw)) => (line, raw.to_vec()),
                None => (
                    0,
                    crate::engine::operator::row_json(schema, &batch.columns, row).into_bytes(),
                ),
            };
            bad.push(BadRecord {
                raw,
                error: format!("missing event time: field `{field}` is null or absent"),
                line,
            });
            keep.get_or_insert_with(|| vec![true; batch.num_rows])[row] = false;
            continue;
        }
        times.push(value.saturating_mul(unit));
    }
    if let Some(keep) = keep {
        let times_kept = times;
        *batch = batch.filter(&keep);
        batch.times = times_kept;
    } else {
        batch.times = times;
    }
}

/// Runs a source on its own thread; failures become a `Failed` event.
pub fn spawn(
    source: Box<dyn Source>,
    ctx: SourceContext,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("source-{}", ctx.name))
        .spawn(move || {
            let failure_ctx = ctx.clone();
            if let Err(message) = source.run(ctx) {
                failure_ctx.send(SourceEvent::Failed(message));
            }
        })
}
