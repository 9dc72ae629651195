//! Running one test on the real engine: every source of the plan is replaced by a
//! [`ScriptedSource`] that decodes the test's records with the source's own decoder (bad
//! records go where the pipeline routes them) and sends watermark advances and idle markers
//! through the runtime contract; every sink is replaced by a [`CaptureSink`] that keeps the
//! rows it receives and, for `s3` sinks, drives the real bucketed sink over an in-memory
//! object store, so object keys and file contents are exactly the real sink's.
//!
//! The run is deterministic: sources take turns (one finishes before the next starts), and
//! processing time stands still (a manual clock), so nothing goes idle or rolls by age unless
//! the test says so.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::check::{Prepared, Script, ScriptEvent};
use crate::clock::ManualClock;
use crate::data::Batch;
use crate::engine::operator::EngineError;
use crate::engine::{Connectors, RunOptions, RunSummary};
use crate::format::encode::row_writer;
use crate::plan::connectors::SinkConnector;
use crate::plan::{NodeKind, Plan};
use crate::runtime::{
    BadRecord, ConnectorError, IfExists, PendingObject, Sink, SinkSnapshot, SinkStart, Source,
    SourceContext, SourceEvent,
};
use crate::sinks::store::{ObjectStore, ObjectWriter};

/// What a sink received and wrote during a test.
#[derive(Debug, Clone, Default)]
pub struct SinkCapture {
    /// The rows as they reached the sink (every input column).
    pub batches: Vec<Batch>,
    /// `s3` sinks: the published objects by key under the url.
    pub objects: BTreeMap<String, Vec<u8>>,
    /// Other sinks: the bytes they write (a file, standard output, the messages in order).
    pub text: Vec<u8>,
}

/// How a test run ended.
pub struct Outcome {
    pub result: Result<RunSummary, EngineError>,
    /// By sink node.
    pub captures: HashMap<usize, SinkCapture>,
    /// Late events per window stage.
    pub late_events: Vec<(String, u64)>,
    pub bad_records: u64,
}

/// Runs `prepared` on `plan` with the embedded engine.
pub fn run(plan: &Plan, prepared: &Prepared) -> Outcome {
    let mut order: Vec<&Script> = prepared.scripts.iter().collect();
    order.sort_by_key(|s| s.turn);
    let turns = Arc::new(Turns::default());
    let sources: Vec<Box<dyn Source>> = prepared
        .scripts
        .iter()
        .map(|s| {
            let turn = order.iter().position(|o| o.node == s.node).unwrap_or(0);
            Box::new(ScriptedSource {
                script: s.clone(),
                turn,
                turns: turns.clone(),
                name: plan.nodes[s.node].name.clone(),
            }) as Box<dyn Source>
        })
        .collect();
    let metrics = crate::engine::metrics_for(plan);
    let mut sinks = Vec::new();
    let mut shared = Vec::new();
    for (node, n) in plan.nodes.iter().enumerate() {
        let NodeKind::Sink(s) = &n.kind else { continue };
        let captured = Arc::new(Mutex::new(Vec::new()));
        let store = Arc::new(Mutex::new(MemoryObjects::default()));
        let inner: Option<Box<dyn Sink>> = match (&s.connector, &s.path) {
            (SinkConnector::Object(settings), Some(template)) => {
                Some(Box::new(crate::sinks::object::ObjectSink::new(
                    settings,
                    template.clone(),
                    s.projection.clone(),
                    Box::new(MemoryStore {
                        objects: store.clone(),
                        url: settings.url.clone(),
                    }),
                    metrics.clone(),
                    ManualClock::new(0),
                )))
            }
            _ => None,
        };
        sinks.push((
            node,
            Box::new(CaptureSink {
                captured: captured.clone(),
                inner,
            }) as Box<dyn Sink>,
        ));
        shared.push((node, captured, store));
    }
    let options = RunOptions {
        bounded: true,
        clock: ManualClock::new(0),
        stop: Arc::new(AtomicBool::new(false)),
        if_exists: IfExists::Append,
        // A test's few records never come near it.
        max_state_bytes: None,
    };
    let result = crate::engine::run(
        plan,
        Connectors { sources, sinks },
        &options,
        None,
        metrics.clone(),
    );
    let mut captures = HashMap::new();
    for (node, captured, store) in shared {
        let batches = captured.lock().map(|b| b.clone()).unwrap_or_default();
        let objects = store
            .lock()
            .map(|s| s.published.clone())
            .unwrap_or_default();
        let text = match &plan.nodes[node].kind {
            NodeKind::Sink(s) => stream_text(&s.connector, &s.projection, &batches),
            _ => Vec::new(),
        };
        captures.insert(
            node,
            SinkCapture {
                batches,
                objects,
                text,
            },
        );
    }
    let late_events = metrics
        .late_stages()
        .iter()
        .map(|s| {
            (
                s.stage.clone(),
                s.events.load(std::sync::atomic::Ordering::Relaxed),
            )
        })
        .collect();
    let bad_records = metrics
        .bad_records
        .load(std::sync::atomic::Ordering::Relaxed);
    Outcome {
        result,
        captures,
        late_events,
        bad_records,
    }
}

