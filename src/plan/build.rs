//! Validation: config → [`Plan`]. Every semantic check lives here and reports through
//! diagnostics located in the pipeline file; nothing needs the network or credentials.
//!
//! Checks, in data-path order: names and wiring (unknown, duplicate, cyclic inputs; unread
//! outputs), sources (schema, event time, start positions), transforms (SQL compiles and
//! type-checks against the fields present at that point; windows have event time upstream and
//! sane sizes), sinks (written fields exist, path templates are safe), checkpoints.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::connectors::SinkConnector;
use super::path_template::{self, PathTemplate, Segment, TemplateError};
use super::{
    BadRecords, CheckpointPlan, EmitMode, EventTimePlan, ExplodePlan, FilterPlan, Node, NodeKind,
    Plan, Port, REVISION_FIELD, SelectPlan, SinkPlan, SourcePlan, StreamRef, WindowKind,
    WindowPlan,
};
use crate::config::sink::{ObjectSink, OutputFormat, PathLayout};
use crate::config::source::{BadRecordPolicy, BadRecordsConfig, KafkaStart, KinesisStart};
use crate::config::transform::{WindowSpec, WindowTransform};
use crate::config::yaml::Node as YamlNode;
use crate::config::{Loaded, Locator, SinkConfig, SourceConfig, TransformConfig};
use crate::data::{DataType, Field, Schema};
use crate::diag::{Diagnostic, SourceFile, Span, closest, did_you_mean, list_names};
use crate::expr::{self, AggFunc, Expr, ExprError};
use crate::format::encode::Projection;
use crate::sources::generator;

/// Knobs of validation.
#[derive(Debug, Clone, Default)]
pub struct ValidateOptions {}

/// The fields a late-event stream adds to the window's input fields: the window each row was
/// too late for.
pub const LATE_WINDOW_FIELDS: [&str; 2] = ["late_window_start", "late_window_end"];

/// The columns of a dead-letter stream.
pub fn dead_letter_schema() -> Schema {
    Schema::new(vec![
        Field::new("component", DataType::String),
        Field::new("error", DataType::String),
        // The record's bytes exactly as read; base64 when they are not UTF-8 text.
        Field::new("raw", DataType::String),
        Field::new("position", DataType::String),
        Field::new("raw_base64", DataType::Bool),
    ])
}

/// Validates a loaded pipeline. Returns the plan when there are no errors, and every
/// diagnostic (errors and warnings) found.
pub fn build(loaded: &Loaded, _options: &ValidateOptions) -> (Option<Plan>, Vec<Diagnostic>) {
    let mut b = Builder {
        file: &loaded.file,
        loc: Locator { root: &loaded.root },
        diagnostics: loaded.diagnostics.clone(),
        quiet_outputs: HashSet::new(),
        broken: &loaded.broken,
        blocked: HashSet::new(),
        pipeline_name: &loaded.config.name,
    };
    let plan = b.plan(&loaded.config);
    if let Some(p) = &plan {
        let warnings = super::partitioning::check(p, &b.loc);
        b.diagnostics.extend(warnings);
    }
    let mut diagnostics = b.diagnostics;
    crate::diag::sort(&mut diagnostics);
    let ok = !diagnostics.iter().any(Diagnostic::is_error);
    (plan.filter(|_| ok), diagnostics)
}

/// Which section a component is declared in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Source,
    Transform,
    Sink,
}

impl Section {
    fn key(self) -> &'static str {
        match self {
            Section::Source => "sources",
            Section::Transform => "transforms",
            Section::Sink => "sinks",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Section::Source => "source",
            Section::Transform => "transform",
            Section::Sink => "sink",
        }
    }
}

/// A name `inputs:` can refer to: a component's main output or a named side output.
#[derive(Debug, Clone)]
struct StreamName {
    /// Index into the component list.
    owner: usize,
    /// `None` for the main output; otherwise which side output.
    side: Option<SideKind>,
    span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SideKind {
    Late,
    DeadLetter,
}

struct Component<'c> {
    name: &'c str,
    section: Section,
    source: Option<&'c SourceConfig>,
    transform: Option<&'c TransformConfig>,
    sink: Option<&'c SinkConfig>,
}

impl Component<'_> {
    fn path(&self) -> [&str; 2] {
        [self.section.key(), self.name]
    }

    fn inputs(&self) -> &[String] {
        match (self.transform, self.sink) {
            (Some(t), _) => t.inputs(),
            (_, Some(s)) => s.inputs(),
            _ => &[],
        }
    }

    fn type_name(&self) -> &'static str {
        self.source
            .map(SourceConfig::type_name)
            .or(self.transform.map(TransformConfig::type_name))
            .or(self.sink.map(SinkConfig::type_name))
            .unwrap_or("component")
    }

    /// "window transform `per_user`".
    fn describe(&self) -> String {
        format!(
            "{} {} `{}`",
            self.type_name(),
            self.section.noun(),
            self.name
        )
    }
}

struct Builder<'a> {
    file: &'a SourceFile,
    loc: Locator<'a>,
    diagnostics: Vec<Diagnostic>,
    /// Streams not to report as unread: suggested for a misspelled input, or declared twice.
    quiet_outputs: HashSet<String>,
    /// Components with structural errors (already reported): present, but unknown.
    broken: &'a [crate::config::BrokenComponent],
    /// Components reading a broken one: their checks would only repeat its errors.
    blocked: HashSet<usize>,
    /// For defaults derived from it (the Kafka group id).
    pipeline_name: &'a str,
}

/// The output ports a component produced, once validated.
type Ports = Option<Vec<Port>>;

