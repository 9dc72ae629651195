//! Connector settings as Flink table options: the one place that reads sources' and sinks'
//! settings for the translation (Kafka, Kinesis and filesystem connectors; JSON, CSV and
//! Parquet formats). Option names follow the Flink 1.20 connector documentation; the DDL
//! snapshot tests check them against it.

use std::path::Path;

use super::{Gap, sql};
use crate::config::SinkConfig;
use crate::config::sink::{CsvOutput, OutputFormat};
use crate::config::source::{
    BadRecordPolicy, DataFormat, Decoding, GeneratorPreset, KafkaMetadata, KafkaStart,
    KinesisMetadata, KinesisStart,
};
use crate::config::{Duration, SourceConfig};
use crate::plan::{BadRecords, SourcePlan};

/// `WITH (…)` options, in order.
pub type Options = Vec<(String, String)>;

fn opt(options: &mut Options, key: &str, value: impl Into<String>) {
    options.push((key.to_string(), value.into()));
}

/// Setting names that hold credentials: their values are left out of printed scripts.
pub fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "jaas",
        "token",
        "credential",
        "private",
    ]
    .iter()
    .any(|w| key.contains(w))
        || key.ends_with(".key")
}

/// A local path as a `file://` URI, absolute against `base` (Flink resolves relative paths
/// against its own working directory).
pub fn file_uri(path: &str, base: &Path) -> String {
    let path = path.strip_prefix("file://").unwrap_or(path);
    let absolute = if Path::new(path).is_absolute() {
        path.to_string()
    } else {
        base.join(path.trim_start_matches("./"))
            .display()
            .to_string()
    };
    format!("file://{absolute}")
}

/// The source's connector and format options; settings Flink cannot mirror come back as gaps.
pub struct SourceOptions {
    pub options: Options,
    /// Options left out of the printed script because they hold secrets.
    pub hidden: Vec<String>,
    pub gaps: Vec<Gap>,
}