/// The bytes a stream sink writes for these rows, with its own encoder: one file (`file`,
/// `stdout`), or one message per row in order (Kafka, Kinesis).
fn stream_text(
    connector: &SinkConnector,
    projection: &crate::format::encode::Projection,
    batches: &[Batch],
) -> Vec<u8> {
    let (encoding, per_row) = match connector {
        SinkConnector::Object(_) => return Vec::new(),
        SinkConnector::File(f) => (f.encoding.clone(), false),
        SinkConnector::Stdout(s) => (s.encoding.clone(), false),
        SinkConnector::Kafka(k) => (k.encoding.clone(), true),
        SinkConnector::Kinesis(k) => (k.encoding.clone(), true),
    };
    let encode = |encoding: &crate::format::encode::EncodeOptions, rows: &[(usize, u32)]| {
        let Ok(mut writer) = row_writer(encoding, projection, Vec::new()) else {
            return Vec::new();
        };
        for &(b, r) in rows {
            let _ = writer.write_rows(&batches[b], &[r]);
        }
        writer.finish().unwrap_or_default()
    };
    let rows: Vec<(usize, u32)> = batches
        .iter()
        .enumerate()
        .flat_map(|(b, batch)| (0..batch.num_rows as u32).map(move |r| (b, r)))
        .collect();
    if per_row {
        let mut message_encoding = encoding.clone();
        message_encoding.csv.header = false;
        rows.iter()
            .flat_map(|row| encode(&message_encoding, std::slice::from_ref(row)))
            .collect()
    } else {
        encode(&encoding, &rows)
    }
}

/// Whose turn it is to send: sources are fed one after another, so the engine sees the
/// test's events in the order the test lists them.
#[derive(Default)]
struct Turns {
    current: Mutex<usize>,
    changed: Condvar,
}

impl Turns {
    /// Waits for `turn`; `false` when the run stopped meanwhile.
    fn wait(&self, turn: usize, ctx: &SourceContext) -> bool {
        let Ok(mut current) = self.current.lock() else {
            return false;
        };
        while *current < turn {
            if ctx.stopped() {
                return false;
            }
            match self
                .changed
                .wait_timeout(current, Duration::from_millis(50))
            {
                Ok((guard, _)) => current = guard,
                Err(_) => return false,
            }
        }
        true
    }

    fn pass(&self) {
        if let Ok(mut current) = self.current.lock() {
            *current += 1;
        }
        self.changed.notify_all();
    }
}

