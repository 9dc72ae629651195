//! The bucketed object sink (`type: s3`): rows go to files under `url`, in buckets named by
//! the path template; a file closes ("rolls") when it reaches `max_bytes`, when it has been open
//! `max_age`, when too many are open (least recently written first), and at the end of the
//! run. Closed files become visible atomically through the [`ObjectStore`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use super::path_template::PathTemplate;
use super::store::{ObjectStore, ObjectWriter};
use crate::clock::Clock;
use crate::config::sink::ObjectSink as ObjectSinkConfig;
use crate::data::{Batch, Column};
use crate::engine::metrics::Metrics;
use crate::engine::operator::{Emitter, EngineError, Operator, Result};
use crate::engine::window::keys::encode_value;
use crate::format::encode::{EncodeOptions, Projection, RowWriter, row_writer};

const DEFAULT_MAX_BYTES: u64 = 128 << 20;
const DEFAULT_MAX_AGE_MS: i64 = 15 * 60 * 1000;
const DEFAULT_MAX_OPEN: usize = 64;
/// Rows written between two checks of a file's size against `max_bytes`.
const ROLL_CHECK_ROWS: usize = 512;

type Writer = Box<dyn RowWriter<Box<dyn ObjectWriter>>>;

struct OpenFile {
    writer: Writer,
    opened_ms: i64,
    /// Order of last use, for closing the least recently written file first.
    last_used: u64,
}

pub struct ObjectSink {
    name: String,
    store: Box<dyn ObjectStore>,
    template: PathTemplate,
    /// Input columns the template reads (to group rows by bucket cheaply).
    template_columns: Vec<usize>,
    projection: Projection,
    encode: EncodeOptions,
    extension: &'static str,
    max_bytes: u64,
    max_age_ms: i64,
    max_open: usize,
    open: HashMap<String, OpenFile>,
    run_id: String,
    next_part: u64,
    uses: u64,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    key_buf: Vec<u8>,
    path_buf: String,
    /// Running estimate of encoded bytes per row, for slicing writes under `max_bytes`.
    average_row_bytes: u64,
}

impl ObjectSink {
    pub fn new(
        name: &str,
        config: &ObjectSinkConfig,
        template: PathTemplate,
        projection: Projection,
        store: Box<dyn ObjectStore>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
    ) -> ObjectSink {
        let rolling = config.rolling.clone();
        let template_columns = template
            .segments
            .iter()
            .filter_map(|s| match s {
                super::path_template::Segment::Field { column, .. } => Some(*column),
                super::path_template::Segment::Literal(_) => None,
            })
            .collect();
        let run_id = format!(
            "{:08x}",
            (clock.now_ms() as u64 ^ (u64::from(std::process::id()) << 20)) as u32
        );
        ObjectSink {
            name: name.to_string(),
            store,
            template,
            template_columns,
            projection,
            encode: EncodeOptions {
                format: config.format,
                csv: config.csv.clone().unwrap_or_default(),
            },
            extension: config.format.extension(),
            max_bytes: rolling
                .as_ref()
                .and_then(|r| r.max_bytes)
                .map_or(DEFAULT_MAX_BYTES, |b| b.bytes),
            max_age_ms: rolling
                .as_ref()
                .and_then(|r| r.max_age)
                .map_or(DEFAULT_MAX_AGE_MS, |d| d.millis),
            max_open: rolling
                .as_ref()
                .and_then(|r| r.max_open_files)
                .map_or(DEFAULT_MAX_OPEN, |n| n as usize),
            open: HashMap::new(),
            run_id,
            next_part: 0,
            uses: 0,
            clock,
            metrics,
            key_buf: Vec::new(),
            path_buf: String::new(),
            average_row_bytes: 64,
        }
    }

    fn error(&self, what: &str, e: impl std::fmt::Display) -> EngineError {
        EngineError::Sink {
            component: self.name.clone(),
            message: format!("{what} under {}: {e}", self.store.describe()),
        }
    }

