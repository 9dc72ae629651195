//! The validated pipeline: a typed graph of stages that the embedded engine runs and the Flink
//! translation prints. Building it ([`build`]) performs every semantic check and collects all
//! problems; everything downstream takes a [`Plan`] and never re-checks the config.

mod build;
pub mod connectors;
mod partitioning;
pub mod path_template;

pub use build::{ValidateOptions, build, dead_letter_schema};

use std::fmt;

use crate::config::{SinkConfig, SourceConfig};
use crate::data::{DataType, SchemaRef};
use crate::expr::{AggregateExprs, Expr};
use crate::format::encode::Projection;
use path_template::PathTemplate;

pub use crate::config::source::BadRecordPolicy;
pub use crate::config::transform::EmitMode;

/// A validated pipeline.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    /// Stages in topological order: every stage comes after the stages it reads.
    pub nodes: Vec<Node>,
    pub checkpoint: Option<CheckpointPlan>,
}

/// One output of a stage: port 0 is the main output; others are named side outputs (late
/// events, dead letters).
#[derive(Debug, Clone)]
pub struct Port {
    /// Stream name that `inputs:` refer to (the component name for port 0).
    pub name: String,
    pub schema: SchemaRef,
    /// Whether records of this stream carry event time.
    pub has_time: bool,
}

/// A reference to one output port of a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamRef {
    pub node: usize,
    pub port: usize,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub kind: NodeKind,
    pub inputs: Vec<StreamRef>,
    /// Empty for sinks.
    pub outputs: Vec<Port>,
}

#[derive(Debug, Clone)]
pub enum NodeKind {
    Source(SourcePlan),
    Filter(FilterPlan),
    Select(SelectPlan),
    Explode(ExplodePlan),
    Window(WindowPlan),
    Sink(SinkPlan),
}

impl NodeKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            NodeKind::Source(s) => s.config.type_name(),
            NodeKind::Filter(_) => "filter",
            NodeKind::Select(_) => "select",
            NodeKind::Explode(_) => "explode",
            NodeKind::Window(_) => "window",
            NodeKind::Sink(s) => s.config.type_name(),
        }
    }
}

/// What happens to records a stage cannot process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadRecords {
    pub policy: BadRecordPolicy,
    /// The output port of the dead-letter stream (with `dead_letter`).
    pub port: Option<usize>,
}

