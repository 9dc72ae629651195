//! Connector settings as connectors receive them: typed, with every default applied. Sources
//! and sinks read these, never the pipeline file's config types, so a default lives in one
//! place and a connector cannot see settings that are not its own.

use crate::config::{SinkConfig, SourceConfig};
use crate::format::encode::EncodeOptions;

pub use crate::config::sink::{CsvOutput, OutputFormat};
pub use crate::config::source::{
    Compression, DataFormat, GeneratorPreset, KafkaMetadata, KafkaStart, KinesisMetadata,
    KinesisStart,
};

/// How a source turns bytes into records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoding {
    pub format: DataFormat,
    /// CSV field delimiter.
    pub csv_delimiter: u8,
    /// Whether CSV input starts with a header line naming the columns.
    pub csv_header: bool,
    /// Values of the wrong type are bad records (else converted as Flink's formats do).
    pub strict_types: bool,
}

#[derive(Debug, Clone)]
pub enum SourceConnector {
    File(FileSource),
    Stdin(StdinSource),
    Generator(GeneratorSource),
    Kafka(KafkaSource),
    Kinesis(KinesisSource),
}

#[derive(Debug, Clone)]
pub struct FileSource {
    /// A path or glob (local, or `s3://bucket/prefix/*.jsonl.gz`).
    pub path: String,
    pub compression: Compression,
    pub decoding: Decoding,
}

#[derive(Debug, Clone)]
pub struct StdinSource {
    pub decoding: Decoding,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorSource {
    pub preset: GeneratorPreset,
    pub count: Option<u64>,
    /// Records per second; `None` for as fast as possible.
    pub rate: Option<f64>,
    pub seed: u64,
    pub partitions: u32,
    pub start_ms: i64,
    pub interval_ms: i64,
    pub disorder_ms: i64,
    /// Distinct users (the preset's long tail of keys).
    pub users: u64,
    /// Share of records for the hot keys.
    pub hot_share: f64,
}

impl GeneratorPreset {
    /// Distinct users when `users` is not given.
    pub fn default_users(self) -> u64 {
        match self {
            GeneratorPreset::Bids => 20_000,
            _ => 1000,
        }
    }

