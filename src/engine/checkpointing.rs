//! Taking checkpoints and restoring from one, on the engine thread.
//!
//! A checkpoint is taken between two batches, so every stage's state, every source's
//! position and every sink's output agree: the positions are just after the last batch the
//! engine applied. The order makes it exactly-once:
//! 1. each sink *prepares* (what it wrote becomes durable, still invisible);
//! 2. positions, watermarks, operator state and the prepared lists are written as one file,
//!    atomically — from here on the checkpoint is complete;
//! 3. sinks *commit* (publish) and sources hear that the checkpoint completed (a Kafka source
//!    commits its offsets to the group then).
//!
//! A crash before 2 restarts from the previous checkpoint and the sinks remove what was
//! prepared after it; a crash after 2 restarts from this one and the sinks publish its
//! prepared objects again, which is idempotent.

use std::sync::atomic::Ordering::Relaxed;

use super::Engine;
use super::operator::{EngineError, Result};
use crate::checkpoint::{
    Checkpoint, CheckpointStore, Counters, LateCount, Layout, PartitionWatermark, Restored,
    SinkState, SourceState, StageState,
};
use crate::plan::NodeKind;
use crate::runtime::metrics::CheckpointInfo;
use crate::runtime::{ConnectorError, Position, StateReader, StateWriter};

/// Checkpoint settings and state of one run.
pub struct Checkpointing {
    pub store: Box<dyn CheckpointStore>,
    pub interval_ms: i64,
    /// Complete checkpoints kept.
    pub retain: usize,
    /// The job's instance id (from the store).
    pub instance: String,
    /// The checkpoint this run resumes from.
    pub restored: Option<Restored>,
    /// The id the next checkpoint gets.
    pub next_id: u64,
    /// The pipeline's stateful layout, recorded in every checkpoint.
    pub layout: Layout,
    pub pipeline: String,
    next_due_ms: i64,
}

impl Checkpointing {
    pub fn new(
        store: Box<dyn CheckpointStore>,
        interval_ms: i64,
        retain: usize,
        instance: String,
        restored: Option<Restored>,
        layout: Layout,
        pipeline: String,
    ) -> Checkpointing {
        let next_id = restored.as_ref().map_or(1, |r| r.checkpoint.id + 1);
        Checkpointing {
            store,
            interval_ms: interval_ms.max(1),
            retain: retain.max(1),
            instance,
            restored,
            next_id,
            layout,
            pipeline,
            next_due_ms: i64::MAX,
        }
    }

    /// Starts the interval clock.
    pub(super) fn schedule(&mut self, now_ms: i64) {
        self.next_due_ms = now_ms.saturating_add(self.interval_ms);
    }

    pub(super) fn due(&self, now_ms: i64) -> bool {
        now_ms >= self.next_due_ms
    }
}

