//! The embedded engine: runs a [`Plan`] on this machine.
//!
//! Sources run on their own threads (decoding in parallel where they can) and send batches to
//! one engine thread, which stamps event times with watermarks, pushes batches through the
//! stages in graph order, and advances watermarks stage by stage. Sinks run on threads of
//! their own. Running every stage on one thread keeps results deterministic for a given input
//! order and makes a consistent snapshot a matter of pausing between two batches: that is how
//! checkpoints are taken ([`checkpointing`]).
//!
//! The engine knows connectors only through the runtime contract ([`crate::runtime`]): it is
//! handed built sources and sinks ([`Connectors`]) and never names one.

pub mod checkpointing;
pub mod operator;
pub mod sink_thread;
pub mod stateless;
pub mod watermark;
pub mod window;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::time::Duration;

pub use self::checkpointing::Checkpointing;
use self::operator::{BadRecordRouter, Emitter, EngineError, Operator, Rejected, Result};
use self::sink_thread::SinkThread;
use self::watermark::{IdleClock, MAX_WATERMARK, MIN_WATERMARK, WatermarkTracker};
use crate::clock::Clock;
use crate::data::Batch;
use crate::plan::{NodeKind, Plan, StreamRef, WindowKind};
use crate::runtime::metrics::Snapshot;
use crate::runtime::{
    CompletedCheckpoints, IfExists, Metrics, Offset, Sink, SinkStart, Source, SourceContext,
    SourceEvent, SourceMessage, StartPositions,
};

/// How to run.
#[derive(Clone)]
pub struct RunOptions {
    /// Stop each source at the end of what exists now (files to their end, …).
    pub bounded: bool,
    pub clock: Arc<dyn Clock>,
    /// Set to stop the run (Ctrl-C, SIGTERM): with checkpoints, a final checkpoint is taken
    /// (a savepoint); without, finished output is published and open windows are discarded.
    pub stop: Arc<AtomicBool>,
    /// What sinks do with data already at their destination on a fresh start.
    pub if_exists: IfExists,
    /// Most bytes window state may hold (estimated); the run stops with an explanation
    /// rather than run out of memory.
    pub max_state_bytes: Option<u64>,
}

/// The connectors of a run, built from the plan by [`crate::job`].
pub struct Connectors {
    /// One per source node, in plan order.
    pub sources: Vec<Box<dyn Source>>,
    /// The sink of each sink node, by node index.
    pub sinks: Vec<(usize, Box<dyn Sink>)>,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub snapshot: Snapshot,
    /// The run was stopped before its input ended.
    pub interrupted: bool,
    /// Windows still open when an interrupted run stopped: kept in the savepoint with
    /// checkpoints, not written without.
    pub open_windows: usize,
    /// The checkpoint taken when the run stopped or ended (with checkpoints).
    pub final_checkpoint: Option<u64>,
}

/// The metrics a run of `plan` reports into (one entry per source, in plan order).
pub fn metrics_for(plan: &Plan) -> Arc<Metrics> {
    Arc::new(Metrics::new(
        plan.sources()
            .map(|(i, _)| plan.nodes[i].name.clone())
            .collect(),
    ))
}

