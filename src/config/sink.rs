//! Sinks: where results go. One variant per `type:`.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

use super::source::default_true;
use super::values::{ByteSize, Duration, SqlText};

/// A destination for records. `type` picks the connector.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SinkConfig {
    /// Objects in S3 (`s3://bucket/prefix/`) or a local directory (`file:///dir/`), bucketed by
    /// a path template and rolled by size and age. Files appear only when complete.
    S3(ObjectSink),
    /// One local file (JSON lines or CSV), e.g. for dead letters and late events.
    File(FileSink),
    /// A Kafka topic.
    Kafka(KafkaSink),
    /// An Amazon Kinesis data stream.
    Kinesis(KinesisSink),
    /// Standard output.
    Stdout(StdoutSink),
}

impl SinkConfig {
    pub fn type_name(&self) -> &'static str {
        match self {
            SinkConfig::S3(_) => "s3",
            SinkConfig::File(_) => "file",
            SinkConfig::Kafka(_) => "kafka",
            SinkConfig::Kinesis(_) => "kinesis",
            SinkConfig::Stdout(_) => "stdout",
        }
    }

    pub fn inputs(&self) -> &[String] {
        match self {
            SinkConfig::S3(s) => &s.inputs,
            SinkConfig::File(s) => &s.inputs,
            SinkConfig::Kafka(s) => &s.inputs,
            SinkConfig::Kinesis(s) => &s.inputs,
            SinkConfig::Stdout(s) => &s.inputs,
        }
    }

    /// The columns to write, when restricted.
    pub fn fields(&self) -> Option<&[String]> {
        match self {
            SinkConfig::S3(s) => s.fields.as_deref(),
            SinkConfig::File(s) => s.fields.as_deref(),
            SinkConfig::Kafka(s) => s.fields.as_deref(),
            SinkConfig::Kinesis(s) => s.fields.as_deref(),
            SinkConfig::Stdout(s) => s.fields.as_deref(),
        }
    }
}

/// Output encodings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    /// JSON, one object per line.
    #[default]
    Json,
    /// CSV with a header row (see `csv`).
    Csv,
    /// Apache Parquet (columnar; object sinks only).
    Parquet,
}

impl OutputFormat {
    /// The name as written in a pipeline.
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Json => "json",
            OutputFormat::Csv => "csv",
            OutputFormat::Parquet => "parquet",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Json => "jsonl",
            OutputFormat::Csv => "csv",
            OutputFormat::Parquet => "parquet",
        }
    }
}

/// CSV writing options.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CsvOutput {
    /// Write a header row with the column names at the top of each file. Default `true`.
    #[serde(default = "default_true")]
    pub header: bool,
    /// Field delimiter, one character. Default `,`.
    #[serde(default = "default_comma")]
    pub delimiter: char,
}

impl Default for CsvOutput {
    fn default() -> Self {
        CsvOutput {
            header: true,
            delimiter: ',',
        }
    }
}

fn default_comma() -> char {
    ','
}

/// Bucketed, rolled object output.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectSink {
    /// Names of the streams this writes.
    pub inputs: Vec<String>,
    /// Where objects go: `s3://bucket/prefix/` or `file:///absolute/dir/` (or a relative
    /// `file://dir/`).
    pub url: String,
    /// Bucket template under `url`: `{field}` inserts a value, `{field:%Y-%m-%d--%H}` formats a
    /// timestamp field with strftime, e.g. `"{window_start:%Y-%m-%d--%H}/{movieId}/"`.
    /// Default: no buckets.
    #[serde(default)]
    pub path: String,
    /// File format. Default `json`.
    #[serde(default)]
    pub format: OutputFormat,
    /// Columns to write, in order. Default: every column of the input.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    /// CSV options (with `format: csv`).
    #[serde(default)]
    pub csv: Option<CsvOutput>,
    /// When to close a file and start the next one in the same bucket.
    #[serde(default)]
    pub rolling: Option<RollingConfig>,
    /// Escape values inserted by `{field}` so record data cannot add path levels or climb out
    /// of the prefix (`/`, `\`, `..`, empty). Default `true`; turn off only for trusted values.
    #[serde(default = "default_true")]
    pub path_sanitize: bool,
    /// `hive` names each level of `path` that is one bare `{field}` Hive style (`dt=…/movieId=…/`:
    /// a time level is `dt`, or `year`/`month`/`day`/`hour`/`minute` for a one-field format),
    /// so Athena, Spark, DuckDB and pyarrow read the levels as columns. Default `plain`.
    #[serde(default)]
    pub layout: PathLayout,
    /// Write an empty `_SUCCESS` object into each time bucket (the levels up to the last
    /// `{time:FORMAT}` of `path`) once the watermark shows it is complete and its files are
    /// published. Default `false`.
    #[serde(default)]
    pub success_marker: bool,
    /// AWS region for `s3://` URLs. Default: from the AWS environment (AWS_REGION, profile).
    #[serde(default)]
    pub region: Option<String>,
    /// S3 endpoint URL (a local S3 server, MinIO…). Default: AWS_ENDPOINT_URL_S3, then
    /// AWS_ENDPOINT_URL, then AWS itself.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Path-style S3 addressing (`endpoint/bucket/key`). Default: on with a custom endpoint,
    /// off for AWS (virtual-hosted style).
    #[serde(default)]
    pub path_style: Option<bool>,
}