    /// Share of records for the hot keys when `hot_share` is not given.
    pub fn default_hot_share(self) -> f64 {
        match self {
            GeneratorPreset::Bids => 0.5,
            _ => 0.0,
        }
    }
}

/// The generator's defaults: the seed's first day, 3 ms between records.
pub const GENERATOR_START_MS: i64 = 1_546_819_200_000;
pub const GENERATOR_INTERVAL_MS: i64 = 3;

impl GeneratorSource {
    pub fn from_config(g: &crate::config::source::GeneratorSource) -> GeneratorSource {
        GeneratorSource {
            preset: g.preset,
            count: g.count,
            rate: g.rate,
            seed: g.seed,
            partitions: g.partitions.max(1),
            start_ms: g.start.map_or(GENERATOR_START_MS, |s| s.millis),
            interval_ms: g
                .interval
                .map_or(GENERATOR_INTERVAL_MS, |d| d.millis)
                .max(1),
            disorder_ms: g.disorder.millis.max(0),
            users: g.users.unwrap_or(g.preset.default_users()).max(1),
            hot_share: g
                .hot_share
                .unwrap_or(g.preset.default_hot_share())
                .clamp(0.0, 1.0),
        }
    }
}

#[derive(Debug, Clone)]
pub struct KafkaSource {
    pub brokers: String,
    /// Topics to read (empty with `pattern`).
    pub topics: Vec<String>,
    /// A regular expression matching whole topic names.
    pub pattern: Option<String>,
    /// The consumer group (default `streamctl-<pipeline name>`).
    pub group_id: String,
    pub start: KafkaStart,
    pub start_timestamp_ms: Option<i64>,
    /// librdkafka properties, passed through.
    pub properties: Vec<(String, String)>,
    pub decoding: Decoding,
    /// How many of the schema's fields come from the record's value (decoded); the metadata
    /// fields follow them.
    pub value_fields: usize,
    /// The metadata fields, in schema order after the value fields.
    pub metadata: Vec<KafkaMetadata>,
    /// Bytes of records to read while the group forms (0: none).
    pub read_ahead_bytes: usize,
}

/// `read_ahead` when the pipeline does not say: a 3 s join hold at a few million small
/// records a second is about half a GiB; a quarter of that covers much of the hold without
/// making memory depend on the backlog.
pub const KAFKA_READ_AHEAD_BYTES: usize = 256 << 20;

#[derive(Debug, Clone)]
pub struct KinesisSource {
    pub stream: String,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub start: KinesisStart,
    pub start_timestamp_ms: Option<i64>,
    pub decoding: Decoding,
    /// How many of the schema's fields come from the record's data (decoded); the metadata
    /// fields follow them.
    pub value_fields: usize,
    /// The metadata fields, in schema order after the value fields.
    pub metadata: Vec<KinesisMetadata>,
    /// Records asked for per GetRecords call.
    pub records_per_call: u32,
}

/// GetRecords returns at most this many records per call.
pub const KINESIS_MAX_RECORDS_PER_CALL: u32 = 10_000;

#[derive(Debug, Clone)]
pub enum SinkConnector {
    Object(ObjectSink),
    File(FileSink),
    Stdout(StdoutSink),
    Kafka(KafkaSink),
    Kinesis(KinesisSink),
}

/// When a bucketed sink closes a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rolling {
    pub max_bytes: u64,
    pub max_age_ms: i64,
    pub max_open_files: usize,
    /// Close a file after this long without writes.
    pub inactivity_ms: Option<i64>,
}

pub const DEFAULT_ROLLING: Rolling = Rolling {
    max_bytes: 128 << 20,
    max_age_ms: 15 * 60 * 1000,
    max_open_files: 64,
    inactivity_ms: None,
};

