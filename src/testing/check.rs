//! A test against its pipeline's plan: source and sink names, record fields against the
//! source schemas, expected rows against the fields each sink writes, steps against the
//! sources' event time. Produces every diagnostic at once, and what a run needs: each source's
//! script of events (records already encoded in the source's format) and each sink's typed
//! expectations.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::spec::{Counts, SinkExpect, StepKind, TestCase};
use super::values::{self, ValueProblem};
use crate::config::yaml::Node;
use crate::data::{Field, OwnedValue};
use crate::diag::{Diagnostic, Span, did_you_mean, list_names};
use crate::plan::connectors::{DataFormat, Decoding, OutputFormat, SinkConnector, SourceConnector};
use crate::plan::{NodeKind, Plan};

/// What one source receives in a test.
#[derive(Debug, Clone)]
pub struct Script {
    /// The plan node of the source.
    pub node: usize,
    /// Sources are fed one after another: this one's turn.
    pub turn: usize,
    pub decoding: Decoding,
    /// Kafka and Kinesis read messages; files and stdin read lines.
    pub messages: bool,
    /// Every partition the test uses (all open from the start, as a consumer's assignment).
    pub partitions: BTreeSet<u32>,
    pub events: Vec<ScriptEvent>,
}

#[derive(Debug, Clone)]
pub enum ScriptEvent {
    Record {
        partition: u32,
        bytes: Vec<u8>,
        /// The CSV header the record is read with (sources that expect one).
        header: Option<Arc<Vec<u8>>>,
    },
    /// `None`: every partition.
    Watermark {
        partition: Option<u32>,
        watermark: i64,
    },
    Idle {
        partition: Option<u32>,
    },
}

/// An expected row: values by index into the sink's written fields (fields left out are not
/// compared).
#[derive(Debug, Clone)]
pub struct ExpectedRow {
    pub span: Span,
    pub values: Vec<(usize, OwnedValue)>,
    pub node: Node,
}

#[derive(Debug, Clone)]
pub struct ObjectCheck {
    pub key: String,
    pub span: Span,
    pub rows: Option<Vec<ExpectedRow>>,
    pub content: Option<(String, Span)>,
}

/// What one sink must have written.
#[derive(Debug, Clone)]
pub struct SinkCheck {
    pub node: usize,
    pub name: String,
    pub span: Span,
    pub rows: Option<Vec<ExpectedRow>>,
    pub ordered: bool,
    pub objects: Option<Vec<ObjectCheck>>,
    pub content: Option<(String, Span)>,
}

/// A test ready to run.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// One per source of the plan, in plan order.
    pub scripts: Vec<Script>,
    pub sinks: Vec<SinkCheck>,
    pub counts: Option<Counts>,
    pub error: Option<(String, Span)>,
}

/// How a source decodes test records: its own format, or JSON for generators.
pub fn decoding_of(connector: &SourceConnector) -> (Decoding, bool) {
    match connector {
        SourceConnector::File(f) => (f.decoding.clone(), false),
        SourceConnector::Stdin(s) => (s.decoding.clone(), false),
        SourceConnector::Kafka(k) => (k.decoding.clone(), true),
        SourceConnector::Kinesis(k) => (k.decoding.clone(), true),
        SourceConnector::Generator(_) => (
            Decoding {
                format: DataFormat::Json,
                csv_delimiter: b',',
                csv_header: true,
                strict_types: false,
            },
            false,
        ),
    }
}

fn value_diagnostics(problems: Vec<ValueProblem>, out: &mut Vec<Diagnostic>) {
    for p in problems {
        out.push(Diagnostic::error("test-value", p.message).at(p.span));
    }
}

/// Names of the plan's nodes of one kind, for suggestions.
fn names_where(plan: &Plan, keep: impl Fn(&NodeKind) -> bool) -> Vec<&str> {
    plan.nodes
        .iter()
        .filter(|n| keep(&n.kind))
        .map(|n| n.name.as_str())
        .collect()
}

