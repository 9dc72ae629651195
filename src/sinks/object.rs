//! The bucketed object sink (`type: s3`): rows go to files under `url`, in buckets named by
//! the path template; a file closes ("rolls") when it reaches `max_bytes`, when it has been open
//! `max_age`, when nothing was written to it for `inactivity`, when too many are open (least
//! recently written first), when the watermark shows its time bucket is complete, and at
//! checkpoints and the end of the run. A complete time bucket can get a `_SUCCESS` marker once
//! its files are published.
//!
//! Publishing follows the runtime's two-phase contract: without checkpoints a closed file is
//! published at once; with checkpoints it is *prepared* (durable, invisible) and published when
//! the checkpoint that covers it completes. Object names carry the job's instance id and the
//! checkpoint epoch, so a restart removes exactly its own leftovers.

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::sync::Arc;

use super::store::{CONCURRENT_OBJECTS, ObjectStore, ObjectWriter, in_parallel, object_name};
use crate::clock::Clock;
use crate::data::{Batch, Column, ColumnData};
use crate::format::encode::{Projection, RowWriter, row_writer};
use crate::plan::connectors::ObjectSink as ObjectSettings;
use crate::plan::path_template::{self, PathTemplate, Segment, TimeUnit};
use crate::runtime::{
    ConnectorError, IfExists, MAX_WATERMARK, Metrics, PendingObject, Sink, SinkSnapshot, SinkStart,
    StateWriter, sink::read_state,
};

/// Rows written between two checks of a file's size against `max_bytes`.
const ROLL_CHECK_ROWS: usize = 512;

type Writer = Box<dyn RowWriter<Box<dyn ObjectWriter>>>;

struct OpenFile {
    writer: Writer,
    opened_ms: i64,
    last_write_ms: i64,
    /// Order of last use, for closing the least recently written file first.
    last_used: u64,
    rows: u64,
}

/// A `{time:FORMAT}` placeholder of the template: its buckets last one `unit`.
struct TimeLevel {
    column: usize,
    unit: TimeUnit,
    epoch_unit_ms: i64,
    /// The most a row's event time was ahead of this field's value (a window's `window_start`
    /// is its size behind its rows' event time): rows of a bucket can still come until the
    /// watermark passes the bucket's end by this much.
    lead_ms: Option<i64>,
}

pub struct ObjectSink {
    store: Box<dyn ObjectStore>,
    template: PathTemplate,
    time_levels: Vec<TimeLevel>,
    /// Path levels up to the last time placeholder: a time bucket's directory.
    time_depth: Option<usize>,
    /// Time buckets with rows written and not yet complete: directory → end of each time
    /// level's bucket.
    time_buckets: HashMap<String, Vec<i64>>,
    /// `_SUCCESS` markers of complete buckets waiting for the next checkpoint, and those a
    /// prepared checkpoint publishes after its files.
    closed_markers: Vec<String>,
    prepared_markers: BTreeMap<u64, Vec<String>>,
    /// The checkpoint taken at the end of the input (after its commit nothing is left open).
    final_epoch: Option<u64>,
    /// Input columns the template reads (to group rows by bucket cheaply).
    template_columns: Vec<usize>,
    projection: Projection,
    settings: ObjectSettings,
    extension: &'static str,
    open: HashMap<String, OpenFile>,
    /// Names objects: the job's instance id, and the epoch (checkpoint id) files belong to.
    instance: String,
    epoch: u64,
    checkpointing: bool,
    next_part: u64,
    uses: u64,
    /// Closed files waiting for the next checkpoint.
    closed: Vec<PendingObject>,
    /// Files prepared for a checkpoint, by its id, waiting for it to complete.
    prepared: BTreeMap<u64, Vec<PendingObject>>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    key_buf: Vec<u8>,
    path_buf: String,
    /// Running estimate of encoded bytes per row, for slicing writes under `max_bytes`.
    average_row_bytes: u64,
}