/// Runs `plan` with `connectors` until its sources end (or a stop is requested), resuming
/// from and taking checkpoints when `checkpointing` is given.
///
/// # Errors
/// A source or sink failure, a checkpoint failure, or a bad record under the `fail` policy.
pub fn run(
    plan: &Plan,
    connectors: Connectors,
    options: &RunOptions,
    checkpointing: Option<Checkpointing>,
    metrics: Arc<Metrics>,
) -> Result<RunSummary> {
    let (sender, receiver) = sync_channel(16);
    let mut engine = Engine::new(plan, connectors.sinks, metrics.clone(), checkpointing)?;
    engine.max_state_bytes = options.max_state_bytes;
    if let Err(e) = engine.restore() {
        engine.abort_sinks();
        return Err(e);
    }
    if let Err(e) = engine.start_sinks(options) {
        engine.abort_sinks();
        return Err(e);
    }
    if let Some(done) = engine.completed_run() {
        // The checkpoint is of a run that completed: its sinks published again, nothing to read.
        engine.sync_sinks()?;
        return Ok(RunSummary {
            snapshot: metrics.snapshot(),
            interrupted: false,
            open_windows: 0,
            final_checkpoint: Some(done),
        });
    }
    let mut handles = Vec::new();
    for (metrics_index, ((node, source), connector)) in
        plan.sources().zip(connectors.sources).enumerate()
    {
        let ctx = SourceContext {
            node,
            name: plan.nodes[node].name.clone(),
            schema: plan.nodes[node].outputs[0].schema.clone(),
            event_time: source.event_time,
            bounded: options.bounded,
            start: Arc::new(engine.start_positions(node)),
            completed: engine.completed[node].clone(),
            sender: sender.clone(),
            stop: options.stop.clone(),
            metrics: metrics.clone(),
            metrics_index,
            clock: options.clock.clone(),
        };
        match crate::runtime::source::spawn(connector, ctx) {
            Ok(handle) => handles.push(handle),
            Err(e) => {
                options.stop.store(true, Ordering::Relaxed);
                engine.abort_sinks();
                return Err(EngineError::Internal(format!(
                    "starting a source thread: {e}"
                )));
            }
        }
    }
    drop(sender);
    let result = engine.drive(&receiver, options);
    if result.is_err() {
        engine.abort_sinks();
    }
    // Unblock and join source threads whatever happened. Sources that commit positions
    // externally (Kafka offsets) commit the last completed ones now and get time to.
    options.stop.store(true, Ordering::Relaxed);
    drop(receiver);
    let mut grace = SOURCE_STOP_GRACE;
    for completed in &engine.completed {
        completed.close();
        if completed.commits_on_close() {
            grace = grace.max(crate::runtime::source::COMMIT_GRACE);
        }
    }
    join_sources(handles, grace);
    result
}

/// How long a stopped run waits for its source threads to end.
const SOURCE_STOP_GRACE: Duration = Duration::from_millis(300);

