//! The `kinesis` source: every shard of an Amazon Kinesis data stream, through
//! `aws-sdk-kinesis`.
//!
//! - **Shards** are found with ListShards at the start, again every
//!   [`REDISCOVER_EVERY`], and whenever a shard ends. Each shard being read has one
//!   GetRecords request in flight at a time (all shards concurrently, on the source's own
//!   runtime), paced within the service's per-shard limits (5 calls/s, 2 MB/s): the next call
//!   waits [`MIN_CALL_GAP`] or as long as the last answer's bytes take at 2 MB/s, and
//!   [`IDLE_POLL`] after an empty answer. Throttling backs off with jitter; an expired iterator
//!   is renewed after the last sequence number read.
//! - **Resharding**: a shard created by a split or merge is read only once its parents are
//!   read to their end, so the records of one partition key stay in order. A child is opened
//!   (holding the watermark) before its last parent is closed (leaving it), so the watermark
//!   never runs ahead of records the child still holds.
//! - **Positions** are `STREAM/SHARD-ID` → the last sequence number read (kept as text: 128-bit
//!   decimals), `end` for a shard read to its end; a restart continues each shard with
//!   AFTER_SEQUENCE_NUMBER.
//! - **`--bounded`** reads each shard until an answer is empty and at the tip of the shard
//!   (MillisBehindLatest 0), or the shard ends; then the source finishes.
//!
//! One process reads every shard: there are no leases, so two processes reading one stream
//! would each read all of it (see the README's Kinesis section).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use tokio::task::JoinSet;

use super::extract_event_time;
use crate::aws::AwsSettings;
use crate::aws::kinesis::{IteratorStart, Kinesis, Page, ReadFailure, Record, ShardInfo};
use crate::data::{Batch, Column, DataType};
use crate::format::Decoder;
use crate::plan::connectors::{KinesisMetadata, KinesisSource as Settings, KinesisStart};
use crate::runtime::{
    BadRecord, ConnectorError, Offset, Position, Source, SourceContext, SourceEvent,
};

/// Shards are listed again this often, to find shards created by resharding.
pub const REDISCOVER_EVERY: Duration = Duration::from_secs(10);
/// At most 5 GetRecords calls per second per shard.
pub const MIN_CALL_GAP: Duration = Duration::from_millis(200);
/// After an empty answer, wait this long before asking the shard again.
pub const IDLE_POLL: Duration = Duration::from_secs(1);
/// Per-shard read limit: 2 MB/s.
const SHARD_READ_BYTES_PER_SEC: u64 = 2_000_000;

pub struct KinesisSource {
    settings: Settings,
}

impl KinesisSource {
    pub fn new(settings: Settings) -> KinesisSource {
        KinesisSource { settings }
    }
}

impl Source for KinesisSource {
    fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), ConnectorError> {
        let aws = AwsSettings {
            region: self.settings.region.clone(),
            endpoint: self.settings.endpoint.clone(),
        };
        let client = Kinesis::connect(&aws, &self.settings.stream)?;
        client.check_stream()?;
        let runtime_client = client.clone();
        // The decoder fills the value fields; metadata fields follow them.
        let value_schema = crate::data::Schema::new(
            ctx.schema.fields[..self.settings.value_fields.min(ctx.schema.fields.len())].to_vec(),
        );
        let decoder = super::decoder(&self.settings.decoding, &value_schema);
        let mut reader = StreamReader {
            started_ms: ctx.clock.now_ms(),
            lineage: Lineage::default(),
            shards: HashMap::new(),
            read_here: HashSet::new(),
            next_partition: 0,
            in_flight: JoinSet::new(),
            last_discovery: None,
            settings: self.settings,
            client,
            decoder,
            ctx,
        };
        runtime_client.block_on(reader.run())
    }
}

// ----- which shards to read, and when ---------------------------------------------------------

/// Where a shard is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Not read yet: waits for its parents.
    Waiting,
    Reading,
    /// Nothing more to read: read to its end (now or before a restart), or closed before a
    /// `latest` start.
    Done,
    /// `--bounded`: read up to the tip as of when it was caught up; not closed.
    CaughtUp,
}

/// The shards of a stream and how far each is, keeping children behind their parents.
#[derive(Debug, Default)]
struct Lineage {
    shards: BTreeMap<String, (ShardInfo, Status)>,
}