/// Decodes one record (the `n`-th of its partition) as a source does: a message (Kafka,
/// Kinesis) or a line, then its event time. What cannot be decoded comes back as a bad record.
pub fn decode_record(
    decoder: &mut dyn crate::format::Decoder,
    message: bool,
    bytes: &[u8],
    n: u64,
    schema: &crate::data::Schema,
    event_time: Option<&crate::runtime::EventTime>,
) -> (Batch, Vec<BadRecord>) {
    let types: Vec<_> = schema.fields.iter().map(|f| f.data_type.clone()).collect();
    let mut batch = Batch::with_capacity(&types, 1);
    let mut bad = Vec::new();
    if message {
        if let Err(error) = decoder.decode_message(bytes, &mut batch) {
            bad.push(BadRecord {
                raw: bytes.to_vec(),
                error,
                line: n,
                offset: None,
            });
        }
    } else {
        decoder.decode_lines(bytes, n, &mut batch, &mut bad);
    }
    if let Some(et) = event_time {
        let origin = |_row: usize| Some((n, bytes));
        crate::sources::extract_event_time(&mut batch, et, schema, &origin, &mut bad);
    }
    (batch, bad)
}

/// A source that sends a test's script through the runtime contract.
struct ScriptedSource {
    script: Script,
    turn: usize,
    turns: Arc<Turns>,
    name: String,
}

impl ScriptedSource {
    fn partition_name(&self, partition: u32) -> String {
        if partition == 0 {
            self.name.clone()
        } else {
            format!("{}/{partition}", self.name)
        }
    }

    fn feed(&self, ctx: &SourceContext) -> Result<(), ConnectorError> {
        for &p in &self.script.partitions {
            if !ctx.send(SourceEvent::Opened {
                partition: p,
                name: self.partition_name(p),
            }) {
                return Ok(());
            }
        }
        let mut decoder = crate::sources::decoder(&self.script.decoding, &ctx.schema);
        let mut header: Option<Arc<Vec<u8>>> = None;
        let mut ordinals: HashMap<u32, u64> = HashMap::new();
        let all: Vec<u32> = self.script.partitions.iter().copied().collect();
        for event in &self.script.events {
            let sent = match event {
                ScriptEvent::Record {
                    partition,
                    bytes,
                    header: wanted,
                } => {
                    let n = ordinals.entry(*partition).or_insert(0);
                    *n += 1;
                    let n = *n;
                    if let Some(h) = wanted
                        && header.as_ref().is_none_or(|cur| !Arc::ptr_eq(cur, h))
                    {
                        decoder.read_header(h).map_err(|e| {
                            ConnectorError::user(format!(
                                "source `{}`: bad CSV header `{}`: {e}",
                                self.name,
                                String::from_utf8_lossy(h)
                            ))
                        })?;
                        header = Some(h.clone());
                    }
                    let (batch, bad) = decode_record(
                        decoder.as_mut(),
                        self.script.messages,
                        bytes,
                        n,
                        &ctx.schema,
                        ctx.event_time.as_ref(),
                    );
                    ctx.send(SourceEvent::Data {
                        partition: *partition,
                        batch,
                        bad,
                        bytes: bytes.len() as u64,
                        position: None,
                    })
                }
                ScriptEvent::Watermark {
                    partition,
                    watermark,
                } => partition
                    .map_or(all.clone(), |p| vec![p])
                    .into_iter()
                    .all(|p| {
                        ctx.send(SourceEvent::Watermark {
                            partition: p,
                            watermark: *watermark,
                        })
                    }),
                ScriptEvent::Idle { partition } => partition
                    .map_or(all.clone(), |p| vec![p])
                    .into_iter()
                    .all(|p| ctx.send(SourceEvent::Idle { partition: p })),
            };
            if !sent {
                return Ok(());
            }
        }
        ctx.send(SourceEvent::Finished);
        Ok(())
    }
}

impl Source for ScriptedSource {
    fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), ConnectorError> {
        if !self.turns.wait(self.turn, &ctx) {
            return Ok(());
        }
        let result = self.feed(&ctx);
        self.turns.pass();
        result
    }
}

/// A sink that keeps what it receives and hands it on to the real sink, if any.
struct CaptureSink {
    captured: Arc<Mutex<Vec<Batch>>>,
    inner: Option<Box<dyn Sink>>,
}

impl Sink for CaptureSink {
    fn start(&mut self, start: &SinkStart) -> Result<(), ConnectorError> {
        match &mut self.inner {
            Some(inner) => inner.start(start),
            None => Ok(()),
        }
    }