impl ObjectSink {
    pub fn new(
        settings: &ObjectSettings,
        template: PathTemplate,
        projection: Projection,
        store: Box<dyn ObjectStore>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
    ) -> ObjectSink {
        let template_columns = template
            .segments
            .iter()
            .filter_map(|s| match s {
                Segment::Field { column, .. } => Some(*column),
                Segment::Literal(_) => None,
            })
            .collect();
        let mut time_levels = Vec::new();
        let mut time_depth = None;
        let mut levels = 0;
        for segment in &template.segments {
            match segment {
                Segment::Literal(text) => levels += text.matches('/').count(),
                Segment::Field {
                    column,
                    format: Some(format),
                    epoch_unit_ms,
                    ..
                } => {
                    levels += format.matches('/').count();
                    if let Some(unit) = path_template::time_unit(format) {
                        time_levels.push(TimeLevel {
                            column: *column,
                            unit,
                            epoch_unit_ms: epoch_unit_ms.unwrap_or(1),
                            lead_ms: None,
                        });
                        time_depth = Some(levels + 1);
                    }
                }
                Segment::Field { .. } => {}
            }
        }
        ObjectSink {
            store,
            template,
            time_levels,
            time_depth,
            time_buckets: HashMap::new(),
            closed_markers: Vec::new(),
            prepared_markers: BTreeMap::new(),
            final_epoch: None,
            template_columns,
            projection,
            extension: settings.encoding.format.extension(),
            settings: settings.clone(),
            open: HashMap::new(),
            instance: String::new(),
            epoch: 0,
            checkpointing: false,
            next_part: 0,
            uses: 0,
            closed: Vec::new(),
            prepared: BTreeMap::new(),
            clock,
            metrics,
            key_buf: Vec::new(),
            path_buf: String::new(),
            average_row_bytes: 64,
        }
    }

    /// Publishes `objects`, several at once (see [`CONCURRENT_OBJECTS`]).
    fn publish(&self, objects: &[PendingObject]) -> Result<(), ConnectorError> {
        let (store, metrics) = (&*self.store, &*self.metrics);
        in_parallel(objects.iter().collect(), CONCURRENT_OBJECTS, |i, object| {
            if i > 0 {
                crate::fault::point("publish-between-files");
            }
            store.publish(object)?;
            metrics.rows_published(object.rows, object.bytes, 1);
            Ok(())
        })?;
        self.store.sync_published()
    }

    /// The file of `bucket`, opening one (and closing the least recently used if too many
    /// are open).
    fn file_for(&mut self, bucket: &str) -> Result<&mut OpenFile, ConnectorError> {
        if !self.open.contains_key(bucket) {
            if self.open.len() >= self.settings.rolling.max_open_files
                && let Some(lru) = self
                    .open
                    .iter()
                    .min_by_key(|(_, f)| f.last_used)
                    .map(|(k, _)| k.clone())
            {
                self.roll(&lru)?;
            }
            // The rendered path names a directory (`…/{movieId}` and `…/{movieId}/` alike),
            // so bucket values never run into file names.
            let separator = if bucket.is_empty() || bucket.ends_with('/') {
                ""
            } else {
                "/"
            };
            let key = format!(
                "{bucket}{separator}{}",
                object_name(&self.instance, self.epoch, self.next_part, self.extension)
            );
            self.next_part += 1;
            let object = self.store.create(&key)?;
            let writer = row_writer(&self.settings.encoding, &self.projection, object)
                .map_err(|e| ConnectorError::internal(format!("starting a file: {e}")))?;
            self.open.insert(
                bucket.to_string(),
                OpenFile {
                    writer,
                    opened_ms: self.clock.now_ms(),
                    last_write_ms: self.clock.now_ms(),
                    last_used: 0,
                    rows: 0,
                },
            );
        }
        self.uses += 1;
        let uses = self.uses;
        let file = self
            .open
            .get_mut(bucket)
            .ok_or_else(|| ConnectorError::internal("open file vanished"))?;
        file.last_used = uses;
        Ok(file)
    }

    /// Closes the file of `bucket`: published now without checkpoints, else kept for the
    /// next checkpoint.
    fn roll(&mut self, bucket: &str) -> Result<(), ConnectorError> {
        self.roll_many(vec![bucket.to_string()])
    }