impl Default for BadRecords {
    fn default() -> Self {
        BadRecords {
            policy: BadRecordPolicy::Skip,
            port: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SourcePlan {
    /// The source as written (for plans and the Flink translation).
    pub config: SourceConfig,
    /// The connector's settings, with defaults applied: what the connector reads.
    pub connector: connectors::SourceConnector,
    pub event_time: Option<EventTimePlan>,
    pub bad_records: BadRecords,
}

/// Where a source's event time comes from.
pub use crate::runtime::EventTime as EventTimePlan;

#[derive(Debug, Clone)]
pub struct FilterPlan {
    pub predicate: Expr,
    /// The SQL as written, for plans and the Flink translation.
    pub sql: String,
    pub bad_records: BadRecords,
}

#[derive(Debug, Clone)]
pub struct SelectPlan {
    /// Output columns: name, expression over the input, SQL text (`None` for passed-through
    /// input columns with `append: true`).
    pub columns: Vec<(String, Expr, Option<String>)>,
    pub bad_records: BadRecords,
}

#[derive(Debug, Clone)]
pub struct ExplodePlan {
    /// The array column of the input.
    pub column: usize,
    pub element_type: DataType,
    pub keep_empty: bool,
}

/// Window shapes, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    Tumbling { size: i64 },
    Sliding { size: i64, slide: i64 },
    Session { gap: i64 },
}

#[derive(Debug, Clone)]
pub struct WindowPlan {
    pub kind: WindowKind,
    pub aggregates: AggregateExprs,
    /// SQL text of each group key and output, for plans and the Flink translation.
    pub key_sql: Vec<String>,
    pub output_sql: Vec<String>,
    pub allowed_lateness_ms: i64,
    /// How results that late events change are written (matters with allowed lateness).
    pub emit: EmitMode,
    /// Output port receiving late events, when configured.
    pub late_port: Option<usize>,
    pub bad_records: BadRecords,
}

impl WindowPlan {
    /// Whether late events re-emit rows: then the output has a [`REVISION_FIELD`] column.
    pub fn emits_updates(&self) -> bool {
        self.allowed_lateness_ms > 0 && self.emit == EmitMode::Updates
    }

    /// How long after a window's end its rows are written: the allowed lateness with
    /// `emit: final`, else 0.
    pub fn emit_delay_ms(&self) -> i64 {
        match self.emit {
            EmitMode::Final => self.allowed_lateness_ms,
            EmitMode::Updates => 0,
        }
    }
}

/// The column of a window's output that numbers the rows of one window and key when late
/// events update it: 0 for the row written when the window ends, then 1, 2, ….
pub const REVISION_FIELD: &str = "revision";

#[derive(Debug, Clone)]
pub struct SinkPlan {
    /// The sink as written (for plans and the Flink translation).
    pub config: SinkConfig,
    /// The connector's settings, with defaults applied: what the connector reads.
    pub connector: connectors::SinkConnector,
    /// Which input columns are written, under which names.
    pub projection: Projection,
    /// Bucket template of object sinks.
    pub path: Option<PathTemplate>,
    /// Kafka message key / Kinesis partition key.
    pub key: Option<Expr>,
}

#[derive(Debug, Clone)]
pub struct CheckpointPlan {
    pub url: String,
    pub interval_ms: i64,
    /// Complete checkpoints kept (older ones are deleted).
    pub retain: usize,
}

/// Checkpoints kept by default: the newest, and two to fall back to if it cannot be read.
pub const DEFAULT_CHECKPOINT_RETAIN: usize = 3;
/// Time between checkpoints by default.
pub const DEFAULT_CHECKPOINT_INTERVAL_MS: i64 = 60_000;

impl Plan {
    /// The stages reading from `stream`, with the input index they read it at.
    pub fn consumers(&self, stream: StreamRef) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            for (j, input) in node.inputs.iter().enumerate() {
                if *input == stream {
                    out.push((i, j));
                }
            }
        }
        out
    }

    pub fn port(&self, stream: StreamRef) -> &Port {
        &self.nodes[stream.node].outputs[stream.port]
    }

    pub fn sources(&self) -> impl Iterator<Item = (usize, &SourcePlan)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| match &n.kind {
                NodeKind::Source(s) => Some((i, s)),
                _ => None,
            })
    }
}

fn ms(ms: i64) -> String {
    crate::config::Duration::from_millis(ms).to_string()
}

