//! Sources: where records come from. One variant per `type:`.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

use super::values::{ByteSize, Duration, FieldType, Instant};

/// A source of records. `type` picks the connector.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SourceConfig {
    /// Reads a Kafka topic with a consumer group.
    Kafka(Box<KafkaSource>),
    /// Reads an Amazon Kinesis data stream, every shard.
    Kinesis(KinesisSource),
    /// Reads local files (a path or glob; `.gz` is decompressed).
    File(FileSource),
    /// Reads standard input until it closes.
    Stdin(StdinSource),
    /// Generates realistic test data (movie impressions, taxi trips, stock ticks, delivery pings).
    Generator(GeneratorSource),
}

impl SourceConfig {
    pub fn type_name(&self) -> &'static str {
        match self {
            SourceConfig::Kafka(_) => "kafka",
            SourceConfig::Kinesis(_) => "kinesis",
            SourceConfig::File(_) => "file",
            SourceConfig::Stdin(_) => "stdin",
            SourceConfig::Generator(_) => "generator",
        }
    }

    /// How records are decoded, for sources that decode bytes.
    pub fn decoding(&self) -> Option<&Decoding> {
        match self {
            SourceConfig::Kafka(s) => Some(&s.decoding),
            SourceConfig::Kinesis(s) => Some(&s.decoding),
            SourceConfig::File(s) => Some(&s.decoding),
            SourceConfig::Stdin(s) => Some(&s.decoding),
            SourceConfig::Generator(_) => None,
        }
    }

    pub fn event_time(&self) -> Option<&EventTimeConfig> {
        match self {
            SourceConfig::Generator(g) => g.event_time.as_ref(),
            other => other.decoding().and_then(|d| d.event_time.as_ref()),
        }
    }

    pub fn bad_records(&self) -> Option<&BadRecordsConfig> {
        self.decoding().and_then(|d| d.bad_records.as_ref())
    }
}

/// How a source turns bytes into typed records, and where their event time comes from.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct Decoding {
    /// Record encoding: `json` (one object per line or message) or `csv`. Default `json`.
    #[serde(default)]
    pub format: DataFormat,
    /// CSV options (with `format: csv`).
    #[serde(default)]
    pub csv: Option<CsvOptions>,
    /// The fields of each record and their types, e.g. `{movieId: string, timestamp: timestamp_ms}`.
    /// Fields missing from a record are NULL; fields not listed are ignored.
    pub schema: IndexMap<String, FieldType>,
    /// Which field holds the event time, and how out of order events may arrive.
    #[serde(default)]
    pub event_time: Option<EventTimeConfig>,
    /// What to do with records that cannot be decoded or lack an event time. Default: skip and count them.
    #[serde(default)]
    pub bad_records: Option<BadRecordsConfig>,
    /// How strictly values must match their field types. `lenient` (default, like Flink's
    /// `json` format): a JSON number, boolean, object or array read into a `string` field
    /// becomes its JSON text, and numbers and booleans may be quoted (`"12"` for an `int`).
    /// `strict`: a value of another JSON type than its field's is a bad record, and an `int`
    /// must be written as an integer (`12`, not `12.0`), in JSON and CSV.
    #[serde(default)]
    pub types: TypeChecking,
}

/// How strictly decoded values must match their field types.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TypeChecking {
    /// Convert between JSON types as Flink's `json` format does (`17` → `"17"`, `"12"` → 12).
    #[default]
    Lenient,
    /// A value of the wrong type is a bad record.
    Strict,
}

/// Record encodings a source can read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    /// JSON: one object per line (files, stdin) or per message (Kafka, Kinesis).
    #[default]
    Json,
    /// Comma-separated values.
    Csv,
}

/// CSV reading options.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CsvOptions {
    /// Field delimiter, one character. Default `,`.
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// Whether the first line names the columns (matched to schema fields by name).
    /// Without a header, columns are taken in schema order. Default `true`.
    #[serde(default = "default_true")]
    pub header: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: ',',
            header: true,
        }
    }
}

fn default_delimiter() -> char {
    ','
}

pub(crate) fn default_true() -> bool {
    true
}

