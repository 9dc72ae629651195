//! `streamctl replay`: sends the records of a JSON-lines or CSV file (or `.gz`) to a stream,
//! one message per record, optionally keyed by a field and paced by event time (the seed
//! articles' producers). Targets are URLs, one [`Target`] variant and one [`Outlet`] each:
//!
//! - `kafka://BROKERS/TOPIC`: through the Kafka producer of [`crate::kafka`]; the key is the
//!   message key (records without one go unkeyed).
//! - `kinesis://STREAM` (a name or an ARN): PutRecords batches of up to 500 records and
//!   5 MiB with the sink's retry of partially failed entries ([`crate::aws::kinesis::PutBatch`],
//!   [`Kinesis::put_all`]); the key is the partition key, and a record without one gets its
//!   record number (1, 2, …), which spreads records evenly over the shards.
//!
//! A JSON record is sent as its line, byte for byte; a CSV record as its row without the
//! header (what a `format: csv` source reads). When pacing makes the replay wait for the next
//! record's time, the outlet sends what it has batched ([`Outlet::pause`]), so a paced record
//! is not held back by the batching. Nothing here prints: progress is read from
//! [`ReplayProgress`] by the command.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::aws::AwsSettings;
use crate::aws::kinesis::{Kinesis, MAX_KEY_CHARS, MAX_RECORD_BYTES, PutBatch};
use crate::runtime::ConnectorError;

/// Where replayed records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `kafka://HOST:PORT[,HOST:PORT…]/TOPIC`
    Kafka { brokers: String, topic: String },
    /// `kinesis://STREAM`: a stream name, or its ARN.
    Kinesis { stream: String },
}

/// How to reach a target besides its URL.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// Kafka producer properties (`-X key=value`).
    pub properties: Vec<(String, String)>,
    /// Region and endpoint for Kinesis (else the AWS environment).
    pub aws: AwsSettings,
}

const TARGET_FORMS: &str = "kafka://BROKERS/TOPIC or kinesis://STREAM";

impl Target {
    /// Parses a target URL.
    ///
    /// # Errors
    /// A URL of an unknown scheme or without its parts, worded for the command line.
    pub fn parse(url: &str) -> Result<Target, String> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(format!(
                "`{url}` is not a target URL: write {TARGET_FORMS}, e.g. kafka://127.0.0.1:9092/movie-impressions or kinesis://taxi-trips"
            ));
        };
        match scheme {
            "kafka" => {
                let (brokers, topic) = rest.split_once('/').unwrap_or((rest, ""));
                if brokers.is_empty() || topic.is_empty() || topic.contains('/') {
                    return Err(format!(
                        "`{url}`: a Kafka target is kafka://BROKERS/TOPIC, e.g. kafka://127.0.0.1:9092/movie-impressions (several brokers separated by commas)"
                    ));
                }
                Ok(Target::Kafka {
                    brokers: brokers.to_string(),
                    topic: topic.to_string(),
                })
            }
            "kinesis" => {
                // An ARN has `:` and `/` in it; a name is 1 to 128 of [a-zA-Z0-9_.-].
                let is_arn = rest.starts_with("arn:") && rest.contains(":stream/");
                let is_name = !rest.is_empty()
                    && rest.len() <= 128
                    && rest
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
                if !is_arn && !is_name {
                    return Err(format!(
                        "`{url}`: a Kinesis target is kinesis://STREAM, the stream's name (1 to 128 of a-z, A-Z, 0-9, `_`, `.`, `-`) or its ARN, e.g. kinesis://taxi-trips or kinesis://arn:aws:kinesis:us-east-1:123456789012:stream/taxi-trips"
                    ));
                }
                Ok(Target::Kinesis {
                    stream: rest.to_string(),
                })
            }
            other => Err(format!(
                "`{other}://` targets are not supported: write {TARGET_FORMS}"
            )),
        }
    }

    /// Connects to the target, checking that it exists before anything is sent.
    ///
    /// # Errors
    /// Unreachable brokers or endpoint, a missing topic or stream, missing credentials, bad
    /// properties, settings for the other kind of target.
    pub fn open(&self, connection: &Connection) -> Result<Box<dyn Outlet>, ConnectorError> {
        match self {
            Target::Kafka { brokers, topic } => {
                if connection.aws.region.is_some() || connection.aws.endpoint.is_some() {
                    return Err(ConnectorError::user(
                        "--region and --endpoint-url are for kinesis:// targets; a Kafka target \
                         takes producer properties (-X key=value)",
                    ));
                }
                Ok(Box::new(KafkaOutlet(crate::kafka::Producer::connect(
                    brokers,
                    topic,
                    &connection.properties,
                )?)))
            }
            Target::Kinesis { stream } => {
                if let Some((key, _)) = connection.properties.first() {
                    return Err(ConnectorError::user(format!(
                        "-X {key}=…: producer properties are for kafka:// targets; a Kinesis \
                         target takes --region and --endpoint-url (or the AWS environment)"
                    )));
                }
                let client = Kinesis::connect(&connection.aws, stream)?;
                client.check_stream()?;
                Ok(Box::new(KinesisOutlet {
                    client,
                    batch: PutBatch::default(),
                    oldest: None,
                    records: 0,
                }))
            }
        }
    }
}

