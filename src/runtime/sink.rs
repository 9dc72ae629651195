//! The sink side of the contract: two-phase commit.
//!
//! A sink writes what it receives into invisible places (hidden files, open multipart
//! uploads). When a checkpoint is taken it *prepares*: everything written so far becomes
//! durable but stays invisible, and the sink says what it will publish. Once the checkpoint
//! holding that list is durable, the sink *commits*: the objects become visible. A restarted
//! run hands the restored list back at [`Sink::start`], which publishes it again (a crash
//! may have come between the checkpoint and the publish, so publishing is idempotent) and
//! removes leftovers of the failed attempt. Without checkpoints, objects are published when
//! they are complete (a file rolls) and at the end of the input.

use super::error::ConnectorError;
use super::state::{StateError, StateReader, StateResult, StateWriter};
use crate::data::Batch;

/// What a sink does when its destination already holds data from an earlier run and the
/// run is not resuming from a checkpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IfExists {
    /// Refuse to start, naming what is there.
    #[default]
    Fail,
    /// Remove what is there first.
    Overwrite,
    /// Add new objects beside what is there.
    Append,
}

/// One object a commit will publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingObject {
    /// Where it becomes visible (`file:///out/2019-01-07--00/2000/part-….csv`,
    /// `s3://bucket/key`).
    pub name: String,
    pub bytes: u64,
    pub rows: u64,
    /// What the store needs to publish it (a hidden file's path, an upload id and its parts).
    pub token: String,
}

/// What a sink prepared for one checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkSnapshot {
    /// Objects the commit publishes.
    pub pending: Vec<PendingObject>,
    /// Anything else the sink needs to continue after a restart (e.g. how much of a file that
    /// stays open across checkpoints is durable).
    pub state: Vec<u8>,
}

impl SinkSnapshot {
    pub fn write(&self, w: &mut StateWriter) {
        w.usize(self.pending.len());
        for p in &self.pending {
            w.str(&p.name);
            w.u64(p.bytes);
            w.u64(p.rows);
            w.str(&p.token);
        }
        w.bytes(&self.state);
    }

    pub fn read(r: &mut StateReader<'_>) -> StateResult<SinkSnapshot> {
        let n = r.count(4)?;
        let mut pending = Vec::with_capacity(n);
        for _ in 0..n {
            pending.push(PendingObject {
                name: r.string()?,
                bytes: r.u64()?,
                rows: r.u64()?,
                token: r.string()?,
            });
        }
        let state = r.bytes()?.to_vec();
        Ok(SinkSnapshot { pending, state })
    }
}

/// How a sink starts.
#[derive(Debug, Clone, Default)]
pub struct SinkStart {
    /// Names this job's objects apart from other writers' and other runs': stable across
    /// restarts of one checkpointed job (kept in its checkpoint directory), fresh per run
    /// otherwise.
    pub instance: String,
    /// The checkpoint id the next [`Sink::prepare`] will get (object names carry it).
    pub epoch: u64,
    /// Whether [`Sink::prepare`] / [`Sink::commit`] will be called. Without checkpoints a
    /// sink publishes objects as they complete.
    pub checkpointing: bool,
    /// The restored checkpoint's snapshot of this sink (resuming), to publish again.
    pub restored: Option<SinkSnapshot>,
    /// Resuming from an older checkpoint than the newest (which was unreadable): objects
    /// this instance published after `epoch - 1` must be removed, they will be written again.
    pub rolled_back: bool,
    /// What to do with data already at the destination on a fresh (not resuming) start.
    pub if_exists: IfExists,
}

impl SinkStart {
    pub fn resuming(&self) -> bool {
        self.restored.is_some()
    }
}

/// A running sink. The engine calls it from one thread (the sink's own), in order.
pub trait Sink: Send {
    /// Before any data: checks that the destination is usable (so a missing bucket or an
    /// unwritable directory fails the run at start-up, not an hour in), applies
    /// `if_exists`, publishes `restored` again and removes leftovers of failed attempts.
    ///
    /// # Errors
    /// When the destination cannot be used.
    fn start(&mut self, start: &SinkStart) -> Result<(), ConnectorError>;

    /// Writes rows (invisibly until published).
    ///
    /// # Errors
    /// When writing fails.
    fn write(&mut self, batch: Batch) -> Result<(), ConnectorError>;

    /// Processing time passed (a few times a second): roll files by age.
    ///
    /// # Errors
    /// As [`Sink::write`].
    fn on_tick(&mut self, _now_ms: i64) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// The input's watermark advanced: e.g. close files of time buckets that are over.
    ///
    /// # Errors
    /// As [`Sink::write`].
    fn on_watermark(&mut self, _watermark: i64) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// Checkpoint `epoch` is being taken: make everything written so far durable and
    /// invisible, and return what [`Sink::commit`] will publish. `end_of_input` when this
    /// is the last checkpoint of a finished run (files that stay open across checkpoints
    /// close now).
    ///
    /// # Errors
    /// When data cannot be made durable.
    fn prepare(&mut self, epoch: u64, end_of_input: bool) -> Result<SinkSnapshot, ConnectorError>;

    /// The checkpoint holding `prepare(epoch)`'s snapshot is durable: publish it.
    ///
    /// # Errors
    /// When publishing fails (a restart publishes it again from the checkpoint).
    fn commit(&mut self, epoch: u64) -> Result<(), ConnectorError>;

    /// No checkpoints and the input ended (or the run was interrupted): publish everything
    /// written.
    ///
    /// # Errors
    /// As [`Sink::commit`].
    fn finish(&mut self) -> Result<(), ConnectorError>;

    /// The run failed: remove what was written and not published or prepared for a
    /// completed checkpoint (hidden files, open uploads). Best effort; never fails.
    fn abort(&mut self);
}

/// Reads a snapshot's sink state written by [`StateWriter`] helpers, for sinks whose state is
/// a few numbers.
pub fn read_state<T>(
    state: &[u8],
    read: impl FnOnce(&mut StateReader<'_>) -> StateResult<T>,
) -> StateResult<T> {
    let mut r = StateReader::new(state);
    let value = read(&mut r)?;
    if !r.is_at_end() {
        return Err(StateError("sink state has trailing bytes".to_string()));
    }
    Ok(value)
}