/// Event time: which field says when the event happened, and how late events may arrive.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventTimeConfig {
    /// The field holding the event time; declared `timestamp`, `timestamp_ms` or `timestamp_s`.
    pub field: String,
    /// How far behind the newest event an event may arrive and still count as on time. The
    /// watermark is the newest event time seen minus this. Default `0s`.
    #[serde(default)]
    pub max_out_of_orderness: Duration,
    /// A partition or shard that sends nothing for this long stops holding the watermark back.
    /// Default: never (an empty partition stalls windows, as in Flink).
    #[serde(default)]
    pub idle_timeout: Option<Duration>,
}

/// What to do with a record that cannot be processed.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BadRecordsConfig {
    /// `skip` (count, report, continue), `fail` (stop the run with the error) or `dead_letter`
    /// (send the record to the stream named by `to`, as `component, error, raw, position,
    /// raw_base64`: `raw` is the record's bytes exactly as read, in base64 with `raw_base64:
    /// true` when they are not UTF-8). Default `skip`.
    #[serde(default)]
    pub policy: BadRecordPolicy,
    /// Name of the dead-letter stream (with `policy: dead_letter`); sinks read it by this name.
    #[serde(default)]
    pub to: Option<String>,
}

/// The bad-record policies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BadRecordPolicy {
    /// Count and report bad records, keep going.
    #[default]
    Skip,
    /// Stop the run at the first bad record.
    Fail,
    /// Route bad records to a named dead-letter stream.
    DeadLetter,
}

impl BadRecordPolicy {
    /// The name as written in a pipeline.
    pub fn name(self) -> &'static str {
        match self {
            BadRecordPolicy::Skip => "skip",
            BadRecordPolicy::Fail => "fail",
            BadRecordPolicy::DeadLetter => "dead_letter",
        }
    }
}

/// Kafka consumer settings.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct KafkaSource {
    /// Bootstrap brokers, comma-separated `host:port`.
    pub brokers: String,
    /// Topic to read. Give one of `topic`, `topics` or `topic_pattern`.
    #[serde(default)]
    pub topic: String,
    /// Several topics to read as one stream.
    #[serde(default)]
    pub topics: Vec<String>,
    /// A regular expression: every topic whose whole name matches is read, including topics
    /// created while the run goes on, e.g. `impressions-.*`.
    #[serde(default)]
    pub topic_pattern: Option<String>,
    /// Consumer group id; committed offsets are kept under it, and processes sharing it split
    /// the partitions. Default `streamctl-<pipeline name>`.
    #[serde(default)]
    pub group_id: Option<String>,
    /// Where to start when the group has no committed offset (or always, for `earliest`,
    /// `latest` and `timestamp`). Default `committed` (falling back to `earliest`). A run
    /// resuming from a checkpoint starts from the checkpoint's offsets instead.
    #[serde(default)]
    pub start_from: KafkaStart,
    /// The instant to start from, with `start_from: timestamp`.
    #[serde(default)]
    pub start_timestamp: Option<Instant>,
    /// Fields filled from each Kafka record rather than from its value: a field name for each
    /// of `key`, `headers`, `topic`, `partition`, `offset`, `timestamp`, e.g.
    /// `{kafkaTime: timestamp, userKey: key}`. A `timestamp` field can be the event time.
    #[serde(default)]
    pub metadata: IndexMap<String, KafkaMetadata>,
    /// The value fields the topic's producers key (partition) records by, e.g. `[movieId]`.
    /// Lets `validate` check that several processes sharing the group produce the same
    /// windows as one (each window's groups must come from one partition).
    #[serde(default)]
    pub partitioned_by: Option<Vec<String>>,
    /// Extra librdkafka consumer properties, e.g. `{security.protocol: SASL_SSL}`.
    #[serde(default)]
    pub properties: IndexMap<String, String>,
    /// How much to read while the consumer group forms (brokers hold a new group's first
    /// join for about 3 s): the partitions are read from where the group will start them
    /// and kept in memory until it assigns them. Default `256MiB`; `0` turns it off.
    #[serde(default)]
    pub read_ahead: Option<ByteSize>,
    #[serde(flatten)]
    pub decoding: Decoding,
}

impl KafkaSource {
    /// The topics named (`topic` and `topics`; empty with `topic_pattern`).
    pub fn topic_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        if !self.topic.trim().is_empty() {
            names.push(self.topic.clone());
        }
        for t in &self.topics {
            if !names.contains(t) {
                names.push(t.clone());
            }
        }
        names
    }
}