/// A connected target.
pub trait Outlet {
    /// Queues one record.
    ///
    /// # Errors
    /// Why the record (or an earlier one) could not be delivered.
    fn send(&mut self, key: Option<&[u8]>, value: &[u8]) -> Result<(), ConnectorError>;

    /// The replay is about to wait `wait` for the next record's event time: send what is
    /// batched if it would otherwise wait too long.
    ///
    /// # Errors
    /// Why a record could not be delivered.
    fn pause(&mut self, wait: Duration) -> Result<(), ConnectorError> {
        let _ = wait;
        Ok(())
    }

    /// Waits until every record sent is stored.
    ///
    /// # Errors
    /// Why a record could not be delivered.
    fn flush(&mut self) -> Result<(), ConnectorError>;
}

struct KafkaOutlet(crate::kafka::Producer);

impl Outlet for KafkaOutlet {
    fn send(&mut self, key: Option<&[u8]>, value: &[u8]) -> Result<(), ConnectorError> {
        self.0.send(value, key, None)?;
        if self.0.unflushed.is_multiple_of(1024) {
            self.0.poll()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ConnectorError> {
        self.0.flush().map(|_| ())
    }
}

/// Records batched for one PutRecords call at most this long when pacing waits (Kafka's
/// producer lingers 5 ms by default; a PutRecords call costs more).
const KINESIS_LINGER: Duration = Duration::from_millis(100);

struct KinesisOutlet {
    client: Kinesis,
    batch: PutBatch,
    /// When the oldest record of `batch` was added.
    oldest: Option<Instant>,
    /// Records given so far: the partition key of a record without one.
    records: u64,
}

impl Outlet for KinesisOutlet {
    fn send(&mut self, key: Option<&[u8]>, value: &[u8]) -> Result<(), ConnectorError> {
        self.records += 1;
        let key = match key {
            Some(k) if !k.is_empty() => String::from_utf8_lossy(k).into_owned(),
            _ => self.records.to_string(),
        };
        if key.chars().count() > MAX_KEY_CHARS {
            return Err(ConnectorError::user(format!(
                "record {}: its key has {} characters; Kinesis partition keys have at most \
                 {MAX_KEY_CHARS} (choose another --key field)",
                self.records,
                key.chars().count()
            )));
        }
        let size = value.len() + key.len();
        if size > MAX_RECORD_BYTES {
            return Err(ConnectorError::user(format!(
                "record {} is {size} bytes with its key; Kinesis takes records of at most 1 MiB",
                self.records
            )));
        }
        if self.batch.is_full_for(size) {
            self.flush()?;
        }
        self.batch.push(value.to_vec(), key);
        self.oldest.get_or_insert_with(Instant::now);
        Ok(())
    }

    fn pause(&mut self, wait: Duration) -> Result<(), ConnectorError> {
        match self.oldest {
            Some(oldest) if oldest.elapsed() + wait >= KINESIS_LINGER => self.flush(),
            _ => Ok(()),
        }
    }

    fn flush(&mut self) -> Result<(), ConnectorError> {
        self.oldest = None;
        if self.batch.is_empty() {
            return Ok(());
        }
        let entries = self.batch.take();
        self.client.block_on(self.client.put_all(entries))
    }
}

/// The record format of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Json,
    Csv,
}

impl FileFormat {
    /// From the file name: `.csv` (or `.csv.gz`) is CSV, anything else JSON lines.
    pub fn of(path: &Path) -> FileFormat {
        let name = path.to_string_lossy().to_ascii_lowercase();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        if name.ends_with(".csv") {
            FileFormat::Csv
        } else {
            FileFormat::Json
        }
    }
}

/// What to replay and how.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub path: PathBuf,
    pub format: FileFormat,
    /// The field whose value keys each message.
    pub key: Option<String>,
    /// Pacing: the event-time field (epoch ms, or an ISO-8601 text), and how many times
    /// faster than real time to send (`None`: as fast as possible).
    pub time_field: Option<String>,
    pub speedup: Option<f64>,
    /// Stop after this many records.
    pub limit: Option<u64>,
}

