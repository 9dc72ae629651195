//! The stage interface of the embedded engine, and the helpers stages share.

use std::rc::Rc;
use std::sync::Arc;

use super::sink_thread::SinkThread;
use crate::data::{Batch, Column, DataType, Schema};
use crate::format::base64;
use crate::plan::{BadRecordPolicy, BadRecords};
use crate::runtime::state::{StateReader, StateResult, StateWriter};
use crate::runtime::{ConnectorError, ErrorDomain, Metrics};

/// Why a run stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A record could not be processed and the stage's policy is `fail`.
    #[error(
        "`{component}`: bad record{}: {error}\n  record: {record}\n  (the bad_records policy is `fail`; `skip` or `dead_letter` keeps going)",
        if position.is_empty() { String::new() } else { format!(" at {position}") }
    )]
    BadRecord {
        component: String,
        error: String,
        /// `file:line` when known.
        position: String,
        /// The record, shortened for the message.
        record: String,
    },
    #[error("source `{component}`: {error}")]
    Source {
        component: String,
        error: ConnectorError,
    },
    #[error("sink `{component}`: {error}")]
    Sink {
        component: String,
        error: ConnectorError,
    },
    /// Taking, storing or restoring a checkpoint failed.
    #[error("checkpoint: {0}")]
    Checkpoint(ConnectorError),
    /// Connectors that cannot start, all of them.
    #[error("cannot start the pipeline:\n  - {}", .0.join("\n  - "))]
    Setup(Vec<String>),
    /// The reader of our standard output went away (`streamctl run … | head`).
    #[error("standard output was closed")]
    OutputClosed,
    /// Window state grew past the run's memory limit.
    #[error(
        "stage `{stage}`: window state would exceed the memory limit of {limit}: {groups} groups (a key in a window) in {windows} open windows, about {bytes} of state\n  to stay under it: shorter windows (`size`, or a smaller `gap` for sessions), fewer keys (`group_by`), a smaller `allowed_lateness`, or a higher limit with `--max-state-memory` (the default is half of this machine's memory)"
    )]
    StateLimit {
        stage: String,
        groups: u64,
        windows: u64,
        /// The estimate and the limit, as text (`1.2 GiB`).
        bytes: String,
        limit: String,
    },
    #[error("internal error (a bug in streamctl, please report it): {0}")]
    Internal(String),
}

impl EngineError {
    /// Whose problem it is.
    pub fn domain(&self) -> ErrorDomain {
        match self {
            EngineError::BadRecord { .. }
            | EngineError::Setup(_)
            | EngineError::OutputClosed
            | EngineError::StateLimit { .. } => ErrorDomain::User,
            EngineError::Source { error, .. } | EngineError::Sink { error, .. } => error.domain,
            EngineError::Checkpoint(error) => error.domain,
            EngineError::Internal(_) => ErrorDomain::Internal,
        }
    }
}

pub type Result<T> = std::result::Result<T, EngineError>;

/// Batches a stage produced, by output port.
#[derive(Default)]
pub struct Emitter {
    pub batches: Vec<(usize, Batch)>,
    /// Where port 0 goes straight to, bypassing `batches` (see [`Emitter::direct`]).
    direct: Option<DirectOutput>,
}

/// Port 0 written to its only reader, a sink thread, as it is produced.
struct DirectOutput {
    sink: Rc<SinkThread>,
    /// The watermark rows are stamped with (when the stream has event time).
    watermark: Option<i64>,
    /// The first failure writing to the sink.
    error: Option<EngineError>,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("batches", &self.batches)
            .field("direct", &self.direct.is_some())
            .finish()
    }
}

impl Emitter {
    /// An emitter that writes port 0 straight to `sink`, each batch as it is emitted (the
    /// sink's bounded queue holds the stage back when it falls behind), so a window firing a
    /// million rows never holds them all at once. `watermark` stamps rows as the engine would.
    pub fn direct(sink: Rc<SinkThread>, watermark: Option<i64>) -> Emitter {
        Emitter {
            batches: Vec::new(),
            direct: Some(DirectOutput {
                sink,
                watermark,
                error: None,
            }),
        }
    }

    pub fn emit(&mut self, port: usize, mut batch: Batch) {
        if batch.is_empty() {
            return;
        }
        if port == 0
            && let Some(direct) = &mut self.direct
        {
            if direct.error.is_some() {
                return;
            }
            if let Some(w) = direct.watermark
                && batch.watermarks.len() != batch.num_rows
            {
                batch.watermarks = vec![w; batch.num_rows];
            }
            if let Err(e) = direct.sink.write(batch) {
                direct.error = Some(e);
            }
            return;
        }
        self.batches.push((port, batch));
    }

    /// The first failure writing straight to a sink, if any.
    pub fn take_error(&mut self) -> Option<EngineError> {
        self.direct.as_mut().and_then(|d| d.error.take())
    }
}

/// One stage of a running pipeline. The engine calls it from one thread, in order.
pub trait Operator: Send {
    /// Processes records arriving on input `input`.
    ///
    /// # Errors
    /// A bad record under the `fail` policy, or a sink failure.
    fn process(&mut self, input: usize, batch: Batch, out: &mut Emitter) -> Result<()>;

    /// The watermark of this stage's inputs advanced: fire what is complete.
    ///
    /// # Errors
    /// As [`Operator::process`].
    fn on_watermark(&mut self, _watermark: i64, _out: &mut Emitter) -> Result<()> {
        Ok(())
    }

    /// Processing time passed (called a few times a second): roll files by age, etc.
    ///
    /// # Errors
    /// As [`Operator::process`].
    fn on_tick(&mut self, _now_ms: i64, _out: &mut Emitter) -> Result<()> {
        Ok(())
    }