impl Builder<'_> {
    fn error(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }

    fn plan(&mut self, config: &crate::config::PipelineConfig) -> Option<Plan> {
        if config.version != 1 {
            let span = self.loc.value(&["version"]);
            self.error(
                Diagnostic::error(
                    "unsupported-version",
                    format!(
                        "pipeline format version {} is not supported",
                        config.version
                    ),
                )
                .at(span)
                .with_help("this streamctl reads `version: 1`"),
            );
        }
        let mut components: Vec<Component<'_>> = Vec::new();
        for (name, s) in &config.sources {
            components.push(Component {
                name,
                section: Section::Source,
                source: Some(s),
                transform: None,
                sink: None,
            });
        }
        for (name, t) in &config.transforms {
            components.push(Component {
                name,
                section: Section::Transform,
                source: None,
                transform: Some(t),
                sink: None,
            });
        }
        for (name, s) in &config.sinks {
            components.push(Component {
                name,
                section: Section::Sink,
                source: None,
                transform: None,
                sink: Some(s),
            });
        }
        for (section, empty) in [
            (
                Section::Source,
                config.sources.is_empty() && !self.has_broken("sources"),
            ),
            (
                Section::Sink,
                config.sinks.is_empty() && !self.has_broken("sinks"),
            ),
        ] {
            if empty {
                let span = self.loc.key(&[section.key()]);
                self.error(
                    Diagnostic::error(
                        if section == Section::Source {
                            "no-sources"
                        } else {
                            "no-sinks"
                        },
                        format!("the pipeline has no {}s", section.noun()),
                    )
                    .at(span)
                    .with_help(format!("declare at least one under `{}:`", section.key())),
                );
            }
        }
        let streams = self.stream_names(&components);
        let edges = self.resolve_inputs(&components, &streams);
        let order = self.topological_order(&components, &edges);

        // Build stages in dependency order, remembering each component's ports.
        let mut ports: Vec<Ports> = vec![None; components.len()];
        let mut plan_index: Vec<Option<usize>> = vec![None; components.len()];
        let mut nodes: Vec<Node> = Vec::new();
        for &c in &order {
            if self.blocked.contains(&c)
                || edges[c].iter().any(|&(o, _, _)| self.blocked.contains(&o))
            {
                // Reads a component that could not be read: nothing to check against.
                self.blocked.insert(c);
                continue;
            }
            let inputs: Vec<(usize, usize)> = edges[c].iter().map(|&(o, p, _)| (o, p)).collect();
            let input_ports: Option<Vec<&Port>> = inputs
                .iter()
                .map(|&(o, p)| ports[o].as_ref().and_then(|ps| ps.get(p)))
                .collect();
            let component = &components[c];
            let built = match (component.source, component.transform, component.sink) {
                (Some(s), _, _) => self.source(component, s),
                (_, Some(t), _) => input_ports.and_then(|ins| self.transform(component, t, &ins)),
                (_, _, Some(s)) => input_ports.and_then(|ins| self.sink(component, s, &ins)),
                _ => None,
            };
            let Some((kind, outputs)) = built else {
                continue;
            };
            let node_inputs: Option<Vec<StreamRef>> = inputs
                .iter()
                .map(|&(o, p)| plan_index[o].map(|node| StreamRef { node, port: p }))
                .collect();
            let Some(node_inputs) = node_inputs else {
                continue;
            };
            ports[c] = Some(outputs.clone());
            plan_index[c] = Some(nodes.len());
            nodes.push(Node {
                name: component.name.to_string(),
                kind,
                inputs: node_inputs,
                outputs,
            });
        }
        self.unread_outputs(&components, &streams, &edges);
        self.shared_output_files(&components);
        self.updates_into_sinks(&nodes);
        let checkpoint = config.checkpoint.as_ref().map(|c| {
            let url_span = self.loc.value(&["checkpoint", "url"]);
            if !(c.url.starts_with("file://") || c.url.starts_with("s3://")) {
                self.error(
                    Diagnostic::error("bad-url", "checkpoint `url` must start with file:// or s3://")
                        .at(url_span)
                        .with_help("e.g. `file:///var/lib/streamctl/checkpoints/` or `s3://bucket/checkpoints/`"),
                );
            }
            let interval = c
                .interval
                .map_or(super::DEFAULT_CHECKPOINT_INTERVAL_MS, |d| d.millis);
            if interval <= 0 {
                let span = self.loc.value(&["checkpoint", "interval"]);
                self.error(Diagnostic::error("bad-duration", "checkpoint `interval` must be longer than 0").at(span));
            }
            if c.retain == Some(0) {
                let span = self.loc.value(&["checkpoint", "retain"]);
                self.error(Diagnostic::error("out-of-range", "checkpoint `retain` must be at least 1").at(span));
            }
            CheckpointPlan {
                url: c.url.clone(),
                interval_ms: interval,
                retain: c.retain.map_or(super::DEFAULT_CHECKPOINT_RETAIN, |r| r as usize),
            }
        });
        for node in &nodes {
            if let NodeKind::Sink(SinkPlan {
                config: SinkConfig::S3(o),
                path: Some(template),
                projection,
                ..
            }) = &node.kind
            {
                self.small_files(&node.name, o, template, checkpoint.as_ref());
                if o.layout == PathLayout::Hive {
                    self.hive_columns(&node.name, template, projection);
                }
                let timed = template.segments.iter().any(|s| {
                    matches!(s, Segment::Field { format: Some(f), .. } if path_template::time_unit(f).is_some())
                });
                if o.success_marker && !timed {
                    let span = self.loc.value(&["sinks", &node.name, "success_marker"]);
                    self.diagnostics.push(
                        Diagnostic::warning(
                            "unused-setting",
                            "`success_marker` marks finished time buckets, but `path` has no time level",
                        )
                        .at(span)
                        .with_help("add one, e.g. `path: \"{window_start:%Y-%m-%d--%H}/\"`"),
                    );
                }
            }
        }
        Some(Plan {
            name: config.name.clone(),
            nodes,
            checkpoint,
        })
    }

    /// Warns where a window's updates (allowed lateness, `emit: updates`) reach a sink that
    /// does not write their `revision`: there, two rows for one window and key cannot be told
    /// apart, and whoever sums them counts twice.
    fn updates_into_sinks(&mut self, nodes: &[Node]) {
        /// The window whose updating rows `stream` carries, through stateless stages.
        fn updating_window(nodes: &[Node], stream: StreamRef) -> Option<usize> {
            let node = &nodes[stream.node];
            match &node.kind {
                NodeKind::Window(w) if stream.port == 0 && w.emits_updates() => Some(stream.node),
                NodeKind::Filter(_) | NodeKind::Select(_) | NodeKind::Explode(_) => node
                    .inputs
                    .iter()
                    .find_map(|input| updating_window(nodes, *input)),
                _ => None,
            }
        }
        for node in nodes {
            let NodeKind::Sink(sink) = &node.kind else {
                continue;
            };
            if sink
                .projection
                .fields
                .iter()
                .any(|f| f.name == REVISION_FIELD)
            {
                continue;
            }
            for (i, input) in node.inputs.iter().enumerate() {
                let Some(window) = updating_window(nodes, *input) else {
                    continue;
                };
                let window = &nodes[window];
                let NodeKind::Window(w) = &window.kind else {
                    continue;
                };
                let has_fields = self
                    .loc
                    .node(&["sinks", &node.name])
                    .get("fields")
                    .is_some();
                let span = if has_fields {
                    self.loc.value(&["sinks", &node.name, "fields"])
                } else {
                    self.loc.item(&["sinks", &node.name, "inputs"], i)
                };
                let lateness = crate::config::Duration::from_millis(w.allowed_lateness_ms);
                let keep = if has_fields {
                    format!("add `{REVISION_FIELD}` to `fields`")
                } else {
                    format!("keep `{REVISION_FIELD}` in the stages between them")
                };
                self.diagnostics.push(
                    Diagnostic::warning(
                        "late-updates",
                        format!(
                            "window `{}` writes a row again when a late event arrives within its allowed lateness ({lateness}), but sink `{}` does not write `{REVISION_FIELD}`: rows for one window and key cannot be told apart",
                            window.name,
                            node.name
                        ),
                    )
                    .at(span)
                    .with_help(format!(
                        "{keep} (readers keep the highest per window and key), or write each window once, after the lateness, with `late: {{allowed_lateness: {lateness}, emit: final}}` on `{}`",
                        window.name
                    )),
                );
            }
        }
    }

    /// Every name `inputs:` may use, checking names are valid and unique.
    fn stream_names(&mut self, components: &[Component<'_>]) -> HashMap<String, StreamName> {
        let mut names: HashMap<String, StreamName> = HashMap::new();
        let mut declare = |b: &mut Self, name: &str, stream: StreamName| {
            if let Some(first) = names.get(name) {
                // Which of the two is meant to be read is unclear: do not also warn it is unread.
                b.quiet_outputs.insert(name.to_string());
                let first_line = b.file.line_col(first.span.start).line;
                b.error(
                    Diagnostic::error("duplicate-name", format!("the name `{name}` is used twice"))
                        .at(stream.span)
                        .with_help(format!(
                            "it is already declared on line {first_line}; names of sources, transforms, sinks and `to:` streams share one namespace"
                        )),
                );
            } else {
                names.insert(name.to_string(), stream);
            }
        };
        for (i, c) in components.iter().enumerate() {
            let span = self.loc.key(&c.path());
            if !valid_name(c.name) {
                self.error(
                    Diagnostic::error(
                        "bad-name",
                        format!("`{}` is not a valid {} name", c.name, c.section.noun()),
                    )
                    .at(span)
                    .with_help("use letters, digits, `_` and `-`, starting with a letter or `_`"),
                );
            }
            declare(
                self,
                c.name,
                StreamName {
                    owner: i,
                    side: None,
                    span,
                },
            );
            let mut side = |b: &mut Self, kind: SideKind, to: &Option<String>, path: &[&str]| {
                if let Some(to) = to {
                    let span = b.loc.value(path);
                    if !valid_name(to) {
                        b.error(
                            Diagnostic::error(
                                "bad-name",
                                format!("`{to}` is not a valid stream name"),
                            )
                            .at(span)
                            .with_help("use letters, digits, `_` and `-`"),
                        );
                    }
                    declare(
                        b,
                        to,
                        StreamName {
                            owner: i,
                            side: Some(kind),
                            span,
                        },
                    );
                }
            };
            let [section, name] = c.path();
            if let Some(bad) = c
                .source
                .and_then(SourceConfig::bad_records)
                .or(c.transform.and_then(TransformConfig::bad_records))
            {
                side(
                    self,
                    SideKind::DeadLetter,
                    &bad.to,
                    &[section, name, "bad_records", "to"],
                );
            }
            if let Some(TransformConfig::Window(w)) = c.transform
                && let Some(late) = &w.late
            {
                side(
                    self,
                    SideKind::Late,
                    &late.to,
                    &[section, name, "late", "to"],
                );
            }
        }
        names
    }

    /// Resolves each component's `inputs` to (owner component, port, input index).
    /// Two `file` sinks writing one path would overwrite each other.
    fn shared_output_files(&mut self, components: &[Component<'_>]) {
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for c in components {
            let Some(SinkConfig::File(f)) = c.sink else {
                continue;
            };
            match seen.get(f.path.as_str()) {
                Some(first) => {
                    let span = self.loc.value(&["sinks", c.name, "path"]);
                    self.error(
                        Diagnostic::error(
                            "shared-output",
                            format!("sinks `{first}` and `{}` both write `{}`", c.name, f.path),
                        )
                        .at(span)
                        .with_help(
                            "give each file sink its own path, or read both streams into one sink",
                        ),
                    );
                }
                None => {
                    seen.insert(&f.path, c.name);
                }
            }
        }
    }

    /// Whether a section holds components with structural errors.
    fn has_broken(&self, section: &str) -> bool {
        self.broken.iter().any(|b| b.section == section)
    }

    /// Whether `name` is (or is declared by) a component with structural errors.
    fn is_broken_stream(&self, name: &str) -> bool {
        self.broken
            .iter()
            .any(|b| b.name == name || b.declares.iter().any(|d| d == name))
    }

    fn resolve_inputs(
        &mut self,
        components: &[Component<'_>],
        streams: &HashMap<String, StreamName>,
    ) -> Vec<Vec<(usize, usize, usize)>> {
        let mut edges = vec![Vec::new(); components.len()];
        for (c, component) in components.iter().enumerate() {
            if component.section == Section::Source {
                continue;
            }
            let [section, name] = component.path();
            let inputs = component.inputs();
            if inputs.is_empty() {
                let span = self.loc.value(&[section, name, "inputs"]);
                self.error(
                    Diagnostic::error(
                        "no-inputs",
                        format!("{} reads from nothing", component.describe()),
                    )
                    .at(span)
                    .with_help("list what it reads, e.g. `inputs: [my_source]`"),
                );
            }
            for (i, input) in inputs.iter().enumerate() {
                let span = self.loc.item(&[section, name, "inputs"], i);
                if inputs[..i].contains(input) {
                    self.error(
                        Diagnostic::error(
                            "duplicate-input",
                            format!(
                                "{} lists `{input}` twice in its inputs",
                                component.describe()
                            ),
                        )
                        .at(span)
                        .with_help("every record would be read twice; list each input once"),
                    );
                    continue;
                }
                match streams.get(input) {
                    Some(stream) if components[stream.owner].section == Section::Sink => {
                        self.error(
                            Diagnostic::error(
                                "input-is-sink",
                                format!("`{input}` is a sink; sinks have no output to read"),
                            )
                            .at(span)
                            .with_help("read from a source or transform instead"),
                        );
                    }
                    Some(stream) if stream.owner == c && stream.side.is_none() => {
                        self.error(
                            Diagnostic::error(
                                "cycle",
                                format!("{} reads its own output", component.describe()),
                            )
                            .at(span),
                        );
                    }
                    Some(stream) => {
                        let port = self.port_index(&components[stream.owner], stream.side);
                        edges[c].push((stream.owner, port, i));
                    }
                    None if self.is_broken_stream(input) => {
                        self.blocked.insert(c);
                    }
                    None => {
                        self.unknown_input(&component.describe(), input, span, components, streams);
                    }
                }
            }
        }
        // Components with structural errors were set aside, but their `inputs` are still
        // checked: a typo there is one more problem of the same pass, and it explains the
        // "nothing reads" warning its intended input would otherwise get.
        // (A source's `inputs` is an unknown key, reported as such.)
        for b in self.broken.iter().filter(|b| b.section != "sources") {
            for (i, input) in b.inputs.iter().enumerate() {
                if streams.contains_key(input) || self.is_broken_stream(input) {
                    continue;
                }
                let noun = b.section.strip_suffix('s').unwrap_or(b.section);
                let span = self.loc.item(&[b.section, &b.name, "inputs"], i);
                let who = format!("{noun} `{}`", b.name);
                self.unknown_input(&who, input, span, components, streams);
            }
        }
        edges
    }

    /// Reports that `who` reads `input`, which no component defines, with the closest name.
    fn unknown_input(
        &mut self,
        who: &str,
        input: &str,
        span: Span,
        components: &[Component<'_>],
        streams: &HashMap<String, StreamName>,
    ) {
        let candidates: Vec<&str> = streams
            .iter()
            .filter(|(_, s)| components[s.owner].section != Section::Sink)
            .map(|(n, _)| n.as_str())
            .collect();
        let mut sorted = candidates.clone();
        sorted.sort_unstable();
        if let Some(meant) = closest(input, candidates.iter().copied()) {
            self.quiet_outputs.insert(meant.to_string());
        }
        let help = did_you_mean(input, candidates.iter().copied())
            .unwrap_or_else(|| format!("streams you can read: {}", list_names(&sorted)));
        self.error(
            Diagnostic::error(
                "unknown-input",
                format!("{who} reads from `{input}`, which is not defined"),
            )
            .at(span)
            .with_help(help),
        );
    }

    /// Port numbers: 0 main; then the dead-letter port (if any); then the late port.
    fn port_index(&self, owner: &Component<'_>, side: Option<SideKind>) -> usize {
        let has_dead_letter = owner
            .source
            .and_then(SourceConfig::bad_records)
            .or(owner.transform.and_then(TransformConfig::bad_records))
            .is_some_and(|b| b.to.is_some());
        match side {
            None => 0,
            Some(SideKind::DeadLetter) => 1,
            Some(SideKind::Late) => 1 + usize::from(has_dead_letter),
        }
    }

    fn topological_order(
        &mut self,
        components: &[Component<'_>],
        edges: &[Vec<(usize, usize, usize)>],
    ) -> Vec<usize> {
        let n = components.len();
        let mut indegree = vec![0usize; n];
        let mut readers: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (c, ins) in edges.iter().enumerate() {
            let owners: HashSet<usize> = ins.iter().map(|&(o, _, _)| o).collect();
            indegree[c] = owners.len();
            for o in owners {
                readers[o].push(c);
            }
        }
        let mut ready: Vec<usize> = (0..n).filter(|&c| indegree[c] == 0).rev().collect();
        let mut order = Vec::with_capacity(n);
        while let Some(c) = ready.pop() {
            order.push(c);
            for &r in readers[c].iter().rev() {
                indegree[r] -= 1;
                if indegree[r] == 0 {
                    ready.push(r);
                }
            }
        }
        if order.len() < n {
            // Left over: the stages on a cycle and the stages downstream of one. Peel off the
            // latter (stages nothing left over reads) so the message names only the cycle.
            let mut in_cycle: Vec<usize> = (0..n).filter(|c| !order.contains(c)).collect();
            loop {
                let before = in_cycle.clone();
                in_cycle.retain(|&c| readers[c].iter().any(|r| before.contains(r)));
                if in_cycle.len() == before.len() {
                    break;
                }
            }
            let first = in_cycle.first().copied().unwrap_or(0);
            // Walk the cycle from `first` along inputs that stay on it.
            let mut path = vec![first];
            let mut closing_input = None;
            let mut current = first;
            while let Some(&(owner, _, input)) =
                edges[current].iter().find(|(o, _, _)| in_cycle.contains(o))
            {
                if current == first {
                    closing_input = Some(input);
                }
                if path.contains(&owner) {
                    path.push(owner);
                    break;
                }
                path.push(owner);
                current = owner;
            }
            let names: Vec<&str> = in_cycle.iter().map(|&c| components[c].name).collect();
            let walk: Vec<String> = path
                .iter()
                .map(|&c| format!("`{}`", components[c].name))
                .collect();
            let [section, name] = components[first].path();
            let span = match closing_input {
                Some(i) => self.loc.item(&[section, name, "inputs"], i),
                None => self.loc.key(&[section, name, "inputs"]),
            };
            self.error(
                Diagnostic::error("cycle", format!("the inputs of {} form a cycle", list_names(&names)))
                    .at(span)
                    .with_note(format!("{} (each reads the next)", walk.join(" → ")))
                    .with_help("a pipeline flows one way: each component may only read components that do not read it back"),
            );
        }
        order
    }

    fn unread_outputs(
        &mut self,
        components: &[Component<'_>],
        streams: &HashMap<String, StreamName>,
        edges: &[Vec<(usize, usize, usize)>],
    ) {
        let mut read: HashSet<(usize, usize)> = edges
            .iter()
            .flat_map(|ins| ins.iter().map(|&(o, p, _)| (o, p)))
            .collect();
        // What broken components read still counts as read.
        for b in self.broken {
            for input in &b.inputs {
                if let Some(stream) = streams.get(input) {
                    read.insert((
                        stream.owner,
                        self.port_index(&components[stream.owner], stream.side),
                    ));
                }
            }
        }
        let mut unread: Vec<(&String, &StreamName)> = streams
            .iter()
            .filter(|(_, s)| components[s.owner].section != Section::Sink)
            .filter(|(_, s)| {
                !read.contains(&(s.owner, self.port_index(&components[s.owner], s.side)))
            })
            // Already explained by an unknown-input or duplicate-name error.
            .filter(|(name, _)| !self.quiet_outputs.contains(*name))
            .collect();
        unread.sort_by_key(|(_, s)| s.span.start);
        for (name, s) in unread {
            let what = match s.side {
                None => components[s.owner].describe(),
                Some(SideKind::Late) => format!("late-event stream `{name}`"),
                Some(SideKind::DeadLetter) => format!("dead-letter stream `{name}`"),
            };
            self.diagnostics.push(
                Diagnostic::warning("unused-output", format!("nothing reads {what}"))
                    .at(s.span)
                    .with_help(format!(
                        "add `{name}` to the `inputs` of a sink, or remove it"
                    )),
            );
        }
    }

    // ----- sources -------------------------------------------------------------------------

    fn source(&mut self, c: &Component<'_>, s: &SourceConfig) -> Option<(NodeKind, Vec<Port>)> {
        let [section, name] = c.path();
        let schema = match s {
            SourceConfig::Generator(g) => generator::preset_schema(g.preset),
            other => {
                let decoding = other.decoding()?;
                if decoding.schema.is_empty() {
                    let span = self.loc.value(&[section, name, "schema"]);
                    self.error(
                        Diagnostic::error("empty-schema", format!("{} declares no fields", c.describe()))
                            .at(span)
                            .with_help("list the fields to read, e.g. `schema: {movieId: string, timestamp: timestamp_ms}`"),
                    );
                }
                if decoding.csv.is_some()
                    && decoding.format != crate::config::source::DataFormat::Csv
                {
                    let span = self.loc.key(&[section, name, "csv"]);
                    self.diagnostics.push(
                        Diagnostic::warning(
                            "unused-setting",
                            "`csv` options have no effect unless `format: csv`",
                        )
                        .at(span),
                    );
                }
                let mut fields: Vec<Field> = decoding
                    .schema
                    .iter()
                    .map(|(n, t)| Field {
                        name: n.clone(),
                        data_type: t.data_type.clone(),
                        epoch_unit_ms: t.epoch_unit_ms,
                    })
                    .collect();
                match other {
                    SourceConfig::Kafka(k) => {
                        let metadata = k.metadata.iter().map(|(f, m)| (f, m.data_type()));
                        self.metadata_fields(c, metadata, &mut fields);
                    }
                    SourceConfig::Kinesis(k) => {
                        let metadata = k.metadata.iter().map(|(f, m)| (f, m.data_type()));
                        self.metadata_fields(c, metadata, &mut fields);
                    }
                    _ => {}
                }
                Schema::new(fields)
            }
        };
        match s {
            SourceConfig::Kafka(k) => {
                self.non_empty(&k.brokers, &[section, name, "brokers"], "brokers");
                self.kafka_topics(c, k);
                self.kafka_source_settings(c, k, &schema);
                self.start_timestamp(
                    c,
                    k.start_from == KafkaStart::Timestamp,
                    k.start_timestamp.is_some(),
                    "timestamp",
                );
            }
            SourceConfig::Kinesis(k) => {
                self.non_empty(&k.stream, &[section, name, "stream"], "stream");
                let max = super::connectors::KINESIS_MAX_RECORDS_PER_CALL;
                if k.records_per_call.is_some_and(|n| n == 0 || n > max) {
                    let span = self.loc.value(&[section, name, "records_per_call"]);
                    self.error(
                        Diagnostic::error(
                            "out-of-range",
                            format!("`records_per_call` must be between 1 and {max}"),
                        )
                        .at(span)
                        .with_help(format!("omit it to ask for {max}, the service's maximum")),
                    );
                }
                self.start_timestamp(
                    c,
                    k.start_from == KinesisStart::AtTimestamp,
                    k.start_timestamp.is_some(),
                    "at_timestamp",
                );
            }
            SourceConfig::File(f) => {
                self.non_empty(&f.path, &[section, name, "path"], "path");
            }
            SourceConfig::Generator(g) => {
                if g.count == Some(0) {
                    let span = self.loc.value(&[section, name, "count"]);
                    self.error(
                        Diagnostic::error("out-of-range", "`count` must be at least 1")
                            .at(span)
                            .with_help("omit `count` for an endless stream"),
                    );
                }
                if g.rate.is_some_and(|r| r <= 0.0 || !r.is_finite()) {
                    let span = self.loc.value(&[section, name, "rate"]);
                    self.error(
                        Diagnostic::error(
                            "out-of-range",
                            "`rate` must be a positive number of records per second",
                        )
                        .at(span)
                        .with_help("omit `rate` to generate as fast as possible"),
                    );
                }
                if g.partitions == 0 {
                    let span = self.loc.value(&[section, name, "partitions"]);
                    self.error(
                        Diagnostic::error("out-of-range", "`partitions` must be at least 1")
                            .at(span),
                    );
                }
                if g.users == Some(0) {
                    let span = self.loc.value(&[section, name, "users"]);
                    self.error(
                        Diagnostic::error("out-of-range", "`users` must be at least 1").at(span),
                    );
                }
                if g.hot_share.is_some_and(|h| !(0.0..=1.0).contains(&h)) {
                    let span = self.loc.value(&[section, name, "hot_share"]);
                    self.error(
                        Diagnostic::error(
                            "out-of-range",
                            "`hot_share` is a share of records, from 0 to 1",
                        )
                        .at(span)
                        .with_help("e.g. `hot_share: 0.5`: half the records for the 10 hot keys"),
                    );
                }
                if g.interval.is_some_and(|i| i.millis <= 0) {
                    let span = self.loc.value(&[section, name, "interval"]);
                    self.error(
                        Diagnostic::error("bad-duration", "`interval` must be longer than 0")
                            .at(span),
                    );
                }
            }
            SourceConfig::Stdin(_) => {}
        }
        let event_time = self.event_time(c, s, &schema);
        let mut ports = vec![Port {
            name: c.name.to_string(),
            schema: Arc::new(schema),
            // A configured but broken `event_time` was reported already; do not also report
            // every window downstream as having no event time.
            has_time: event_time.is_some() || s.event_time().is_some(),
        }];
        let bad_records = self.bad_records(c, s.bad_records(), &mut ports);
        Some((
            NodeKind::Source(SourcePlan {
                config: s.clone(),
                connector: super::connectors::source(s, self.pipeline_name),
                event_time,
                bad_records,
            }),
            ports,
        ))
    }

    /// Metadata fields (filled from each message, not decoded) join the schema after the
    /// decoded fields.
    fn metadata_fields<'a>(
        &mut self,
        c: &Component<'_>,
        metadata: impl Iterator<Item = (&'a String, crate::data::DataType)>,
        fields: &mut Vec<Field>,
    ) {
        let [section, name] = c.path();
        for (field, data_type) in metadata {
            if fields.iter().any(|f| &f.name == field) {
                let span = self.loc.key(&[section, name, "metadata", field]);
                self.error(
                    Diagnostic::error(
                        "duplicate-field",
                        format!(
                            "metadata field `{field}` is also in the schema of {}",
                            c.describe()
                        ),
                    )
                    .at(span)
                    .with_help("give the metadata field another name, or remove it from `schema`"),
                );
                continue;
            }
            fields.push(Field::new(field.clone(), data_type));
        }
    }

    /// Exactly one of `topic`, `topics`, `topic_pattern`.
    fn kafka_topics(&mut self, c: &Component<'_>, k: &crate::config::source::KafkaSource) {
        let [section, name] = c.path();
        let given = [
            !k.topic.trim().is_empty(),
            !k.topics.is_empty(),
            k.topic_pattern.is_some(),
        ];
        match given.iter().filter(|g| **g).count() {
            0 => {
                let span = self.loc.key(&[section, name]);
                self.error(
                    Diagnostic::error("missing-key", format!("{} names no topic", c.describe()))
                        .at(span)
                        .with_help("add `topic: NAME`, `topics: [A, B]` or `topic_pattern: REGEX`"),
                );
            }
            1 => {}
            _ => {
                let key = if k.topic_pattern.is_some() {
                    "topic_pattern"
                } else {
                    "topics"
                };
                let span = self.loc.key(&[section, name, key]);
                self.error(
                    Diagnostic::error(
                        "conflicting-settings",
                        "give only one of `topic`, `topics` and `topic_pattern`",
                    )
                    .at(span),
                );
            }
        }
        for (i, t) in k.topics.iter().enumerate() {
            if t.trim().is_empty() {
                let span = self.loc.value(&[section, name, "topics", &i.to_string()]);
                self.error(Diagnostic::error("empty-value", "a topic name is empty").at(span));
            }
        }
        if let Some(p) = &k.topic_pattern
            && let Err(e) = regex::Regex::new(&format!("^({p})$"))
        {
            let span = self.loc.value(&[section, name, "topic_pattern"]);
            self.error(
                Diagnostic::error(
                    "bad-pattern",
                    format!("`topic_pattern` is not a regular expression: {e}"),
                )
                .at(span),
            );
        }
    }

    /// Properties streamctl sets itself (`reserved` says why one cannot be set).
    fn reserved_properties(
        &mut self,
        c: &Component<'_>,
        properties: &indexmap::IndexMap<String, String>,
        reserved: fn(&str, &str) -> Option<&'static str>,
    ) {
        let [section, name] = c.path();
        for (key, value) in properties {
            if let Some(why) = reserved(key, value) {
                let span = self.loc.key(&[section, name, "properties", key]);
                self.error(
                    Diagnostic::error(
                        "reserved-property",
                        format!("property `{key}` cannot be set here: {why}"),
                    )
                    .at(span),
                );
            }
        }
    }

    /// Settings streamctl owns and fields named by `partitioned_by`.
    fn kafka_source_settings(
        &mut self,
        c: &Component<'_>,
        k: &crate::config::source::KafkaSource,
        schema: &Schema,
    ) {
        let [section, name] = c.path();
        self.reserved_properties(c, &k.properties, crate::kafka::reserved_consumer_property);
        for (i, field) in k.partitioned_by.iter().flatten().enumerate() {
            if schema.index_of(field).is_none() {
                let span = self
                    .loc
                    .value(&[section, name, "partitioned_by", &i.to_string()]);
                let help = did_you_mean(field, schema.names())
                    .unwrap_or_else(|| format!("declared fields: {}", list_names(&schema.names())));
                self.error(
                    Diagnostic::error(
                        "unknown-field",
                        format!(
                            "`partitioned_by` field `{field}` is not in the schema of {}",
                            c.describe()
                        ),
                    )
                    .at(span)
                    .with_help(help),
                );
            }
        }
    }

    fn non_empty(&mut self, value: &str, path: &[&str], what: &str) {
        if value.trim().is_empty() {
            let span = self.loc.value(path);
            self.error(Diagnostic::error("empty-value", format!("`{what}` is empty")).at(span));
        }
    }

    fn start_timestamp(&mut self, c: &Component<'_>, wants: bool, has: bool, mode: &str) {
        let [section, name] = c.path();
        if wants && !has {
            let span = self.loc.value(&[section, name, "start_from"]);
            self.error(
                Diagnostic::error(
                    "missing-key",
                    format!("`start_from: {mode}` needs `start_timestamp`"),
                )
                .at(span)
                .with_help("add e.g. `start_timestamp: 2024-01-01T00:00:00Z`"),
            );
        } else if has && !wants {
            let span = self.loc.key(&[section, name, "start_timestamp"]);
            self.diagnostics.push(
                Diagnostic::warning(
                    "unused-setting",
                    format!("`start_timestamp` is ignored unless `start_from: {mode}`"),
                )
                .at(span),
            );
        }
    }

    fn event_time(
        &mut self,
        c: &Component<'_>,
        s: &SourceConfig,
        schema: &Schema,
    ) -> Option<EventTimePlan> {
        let [section, name] = c.path();
        let config = match (s.event_time(), s) {
            (Some(et), _) => et.clone(),
            (None, SourceConfig::Generator(g)) => crate::config::source::EventTimeConfig {
                field: generator::TIME_FIELD.to_string(),
                max_out_of_orderness: g.disorder,
                idle_timeout: None,
            },
            (None, _) => return None,
        };
        let field_span = self.loc.value(&[section, name, "event_time", "field"]);
        let Some(column) = schema.index_of(&config.field) else {
            let help = did_you_mean(&config.field, schema.names())
                .unwrap_or_else(|| format!("declared fields: {}", list_names(&schema.names())));
            self.error(
                Diagnostic::error(
                    "unknown-field",
                    format!(
                        "event-time field `{}` is not in the schema of {}",
                        config.field,
                        c.describe()
                    ),
                )
                .at(field_span)
                .with_help(help),
            );
            return None;
        };
        let field = &schema.fields[column];
        if !field.is_time() {
            self.error(
                Diagnostic::error(
                    "not-a-timestamp",
                    format!("event-time field `{}` is {}, not a timestamp", field.name, field.data_type),
                )
                .at(field_span)
                .with_help(
                    "declare it `timestamp_ms` (epoch milliseconds), `timestamp_s` (epoch seconds) or `timestamp` (text) in `schema`",
                ),
            );
            return None;
        }
        if let Some(idle) = config.idle_timeout
            && idle.millis <= 0
        {
            let span = self
                .loc
                .value(&[section, name, "event_time", "idle_timeout"]);
            self.error(
                Diagnostic::error("bad-duration", "`idle_timeout` must be longer than 0")
                    .at(span)
                    .with_help("omit it to never mark partitions idle"),
            );
        }
        Some(EventTimePlan {
            column,
            epoch_unit_ms: field.epoch_unit_ms,
            max_out_of_orderness_ms: config.max_out_of_orderness.millis,
            idle_timeout_ms: config.idle_timeout.map(|d| d.millis),
        })
    }

    /// The bad-record policy; adds the dead-letter port when one is configured.
    fn bad_records(
        &mut self,
        c: &Component<'_>,
        config: Option<&BadRecordsConfig>,
        ports: &mut Vec<Port>,
    ) -> BadRecords {
        let Some(config) = config else {
            return BadRecords::default();
        };
        let [section, name] = c.path();
        let policy_given = self
            .loc
            .node(&[section, name, "bad_records"])
            .get("policy")
            .is_some();
        let policy = match (&config.to, config.policy, policy_given) {
            // `to:` alone means dead-lettering.
            (Some(_), _, false) => BadRecordPolicy::DeadLetter,
            (Some(_), BadRecordPolicy::DeadLetter, true) => BadRecordPolicy::DeadLetter,
            (Some(_), other, true) => {
                let span = self.loc.value(&[section, name, "bad_records", "policy"]);
                self.error(
                    Diagnostic::error(
                        "conflicting-settings",
                        format!(
                            "`bad_records.to` needs `policy: dead_letter`, found `{}`",
                            other.name()
                        ),
                    )
                    .at(span)
                    .with_help("use `policy: dead_letter`, or remove `to`"),
                );
                other
            }
            (None, BadRecordPolicy::DeadLetter, _) => {
                let span = self.loc.key(&[section, name, "bad_records"]);
                self.error(
                    Diagnostic::error(
                        "missing-key",
                        "`policy: dead_letter` needs `to:` naming the dead-letter stream",
                    )
                    .at(span)
                    .with_help("add e.g. `to: bad_impressions` and a sink reading it"),
                );
                BadRecordPolicy::DeadLetter
            }
            (None, other, _) => other,
        };
        let port = config.to.as_ref().map(|to| {
            ports.push(Port {
                name: to.clone(),
                schema: Arc::new(dead_letter_schema()),
                has_time: false,
            });
            ports.len() - 1
        });
        BadRecords { policy, port }
    }

    // ----- transforms ----------------------------------------------------------------------

    /// The single input schema of a stage reading one or more streams (all must agree).
    fn input_port(&mut self, c: &Component<'_>, inputs: &[&Port]) -> Option<Port> {
        let first = inputs.first()?;
        let [section, name] = c.path();
        for (i, other) in inputs.iter().enumerate().skip(1) {
            if other.schema != first.schema || other.has_time != first.has_time {
                let span = self.loc.item(&[section, name, "inputs"], i);
                let detail = if other.schema != first.schema {
                    format!(
                        "`{}` has ({}) but `{}` has ({})",
                        other.name, other.schema, first.name, first.schema
                    )
                } else {
                    format!(
                        "`{}` and `{}` differ in whether they carry event time",
                        other.name, first.name
                    )
                };
                self.error(
                    Diagnostic::error(
                        "input-schema-mismatch",
                        format!("the inputs of {} do not have the same fields", c.describe()),
                    )
                    .at(span)
                    .with_note(detail)
                    .with_help(
                        "give them the same fields and types first, e.g. with a `select` on each",
                    ),
                );
                return None;
            }
        }
        Some((*first).clone())
    }

    fn transform(
        &mut self,
        c: &Component<'_>,
        t: &TransformConfig,
        inputs: &[&Port],
    ) -> Option<(NodeKind, Vec<Port>)> {
        let input = self.input_port(c, inputs)?;
        let [section, name] = c.path();
        let schema = input.schema.clone();
        let mut ports = Vec::new();
        let (kind, out_schema, has_time) = match t {
            TransformConfig::Filter(f) => {
                let path = [section, name, "where"];
                let predicate =
                    self.sql(&f.condition.0, &path, |sql| expr::compile(sql, &schema))?;
                if !matches!(predicate.ty, Some(DataType::Bool) | None) {
                    let span = self.loc.value(&path);
                    let ty = predicate.ty.clone().unwrap_or(DataType::Bool);
                    self.error(
                        Diagnostic::error(
                            "type-mismatch",
                            format!("`where` must be a condition (BOOLEAN), found {ty}"),
                        )
                        .at(span)
                        .with_help("compare it, e.g. `rating > 3`"),
                    );
                    return None;
                }
                ports.push(Port {
                    name: c.name.to_string(),
                    schema: schema.clone(),
                    has_time: input.has_time,
                });
                let bad_records = self.bad_records(c, f.bad_records.as_ref(), &mut ports);
                return Some((
                    NodeKind::Filter(FilterPlan {
                        predicate,
                        sql: f.condition.0.clone(),
                        bad_records,
                    }),
                    ports,
                ));
            }
            TransformConfig::Select(s) => {
                let mut columns: Vec<(String, Expr, Option<String>)> = Vec::new();
                let mut fields: Vec<Field> = Vec::new();
                if s.append {
                    for (i, f) in schema.fields.iter().enumerate() {
                        columns.push((f.name.clone(), Expr::column(i, f.data_type.clone()), None));
                        fields.push(f.clone());
                    }
                }
                let mut ok = true;
                for (out_name, sql) in &s.fields {
                    let path = [section, name, "fields", out_name.as_str()];
                    let Some(e) = self.sql(&sql.0, &path, |sql| expr::compile(sql, &schema)) else {
                        ok = false;
                        continue;
                    };
                    let Some(ty) = e.ty.clone() else {
                        let span = self.loc.value(&path);
                        self.error(
                            Diagnostic::error(
                                "untyped-null",
                                format!("`{out_name}` is a bare NULL, which has no type"),
                            )
                            .at(span)
                            .with_help("write CAST(NULL AS STRING) (or the type you need)"),
                        );
                        ok = false;
                        continue;
                    };
                    let epoch_unit_ms = e.as_column().and_then(|i| schema.fields[i].epoch_unit_ms);
                    let field = Field {
                        name: out_name.clone(),
                        data_type: ty,
                        epoch_unit_ms,
                    };
                    match fields.iter().position(|f| f.name == *out_name) {
                        Some(i) => {
                            fields[i] = field;
                            columns[i] = (out_name.clone(), e, Some(sql.0.clone()));
                        }
                        None => {
                            fields.push(field);
                            columns.push((out_name.clone(), e, Some(sql.0.clone())));
                        }
                    }
                }
                if !ok {
                    return None;
                }
                ports.push(Port {
                    name: c.name.to_string(),
                    schema: Arc::new(Schema::new(fields)),
                    has_time: input.has_time,
                });
                let bad_records = self.bad_records(c, s.bad_records.as_ref(), &mut ports);
                return Some((
                    NodeKind::Select(SelectPlan {
                        columns,
                        bad_records,
                    }),
                    ports,
                ));
            }
            TransformConfig::Explode(x) => {
                let field_span = self.loc.value(&[section, name, "field"]);
                let Some(column) = schema.index_of(&x.field) else {
                    self.unknown_field(
                        &x.field,
                        &schema,
                        field_span,
                        &format!("{} explodes", c.describe()),
                    );
                    return None;
                };
                let DataType::Array(element) = &schema.fields[column].data_type else {
                    self.error(
                        Diagnostic::error(
                            "not-an-array",
                            format!(
                                "`{}` is {}, not an array",
                                x.field, schema.fields[column].data_type
                            ),
                        )
                        .at(field_span)
                        .with_help("declare it `array<type>` in the source schema"),
                    );
                    return None;
                };
                let alias = x.alias.clone().unwrap_or_else(|| x.field.clone());
                if alias != x.field && schema.index_of(&alias).is_some() {
                    let span = self.loc.value(&[section, name, "as"]);
                    self.error(
                        Diagnostic::error(
                            "duplicate-field",
                            format!("the input already has a field `{alias}`"),
                        )
                        .at(span)
                        .with_help("choose another name for the element column"),
                    );
                    return None;
                }
                let mut fields = schema.fields.clone();
                fields[column] = Field::new(alias, (**element).clone());
                (
                    NodeKind::Explode(ExplodePlan {
                        column,
                        element_type: (**element).clone(),
                        keep_empty: x.keep_empty,
                    }),
                    Schema::new(fields),
                    input.has_time,
                )
            }
            TransformConfig::Window(w) => return self.window(c, w, &input),
        };
        ports.insert(
            0,
            Port {
                name: c.name.to_string(),
                schema: Arc::new(out_schema),
                has_time,
            },
        );
        Some((kind, ports))
    }

    fn window(
        &mut self,
        c: &Component<'_>,
        w: &WindowTransform,
        input: &Port,
    ) -> Option<(NodeKind, Vec<Port>)> {
        let [section, name] = c.path();
        let schema = input.schema.clone();
        let mut ok = true;
        if !input.has_time {
            let span = self.loc.key(&[section, name, "window"]);
            self.error(
                Diagnostic::error(
                    "window-without-event-time",
                    format!("{} groups by event time, but its input `{}` carries none", c.describe(), input.name),
                )
                .at(span)
                .with_help("give the source an `event_time: {field: <timestamp field>, max_out_of_orderness: 5s}`"),
            );
            ok = false;
        }
        let kind = self.window_kind(c, &w.window);
        let mut keys = Vec::new();
        let mut key_sql = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for (i, key) in w.group_by.iter().enumerate() {
            let node = self
                .loc
                .node(&[section, name, "group_by"])
                .as_seq()
                .and_then(|s| s.get(i))
                .cloned();
            let span = node
                .as_ref()
                .map_or(self.loc.value(&[section, name, "group_by"]), |n| n.span);
            match expr::compile_group_key(&key.0, &schema) {
                Ok((key_name, e)) => {
                    if is_window_column(&key_name) || !seen.insert(key_name.clone()) {
                        self.error(
                            Diagnostic::error(
                                "duplicate-field",
                                format!("`{key_name}` appears twice in the window output"),
                            )
                            .at(span)
                            .with_help("name computed keys with `AS`"),
                        );
                        ok = false;
                    }
                    keys.push((key_name, e));
                    key_sql.push(key.0.clone());
                }
                Err(mut e) => {
                    // `[HOUR(f(ts, 3)), symbol]`: the YAML list split the call at its comma.
                    if key.0.matches('(').count() != key.0.matches(')').count() {
                        e.help = Some(
                            "in a `[…]` list a comma separates items: quote an expression that contains commas, e.g. `group_by: [\"HOUR(TO_TIMESTAMP_LTZ(ts, 3)) AS hour\", symbol]`".to_string(),
                        );
                    }
                    let d = self.expr_diagnostic(e, node.as_ref(), span, &key.0);
                    self.error(d);
                    ok = false;
                }
            }
        }
        let outputs: Vec<(String, String)> = w
            .aggregates
            .iter()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect();
        for (out_name, _) in &outputs {
            if is_window_column(out_name) || seen.contains(out_name) {
                let span = self.loc.key(&[section, name, "aggregates", out_name]);
                self.error(
                    Diagnostic::error("duplicate-field", format!("output `{out_name}` clashes with a grouping key or window column"))
                        .at(span)
                        .with_help("window outputs already hold `window_start`, `window_end` and the `group_by` keys; pick another name"),
                );
                ok = false;
            }
        }
        if outputs.is_empty() {
            let span = self.loc.key(&[section, name, "aggregates"]);
            self.error(
                Diagnostic::error("no-aggregates", "a window needs at least one aggregate")
                    .at(span)
                    .with_help("e.g. `aggregates: {events: \"COUNT(*)\"}`"),
            );
            ok = false;
        }
        let aggregates = match expr::compile_aggregates(&schema, keys, &outputs) {
            Ok(a) => Some(a),
            Err(errors) => {
                for (out_name, e) in errors {
                    let path = [section, name, "aggregates", out_name.as_str()];
                    let node = self.loc.node(&path).clone();
                    let sql = w
                        .aggregates
                        .get(&out_name)
                        .map(|s| s.0.clone())
                        .unwrap_or_default();
                    let d = self.expr_diagnostic(e, Some(&node), node.span, &sql);
                    self.error(d);
                }
                None
            }
        };
        let aggregates = aggregates?;
        for (i, call) in aggregates.calls.iter().enumerate() {
            if call.func == AggFunc::Avg && call.ty == DataType::Int {
                // Find the output using it, to point there.
                let user = aggregates.outputs.iter().position(|(_, e)| {
                    let mut cols = Vec::new();
                    e.columns(&mut cols);
                    cols.contains(&(aggregates.keys.len() + i))
                });
                let span = user.map_or(self.loc.key(&[section, name, "aggregates"]), |u| {
                    self.loc
                        .value(&[section, name, "aggregates", &aggregates.outputs[u].0])
                });
                self.diagnostics.push(
                    Diagnostic::warning(
                        "integer-avg",
                        "AVG over a BIGINT returns a truncated BIGINT in Flink SQL",
                    )
                    .at(span)
                    .with_help("for a fractional average write AVG(CAST(x AS DOUBLE))"),
                );
            }
        }
        let allowed_lateness_ms = w.late.as_ref().map_or(0, |l| l.allowed_lateness.millis);
        let kind = kind?;
        if !ok {
            return None;
        }
        let mut fields = vec![
            Field::new("window_start", DataType::Timestamp),
            Field::new("window_end", DataType::Timestamp),
        ];
        for (key_name, e) in &aggregates.keys {
            let epoch_unit_ms = e.as_column().and_then(|i| schema.fields[i].epoch_unit_ms);
            fields.push(Field {
                name: key_name.clone(),
                data_type: e.ty.clone().unwrap_or(DataType::String),
                epoch_unit_ms,
            });
        }
        for (j, (out_name, e)) in aggregates.outputs.iter().enumerate() {
            // MIN/MAX/FIRST/LAST of an epoch-number field stay epoch numbers (usable in path
            // templates with a time format).
            let epoch_unit_ms = aggregates
                .output_is_call(j)
                .map(|i| &aggregates.calls[i])
                .filter(|call| {
                    matches!(
                        call.func,
                        AggFunc::Min | AggFunc::Max | AggFunc::FirstValue | AggFunc::LastValue
                    )
                })
                .and_then(|call| call.arg.as_ref()?.as_column())
                .and_then(|col| schema.fields[col].epoch_unit_ms);
            fields.push(Field {
                name: out_name.clone(),
                data_type: e.ty.clone().unwrap_or(DataType::Int),
                epoch_unit_ms,
            });
        }
        let emit_setting = w.late.as_ref().and_then(|l| l.emit);
        let emit = emit_setting.unwrap_or_default();
        if emit_setting.is_some() && allowed_lateness_ms == 0 {
            let span = self.loc.value(&[section, name, "late", "emit"]);
            self.diagnostics.push(
                Diagnostic::warning(
                    "unused-setting",
                    "`emit` has no effect without `allowed_lateness`: each window is written once",
                )
                .at(span),
            );
        }
        if allowed_lateness_ms > 0 && emit == EmitMode::Updates {
            // Late events re-emit rows: number them, so readers can tell updates apart.
            if fields.iter().any(|f| f.name == REVISION_FIELD) {
                let span = self.loc.value(&[section, name, "late", "allowed_lateness"]);
                self.error(
                    Diagnostic::error(
                        "duplicate-field",
                        format!("with `allowed_lateness` the window's rows get a `{REVISION_FIELD}` column, which clashes with a grouping key or output of the same name"),
                    )
                    .at(span)
                    .with_help(format!("rename that key or output, or set `emit: final` (no `{REVISION_FIELD}` column)")),
                );
            }
            fields.push(Field::new(REVISION_FIELD, DataType::Int));
        }
        let mut ports = vec![Port {
            name: c.name.to_string(),
            schema: Arc::new(Schema::new(fields)),
            has_time: true,
        }];
        let bad_records = self.bad_records(c, w.bad_records.as_ref(), &mut ports);
        // Late events keep their fields, plus the window each row was too late for (an event
        // late for several sliding windows is one row per window).
        let late_port = w.late.as_ref().and_then(|l| l.to.clone()).map(|to| {
            let mut fields = schema.fields.clone();
            for field in LATE_WINDOW_FIELDS {
                if fields.iter().any(|f| f.name == field) {
                    let span = self.loc.value(&[section, name, "late", "to"]);
                    self.error(
                        Diagnostic::error(
                            "duplicate-field",
                            format!("the late stream adds the field `{field}`, which the window's input already has"),
                        )
                        .at(span)
                        .with_help(format!("rename `{field}` before this window, e.g. with a `select`")),
                    );
                }
                fields.push(Field::new(field, DataType::Timestamp));
            }
            ports.push(Port {
                name: to,
                schema: Arc::new(Schema::new(fields)),
                has_time: true,
            });
            ports.len() - 1
        });
        Some((
            NodeKind::Window(WindowPlan {
                kind,
                output_sql: w.aggregates.values().map(|s| s.0.clone()).collect(),
                key_sql,
                aggregates,
                allowed_lateness_ms,
                emit,
                late_port,
                bad_records,
            }),
            ports,
        ))
    }

    fn window_kind(&mut self, c: &Component<'_>, spec: &WindowSpec) -> Option<WindowKind> {
        let [section, name] = c.path();
        let at = |b: &Self, key: &str| b.loc.value(&[section, name, "window", key]);
        match *spec {
            WindowSpec::Tumbling { size } => {
                if size.millis <= 0 {
                    let span = at(self, "size");
                    self.error(
                        Diagnostic::error("bad-window", "window `size` must be longer than 0")
                            .at(span),
                    );
                    return None;
                }
                Some(WindowKind::Tumbling { size: size.millis })
            }
            WindowSpec::Sliding { size, slide } => {
                if size.millis <= 0 || slide.millis <= 0 {
                    let key = if size.millis <= 0 { "size" } else { "slide" };
                    let span = at(self, key);
                    self.error(
                        Diagnostic::error(
                            "bad-window",
                            format!("window `{key}` must be longer than 0"),
                        )
                        .at(span),
                    );
                    return None;
                }
                if slide.millis > size.millis {
                    let span = at(self, "slide");
                    self.error(
                        Diagnostic::error("bad-window", format!("`slide` ({slide}) is longer than `size` ({size}): events between windows would be lost"))
                            .at(span)
                            .with_help("use a slide no longer than the size, or a tumbling window"),
                    );
                    return None;
                }
                if size.millis % slide.millis != 0 {
                    let span = at(self, "size");
                    let lower = crate::config::Duration::from_millis(
                        size.millis / slide.millis * slide.millis,
                    );
                    self.error(
                        Diagnostic::error("bad-window", format!("`size` ({size}) is not a multiple of `slide` ({slide})"))
                            .at(span)
                            .with_help(format!("Flink's HOP windows need a whole number of slides per window, e.g. size {lower}")),
                    );
                    return None;
                }
                Some(WindowKind::Sliding {
                    size: size.millis,
                    slide: slide.millis,
                })
            }
            WindowSpec::Session { gap } => {
                if gap.millis <= 0 {
                    let span = at(self, "gap");
                    self.error(
                        Diagnostic::error("bad-window", "session `gap` must be longer than 0")
                            .at(span)
                            .with_help(
                                "a session ends after `gap` without events, e.g. `gap: 30m`",
                            ),
                    );
                    return None;
                }
                Some(WindowKind::Session { gap: gap.millis })
            }
        }
    }

    // ----- sinks ---------------------------------------------------------------------------

    fn sink(
        &mut self,
        c: &Component<'_>,
        s: &SinkConfig,
        inputs: &[&Port],
    ) -> Option<(NodeKind, Vec<Port>)> {
        let input = self.input_port(c, inputs)?;
        let [section, name] = c.path();
        let schema = input.schema.clone();
        let projection = self.projection(c, s.fields(), &schema)?;
        let format = match s {
            SinkConfig::S3(o) => o.format,
            SinkConfig::File(f) => f.format,
            SinkConfig::Kafka(k) => k.format,
            SinkConfig::Kinesis(k) => k.format,
            SinkConfig::Stdout(o) => o.format,
        };
        if format == OutputFormat::Parquet && !matches!(s, SinkConfig::S3(_)) {
            let span = self.loc.value(&[section, name, "format"]);
            self.error(
                Diagnostic::error("unsupported-format", format!("{} cannot write Parquet", c.describe()))
                    .at(span)
                    .with_help("Parquet files come from `type: s3` sinks (s3:// or file:// URLs); use `json` or `csv` here"),
            );
            return None;
        }
        let mut path = None;
        let mut key = None;
        let mut headers = Vec::new();
        match s {
            SinkConfig::S3(o) => {
                path = Some(self.object_sink(c, o, &schema)?);
            }
            SinkConfig::File(f) => self.non_empty(&f.path, &[section, name, "path"], "path"),
            SinkConfig::Kafka(k) => {
                self.non_empty(&k.brokers, &[section, name, "brokers"], "brokers");
                self.non_empty(&k.topic, &[section, name, "topic"], "topic");
                if let Some(k) = &k.key {
                    key = Some(self.sql(&k.0, &[section, name, "key"], |sql| {
                        expr::compile(sql, &schema)
                    })?);
                }
                for (header, sql) in &k.headers {
                    let e = self.sql(&sql.0, &[section, name, "headers", header], |sql| {
                        expr::compile(sql, &schema)
                    })?;
                    headers.push((header.clone(), e));
                }
                self.reserved_properties(
                    c,
                    &k.properties,
                    crate::kafka::reserved_producer_property,
                );
            }
            SinkConfig::Kinesis(k) => {
                self.non_empty(&k.stream, &[section, name, "stream"], "stream");
                key = Some(self.sql(
                    &k.partition_key.0,
                    &[section, name, "partition_key"],
                    |sql| expr::compile(sql, &schema),
                )?);
            }
            SinkConfig::Stdout(_) => {}
        }
        let csv_given = match s {
            SinkConfig::S3(o) => o.csv.is_some(),
            SinkConfig::File(f) => f.csv.is_some(),
            _ => false,
        };
        if csv_given && format != OutputFormat::Csv {
            let span = self.loc.key(&[section, name, "csv"]);
            self.diagnostics.push(
                Diagnostic::warning(
                    "unused-setting",
                    "`csv` options have no effect unless `format: csv`",
                )
                .at(span),
            );
        }
        let mut connector = super::connectors::sink(s);
        if let super::connectors::SinkConnector::Kafka(k) = &mut connector {
            k.headers = headers;
        }
        Some((
            NodeKind::Sink(SinkPlan {
                config: s.clone(),
                connector,
                projection,
                path,
                key,
            }),
            Vec::new(),
        ))
    }

    fn projection(
        &mut self,
        c: &Component<'_>,
        fields: Option<&[String]>,
        schema: &Schema,
    ) -> Option<Projection> {
        let [section, name] = c.path();
        let Some(fields) = fields else {
            return Some(Projection {
                columns: (0..schema.len()).collect(),
                fields: schema.fields.clone(),
            });
        };
        let mut columns = Vec::new();
        let mut out = Vec::new();
        let mut ok = true;
        for (i, f) in fields.iter().enumerate() {
            let span = self.loc.item(&[section, name, "fields"], i);
            match schema.index_of(f) {
                Some(col) if columns.contains(&col) => {
                    self.error(
                        Diagnostic::error("duplicate-field", format!("`{f}` is listed twice"))
                            .at(span),
                    );
                    ok = false;
                }
                Some(col) => {
                    columns.push(col);
                    out.push(schema.fields[col].clone());
                }
                None => {
                    self.unknown_field(f, schema, span, &format!("{} writes", c.describe()));
                    ok = false;
                }
            }
        }
        if fields.is_empty() {
            let span = self.loc.value(&[section, name, "fields"]);
            self.error(
                Diagnostic::error("empty-value", "`fields` is empty")
                    .at(span)
                    .with_help("omit `fields` to write every column"),
            );
            ok = false;
        }
        ok.then_some(Projection {
            columns,
            fields: out,
        })
    }

    fn object_sink(
        &mut self,
        c: &Component<'_>,
        o: &ObjectSink,
        schema: &Schema,
    ) -> Option<PathTemplate> {
        let [section, name] = c.path();
        let url_span = self.loc.value(&[section, name, "url"]);
        if let Some(rest) = o.url.strip_prefix("s3://") {
            let bucket = rest.split('/').next().unwrap_or_default();
            let valid = (3..=63).contains(&bucket.len())
                && bucket.chars().all(|ch| {
                    ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-' || ch == '.'
                });
            if !valid {
                let node = self.loc.node(&[section, name, "url"]).clone();
                let bucket_span = if bucket.is_empty() {
                    url_span
                } else {
                    locate_in_scalar(self.file, &node, &o.url, Some((5, 5 + bucket.len())))
                };
                self.error(
                    Diagnostic::error("bad-url", format!("`{bucket}` is not a valid S3 bucket name"))
                        .at(bucket_span)
                        .with_help("bucket names are 3–63 lowercase letters, digits, `-` and `.`: s3://my-bucket/prefix/"),
                );
            }
        } else if let Some(rest) = o.url.strip_prefix("file://") {
            if rest.is_empty() {
                self.error(
                    Diagnostic::error("bad-url", "a file:// URL needs a directory")
                        .at(url_span)
                        .with_help("e.g. file:///tmp/out/ or file://out/ (relative)"),
                );
            }
        } else {
            // Name the value actually used: with `url: ${OUTPUT}` the file does not show it.
            // A URL's user info (`user:secret@`) is never printed.
            let written = self
                .loc
                .node(&[section, name, "url"])
                .as_scalar()
                .filter(|s| s.interpolated)
                .and_then(|s| s.written.clone());
            let shown = without_user_info(&o.url);
            let message = match written {
                Some(written) => format!(
                    "`url` must start with s3:// or file://, found `{shown}` (from `{written}`)"
                ),
                None => format!("`url` must start with s3:// or file://, found `{shown}`"),
            };
            let help = if o.url.contains("://") {
                "e.g. s3://analytics/impressions/ or file:///tmp/impressions/".to_string()
            } else {
                format!("for a local directory write `file://{shown}`")
            };
            self.error(
                Diagnostic::error("bad-url", message)
                    .at(url_span)
                    .with_help(help),
            );
        }
        if let Some(rolling) = &o.rolling {
            if rolling.max_open_files == Some(0) {
                let span = self
                    .loc
                    .value(&[section, name, "rolling", "max_open_files"]);
                self.error(
                    Diagnostic::error("out-of-range", "`max_open_files` must be at least 1")
                        .at(span),
                );
            }
            if rolling.max_bytes.is_some_and(|b| b.bytes == 0) {
                let span = self.loc.value(&[section, name, "rolling", "max_bytes"]);
                self.error(
                    Diagnostic::error("out-of-range", "`max_bytes` must be more than 0").at(span),
                );
            }
            if rolling.max_age.is_some_and(|a| a.millis <= 0) {
                let span = self.loc.value(&[section, name, "rolling", "max_age"]);
                self.error(
                    Diagnostic::error("bad-duration", "`max_age` must be longer than 0").at(span),
                );
            }
        }
        match PathTemplate::parse(&o.path, schema, o.path_sanitize) {
            // Errors point into the template as written; the Hive form only renames levels.
            Ok(_) if o.layout == PathLayout::Hive => {
                PathTemplate::parse(&path_template::hive_style(&o.path), schema, o.path_sanitize)
                    .ok()
            }
            Ok(t) => Some(t),
            Err(errors) => {
                let node = self.loc.node(&[section, name, "path"]).clone();
                for e in errors {
                    let d = self.template_diagnostic(e, &node, &o.path);
                    self.error(d);
                }
                None
            }
        }
    }

    /// Warns when a bucketed sink's layout and rolling will make many small objects: every
    /// open file closes at each checkpoint and after `max_age`, and each time bucket holds at
    /// least one file per key, so objects per hour per key follow from those settings.
    fn small_files(
        &mut self,
        name: &str,
        o: &ObjectSink,
        template: &PathTemplate,
        checkpoint: Option<&CheckpointPlan>,
    ) {
        const HOUR_MS: i64 = 3_600_000;
        /// More objects than this per hour for one key (a file every 5 minutes) is many.
        const MANY_PER_HOUR: i64 = 12;
        let rolling = super::connectors::sink(&SinkConfig::S3(o.clone()));
        let SinkConnector::Object(settings) = rolling else {
            return;
        };
        let mut keys = Vec::new();
        let mut bucket_ms: Option<i64> = None;
        for segment in &template.segments {
            if let Segment::Field { name, format, .. } = segment {
                match format.as_deref().and_then(path_template::time_unit) {
                    Some(unit) => {
                        let ms = path_template::unit_ms(unit);
                        bucket_ms = Some(bucket_ms.map_or(ms, |b| b.min(ms)));
                    }
                    None => keys.push(format!("`{name}`")),
                }
            }
        }
        let age = settings.rolling.max_age_ms;
        let interval = checkpoint.map(|c| c.interval_ms);
        let mut period = age;
        let mut reasons = vec![format!(
            "a file closes {} after it opens (`rolling.max_age`)",
            crate::config::values::spoken(age)
        )];
        if let Some(i) = interval.filter(|&i| i < age) {
            period = i;
            reasons = vec![format!(
                "every checkpoint closes each open file (`checkpoint.interval` {})",
                crate::config::values::spoken(i)
            )];
        }
        if let Some(b) = bucket_ms.filter(|&b| b < period) {
            period = b;
            reasons = vec![format!(
                "each time bucket of `path` lasts {}",
                crate::config::values::spoken(b)
            )];
        }
        let per_hour = HOUR_MS / period.max(1);
        if per_hour <= MANY_PER_HOUR {
            return;
        }
        let per_key = if keys.is_empty() {
            String::new()
        } else {
            format!(" for each distinct {}", keys.join(" and "))
        };
        let span = self.loc.value(&["sinks", name, "path"]);
        self.diagnostics.push(
            Diagnostic::warning(
                "small-files",
                format!(
                    "sink `{name}` will write about {per_hour} objects per hour{per_key}: {}; many small objects are slow and costly to list and query (Athena, Spark)",
                    reasons.join(", ")
                ),
            )
            .at(span)
            .with_help("fewer, larger objects: a longer `checkpoint.interval` (e.g. 5m) and `rolling.max_age`, a coarser time bucket (`%Y-%m-%d--%H`), or fewer key levels in `path`"),
        );
    }

    /// With a Hive layout, a level named like a column the files hold makes a table that
    /// Athena, Hive and Spark reject (a partition column may not repeat a data column).
    fn hive_columns(&mut self, name: &str, template: &PathTemplate, projection: &Projection) {
        let mut keys = Vec::new();
        for segment in &template.segments {
            if let Segment::Literal(text) = segment
                && let Some(key) = text.rsplit('/').next().and_then(|l| l.strip_suffix('='))
                && projection.fields.iter().any(|f| f.name == key)
            {
                keys.push(format!("`{key}`"));
            }
        }
        if keys.is_empty() {
            return;
        }
        let span = self.loc.value(&["sinks", name, "layout"]);
        self.diagnostics.push(
            Diagnostic::warning(
                "hive-column-repeated",
                format!(
                    "{} {} both a partition level and a column in the files: Athena, Hive and Spark reject a table whose partition column repeats a data column",
                    keys.join(", "),
                    if keys.len() == 1 { "is" } else { "are" }
                ),
            )
            .at(span)
            .with_help("leave it out of `fields` (readers take it from the path)"),
        );
    }

    // ----- helpers -------------------------------------------------------------------------

    fn unknown_field(&mut self, field: &str, schema: &Schema, span: Span, what: &str) {
        let help = did_you_mean(field, schema.names())
            .unwrap_or_else(|| format!("fields available here: {}", list_names(&schema.names())));
        self.error(
            Diagnostic::error(
                "unknown-field",
                format!("{what} `{field}`, which its input does not have"),
            )
            .at(span)
            .with_help(help),
        );
    }

    /// Compiles a SQL setting at `path`, reporting errors at their position in the file.
    fn sql<T>(
        &mut self,
        sql: &str,
        path: &[&str],
        compile: impl FnOnce(&str) -> Result<T, ExprError>,
    ) -> Option<T> {
        match compile(sql) {
            Ok(v) => Some(v),
            Err(e) => {
                let node = self.loc.node(path).clone();
                let d = self.expr_diagnostic(e, Some(&node), node.span, sql);
                self.error(d);
                None
            }
        }
    }

    fn expr_diagnostic(
        &self,
        e: ExprError,
        node: Option<&YamlNode>,
        fallback: Span,
        sql: &str,
    ) -> Diagnostic {
        let span = match node {
            Some(n) => locate_in_scalar(self.file, n, sql, e.span),
            None => fallback,
        };
        Diagnostic::error(e.code, e.message)
            .at(span)
            .with_help_opt(e.help)
    }

    fn template_diagnostic(&self, e: TemplateError, node: &YamlNode, text: &str) -> Diagnostic {
        let span = locate_in_scalar(self.file, node, text, Some(e.span));
        Diagnostic::error(e.code, e.message)
            .at(span)
            .with_help_opt(e.help)
    }
}

fn is_window_column(name: &str) -> bool {
    name == "window_start" || name == "window_end"
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Maps a byte range inside a scalar's value to the file. Works for plain and quoted
/// single-line scalars (the value appears verbatim) and line by line for block scalars.
/// `scheme://user:secret@host/path` without `user:secret@`, for messages.
fn without_user_info(url: &str) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    match url[after_scheme..authority_end].rfind('@') {
        Some(at) => format!("{}{}", &url[..after_scheme], &url[after_scheme + at + 1..]),
        None => url.to_string(),
    }
}

fn locate_in_scalar(
    file: &SourceFile,
    node: &YamlNode,
    value: &str,
    range: Option<(usize, usize)>,
) -> Span {
    let Some((start, end)) = range else {
        return node.span;
    };
    let raw = &file.text[node.span.start.min(file.text.len())..node.span.end.min(file.text.len())];
    if let Some(offset) = raw.find(value).filter(|_| !value.is_empty()) {
        let base = node.span.start + offset;
        return Span::new(
            base + start,
            base + end.max(start + 1).min(value.len()).max(start),
        );
    }
    // Folded, multi-line, escaped or interpolated scalars: the value is not verbatim in the
    // file, but the offending text usually is. Find the same occurrence of it (the k-th) in
    // the scalar's region of the file.
    let needle = value
        .get(start..end.min(value.len()))
        .unwrap_or_default()
        .trim();
    if needle.len() >= 2 && !value[start..].starts_with(char::is_whitespace) {
        let occurrence = value[..start].matches(needle).count();
        let region_end = (node.span.start + 2 * value.len() + 256).min(file.text.len());
        let region = &file.text[node.span.start.min(region_end)..region_end];
        if let Some((offset, _)) = region.match_indices(needle).nth(occurrence) {
            let at = node.span.start + offset;
            return Span::new(at, at + needle.len());
        }
    }
    // Block scalar (`|`/`>`): find the value's lines one after another below the node.
    let line_index = value[..start.min(value.len())].matches('\n').count();
    let mut search_from = node.span.start;
    let mut line_start_in_value = 0;
    for (i, line) in value.split('\n').enumerate() {
        let trimmed = line.trim();
        let found = if trimmed.is_empty() {
            None
        } else {
            file.text[search_from..]
                .find(trimmed)
                .map(|o| search_from + o)
        };
        if i == line_index {
            let Some(at) = found else { break };
            let lead = line.len() - line.trim_start().len();
            let col = start - line_start_in_value;
            let s = at + col.saturating_sub(lead);
            let e = s + (end.saturating_sub(start)).max(1).min(trimmed.len());
            return Span::new(s, e);
        }
        if let Some(at) = found {
            search_from = at + trimmed.len();
        }
        line_start_in_value += line.len() + 1;
    }
    node.span
}

#[cfg(test)]
mod tests {
    use super::without_user_info;

    #[test]
    fn user_info_is_left_out_of_urls_in_messages() {
        assert_eq!(
            without_user_info("s3://key:secret@bucket/x/"),
            "s3://bucket/x/"
        );
        assert_eq!(without_user_info("/tmp/a@b/"), "/tmp/a@b/");
        assert_eq!(without_user_info("file:///tmp/out/"), "file:///tmp/out/");
    }
}