impl Engine<'_> {
    /// Puts the restored checkpoint's state into the stages, trackers and positions.
    pub(super) fn restore(&mut self) -> Result<()> {
        let Some(restored) = self
            .checkpointing
            .as_ref()
            .and_then(|c| c.restored.as_ref())
            .map(|r| r.checkpoint.clone())
        else {
            return Ok(());
        };
        let bad = |what: String| {
            EngineError::Checkpoint(ConnectorError::user(format!(
                "checkpoint {} cannot be restored: {what}",
                restored.id
            )))
        };
        for (i, node) in self.plan.nodes.iter().enumerate() {
            if let NodeKind::Source(_) = node.kind
                && let Some(s) = restored.source(&node.name)
            {
                for p in &s.positions {
                    self.positions[i].insert(p.partition.clone(), p.offset.clone());
                }
                if let Some(t) = &mut self.trackers[i] {
                    t.restore(s.watermark);
                }
                self.out_watermark[i] = self.out_watermark[i].max(s.watermark);
                self.restored_partitions[i] = s
                    .partitions
                    .iter()
                    .map(|p| (p.name.clone(), (p.max_time, p.idle)))
                    .collect();
            }
            if let Some(stage) = restored.stage(&node.name) {
                self.in_watermark[i] = stage.in_watermark;
                self.out_watermark[i] = self.out_watermark[i].max(stage.out_watermark);
                // A source's partitions come back active (see `restore_partition`), so the
                // source is not idle either until they are quiet again.
                self.idle[i] = stage.idle && !matches!(node.kind, NodeKind::Source(_));
                if let Some(op) = self.operators[i].as_mut() {
                    let mut r = StateReader::new(&stage.state);
                    op.restore(&mut r)
                        .map_err(|e| bad(format!("stage `{}`: {e}", node.name)))?;
                    if !r.is_at_end() {
                        return Err(bad(format!("stage `{}`: unread state", node.name)));
                    }
                }
            }
        }
        let c = &restored.counters;
        let sources: Vec<usize> = self.plan.sources().map(|(i, _)| i).collect();
        for ((m, n), node) in self.metrics.sources.iter().zip(&c.records_in).zip(sources) {
            m.records.store(*n, Relaxed);
            self.applied[node] = *n;
        }
        let m = &self.metrics;
        m.bad_records.store(c.bad_records, Relaxed);
        for stage in m.late_stages() {
            if let Some(l) = c.late.iter().find(|l| l.stage == stage.stage) {
                stage.events.store(l.events, Relaxed);
                stage.partial.store(l.partial, Relaxed);
                stage.contributions.store(l.contributions, Relaxed);
            }
        }
        m.records_out.store(c.records_out, Relaxed);
        m.files_committed.store(c.files_committed, Relaxed);
        m.bytes_out.store(c.bytes_out, Relaxed);
        let open: usize = self
            .operators
            .iter()
            .flatten()
            .map(|op| op.open_windows())
            .sum();
        m.open_windows.store(open as u64, Relaxed);
        Ok(())
    }

    /// Takes a checkpoint now (see the module docs for the order). `end_of_input` marks the
    /// last one of a completed run. Returns its id.
    pub(super) fn checkpoint(&mut self, end_of_input: bool, now_ms: i64) -> Result<u64> {
        let started = std::time::Instant::now();
        let Some(id) = self.checkpointing.as_ref().map(|c| c.next_id) else {
            return Err(EngineError::Internal(
                "checkpoint without checkpointing".into(),
            ));
        };
        // 1. Sinks make their output durable and say what they will publish.
        let mut sinks = Vec::new();
        for (node, sink) in self.sinks.iter().enumerate() {
            if let Some(sink) = sink {
                sinks.push(SinkState {
                    name: self.plan.nodes[node].name.clone(),
                    snapshot: sink.prepare(id, end_of_input)?,
                });
            }
        }
        crate::fault::point("checkpoint-prepared");
        // 2. One consistent snapshot of everything else, written atomically.
        let checkpoint = self.snapshot(id, end_of_input, now_ms, sinks);
        let bytes = checkpoint.encode();
        let Some(c) = self.checkpointing.as_mut() else {
            return Err(EngineError::Internal(
                "checkpoint without checkpointing".into(),
            ));
        };
        c.store
            .write(id, &bytes)
            .map_err(|e| EngineError::Checkpoint(e.context(format!("writing checkpoint {id}"))))?;
        crate::fault::point("checkpoint-written");
        c.next_id = id + 1;
        c.schedule(now_ms);
        // 3. Publish, and let sources commit externally.
        for sink in self.sinks.iter().flatten() {
            sink.commit(id)?;
        }
        for (node, completed) in self.completed.iter().enumerate() {
            if matches!(self.plan.nodes[node].kind, NodeKind::Source(_)) {
                completed.complete(id, positions(&self.positions[node]));
            }
        }
        self.prune(id);
        self.metrics.checkpoint_completed(CheckpointInfo {
            id,
            bytes: bytes.len() as u64,
            pause_ms: started.elapsed().as_millis() as u64,
            at_ms: now_ms,
        });
        Ok(id)
    }

    /// Deletes checkpoints beyond the retention (best effort: a failure only keeps extra).
    fn prune(&self, newest: u64) {
        let Some(c) = &self.checkpointing else { return };
        let Ok(ids) = c.store.list() else { return };
        for id in ids {
            if id + (c.retain as u64) <= newest {
                let _ = c.store.delete(id);
            }
        }
    }

    fn snapshot(&self, id: u64, finished: bool, now_ms: i64, sinks: Vec<SinkState>) -> Checkpoint {
        let mut sources = Vec::new();
        let mut stages = Vec::new();
        for (i, node) in self.plan.nodes.iter().enumerate() {
            if let NodeKind::Source(_) = node.kind {
                let tracker = self.trackers[i].as_ref();
                let mut partitions: Vec<PartitionWatermark> = tracker
                    .map(|t| {
                        t.partitions()
                            .filter_map(|(p, max_time, idle)| {
                                Some(PartitionWatermark {
                                    name: self.partition_names[i].get(&p)?.clone(),
                                    max_time,
                                    idle,
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                // Partitions restored but not reopened yet keep their state.
                for (name, (max_time, idle)) in &self.restored_partitions[i] {
                    partitions.push(PartitionWatermark {
                        name: name.clone(),
                        max_time: *max_time,
                        idle: *idle,
                    });
                }
                sources.push(SourceState {
                    name: node.name.clone(),
                    positions: positions(&self.positions[i]),
                    watermark: tracker.map_or(self.out_watermark[i], |t| t.current()),
                    finished: self.finished[i],
                    partitions,
                });
            }
            let mut state = StateWriter::new();
            let (mut open_windows, mut open_groups) = (0, 0);
            if let Some(op) = &self.operators[i] {
                op.snapshot(&mut state);
                open_windows = op.open_windows() as u64;
                open_groups = op.open_groups() as u64;
            }
            stages.push(StageState {
                name: node.name.clone(),
                in_watermark: self.in_watermark[i],
                out_watermark: self.out_watermark[i],
                idle: self.idle[i],
                open_windows,
                open_groups,
                state: state.into_bytes(),
            });
        }
        let m = &self.metrics;
        let counters = Counters {
            records_in: self.plan.sources().map(|(i, _)| self.applied[i]).collect(),
            bad_records: m.bad_records.load(Relaxed),
            late: m
                .late_stages()
                .iter()
                .map(|s| LateCount {
                    stage: s.stage.clone(),
                    events: s.events.load(Relaxed),
                    partial: s.partial.load(Relaxed),
                    contributions: s.contributions.load(Relaxed),
                })
                .collect(),
            // What this checkpoint's commit publishes counts as published.
            records_out: m.records_out.load(Relaxed)
                + sinks
                    .iter()
                    .flat_map(|s| &s.snapshot.pending)
                    .map(|p| p.rows)
                    .sum::<u64>(),
            files_committed: m.files_committed.load(Relaxed)
                + sinks
                    .iter()
                    .map(|s| s.snapshot.pending.len() as u64)
                    .sum::<u64>(),
            bytes_out: m.bytes_out.load(Relaxed)
                + sinks
                    .iter()
                    .flat_map(|s| &s.snapshot.pending)
                    .map(|p| p.bytes)
                    .sum::<u64>(),
        };
        let c = self.checkpointing.as_ref();
        Checkpoint {
            id,
            created_ms: now_ms,
            pipeline: c.map(|c| c.pipeline.clone()).unwrap_or_default(),
            instance: c.map(|c| c.instance.clone()).unwrap_or_default(),
            finished,
            layout: c.map(|c| c.layout.clone()).unwrap_or_default(),
            sources,
            stages,
            sinks,
            counters,
        }
    }
}

pub(super) fn positions(
    map: &std::collections::BTreeMap<String, crate::runtime::Offset>,
) -> Vec<Position> {
    map.iter()
        .map(|(p, o)| Position::new(p.clone(), o.clone()))
        .collect()
}