/// `streamctl plan`: the stages, their schemas and settings, like an EXPLAIN.
impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "pipeline {}", self.name)?;
        for node in &self.nodes {
            let inputs: Vec<String> = node
                .inputs
                .iter()
                .map(|r| self.port(*r).name.clone())
                .collect();
            write!(f, "\n{} `{}`", node.kind.type_name(), node.name)?;
            if !inputs.is_empty() {
                write!(f, " <- {}", inputs.join(", "))?;
            }
            writeln!(f)?;
            match &node.kind {
                NodeKind::Source(s) => {
                    if let Some(et) = &s.event_time {
                        let field = &node.outputs[0].schema.fields[et.column].name;
                        write!(
                            f,
                            "  event time: {field}, watermark = max - {}",
                            ms(et.max_out_of_orderness_ms)
                        )?;
                        if let Some(idle) = et.idle_timeout_ms {
                            write!(f, ", idle after {}", ms(idle))?;
                        }
                        writeln!(f)?;
                    }
                    writeln!(f, "  bad records: {}", s.bad_records.policy.name())?;
                }
                NodeKind::Filter(p) => writeln!(f, "  where {}", p.sql)?,
                NodeKind::Select(p) => {
                    for (name, _, sql) in &p.columns {
                        match sql {
                            Some(sql) => writeln!(f, "  {name} = {sql}")?,
                            None => writeln!(f, "  {name}")?,
                        }
                    }
                }
                NodeKind::Explode(p) => {
                    let input = &self.port(node.inputs[0]).schema;
                    writeln!(
                        f,
                        "  unnest {}{}",
                        input.fields[p.column].name,
                        if p.keep_empty { " (keep empty)" } else { "" }
                    )?;
                }
                NodeKind::Window(w) => {
                    match w.kind {
                        WindowKind::Tumbling { size } => writeln!(f, "  tumbling {}", ms(size))?,
                        WindowKind::Sliding { size, slide } => {
                            writeln!(f, "  sliding {} every {}", ms(size), ms(slide))?
                        }
                        WindowKind::Session { gap } => writeln!(f, "  session gap {}", ms(gap))?,
                    }
                    if !w.key_sql.is_empty() {
                        writeln!(f, "  group by {}", w.key_sql.join(", "))?;
                    }
                    for ((name, _), sql) in w.aggregates.outputs.iter().zip(&w.output_sql) {
                        writeln!(f, "  {name} = {sql}")?;
                    }
                    if w.allowed_lateness_ms > 0 {
                        writeln!(f, "  allowed lateness {}", ms(w.allowed_lateness_ms))?;
                    }
                }
                NodeKind::Sink(s) => {
                    let names: Vec<&str> = s
                        .projection
                        .fields
                        .iter()
                        .map(|f| f.name.as_str())
                        .collect();
                    writeln!(f, "  writes {}", names.join(", "))?;
                    match &s.config {
                        SinkConfig::S3(o) => {
                            writeln!(f, "  to {}{} as {}", o.url, o.path, o.format.name())?
                        }
                        SinkConfig::File(o) => {
                            writeln!(f, "  to {} as {}", o.path, o.format.name())?
                        }
                        _ => {}
                    }
                }
            }
            for port in &node.outputs {
                let time = if port.has_time { " (event time)" } else { "" };
                writeln!(f, "  -> {}: {}{time}", port.name, port.schema)?;
            }
        }
        Ok(())
    }
}

/// A pipeline file after validation: the plan if it is valid, and every diagnostic.
pub struct Validated {
    pub file: crate::diag::SourceFile,
    pub plan: Option<Plan>,
    pub diagnostics: Vec<crate::diag::Diagnostic>,
}

impl Validated {
    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    pub fn warning_count(&self) -> usize {
        self.diagnostics.len() - self.error_count()
    }

    /// What a valid pipeline should know about how it runs that is neither an error nor a
    /// warning: each Kinesis source reads every shard in this one process.
    pub fn notes(&self) -> Vec<String> {
        let Some(plan) = &self.plan else {
            return Vec::new();
        };
        plan.sources()
            .filter_map(|(node, s)| match &s.connector {
                connectors::SourceConnector::Kinesis(k) => Some(format!(
                    "source `{}` reads every shard of Kinesis stream `{}` in one process: there \
                     are no leases (as the KCL keeps in DynamoDB), so several processes running \
                     it would each read the whole stream; run one per stream (README: Kinesis)",
                    plan.nodes[node].name, k.stream
                )),
                _ => None,
            })
            .collect()
    }
}

/// Loads and validates a pipeline's text: structure, then semantics. Pure: reads nothing but
/// `env` (for `${VAR}`).
pub fn validate(path: &str, text: String, env: &dyn Fn(&str) -> Option<String>) -> Validated {
    validate_with(path, text, env, &|_, _| Vec::new())
}

/// As [`validate`], adding the diagnostics `extra` finds in a valid plan (the checks of one
/// execution target, such as `streamctl::flink`'s).
pub fn validate_with(
    path: &str,
    text: String,
    env: &dyn Fn(&str) -> Option<String>,
    extra: &dyn Fn(&crate::config::Loaded, &Plan) -> Vec<crate::diag::Diagnostic>,
) -> Validated {
    match crate::config::load_str(path, text, env) {
        Ok(loaded) => {
            let (plan, mut diagnostics) = build(&loaded, &ValidateOptions::default());
            if let Some(plan) = &plan {
                diagnostics.extend(extra(&loaded, plan));
                crate::diag::sort(&mut diagnostics);
            }
            Validated {
                file: loaded.file,
                plan,
                diagnostics,
            }
        }
        Err(e) => Validated {
            file: e.file,
            plan: None,
            diagnostics: e.diagnostics,
        },
    }
}
