//! Event-time windows: tumbling and sliding ([`aligned`]) and session ([`session`]).
//!
//! Semantics (the contract the property tests check, and Flink's):
//! - A record belongs to the windows containing its event time; windows are epoch-aligned.
//! - A window `[start, end)` fires when the watermark reaches `end - 1`; it emits one row per
//!   group: `window_start, window_end, keys…, aggregates…`, with event time `end - 1`.
//! - A record is late for a window when `end - 1 + allowed_lateness <= watermark` at its
//!   arrival. It is added to the windows it is not late for; for each window it is late for,
//!   it is counted and (with a late output) sent there with that window's bounds, so a record
//!   late for only some of its sliding windows is never left out silently. With allowed
//!   lateness, a record arriving after its window fired (but within the lateness) re-emits
//!   that window's row for its group.

pub mod accumulators;
pub mod aligned;
pub mod keys;
pub mod session;

use std::sync::Arc;

use self::accumulators::Accumulators;
use self::keys::KeyCodec;
use super::operator::{BadRecordRouter, Emitter, Rejected, Result, eval_arg};
use crate::data::{Batch, Column, DataType, SchemaRef};
use crate::expr::{AggregateExprs, EvalError};
use crate::plan::WindowPlan;
use crate::runtime::metrics::{LateEvent, LateStage, Metrics};

/// Most rows in one output batch: a window of many groups is written as it is built, in
/// batches the sink works through while they are still in cache.
pub const OUTPUT_ROWS: usize = 8192;

/// What aligned and session windows share: keys, aggregates, output layout, late and bad
/// record handling.
pub struct WindowCore {
    pub name: String,
    pub plan: AggregateExprs,
    pub keys: KeyCodec,
    pub accs: Accumulators,
    pub input_schema: SchemaRef,
    pub lateness: i64,
    pub late_port: Option<usize>,
    pub bad: BadRecordRouter,
    pub metrics: Arc<Metrics>,
    /// This stage's late-event counters.
    pub late: Arc<LateStage>,
    /// Late events re-emit rows, numbered in a `revision` column (`emit: updates`).
    pub revisions: bool,
    /// How long after a window's end its rows are written (`emit: final`: the lateness).
    pub emit_delay: i64,
    /// Arrival sequence number of the next record (FIRST_VALUE/LAST_VALUE).
    pub seq: u64,
}

/// The late events of one batch, gathered while it is processed: one entry per window an
/// event was late for (an event of a sliding window may miss several, or only some, of its
/// windows).
#[derive(Debug, Default)]
pub struct LateRows {
    /// The batch row of each (event, missed window) pair.
    rows: Vec<u32>,
    /// The window each pair missed: (start, end).
    windows: Vec<(i64, i64)>,
    events: u64,
    partial: u64,
    first: Option<LateEvent>,
}

impl LateRows {
    /// Row `row` (event time `event_time`, arriving at `watermark`) was too late for
    /// `windows`; with `partial` it still counts in its other windows.
    pub fn push(
        &mut self,
        row: u32,
        event_time: i64,
        watermark: i64,
        windows: impl IntoIterator<Item = (i64, i64)>,
        partial: bool,
    ) {
        let before = self.rows.len();
        for window in windows {
            self.rows.push(row);
            self.windows.push(window);
        }
        if self.rows.len() == before {
            return;
        }
        self.events += 1;
        self.partial += u64::from(partial);
        if self.first.is_none() {
            // The latest window it missed: the one it was closest to making.
            let (window_start, window_end) = self.windows[self.windows.len() - 1];
            self.first = Some(LateEvent {
                event_time,
                window_start,
                window_end,
                watermark,
            });
        }
    }
}

/// A batch's evaluated keys and aggregate arguments.
pub struct Evaluated<'a> {
    pub keys: Vec<super::operator::ArgColumn<'a>>,
    pub args: Vec<Option<super::operator::ArgColumn<'a>>>,
    /// Rows that failed to evaluate (skipped).
    pub failed: Vec<bool>,
}

impl Evaluated<'_> {
    pub fn key_columns(&self) -> Vec<&Column> {
        self.keys.iter().map(|k| k.get()).collect()
    }

    pub fn arg_columns(&self) -> Vec<Option<&Column>> {
        self.args
            .iter()
            .map(|a| a.as_ref().map(|c| c.get()))
            .collect()
    }
}

