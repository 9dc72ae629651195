//! Kinesis end to end, through the binary, against the local Kinesis server started by
//! `scripts/services/kinesis.sh` (kinesalite on 127.0.0.1): records put with an independent
//! client (boto3) into multi-shard streams are read by `pipelines/movie-impressions-kinesis.yaml`
//! with `--bounded` and give the rows of the same job over a file; a checkpointed run killed
//! with SIGKILL and restarted writes every row exactly once; shard splits before and in the
//! middle of a run lose and reorder nothing per key; a missing stream is a clear error. Endpoint and
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
}

#[test]
fn metadata_fields_can_be_the_event_time_and_flink_says_it_does_not_map_them() {
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
    assert!(
        stderr(&o).contains("warning[flink-kinesis-metadata]"),
        "{}",
        stderr(&o)
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