    /// Closes the files of `buckets` as [`Self::roll`] does, preparing (or committing) several
    /// at once: a completed time bucket or a checkpoint closes one file per bucket of fields,
    /// and each is a request or two to the store (see [`CONCURRENT_OBJECTS`]).
    fn roll_many(&mut self, buckets: Vec<String>) -> Result<(), ConnectorError> {
        let mut finished = Vec::with_capacity(buckets.len());
        for bucket in buckets {
            let Some(file) = self.open.remove(&bucket) else {
                continue;
            };
            let object = file
                .writer
                .finish()
                .map_err(|e| self.io("finishing a file", &e))?;
            finished.push((object, file.rows));
        }
        let (checkpointing, metrics) = (self.checkpointing, &*self.metrics);
        let prepared = in_parallel(finished, CONCURRENT_OBJECTS, |_, (object, rows)| {
            if checkpointing {
                let mut pending = object.prepare()?;
                pending.rows = rows;
                Ok(Some(pending))
            } else {
                let published = object.commit()?;
                metrics.rows_published(rows, published.bytes, 1);
                Ok(None)
            }
        })?;
        self.closed.extend(prepared.into_iter().flatten());
        Ok(())
    }

    fn roll_all(&mut self) -> Result<(), ConnectorError> {
        let mut buckets: Vec<String> = self.open.keys().cloned().collect();
        buckets.sort();
        self.roll_many(buckets)
    }

    fn io(&self, what: &str, e: &std::io::Error) -> ConnectorError {
        ConnectorError::io(&format!("{what} under {}", self.store.describe()), e)
    }

    /// Writes rows to the bucket's file in slices sized to the room left under `max_bytes`
    /// (by the average row size so far), rolling to a new file whenever one is full, so files
    /// end close to the limit even when a batch is much larger.
    fn write_bucket(
        &mut self,
        bucket: &str,
        batch: &Batch,
        rows: &[u32],
    ) -> Result<(), ConnectorError> {
        let max_bytes = self.settings.rolling.max_bytes;
        let now = self.clock.now_ms();
        let mut rest = rows;
        while !rest.is_empty() {
            let average = self.average_row_bytes.max(1);
            let file = self.file_for(bucket)?;
            file.last_write_ms = now;
            let room = max_bytes.saturating_sub(file.writer.bytes_written());
            let take = ((room / average) as usize)
                .clamp(1, ROLL_CHECK_ROWS)
                .min(rest.len());
            let (slice, tail) = rest.split_at(take);
            rest = tail;
            let before = file.writer.bytes_written();
            let result = file.writer.write_rows(batch, slice);
            let after = file.writer.bytes_written();
            file.rows += slice.len() as u64;
            let full = after >= max_bytes;
            result.map_err(|e| self.io("writing", &e))?;
            // Headers and footers make the first rows of a file look larger; a running
            // average over all files keeps the estimate close.
            self.average_row_bytes =
                (self.average_row_bytes * 7 + (after - before) / take as u64) / 8;
            self.metrics.rows_written(slice.len() as u64);
            if full {
                self.roll(bucket)?;
            }
        }
        Ok(())
    }