/// Counters the command shows while replaying.
#[derive(Debug, Default)]
pub struct ReplayProgress {
    pub records: AtomicU64,
    /// Bytes of the file read (compressed bytes for `.gz`), and its size.
    pub bytes: AtomicU64,
    pub total_bytes: AtomicU64,
    /// Records without a usable key or event time (sent without key / not paced).
    pub unkeyed: AtomicU64,
    pub untimed: AtomicU64,
}

/// Counts bytes read from the file, for the progress bar.
struct Counting<R> {
    inner: R,
    progress: Arc<ReplayProgress>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Replays the file into `outlet` until its end (or `stop`); returns the records sent.
///
/// # Errors
/// An unreadable file, a record that is not JSON/CSV, a failed delivery.
pub fn replay(
    options: &ReplayOptions,
    outlet: &mut dyn Outlet,
    progress: &Arc<ReplayProgress>,
    stop: &AtomicBool,
) -> Result<u64, ConnectorError> {
    let path = &options.path;
    let file = std::fs::File::open(path)
        .map_err(|e| ConnectorError::io(&format!("opening {}", path.display()), &e))?;
    if let Ok(m) = file.metadata() {
        progress.total_bytes.store(m.len(), Ordering::Relaxed);
    }
    let counted = Counting {
        inner: file,
        progress: progress.clone(),
    };
    let input: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(counted))
    } else {
        Box::new(counted)
    };
    let mut pacer = Pacer::new(options.speedup);
    let describe = path.display().to_string();
    let mut sent = 0u64;
    let mut each = |key: Option<&[u8]>, value: &[u8], time: Option<i64>| {
        if let Some(t) = time {
            if let Some(due) = pacer.due(t) {
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    outlet.pause(wait)?;
                }
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        } else if options.time_field.is_some() {
            progress.untimed.fetch_add(1, Ordering::Relaxed);
        }
        if options.key.is_some() && key.is_none() {
            progress.unkeyed.fetch_add(1, Ordering::Relaxed);
        }
        outlet.send(key, value)?;
        sent += 1;
        progress.records.fetch_add(1, Ordering::Relaxed);
        Ok(!stop.load(Ordering::Relaxed) && options.limit.is_none_or(|l| sent < l))
    };
    match options.format {
        FileFormat::Json => json_records(input, options, &describe, &mut each)?,
        FileFormat::Csv => csv_records(input, options, &describe, &mut each)?,
    }
    outlet.flush()?;
    Ok(sent)
}

type Each<'a> = dyn FnMut(Option<&[u8]>, &[u8], Option<i64>) -> Result<bool, ConnectorError> + 'a;