/// What a Kafka metadata field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KafkaMetadata {
    /// The record's key as text (`string`; NULL without a key).
    Key,
    /// The record's headers as a JSON object of text values (`string`), e.g.
    /// `{"source":"web"}`; read one with `JSON_VALUE(headers, '$.source')`.
    Headers,
    /// The topic the record came from (`string`).
    Topic,
    /// The partition (`int`).
    Partition,
    /// The offset within its partition (`int`).
    Offset,
    /// The record's Kafka timestamp (`timestamp`; create or log-append time).
    Timestamp,
}

impl KafkaMetadata {
    pub fn name(self) -> &'static str {
        match self {
            KafkaMetadata::Key => "key",
            KafkaMetadata::Headers => "headers",
            KafkaMetadata::Topic => "topic",
            KafkaMetadata::Partition => "partition",
            KafkaMetadata::Offset => "offset",
            KafkaMetadata::Timestamp => "timestamp",
        }
    }

    pub fn data_type(self) -> crate::data::DataType {
        use crate::data::DataType;
        match self {
            KafkaMetadata::Key | KafkaMetadata::Headers | KafkaMetadata::Topic => DataType::String,
            KafkaMetadata::Partition | KafkaMetadata::Offset => DataType::Int,
            KafkaMetadata::Timestamp => DataType::Timestamp,
        }
    }
}

/// Kafka start positions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KafkaStart {
    /// The group's committed offsets, else the earliest offset.
    #[default]
    Committed,
    /// The earliest retained offset.
    Earliest,
    /// Only records produced after the start.
    Latest,
    /// The first offset at or after `start_timestamp`.
    Timestamp,
}

/// Kinesis consumer settings.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct KinesisSource {
    /// Stream name, or the stream's ARN.
    pub stream: String,
    /// AWS region. Default: from the AWS environment (`AWS_REGION`).
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint URL override, e.g. a local Kinesis server.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Where to start reading each shard. Default `trim_horizon`.
    #[serde(default)]
    pub start_from: KinesisStart,
    /// The instant to start from, with `start_from: at_timestamp`.
    #[serde(default)]
    pub start_timestamp: Option<Instant>,
    /// Records asked for per GetRecords call, 1 to 10000 (the service's maximum, the
    /// default). Smaller answers smooth progress on shards with large records.
    #[serde(default)]
    pub records_per_call: Option<u32>,
    /// Fields filled from each Kinesis record rather than from its data: a field name for
    /// each of `partition_key`, `sequence_number`, `shard`, `arrival_time`, e.g.
    /// `{arrivedAt: arrival_time}`. An `arrival_time` field can be the event time.
    #[serde(default)]
    pub metadata: IndexMap<String, KinesisMetadata>,
    #[serde(flatten)]
    pub decoding: Decoding,
}

/// What a Kinesis metadata field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KinesisMetadata {
    /// The record's partition key (`string`).
    PartitionKey,
    /// The record's sequence number (`string`: a decimal of up to 128 bits).
    SequenceNumber,
    /// The id of the shard it came from (`string`), e.g. `shardId-000000000003`.
    Shard,
    /// When Kinesis accepted the record, ApproximateArrivalTimestamp (`timestamp`).
    ArrivalTime,
}

impl KinesisMetadata {
    pub fn data_type(self) -> crate::data::DataType {
        use crate::data::DataType;
        match self {
            KinesisMetadata::ArrivalTime => DataType::Timestamp,
            _ => DataType::String,
        }
    }
}

/// Kinesis start positions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KinesisStart {
    /// The oldest record still retained.
    #[default]
    TrimHorizon,
    /// Only records that arrive from the start of the first run on (a restart from a
    /// checkpoint continues where that run was).
    Latest,
    /// The first record at or after `start_timestamp`.
    AtTimestamp,
}

/// Local file input.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct FileSource {
    /// A file path or glob (`data/*.jsonl.gz`). Files are read in name order; each is a
    /// partition with its own watermark while it is being read.
    pub path: String,
    /// Decompression: `auto` (by `.gz` extension), `gzip` or `none`. Default `auto`.
    #[serde(default)]
    pub compression: Compression,
    #[serde(flatten)]
    pub decoding: Decoding,
}

/// Input decompression.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// gzip for names ending in `.gz`, else none.
    #[default]
    Auto,
    /// Always gzip.
    Gzip,
    /// Never decompress.
    None,
}

/// Standard input.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct StdinSource {
    #[serde(flatten)]
    pub decoding: Decoding,
}