    /// The time bucket directory of a bucket path (its first levels, up to the last time
    /// placeholder).
    fn time_prefix<'b>(&self, bucket: &'b str) -> Option<&'b str> {
        let depth = self.time_depth?;
        let mut end = 0;
        for _ in 0..depth {
            end += bucket[end..].find('/')? + 1;
        }
        Some(&bucket[..end])
    }

    /// Learns how far rows' event times run ahead of the time fields (see [`TimeLevel`]).
    fn learn_leads(&mut self, batch: &Batch) {
        if batch.times.len() != batch.num_rows {
            return;
        }
        for level in &mut self.time_levels {
            let column = &batch.columns[level.column];
            let (ColumnData::Int(values) | ColumnData::Timestamp(values)) = &column.data else {
                continue;
            };
            let mut lead = level.lead_ms.unwrap_or(i64::MIN);
            for (row, (&time, &value)) in batch.times.iter().zip(values).enumerate() {
                if !column.is_null(row) {
                    lead = lead.max(time.saturating_sub(value.saturating_mul(level.epoch_unit_ms)));
                }
            }
            if lead != i64::MIN {
                level.lead_ms = Some(lead);
            }
        }
    }

    /// Notes the time bucket of `bucket` (rendered from `row`) as open.
    fn track_time_bucket(&mut self, bucket: &str, batch: &Batch, row: usize) {
        let Some(prefix) = self.time_prefix(bucket) else {
            return;
        };
        if self.time_buckets.contains_key(prefix) {
            return;
        }
        let ends = self
            .time_levels
            .iter()
            .map(|level| {
                let column = &batch.columns[level.column];
                match &column.data {
                    ColumnData::Int(v) | ColumnData::Timestamp(v) if !column.is_null(row) => {
                        path_template::bucket_end(
                            v[row].saturating_mul(level.epoch_unit_ms),
                            level.unit,
                        )
                    }
                    _ => i64::MAX,
                }
            })
            .collect();
        self.time_buckets.insert(prefix.to_string(), ends);
    }

    /// Whether no more rows can come for a time bucket whose levels end at `ends`.
    fn complete(&self, ends: &[i64], watermark: i64) -> bool {
        watermark == MAX_WATERMARK
            || self.time_levels.iter().zip(ends).all(|(level, &end)| {
                level
                    .lead_ms
                    .is_some_and(|lead| watermark >= end.saturating_add(lead).saturating_sub(1))
            })
    }

    /// Writes the `_SUCCESS` marker of a time bucket directory (idempotent).
    fn write_marker(&self, prefix: &str) -> Result<(), ConnectorError> {
        let mut marker = self.store.create(&format!("{prefix}_SUCCESS"))?;
        marker
            .flush()
            .map_err(|e| self.io("writing a _SUCCESS marker", &e))?;
        marker.commit().map(|_| ())
    }

    /// After the run's last publish: uploads of this instance still open are orphans (a
    /// request whose answer was lost); remove them.
    fn remove_orphans(&self) -> Result<(), ConnectorError> {
        self.store.clean(&self.instance, &[], None).map(|_| ())
    }

    /// What is at the destination already, on a fresh start.
    fn apply_if_exists(&self, policy: IfExists) -> Result<(), ConnectorError> {
        if policy == IfExists::Append {
            return Ok(());
        }
        let existing = self.store.existing(3)?;
        if existing.is_empty() {
            return Ok(());
        }
        match policy {
            IfExists::Fail => Err(ConnectorError::user(format!(
                "{} already holds files (e.g. {}): a new run would mix its rows with theirs. \
                 Write to an empty location, or pass `--if-exists overwrite` to delete them \
                 first, or `--if-exists append` to add to them",
                self.store.describe(),
                existing.join(", ")
            ))),
            IfExists::Overwrite => self.store.delete_all().map(|_| ()),
            IfExists::Append => Ok(()),
        }
    }
}

impl Sink for ObjectSink {
    fn start(&mut self, start: &SinkStart) -> Result<(), ConnectorError> {
        self.instance = start.instance.clone();
        self.epoch = start.epoch;
        self.checkpointing = start.checkpointing;
        self.store.check()?;
        match &start.restored {
            Some(restored) => {
                // A crash may have come between the checkpoint and its publish.
                let store = &*self.store;
                in_parallel(
                    restored.pending.iter().collect(),
                    CONCURRENT_OBJECTS,
                    |_, object| store.publish(object),
                )?;
                self.store.sync_published()?;
                if !restored.state.is_empty() {
                    let markers = read_state(&restored.state, |r| {
                        let n = r.count(1)?;
                        (0..n).map(|_| r.string()).collect::<Result<Vec<_>, _>>()
                    })
                    .map_err(|e| ConnectorError::internal(format!("restoring the sink: {e}")))?;
                    for prefix in markers {
                        self.write_marker(&prefix)?;
                    }
                }
                let after = start.rolled_back.then(|| start.epoch.saturating_sub(1));
                self.store.clean(&self.instance, &[], after)?;
            }
            None => {
                if start.checkpointing {
                    // Attempts that never completed a checkpoint left only hidden files.
                    self.store.clean(&self.instance, &[], None)?;
                }
                self.apply_if_exists(start.if_exists)?;
            }
        }
        Ok(())
    }

