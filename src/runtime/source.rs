//! The source side of the contract: a source runs on its own thread(s) and sends
//! [`SourceEvent`]s to the engine: partitions opening and closing (a file, a Kafka partition,
//! a Kinesis shard), decoded batches with their event times and the position after them,
//! records that could not be decoded, and the end of its input. It starts from the positions
//! of a restored checkpoint, and hears when a checkpoint covering its positions completes (to
//! commit offsets to a consumer group, say).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};

use super::error::ConnectorError;
use super::metrics::Metrics;
use super::position::{Position, StartPositions};
use crate::clock::Clock;
use crate::data::{Batch, SchemaRef};

/// Where a source's event time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTime {
    /// Column holding the event time.
    pub column: usize,
    /// For epoch-number columns, milliseconds per unit; `None` for TIMESTAMP columns.
    pub epoch_unit_ms: Option<i64>,
    pub max_out_of_orderness_ms: i64,
    pub idle_timeout_ms: Option<i64>,
}

/// A record that could not be decoded: kept whole for the dead-letter output.
#[derive(Debug, Clone, PartialEq)]
pub struct BadRecord {
    /// The record's bytes exactly as read (without the line end), valid UTF-8 or not.
    pub raw: Vec<u8>,
    /// What is wrong with it, e.g. "field `timestamp`: expected a number, found \"abc\"".
    pub error: String,
    /// 1-based line number within the input (files, stdin); 0 for messages.
    pub line: u64,
    /// The record's place within its partition as text (a Kafka offset, a Kinesis sequence
    /// number: 128-bit decimals, so not a number type); `None` for lines.
    pub offset: Option<String>,
}

/// What a source tells the engine.
#[derive(Debug)]
pub enum SourceEvent {
    /// A partition started; it holds the watermark until it has data. `name` identifies it
    /// across restarts (a path, `topic/3`, a shard id).
    Opened { partition: u32, name: String },
    /// Records of one partition, in order, with event times filled in when the source has
    /// event time. `bad` are the records of this stretch that could not be decoded.
    Data {
        partition: u32,
        batch: Batch,
        bad: Vec<BadRecord>,
        /// Bytes of input consumed.
        bytes: u64,
        /// The position just after the last record of this batch (and of `bad`); `None` for
        /// sources that cannot be replayed (stdin).
        position: Option<Position>,
    },
    /// A partition reached its end (bounded input, a closed shard).
    Closed { partition: u32 },
    /// The partition will send no record older than `watermark` (event time, ms): its
    /// watermark moves up to it (never back) and it counts again if it was idle. For sources
    /// that learn that event time progressed without records, and for pipeline tests that
    /// state watermark advances (`streamctl test`).
    Watermark { partition: u32, watermark: i64 },
    /// The partition has gone quiet: it stops holding its source's watermark back until it
    /// sends data again, exactly as when `idle_timeout` passes without data.
    Idle { partition: u32 },
    /// The source is handing these partitions to another process (a consumer-group
    /// rebalance): everything it read from them has been sent before this event. With
    /// checkpoints the engine takes one now, so the positions committed for them are exactly
    /// what this run applied, and replies with those positions (`None` without checkpoints);
    /// then it forgets the partitions (their watermarks stop counting, their positions leave
    /// later checkpoints). The source commits the reply before letting the partitions go.
    Released {
        partitions: Vec<u32>,
        reply: std::sync::mpsc::Sender<Option<Vec<Position>>>,
    },
    /// The source has no more data.
    Finished,
    /// The source cannot continue.
    Failed(ConnectorError),
}

/// A source event tagged with the plan node of its source.
#[derive(Debug)]
pub struct SourceMessage {
    pub node: usize,
    pub event: SourceEvent,
}

/// The newest completed checkpoint whose positions a source may now commit externally.
///
/// Without checkpoints, a bounded run that ended completes "checkpoint 0" once every sink
/// has published everything: positions a source may commit then (nothing is lost if the
/// process dies afterwards). When the run is over (however it ended) the engine closes it:
/// a source that commits externally waits for that, commits the last positions, and ends.
#[derive(Debug, Default)]
pub struct CompletedCheckpoints {
    latest: Mutex<Option<(u64, Vec<Position>)>>,
    closed: AtomicBool,
    committer: AtomicBool,
}

impl CompletedCheckpoints {
    /// Records that checkpoint `id` holding `positions` of this source is durable.
    pub fn complete(&self, id: u64, positions: Vec<Position>) {
        if let Ok(mut latest) = self.latest.lock() {
            *latest = Some((id, positions));
        }
    }

    /// The newest completed checkpoint not taken yet.
    pub fn take(&self) -> Option<(u64, Vec<Position>)> {
        self.latest.lock().ok().and_then(|mut l| l.take())
    }

    /// No checkpoint will complete any more: the run is over.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// The source commits positions externally after the run is over: the engine gives it
    /// time to ([`COMMIT_GRACE`]) before the process exits.
    pub fn commit_on_close(&self) {
        self.committer.store(true, Ordering::SeqCst);
    }

    pub fn commits_on_close(&self) -> bool {
        self.committer.load(Ordering::SeqCst)
    }
}

/// How long a finished run waits for sources that commit positions when it closes.
pub const COMMIT_GRACE: std::time::Duration = std::time::Duration::from_secs(15);

/// What a running source needs.
#[derive(Clone)]
pub struct SourceContext {
    pub node: usize,
    pub name: String,
    pub schema: SchemaRef,
    pub event_time: Option<EventTime>,
    /// Stop at the end of what exists now (`run --bounded`).
    pub bounded: bool,
    /// Where to resume, by partition (empty on a fresh start).
    pub start: Arc<StartPositions>,
    /// Checkpoints covering this source's positions, as they complete.
    pub completed: Arc<CompletedCheckpoints>,
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

    /// Counts input already consumed before a restart, so progress starts where it left off.
    pub fn add_skipped_bytes(&self, bytes: u64) {
        self.metrics.sources[self.metrics_index]
            .bytes
            .fetch_add(bytes, Ordering::Relaxed);
    }
}

/// A running connector.
pub trait Source: Send {
    /// Whether the source can start again from a checkpoint's positions (stdin cannot).
    fn replayable(&self) -> bool {
        true
    }

    /// Reads until the input ends (bounded) or a stop is requested, sending events.
    ///
    /// # Errors
    /// Why the source cannot continue (unreadable file, unreachable broker…).
    fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), ConnectorError>;
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
            if let Err(error) = source.run(ctx) {
                failure_ctx.send(SourceEvent::Failed(error));
            }
        })
}