    /// The file of `bucket`, opening one (and closing the least recently used if too many
    /// are open).
    fn file_for(&mut self, bucket: &str) -> Result<&mut OpenFile> {
        if !self.open.contains_key(bucket) {
            if self.open.len() >= self.max_open
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
                "{bucket}{separator}part-{}-{:05}.{}",
                self.run_id, self.next_part, self.extension
            );
            self.next_part += 1;
            let object = self
                .store
                .create(&key)
                .map_err(|e| self.error(&format!("creating {key}"), e))?;
            let writer = row_writer(&self.encode, &self.projection, object)
                .map_err(|e| self.error("starting a file", e))?;
            self.open.insert(
                bucket.to_string(),
                OpenFile {
                    writer,
                    opened_ms: self.clock.now_ms(),
                    last_used: 0,
                },
            );
        }
        self.uses += 1;
        let uses = self.uses;
        let file = self
            .open
            .get_mut(bucket)
            .ok_or_else(|| EngineError::Internal("open file vanished".to_string()))?;
        file.last_used = uses;
        Ok(file)
    }

    /// Closes and commits the file of `bucket`.
    fn roll(&mut self, bucket: &str) -> Result<()> {
        let Some(file) = self.open.remove(bucket) else {
            return Ok(());
        };
        let object = file
            .writer
            .finish()
            .map_err(|e| self.error("finishing a file", e))?;
        let bytes = object
            .commit()
            .map_err(|e| self.error("committing a file", e))?;
        self.metrics.files_committed.fetch_add(1, Relaxed);
        self.metrics.bytes_out.fetch_add(bytes, Relaxed);
        Ok(())
    }

    /// Writes rows to the bucket's file in slices sized to the room left under `max_bytes`
    /// (by the average row size so far), rolling to a new file whenever one is full, so files
    /// end close to the limit even when a batch is much larger.
    fn write(&mut self, bucket: &str, batch: &Batch, rows: &[u32]) -> Result<()> {
        let max_bytes = self.max_bytes;
        let mut rest = rows;
        while !rest.is_empty() {
            let average = self.average_row_bytes.max(1);
            let file = self.file_for(bucket)?;
            let room = max_bytes.saturating_sub(file.writer.bytes_written());
            let take = ((room / average) as usize)
                .clamp(1, ROLL_CHECK_ROWS)
                .min(rest.len());
            let (slice, tail) = rest.split_at(take);
            rest = tail;
            let before = file.writer.bytes_written();
            let result = file.writer.write_rows(batch, slice);
            let after = file.writer.bytes_written();
            let full = after >= max_bytes;
            result.map_err(|e| self.error("writing", e))?;
            // Headers and footers make the first rows of a file look larger; a running
            // average over all files keeps the estimate close.
            self.average_row_bytes =
                (self.average_row_bytes * 7 + (after - before) / take as u64) / 8;
            self.metrics
                .records_out
                .fetch_add(slice.len() as u64, Relaxed);
            if full {
                self.roll(bucket)?;
            }
        }
        Ok(())
    }
}

impl Operator for ObjectSink {
    fn process(&mut self, _input: usize, batch: Batch, _out: &mut Emitter) -> Result<()> {
        if self.template.is_static() {
            let rows: Vec<u32> = (0..batch.num_rows as u32).collect();
            let mut bucket = String::new();
            self.template.render_into(&batch.columns, 0, &mut bucket);
            return self.write(&bucket, &batch, &rows);
        }
        // Group rows by the values the template reads, then render each bucket once.
        let columns: Vec<&Column> = self
            .template_columns
            .iter()
            .map(|&c| &batch.columns[c])
            .collect();
        let mut groups: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut buckets: Vec<(u32, Vec<u32>)> = Vec::new();
        for row in 0..batch.num_rows {
            self.key_buf.clear();
            for c in &columns {
                encode_value(c, row, &mut self.key_buf);
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
            let result = self.write(&path, &batch, &rows);
            self.path_buf = path;
            result?;
        }
        Ok(())
    }

    fn on_tick(&mut self, now_ms: i64, _out: &mut Emitter) -> Result<()> {
        let expired: Vec<String> = self
            .open
            .iter()
            .filter(|(_, f)| now_ms - f.opened_ms >= self.max_age_ms)
            .map(|(k, _)| k.clone())
            .collect();
        for bucket in expired {
            self.roll(&bucket)?;
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut Emitter) -> Result<()> {
        let mut buckets: Vec<String> = self.open.keys().cloned().collect();
        buckets.sort();
        for bucket in buckets {
            self.roll(&bucket)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::config::sink::OutputFormat;
    use crate::data::{DataType, Field, Schema};

    fn sink(dir: &std::path::Path, clock: Arc<ManualClock>, rolling: &str) -> ObjectSink {
        let config: ObjectSinkConfig = serde_json::from_str(&format!(
            r#"{{"inputs": ["x"], "url": "file://{}/", "path": "{{k}}/", "format": "csv", "rolling": {rolling}}}"#,
            dir.display()
        ))
        .unwrap();
        let schema = Schema::new(vec![Field::new("k", DataType::String)]);
        let template = PathTemplate::parse(&config.path, &schema, true).unwrap();
        let projection = Projection {
            columns: vec![0],
            fields: schema.fields.clone(),
        };
        assert_eq!(config.format, OutputFormat::Csv);
        ObjectSink::new(
            "out",
            &config,
            template,
            projection,
            super::super::store::open(&config.url).unwrap(),
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
        let mut n = 0;
        for bucket in std::fs::read_dir(dir).unwrap().flatten() {
            for f in std::fs::read_dir(bucket.path()).unwrap().flatten() {
                if !f.file_name().to_string_lossy().starts_with('.') {
                    n += 1;
                }
            }
        }
        n
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
        let mut out = Emitter::default();
        s.process(0, batch(&["a", "b"]), &mut out).unwrap();
        assert_eq!(
            visible(dir.path()),
            0,
            "open files are hidden until complete"
        );
        clock.advance(30_000);
        s.on_tick(clock.now_ms(), &mut out).unwrap();
        assert_eq!(visible(dir.path()), 0);
        clock.advance(30_000);
        s.on_tick(clock.now_ms(), &mut out).unwrap();
        assert_eq!(visible(dir.path()), 2, "both files are a minute old");
        // A third bucket with two open: the least recently written closes.
        s.process(0, batch(&["a", "b", "c"]), &mut out).unwrap();
        assert_eq!(visible(dir.path()), 3);
        s.finish(&mut out).unwrap();
        assert_eq!(visible(dir.path()), 5);
    }
}
