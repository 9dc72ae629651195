//! The test file format (`*.test.yaml`) as types: the JSON Schema in
//! `schemas/pipeline-test.schema.json` is generated from them (`streamctl schema --tests`), and
//! a test checks that the shipped test files read into them.
//!
//! Test files are *read* from the spanned YAML tree by [`super::spec`] (every record and
//! expected row keeps its line and column, and values are typed by the pipeline's schemas, not
//! by YAML's guesses), so these types describe the format; they are not how it is loaded.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

/// Any YAML value: a record's or a row's field, typed by the pipeline's schema.
pub type AnyValue = serde_json::Value;

/// Fields of one record or row, by name.
pub type Fields = IndexMap<String, AnyValue>;

/// Tests of one pipeline: records in, expected rows out, run on the embedded engine with the
/// pipeline's sources and sinks replaced (no services needed).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestFileConfig {
    /// The pipeline under test, relative to this file. Default: this file's name without
    /// `.test` (`movies.test.yaml` tests `movies.yaml`).
    #[serde(default)]
    pub pipeline: Option<String>,
    /// Values of the pipeline's `${VAR}`s in every test. Tests never read the environment: a
    /// variable not given here (or in a test's `env`) takes its default from the pipeline.
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// The tests, each run on a fresh engine.
    pub tests: Vec<TestCaseConfig>,
}

/// One test: what each source receives, and what each sink must have written.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestCaseConfig {
    /// What the test shows, e.g. `a late impression goes to the late stream`.
    pub name: String,
    /// More words about the test, for people reading it.
    #[serde(default)]
    pub description: Option<String>,
    /// `${VAR}` values for this test (over the file's `env`).
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// What each source receives, by source name, in order: records, and watermark advances
    /// and idle markers between them. Sources are fed one after another in the order listed
    /// here; a source not listed receives nothing. Then the input ends: the watermark goes
    /// to +∞ and every window still open fires.
    #[serde(default)]
    pub inputs: IndexMap<String, Vec<InputStep>>,
    /// What each sink must have written, by sink name: its rows (in any order unless
    /// `ordered`), its objects (`s3` sinks: by path under `url`) or its exact text. A sink
    /// not listed is not checked; `[]` says it writes nothing.
    #[serde(default)]
    pub outputs: IndexMap<String, SinkExpectation>,
    /// Counters the run must end with.
    #[serde(default)]
    pub counts: Option<CountsConfig>,
    /// The run must fail with an error containing this text (e.g. a bad record under
    /// `bad_records: {policy: fail}`); outputs are not checked then.
    #[serde(default)]
    pub error: Option<String>,
}

/// One step of a source's input.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum InputStep {
    /// `- watermark: 2019-01-07T00:20:00Z`: the source's watermark advances to at least this
    /// instant (every partition, or the one named); later events at or before it are late.
    Watermark(WatermarkStep),
    /// `- idle: true`: the partition goes quiet as if its `idle_timeout` passed, and stops
    /// holding the watermark back until it sends again.
    Idle(IdleStep),
    /// `- raw: '{"movieId": 7'`: one record's exact bytes, decoded like real input (so it can
    /// be a bad record).
    Raw(RawStep),
    /// `- record: {…}` with `partition:`: a record sent to another partition than 0.
    Record(RecordStep),
    /// `- file: sample.jsonl`: every record (line) of a file, relative to the test file.
    File(FileStep),
    /// `- {movieId: m1, timestamp: 2019-01-07T00:01:00Z}`: a record, field by field. Values
    /// are encoded in the source's `format` and decoded by it like real input; a time
    /// written as an instant is converted for `timestamp_ms`/`timestamp_s` fields.
    Fields(Fields),
}

/// A watermark advance.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WatermarkStep {
    /// The instant (`2019-01-07T00:20:00Z`, or epoch milliseconds) the watermark advances to.
    pub watermark: AnyValue,
    /// Only this partition; default: every partition of the source.
    #[serde(default)]
    pub partition: Option<u32>,
}