    fn write(&mut self, batch: Batch) -> Result<(), ConnectorError> {
        if !self.time_levels.is_empty() {
            self.learn_leads(&batch);
        }
        if self.template.is_static() {
            let rows: Vec<u32> = (0..batch.num_rows as u32).collect();
            let mut bucket = String::new();
            self.template.render_into(&batch.columns, 0, &mut bucket);
            return self.write_bucket(&bucket, &batch, &rows);
        }
        // Group rows by the values the template reads, then render each bucket once.
        let columns: Vec<&Column> = self
            .template_columns
            .iter()
            .map(|&c| &batch.columns[c])
            .collect();
        // Buckets go in order of first appearance; the map only finds them (a fast hash: this
        // runs once per row).
        let mut groups: HashMap<Vec<u8>, usize, foldhash::fast::FixedState> =
            HashMap::with_hasher(foldhash::fast::FixedState::default());
        let mut buckets: Vec<(u32, Vec<u32>)> = Vec::new();
        for row in 0..batch.num_rows {
            self.key_buf.clear();
            for c in &columns {
                crate::data::key::encode_value(c, row, &mut self.key_buf);
            }
            match groups.get(self.key_buf.as_slice()) {
                Some(&g) => buckets[g].1.push(row as u32),
                None => {
                    groups.insert(self.key_buf.clone(), buckets.len());
                    buckets.push((row as u32, vec![row as u32]));
                }
            }
        }
        for (first, rows) in buckets {
            let mut path = std::mem::take(&mut self.path_buf);
            self.template
                .render_into(&batch.columns, first as usize, &mut path);
            self.track_time_bucket(&path, &batch, first as usize);
            let result = self.write_bucket(&path, &batch, &rows);
            self.path_buf = path;
            result?;
        }
        Ok(())
    }

    fn on_tick(&mut self, now_ms: i64) -> Result<(), ConnectorError> {
        let max_age = self.settings.rolling.max_age_ms;
        let inactivity = self.settings.rolling.inactivity_ms.unwrap_or(i64::MAX);
        let expired: Vec<String> = self
            .open
            .iter()
            .filter(|(_, f)| {
                now_ms - f.opened_ms >= max_age || now_ms - f.last_write_ms >= inactivity
            })
            .map(|(k, _)| k.clone())
            .collect();
        self.roll_many(expired)
    }

    fn on_watermark(&mut self, watermark: i64) -> Result<(), ConnectorError> {
        let mut done: Vec<String> = self
            .time_buckets
            .iter()
            .filter(|(_, ends)| self.complete(ends, watermark))
            .map(|(prefix, _)| prefix.clone())
            .collect();
        if done.is_empty() {
            return Ok(());
        }
        done.sort();
        for prefix in &done {
            self.time_buckets.remove(prefix);
        }
        let mut files: Vec<String> = self
            .open
            .keys()
            .filter(|b| {
                self.time_prefix(b)
                    .is_some_and(|p| done.binary_search_by(|d| d.as_str().cmp(p)).is_ok())
            })
            .cloned()
            .collect();
        files.sort();
        self.roll_many(files)?;
        if self.settings.success_marker {
            if self.checkpointing {
                self.closed_markers.extend(done);
            } else {
                for prefix in &done {
                    self.write_marker(prefix)?;
                }
            }
        }
        Ok(())
    }

