//! `streamctl plan`: validates a pipeline and prints what will run: the resolved stages (as
//! text or JSON), or the Flink SQL script of the cluster path.

use std::io::Write;
use std::path::PathBuf;

use serde_json::{Value as Json, json};
use streamctl::config::sink::CsvOutput;
use streamctl::config::{SinkConfig, SourceConfig};
use streamctl::data::Schema;
use streamctl::plan::{BadRecords, NodeKind, Plan, WindowKind};

use super::validate::{Target, flink_options, load_plan_for};
use super::{EnvArgs, exit};

/// Show what a pipeline will run: its stages, schemas, windows and outputs, or the Flink SQL
/// script that runs it on a cluster.
///
/// The pipeline is validated first; if it is invalid, the diagnostics are printed instead
/// and the exit code is 1.
///
/// With `--target flink-sql` the output is a complete Flink 1.20 SQL script (SET statements,
/// CREATE TABLE for sources and sinks, a view per transform, the INSERTs); what Flink SQL
/// cannot do the way the embedded engine does is printed as warnings (as by `streamctl
/// validate --target flink`) and as comments in the script. Settings that hold secrets
/// (passwords, tokens) are never printed.
///
/// Examples:
///   streamctl plan pipelines/movie-impressions.yaml
///   streamctl plan pipelines/movie-impressions.yaml --format json
///   streamctl plan pipelines/movie-impressions.yaml --target flink-sql > job.sql
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pipeline file.
    pipeline: PathBuf,
    /// What to show: `stages` (the validated stages) or `flink-sql` (the Flink SQL script).
    #[arg(long, value_enum, default_value = "stages")]
    target: PlanTarget,
    /// Output format of the stages: `text` (for people) or `json` (for tools: stages,
    /// inputs, schemas and settings). With `--target flink-sql`, `json` gives the script and
    /// its warnings in one document.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    #[command(flatten)]
    env: EnvArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PlanTarget {
    /// The stages the embedded engine runs.
    Stages,
    /// A Flink SQL script for Flink 1.20.
    FlinkSql,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let target = match args.target {
        PlanTarget::Stages => Target::Embedded,
        PlanTarget::FlinkSql => Target::Flink,
    };
    let Some(plan) = load_plan_for(&args.pipeline, &args.env, target)? else {
        return Ok(exit::INVALID);
    };
    let mut out = std::io::stdout().lock();
    match (args.target, args.format) {
        (PlanTarget::Stages, Format::Text) => write!(out, "{plan}")?,
        (PlanTarget::Stages, Format::Json) => {
            writeln!(out, "{}", serde_json::to_string_pretty(&plan_json(&plan))?)?
        }
        (PlanTarget::FlinkSql, format) => {
            let script = streamctl::flink::translate(&plan, &flink_options(&args.pipeline)?);
            if format == Format::Json {
                let gaps: Vec<Json> = script
                    .gaps
                    .iter()
                    .map(|g| {
                        json!({
                            "code": g.code,
                            "setting": g.path.join("."),
                            "message": g.message,
                            "help": g.help,
                        })
                    })
                    .collect();
                let doc = json!({
                    "pipeline": plan.name,
                    "flink_version": streamctl::flink::FLINK_VERSION,
                    "sql": script.sql,
                    "gaps": gaps,
                });
                writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
            } else {
                write!(out, "{}", script.sql)?;
            }
        }
    }
    Ok(exit::OK)
}

/// The plan as JSON for tools: every stage with its inputs, outputs (schemas) and settings.
/// Settings that hold secrets are replaced by `"<redacted>"`.
fn plan_json(plan: &Plan) -> Json {
    let stages: Vec<Json> = plan
        .nodes
        .iter()
        .map(|node| {
            let inputs: Vec<&str> = node
                .inputs
                .iter()
                .map(|r| plan.port(*r).name.as_str())
                .collect();
            let outputs: Vec<Json> = node
                .outputs
                .iter()
                .map(|p| {
                    json!({
                        "name": p.name,
                        "event_time": p.has_time,
                        "schema": schema_json(&p.schema),
                    })
                })
                .collect();
            let kind = match &node.kind {
                NodeKind::Source(_) => "source",
                NodeKind::Sink(_) => "sink",
                _ => "transform",
            };
            json!({
                "name": node.name,
                "kind": kind,
                "type": node.kind.type_name(),
                "inputs": inputs,
                "outputs": outputs,
                "settings": settings_json(plan, node),
            })
        })
        .collect();
    json!({
        "pipeline": plan.name,
        "stages": stages,
        "checkpoint": plan.checkpoint.as_ref().map(|c| json!({"url": c.url, "interval_ms": c.interval_ms})),
    })
}

fn schema_json(schema: &Schema) -> Json {
    Json::Array(
        schema
            .fields
            .iter()
            .map(|f| {
                let mut field = json!({"name": f.name, "type": f.data_type.sql_name()});
                if let Some(unit) = f.epoch_unit_ms {
                    field["epoch_unit_ms"] = unit.into();
                }
                field
            })
            .collect(),
    )
}

fn bad_records_json(node: &streamctl::plan::Node, bad: BadRecords) -> Json {
    json!({
        "policy": bad.policy.name(),
        "to": bad.port.map(|p| node.outputs[p].name.clone()),
    })
}

fn secret_map(properties: &indexmap::IndexMap<String, String>) -> Json {
    properties
        .iter()
        .map(|(k, v)| {
            let value = if streamctl::flink::is_secret(k) {
                "<redacted>".to_string()
            } else {
                v.clone()
            };
            (k.clone(), Json::String(value))
        })
        .collect::<serde_json::Map<String, Json>>()
        .into()
}

