//! A job: a validated plan, the connectors built for it, and its checkpoints. This is where
//! connectors are looked up by their `type:` (the registries in [`crate::sources`] and
//! [`crate::sinks`]) and handed to the engine, which knows them only through the runtime
//! contract; and where a restart finds the checkpoint it resumes from.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::checkpoint::{self, Layout, Restored};
use crate::clock::Clock;
use crate::engine::operator::EngineError;
use crate::engine::{self, Checkpointing, Connectors, RunOptions, RunSummary};
use crate::plan::{NodeKind, Plan};
use crate::runtime::{ConnectorError, IfExists, Metrics};

/// How to run a job.
#[derive(Clone)]
pub struct JobOptions {
    /// Stop each source at the end of what exists now.
    pub bounded: bool,
    pub clock: Arc<dyn Clock>,
    /// Set to stop the run (Ctrl-C, SIGTERM).
    pub stop: Arc<AtomicBool>,
    /// What sinks do with data already at their destination on a fresh start.
    pub if_exists: IfExists,
    /// Where checkpoints go, overriding the pipeline's `checkpoint.url` (a directory,
    /// `file://` or `s3://` URL). Checkpoints are on when either is set.
    pub checkpoint_dir: Option<String>,
    /// Time between checkpoints, overriding the pipeline's `checkpoint.interval`.
    pub checkpoint_interval_ms: Option<i64>,
    /// Most bytes window state may hold (see [`RunOptions::max_state_bytes`]).
    pub max_state_bytes: Option<u64>,
}

/// What a job resumes from, for the CLI to say.
#[derive(Debug, Clone)]
pub struct Resume {
    pub location: String,
    /// `None`: no checkpoint yet, a fresh start.
    pub restored: Option<Restored>,
}

/// A job ready to run: connectors built, checkpoint found and checked.
pub struct Prepared<'p> {
    plan: &'p Plan,
    connectors: Connectors,
    checkpointing: Option<Checkpointing>,
    /// With checkpoints: where from.
    pub resume: Option<Resume>,
}

/// Builds the connectors of `plan` and finds its checkpoint; every connector that cannot be
/// built is reported at once.
///
/// # Errors
/// Connectors that cannot be built, a checkpoint location that cannot be used, or a
/// checkpoint this pipeline cannot resume from (naming what changed).
pub fn prepare<'p>(
    plan: &'p Plan,
    options: &JobOptions,
    metrics: &Arc<Metrics>,
) -> Result<Prepared<'p>, EngineError> {
    let checkpoint_url = options
        .checkpoint_dir
        .clone()
        .or_else(|| plan.checkpoint.as_ref().map(|c| c.url.clone()));
    let mut problems = Vec::new();
    let mut sources = Vec::new();
    for (node, source) in plan.sources() {
        let name = &plan.nodes[node].name;
        match crate::sources::build(&source.connector, options.bounded) {
            Ok(s) => {
                if checkpoint_url.is_some() && !s.replayable() {
                    problems.push(format!(
                        "source `{name}`: a {} source cannot be read again after a restart, so it cannot be used with checkpoints (read a file, Kafka or Kinesis instead)",
                        source.config.type_name()
                    ));
                }
                sources.push(s);
            }
            Err(e) => problems.push(format!("source `{name}`: {e}")),
        }
    }
    let mut sinks = Vec::new();
    for (node, n) in plan.nodes.iter().enumerate() {
        if let NodeKind::Sink(s) = &n.kind {
            match crate::sinks::build(s, metrics.clone(), options.clock.clone()) {
                Ok(sink) => sinks.push((node, sink)),
                Err(e) => problems.push(format!("sink `{}`: {e}", n.name)),
            }
        }
    }
    if !problems.is_empty() {
        return Err(EngineError::Setup(problems));
    }
    let connectors = Connectors { sources, sinks };
    let Some(url) = checkpoint_url else {
        return Ok(Prepared {
            plan,
            connectors,
            checkpointing: None,
            resume: None,
        });
    };
    let store = checkpoint::store::open(&url).map_err(EngineError::Checkpoint)?;
    let instance = store.instance().map_err(EngineError::Checkpoint)?;
    let restored = checkpoint::load_latest(store.as_ref()).map_err(EngineError::Checkpoint)?;
    let layout = Layout::of(plan);
    if let Some(r) = &restored {
        let pending: Vec<&str> = r
            .checkpoint
            .sinks
            .iter()
            .filter(|s| !s.snapshot.pending.is_empty())
            .map(|s| s.name.as_str())
            .collect();
        let problems = r.checkpoint.layout.incompatibilities(&layout, &pending);
        if !problems.is_empty() {
            return Err(EngineError::Checkpoint(ConnectorError::user(format!(
                "checkpoint {} in {} was taken by a pipeline whose state does not fit this one:\n  - {}\nUndo the change to resume, or start over with another checkpoint directory (or move {} away); output already published stays.",
                r.checkpoint.id,
                store.describe(),
                problems.join("\n  - "),
                store.describe()
            ))));
        }
    }
    let interval_ms = options
        .checkpoint_interval_ms
        .or(plan.checkpoint.as_ref().map(|c| c.interval_ms))
        .unwrap_or(crate::plan::DEFAULT_CHECKPOINT_INTERVAL_MS);
    let retain = plan
        .checkpoint
        .as_ref()
        .map_or(crate::plan::DEFAULT_CHECKPOINT_RETAIN, |c| c.retain);
    let resume = Resume {
        location: store.describe(),
        restored: restored.clone(),
    };
    Ok(Prepared {
        plan,
        connectors,
        checkpointing: Some(Checkpointing::new(
            store,
            interval_ms,
            retain,
            instance,
            restored,
            layout,
            plan.name.clone(),
        )),
        resume: Some(resume),
    })
}

impl Prepared<'_> {
    /// Runs the job to its end (or until stopped).
    ///
    /// # Errors
    /// As [`engine::run`].
    pub fn run(
        self,
        options: &JobOptions,
        metrics: Arc<Metrics>,
    ) -> Result<RunSummary, EngineError> {
        let run_options = RunOptions {
            bounded: options.bounded,
            clock: options.clock.clone(),
            stop: options.stop.clone(),
            if_exists: options.if_exists,
            max_state_bytes: options.max_state_bytes,
        };
        engine::run(
            self.plan,
            self.connectors,
            &run_options,
            self.checkpointing,
            metrics,
        )
    }
}