/// Checks `test` against `plan`. Diagnostics may hold warnings beside a usable test.
pub fn check(test: &TestCase, plan: &Plan) -> (Option<Prepared>, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let sources: Vec<&str> = names_where(plan, |k| matches!(k, NodeKind::Source(_)));
    let mut scripts: Vec<Script> = Vec::new();
    let listed: Vec<usize> = test
        .inputs
        .iter()
        .filter_map(|i| plan.nodes.iter().position(|n| n.name == i.source))
        .collect();
    for (turn, (node, source)) in plan.sources().enumerate() {
        let (decoding, messages) = decoding_of(&source.connector);
        // Listed sources take their turns in the order listed; the others come first (they
        // only say that they have nothing).
        let turn = match listed.iter().position(|&n| n == node) {
            Some(i) => plan.sources().count() + i,
            None => turn,
        };
        scripts.push(Script {
            node,
            turn,
            decoding,
            messages,
            partitions: BTreeSet::new(),
            events: Vec::new(),
        });
    }
    for input in &test.inputs {
        let Some(script) = scripts
            .iter_mut()
            .find(|s| plan.nodes[s.node].name == input.source)
        else {
            let help = match plan.nodes.iter().find(|n| n.name == input.source) {
                Some(n) => format!(
                    "`{}` is a {}; inputs name sources: {}",
                    n.name,
                    n.kind.type_name(),
                    list_names(&sources)
                ),
                None => did_you_mean(&input.source, sources.iter().copied()).unwrap_or_else(|| {
                    format!("the pipeline's sources are {}", list_names(&sources))
                }),
            };
            diagnostics.push(
                Diagnostic::error(
                    "unknown-source",
                    format!("the pipeline has no source `{}`", input.source),
                )
                .at(input.span)
                .with_help(help),
            );
            continue;
        };
        let NodeKind::Source(source) = &plan.nodes[script.node].kind else {
            continue;
        };
        let schema = plan.nodes[script.node].outputs[0].schema.clone();
        let header = (script.decoding.format == DataFormat::Csv && script.decoding.csv_header)
            .then(|| Arc::new(values::csv_header(&schema, &script.decoding)));
        let event_field = source
            .event_time
            .map(|et| schema.fields[et.column].name.clone());
        for step in &input.steps {
            let partition = step.partition;
            script.partitions.insert(partition.unwrap_or(0));
            match &step.kind {
                StepKind::Record(record) => {
                    if let Some(field) = &event_field
                        && record.get(field).is_none_or(Node::is_null)
                    {
                        diagnostics.push(
                            Diagnostic::warning(
                                "record-without-event-time",
                                format!(
                                    "this record has no `{field}`: without an event time it is a bad record"
                                ),
                            )
                            .at(step.span)
                            .with_help(format!("give it `{field}:`, or write the bad record exactly with `- raw: '…'`")),
                        );
                    }
                    match values::encode_record(record, &schema, &script.decoding) {
                        Ok(bytes) => script.events.push(ScriptEvent::Record {
                            partition: partition.unwrap_or(0),
                            bytes,
                            header: header.clone(),
                        }),
                        Err(problems) => value_diagnostics(problems, &mut diagnostics),
                    }
                }
                StepKind::Raw(raw) => script.events.push(ScriptEvent::Record {
                    partition: partition.unwrap_or(0),
                    bytes: raw.as_bytes().to_vec(),
                    header: header.clone(),
                }),
                StepKind::File { path, shown } => match std::fs::read(path) {
                    Ok(bytes) => {
                        let mut lines = bytes
                            .split(|&b| b == b'\n')
                            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                            .filter(|l| !l.iter().all(u8::is_ascii_whitespace));
                        let file_header = match &header {
                            Some(_) => lines.next().map(|h| Arc::new(h.to_vec())),
                            None => None,
                        };
                        for line in lines {
                            script.events.push(ScriptEvent::Record {
                                partition: partition.unwrap_or(0),
                                bytes: line.to_vec(),
                                header: file_header.clone(),
                            });
                        }
                    }
                    Err(e) => diagnostics.push(
                        Diagnostic::error("missing-file", format!("cannot read `{shown}`: {e}"))
                            .at(step.span),
                    ),
                },
                StepKind::Watermark(ms) => {
                    if source.event_time.is_none() {
                        diagnostics.push(
                            Diagnostic::error(
                                "no-event-time",
                                format!(
                                    "source `{}` has no event time, so it has no watermark to advance",
                                    input.source
                                ),
                            )
                            .at(step.span)
                            .with_help("give the source `event_time:`, or remove this step"),
                        );
                    }
                    script.events.push(ScriptEvent::Watermark {
                        partition,
                        watermark: *ms,
                    });
                }
                StepKind::Idle => {
                    if source
                        .event_time
                        .is_none_or(|et| et.idle_timeout_ms.is_none())
                    {
                        diagnostics.push(
                            Diagnostic::error(
                                "no-idle-timeout",
                                format!(
                                    "source `{}` has no `event_time.idle_timeout`, so its partitions never go idle",
                                    input.source
                                ),
                            )
                            .at(step.span)
                            .with_help("an idle marker stands for `idle_timeout` passing without data: set `idle_timeout` on the source to test idleness"),
                        );
                    }
                    script.events.push(ScriptEvent::Idle { partition });
                }
            }
            if let StepKind::Watermark(_)
            | StepKind::Idle
            | StepKind::Raw(_)
            | StepKind::File { .. } = &step.kind
            {
                let key = match &step.kind {
                    StepKind::Watermark(_) => "watermark",
                    StepKind::Idle => "idle",
                    StepKind::Raw(_) => "raw",
                    _ => "file",
                };
                if schema.index_of(key).is_some() {
                    diagnostics.push(
                        Diagnostic::warning(
                            "step-or-record",
                            format!(
                                "read as a `{key}:` step, though source `{}` has a field `{key}`",
                                input.source
                            ),
                        )
                        .at(step.span)
                        .with_help(format!("to send a record, write `- record: {{{key}: …}}`")),
                    );
                }
            }
        }
    }
    let mut sinks = Vec::new();
    if let Some(outputs) = &test.outputs {
        if test.error.is_some() {
            diagnostics.push(
                Diagnostic::warning(
                    "outputs-with-error",
                    "this test expects the run to fail (`error:`), so its `outputs` are not checked",
                )
                .at(outputs.key_span),
            );
        }
        for expect in &outputs.sinks {
            if let Some(check) = check_sink(expect, plan, &mut diagnostics) {
                sinks.push(check);
            }
        }
    }
    if let Some(counts) = &test.counts {
        let windows = names_where(plan, |k| matches!(k, NodeKind::Window(_)));
        for late in &counts.late_events {
            let (stage, span) = (&late.stage, &late.stage_span);
            if !windows.contains(&stage.as_str()) {
                let help = did_you_mean(stage, windows.iter().copied()).unwrap_or_else(|| {
                    format!("the pipeline's windows are {}", list_names(&windows))
                });
                diagnostics.push(
                    Diagnostic::error(
                        "unknown-window",
                        format!("`{stage}` is not a window of the pipeline: only windows count late events"),
                    )
                    .at(*span)
                    .with_help(help),
                );
            }
        }
    }
    if test.inputs.is_empty() {
        diagnostics.push(
            Diagnostic::warning("no-inputs", "this test gives no input to any source")
                .at(test.name_span)
                .with_help(format!(
                    "add `inputs: {{{}: [records…]}}`",
                    sources.first().copied().unwrap_or("source")
                )),
        );
    }
    let ok = !diagnostics.iter().any(Diagnostic::is_error);
    let prepared = ok.then(|| Prepared {
        scripts,
        sinks,
        counts: test.counts.clone(),
        error: test.error.clone(),
    });
    (prepared, diagnostics)
}