fn csv_json(csv: &Option<CsvOutput>) -> Json {
    csv.as_ref().map_or(
        Json::Null,
        |c| json!({"header": c.header, "delimiter": c.delimiter.to_string()}),
    )
}

fn settings_json(plan: &Plan, node: &streamctl::plan::Node) -> Json {
    match &node.kind {
        NodeKind::Source(s) => {
            let mut settings = match &s.config {
                SourceConfig::Kafka(k) => json!({
                    "brokers": k.brokers,
                    "topics": k.topic_names(),
                    "topic_pattern": k.topic_pattern,
                    "group_id": k.group_id,
                    "partitioned_by": k.partitioned_by,
                    "metadata": k.metadata.iter().map(|(f, m)| (f.clone(), json!(m.name()))).collect::<serde_json::Map<_, _>>(),
                    "start_from": format!("{:?}", k.start_from).to_lowercase(),
                    "start_timestamp_ms": k.start_timestamp.map(|t| t.millis),
                    "properties": secret_map(&k.properties),
                }),
                SourceConfig::Kinesis(k) => json!({
                    "stream": k.stream,
                    "region": k.region,
                    "endpoint": k.endpoint,
                    "start_timestamp_ms": k.start_timestamp.map(|t| t.millis),
                }),
                SourceConfig::File(f) => json!({"path": f.path}),
                SourceConfig::Stdin(_) => json!({}),
                SourceConfig::Generator(g) => json!({
                    "preset": format!("{:?}", g.preset),
                    "count": g.count,
                    "rate": g.rate,
                    "seed": g.seed,
                    "partitions": g.partitions,
                    "start_ms": g.start.map(|t| t.millis),
                    "interval_ms": g.interval.map(|d| d.millis),
                    "disorder_ms": g.disorder.millis,
                }),
            };
            if let Some(d) = s.config.decoding() {
                settings["format"] = json!(format!("{:?}", d.format).to_lowercase());
            }
            if let Some(et) = &s.event_time {
                settings["event_time"] = json!({
                    "field": node.outputs[0].schema.fields[et.column].name,
                    "max_out_of_orderness_ms": et.max_out_of_orderness_ms,
                    "idle_timeout_ms": et.idle_timeout_ms,
                });
            }
            settings["bad_records"] = bad_records_json(node, s.bad_records);
            settings
        }
        NodeKind::Filter(f) => json!({
            "where": f.sql,
            "bad_records": bad_records_json(node, f.bad_records),
        }),
        NodeKind::Select(s) => {
            let fields: Vec<Json> = s
                .columns
                .iter()
                .map(|(name, _, sql)| json!({"name": name, "sql": sql}))
                .collect();
            json!({"fields": fields, "bad_records": bad_records_json(node, s.bad_records)})
        }
        NodeKind::Explode(x) => {
            let input = &plan.port(node.inputs[0]).schema;
            json!({"field": input.fields[x.column].name, "keep_empty": x.keep_empty})
        }
        NodeKind::Window(w) => {
            let window = match w.kind {
                WindowKind::Tumbling { size } => json!({"type": "tumbling", "size_ms": size}),
                WindowKind::Sliding { size, slide } => {
                    json!({"type": "sliding", "size_ms": size, "slide_ms": slide})
                }
                WindowKind::Session { gap } => json!({"type": "session", "gap_ms": gap}),
            };
            let aggregates: Vec<Json> = w
                .aggregates
                .outputs
                .iter()
                .zip(&w.output_sql)
                .map(|((name, _), sql)| json!({"name": name, "sql": sql}))
                .collect();
            json!({
                "window": window,
                "group_by": w.key_sql,
                "aggregates": aggregates,
                "allowed_lateness_ms": w.allowed_lateness_ms,
                "late_to": w.late_port.map(|p| node.outputs[p].name.clone()),
                "bad_records": bad_records_json(node, w.bad_records),
            })
        }
        NodeKind::Sink(s) => {
            let fields: Vec<&str> = s
                .projection
                .fields
                .iter()
                .map(|f| f.name.as_str())
                .collect();
            let mut settings = match &s.config {
                SinkConfig::S3(o) => json!({
                    "url": o.url,
                    "path": o.path,
                    "format": o.format.name(),
                    "csv": csv_json(&o.csv),
                    "rolling": o.rolling.as_ref().map(|r| json!({
                        "max_bytes": r.max_bytes.map(|b| b.bytes),
                        "max_age_ms": r.max_age.map(|d| d.millis),
                        "max_open_files": r.max_open_files,
                    })),
                    "region": o.region,
                    "endpoint": o.endpoint,
                }),
                SinkConfig::File(f) => json!({
                    "path": f.path,
                    "format": f.format.name(),
                    "csv": csv_json(&f.csv),
                }),
                SinkConfig::Kafka(k) => json!({
                    "brokers": k.brokers,
                    "topic": k.topic,
                    "key": k.key.as_ref().map(|k| k.0.clone()),
                    "headers": k.headers.iter().map(|(h, e)| (h.clone(), json!(e.0))).collect::<serde_json::Map<_, _>>(),
                    "format": k.format.name(),
                    "properties": secret_map(&k.properties),
                }),
                SinkConfig::Kinesis(k) => json!({
                    "stream": k.stream,
                    "partition_key": k.partition_key.0,
                    "region": k.region,
                    "endpoint": k.endpoint,
                    "format": k.format.name(),
                }),
                SinkConfig::Stdout(o) => json!({"format": o.format.name()}),
            };
            settings["fields"] = json!(fields);
            settings
        }
    }
}
