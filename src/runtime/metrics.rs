//! Counters of a running pipeline, shared between the engine thread, source threads and the
//! progress display. Plain atomics: the hot paths only add.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use super::MIN_WATERMARK;

/// Per-source counters.
#[derive(Debug, Default)]
pub struct SourceMetrics {
    pub name: String,
    pub records: AtomicU64,
    pub bytes: AtomicU64,
    /// Bytes the source will read in total, when known (bounded files): drives the ETA.
    pub total_bytes: AtomicU64,
    /// Records the source will produce in total, when known (a bounded generator).
    pub total_records: AtomicU64,
    pub finished: std::sync::atomic::AtomicBool,
}

/// Late events of one window stage. An event is late for a window when the watermark passed
/// the window's end (plus the allowed lateness) before the event came; an event of a sliding
/// window can be late for some of its windows and still count in the others.
#[derive(Debug, Default)]
pub struct LateStage {
    pub stage: String,
    /// Whether the stage sends late events to a stream (`late.to`).
    pub routed: bool,
    /// Events late for at least one of their windows.
    pub events: AtomicU64,
    /// Of those, events late for only some of their windows (they count in the others).
    pub partial: AtomicU64,
    /// Windows that missed an event: one per (late event, window it was late for).
    pub contributions: AtomicU64,
    first: Mutex<Option<LateEvent>>,
}

/// One late event: when it happened, the window it missed, and the watermark it met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LateEvent {
    pub event_time: i64,
    pub window_start: i64,
    pub window_end: i64,
    pub watermark: i64,
}

impl LateStage {
    /// Counts late events: `events` late ones, `partial` of them late for only some of their
    /// windows, `contributions` windows missed in all; `first` is the first of them.
    pub fn add(&self, events: u64, partial: u64, contributions: u64, first: LateEvent) {
        self.events.fetch_add(events, Relaxed);
        self.partial.fetch_add(partial, Relaxed);
        self.contributions.fetch_add(contributions, Relaxed);
        if let Ok(mut f) = self.first.lock()
            && f.is_none()
        {
            *f = Some(first);
        }
    }

    /// The stage's first late event, if any.
    pub fn first(&self) -> Option<LateEvent> {
        self.first.lock().ok().and_then(|f| *f)
    }
}

/// Counters of one run.
#[derive(Debug)]
pub struct Metrics {
    pub sources: Vec<SourceMetrics>,
    pub bad_records: AtomicU64,
    /// Late events, per window stage (in plan order).
    late_stages: Mutex<Vec<std::sync::Arc<LateStage>>>,
    /// The lowest watermark among the sources (ms), `MIN_WATERMARK` before any.
    pub watermark: AtomicI64,
    /// The newest event time seen (ms), for the watermark lag.
    pub max_event_time: AtomicI64,
    pub open_windows: AtomicU64,
    /// Groups (one key in one window or session) open across window stages, now and at most
    /// during the run: what window state memory follows.
    pub open_groups: AtomicU64,
    pub peak_open_groups: AtomicU64,
    /// Rows published by sinks (visible to readers), and rows written but not published yet.
    pub records_out: AtomicU64,
    pub records_pending: AtomicU64,
    pub files_committed: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Checkpoints completed by this run, and the newest one.
    pub checkpoints: AtomicU64,
    /// Total and longest engine pause for checkpoints (ms).
    pub checkpoint_pause_total_ms: AtomicU64,
    pub checkpoint_pause_max_ms: AtomicU64,
    last_checkpoint: Mutex<Option<CheckpointInfo>>,
    /// The first bad record's error and stage, to show in reports.
    first_bad: Mutex<Option<(String, String)>>,
}

/// The newest completed checkpoint, for progress and summaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointInfo {
    pub id: u64,
    pub bytes: u64,
    /// How long the engine paused to take it (ms).
    pub pause_ms: u64,
    /// When it completed (ms since the epoch, wall clock).
    pub at_ms: i64,
}

impl Metrics {
    pub fn new(source_names: Vec<String>) -> Metrics {
        Metrics {
            sources: source_names
                .into_iter()
                .map(|name| SourceMetrics {
                    name,
                    ..SourceMetrics::default()
                })
                .collect(),
            bad_records: AtomicU64::new(0),
            late_stages: Mutex::new(Vec::new()),
            watermark: AtomicI64::new(MIN_WATERMARK),
            max_event_time: AtomicI64::new(MIN_WATERMARK),
            open_windows: AtomicU64::new(0),
            open_groups: AtomicU64::new(0),
            peak_open_groups: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            records_pending: AtomicU64::new(0),
            files_committed: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
            checkpoint_pause_total_ms: AtomicU64::new(0),
            checkpoint_pause_max_ms: AtomicU64::new(0),
            last_checkpoint: Mutex::new(None),
            first_bad: Mutex::new(None),
        }
    }