fn json_records(
    input: Box<dyn Read>,
    options: &ReplayOptions,
    describe: &str,
    each: &mut Each<'_>,
) -> Result<(), ConnectorError> {
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let mut line = Vec::new();
    let mut number = 0u64;
    let wants_fields = options.key.is_some() || options.time_field.is_some();
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| ConnectorError::io(&format!("reading {describe}"), &e))?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        let record = trim_line_end(&line);
        if record.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let (key, time) = if wants_fields {
            let value: serde_json::Value = serde_json::from_slice(record).map_err(|e| {
                ConnectorError::user(format!("{describe}:{number}: not a JSON object: {e}"))
            })?;
            let key = options
                .key
                .as_deref()
                .and_then(|k| value.get(k))
                .and_then(json_text);
            let time = options
                .time_field
                .as_deref()
                .and_then(|t| value.get(t))
                .and_then(|v| match v {
                    serde_json::Value::Number(n) => n.as_i64(),
                    serde_json::Value::String(s) => parse_time(s),
                    _ => None,
                });
            (key, time)
        } else {
            (None, None)
        };
        if !each(key.as_deref().map(str::as_bytes), record, time)? {
            return Ok(());
        }
    }
}

fn csv_records(
    input: Box<dyn Read>,
    options: &ReplayOptions,
    describe: &str,
    each: &mut Each<'_>,
) -> Result<(), ConnectorError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(input);
    let headers = reader
        .byte_headers()
        .map_err(|e| ConnectorError::user(format!("{describe}: reading the CSV header: {e}")))?
        .clone();
    let column = |name: &Option<String>| -> Result<Option<usize>, ConnectorError> {
        let Some(name) = name else { return Ok(None) };
        headers
            .iter()
            .position(|h| h == name.as_bytes())
            .map(Some)
            .ok_or_else(|| {
                ConnectorError::user(format!(
                    "{describe}: the CSV header has no column `{name}` (it has: {})",
                    String::from_utf8_lossy(headers.as_slice())
                ))
            })
    };
    let key_column = column(&options.key)?;
    let time_column = column(&options.time_field)?;
    let mut record = csv::ByteRecord::new();
    let mut value = Vec::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(e) => return Err(ConnectorError::user(format!("{describe}: {e}"))),
        }
        value.clear();
        {
            let mut writer = csv::WriterBuilder::new()
                .terminator(csv::Terminator::Any(b'\n'))
                .from_writer(&mut value);
            writer
                .write_byte_record(&record)
                .and_then(|()| writer.flush().map_err(csv::Error::from))
                .map_err(|e| ConnectorError::internal(format!("re-encoding a CSV record: {e}")))?;
        }
        let record_value = trim_line_end(&value);
        let key = key_column
            .and_then(|c| record.get(c))
            .filter(|k| !k.is_empty());
        let time = time_column
            .and_then(|c| record.get(c))
            .and_then(|t| std::str::from_utf8(t).ok())
            .and_then(|t| t.trim().parse::<i64>().ok().or_else(|| parse_time(t)));
        if !each(key, record_value, time)? {
            return Ok(());
        }
    }
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A JSON value as key text: strings as they are, numbers and booleans as written.
fn json_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// An ISO-8601 / RFC 3339 instant as epoch milliseconds.
fn parse_time(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Sends records at the pace of their event times, `speedup` times faster than they
/// happened: a record whose event time is `t` goes out `(t - first) / speedup` after the
/// first. Records out of order go at once.
struct Pacer {
    speedup: Option<f64>,
    first: Option<(i64, Instant)>,
}

impl Pacer {
    fn new(speedup: Option<f64>) -> Pacer {
        Pacer {
            speedup,
            first: None,
        }
    }

    /// When the record of `event_time` is due (`None`: not paced).
    fn due(&mut self, event_time: i64) -> Option<Instant> {
        let speedup = self.speedup?;
        let (first, started) = *self.first.get_or_insert((event_time, Instant::now()));
        Some(
            started
                + Duration::from_secs_f64(((event_time - first).max(0) as f64 / 1000.0) / speedup),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_urls() {
        assert_eq!(
            Target::parse("kafka://127.0.0.1:9092,h2:9093/movie-impressions"),
            Ok(Target::Kafka {
                brokers: "127.0.0.1:9092,h2:9093".into(),
                topic: "movie-impressions".into()
            })
        );
        for bad in [
            "kafka://127.0.0.1:9092",
            "kafka:///t",
            "127.0.0.1:9092/t",
            "kafka://h/t/x",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
        let arn = "arn:aws:kinesis:us-east-1:123456789012:stream/taxi-trips";
        assert_eq!(
            Target::parse(&format!("kinesis://{arn}")),
            Ok(Target::Kinesis { stream: arn.into() })
        );
        assert_eq!(
            Target::parse("kinesis://taxi_trips.v-2"),
            Ok(Target::Kinesis {
                stream: "taxi_trips.v-2".into()
            })
        );
        for bad in ["kinesis://", "kinesis://a/b", "kinesis://a b"] {
            assert!(
                Target::parse(bad).unwrap_err().contains("kinesis://STREAM"),
                "{bad}"
            );
        }
        assert!(
            Target::parse("kinesi://s")
                .unwrap_err()
                .contains("not supported")
        );
    }

    #[test]
    fn formats_by_name() {
        assert_eq!(FileFormat::of(Path::new("a.csv.gz")), FileFormat::Csv);
        assert_eq!(FileFormat::of(Path::new("a.CSV")), FileFormat::Csv);
        assert_eq!(FileFormat::of(Path::new("a.jsonl.gz")), FileFormat::Json);
    }

    #[test]
    fn the_pacer_spaces_records_by_event_time() {
        let mut p = Pacer::new(Some(1000.0));
        let first = p.due(5_000).unwrap();
        // 100 s of event time at 1000× is 100 ms; a record out of order is due at once.
        assert_eq!(p.due(105_000).unwrap() - first, Duration::from_millis(100));
        assert_eq!(p.due(1_000).unwrap(), first);
        assert_eq!(Pacer::new(None).due(0), None);
    }

    /// A target that keeps what it gets.
    #[derive(Default)]
    struct Kept(Vec<(Option<Vec<u8>>, Vec<u8>)>, bool);

    impl Outlet for Kept {
        fn send(&mut self, key: Option<&[u8]>, value: &[u8]) -> Result<(), ConnectorError> {
            self.0.push((key.map(<[u8]>::to_vec), value.to_vec()));
            Ok(())
        }
        fn flush(&mut self) -> Result<(), ConnectorError> {
            self.1 = true;
            Ok(())
        }
    }

    fn run(name: &str, content: &[u8], key: Option<&str>) -> Kept {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let options = ReplayOptions {
            format: FileFormat::of(&path),
            path,
            key: key.map(str::to_string),
            time_field: None,
            speedup: None,
            limit: None,
        };
        let mut kept = Kept::default();
        let progress = Arc::new(ReplayProgress::default());
        let n = replay(&options, &mut kept, &progress, &AtomicBool::new(false)).unwrap();
        assert_eq!(n as usize, kept.0.len());
        assert!(kept.1, "flushed at the end");
        kept
    }

    #[test]
    fn json_lines_go_out_byte_for_byte_keyed_by_a_field() {
        let kept = run(
            "in.jsonl",
            b"{\"movieId\":\"7\",\"n\":1}\r\n\n{\"movieId\":8,  \"n\":2}\n{\"n\":3}",
            Some("movieId"),
        );
        assert_eq!(
            kept.0,
            vec![
                (Some(b"7".to_vec()), b"{\"movieId\":\"7\",\"n\":1}".to_vec()),
                (Some(b"8".to_vec()), b"{\"movieId\":8,  \"n\":2}".to_vec()),
                (None, b"{\"n\":3}".to_vec()),
            ]
        );
    }

    #[test]
    fn csv_rows_go_out_without_the_header() {
        let kept = run("in.csv", b"id,name\n1,\"a,b\"\n2,c\n", Some("id"));
        assert_eq!(
            kept.0,
            vec![
                (Some(b"1".to_vec()), b"1,\"a,b\"".to_vec()),
                (Some(b"2".to_vec()), b"2,c".to_vec()),
            ]
        );
    }
}