    /// All input has been delivered: flush and commit.
    ///
    /// # Errors
    /// As [`Operator::process`].
    fn finish(&mut self, _out: &mut Emitter) -> Result<()> {
        Ok(())
    }

    /// Windows held open (panes, sessions), for progress reports and checkpoints.
    fn open_windows(&self) -> usize {
        0
    }

    /// Groups held across open windows, for checkpoint summaries.
    fn open_groups(&self) -> usize {
        0
    }

    /// Bytes of memory the stage's state holds, estimated from its tables' sizes (for the
    /// state memory limit).
    fn state_bytes(&self) -> usize {
        0
    }

    /// Writes the stage's state into a checkpoint. Stateless stages write nothing.
    fn snapshot(&self, _out: &mut StateWriter) {}

    /// Restores what [`Operator::snapshot`] wrote (into a freshly built stage).
    ///
    /// # Errors
    /// When the state cannot be read.
    fn restore(&mut self, _input: &mut StateReader<'_>) -> StateResult<()> {
        Ok(())
    }

    /// The watermark of this stage's output when its input's is `input`. A stage that writes
    /// results later than the watermark says (windows with `emit: final`) holds it back by as
    /// much, so stages after it do not take those results for late.
    fn output_watermark(&self, input: i64) -> i64 {
        input
    }
}

/// Applies a stage's bad-record policy: counts, fails, or builds dead-letter rows.
pub struct BadRecordRouter {
    component: String,
    policy: BadRecords,
    metrics: Arc<Metrics>,
}

/// One record a stage could not process.
pub struct Rejected {
    pub error: String,
    /// The record's bytes as read (sources), or the row as JSON (transforms).
    pub raw: Vec<u8>,
    /// `file:line` when known.
    pub position: String,
}

impl BadRecordRouter {
    pub fn new(component: &str, policy: BadRecords, metrics: Arc<Metrics>) -> BadRecordRouter {
        BadRecordRouter {
            component: component.to_string(),
            policy,
            metrics,
        }
    }

    /// Handles rejected records: emits them on the dead-letter port, or counts them, or
    /// fails the run.
    ///
    /// # Errors
    /// [`EngineError::BadRecord`] under the `fail` policy.
    pub fn route(&self, rejected: Vec<Rejected>, out: &mut Emitter) -> Result<()> {
        if rejected.is_empty() {
            return Ok(());
        }
        if self.policy.policy == BadRecordPolicy::Fail {
            // The run stops at the first one; the rest of the batch was never processed.
            let first = &rejected[0];
            self.metrics.add_bad(1, &first.error, &self.component);
            let record = match std::str::from_utf8(&first.raw) {
                Ok(text) => truncate(text, 200),
                Err(_) => format!("(not UTF-8) base64 {}", truncate(&base64(&first.raw), 200)),
            };
            return Err(EngineError::BadRecord {
                component: self.component.clone(),
                error: first.error.clone(),
                position: first.position.clone(),
                record,
            });
        }
        self.metrics
            .add_bad(rejected.len() as u64, &rejected[0].error, &self.component);
        match (self.policy.policy, self.policy.port) {
            (BadRecordPolicy::DeadLetter, Some(port)) => {
                let schema = crate::plan::dead_letter_schema();
                let mut columns: Vec<Column> = schema
                    .fields
                    .iter()
                    .map(|f| Column::new(&f.data_type, rejected.len()))
                    .collect();
                for r in &rejected {
                    columns[0].push_str(&self.component);
                    columns[1].push_str(&r.error);
                    // The bytes exactly: as text when they are UTF-8, else as base64.
                    match std::str::from_utf8(&r.raw) {
                        Ok(text) => {
                            columns[2].push_str(text);
                            columns[4].push_bool(false);
                        }
                        Err(_) => {
                            columns[2].push_str(&base64(&r.raw));
                            columns[4].push_bool(true);
                        }
                    }
                    columns[3].push_str(&r.position);
                }
                out.emit(port, Batch::new(columns, rejected.len()));
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Turns evaluation errors of rows of `batch` into rejections (the row as JSON text).
    pub fn rejections(
        &self,
        schema: &Schema,
        batch: &Batch,
        errors: &[crate::expr::EvalError],
    ) -> Vec<Rejected> {
        errors
            .iter()
            .map(|e| Rejected {
                error: e.message.clone(),
                raw: row_json(schema, &batch.columns, e.row).into_bytes(),
                position: String::new(),
            })
            .collect()
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        s.to_string()
    } else {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    }
}

pub use crate::data::row_json;

/// Evaluated argument columns: borrowed when an argument is a plain column of the batch.
pub enum ArgColumn<'a> {
    Borrowed(&'a Column),
    Owned(Column),
}

impl ArgColumn<'_> {
    pub fn get(&self) -> &Column {
        match self {
            ArgColumn::Borrowed(c) => c,
            ArgColumn::Owned(c) => c,
        }
    }
}

/// Evaluates `expr` over `batch` (without copying plain column references).
pub fn eval_arg<'a>(
    expr: &crate::expr::Expr,
    batch: &'a Batch,
    errors: &mut Vec<crate::expr::EvalError>,
) -> ArgColumn<'a> {
    match expr.as_column() {
        Some(i) => ArgColumn::Borrowed(&batch.columns[i]),
        None => {
            let ty = expr.ty.clone().unwrap_or(DataType::Int);
            ArgColumn::Owned(crate::expr::eval_column(expr, &ty, batch, errors))
        }
    }
}
