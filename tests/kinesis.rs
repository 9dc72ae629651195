//! Kinesis end to end, through the binary, against the local Kinesis server started by
//! `scripts/services/kinesis.sh` (kinesalite on 127.0.0.1): records put with an independent
//! client (boto3) into multi-shard streams are read by `pipelines/movie-impressions-kinesis.yaml`
//! with `--bounded` and give the rows of the same job over a file; a checkpointed run killed
//! with SIGKILL and restarted writes every row exactly once; shard splits before and in the
//! middle of a run lose and reorder nothing per key; a missing stream is a clear error;
//! `streamctl replay --to kinesis://` puts every record once, byte for byte, keyed by a field,
//! and the taxi pipelines read what it put like their `-local` variants read the file. Endpoint and
//! credentials reach streamctl only through the standard AWS variables. Every test uses its
//! own stream.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Service, wait_for};

fn kinesis() -> Service {
    common::service("kinesis")
}

/// streamctl with the Kinesis server's standard AWS variables (no `KINESIS_ENDPOINT` from the
/// caller: the pipelines read it).
fn streamctl(k: &Service) -> Command {
    let mut c = common::streamctl_with_aws(k);
    c.env_remove("KINESIS_ENDPOINT");
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The independent client: tests/kinesis_client.py in the service's Python.
fn client(k: &Service, args: &[&str], stdin: Option<&[u8]>) -> String {
    let mut child = Command::new(k.get("KINESIS_PYTHON"))
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kinesis_client.py"))
        .args(args)
        .envs(k.env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).unwrap();
    }
    drop(input);
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "kinesis_client.py {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// A new stream with `shards` shards, deleted when dropped.
struct Stream<'a> {
    k: &'a Service,
    name: String,
}

impl<'a> Stream<'a> {
    fn create(k: &'a Service, shards: u32) -> Stream<'a> {
        let name = common::unique("streamctl-test");
        client(k, &["create", &name, &shards.to_string()], None);
        Stream { k, name }
    }

    /// Puts JSON lines, each with the partition key in field `key_field`.
    fn put(&self, lines: &[String], key_field: &str) {
        let text = lines.join("\n") + "\n";
        client(
            self.k,
            &["put", &self.name, key_field],
            Some(text.as_bytes()),
        );
    }

    fn shards(&self) -> Vec<serde_json::Value> {
        client(self.k, &["shards", &self.name], None)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Stream<'_> {
    fn drop(&mut self) {
        let _ = Command::new(self.k.get("KINESIS_PYTHON"))
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kinesis_client.py"))
            .args(["delete", &self.name])
            .envs(self.k.env())
            .output();
    }
}

/// `count` movie impressions as JSON lines (events up to 4 s out of order).
fn impressions(k: &Service, count: u64, interval: &str) -> Vec<String> {
    let o = streamctl(k)
        .args([
            "generate",
            "movie-impressions",
            "--disorder",
            "4s",
            "--interval",
            interval,
            "--count",
        ])
        .arg(count.to_string())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every file under `dir`: relative path → text (hidden files included, to catch leftovers).
fn files(dir: &Path) -> BTreeMap<String, String> {
    common::files(dir)
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            (rel, std::fs::read_to_string(&p).unwrap_or_default())
        })
        .collect()
}

/// Bucket directory of each visible file, with its data rows sorted (part names differ
/// between runs).
fn by_bucket(files: &BTreeMap<String, String>) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, text) in files {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        assert!(!name.starts_with('.'), "a hidden file was left: {path}");
        out.entry(dir.to_string())
            .or_default()
            .extend(text.lines().skip(1).map(str::to_string));
    }
    for rows in out.values_mut() {
        rows.sort();
    }
    out
}