#[derive(Debug, Clone)]
pub struct ObjectSink {
    /// `s3://bucket/prefix/` or `file:///dir/`.
    pub url: String,
    pub encoding: EncodeOptions,
    pub rolling: Rolling,
    /// An empty `_SUCCESS` object in each time bucket once it is complete.
    pub success_marker: bool,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub path_style: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct FileSink {
    pub path: std::path::PathBuf,
    pub encoding: EncodeOptions,
}

#[derive(Debug, Clone)]
pub struct StdoutSink {
    pub encoding: EncodeOptions,
}

#[derive(Debug, Clone)]
pub struct KafkaSink {
    pub brokers: String,
    pub topic: String,
    pub encoding: EncodeOptions,
    pub properties: Vec<(String, String)>,
    /// Header names and their expressions over the sink's input (set by the plan builder).
    pub headers: Vec<(String, crate::expr::Expr)>,
}

#[derive(Debug, Clone)]
pub struct KinesisSink {
    pub stream: String,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub encoding: EncodeOptions,
}

fn decoding(d: &crate::config::source::Decoding) -> Decoding {
    let csv = d.csv.clone().unwrap_or_default();
    Decoding {
        format: d.format,
        csv_delimiter: csv.delimiter as u8,
        csv_header: csv.header,
        strict_types: d.types == crate::config::source::TypeChecking::Strict,
    }
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value.clone().filter(|v| !v.trim().is_empty())
}

/// The settings of a validated source.
pub fn source(config: &SourceConfig, pipeline: &str) -> SourceConnector {
    match config {
        SourceConfig::File(f) => SourceConnector::File(FileSource {
            path: f.path.clone(),
            compression: f.compression,
            decoding: decoding(&f.decoding),
        }),
        SourceConfig::Stdin(s) => SourceConnector::Stdin(StdinSource {
            decoding: decoding(&s.decoding),
        }),
        SourceConfig::Generator(g) => SourceConnector::Generator(GeneratorSource::from_config(g)),
        SourceConfig::Kafka(k) => SourceConnector::Kafka(KafkaSource {
            brokers: k.brokers.clone(),
            topics: k.topic_names(),
            pattern: k.topic_pattern.clone(),
            group_id: non_empty(&k.group_id).unwrap_or_else(|| format!("streamctl-{pipeline}")),
            start: k.start_from,
            start_timestamp_ms: k.start_timestamp.map(|t| t.millis),
            properties: k
                .properties
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            // A message is one record: there is no header line to read.
            decoding: Decoding {
                csv_header: false,
                ..decoding(&k.decoding)
            },
            value_fields: k.decoding.schema.len(),
            metadata: k.metadata.values().copied().collect(),
            read_ahead_bytes: k.read_ahead.map_or(KAFKA_READ_AHEAD_BYTES, |b| {
                usize::try_from(b.bytes).unwrap_or(usize::MAX)
            }),
        }),
        SourceConfig::Kinesis(k) => SourceConnector::Kinesis(KinesisSource {
            stream: k.stream.clone(),
            region: non_empty(&k.region),
            endpoint: non_empty(&k.endpoint),
            start: k.start_from,
            start_timestamp_ms: k.start_timestamp.map(|t| t.millis),
            // A record is one message: there is no header line to read.
            decoding: Decoding {
                csv_header: false,
                ..decoding(&k.decoding)
            },
            value_fields: k.decoding.schema.len(),
            metadata: k.metadata.values().copied().collect(),
            records_per_call: k
                .records_per_call
                .unwrap_or(KINESIS_MAX_RECORDS_PER_CALL)
                .clamp(1, KINESIS_MAX_RECORDS_PER_CALL),
        }),
    }
}

/// The settings of a validated sink.
pub fn sink(config: &SinkConfig) -> SinkConnector {
    let encoding = |format: OutputFormat, csv: &Option<CsvOutput>| EncodeOptions {
        format,
        csv: csv.clone().unwrap_or_default(),
    };
    match config {
        SinkConfig::S3(o) => {
            let r = o.rolling.clone().unwrap_or_default();
            SinkConnector::Object(ObjectSink {
                url: o.url.clone(),
                encoding: encoding(o.format, &o.csv),
                rolling: Rolling {
                    max_bytes: r.max_bytes.map_or(DEFAULT_ROLLING.max_bytes, |b| b.bytes),
                    max_age_ms: r.max_age.map_or(DEFAULT_ROLLING.max_age_ms, |d| d.millis),
                    max_open_files: r
                        .max_open_files
                        .map_or(DEFAULT_ROLLING.max_open_files, |n| n as usize),
                    inactivity_ms: r.inactivity.map(|d| d.millis),
                },
                success_marker: o.success_marker,
                region: non_empty(&o.region),
                endpoint: non_empty(&o.endpoint),
                path_style: o.path_style,
            })
        }
        SinkConfig::File(f) => SinkConnector::File(FileSink {
            path: f.path.clone().into(),
            encoding: encoding(f.format, &f.csv),
        }),
        SinkConfig::Stdout(s) => SinkConnector::Stdout(StdoutSink {
            encoding: encoding(s.format, &None),
        }),
        SinkConfig::Kafka(k) => SinkConnector::Kafka(KafkaSink {
            brokers: k.brokers.clone(),
            topic: k.topic.clone(),
            encoding: encoding(k.format, &None),
            properties: k
                .properties
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            headers: Vec::new(),
        }),
        SinkConfig::Kinesis(k) => SinkConnector::Kinesis(KinesisSink {
            stream: k.stream.clone(),
            region: non_empty(&k.region),
            endpoint: non_empty(&k.endpoint),
            encoding: encoding(k.format, &None),
        }),
    }
}