    pub fn add_bad(&self, n: u64, error: &str, component: &str) {
        self.bad_records.fetch_add(n, Relaxed);
        if let Ok(mut first) = self.first_bad.lock()
            && first.is_none()
        {
            *first = Some((component.to_string(), error.to_string()));
        }
    }

    /// Registers window stage `stage` and returns its late-event counters.
    pub fn late_stage(&self, stage: &str, routed: bool) -> std::sync::Arc<LateStage> {
        let stage = std::sync::Arc::new(LateStage {
            stage: stage.to_string(),
            routed,
            ..LateStage::default()
        });
        if let Ok(mut stages) = self.late_stages.lock() {
            stages.push(stage.clone());
        }
        stage
    }

    /// Every window stage's late-event counters, in plan order.
    pub fn late_stages(&self) -> Vec<std::sync::Arc<LateStage>> {
        self.late_stages
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    pub fn checkpoint_completed(&self, info: CheckpointInfo) {
        self.checkpoints.fetch_add(1, Relaxed);
        self.checkpoint_pause_total_ms
            .fetch_add(info.pause_ms, Relaxed);
        self.checkpoint_pause_max_ms
            .fetch_max(info.pause_ms, Relaxed);
        if let Ok(mut last) = self.last_checkpoint.lock() {
            *last = Some(info);
        }
    }

    pub fn last_checkpoint(&self) -> Option<CheckpointInfo> {
        self.last_checkpoint.lock().ok().and_then(|l| *l)
    }

    /// Rows a sink wrote that are not visible yet.
    pub fn rows_written(&self, rows: u64) {
        self.records_pending.fetch_add(rows, Relaxed);
    }

    /// Rows (and bytes, files) a sink made visible, out of those counted as written.
    pub fn rows_published(&self, rows: u64, bytes: u64, files: u64) {
        let _ = self
            .records_pending
            .fetch_update(Relaxed, Relaxed, |p| Some(p.saturating_sub(rows)));
        self.records_out.fetch_add(rows, Relaxed);
        self.bytes_out.fetch_add(bytes, Relaxed);
        self.files_committed.fetch_add(files, Relaxed);
    }

    /// Rows a sink wrote and then discarded (an aborted run).
    pub fn rows_discarded(&self, rows: u64) {
        let _ = self
            .records_pending
            .fetch_update(Relaxed, Relaxed, |p| Some(p.saturating_sub(rows)));
    }

    /// The first bad record seen: (stage, error).
    pub fn first_bad(&self) -> Option<(String, String)> {
        self.first_bad.lock().ok().and_then(|f| f.clone())
    }

    /// How far the sources are through their input (0–1), when every source knows its size.
    fn progress(&self) -> Option<f64> {
        let mut sum = 0.0;
        for s in &self.sources {
            let (bytes, records) = (s.total_bytes.load(Relaxed), s.total_records.load(Relaxed));
            sum += if bytes > 0 {
                s.bytes.load(Relaxed) as f64 / bytes as f64
            } else if records > 0 {
                s.records.load(Relaxed) as f64 / records as f64
            } else {
                return None;
            };
        }
        (!self.sources.is_empty()).then(|| (sum / self.sources.len() as f64).min(1.0))
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            records_in: self.sources.iter().map(|s| s.records.load(Relaxed)).sum(),
            bytes_in: self.sources.iter().map(|s| s.bytes.load(Relaxed)).sum(),
            progress: self.progress(),
            bad_records: self.bad_records.load(Relaxed),
            watermark: self.watermark.load(Relaxed),
            max_event_time: self.max_event_time.load(Relaxed),
            open_windows: self.open_windows.load(Relaxed),
            peak_open_groups: self.peak_open_groups.load(Relaxed),
            records_out: self.records_out.load(Relaxed),
            records_pending: self.records_pending.load(Relaxed),
            checkpoints: self.checkpoints.load(Relaxed),
            files_committed: self.files_committed.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
        }
    }
}

/// A consistent-enough copy of the counters, for display.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Snapshot {
    pub records_in: u64,
    pub bytes_in: u64,
    /// How far through the input (0–1); `None` for unbounded sources.
    pub progress: Option<f64>,
    pub bad_records: u64,
    pub watermark: i64,
    pub max_event_time: i64,
    pub open_windows: u64,
    pub peak_open_groups: u64,
    pub records_out: u64,
    pub records_pending: u64,
    pub checkpoints: u64,
    pub files_committed: u64,
    pub bytes_out: u64,
}
