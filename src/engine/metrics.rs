//! Counters of a running pipeline, shared between the engine thread, source threads and the
//! progress display. Plain atomics: the hot paths only add.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use super::watermark::MIN_WATERMARK;

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

/// Counters of one run.
#[derive(Debug)]
pub struct Metrics {
    pub sources: Vec<SourceMetrics>,
    pub bad_records: AtomicU64,
    pub late_records: AtomicU64,
    /// Late records that went to no late stream (counted only).
    pub late_dropped: AtomicU64,
    /// The lowest watermark among the sources (ms), `MIN_WATERMARK` before any.
    pub watermark: AtomicI64,
    /// The newest event time seen (ms), for the watermark lag.
    pub max_event_time: AtomicI64,
    pub open_windows: AtomicU64,
    pub records_out: AtomicU64,
    pub files_committed: AtomicU64,
    pub bytes_out: AtomicU64,
    /// The first bad record's error and stage, to show in reports.
    first_bad: Mutex<Option<(String, String)>>,
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
            late_records: AtomicU64::new(0),
            late_dropped: AtomicU64::new(0),
            watermark: AtomicI64::new(MIN_WATERMARK),
            max_event_time: AtomicI64::new(MIN_WATERMARK),
            open_windows: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            files_committed: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
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
            late_records: self.late_records.load(Relaxed),
            late_dropped: self.late_dropped.load(Relaxed),
            watermark: self.watermark.load(Relaxed),
            max_event_time: self.max_event_time.load(Relaxed),
            open_windows: self.open_windows.load(Relaxed),
            records_out: self.records_out.load(Relaxed),
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
    pub late_records: u64,
    pub late_dropped: u64,
    pub watermark: i64,
    pub max_event_time: i64,
    pub open_windows: u64,
    pub records_out: u64,
    pub files_committed: u64,
    pub bytes_out: u64,
}