pub fn source(name: &str, plan: &SourcePlan, base: &Path, include_secrets: bool) -> SourceOptions {
    let at = |key: &'static str| ["sources", name, key];
    let mut options = Options::new();
    let mut hidden = Vec::new();
    let mut gaps = Vec::new();
    match &plan.config {
        SourceConfig::Kafka(k) => {
            opt(&mut options, "connector", "kafka");
            match &k.topic_pattern {
                Some(p) => opt(&mut options, "topic-pattern", p),
                None => opt(&mut options, "topic", k.topic_names().join(";")),
            }
            opt(&mut options, "properties.bootstrap.servers", &k.brokers);
            let group = k
                .group_id
                .clone()
                .unwrap_or_else(|| format!("streamctl-{name}"));
            opt(&mut options, "properties.group.id", group);
            match k.start_from {
                KafkaStart::Committed => {
                    opt(&mut options, "scan.startup.mode", "group-offsets");
                    // With group offsets, Flink falls back to this when the group has none.
                    opt(&mut options, "properties.auto.offset.reset", "earliest");
                }
                KafkaStart::Earliest => opt(&mut options, "scan.startup.mode", "earliest-offset"),
                KafkaStart::Latest => opt(&mut options, "scan.startup.mode", "latest-offset"),
                KafkaStart::Timestamp => {
                    opt(&mut options, "scan.startup.mode", "timestamp");
                    if let Some(t) = k.start_timestamp {
                        opt(
                            &mut options,
                            "scan.startup.timestamp-millis",
                            t.millis.to_string(),
                        );
                    }
                }
            }
            kafka_properties(&k.properties, include_secrets, &mut options, &mut hidden);
            for (field, what) in &k.metadata {
                if matches!(what, KafkaMetadata::Key | KafkaMetadata::Headers) {
                    gaps.push(
                        Gap::new(&at("metadata"), "flink-kafka-metadata", format!("Flink's Kafka table has no `{}` metadata column as text; `{field}` is NULL on Flink", what.name()))
                            .help("read the key with Flink's `key.format`/`key.fields` options, or carry the value in the record"),
                    );
                }
            }
        }
        SourceConfig::Kinesis(k) => {
            kinesis_common(
                &mut options,
                &k.stream,
                k.region.as_deref(),
                k.endpoint.as_deref(),
            );
            let position = match k.start_from {
                KinesisStart::TrimHorizon => "TRIM_HORIZON",
                KinesisStart::Latest => "LATEST",
                KinesisStart::AtTimestamp => "AT_TIMESTAMP",
            };
            opt(&mut options, "scan.stream.initpos", position);
            if let (KinesisStart::AtTimestamp, Some(t)) = (k.start_from, k.start_timestamp) {
                opt(
                    &mut options,
                    "scan.stream.initpos-timestamp",
                    crate::data::time::format_rfc3339(t.millis),
                );
                opt(
                    &mut options,
                    "scan.stream.initpos-timestamp-format",
                    "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
                );
            }
            for (field, what) in &k.metadata {
                if *what == KinesisMetadata::PartitionKey {
                    gaps.push(
                        Gap::new(&at("metadata"), "flink-kinesis-metadata", format!("Flink's Kinesis table has no partition key metadata column; `{field}` is NULL on Flink"))
                            .help("carry the value in the record, or run this pipeline on the embedded engine"),
                    );
                }
            }
        }
        SourceConfig::File(f) => {
            let path = if f.path.contains(['*', '?', '[']) {
                let dir = glob_directory(&f.path);
                gaps.push(
                    Gap::new(
                        &at("path"),
                        "flink-file-glob",
                        "Flink's filesystem source reads a file or a whole directory, not a glob",
                    )
                    .help(format!(
                        "the plan reads every file in `{dir}`; keep only the files to read there"
                    )),
                );
                dir
            } else {
                f.path.clone()
            };
            opt(&mut options, "connector", "filesystem");
            opt(&mut options, "path", file_uri(&path, base));
        }
        SourceConfig::Generator(g) => {
            let file = format!("{name}.jsonl");
            opt(&mut options, "connector", "filesystem");
            opt(&mut options, "path", file_uri(&file, base));
            let mut command = format!(
                "streamctl generate {} --count {} --seed {}",
                preset_name(g.preset),
                g.count.map_or("N".to_string(), |c| c.to_string()),
                g.seed
            );
            if let Some(i) = g.interval {
                command.push_str(&format!(" --interval {i}"));
            }
            if g.disorder.millis > 0 {
                command.push_str(&format!(" --disorder {}", g.disorder));
            }
            if let Some(users) = g.users {
                command.push_str(&format!(" --users {users}"));
            }
            if let Some(share) = g.hot_share {
                command.push_str(&format!(" --hot-share {share}"));
            }
            if let Some(s) = g.start {
                command.push_str(&format!(
                    " --start {}",
                    crate::data::time::format_rfc3339(s.millis)
                ));
            }
            gaps.push(
                Gap::new(&["sources", name], "flink-generator", "Flink has no equivalent of the generator source; the plan reads its records from a file")
                    .key()
                    .help(format!("write the same records with `{command} -o {file}` (the plan reads {}), or use a `file` source", file_uri(&file, base))),
            );
        }
        SourceConfig::Stdin(_) => {
            let file = format!("{name}.jsonl");
            opt(&mut options, "connector", "filesystem");
            opt(&mut options, "path", file_uri(&file, base));
            gaps.push(
                Gap::new(
                    &["sources", name],
                    "flink-stdin",
                    "Flink has no standard-input source; the plan reads a file instead",
                )
                .key()
                .help(format!(
                    "save the input as {file} (the plan reads {}), or use a `file` source",
                    file_uri(&file, base)
                )),
            );
        }
    }
    if let Some(decoding) = plan.config.decoding() {
        decoding_options(name, decoding, plan.bad_records, &mut options, &mut gaps);
    } else {
        // Generator records are JSON lines as `streamctl generate` writes them.
        opt(&mut options, "format", "json");
    }
    SourceOptions {
        options,
        hidden,
        gaps,
    }
}