    fn prepare(&mut self, epoch: u64, end_of_input: bool) -> Result<SinkSnapshot, ConnectorError> {
        // Every open file closes at a checkpoint, so a checkpoint's objects are complete
        // files (as Flink's bulk formats roll on checkpoint).
        self.roll_all()?;
        self.store.sync()?;
        let pending = std::mem::take(&mut self.closed);
        self.prepared.insert(epoch, pending.clone());
        // Markers are published after the files; a restart writes them again from here.
        let markers = std::mem::take(&mut self.closed_markers);
        let mut state = Vec::new();
        if !markers.is_empty() {
            let mut w = StateWriter::new();
            w.usize(markers.len());
            for m in &markers {
                w.str(m);
            }
            state = w.into_bytes();
            self.prepared_markers.insert(epoch, markers);
        }
        if end_of_input {
            self.final_epoch = Some(epoch);
        }
        // Files opened from now on belong to the next checkpoint.
        self.epoch = epoch + 1;
        self.next_part = 0;
        Ok(SinkSnapshot { pending, state })
    }

    fn commit(&mut self, epoch: u64) -> Result<(), ConnectorError> {
        let done: Vec<u64> = self.prepared.range(..=epoch).map(|(e, _)| *e).collect();
        for e in done {
            if let Some(objects) = self.prepared.remove(&e) {
                self.publish(&objects)?;
            }
            for prefix in self.prepared_markers.remove(&e).unwrap_or_default() {
                self.write_marker(&prefix)?;
            }
        }
        if self.final_epoch.is_some_and(|f| f <= epoch) {
            self.remove_orphans()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), ConnectorError> {
        self.roll_all()?;
        self.remove_orphans()
    }

    fn abort(&mut self) {
        // Open writers discard their files when dropped. Files prepared for a checkpoint
        // that did not complete are leftovers: the next start removes them (they carry this
        // instance's id); without checkpoints nothing is prepared.
        let open: u64 = self.open.values().map(|f| f.rows).sum();
        self.open.clear();
        let unpublished: u64 = self
            .closed
            .iter()
            .chain(self.prepared.values().flatten())
            .map(|p| p.rows)
            .sum();
        self.metrics.rows_discarded(open + unpublished);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::config::SinkConfig;
    use crate::data::{DataType, Field, Schema};
    use crate::plan::connectors::SinkConnector;

    fn sink(dir: &std::path::Path, clock: Arc<ManualClock>, rolling: &str) -> ObjectSink {
        let config: SinkConfig = serde_json::from_str(&format!(
            r#"{{"type": "s3", "inputs": ["x"], "url": "file://{}/", "path": "{{k}}/", "format": "csv", "rolling": {rolling}}}"#,
            dir.display()
        ))
        .unwrap();
        let SinkConnector::Object(settings) = crate::plan::connectors::sink(&config) else {
            unreachable!()
        };
        let schema = Schema::new(vec![Field::new("k", DataType::String)]);
        let template = PathTemplate::parse("{k}/", &schema, true).unwrap();
        let projection = Projection {
            columns: vec![0],
            fields: schema.fields.clone(),
        };
        ObjectSink::new(
            &settings,
            template,
            projection,
            super::super::store::open(&settings.url, &Default::default(), None).unwrap(),
            Arc::new(Metrics::new(vec![])),
            clock,
        )
    }

    fn batch(keys: &[&str]) -> Batch {
        let mut c = Column::new(&DataType::String, keys.len());
        for k in keys {
            c.push_str(k);
        }
        Batch::new(vec![c], keys.len())
    }

    fn visible(dir: &std::path::Path) -> usize {
        files(dir).iter().filter(|n| !n.starts_with('.')).count()
    }

    fn files(dir: &std::path::Path) -> Vec<String> {
        let mut names = Vec::new();
        for bucket in std::fs::read_dir(dir).unwrap().flatten() {
            if let Ok(entries) = std::fs::read_dir(bucket.path()) {
                for f in entries.flatten() {
                    names.push(f.file_name().to_string_lossy().to_string());
                }
            }
        }
        names.sort();
        names
    }

    fn start(instance: &str, checkpointing: bool) -> SinkStart {
        SinkStart {
            instance: instance.to_string(),
            epoch: u64::from(checkpointing),
            checkpointing,
            ..SinkStart::default()
        }
    }

    #[test]
    fn files_roll_by_age_and_by_open_file_count() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(0);
        let mut s = sink(
            dir.path(),
            clock.clone(),
            r#"{"max_age": "1m", "max_open_files": 2}"#,
        );
        s.start(&start("run", false)).unwrap();
        s.write(batch(&["a", "b"])).unwrap();
        assert_eq!(
            visible(dir.path()),
            0,
            "open files are hidden until complete"
        );
        clock.advance(30_000);
        s.on_tick(clock.now_ms()).unwrap();
        assert_eq!(visible(dir.path()), 0);
        clock.advance(30_000);
        s.on_tick(clock.now_ms()).unwrap();
        assert_eq!(visible(dir.path()), 2, "both files are a minute old");
        // A third bucket with two open: the least recently written closes.
        s.write(batch(&["a", "b", "c"])).unwrap();
        assert_eq!(visible(dir.path()), 3);
        s.finish().unwrap();
        assert_eq!(visible(dir.path()), 5);
    }

    #[test]
    fn with_checkpoints_files_appear_only_when_their_checkpoint_completes() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(0);
        let mut s = sink(dir.path(), clock.clone(), r#"{"max_open_files": 1}"#);
        s.start(&start("job", true)).unwrap();
        // Rolled by the open-file limit, but not published before the checkpoint.
        s.write(batch(&["a", "b"])).unwrap();
        assert_eq!(visible(dir.path()), 0);
        let snapshot = s.prepare(1, false).unwrap();
        assert_eq!(snapshot.pending.len(), 2);
        assert_eq!(visible(dir.path()), 0, "prepared is still invisible");
        s.commit(1).unwrap();
        assert_eq!(
            files(dir.path()),
            vec!["part-job-00001-0000.csv", "part-job-00001-0001.csv"]
        );
        // Files after checkpoint 1 belong to epoch 2.
        s.write(batch(&["a"])).unwrap();
        let snapshot = s.prepare(2, false).unwrap();
        assert_eq!(snapshot.pending[0].rows, 1);
        assert!(
            snapshot.pending[0]
                .name
                .ends_with("a/part-job-00002-0000.csv")
        );
    }

    #[test]
    fn a_restart_publishes_the_checkpoint_again_and_removes_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(0);
        let mut s = sink(dir.path(), clock.clone(), "{}");
        s.start(&start("job", true)).unwrap();
        s.write(batch(&["a"])).unwrap();
        let checkpoint = s.prepare(1, false).unwrap();
        // Crash after the checkpoint was written, before the publish; and a file of the
        // next epoch half written.
        s.write(batch(&["b"])).unwrap();
        std::mem::forget(s);
        assert_eq!(visible(dir.path()), 0);
        assert_eq!(files(dir.path()).len(), 2, "two hidden files");
        let mut again = sink(dir.path(), clock, "{}");
        let restart = SinkStart {
            instance: "job".into(),
            epoch: 2,
            checkpointing: true,
            restored: Some(checkpoint.clone()),
            ..SinkStart::default()
        };
        again.start(&restart).unwrap();
        assert_eq!(files(dir.path()), vec!["part-job-00001-0000.csv"]);
        // Publishing twice (a second crash right after the first restart) changes nothing.
        let mut third = sink(dir.path(), ManualClock::new(0), "{}");
        third.start(&restart).unwrap();
        assert_eq!(files(dir.path()), vec!["part-job-00001-0000.csv"]);
    }