/// How `path` levels are named.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PathLayout {
    /// As written.
    #[default]
    Plain,
    /// `key=value` per bare `{field}` level.
    Hive,
}

/// File rolling policy: a file closes at whichever limit comes first.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollingConfig {
    /// Close a file once it holds this much. Default `128MiB`.
    #[serde(default)]
    pub max_bytes: Option<ByteSize>,
    /// Close a file this long (wall clock) after it was opened. Default `15m`.
    #[serde(default)]
    pub max_age: Option<Duration>,
    /// At most this many files open at once; the least recently written closes first.
    /// Default 64.
    #[serde(default)]
    pub max_open_files: Option<u32>,
    /// Close a file once nothing was written to it for this long (wall clock). Default: no
    /// limit. Files of a time bucket also close when the watermark passes the bucket's end.
    #[serde(default)]
    pub inactivity: Option<Duration>,
}

/// One local output file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSink {
    /// Names of the streams this writes.
    pub inputs: Vec<String>,
    /// Path of the file; it is replaced when the run starts.
    pub path: String,
    /// `json` (lines) or `csv`. Default `json`.
    #[serde(default)]
    pub format: OutputFormat,
    /// Columns to write, in order. Default: every column.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    /// CSV options (with `format: csv`).
    #[serde(default)]
    pub csv: Option<CsvOutput>,
}

/// Kafka producer settings.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KafkaSink {
    /// Names of the streams this writes.
    pub inputs: Vec<String>,
    /// Bootstrap brokers, comma-separated `host:port`.
    pub brokers: String,
    /// Topic to write.
    pub topic: String,
    /// Message key: a SQL expression over the record, e.g. `symbol`. Records with the same key
    /// go to the same partition. Default: no key (records are spread over partitions).
    #[serde(default)]
    pub key: Option<SqlText>,
    /// Message headers: a name and a SQL expression for each, e.g. `{source: "'streamctl'"}`.
    /// A NULL value leaves the header out.
    #[serde(default)]
    pub headers: IndexMap<String, SqlText>,
    /// `json` or `csv`. Default `json`.
    #[serde(default)]
    pub format: OutputFormat,
    /// Columns to write, in order. Default: every column.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
    /// Extra librdkafka producer properties, e.g. `{compression.type: lz4}`.
    #[serde(default)]
    pub properties: IndexMap<String, String>,
}

/// Kinesis producer settings.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KinesisSink {
    /// Names of the streams this writes.
    pub inputs: Vec<String>,
    /// Stream name.
    pub stream: String,
    /// Partition key: a SQL expression over the record, e.g. `agentId`.
    pub partition_key: SqlText,
    /// AWS region. Default: from the AWS environment.
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint URL override.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// `json` or `csv`. Default `json`.
    #[serde(default)]
    pub format: OutputFormat,
    /// Columns to write, in order. Default: every column.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
}

/// Standard output.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StdoutSink {
    /// Names of the streams this writes.
    pub inputs: Vec<String>,
    /// `json` (lines) or `csv`. Default `json`.
    #[serde(default)]
    pub format: OutputFormat,
    /// Columns to write, in order. Default: every column.
    #[serde(default)]
    pub fields: Option<Vec<String>>,
}