/// Synthetic data, deterministic for a given seed.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GeneratorSource {
    /// What to generate; each preset has a fixed schema (see `streamctl generate --help`).
    pub preset: GeneratorPreset,
    /// How many records; omit for an endless stream.
    #[serde(default)]
    pub count: Option<u64>,
    /// Records per second (wall clock); omit to generate as fast as possible.
    #[serde(default)]
    pub rate: Option<f64>,
    /// Random seed: the same seed gives the same records.
    #[serde(default)]
    pub seed: u64,
    /// Number of partitions records are spread over, round robin. Default 1.
    #[serde(default = "default_partitions")]
    pub partitions: u32,
    /// Event time of the first record. Default `2019-01-07T00:00:00Z`.
    #[serde(default)]
    pub start: Option<Instant>,
    /// Event-time distance between consecutive records. Default `3ms`.
    #[serde(default)]
    pub interval: Option<Duration>,
    /// Maximum amount a record's event time is shifted into the past, to simulate
    /// out-of-order arrival. Default `0s`.
    #[serde(default)]
    pub disorder: Duration,
    /// How many distinct users: `userId`s of `movie_impressions` (default 1000), bidders and
    /// auctions of `bids` beyond the hot ones (default 20000). Other presets ignore it.
    #[serde(default)]
    pub users: Option<u64>,
    /// Share of records, from 0 to 1, whose user (and auction) is one of 10 hot ones; the
    /// rest spread evenly over `users` (skewed keys, as in Nexmark). Default 0, and 0.5 for
    /// `bids`.
    #[serde(default)]
    pub hot_share: Option<f64>,
    /// Event time settings; default: the preset's time field with `disorder` as the
    /// out-of-orderness bound.
    #[serde(default)]
    pub event_time: Option<EventTimeConfig>,
}

fn default_partitions() -> u32 {
    1
}

/// Generator presets. Each is written `taxi_trips` (like every name in a pipeline file) and
/// also accepted as `taxi-trips` (the spelling of file names), in pipelines and on the command
/// line alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GeneratorPreset {
    #[serde(alias = "movie-impressions")]
    MovieImpressions,
    #[serde(alias = "taxi-trips")]
    TaxiTrips,
    #[serde(alias = "stock-ticks")]
    StockTicks,
    #[serde(alias = "delivery-pings")]
    DeliveryPings,
    Bids,
}

impl GeneratorPreset {
    /// Every preset: its name, and what it produces.
    pub const ALL: [(GeneratorPreset, &'static str, &'static str); 5] = [
        (
            GeneratorPreset::MovieImpressions,
            "movie_impressions",
            "`{movieId, userId, timestamp}`: 50 movies × 1000 users (the movie-impressions seed).",
        ),
        (
            GeneratorPreset::TaxiTrips,
            "taxi_trips",
            "NYC taxi trip events: `{tripId, event (start|end), lat, lon, passengers, durationSec, airport, timestamp}`; a trip's end comes `durationSec` after its start.",
        ),
        (
            GeneratorPreset::StockTicks,
            "stock_ticks",
            "Stock price ticks: `{symbol, price, volume, timestamp}`.",
        ),
        (
            GeneratorPreset::DeliveryPings,
            "delivery_pings",
            "Delivery-agent GPS pings: `{agentId, lat, lon, speedKmh, timestamp}`.",
        ),
        (
            GeneratorPreset::Bids,
            "bids",
            "Auction bids shaped like Nexmark's: `{auction, bidder, price, channel, timestamp}`; half of them for 10 hot auctions and bidders, the rest over a long tail of `users` (20000).",
        ),
    ];
}

/// Both spellings are in the schema, so editors and `validate` accept what `streamctl generate`
/// accepts.
impl JsonSchema for GeneratorPreset {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "GeneratorPreset".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut branches = Vec::new();
        for (_, name, description) in Self::ALL {
            branches.push(serde_json::json!({
                "description": description,
                "type": "string",
                "const": name,
            }));
        }
        for (_, name, _) in Self::ALL.iter().filter(|(_, name, _)| name.contains('_')) {
            branches.push(serde_json::json!({
                "description": format!("Same as `{name}`."),
                "type": "string",
                "const": name.replace('_', "-"),
            }));
        }
        schemars::json_schema!({
            "description": "What to generate (`movie_impressions` may also be written `movie-impressions`, and so on).",
            "oneOf": branches,
        })
    }
}