#[test]
fn the_movie_impressions_pipeline_reads_a_four_shard_stream_with_bounded() {
    let k = kinesis();
    let stream = Stream::create(&k, 4);
    let records = impressions(&k, 6000, "150ms");
    stream.put(&records, "userId");
    let dir = tempfile::tempdir().unwrap();
    let out_kinesis = dir.path().join("kinesis");
    let o = streamctl(&k)
        .args([
            "run",
            "pipelines/movie-impressions-kinesis.yaml",
            "--bounded",
            "--progress",
            "off",
        ])
        .env("STREAM", &stream.name)
        .env("OUTPUT", format!("file://{}/", out_kinesis.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));

    // The same job over a file of the same records.
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, records.join("\n") + "\n").unwrap();
    let out_file = dir.path().join("file");
    let o = streamctl(&k)
        .args([
            "run",
            "pipelines/movie-impressions-local.yaml",
            "--progress",
            "off",
        ])
        .env("INPUT", &input)
        .env("OUTPUT", format!("file://{}/", out_file.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let from_kinesis = by_bucket(&files(&out_kinesis));
    assert_eq!(from_kinesis, by_bucket(&files(&out_file)));

    // And against our own count: impressions per (15-minute window, movie, user).
    let mut expected: HashMap<(i64, String, String), (u64, i64)> = HashMap::new();
    for line in &records {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let ts = v["timestamp"].as_i64().unwrap();
        let e = expected
            .entry((
                ts.div_euclid(900_000),
                v["movieId"].as_str().unwrap().to_string(),
                v["userId"].as_str().unwrap().to_string(),
            ))
            .or_default();
        e.0 += 1;
        e.1 = e.1.max(ts);
    }
    let rows: Vec<&String> = from_kinesis.values().flatten().collect();
    assert_eq!(rows.len(), expected.len());
    let total: u64 = rows
        .iter()
        .map(|r| r.split(',').nth(2).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, records.len() as u64);
}

/// Per movie every second from `source` into `${OUTPUT}`, written to `path`.
fn per_second_pipeline(path: PathBuf, source: &str) -> PathBuf {
    let text = format!(
        r#"version: 1
name: kinesis-per-second
sources:
  impressions:
{source}
    schema: {{movieId: string, userId: string, timestamp: timestamp_ms}}
    event_time: {{field: timestamp, max_out_of_orderness: 5s}}
transforms:
  per_movie:
    type: window
    inputs: [impressions]
    window: {{type: tumbling, size: 1s}}
    group_by: [movieId]
    aggregates: {{n: COUNT(*), last: MAX(timestamp)}}
sinks:
  out:
    type: s3
    inputs: [per_movie]
    url: ${{OUTPUT}}
    path: "{{movieId}}/"
    format: csv
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn start(k: &Service, pipeline: &Path, stream: &str, out: &Path, checkpoints: &Path) -> Child {
    streamctl(k)
        .arg("run")
        .arg(pipeline)
        .args(["--progress", "off", "--checkpoint-interval", "300ms"])
        .arg("--checkpoint-dir")
        .arg(checkpoints)
        .env("STREAM", stream)
        .env("OUTPUT", format!("file://{}/", out.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until a file is published under `out` (a checkpoint covering data completed).
fn wait_for_output(child: &mut Child, out: &Path) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !files(out)
        .keys()
        .any(|f| !f.contains("/.") && !f.starts_with('.'))
    {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before publishing anything"
        );
        assert!(
            Instant::now() < deadline,
            "nothing was published in 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_checkpointed_run_killed_and_restarted_writes_every_row_exactly_once() {
    let k = kinesis();
    let stream = Stream::create(&k, 4);
    let records = impressions(&k, 6000, "3ms");
    let (first, second) = records.split_at(3000);
    stream.put(first, "userId");
    let dir = tempfile::tempdir().unwrap();
    let pipeline = per_second_pipeline(
        dir.path().join("kinesis.yaml"),
        "    type: kinesis\n    stream: ${STREAM}\n    start_from: trim_horizon",
    );
    let out = dir.path().join("out");
    let checkpoints = dir.path().join("checkpoints");

    // Killed once something is published, while it waits for more records.
    let mut run = start(&k, &pipeline, &stream.name, &out, &checkpoints);
    wait_for_output(&mut run, &out);
    run.kill().unwrap();
    run.wait().unwrap();
    stream.put(second, "userId");
    // Killed again while it reads the rest.
    let mut run = start(&k, &pipeline, &stream.name, &out, &checkpoints);
    std::thread::sleep(Duration::from_millis(700));
    run.kill().unwrap();
    run.wait().unwrap();
    // Then to the end of what is there.
    let o = streamctl(&k)
        .arg("run")
        .arg(&pipeline)
        .args(["--progress", "off", "--bounded", "--checkpoint-dir"])
        .arg(&checkpoints)
        .env("STREAM", &stream.name)
        .env("OUTPUT", format!("file://{}/", out.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("{}/shardId-", stream.name)),
        "the restart names the shard positions it resumes from: {}",
        stderr(&o)
    );

    // A run over a file of the same records, without crashes.
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, records.join("\n") + "\n").unwrap();
    let file_pipeline = per_second_pipeline(
        dir.path().join("file.yaml"),
        &format!("    type: file\n    path: {}", input.display()),
    );
    let expected_out = dir.path().join("expected");
    let o = streamctl(&k)
        .arg("run")
        .arg(&file_pipeline)
        .args(["--progress", "off"])
        .env("OUTPUT", format!("file://{}/", expected_out.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(by_bucket(&files(&out)), by_bucket(&files(&expected_out)));
}

#[test]
fn shard_splits_before_and_during_a_run_lose_and_reorder_nothing_per_key() {
    let k = kinesis();
    let stream = Stream::create(&k, 2);
    // Records numbered per key, so the output shows order and gaps per key.
    let batch = |from: u64, to: u64| -> Vec<String> {
        (from..to)
            .map(|i| {
                format!(
                    r#"{{"key":"k{}","n":{},"timestamp":{}}}"#,
                    i % 40,
                    i / 40,
                    1_546_819_200_000 + i as i64 * 10
                )
            })
            .collect()
    };
    // Shard 0 is split with records in it, and its children get records at once: a reader
    // that did not wait for the parent would mix them up.
    stream.put(&batch(0, 2000), "key");
    client(&k, &["split", &stream.name, "shardId-000000000000"], None);
    stream.put(&batch(2000, 4000), "key");
    let dir = tempfile::tempdir().unwrap();
    let pipeline = dir.path().join("pipeline.yaml");
    // Small answers, so the parent takes several calls to read.
    std::fs::write(
        &pipeline,
        r#"version: 1
name: kinesis-split
sources:
  records:
    type: kinesis
    stream: ${STREAM}
    records_per_call: 100
    schema: {key: string, n: int, timestamp: timestamp_ms}
    metadata: {shard: shard, seq: sequence_number}
sinks:
  out:
    type: file
    inputs: [records]
    path: ${OUTPUT}
    format: json
"#,
    )
    .unwrap();
    let out = dir.path().join("out.jsonl");
    let checkpoints = dir.path().join("checkpoints");
    let mut run = streamctl(&k)
        .arg("run")
        .arg(&pipeline)
        .args(["--progress", "off", "--checkpoint-interval", "300ms"])
        .arg("--checkpoint-dir")
        .arg(&checkpoints)
        .env("STREAM", &stream.name)
        .env("OUTPUT", &out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Shard 1 is split while the run reads it.
    std::thread::sleep(Duration::from_millis(500));
    client(&k, &["split", &stream.name, "shardId-000000000001"], None);
    stream.put(&batch(4000, 6000), "key");
    let shards = stream.shards();
    assert_eq!(shards.len(), 6, "{shards:?}");
    std::thread::sleep(Duration::from_secs(2));
    // A savepoint (SIGTERM), more records, and a bounded run to the end.
    unsafe {
        libc::kill(run.id() as i32, libc::SIGTERM);
    }
    let status = wait_for(&mut run, Duration::from_secs(60)).expect("SIGTERM stops the run");
    assert_eq!(status.code(), Some(130));
    stream.put(&batch(6000, 7000), "key");
    let o = streamctl(&k)
        .arg("run")
        .arg(&pipeline)
        .args(["--progress", "off", "--bounded", "--checkpoint-dir"])
        .arg(&checkpoints)
        .env("STREAM", &stream.name)
        .env("OUTPUT", &out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));

    let mut seen: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut shards_read = std::collections::BTreeSet::new();
    for line in std::fs::read_to_string(&out).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        seen.entry(v["key"].as_str().unwrap().to_string())
            .or_default()
            .push(v["n"].as_i64().unwrap());
        shards_read.insert(v["shard"].as_str().unwrap().to_string());
        assert!(v["seq"].as_str().unwrap().len() > 20, "{line}");
    }
    assert_eq!(
        shards_read.len(),
        6,
        "every shard had records: {shards_read:?}"
    );
    assert_eq!(seen.len(), 40);
    for (key, ns) in seen {
        assert_eq!(ns, (0..175).collect::<Vec<i64>>(), "key {key}");
    }
}

#[test]
fn a_missing_stream_is_a_clear_error() {
    let k = kinesis();
    let dir = tempfile::tempdir().unwrap();
    let mut child = streamctl(&k)
        .args([
            "run",
            "pipelines/movie-impressions-kinesis.yaml",
            "--progress",
            "off",
        ])
        .env("STREAM", common::unique("no-such-stream"))
        .env("OUTPUT", format!("file://{}/", dir.path().display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_for(&mut child, Duration::from_secs(60)).expect("fails, does not hang");
    let o = child.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("does not exist"), "{err}");
    assert!(err.contains("no-such-stream"), "{err}");
    assert!(err.contains("127.0.0.1"), "names where it looked: {err}");

    // Replay checks the stream before it sends anything.
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"n\":1}\n").unwrap();
    let missing = common::unique("no-such-stream");
    let o = replay_to_kinesis(&k, &input, &missing, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("does not exist"), "{err}");
    assert!(err.contains(&missing), "{err}");
    assert!(err.contains("127.0.0.1"), "names where it looked: {err}");
    assert!(!err.contains("sent:"), "{err}");
}

#[test]
fn metadata_fields_can_be_the_event_time_and_flink_maps_those_it_has() {
    let k = kinesis();
    let dir = tempfile::tempdir().unwrap();
    let pipeline = dir.path().join("meta.yaml");
    std::fs::write(
        &pipeline,
        r#"version: 1
name: kinesis-metadata
sources:
  records:
    type: kinesis
    stream: some-stream
    schema: {key: string, n: int}
    metadata: {arrived: arrival_time, shard: shard, key: partition_key}
    event_time: {field: arrived}
sinks:
  out:
    type: stdout
    inputs: [records]
"#,
    )
    .unwrap();
    let o = streamctl(&k)
        .arg("validate")
        .arg(&pipeline)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("metadata field `key` is also in the schema"),
        "{}",
        stderr(&o)
    );
    let text = std::fs::read_to_string(&pipeline)
        .unwrap()
        .replace(", key: partition_key", ", partitionKey: partition_key");
    std::fs::write(&pipeline, text).unwrap();
    let o = streamctl(&k)
        .args(["validate", "--deny-warnings"])
        .arg(&pipeline)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("note: source `records` reads every shard"),
        "{stdout}"
    );
    let o = streamctl(&k)
        .args(["validate", "--target", "flink"])
        .arg(&pipeline)
        .output()
        .unwrap();
    // Flink's Kinesis table has the arrival time, shard and sequence number as metadata
    // columns, not the partition key.
    let err = stderr(&o);
    assert!(err.contains("warning[flink-kinesis-metadata]"), "{err}");
    assert!(err.contains("`partitionKey` is NULL on Flink"), "{err}");
    assert_eq!(
        err.matches("warning[flink-kinesis-metadata]").count(),
        1,
        "{err}"
    );
    let o = streamctl(&k)
        .args(["plan", "--target", "flink-sql"])
        .arg(&pipeline)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let sql = String::from_utf8_lossy(&o.stdout);
    assert!(
        sql.contains("`arrived` TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL"),
        "{sql}"
    );
    assert!(
        sql.contains("`shard` STRING METADATA FROM 'shard-id' VIRTUAL"),
        "{sql}"
    );
    assert!(
        sql.contains("CAST(NULL AS STRING) AS `partitionKey`"),
        "{sql}"
    );
}

#[test]
fn the_sink_writes_every_row_as_one_record_keyed_by_its_expression() {
    let k = kinesis();
    let stream = Stream::create(&k, 3);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    // More than one PutRecords batch (500 records).
    let records = impressions(&k, 1200, "3ms");
    std::fs::write(&input, records.join("\n") + "\n").unwrap();
    let pipeline = dir.path().join("sink.yaml");
    std::fs::write(
        &pipeline,
        r#"version: 1
name: kinesis-sink
sources:
  impressions:
    type: file
    path: ${INPUT}
    schema: {movieId: string, userId: string, timestamp: timestamp_ms}
sinks:
  stream:
    type: kinesis
    inputs: [impressions]
    stream: ${STREAM}
    partition_key: "CONCAT('user-', userId)"
    format: json
"#,
    )
    .unwrap();
    let o = streamctl(&k)
        .arg("run")
        .arg(&pipeline)
        .args(["--progress", "off"])
        .env("INPUT", &input)
        .env("STREAM", &stream.name)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));

    // Read back with the independent client: every row once, keyed by the expression.
    let mut written: Vec<(String, serde_json::Value)> = client(&k, &["read", &stream.name], None)
        .lines()
        .map(|l| {
            let r: serde_json::Value = serde_json::from_str(l).unwrap();
            let data: serde_json::Value =
                serde_json::from_str(r["data"].as_str().unwrap()).unwrap();
            (r["key"].as_str().unwrap().to_string(), data)
        })
        .collect();
    assert_eq!(written.len(), records.len());
    let shards: std::collections::BTreeSet<String> = client(&k, &["read", &stream.name], None)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["shard"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(shards.len(), 3, "keys spread over the shards");
    for (key, data) in &written {
        assert_eq!(key, &format!("user-{}", data["userId"].as_str().unwrap()));
    }
    let mut expected: Vec<serde_json::Value> = records
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sort_key = |v: &serde_json::Value| {
        (
            v["timestamp"].as_i64(),
            v["userId"].to_string(),
            v["movieId"].to_string(),
        )
    };
    expected.sort_by_key(sort_key);
    written.sort_by_key(|(_, v)| sort_key(v));
    let written: Vec<serde_json::Value> = written.into_iter().map(|(_, v)| v).collect();
    assert_eq!(written, expected);
}

/// `streamctl replay FILE --to kinesis://STREAM` with the Kinesis server's AWS variables.
fn replay_to_kinesis(k: &Service, file: &Path, stream: &str, extra: &[&str]) -> Output {
    streamctl(k)
        .arg("replay")
        .arg(file)
        .args(["--to", &format!("kinesis://{stream}"), "--progress", "off"])
        .args(extra)
        .output()
        .unwrap()
}

/// What the independent client reads back: (shard, partition key, data), in shard order.
fn read_back(k: &Service, stream: &str) -> Vec<(String, String, String)> {
    client(k, &["read", stream], None)
        .lines()
        .map(|l| {
            let r: serde_json::Value = serde_json::from_str(l).unwrap();
            let text = |f: &str| r[f].as_str().unwrap().to_string();
            (text("shard"), text("key"), text("data"))
        })
        .collect()
}

#[test]
fn replay_sends_every_record_once_byte_for_byte_keyed_by_the_field() {
    let k = kinesis();
    let stream = Stream::create(&k, 4);
    let dir = tempfile::tempdir().unwrap();
    // More than two PutRecords batches (500 records each), lines as written (spacing, key
    // order and escapes kept), and one record without the key field.
    let mut lines = impressions(&k, 1200, "3ms");
    lines.push(r#"{ "userId" : "ü-7",  "movieId":"m\"1", "timestamp": 1546819200000 }"#.into());
    lines.push(r#"{"movieId":"m2","timestamp":1546819200001}"#.into());
    let input = dir.path().join("impressions.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let o = replay_to_kinesis(&k, &input, &stream.name, &["--key", "userId"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("sent: 1.2k records"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("1 records had no `userId` and went with their record number"),
        "{}",
        stderr(&o)
    );

    let written = read_back(&k, &stream.name);
    let shards: std::collections::BTreeSet<&String> = written.iter().map(|(s, _, _)| s).collect();
    assert_eq!(shards.len(), 4, "keys spread over the shards");
    for (_, key, data) in &written {
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        match v["userId"].as_str() {
            Some(user) => assert_eq!(key, user, "{data}"),
            None => assert_eq!(key, "1202", "the record number: {data}"),
        }
    }
    let mut got: Vec<&String> = written.iter().map(|(_, _, d)| d).collect();
    let mut expected: Vec<&String> = lines.iter().collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "every record once, byte for byte");
}

#[test]
fn replay_without_a_key_numbers_the_records_and_paces_them() {
    let k = kinesis();
    let stream = Stream::create(&k, 4);
    let dir = tempfile::tempdir().unwrap();
    // 300 records 20 ms apart in event time: 6 s, sent 20 times faster (0.3 s), so the
    // batches go out between waits.
    let lines = impressions(&k, 300, "20ms");
    let input = dir.path().join("impressions.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let o = replay_to_kinesis(&k, &input, &stream.name, &["--speedup", "20"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let written = read_back(&k, &stream.name);
    let shards: std::collections::BTreeSet<&String> = written.iter().map(|(s, _, _)| s).collect();
    assert_eq!(shards.len(), 4, "record numbers spread over the shards");
    let mut by_number: Vec<(usize, &String)> = written
        .iter()
        .map(|(_, key, data)| (key.parse::<usize>().unwrap(), data))
        .collect();
    by_number.sort();
    let expected: Vec<(usize, &String)> =
        lines.iter().enumerate().map(|(i, l)| (i + 1, l)).collect();
    assert_eq!(by_number, expected);
}

/// The JSON-lines rows of every file under `dir`, each with its bucket directory, sorted.
fn json_rows(dir: &Path) -> Vec<String> {
    let mut rows: Vec<String> = files(dir)
        .into_iter()
        .flat_map(|(path, text)| {
            let bucket = path.rsplit_once('/').map_or("", |(d, _)| d).to_string();
            text.lines()
                .map(|l| format!("{bucket} {l}"))
                .collect::<Vec<_>>()
        })
        .collect();
    rows.sort();
    rows
}

/// A copy of `pipelines/NAME.yaml` (a `-local` pipeline, its source a generator) reading
/// `source` instead: the source's lines up to its `event_time:` are replaced.
fn with_source(dir: &Path, name: &str, source: &str) -> PathBuf {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("pipelines/{name}.yaml")),
    )
    .unwrap();
    let start = text.find("  trips:\n    type: generator\n").unwrap() + "  trips:\n".len();
    let end = start + text[start..].find("    event_time:").unwrap();
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, format!("{}{source}{}", &text[..start], &text[end..])).unwrap();
    path
}

/// Seed 004's taxi pipelines read the trips `streamctl replay` put into a 4-shard stream
/// (`--bounded`) and write the rows their `-local` variants write from the same file.
#[test]
fn the_taxi_pipelines_read_replayed_trips_and_equal_their_local_variants() {
    let k = kinesis();
    let stream = Stream::create(&k, 4);
    let dir = tempfile::tempdir().unwrap();
    // ~40 minutes of trips (events 500 ms apart, up to 8 s out of order, within the
    // pipelines' 10 s): several 5-minute and sliding 10-minute windows.
    let input = dir.path().join("trips.jsonl");
    let o = streamctl(&k)
        .args(["generate", "taxi_trips", "--count", "5000", "--seed", "7"])
        .args(["--interval", "500ms", "--disorder", "8s", "-o"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = replay_to_kinesis(&k, &input, &stream.name, &["--key", "tripId"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let file_source = "    type: file\n    path: ${INPUT}\n    format: json\n    schema: \
                       {tripId: string, event: string, lat: double, lon: double, \
                       passengers: int, durationSec: int, airport: string, \
                       timestamp: timestamp_ms}\n";
    for name in ["taxi-hot-spots", "taxi-airport-durations"] {
        let from_kinesis = dir.path().join(format!("{name}-kinesis"));
        let o = streamctl(&k)
            .args(["run", &format!("pipelines/{name}.yaml"), "--bounded"])
            .args(["--progress", "off"])
            .env("STREAM", &stream.name)
            .env("OUTPUT", format!("file://{}/", from_kinesis.display()))
            .env(
                "DEAD_LETTERS",
                format!("file://{}/", dir.path().join("dead").display()),
            )
            .output()
            .unwrap();
        assert!(o.status.success(), "{name}: {}", stderr(&o));

        let local = with_source(dir.path(), &format!("{name}-local"), file_source);
        let from_file = dir.path().join(format!("{name}-file"));
        let o = streamctl(&k)
            .arg("run")
            .arg(&local)
            .args(["--progress", "off"])
            .env("INPUT", &input)
            .env("OUTPUT", format!("file://{}/", from_file.display()))
            .output()
            .unwrap();
        assert!(o.status.success(), "{name}-local: {}", stderr(&o));
        let rows = json_rows(&from_kinesis);
        assert!(rows.len() > 10, "{name}: {rows:?}");
        let expected = json_rows(&from_file);
        let missing: Vec<_> = expected.iter().filter(|r| !rows.contains(r)).collect();
        let extra: Vec<_> = rows.iter().filter(|r| !expected.contains(r)).collect();
        assert_eq!(
            rows.len(),
            expected.len(),
            "{name}: missing {missing:?}, extra {extra:?}"
        );
        assert_eq!(
            rows, expected,
            "{name}: missing {missing:?}, extra {extra:?}"
        );
    }
    assert!(
        files(&dir.path().join("dead")).is_empty(),
        "no dead letters"
    );
}