    #[test]
    fn a_fresh_run_refuses_to_mix_with_earlier_output_unless_told() {
        let dir = tempfile::tempdir().unwrap();
        let mut first = sink(dir.path(), ManualClock::new(0), "{}");
        first.start(&start("one", false)).unwrap();
        first.write(batch(&["a"])).unwrap();
        first.finish().unwrap();
        let mut second = sink(dir.path(), ManualClock::new(0), "{}");
        let e = second.start(&start("two", false)).unwrap_err();
        assert!(e.message.contains("already holds files"), "{e}");
        assert!(e.message.contains("a/part-one-00000-0000.csv"), "{e}");
        let mut append = sink(dir.path(), ManualClock::new(0), "{}");
        append
            .start(&SinkStart {
                if_exists: IfExists::Append,
                ..start("two", false)
            })
            .unwrap();
        let mut overwrite = sink(dir.path(), ManualClock::new(0), "{}");
        overwrite
            .start(&SinkStart {
                if_exists: IfExists::Overwrite,
                ..start("three", false)
            })
            .unwrap();
        assert_eq!(
            visible(dir.path()),
            0,
            "overwrite removed the earlier files"
        );
    }

    #[test]
    fn an_unwritable_destination_fails_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let mut s = sink(&blocker.join("out"), ManualClock::new(0), "{}");
        let e = s.start(&start("x", false)).unwrap_err();
        assert!(e.message.contains("creating the directory"), "{e}");
    }

    #[test]
    fn a_time_bucket_closes_when_the_watermark_passes_its_end_and_gets_a_marker() {
        let dir = tempfile::tempdir().unwrap();
        let config: SinkConfig = serde_json::from_str(&format!(
            r#"{{"type": "s3", "inputs": ["x"], "url": "file://{}/", "path": "{{t:%Y-%m-%d--%H}}/{{k}}/", "format": "csv", "success_marker": true, "rolling": {{"inactivity": "1m"}}}}"#,
            dir.path().display()
        ))
        .unwrap();
        let SinkConnector::Object(settings) = crate::plan::connectors::sink(&config) else {
            unreachable!()
        };
        let schema = Schema::new(vec![
            Field::new("t", DataType::Timestamp),
            Field::new("k", DataType::String),
        ]);
        let template = PathTemplate::parse("{t:%Y-%m-%d--%H}/{k}/", &schema, true).unwrap();
        let projection = Projection {
            columns: vec![0, 1],
            fields: schema.fields.clone(),
        };
        let clock = ManualClock::new(0);
        let mut s = ObjectSink::new(
            &settings,
            template,
            projection,
            super::super::store::open(&settings.url, &Default::default(), None).unwrap(),
            Arc::new(Metrics::new(vec![])),
            clock.clone(),
        );
        s.start(&start("run", false)).unwrap();
        let hour = 1_546_844_400_000; // 2019-01-07 07:00
        let rows = |rows: &[(i64, &str)]| {
            let mut t = Column::new(&DataType::Timestamp, rows.len());
            let mut k = Column::new(&DataType::String, rows.len());
            for (time, key) in rows {
                t.push_value(&crate::data::Value::Timestamp(*time));
                k.push_str(key);
            }
            let mut b = Batch::new(vec![t, k], rows.len());
            b.times = rows.iter().map(|(time, _)| *time).collect();
            b
        };
        s.write(rows(&[(hour + 600_000, "a"), (hour + 3_000_000, "b")]))
            .unwrap();
        s.write(rows(&[(hour + 3_700_000, "a")])).unwrap();
        let published = |bucket: &str| {
            files(&dir.path().join(bucket))
                .iter()
                .filter(|n| !n.starts_with('.'))
                .count()
        };
        s.on_watermark(hour + 3_600_000 - 2).unwrap();
        assert_eq!(published("2019-01-07--07"), 0, "07:00 is not over yet");
        s.on_watermark(hour + 3_600_000 - 1).unwrap();
        let seven = dir.path().join("2019-01-07--07");
        assert!(seven.join("_SUCCESS").exists());
        assert_eq!(published("2019-01-07--07"), 2, "a/ and b/ published");
        assert!(!dir.path().join("2019-01-07--08/_SUCCESS").exists());
        // The 08:00 file closes after a minute without writes; no marker before the hour ends.
        clock.advance(60_000);
        s.on_tick(clock.now_ms()).unwrap();
        assert_eq!(published("2019-01-07--08"), 1);
        assert!(!dir.path().join("2019-01-07--08/_SUCCESS").exists());
        s.on_watermark(MAX_WATERMARK).unwrap();
        assert!(dir.path().join("2019-01-07--08/_SUCCESS").exists());
    }
}