/// An idle marker.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdleStep {
    /// `true`: the partition is idle (the source needs `event_time.idle_timeout`).
    pub idle: bool,
    /// The partition that goes quiet; default: every partition of the source.
    #[serde(default)]
    pub partition: Option<u32>,
}

/// A record given as bytes.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// The record exactly as the source would read it (a JSON object, a CSV line in schema
    /// column order).
    pub raw: String,
    /// The partition it arrives in. Default 0.
    #[serde(default)]
    pub partition: Option<u32>,
}

/// A record with a partition.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordStep {
    /// The record's fields.
    pub record: Fields,
    /// The partition it arrives in. Default 0.
    #[serde(default)]
    pub partition: Option<u32>,
}

/// Records from a file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileStep {
    /// Path of a file in the source's format, relative to the test file (a CSV file starts
    /// with its header when the source expects one).
    pub file: String,
    /// The partition its records arrive in. Default 0.
    #[serde(default)]
    pub partition: Option<u32>,
}

/// What a sink must have written.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SinkExpectation {
    /// The rows, in any order: each lists the fields the sink writes (fields left out are not
    /// compared).
    Rows(Vec<Fields>),
    /// Rows, objects or exact text.
    Detailed(SinkDetails),
}

/// A sink's expected output in detail.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SinkDetails {
    /// Every row the sink writes (in any order unless `ordered`).
    #[serde(default)]
    pub rows: Option<Vec<Fields>>,
    /// Compare rows in order (when the order is defined, e.g. one partition through
    /// stateless transforms). Default `false`.
    #[serde(default)]
    pub ordered: bool,
    /// `s3` sinks: the objects by path under the sink's `url`, as the path template renders
    /// it (`2019-01-07--00/m1/`). Every object directory the sink writes must be listed.
    #[serde(default)]
    pub objects: Option<IndexMap<String, ObjectExpectation>>,
    /// The exact text the sink writes (CSV or JSON lines; for `s3` sinks use `objects`).
    #[serde(default)]
    pub content: Option<String>,
}

/// What one object directory of an `s3` sink holds.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ObjectExpectation {
    /// Its rows, in any order.
    Rows(Vec<Fields>),
    /// Its rows or its exact text.
    Detailed(ObjectDetails),
}

/// One object directory in detail.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectDetails {
    /// Its rows (in any order unless the sink is `ordered`).
    #[serde(default)]
    pub rows: Option<Vec<Fields>>,
    /// The exact text of its file (CSV with its header, or JSON lines; files that rolled are
    /// concatenated in name order). Parquet is binary: compare `rows`.
    #[serde(default)]
    pub content: Option<String>,
}

/// Counters a run must end with.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CountsConfig {
    /// Late events per window stage (events late for at least one of their windows), e.g.
    /// `{per_user: 1}`: counted whether or not the stage routes them (`late.to`).
    #[serde(default)]
    pub late_events: Option<IndexMap<String, u64>>,
    /// Bad records of every stage (undecodable, no event time, a failing expression),
    /// skipped or routed.
    #[serde(default)]
    pub bad_records: Option<u64>,
}

/// The JSON Schema of test files, as checked in at `schemas/pipeline-test.schema.json`.
pub fn json_schema() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(TestFileConfig))
        .unwrap_or(serde_json::Value::Null);
    crate::config::visit_schemas(&mut schema, &mut |obj| {
        if obj.contains_key("properties") {
            obj.entry("additionalProperties").or_insert(false.into());
        }
    });
    if let Some(obj) = schema.as_object_mut() {
        obj.insert(
            "$id".to_string(),
            "https://streamctl.dev/schemas/pipeline-test.schema.json".into(),
        );
        obj.insert("title".to_string(), "streamctl pipeline tests".into());
    }
    schema
}