/// Joins the source threads that end within `grace`. A source blocked in a read that only
/// more input can end (an idle stdin or FIFO) is left behind: the run's results no longer
/// depend on it, and waiting would make Ctrl-C hang until the writer sends something.
fn join_sources(handles: Vec<std::thread::JoinHandle<()>>, grace: Duration) {
    let deadline = std::time::Instant::now() + grace;
    let mut waiting = handles;
    while !waiting.is_empty() && std::time::Instant::now() < deadline {
        let (done, running): (Vec<_>, Vec<_>) = waiting.into_iter().partition(|h| h.is_finished());
        for h in done {
            let _ = h.join();
        }
        waiting = running;
        if !waiting.is_empty() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

struct Engine<'p> {
    plan: &'p Plan,
    /// The operator of each transform node.
    operators: Vec<Option<Box<dyn Operator>>>,
    /// The sink of each sink node (shared with emitters that write to it directly).
    sinks: Vec<Option<Rc<SinkThread>>>,
    /// Readers of each (node, port): (node, input index).
    consumers: Vec<Vec<Vec<(usize, usize)>>>,
    /// Watermark trackers of sources with event time.
    trackers: Vec<Option<WatermarkTracker>>,
    /// Output watermark of each node.
    out_watermark: Vec<i64>,
    /// Last input watermark delivered to each node.
    in_watermark: Vec<i64>,
    /// Sources whose every partition is idle (excluded from minimums).
    idle: Vec<bool>,
    /// What partitions' idleness is measured on (see [`IdleClock`]).
    idle_clock: IdleClock,
    finished: Vec<bool>,
    /// Decode errors of each source.
    source_bad: Vec<Option<BadRecordRouter>>,
    /// Each source's partitions by id, as announced (names identify them across restarts).
    partition_names: Vec<HashMap<u32, String>>,
    /// Each source's position per partition: everything before it has been applied.
    positions: Vec<BTreeMap<String, Offset>>,
    /// Restored partition watermarks waiting for their partition to reopen.
    restored_partitions: Vec<HashMap<String, (i64, bool)>>,
    /// Records (good and bad) of each source the engine has applied: what a checkpoint
    /// covers (the sources' own counters run ahead by the batches in flight).
    applied: Vec<u64>,
    /// Where each source hears of completed checkpoints.
    completed: Vec<Arc<CompletedCheckpoints>>,
    checkpointing: Option<Checkpointing>,
    queue: VecDeque<(usize, usize, Batch)>,
    metrics: Arc<Metrics>,
    /// See [`RunOptions::max_state_bytes`].
    max_state_bytes: Option<u64>,
}

impl<'p> Engine<'p> {
    fn new(
        plan: &'p Plan,
        sinks: Vec<(usize, Box<dyn Sink>)>,
        metrics: Arc<Metrics>,
        checkpointing: Option<Checkpointing>,
    ) -> Result<Engine<'p>> {
        let n = plan.nodes.len();
        let mut operators: Vec<Option<Box<dyn Operator>>> = Vec::with_capacity(n);
        let mut trackers = Vec::with_capacity(n);
        let mut source_bad = Vec::with_capacity(n);
        for node in &plan.nodes {
            let input_schema = node.inputs.first().map(|r| plan.port(*r).schema.clone());
            let mut tracker = None;
            let mut bad = None;
            let op: Option<Box<dyn Operator>> = match &node.kind {
                NodeKind::Source(s) => {
                    tracker = s.event_time.map(|et| {
                        WatermarkTracker::new(et.max_out_of_orderness_ms, et.idle_timeout_ms)
                    });
                    bad = Some(BadRecordRouter::new(
                        &node.name,
                        s.bad_records,
                        metrics.clone(),
                    ));
                    None
                }
                NodeKind::Filter(f) => Some(Box::new(stateless::Filter::new(
                    &node.name,
                    f,
                    input_schema.clone().unwrap_or_default(),
                    metrics.clone(),
                ))),
                NodeKind::Select(s) => Some(Box::new(stateless::Select::new(
                    &node.name,
                    s,
                    input_schema.clone().unwrap_or_default(),
                    node.outputs[0].schema.clone(),
                    metrics.clone(),
                ))),
                NodeKind::Explode(x) => Some(Box::new(stateless::Explode::new(x))),
                NodeKind::Window(w) => {
                    let core = window::WindowCore::new(
                        &node.name,
                        w,
                        input_schema.clone().unwrap_or_default(),
                        metrics.clone(),
                    );
                    Some(match w.kind {
                        WindowKind::Tumbling { size } => {
                            Box::new(window::aligned::AlignedWindows::new(core, size, size))
                        }
                        WindowKind::Sliding { size, slide } => {
                            Box::new(window::aligned::AlignedWindows::new(core, size, slide))
                        }
                        WindowKind::Session { gap } => {
                            Box::new(window::session::SessionWindows::new(core, gap))
                        }
                    })
                }
                NodeKind::Sink(_) => None,
            };
            trackers.push(tracker);
            source_bad.push(bad);
            operators.push(op);
        }
        let mut sink_threads: Vec<Option<Rc<SinkThread>>> = (0..n).map(|_| None).collect();
        for (node, sink) in sinks {
            let thread =
                SinkThread::spawn(&plan.nodes[node].name, sink).map_err(EngineError::Internal)?;
            sink_threads[node] = Some(Rc::new(thread));
        }
        let mut consumers: Vec<Vec<Vec<(usize, usize)>>> = plan
            .nodes
            .iter()
            .map(|n| vec![Vec::new(); n.outputs.len()])
            .collect();
        for (i, node) in plan.nodes.iter().enumerate() {
            for (j, input) in node.inputs.iter().enumerate() {
                consumers[input.node][input.port].push((i, j));
            }
        }
        Ok(Engine {
            plan,
            operators,
            sinks: sink_threads,
            consumers,
            trackers,
            out_watermark: vec![MIN_WATERMARK; n],
            in_watermark: vec![MIN_WATERMARK; n],
            idle: vec![false; n],
            idle_clock: IdleClock::new(0),
            finished: vec![false; n],
            source_bad,
            partition_names: vec![HashMap::new(); n],
            positions: vec![BTreeMap::new(); n],
            restored_partitions: vec![HashMap::new(); n],
            applied: vec![0; n],
            completed: (0..n)
                .map(|_| Arc::new(CompletedCheckpoints::default()))
                .collect(),
            checkpointing,
            queue: VecDeque::new(),
            metrics,
            max_state_bytes: None,
        })
    }

    /// Starts every sink (in parallel) and reports every one that cannot start, at once.
    fn start_sinks(&mut self, options: &RunOptions) -> Result<()> {
        let base = match &self.checkpointing {
            Some(c) => SinkStart {
                instance: c.instance.clone(),
                epoch: c.next_id,
                checkpointing: true,
                restored: None,
                rolled_back: c.restored.as_ref().is_some_and(|r| r.rolled_back),
                if_exists: options.if_exists,
            },
            None => SinkStart {
                instance: crate::checkpoint::store::random_id()[..8].to_string(),
                epoch: 0,
                checkpointing: false,
                restored: None,
                rolled_back: false,
                if_exists: options.if_exists,
            },
        };
        let mut started = Vec::new();
        for (node, sink) in self.sinks.iter().enumerate() {
            let Some(sink) = sink else { continue };
            let name = &self.plan.nodes[node].name;
            let restored = self
                .checkpointing
                .as_ref()
                .and_then(|c| c.restored.as_ref())
                .map(|r| {
                    r.checkpoint
                        .sink(name)
                        .map(|s| s.snapshot.clone())
                        .unwrap_or_default()
                });
            sink.begin_start(SinkStart {
                restored,
                ..base.clone()
            })?;
            started.push(node);
        }
        let mut problems = Vec::new();
        for node in started {
            if let Some(sink) = &self.sinks[node]
                && let Err(e) = sink.started()
            {
                problems.push(format!("sink `{}`: {e}", self.plan.nodes[node].name));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(EngineError::Setup(problems))
        }
    }

    /// Where a source starts: the restored checkpoint's positions (empty on a fresh start).
    fn start_positions(&self, node: usize) -> StartPositions {
        StartPositions(
            self.positions[node]
                .iter()
                .map(|(p, o)| crate::runtime::Position::new(p.clone(), o.clone()))
                .collect(),
        )
    }

    /// The id of the restored checkpoint when it marks a completed run.
    fn completed_run(&self) -> Option<u64> {
        let r = self.checkpointing.as_ref()?.restored.as_ref()?;
        r.checkpoint.finished.then_some(r.checkpoint.id)
    }

    /// Removes what sinks wrote and did not publish (a failed run).
    fn abort_sinks(&mut self) {
        for sink in self.sinks.iter().flatten() {
            sink.abort();
        }
    }

    fn drive(
        &mut self,
        receiver: &std::sync::mpsc::Receiver<SourceMessage>,
        options: &RunOptions,
    ) -> Result<RunSummary> {
        let source_count = self.plan.sources().count();
        let mut finished_sources = 0;
        let mut last_tick = options.clock.now_ms();
        self.idle_clock = IdleClock::new(last_tick);
        let mut interrupted = false;
        if let Some(c) = &mut self.checkpointing {
            c.schedule(last_tick);
        }
        while finished_sources < source_count {
            if options.stop.load(Ordering::Relaxed) {
                interrupted = true;
                break;
            }
            let mut waiting_from = None;
            let message = match receiver.try_recv() {
                Ok(m) => Ok(m),
                Err(_) => {
                    // Nothing to do until input comes: rows gathered for the sinks go now.
                    self.flush_sinks()?;
                    waiting_from = Some(options.clock.now_ms());
                    receiver.recv_timeout(Duration::from_millis(100))
                }
            };
            let message = match message {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) if options.stop.load(Ordering::Relaxed) => {
                    // Sources noticed the stop before we did.
                    interrupted = true;
                    break;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(EngineError::Internal(
                        "every source stopped without finishing".to_string(),
                    ));
                }
            };
            let now = options.clock.now_ms();
            self.idle_clock.took_input(waiting_from.unwrap_or(now), now);
            let idle_now = self.idle_clock.now(now);
            if let Some(message) = message {
                let node = message.node;
                match message.event {
                    SourceEvent::Opened { partition, name } => {
                        self.opened(node, partition, name, idle_now);
                    }
                    SourceEvent::Data {
                        partition,
                        batch,
                        bad,
                        position,
                        ..
                    } => {
                        self.applied[node] += batch.num_rows as u64;
                        self.source_data(node, partition, batch, bad, idle_now)?;
                        if let Some(p) = position {
                            self.positions[node].insert(p.partition, p.offset);
                        }
                    }
                    SourceEvent::Closed { partition } => {
                        if let Some(t) = &mut self.trackers[node] {
                            t.close(partition);
                        }
                        if let Some(name) = self.partition_names[node].remove(&partition) {
                            // A record-numbered partition (Kafka) keeps its offset: a later
                            // run goes on from there (and the offset is what gets committed).
                            if !matches!(self.positions[node].get(&name), Some(Offset::Next(_))) {
                                self.positions[node].insert(name, Offset::End);
                            }
                        }
                    }
                    SourceEvent::Watermark {
                        partition,
                        watermark,
                    } => {
                        if let Some(t) = &mut self.trackers[node] {
                            t.advance(partition, watermark, idle_now);
                            self.idle[node] = t.is_idle();
                        }
                    }
                    SourceEvent::Idle { partition } => {
                        if let Some(t) = &mut self.trackers[node] {
                            t.mark_idle(partition);
                            self.idle[node] = t.is_idle();
                        }
                    }
                    SourceEvent::Released { partitions, reply } => {
                        self.released(node, &partitions, &reply, now)?;
                    }
                    SourceEvent::Finished => {
                        if let Some(t) = &mut self.trackers[node] {
                            t.finish();
                        }
                        self.finished[node] = true;
                        finished_sources += 1;
                    }
                    SourceEvent::Failed(error) => {
                        return Err(EngineError::Source {
                            component: self.plan.nodes[node].name.clone(),
                            error,
                        });
                    }
                }
                self.update_source_watermark(node);
                self.propagate()?;
            }
            if now - last_tick >= 200 {
                last_tick = now;
                self.tick(now)?;
            }
            if self.checkpointing.as_ref().is_some_and(|c| c.due(now)) {
                self.checkpoint(false, now)?;
            }
        }
        if interrupted {
            let open_windows = self
                .operators
                .iter()
                .flatten()
                .map(|op| op.open_windows())
                .sum();
            let now = options.clock.now_ms();
            // With checkpoints: a savepoint holds the open windows and publishes what was
            // written, so a restart loses and repeats nothing. Without: publish, discard.
            let final_checkpoint = if self.checkpointing.is_some() {
                Some(self.checkpoint(false, now)?)
            } else {
                self.finish_sinks()?;
                None
            };
            self.sync_sinks()?;
            return Ok(RunSummary {
                snapshot: self.metrics.snapshot(),
                interrupted: true,
                open_windows,
                final_checkpoint,
            });
        }
        // End of input: every window fires, then every stage flushes in graph order.
        for i in 0..self.plan.nodes.len() {
            if matches!(self.plan.nodes[i].kind, NodeKind::Source(_)) {
                self.out_watermark[i] = MAX_WATERMARK;
            }
        }
        self.propagate()?;
        for i in 0..self.plan.nodes.len() {
            self.finish_node(i)?;
        }
        let final_checkpoint = if self.checkpointing.is_some() {
            let now = options.clock.now_ms();
            Some(self.checkpoint(true, now)?)
        } else {
            self.finish_sinks()?;
            None
        };
        self.sync_sinks()?;
        if final_checkpoint.is_none() {
            // Everything read has reached the sinks and is published: sources may commit
            // their positions ("checkpoint 0", see `CompletedCheckpoints`).
            for (node, _) in self.plan.sources() {
                self.completed[node].complete(0, checkpointing::positions(&self.positions[node]));
            }
        }
        Ok(RunSummary {
            snapshot: self.metrics.snapshot(),
            interrupted: false,
            open_windows: 0,
            final_checkpoint,
        })
    }

    /// A source partition (re)started: it holds the watermark until it has data, or where the
    /// restored checkpoint had it.
    /// `idle_now` is on the [`IdleClock`].
    fn opened(&mut self, node: usize, partition: u32, name: String, idle_now: i64) {
        if let Some(t) = &mut self.trackers[node] {
            t.open(partition, idle_now);
            // The idle flag saved with it is not restored (see `restore_partition`).
            if let Some((max_time, _idle)) = self.restored_partitions[node].remove(&name) {
                t.restore_partition(partition, max_time, idle_now);
            }
        }
        self.partition_names[node].insert(partition, name);
    }

    /// A source hands `partitions` to another process: with checkpoints, one is taken now so
    /// the positions committed for them cover exactly what was applied; the reply carries
    /// them. The partitions then stop counting for the watermark (their state is kept, by
    /// name, should they come back) and leave the positions of later checkpoints.
    fn released(
        &mut self,
        node: usize,
        partitions: &[u32],
        reply: &std::sync::mpsc::Sender<Option<Vec<crate::runtime::Position>>>,
        now: i64,
    ) -> Result<()> {
        let names: Vec<String> = partitions
            .iter()
            .filter_map(|p| self.partition_names[node].get(p).cloned())
            .collect();
        let positions = if self.checkpointing.is_some() {
            self.checkpoint(false, now)?;
            Some(
                names
                    .iter()
                    .filter_map(|n| {
                        let offset = self.positions[node].get(n)?.clone();
                        Some(crate::runtime::Position::new(n.clone(), offset))
                    })
                    .collect(),
            )
        } else {
            None
        };
        for p in partitions {
            if let Some(t) = &mut self.trackers[node] {
                if let Some((_, max_time, idle)) = t.partitions().find(|(q, _, _)| q == p)
                    && let Some(name) = self.partition_names[node].get(p)
                {
                    self.restored_partitions[node].insert(name.clone(), (max_time, idle));
                }
                t.close(*p);
            }
            if let Some(name) = self.partition_names[node].remove(p) {
                self.positions[node].remove(&name);
            }
        }
        let _ = reply.send(positions);
        Ok(())
    }

    fn finish_node(&mut self, i: usize) -> Result<()> {
        let mut out = Emitter::default();
        if let Some(op) = self.operators[i].as_mut() {
            op.finish(&mut out)?;
        }
        for (port, batch) in out.batches {
            self.deliver(i, port, batch);
        }
        self.drain()
    }

    /// Without checkpoints: every sink publishes what it wrote.
    fn finish_sinks(&mut self) -> Result<()> {
        for sink in self.sinks.iter().flatten() {
            sink.finish()?;
        }
        Ok(())
    }

    /// Sends every sink the small batches gathered for it.
    fn flush_sinks(&self) -> Result<()> {
        for sink in self.sinks.iter().flatten() {
            sink.flush()?;
        }
        Ok(())
    }

    /// Waits for every sink's queued work (commits) and reports the first failure.
    fn sync_sinks(&mut self) -> Result<()> {
        for sink in self.sinks.iter().flatten() {
            sink.sync()?;
        }
        Ok(())
    }

    /// Processing-time housekeeping: idle partitions, file rolling by age.
    fn tick(&mut self, now: i64) -> Result<()> {
        let mut advanced = false;
        for node in 0..self.trackers.len() {
            if let Some(t) = &mut self.trackers[node] {
                if t.check_idle(self.idle_clock.now(now)) {
                    advanced = true;
                }
                let idle = t.is_idle();
                if idle != self.idle[node] {
                    self.idle[node] = idle;
                    advanced = true;
                }
                self.update_source_watermark(node);
            }
        }
        if advanced {
            self.propagate()?;
        }
        for i in 0..self.operators.len() {
            let mut out = Emitter::default();
            if let Some(op) = self.operators[i].as_mut() {
                op.on_tick(now, &mut out)?;
            }
            for (port, batch) in out.batches {
                self.deliver(i, port, batch);
            }
        }
        for sink in self.sinks.iter().flatten() {
            sink.tick(now)?;
        }
        self.drain()
    }

    fn update_source_watermark(&mut self, node: usize) {
        let wm = match &self.trackers[node] {
            Some(t) => t.current(),
            None if self.finished[node] => MAX_WATERMARK,
            None => MIN_WATERMARK,
        };
        if wm > self.out_watermark[node] {
            self.out_watermark[node] = wm;
        }
        let low = self
            .plan
            .sources()
            .filter(|(i, s)| s.event_time.is_some() && !self.idle[*i])
            .map(|(i, _)| self.out_watermark[i])
            .min()
            .unwrap_or(MIN_WATERMARK);
        self.metrics.watermark.store(low, Ordering::Relaxed);
    }

    fn source_data(
        &mut self,
        node: usize,
        partition: u32,
        mut batch: Batch,
        bad: Vec<crate::runtime::BadRecord>,
        idle_now: i64,
    ) -> Result<()> {
        if !bad.is_empty()
            && let Some(router) = &self.source_bad[node]
        {
            let input = self.partition_names[node]
                .get(&partition)
                .map_or("input", String::as_str);
            let rejected = bad
                .into_iter()
                .map(|b| Rejected {
                    error: b.error,
                    raw: b.raw,
                    position: match b.offset {
                        Some(offset) => format!("{input}@{offset}"),
                        None if b.line > 0 => format!("{input}:{}", b.line),
                        None => String::new(),
                    },
                })
                .collect();
            let mut out = Emitter::default();
            router.route(rejected, &mut out)?;
            for (port, b) in out.batches {
                self.deliver(node, port, b);
            }
        }
        let newest = batch.times.iter().max().copied();
        if let Some(tracker) = &mut self.trackers[node] {
            let mut watermarks = Vec::new();
            tracker.assign(partition, &batch.times, idle_now, &mut watermarks);
            batch.watermarks = watermarks;
            if self.idle[node] {
                self.idle[node] = false;
            }
        }
        self.deliver(node, 0, batch);
        self.drain()?;
        // The progress display shows `newest - watermark`: publish the watermark first so
        // the lag never includes the batch being processed.
        self.update_source_watermark(node);
        if let Some(max) = newest {
            self.metrics
                .max_event_time
                .fetch_max(max, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Queues `batch` (from `node`'s `port`) for every reader.
    fn deliver(&mut self, node: usize, port: usize, mut batch: Batch) {
        let readers = &self.consumers[node][port];
        if readers.is_empty() || batch.is_empty() {
            return;
        }
        let has_time = self.plan.nodes[node].outputs[port].has_time;
        if has_time && batch.watermarks.len() != batch.num_rows {
            // Rows a stage emits carry the watermark it had before emitting them.
            batch.watermarks = vec![self.out_watermark[node]; batch.num_rows];
        }
        for (k, &(reader, input)) in readers.iter().enumerate() {
            let mut b = if k + 1 == readers.len() {
                std::mem::replace(&mut batch, Batch::new(Vec::new(), 0))
            } else {
                batch.clone()
            };
            if has_time && self.plan.nodes[reader].inputs.len() > 1 {
                // A stage reading several streams sees the minimum of their watermarks.
                let others = self.input_watermark(reader, Some(input));
                for w in &mut b.watermarks {
                    *w = (*w).min(others);
                }
            }
            self.queue.push_back((reader, input, b));
        }
    }

    /// The minimum output watermark of a node's inputs (optionally skipping one input),
    /// ignoring idle sources unless all are idle.
    fn input_watermark(&self, node: usize, skip: Option<usize>) -> i64 {
        let inputs: Vec<StreamRef> = self.plan.nodes[node]
            .inputs
            .iter()
            .enumerate()
            .filter(|(j, _)| Some(*j) != skip)
            .map(|(_, r)| *r)
            .collect();
        let active: Vec<i64> = inputs
            .iter()
            .filter(|r| !self.idle[r.node])
            .map(|r| self.out_watermark[r.node])
            .collect();
        if active.is_empty() {
            inputs
                .iter()
                .map(|r| self.out_watermark[r.node])
                .max()
                .unwrap_or(MAX_WATERMARK)
        } else {
            active.into_iter().min().unwrap_or(MAX_WATERMARK)
        }
    }

    fn drain(&mut self) -> Result<()> {
        while let Some((node, input, batch)) = self.queue.pop_front() {
            if let Some(sink) = &self.sinks[node] {
                sink.write(batch)?;
                continue;
            }
            let mut out = self.emitter(node);
            if let Some(op) = self.operators[node].as_mut() {
                op.process(input, batch, &mut out)?;
            }
            if let Some(e) = out.take_error() {
                return Err(e);
            }
            for (port, b) in out.batches {
                self.deliver(node, port, b);
            }
            self.check_state()?;
        }
        Ok(())
    }

    /// Where `node`'s stage emits: straight to the sink thread when its main output's only
    /// reader is a sink with no other input and nothing queued (so every sink still sees rows
    /// in the order they were produced); else into the queue.
    fn emitter(&self, node: usize) -> Emitter {
        if let Some([(reader, _)]) = self.consumers[node].first().map(Vec::as_slice)
            && self.plan.nodes[*reader].inputs.len() == 1
            && let Some(sink) = &self.sinks[*reader]
            && !self.queue.iter().any(|(n, _, _)| n == reader)
        {
            let has_time = self.plan.nodes[node].outputs[0].has_time;
            return Emitter::direct(sink.clone(), has_time.then_some(self.out_watermark[node]));
        }
        Emitter::default()
    }

    /// Publishes the groups open across window stages, and the most seen so far; stops the
    /// run when window state passes the memory limit, naming the stage that holds the most.
    fn check_state(&self) -> Result<()> {
        let open: usize = self
            .operators
            .iter()
            .flatten()
            .map(|op| op.open_groups())
            .sum();
        self.metrics
            .open_groups
            .store(open as u64, Ordering::Relaxed);
        self.metrics
            .peak_open_groups
            .fetch_max(open as u64, Ordering::Relaxed);
        let Some(limit) = self.max_state_bytes else {
            return Ok(());
        };
        let mut total = 0u64;
        let mut largest: Option<(usize, u64)> = None;
        for (node, op) in self.operators.iter().enumerate() {
            let Some(op) = op else { continue };
            let bytes = op.state_bytes() as u64;
            total += bytes;
            if largest.is_none_or(|(_, b)| bytes > b) {
                largest = Some((node, bytes));
            }
        }
        match largest {
            Some((node, _)) if total > limit => {
                let op = self.operators[node].as_ref().expect("a stage with state");
                Err(EngineError::StateLimit {
                    stage: self.plan.nodes[node].name.clone(),
                    groups: op.open_groups() as u64,
                    windows: op.open_windows() as u64,
                    bytes: indicatif::HumanBytes(total).to_string(),
                    limit: indicatif::HumanBytes(limit).to_string(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Advances watermarks through the graph in order; stages fire what became complete.
    fn propagate(&mut self) -> Result<()> {
        for i in 0..self.plan.nodes.len() {
            if matches!(self.plan.nodes[i].kind, NodeKind::Source(_)) {
                continue;
            }
            let wm = self.input_watermark(i, None);
            if wm > self.in_watermark[i] {
                self.in_watermark[i] = wm;
                let mut out = self.emitter(i);
                if let Some(op) = self.operators[i].as_mut() {
                    op.on_watermark(wm, &mut out)?;
                }
                if let Some(e) = out.take_error() {
                    return Err(e);
                }
                if let Some(sink) = &self.sinks[i] {
                    sink.watermark(wm)?;
                }
                for (port, batch) in out.batches {
                    self.deliver(i, port, batch);
                }
                self.drain()?;
                self.out_watermark[i] = self.operators[i]
                    .as_ref()
                    .map_or(wm, |op| op.output_watermark(wm));
            }
            // A stage whose every input is idle is idle itself (it holds nobody back).
            self.idle[i] = !self.plan.nodes[i].inputs.is_empty()
                && self.plan.nodes[i].inputs.iter().all(|r| self.idle[r.node]);
        }
        Ok(())
    }
}