fn check_rows(
    rows: &[Node],
    fields: &[Field],
    sink: &str,
    out: &mut Vec<Diagnostic>,
) -> Vec<ExpectedRow> {
    let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
    let mut expected = Vec::new();
    for row in rows {
        let mut values_of_row = Vec::new();
        for (key, value) in row.as_map().unwrap_or_default() {
            let name = key.as_str().unwrap_or_default();
            match names.iter().position(|n| *n == name) {
                Some(i) => match values::typed(value, &fields[i]) {
                    Ok(v) => values_of_row.push((i, v)),
                    Err(p) => value_diagnostics(vec![p], out),
                },
                None => {
                    let help = did_you_mean(name, names.iter().copied())
                        .unwrap_or_else(|| format!("it writes {}", list_names(&names)));
                    out.push(
                        Diagnostic::error(
                            "unknown-field",
                            format!("sink `{sink}` does not write a field `{name}`"),
                        )
                        .at(key.span)
                        .with_help(help),
                    );
                }
            }
        }
        expected.push(ExpectedRow {
            span: row.span,
            values: values_of_row,
            node: row.clone(),
        });
    }
    expected
}

fn check_sink(expect: &SinkExpect, plan: &Plan, out: &mut Vec<Diagnostic>) -> Option<SinkCheck> {
    let sinks = names_where(plan, |k| matches!(k, NodeKind::Sink(_)));
    let Some(node) = plan
        .nodes
        .iter()
        .position(|n| n.name == expect.sink && matches!(n.kind, NodeKind::Sink(_)))
    else {
        // A stream name (a late or dead-letter stream) instead of the sink that writes it.
        let readers: Vec<&str> = plan
            .nodes
            .iter()
            .filter(|n| {
                matches!(n.kind, NodeKind::Sink(_))
                    && n.inputs.iter().any(|r| plan.port(*r).name == expect.sink)
            })
            .map(|n| n.name.as_str())
            .collect();
        let help = if !readers.is_empty() {
            format!(
                "`{}` is a stream; outputs name the sinks that write it: {}",
                expect.sink,
                list_names(&readers)
            )
        } else {
            did_you_mean(&expect.sink, sinks.iter().copied())
                .unwrap_or_else(|| format!("the pipeline's sinks are {}", list_names(&sinks)))
        };
        out.push(
            Diagnostic::error(
                "unknown-sink",
                format!("the pipeline has no sink `{}`", expect.sink),
            )
            .at(expect.key_span)
            .with_help(help),
        );
        return None;
    };
    let NodeKind::Sink(sink) = &plan.nodes[node].kind else {
        return None;
    };
    let fields = &sink.projection.fields;
    let rows = expect
        .rows
        .as_ref()
        .map(|r| check_rows(r, fields, &expect.sink, out));
    let format = match &sink.connector {
        SinkConnector::Object(o) => o.encoding.format,
        SinkConnector::File(f) => f.encoding.format,
        SinkConnector::Stdout(s) => s.encoding.format,
        SinkConnector::Kafka(k) => k.encoding.format,
        SinkConnector::Kinesis(k) => k.encoding.format,
    };
    let is_object = matches!(sink.connector, SinkConnector::Object(_));
    let binary = |span: Span, out: &mut Vec<Diagnostic>| {
        out.push(
            Diagnostic::error(
                "binary-content",
                format!(
                    "sink `{}` writes Parquet, which is binary: compare its `rows`",
                    expect.sink
                ),
            )
            .at(span),
        );
    };
    if let Some((_, span)) = &expect.content {
        if is_object {
            out.push(
                Diagnostic::error(
                    "content-of-objects",
                    format!(
                        "sink `{}` writes objects under its url: give each object's `content` under `objects`",
                        expect.sink
                    ),
                )
                .at(*span)
                .with_help("write `objects: {<path>/: {content: |…}}`"),
            );
        } else if format == OutputFormat::Parquet {
            binary(*span, out);
        }
    }
    let objects = match &expect.objects {
        Some(objects) if !is_object => {
            let span = objects.first().map_or(expect.key_span, |o| o.key_span);
            out.push(
                Diagnostic::error(
                    "objects-of-stream",
                    format!(
                        "sink `{}` is a {} sink: only `s3` sinks write objects",
                        expect.sink,
                        sink.config.type_name()
                    ),
                )
                .at(span)
                .with_help("compare its `rows` (or its `content`)"),
            );
            None
        }
        Some(objects) => Some(
            objects
                .iter()
                .map(|o| {
                    if let Some((_, span)) = &o.content
                        && format == OutputFormat::Parquet
                    {
                        binary(*span, out);
                    }
                    ObjectCheck {
                        key: o.key.clone(),
                        span: o.key_span,
                        rows: o
                            .rows
                            .as_ref()
                            .map(|r| check_rows(r, fields, &expect.sink, out)),
                        content: o.content.clone(),
                    }
                })
                .collect(),
        ),
        None => None,
    };
    Some(SinkCheck {
        node,
        name: expect.sink.clone(),
        span: expect.key_span,
        rows,
        ordered: expect.ordered,
        objects,
        content: expect.content.clone(),
    })
}