impl Lineage {
    /// Adds shards not seen before (waiting) and notes shards that closed since.
    fn merge(&mut self, listed: Vec<ShardInfo>) {
        for info in listed {
            match self.shards.get_mut(&info.id) {
                Some((known, _)) => known.closed |= info.closed,
                None => {
                    self.shards.insert(info.id.clone(), (info, Status::Waiting));
                }
            }
        }
    }

    fn status(&self, shard: &str) -> Option<Status> {
        self.shards.get(shard).map(|(_, s)| *s)
    }

    fn set(&mut self, shard: &str, status: Status) {
        if let Some((_, s)) = self.shards.get_mut(shard) {
            *s = status;
        }
    }

    fn info(&self, shard: &str) -> Option<&ShardInfo> {
        self.shards.get(shard).map(|(i, _)| i)
    }

    /// Waiting shards whose parents are done (or no longer retained), in shard-id order.
    fn ready(&self) -> Vec<String> {
        self.shards
            .iter()
            .filter(|(_, (_, status))| *status == Status::Waiting)
            .filter(|(_, (info, _))| {
                info.parents
                    .iter()
                    .all(|p| matches!(self.status(p), None | Some(Status::Done)))
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Whether some shard has `shard` as a parent.
    fn has_children(&self, shard: &str) -> bool {
        self.shards
            .values()
            .any(|(info, _)| info.parents.iter().any(|p| p == shard))
    }

    /// Whether nothing is left to read: no shard is being read and none is ready. With
    /// `--bounded` the source is then finished (children of caught-up shards hold records
    /// from after the end).
    fn exhausted(&self) -> bool {
        !self.shards.values().any(|(_, s)| *s == Status::Reading) && self.ready().is_empty()
    }
}

// ----- reading ---------------------------------------------------------------------------------

/// A shard being read.
struct ShardReader {
    partition: u32,
    /// Its name in positions: `STREAM/SHARD-ID`.
    name: String,
    /// Where it started (to renew an expired iterator before anything was read).
    start: IteratorStart,
    iterator: String,
    /// The last sequence number read.
    last_sequence: Option<String>,
    /// Consecutive failed calls, for backoff.
    failures: u32,
}

/// The answer to one GetRecords call.
struct Fetched {
    shard: String,
    result: Result<Page, ReadFailure>,
}

struct StreamReader {
    settings: Settings,
    client: Kinesis,
    decoder: Box<dyn Decoder>,
    ctx: SourceContext,
    /// When this run started: `start_from: latest` reads what arrived from then on.
    started_ms: i64,
    lineage: Lineage,
    shards: HashMap<String, ShardReader>,
    /// Shards this run opened.
    read_here: HashSet<String>,
    next_partition: u32,
    in_flight: JoinSet<Fetched>,
    last_discovery: Option<std::time::Instant>,
}

/// How to go on after handling an answer.
enum Next {
    Continue,
    /// A stop was requested or the engine went away.
    Stop,
}

impl StreamReader {
    async fn run(&mut self) -> Result<(), ConnectorError> {
        if let Next::Stop = self.discover().await? {
            return Ok(());
        }
        loop {
            if self.ctx.stopped() {
                return Ok(());
            }
            if self.ctx.bounded && self.lineage.exhausted() {
                self.ctx.send(SourceEvent::Finished);
                return Ok(());
            }
            if self
                .last_discovery
                .is_none_or(|at| at.elapsed() >= REDISCOVER_EVERY)
                && let Next::Stop = self.discover().await?
            {
                return Ok(());
            }
            if self.in_flight.is_empty() {
                // Every shard waits (for parents, or for new shards): nothing to poll.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let fetched =
                match tokio::time::timeout(Duration::from_millis(100), self.in_flight.join_next())
                    .await
                {
                    Err(_) | Ok(None) => continue,
                    Ok(Some(Err(e))) => {
                        return Err(ConnectorError::internal(format!(
                            "a Kinesis read task failed: {e}"
                        )));
                    }
                    Ok(Some(Ok(f))) => f,
                };
            if let Next::Stop = self.handle(fetched).await? {
                return Ok(());
            }
        }
    }

    /// Lists the shards and starts reading those that are ready.
    async fn discover(&mut self) -> Result<Next, ConnectorError> {
        let listed = self.client.list_shards().await?;
        self.last_discovery = Some(std::time::Instant::now());
        let first = self.lineage.shards.is_empty();
        self.lineage.merge(listed);
        if first {
            self.classify_at_start();
        }
        loop {
            let ready = self.lineage.ready();
            if ready.is_empty() {
                return Ok(Next::Continue);
            }
            for shard in ready {
                if let Next::Stop = self.open(&shard).await? {
                    return Ok(Next::Stop);
                }
            }
        }
    }

    fn position_name(&self, shard: &str) -> String {
        format!("{}/{shard}", self.client.stream().name)
    }

    /// Marks shards a restart or a `latest` start does not read: read to their end before a
    /// restart, or closed before a `latest` start (their records are all older).
    fn classify_at_start(&mut self) {
        let ids: Vec<String> = self.lineage.shards.keys().cloned().collect();
        for id in ids {
            let restored = self.ctx.start.get(&self.position_name(&id)).cloned();
            let skip = match restored {
                Some(Offset::End) => true,
                Some(_) => false,
                None => {
                    self.settings.start == KinesisStart::Latest
                        && self.lineage.info(&id).is_some_and(|i| i.closed)
                        && !self.descends_from_read(&id)
                }
            };
            if skip {
                self.lineage.set(&id, Status::Done);
            }
        }
    }

    /// Whether a parent of `shard` was read by this run or an earlier one: its records then
    /// follow what was read, and are all to be read.
    fn descends_from_read(&self, shard: &str) -> bool {
        self.lineage.info(shard).is_some_and(|info| {
            info.parents.iter().any(|p| {
                self.read_here.contains(p) || self.ctx.start.get(&self.position_name(p)).is_some()
            })
        })
    }

    /// Where reading `shard` starts, and the position to record before anything is read.
    fn start_of(&self, shard: &str) -> Result<(IteratorStart, Option<Offset>), ConnectorError> {
        let name = self.position_name(shard);
        match self.ctx.start.get(&name) {
            Some(Offset::After(seq)) => Ok((IteratorStart::AfterSequenceNumber(seq.clone()), None)),
            Some(Offset::Since(ms)) => Ok((IteratorStart::AtTimestamp(*ms), None)),
            Some(other) => Err(ConnectorError::user(format!(
                "the checkpoint's position for {name} ({other}) is not a Kinesis position: was \
                 the checkpoint taken by another pipeline?"
            ))),
            None => Ok(match self.settings.start {
                KinesisStart::TrimHorizon => (IteratorStart::TrimHorizon, None),
                KinesisStart::AtTimestamp => (
                    IteratorStart::AtTimestamp(self.settings.start_timestamp_ms.unwrap_or(0)),
                    None,
                ),
                // A child of a shard that was read holds what came after its parent: all of it.
                KinesisStart::Latest if self.descends_from_read(shard) => {
                    (IteratorStart::TrimHorizon, None)
                }
                // A restart before a record was read goes on from this run's start.
                KinesisStart::Latest => {
                    (IteratorStart::Latest, Some(Offset::Since(self.started_ms)))
                }
            }),
        }
    }

    /// Starts reading `shard`: tells the engine (it now holds the watermark) and asks for its
    /// first records.
    async fn open(&mut self, shard: &str) -> Result<Next, ConnectorError> {
        let (start, initial) = self.start_of(shard)?;
        let iterator = self.client.shard_iterator(shard, &start).await?;
        let partition = self.next_partition;
        self.next_partition += 1;
        let name = self.position_name(shard);
        self.lineage.set(shard, Status::Reading);
        self.read_here.insert(shard.to_string());
        if !self.ctx.send(SourceEvent::Opened {
            partition,
            name: name.clone(),
        }) {
            return Ok(Next::Stop);
        }
        if let Some(offset) = initial {
            // Nothing read yet, but a restart must start from this run's start, not its own.
            let types = self.types();
            if !self.ctx.send(SourceEvent::Data {
                partition,
                batch: Batch::with_capacity(&types, 0),
                bad: Vec::new(),
                bytes: 0,
                position: Some(Position::new(name.clone(), offset)),
            }) {
                return Ok(Next::Stop);
            }
        }
        self.shards.insert(
            shard.to_string(),
            ShardReader {
                partition,
                name,
                start,
                iterator,
                last_sequence: None,
                failures: 0,
            },
        );
        self.fetch(shard, Duration::ZERO);
        Ok(Next::Continue)
    }

    fn types(&self) -> Vec<DataType> {
        self.ctx
            .schema
            .fields
            .iter()
            .map(|f| f.data_type.clone())
            .collect()
    }

    /// Asks `shard` for its next records after `delay`.
    fn fetch(&mut self, shard: &str, delay: Duration) {
        let Some(reader) = self.shards.get(shard) else {
            return;
        };
        let client = self.client.clone();
        let iterator = reader.iterator.clone();
        let limit = self.settings.records_per_call as i32;
        let shard = shard.to_string();
        self.in_flight.spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let result = client.get_records(&shard, &iterator, limit).await;
            Fetched { shard, result }
        });
    }

    async fn handle(&mut self, fetched: Fetched) -> Result<Next, ConnectorError> {
        let shard = fetched.shard;
        let page = match fetched.result {
            Ok(page) => page,
            Err(ReadFailure::ExpiredIterator) => {
                self.renew_iterator(&shard).await?;
                self.fetch(&shard, Duration::ZERO);
                return Ok(Next::Continue);
            }
            Err(ReadFailure::Throttled) => {
                // Throttling lasts as long as other readers use the shard: wait, never give up.
                let delay = self.backoff(&shard);
                self.fetch(&shard, delay);
                return Ok(Next::Continue);
            }
            Err(ReadFailure::Failed(e)) => {
                let attempts = self.shards.get(&shard).map_or(0, |r| r.failures);
                if e.is_retryable() && attempts < crate::aws::RetryPolicy::default().attempts {
                    let delay = self.backoff(&shard);
                    self.fetch(&shard, delay);
                    return Ok(Next::Continue);
                }
                return Err(e);
            }
        };
        let Some(reader) = self.shards.get_mut(&shard) else {
            return Ok(Next::Continue);
        };
        reader.failures = 0;
        let bytes: u64 = page.records.iter().map(|r| r.data.len() as u64).sum();
        let empty = page.records.is_empty();
        if let Some(last) = page.records.last() {
            reader.last_sequence = Some(last.sequence_number.clone());
            let position = Position::new(
                reader.name.clone(),
                Offset::After(last.sequence_number.clone()),
            );
            let partition = reader.partition;
            let (batch, bad) = decode(
                &page.records,
                &shard,
                self.decoder.as_mut(),
                &self.settings,
                &self.ctx,
            );
            if !self.ctx.send(SourceEvent::Data {
                partition,
                batch,
                bad,
                bytes,
                position: Some(position),
            }) {
                return Ok(Next::Stop);
            }
        }
        match page.next_iterator {
            None => self.ended(&shard).await,
            Some(_) if self.ctx.bounded && empty && page.millis_behind.unwrap_or(0) == 0 => {
                // At the tip: a bounded run reads no further (the shard stays open).
                self.shards.remove(&shard);
                self.lineage.set(&shard, Status::CaughtUp);
                Ok(Next::Continue)
            }
            Some(next) => {
                if let Some(reader) = self.shards.get_mut(&shard) {
                    reader.iterator = next;
                }
                let delay = if empty {
                    IDLE_POLL
                } else {
                    MIN_CALL_GAP.max(Duration::from_millis(
                        bytes * 1000 / SHARD_READ_BYTES_PER_SEC,
                    ))
                };
                self.fetch(&shard, delay);
                Ok(Next::Continue)
            }
        }
    }

    /// `shard` is closed and read to its end: its children are opened (holding the
    /// watermark where it is) before it is closed (leaving the watermark).
    async fn ended(&mut self, shard: &str) -> Result<Next, ConnectorError> {
        let Some(reader) = self.shards.remove(shard) else {
            return Ok(Next::Continue);
        };
        self.lineage.set(shard, Status::Done);
        // A shard closes only once its children exist; ListShards may take a moment to show them.
        for attempt in 0..5 {
            if let Next::Stop = self.discover().await? {
                return Ok(Next::Stop);
            }
            if self.lineage.has_children(shard) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
        }
        if !self.ctx.send(SourceEvent::Closed {
            partition: reader.partition,
        }) {
            return Ok(Next::Stop);
        }
        Ok(Next::Continue)
    }

    /// A new iterator after the last sequence number read (or from the start again).
    async fn renew_iterator(&mut self, shard: &str) -> Result<(), ConnectorError> {
        let Some(reader) = self.shards.get(shard) else {
            return Ok(());
        };
        let start = match &reader.last_sequence {
            Some(seq) => IteratorStart::AfterSequenceNumber(seq.clone()),
            None => reader.start.clone(),
        };
        let iterator = self.client.shard_iterator(shard, &start).await?;
        if let Some(reader) = self.shards.get_mut(shard) {
            reader.iterator = iterator;
        }
        Ok(())
    }

    fn backoff(&mut self, shard: &str) -> Duration {
        let Some(reader) = self.shards.get_mut(shard) else {
            return MIN_CALL_GAP;
        };
        reader.failures += 1;
        crate::aws::RetryPolicy::default()
            .backoff(reader.failures)
            .max(MIN_CALL_GAP)
    }
}

/// Decodes the records of one answer from `shard`: data into the value fields, metadata into
/// the fields after them; undecodable records (and ones without an event time) become bad
/// records.
fn decode(
    records: &[Record],
    shard: &str,
    decoder: &mut dyn Decoder,
    settings: &Settings,
    ctx: &SourceContext,
) -> (Batch, Vec<BadRecord>) {
    let value_types: Vec<DataType> = ctx.schema.fields[..settings.value_fields]
        .iter()
        .map(|f| f.data_type.clone())
        .collect();
    let mut batch = Batch::with_capacity(&value_types, records.len());
    let mut bad = Vec::new();
    let mut good: Vec<usize> = Vec::with_capacity(records.len());
    for (i, record) in records.iter().enumerate() {
        match decoder.decode_message(&record.data, &mut batch) {
            Ok(()) => good.push(i),
            Err(error) => bad.push(BadRecord {
                raw: record.data.clone(),
                error,
                line: 0,
                offset: Some(record.sequence_number.clone()),
            }),
        }
    }
    for what in &settings.metadata {
        let mut column = Column::new(&what.data_type(), good.len());
        for &i in &good {
            let r = &records[i];
            match what {
                KinesisMetadata::PartitionKey => column.push_str(&r.partition_key),
                KinesisMetadata::SequenceNumber => column.push_str(&r.sequence_number),
                KinesisMetadata::Shard => column.push_str(shard),
                KinesisMetadata::ArrivalTime => match r.arrival_ms {
                    Some(ms) => column.push_int(ms),
                    None => column.push_null(),
                },
            }
        }
        batch.columns.push(column);
    }
    if let Some(et) = &ctx.event_time {
        let origin = |row: usize| Some((0, records[good[row]].data.as_slice()));
        extract_event_time(&mut batch, et, &ctx.schema, &origin, &mut bad);
    }
    (batch, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: &str, parents: &[&str], closed: bool) -> ShardInfo {
        ShardInfo {
            id: id.to_string(),
            parents: parents.iter().map(|p| p.to_string()).collect(),
            closed,
        }
    }

    #[test]
    fn children_wait_until_every_parent_is_read_to_its_end() {
        let mut l = Lineage::default();
        // 0 and 1 merged into 3; 2 split into 4 and 5.
        l.merge(vec![
            shard("s0", &[], true),
            shard("s1", &[], true),
            shard("s2", &[], true),
            shard("s3", &["s0", "s1"], false),
            shard("s4", &["s2"], false),
            shard("s5", &["s2"], false),
        ]);
        assert_eq!(l.ready(), ["s0", "s1", "s2"]);
        for s in ["s0", "s1", "s2"] {
            l.set(s, Status::Reading);
        }
        assert!(l.ready().is_empty());
        l.set("s0", Status::Done);
        assert!(l.ready().is_empty(), "s3 still waits for s1");
        l.set("s2", Status::Done);
        assert_eq!(l.ready(), ["s4", "s5"]);
        l.set("s1", Status::Done);
        assert_eq!(l.ready(), ["s3", "s4", "s5"]);
    }

    #[test]
    fn a_parent_no_longer_retained_holds_nobody_back() {
        let mut l = Lineage::default();
        l.merge(vec![shard("s7", &["s1"], false)]);
        assert_eq!(l.ready(), ["s7"]);
    }

    #[test]
    fn a_caught_up_shard_is_not_a_finished_parent() {
        let mut l = Lineage::default();
        l.merge(vec![shard("s0", &[], false)]);
        l.set("s0", Status::Reading);
        assert!(!l.exhausted());
        l.set("s0", Status::CaughtUp);
        assert!(l.exhausted());
        l.merge(vec![shard("s0", &[], true), shard("s1", &["s0"], false)]);
        assert!(l.ready().is_empty());
        assert!(l.exhausted(), "s1's records come after the bounded end");
    }
}