/// Kafka client properties pass through as `properties.*`; secret ones only when asked.
fn kafka_properties(
    properties: &indexmap::IndexMap<String, String>,
    include_secrets: bool,
    options: &mut Options,
    hidden: &mut Vec<String>,
) {
    for (key, value) in properties {
        let key = format!("properties.{key}");
        if is_secret(&key) && !include_secrets {
            hidden.push(key);
        } else {
            opt(options, &key, value);
        }
    }
}

fn preset_name(p: GeneratorPreset) -> &'static str {
    match p {
        GeneratorPreset::MovieImpressions => "movie_impressions",
        GeneratorPreset::TaxiTrips => "taxi_trips",
        GeneratorPreset::StockTicks => "stock_ticks",
        GeneratorPreset::DeliveryPings => "delivery_pings",
        GeneratorPreset::Bids => "bids",
    }
}

/// The directory part of a glob (`data/*.jsonl` → `data`).
fn glob_directory(pattern: &str) -> String {
    let wild = pattern.find(['*', '?', '[']).unwrap_or(pattern.len());
    match pattern[..wild].rfind('/') {
        Some(slash) => pattern[..slash.max(1)].to_string(),
        None => ".".to_string(),
    }
}

fn decoding_options(
    name: &str,
    decoding: &Decoding,
    bad: BadRecords,
    options: &mut Options,
    gaps: &mut Vec<Gap>,
) {
    let format = match decoding.format {
        DataFormat::Json => "json",
        DataFormat::Csv => "csv",
    };
    opt(options, "format", format);
    let ignore = bad.policy != BadRecordPolicy::Fail;
    match decoding.format {
        DataFormat::Json => {
            // Missing fields are NULL in both engines.
            opt(options, "json.fail-on-missing-field", "false");
            opt(options, "json.ignore-parse-errors", ignore.to_string());
        }
        DataFormat::Csv => {
            let csv = decoding.csv.clone().unwrap_or_default();
            if csv.delimiter != ',' {
                opt(options, "csv.field-delimiter", csv.delimiter.to_string());
            }
            opt(options, "csv.ignore-parse-errors", ignore.to_string());
            if csv.header {
                gaps.push(
                    Gap::new(&["sources", name, "format"], "flink-csv-header", "Flink's csv format has no header row: it reads the first line as a record and takes columns in schema order")
                        .help("use files without a header line, columns in `schema` order, and `csv: {header: false}`"),
                );
            }
        }
    }
    match bad.policy {
        BadRecordPolicy::Skip => gaps.push(
            Gap::new(&["sources", name], "flink-bad-records", format!("on Flink, a {format} record with a field of the wrong type is kept with that field NULL; streamctl skips the whole record"))
                .key()
                .help("undecodable records are skipped in both; with `bad_records: {policy: fail}` both stop at the first bad record"),
        ),
        BadRecordPolicy::DeadLetter => gaps.push(
            Gap::new(&["sources", name, "bad_records", "to"], "flink-dead-letter", "Flink SQL has no dead-letter output: bad records are skipped and counted by nothing")
                .help("the plan skips bad records (`policy: skip`); sinks reading the dead-letter stream are left out"),
        ),
        BadRecordPolicy::Fail => {}
    }
}

fn kinesis_common(
    options: &mut Options,
    stream: &str,
    region: Option<&str>,
    endpoint: Option<&str>,
) {
    // The `stream` name options are those of the `kinesis` connector up to 4.x and of
    // `kinesis-legacy` from 5.x (whose `kinesis` needs the stream ARN).
    opt(options, "connector", "kinesis");
    opt(options, "stream", stream);
    if let Some(r) = region.filter(|r| !r.is_empty()) {
        opt(options, "aws.region", r);
    }
    if let Some(e) = endpoint.filter(|e| !e.is_empty()) {
        opt(options, "aws.endpoint", e);
    }
}