    fn write(&mut self, batch: Batch) -> Result<(), ConnectorError> {
        if let Ok(mut captured) = self.captured.lock() {
            captured.push(batch.clone());
        }
        match &mut self.inner {
            Some(inner) => inner.write(batch),
            None => Ok(()),
        }
    }

    fn on_tick(&mut self, now_ms: i64) -> Result<(), ConnectorError> {
        match &mut self.inner {
            Some(inner) => inner.on_tick(now_ms),
            None => Ok(()),
        }
    }

    fn on_watermark(&mut self, watermark: i64) -> Result<(), ConnectorError> {
        match &mut self.inner {
            Some(inner) => inner.on_watermark(watermark),
            None => Ok(()),
        }
    }

    fn prepare(&mut self, epoch: u64, end_of_input: bool) -> Result<SinkSnapshot, ConnectorError> {
        match &mut self.inner {
            Some(inner) => inner.prepare(epoch, end_of_input),
            None => Ok(SinkSnapshot::default()),
        }
    }

    fn commit(&mut self, epoch: u64) -> Result<(), ConnectorError> {
        match &mut self.inner {
            Some(inner) => inner.commit(epoch),
            None => Ok(()),
        }
    }

    fn finish(&mut self) -> Result<(), ConnectorError> {
        match &mut self.inner {
            Some(inner) => inner.finish(),
            None => Ok(()),
        }
    }

    fn abort(&mut self) {
        if let Some(inner) = &mut self.inner {
            inner.abort();
        }
    }
}

/// Objects of an in-memory store: written (hidden) and published.
#[derive(Debug, Default)]
struct MemoryObjects {
    hidden: HashMap<String, Vec<u8>>,
    published: BTreeMap<String, Vec<u8>>,
}

/// An object store in memory, standing in for S3 or a directory in tests.
struct MemoryStore {
    objects: Arc<Mutex<MemoryObjects>>,
    url: String,
}

impl ObjectStore for MemoryStore {
    fn describe(&self) -> String {
        format!("{} (in memory, for the test)", self.url)
    }

    fn check(&self) -> Result<(), ConnectorError> {
        Ok(())
    }

    fn existing(&self, _limit: usize) -> Result<Vec<String>, ConnectorError> {
        Ok(Vec::new())
    }

    fn delete_all(&self) -> Result<u64, ConnectorError> {
        Ok(0)
    }

    fn create(&self, key: &str) -> Result<Box<dyn ObjectWriter>, ConnectorError> {
        Ok(Box::new(MemoryWriter {
            key: key.to_string(),
            bytes: Vec::new(),
            objects: self.objects.clone(),
        }))
    }

    fn publish(&self, object: &PendingObject) -> Result<(), ConnectorError> {
        let mut objects = self
            .objects
            .lock()
            .map_err(|_| ConnectorError::internal("object store lock poisoned"))?;
        if let Some(bytes) = objects.hidden.remove(&object.token) {
            objects.published.insert(object.token.clone(), bytes);
        }
        Ok(())
    }

    fn clean(
        &self,
        _instance: &str,
        _keep: &[PendingObject],
        _published_after: Option<u64>,
    ) -> Result<usize, ConnectorError> {
        Ok(0)
    }
}

struct MemoryWriter {
    key: String,
    bytes: Vec<u8>,
    objects: Arc<Mutex<MemoryObjects>>,
}

impl std::io::Write for MemoryWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl MemoryWriter {
    fn pending(&self) -> PendingObject {
        PendingObject {
            name: self.key.clone(),
            bytes: self.bytes.len() as u64,
            rows: 0,
            token: self.key.clone(),
        }
    }
}

impl ObjectWriter for MemoryWriter {
    fn prepare(self: Box<Self>) -> Result<PendingObject, ConnectorError> {
        let pending = self.pending();
        if let Ok(mut objects) = self.objects.lock() {
            objects.hidden.insert(self.key, self.bytes);
        }
        Ok(pending)
    }

    fn commit(self: Box<Self>) -> Result<PendingObject, ConnectorError> {
        let pending = self.pending();
        if let Ok(mut objects) = self.objects.lock() {
            objects.published.insert(self.key, self.bytes);
        }
        Ok(pending)
    }
}