impl WindowCore {
    pub fn new(
        name: &str,
        plan: &WindowPlan,
        input_schema: SchemaRef,
        metrics: Arc<Metrics>,
    ) -> WindowCore {
        let aggregates = plan.aggregates.clone();
        let key_types = aggregates
            .keys
            .iter()
            .map(|(_, e)| e.ty.clone().unwrap_or(DataType::String))
            .collect();
        WindowCore {
            name: name.to_string(),
            accs: Accumulators::new(&aggregates.calls),
            keys: KeyCodec::new(key_types),
            plan: aggregates,
            input_schema,
            lateness: plan.allowed_lateness_ms,
            late_port: plan.late_port,
            bad: BadRecordRouter::new(name, plan.bad_records, metrics.clone()),
            late: metrics.late_stage(name, plan.late_port.is_some()),
            revisions: plan.emits_updates(),
            emit_delay: plan.emit_delay_ms(),
            metrics,
            seq: 0,
        }
    }

    /// Evaluates keys and arguments; routes rows that fail per the bad-record policy.
    pub fn evaluate<'a>(&self, batch: &'a Batch, out: &mut Emitter) -> Result<Evaluated<'a>> {
        let mut errors: Vec<EvalError> = Vec::new();
        let keys = self
            .plan
            .keys
            .iter()
            .map(|(_, e)| eval_arg(e, batch, &mut errors))
            .collect();
        let args = self
            .plan
            .calls
            .iter()
            .map(|c| c.arg.as_ref().map(|a| eval_arg(a, batch, &mut errors)))
            .collect();
        let mut failed = vec![false; batch.num_rows];
        if !errors.is_empty() {
            errors.sort_by_key(|e| e.row);
            errors.dedup_by_key(|e| e.row);
            for e in &errors {
                failed[e.row] = true;
            }
            let rejected: Vec<Rejected> = self.bad.rejections(&self.input_schema, batch, &errors);
            self.bad.route(rejected, out)?;
        }
        Ok(Evaluated { keys, args, failed })
    }

    /// Counts a batch's late events, and sends them to the late output when there is one: a
    /// row per window an event missed, with that window as `late_window_start`/`_end`.
    pub fn route_late(&self, batch: &Batch, late: LateRows, out: &mut Emitter) {
        let Some(first) = late.first else {
            return;
        };
        self.late
            .add(late.events, late.partial, late.rows.len() as u64, first);
        if let Some(port) = self.late_port {
            let mut rows = batch.take(&late.rows);
            rows.watermarks.clear();
            let mut starts = Column::new(&DataType::Timestamp, late.windows.len());
            let mut ends = Column::new(&DataType::Timestamp, late.windows.len());
            for &(start, end) in &late.windows {
                starts.push_value(&crate::data::Value::Timestamp(start));
                ends.push_value(&crate::data::Value::Timestamp(end));
            }
            rows.columns.push(starts);
            rows.columns.push(ends);
            out.emit(port, rows);
        }
    }

    /// The watermark at which windows ending at or before `watermark` are written: later by
    /// the emit delay (`emit: final`). The end of input stays the end of input.
    pub fn firing_watermark(&self, watermark: i64) -> i64 {
        match watermark {
            super::watermark::MAX_WATERMARK => watermark,
            w => w.saturating_sub(self.emit_delay),
        }
    }

    /// Builds output rows `(window_start, window_end, key bytes, slot)`; `revisions` numbers
    /// them when late events update windows (empty: all 0, the first row of each).
    pub fn output(&self, rows: &[(i64, i64, &[u8], u32)], revisions: &[u32]) -> Batch {
        let mut out = self.output_rows(rows.len());
        for (i, &(start, end, key, slot)) in rows.iter().enumerate() {
            let revision = revisions.get(i).copied().unwrap_or(0);
            self.push_row(&mut out, start, end, key, slot, revision);
        }
        self.finish_rows(out)
    }

    /// The rows of window `[start, end)` for `groups` (key, slot), in that order: as
    /// [`WindowCore::output`] with revision 0, the window bounds and event times written once
    /// for all rows instead of row by row.
    pub fn window_output<'k>(
        &self,
        start: i64,
        end: i64,
        groups: impl Iterator<Item = (&'k [u8], u32)>,
    ) -> Batch {
        let mut out = self.output_rows(groups.size_hint().0);
        let mut rows = 0;
        for (key, slot) in groups {
            self.keys.decode_into(key, &mut out.columns[2..]);
            self.accs.output(slot, &mut out.calls);
            rows += 1;
        }
        out.columns[0].push_repeated_int(start, rows);
        out.columns[1].push_repeated_int(end, rows);
        out.times.resize(rows, end - 1);
        if self.revisions {
            out.revisions.resize(rows, 0);
        }
        self.finish_rows(out)
    }

    /// An empty set of output rows with room for `capacity`, filled by
    /// [`WindowCore::push_row`]: a stage that fires a few rows at a time (sessions) gathers
    /// them into one batch instead of building a batch per firing.
    pub fn output_rows(&self, capacity: usize) -> OutputRows {
        let mut columns = vec![
            Column::new(&DataType::Timestamp, capacity),
            Column::new(&DataType::Timestamp, capacity),
        ];
        for t in self.keys.types() {
            columns.push(Column::new(t, capacity));
        }
        OutputRows {
            columns,
            calls: self
                .plan
                .calls
                .iter()
                .map(|c| Column::new(&c.ty, capacity))
                .collect(),
            times: Vec::with_capacity(capacity),
            revisions: Vec::new(),
        }
    }

    /// Adds the row of one group of window `[start, end)`: its key, its aggregates (read from
    /// `slot` now: the slot may be reused once the row is added) and its revision.
    #[inline]
    pub fn push_row(
        &self,
        out: &mut OutputRows,
        start: i64,
        end: i64,
        key: &[u8],
        slot: u32,
        revision: u32,
    ) {
        out.columns[0].push_int(start);
        out.columns[1].push_int(end);
        self.keys.decode_into(key, &mut out.columns[2..]);
        self.accs.output(slot, &mut out.calls);
        out.times.push(end - 1);
        if self.revisions {
            out.revisions.push(revision);
        }
    }

    /// The batch of the rows added to `out`.
    pub fn finish_rows(&self, out: OutputRows) -> Batch {
        let n = out.times.len();
        let OutputRows {
            mut columns,
            mut calls,
            times,
            revisions,
        } = out;
        let key_count = self.keys.types().len();
        for (_, e) in &self.plan.outputs {
            columns.push(Column::new(&e.ty.clone().unwrap_or(DataType::Int), 0));
        }
        // Outputs that are a single call take its column; others evaluate over keys + calls.
        let needs_post =
            (0..self.plan.outputs.len()).any(|i| self.plan.output_is_call(i).is_none());
        let post = needs_post.then(|| {
            let mut post_columns: Vec<Column> = columns[2..2 + key_count].to_vec();
            post_columns.extend(calls.iter().cloned());
            Batch::new(post_columns, n)
        });
        for (i, (_, e)) in self.plan.outputs.iter().enumerate() {
            let target = 2 + key_count + i;
            if let Some(call) = self.plan.output_is_call(i) {
                let shared = (0..self.plan.outputs.len())
                    .any(|j| j != i && self.plan.output_is_call(j) == Some(call));
                columns[target] = if shared {
                    calls[call].clone()
                } else {
                    // Its only output: moved, not copied.
                    std::mem::replace(&mut calls[call], Column::new(&DataType::Int, 0))
                };
            } else if let Some(post) = &post {
                let mut errors = Vec::new();
                let ty = e.ty.clone().unwrap_or(DataType::Int);
                columns[target] = crate::expr::eval_column(e, &ty, post, &mut errors);
                if let Some(err) = errors.first() {
                    // e.g. integer division by zero over aggregates: that output is NULL.
                    self.metrics
                        .add_bad(errors.len() as u64, &err.message, &self.name);
                }
            }
        }
        if self.revisions {
            let mut column = Column::new(&DataType::Int, n);
            for &revision in &revisions {
                column.push_int(i64::from(revision));
            }
            columns.push(column);
        }
        let mut batch = Batch::new(columns, n);
        batch.times = times;
        batch
    }
}

/// Output rows being built (see [`WindowCore::output_rows`]).
pub struct OutputRows {
    /// Window start, window end and the key columns.
    columns: Vec<Column>,
    /// One column per aggregate call.
    calls: Vec<Column>,
    /// Each row's event time (its window's end - 1).
    times: Vec<i64>,
    /// Each row's revision (with `emit: updates` only).
    revisions: Vec<u32>,
}

impl OutputRows {
    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }
}