/// A sink's connector and format options.
pub struct SinkOptions {
    pub options: Options,
    /// Options left out of the printed script because they hold secrets.
    pub hidden: Vec<String>,
    pub gaps: Vec<Gap>,
    /// The sink writes files (partitions and rolling apply).
    pub filesystem: bool,
}

pub fn sink(name: &str, config: &SinkConfig, base: &Path, include_secrets: bool) -> SinkOptions {
    let at = |key: &'static str| ["sinks", name, key];
    let mut options = Options::new();
    let mut hidden = Vec::new();
    let mut gaps = Vec::new();
    let mut filesystem = false;
    let (format, csv) = match config {
        SinkConfig::S3(o) => {
            filesystem = true;
            opt(&mut options, "connector", "filesystem");
            let url = if o.url.starts_with("file://") {
                file_uri(&o.url, base)
            } else {
                o.url.clone()
            };
            opt(&mut options, "path", url);
            if o.endpoint.is_some() || o.region.is_some() {
                gaps.push(
                    Gap::new(&at(if o.endpoint.is_some() { "endpoint" } else { "region" }), "flink-s3-settings", "Flink's S3 filesystem takes its endpoint and region from the cluster configuration, not from the table")
                        .help("set `s3.endpoint` (and the region) in the Flink configuration of the cluster; on EMR, EMRFS uses the cluster's region"),
                );
            }
            let rolling = o.rolling.clone().unwrap_or_default();
            let bytes = rolling.max_bytes.map_or(128 * 1024 * 1024, |b| b.bytes);
            let age = rolling
                .max_age
                .unwrap_or(Duration::from_millis(15 * 60_000));
            opt(
                &mut options,
                "sink.rolling-policy.file-size",
                sql::memory_size(bytes),
            );
            opt(
                &mut options,
                "sink.rolling-policy.rollover-interval",
                sql::duration(age.millis),
            );
            if rolling.max_open_files.is_some() {
                gaps.push(
                    Gap::new(&["sinks", name, "rolling", "max_open_files"], "flink-max-open-files", "Flink's filesystem sink keeps one open file per bucket and parallel task; it has no limit on open files")
                        .key()
                        .help("Flink closes files by size, age and at checkpoints only"),
                );
            }
            (o.format, o.csv.clone())
        }
        SinkConfig::File(f) => {
            filesystem = true;
            opt(&mut options, "connector", "filesystem");
            opt(&mut options, "path", file_uri(&f.path, base));
            gaps.push(
                Gap::new(
                    &at("path"),
                    "flink-file-sink",
                    "Flink's filesystem sink writes a directory of part files, not one file",
                )
                .help(format!(
                    "the plan writes part files into the directory `{}`",
                    f.path
                )),
            );
            (f.format, f.csv.clone())
        }
        SinkConfig::Kafka(k) => {
            opt(&mut options, "connector", "kafka");
            opt(&mut options, "topic", &k.topic);
            opt(&mut options, "properties.bootstrap.servers", &k.brokers);
            kafka_properties(&k.properties, include_secrets, &mut options, &mut hidden);
            (k.format, None)
        }
        SinkConfig::Kinesis(k) => {
            kinesis_common(
                &mut options,
                &k.stream,
                k.region.as_deref(),
                k.endpoint.as_deref(),
            );
            (k.format, None)
        }
        SinkConfig::Stdout(_) => {
            opt(&mut options, "connector", "print");
            gaps.push(
                Gap::new(&["sinks", name], "flink-stdout", "Flink's print connector writes rows to the task managers' standard output as `+I[…]`, not to the terminal")
                    .key()
                    .help("on a cluster, write to a `file`, `s3` or `kafka` sink instead"),
            );
            return SinkOptions {
                options,
                hidden,
                gaps,
                filesystem: false,
            };
        }
    };
    let format_key = match config {
        SinkConfig::Kafka(_) => "value.format",
        _ => "format",
    };
    let prefix = if format_key == "value.format" {
        "value."
    } else {
        ""
    };
    match format {
        OutputFormat::Json => opt(&mut options, format_key, "json"),
        OutputFormat::Parquet => opt(&mut options, format_key, "parquet"),
        OutputFormat::Csv => {
            opt(&mut options, format_key, "csv");
            let csv = csv.unwrap_or_else(CsvOutput::default);
            if csv.delimiter != ',' {
                opt(
                    &mut options,
                    &format!("{prefix}csv.field-delimiter"),
                    csv.delimiter.to_string(),
                );
            }
            if csv.header && filesystem {
                gaps.push(
                    Gap::new(&at("format"), "flink-csv-header", "Flink's csv format writes no header row")
                        .help("the files hold the same columns without the header; add `csv: {header: false}` for the same files from both engines"),
                );
            }
        }
    }
    if filesystem {
        // A `_SUCCESS` file marks each partition complete once a checkpoint covers it
        // (Athena, Hive and Spark skip `_` files).
        opt(
            &mut options,
            "sink.partition-commit.policy.kind",
            "success-file",
        );
    }
    SinkOptions {
        options,
        hidden,
        gaps,
        filesystem,
    }
}

/// The column definition of a Kafka or Kinesis metadata field in a Flink `CREATE TABLE`, when
/// Flink has that metadata (`None` for what it lacks: Kafka's key and headers, the Kinesis
/// partition key; reported as gaps). The Kinesis keys are those of the `kinesis` table
/// connector up to 4.x (`kinesis-legacy` from 5.x): `timestamp` (ApproximateArrivalTimestamp),
/// `shard-id`, `sequence-number`.
pub fn metadata_column(plan: &SourcePlan, field: &str) -> Option<Option<String>> {
    let name = super::sql::ident(field);
    let column = |ty: &str, key: &str| Some(format!("{name} {ty} METADATA FROM '{key}' VIRTUAL"));
    match &plan.config {
        SourceConfig::Kafka(k) => Some(match k.metadata.get(field)? {
            KafkaMetadata::Timestamp => column("TIMESTAMP_LTZ(3)", "timestamp"),
            KafkaMetadata::Topic => column("STRING", "topic"),
            KafkaMetadata::Partition => column("INT", "partition"),
            KafkaMetadata::Offset => column("BIGINT", "offset"),
            KafkaMetadata::Key | KafkaMetadata::Headers => None,
        }),
        SourceConfig::Kinesis(k) => Some(match k.metadata.get(field)? {
            KinesisMetadata::ArrivalTime => column("TIMESTAMP_LTZ(3)", "timestamp"),
            KinesisMetadata::Shard => column("STRING", "shard-id"),
            KinesisMetadata::SequenceNumber => column("STRING", "sequence-number"),
            KinesisMetadata::PartitionKey => None,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_recognised() {
        assert!(is_secret("properties.sasl.jaas.config"));
        assert!(is_secret("properties.ssl.key.password"));
        assert!(is_secret("properties.sasl.password"));
        assert!(!is_secret("properties.security.protocol"));
    }

    #[test]
    fn paths_become_absolute_uris() {
        let base = Path::new("/work");
        assert_eq!(file_uri("data/x.jsonl", base), "file:///work/data/x.jsonl");
        assert_eq!(file_uri("file://out/x/", base), "file:///work/out/x/");
        assert_eq!(file_uri("file:///tmp/x/", base), "file:///tmp/x/");
        assert_eq!(glob_directory("data/*.jsonl"), "data");
        assert_eq!(glob_directory("*.jsonl"), ".");
        assert_eq!(glob_directory("/x/y*/z"), "/x");
    }
}
