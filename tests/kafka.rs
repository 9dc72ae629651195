//! The Kafka connectors against a real Kafka-protocol broker on 127.0.0.1 (tansu, started by
//! `scripts/services/kafka.sh`), through the binary: replay → run → output equal to a direct
//! computation; metadata fields and the Kafka sink, checked with another Kafka client
//! (confluent-kafka); SIGKILL and restart from checkpoints with every row exactly once and
//! the group's offsets at the end; two processes in one group; a missing topic and an
//! unreachable broker; the Kafka sink across broker restarts and through our proxy cutting
//! connections inside produce requests. Every test uses its own topics and groups.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn streamctl() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_streamctl"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn brokers() -> String {
    common::service("kafka").get("KAFKA_BROKERS").to_string()
}

/// Runs tests/support/kafka_tool.py (confluent-kafka) and returns its standard output.
fn tool(args: &[&str]) -> String {
    tool_with_input(args, "")
}

/// [`tool`] with `input` on its standard input, against the shared broker.
fn tool_with_input(args: &[&str], input: &str) -> String {
    let kafka = common::service("kafka");
    common::kafka_broker::kafka_tool_with_input(&kafka, kafka.get("KAFKA_BROKERS"), args, input)
}

fn create_topic(partitions: u32) -> String {
    let topic = common::unique("topic");
    tool(&["create", &topic, &partitions.to_string()]);
    topic
}

/// A pipeline reading `topic` from the earliest offsets (records `{k: string, t:
/// timestamp_ms}`, `t` the event time with no out-of-orderness and `idle_timeout`) that counts
/// records per `k` in 10 s tumbling windows and writes CSV rows to standard output.
fn counts_per_key_pipeline(
    dir: &std::path::Path,
    topic: &str,
    idle_timeout: &str,
) -> std::path::PathBuf {
    let pipeline = dir.join("counts.yaml");
    std::fs::write(
        &pipeline,
        format!(
            r#"version: 1
name: counts
sources:
  rows:
    type: kafka
    brokers: {b}
    topic: {topic}
    group_id: {group}
    start_from: earliest
    schema: {{k: string, t: timestamp_ms}}
    event_time: {{field: t, max_out_of_orderness: 0s, idle_timeout: {idle_timeout}}}
transforms:
  counts:
    type: window
    inputs: [rows]
    window: {{type: tumbling, size: 10s}}
    group_by: [k]
    aggregates:
      n: COUNT(*)
sinks:
  out:
    type: stdout
    inputs: [counts]
    format: csv
"#,
            b = brokers(),
            group = common::unique("group"),
        ),
    )
    .unwrap();
    pipeline
}

/// Records per partition, read to the end with another client.
fn counts(topic: &str) -> BTreeMap<String, i64> {
    serde_json::from_str(&tool(&["counts", topic])).unwrap()
}

fn committed(group: &str, topic: &str) -> BTreeMap<String, i64> {
    serde_json::from_str(&tool(&["committed", group, topic])).unwrap()
}

/// `count` generated movie impressions (50 movies × 1000 users, 2 s apart so they span
/// several 15-minute windows and hours) in `dir/impressions.jsonl`.
fn impressions(dir: &Path, count: u64) -> PathBuf {
    let path = dir.join("impressions.jsonl");
    let o = streamctl()
        .args([
            "generate",
            "movie_impressions",
            "--interval",
            "2s",
            "--disorder",
            "4s",
        ])
        .args(["--count", &count.to_string(), "-o"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    path
}

fn replay(file: &Path, topic: &str) {
    let o = streamctl()
        .arg("replay")
        .arg(file)
        .args([
            "--to",
            &format!("kafka://{}/{topic}", brokers()),
            "--key",
            "movieId",
        ])
        .args(["--progress", "off"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

/// The reference pipeline with its own consumer group (tests run in parallel).
fn movie_pipeline(dir: &Path, group: &str) -> PathBuf {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/movie-impressions.yaml"),
    )
    .unwrap()
    .replace(
        "group_id: movie-impressions-agg",
        &format!("group_id: {group}"),
    );
    let path = dir.join("movie-impressions.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn run_movie(pipeline: &Path, topic: &str, out: &Path, extra: &[&str]) -> Command {
    let mut c = streamctl();
    c.arg("run")
        .arg(pipeline)
        .args(["--progress", "off"])
        .args(extra)
        .env("KAFKA_BROKERS", brokers())
        .env("TOPIC", topic)
        .env("OUTPUT", format!("file://{}/", out.display()))
        // The test broker holds a new group's first join for half of the session timeout.
        .env_remove("STREAMCTL_CRASH_AT");
    c
}

/// The rows of the visible CSV files under `out`, each prefixed with its bucket directory
/// (`yyyy-MM-dd--HH/movieId`), sorted.
fn output_rows(out: &Path) -> Vec<String> {
    let mut rows = Vec::new();
    for f in common::files(out) {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        let bucket = f
            .parent()
            .unwrap()
            .strip_prefix(out)
            .unwrap()
            .to_string_lossy()
            .to_string();
        let text = std::fs::read_to_string(&f).unwrap();
        for line in text.lines().skip(1) {
            rows.push(format!("{bucket} {line}"));
        }
    }
    rows.sort();
    rows
}

/// Runs `c` to its end; a hang guard (not a timing assertion) fails the test instead of
/// hanging it.
fn finish(mut c: Command) -> Output {
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if common::wait_for(&mut child, Duration::from_secs(180)).is_none() {
        child.kill().unwrap();
        let o = child.wait_with_output().unwrap();
        panic!("still running after 3 minutes:\n{}", stderr(&o));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn movie_impressions_replayed_into_a_topic_and_run_bounded_equal_a_direct_computation() {
    let dir = tempfile::tempdir().unwrap();
    let input = impressions(dir.path(), 30_000);
    let topic = create_topic(4);
    replay(&input, &topic);
    let per_partition = counts(&topic);
    assert_eq!(per_partition.values().sum::<i64>(), 30_000);
    assert!(
        per_partition.values().all(|&n| n > 0),
        "keys spread over the 4 partitions: {per_partition:?}"
    );

    let group = common::unique("group");
    let out = dir.path().join("out");
    let o = finish(run_movie(
        &movie_pipeline(dir.path(), &group),
        &topic,
        &out,
        &["--bounded"],
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let expected = common::movie_job_rows(&input);
    assert!(expected.len() > 20_000);
    let actual = output_rows(&out);
    assert_eq!(actual.len(), expected.len());
    assert!(actual == expected, "same count, different rows");
    // Without checkpoints, a bounded run commits the offsets it read once every sink has
    // published: the group is at the end of every partition.
    assert_eq!(committed(&group, &topic), per_partition);

    // The next run of the group starts where the last one left off: nothing to read.
    let again = dir.path().join("again");
    let o = finish(run_movie(
        &movie_pipeline(dir.path(), &group),
        &topic,
        &again,
        &["--bounded"],
    ));
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("no valid record"), "{}", stderr(&o));
}

/// Offsets by partition (`"0"`, `"1"`, …) of `topic` in the newest checkpoint under `dir`
/// (as `streamctl checkpoints show` prints them); a partition read to its end counts as its
/// record count from `counts`. Empty without a checkpoint.
fn checkpoint_offsets(
    dir: &Path,
    topic: &str,
    counts: &BTreeMap<String, i64>,
) -> BTreeMap<String, i64> {
    let o = streamctl()
        .args(["checkpoints", "show"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    common::kafka_checkpoint_offsets(&String::from_utf8_lossy(&o.stdout), topic, counts)
}

/// Kafka → 15-minute windows → files, with checkpoints every 200 ms, killed with SIGKILL at
/// the narrow moments (crash points) and then at random moments after each attempt's first
/// checkpoint, restarted until it completes: every row is written exactly once, and after
/// every kill the group's committed offsets are no further than the newest checkpoint (an
/// offset is committed only once what it covers is safe). At the end the group is at the
/// end of every partition. `CHAOS_SEED` repeats a run.
#[test]
fn killed_with_sigkill_and_restarted_every_row_is_written_exactly_once() {
    let seed = common::seed();
    let mut rng = common::Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let input = impressions(dir.path(), 80_000);
    let topic = create_topic(4);
    replay(&input, &topic);
    let per_partition = counts(&topic);
    let group = common::unique("group");
    let pipeline = movie_pipeline(dir.path(), &group);
    let out = dir.path().join("out");
    let checkpoints = dir.path().join("checkpoints");
    let start = |crash_at: Option<&str>| {
        let mut c = run_movie(
            &pipeline,
            &topic,
            &out,
            &[
                "--bounded",
                "--checkpoint-interval",
                "200ms",
                "--checkpoint-dir",
            ],
        );
        c.arg(&checkpoints)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(point) = crash_at {
            c.env("STREAMCTL_CRASH_AT", point);
        }
        c.spawn().unwrap()
    };
    // The narrow moments: files prepared but no checkpoint; a checkpoint written but its
    // files not published and its offsets not committed; between publishing two files.
    let mut schedule = vec![
        Some("checkpoint-prepared:2"),
        Some("checkpoint-written:2"),
        Some("publish-between-files:2"),
    ];
    schedule.extend(std::iter::repeat_n(None, 4));
    let (mut kills, mut crashes, mut completed) = (0, 0, false);
    for (attempt, crash_at) in schedule.iter().chain(std::iter::repeat(&None)).enumerate() {
        assert!(attempt < 30, "seed {seed}: the run does not complete");
        let before = common::newest_checkpoint(&checkpoints);
        let mut child = start(*crash_at);
        let status = if crash_at.is_some() || attempt >= schedule.len() {
            common::wait_for(&mut child, Duration::from_secs(180))
        } else {
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut status = None;
            while status.is_none() && common::newest_checkpoint(&checkpoints) == before {
                assert!(
                    Instant::now() < deadline,
                    "seed {seed}: no checkpoint in 2 minutes"
                );
                status = common::wait_for(&mut child, Duration::from_millis(20));
            }
            status.or_else(|| common::wait_for(&mut child, Duration::from_millis(rng.below(600))))
        };
        match status {
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
            }
            Some(s) if s.success() => {
                completed = true;
                break;
            }
            Some(s) => {
                use std::os::unix::process::ExitStatusExt;
                let mut err = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
                assert_eq!(
                    s.signal(),
                    Some(9),
                    "seed {seed}: attempt {attempt} failed: {err}"
                );
                crashes += 1;
            }
        }
        // Whatever was committed is covered by the newest checkpoint.
        let covered = checkpoint_offsets(&checkpoints, &topic, &per_partition);
        for (partition, offset) in committed(&group, &topic) {
            if offset >= 0 {
                let limit = covered.get(&partition).copied().unwrap_or(0);
                assert!(
                    offset <= limit,
                    "seed {seed}: after attempt {attempt}, partition {partition} committed at {offset} but the newest checkpoint is at {limit}"
                );
            }
        }
    }
    assert!(completed);
    assert_eq!(crashes, 3, "seed {seed}: every crash point was reached");
    assert!(kills >= 1, "seed {seed}: no random kill landed");
    let actual = output_rows(&out);
    let expected = common::movie_job_rows(&input);
    assert_eq!(actual.len(), expected.len(), "seed {seed}: {kills} kills");
    assert!(
        actual == expected,
        "seed {seed}: same count, different rows"
    );
    // The final checkpoint's offsets were committed: the group is at the end.
    assert_eq!(committed(&group, &topic), per_partition);
}

#[test]
fn two_processes_in_one_group_split_the_partitions_and_write_what_one_would() {
    let dir = tempfile::tempdir().unwrap();
    let input = impressions(dir.path(), 40_000);
    let topic = create_topic(4);
    replay(&input, &topic);
    let group = common::unique("group");
    let pipeline = movie_pipeline(dir.path(), &group);
    let out = dir.path().join("out");
    let spawn = || {
        run_movie(
            &pipeline,
            &topic,
            &out,
            &["--bounded", "--if-exists", "append"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    };
    // Started together, they join the group in its first rebalance.
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let actual = output_rows(&out);
    let expected = common::movie_job_rows(&input);
    assert_eq!(actual.len(), expected.len());
    assert!(actual == expected, "same count, different rows");
    // Both processes wrote: each file name carries its run's instance.
    let instances: std::collections::HashSet<String> = common::files(&out)
        .iter()
        .filter_map(|f| {
            let name = f.file_name()?.to_string_lossy().to_string();
            Some(name.strip_prefix("part-")?.split('-').next()?.to_string())
        })
        .collect();
    assert_eq!(instances.len(), 2, "{instances:?}");
    assert_eq!(committed(&group, &topic), counts(&topic));
}

#[test]
fn metadata_fields_kafka_time_as_event_time_and_a_kafka_sink_with_keys_and_headers() {
    let dir = tempfile::tempdir().unwrap();
    let input_topic = create_topic(3);
    let output_topic = create_topic(2);
    // Records with event times in their Kafka timestamps only, written by streamctl's sink
    // from a file (so the test also covers the sink's keys and headers).
    let file = dir.path().join("in.csv");
    let mut csv = String::from("user,page,n\n");
    for i in 0..600 {
        csv.push_str(&format!("u{},p{},{i}\n", i % 7, i % 3));
    }
    std::fs::write(&file, csv).unwrap();
    let b = brokers();
    let load = dir.path().join("load.yaml");
    std::fs::write(
        &load,
        format!(
            r#"version: 1
name: load
sources:
  rows:
    type: file
    path: {file}
    format: csv
    schema: {{user: string, page: string, n: int}}
sinks:
  topic:
    type: kafka
    inputs: [rows]
    brokers: {b}
    topic: {input_topic}
    key: user
    headers: {{origin: "'test'", parity: "CASE WHEN n % 2 = 0 THEN 'even' END"}}
    format: json
"#,
            file = file.display()
        ),
    )
    .unwrap();
    let o = finish({
        let mut c = streamctl();
        c.arg("run").arg(&load).args(["--progress", "off"]);
        c
    });
    assert!(o.status.success(), "{}", stderr(&o));
    let dumped: Vec<serde_json::Value> = tool(&["dump", &input_topic])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(dumped.len(), 600);
    for r in &dumped {
        let value: serde_json::Value = serde_json::from_str(r["value"].as_str().unwrap()).unwrap();
        assert_eq!(r["key"], value["user"], "{r}");
        assert_eq!(r["headers"]["origin"], "test");
        let even = value["n"].as_i64().unwrap() % 2 == 0;
        assert_eq!(r["headers"].get("parity").is_some(), even, "{r}");
    }
    // Same key, same partition.
    let mut partition_of: HashMap<String, i64> = HashMap::new();
    for r in &dumped {
        let p = *partition_of
            .entry(r["key"].as_str().unwrap().to_string())
            .or_insert(r["partition"].as_i64().unwrap());
        assert_eq!(p, r["partition"].as_i64().unwrap());
    }

    // Read it back with metadata fields, event time from the Kafka timestamp, into a topic
    // as CSV keyed by the source partition.
    let group = common::unique("group");
    let pipe = dir.path().join("meta.yaml");
    std::fs::write(
        &pipe,
        format!(
            r#"version: 1
name: meta
sources:
  rows:
    type: kafka
    brokers: {b}
    topics: [{input_topic}]
    group_id: {group}
    start_from: earliest
    schema: {{user: string, n: int}}
    metadata: {{k: key, part: partition, off: offset, ts: timestamp, hdrs: headers, t: topic}}
    event_time: {{field: ts, max_out_of_orderness: 1s}}
transforms:
  shaped:
    type: select
    inputs: [rows]
    fields:
      user: user
      n: n
      k: k
      part: part
      off: off
      origin: "JSON_VALUE(hdrs, '$.origin')"
      t: t
sinks:
  out:
    type: kafka
    inputs: [shaped]
    brokers: {b}
    topic: {output_topic}
    key: "CAST(part AS STRING)"
    format: csv
"#
        ),
    )
    .unwrap();
    let o = finish({
        let mut c = streamctl();
        c.arg("run")
            .arg(&pipe)
            .args(["--progress", "off", "--bounded"]);
        c
    });
    assert!(o.status.success(), "{}", stderr(&o));
    let out: Vec<serde_json::Value> = tool(&["dump", &output_topic])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(out.len(), 600);
    let by_n: HashMap<i64, &serde_json::Value> = dumped
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_str(r["value"].as_str().unwrap()).unwrap();
            (v["n"].as_i64().unwrap(), r)
        })
        .collect();
    for r in &out {
        let fields: Vec<&str> = r["value"].as_str().unwrap().split(',').collect();
        let [user, n, k, part, off, origin, t] = fields[..] else {
            panic!("{r}")
        };
        let source = by_n[&n.parse::<i64>().unwrap()];
        assert_eq!(user, source["key"].as_str().unwrap());
        assert_eq!(k, user);
        assert_eq!(part, source["partition"].to_string());
        assert_eq!(off, source["offset"].to_string());
        assert_eq!(origin, "test");
        assert_eq!(t, input_topic);
        assert_eq!(r["key"].as_str().unwrap(), part);
    }
}

#[test]
fn a_missing_topic_and_an_unreachable_broker_fail_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let group = common::unique("group");
    let pipeline = movie_pipeline(dir.path(), &group);
    let missing = common::unique("missing");
    let o = finish(run_movie(
        &pipeline,
        &missing,
        &dir.path().join("out"),
        &["--bounded"],
    ));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("topic `{missing}` does not exist")),
        "{err}"
    );

    // Nothing listens on port 1: the run gives up with a message instead of retrying forever.
    let mut c = streamctl();
    c.arg("run")
        .arg(&pipeline)
        .args(["--progress", "off", "--bounded"])
        .env("KAFKA_BROKERS", "127.0.0.1:1")
        .env("TOPIC", "anything")
        .env(
            "OUTPUT",
            format!("file://{}/", dir.path().join("out2").display()),
        );
    let o = finish(c);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("cannot reach the Kafka brokers at 127.0.0.1:1"),
        "{err}"
    );

    let o = finish({
        let mut c = streamctl();
        c.args(["replay", "Cargo.toml", "--to", "kafka://127.0.0.1:1/t"]);
        c
    });
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("cannot reach the Kafka brokers"),
        "{}",
        stderr(&o)
    );
}

/// A member joining a running group takes partitions from the first one, which hands them
/// over at a checkpoint: every record is written exactly once by one of the two.
#[test]
fn partitions_handed_over_to_a_member_that_joins_are_read_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let topic = create_topic(4);
    let group = common::unique("group");
    let b = brokers();
    let pipeline = dir.path().join("copy.yaml");
    std::fs::write(
        &pipeline,
        format!(
            r#"version: 1
name: copy
sources:
  rows:
    type: kafka
    brokers: {b}
    topic: {topic}
    group_id: {group}
    schema: {{id: int, user: string}}
sinks:
  out:
    type: s3
    inputs: [rows]
    url: file://{out}/
    path: "{{user}}/"
    format: json
"#,
            out = dir.path().join("out").display()
        ),
    )
    .unwrap();
    let batch = |from: u64, to: u64| {
        let file = dir.path().join(format!("batch-{from}.jsonl"));
        let text: String = (from..to)
            .map(|i| format!("{{\"id\":{i},\"user\":\"u{}\"}}\n", i % 13))
            .collect();
        std::fs::write(&file, text).unwrap();
        let o = streamctl()
            .arg("replay")
            .arg(&file)
            .args(["--to", &format!("kafka://{b}/{topic}"), "--key", "user"])
            .args(["--progress", "off"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    };
    let member = |name: &str| {
        streamctl()
            .arg("run")
            .arg(&pipeline)
            .args(["--progress", "off", "--if-exists", "append"])
            .args(["--checkpoint-interval", "500ms", "--checkpoint-dir"])
            .arg(dir.path().join(name))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let ids = || -> Vec<i64> {
        let mut ids = Vec::new();
        for f in common::files(&dir.path().join("out")) {
            if f.file_name().unwrap().to_string_lossy().starts_with('.') {
                continue;
            }
            for line in std::fs::read_to_string(&f).unwrap().lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                ids.push(v["id"].as_i64().unwrap());
            }
        }
        ids.sort_unstable();
        ids
    };
    let wait_for_ids = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while ids().len() < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} records written",
                ids().len()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    batch(0, 3000);
    let mut first = member("first");
    wait_for_ids(3000);
    // The second member joins: the first hands two partitions over, at a checkpoint.
    let mut second = member("second");
    std::thread::sleep(Duration::from_secs(8));
    batch(3000, 6000);
    wait_for_ids(6000);
    for child in [&mut first, &mut second] {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    }
    for child in [first, second] {
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    }
    let written = ids();
    assert_eq!(
        written,
        (0..6000).collect::<Vec<i64>>(),
        "every record exactly once"
    );
    // Both members wrote records of the second batch.
    let instances: std::collections::HashSet<String> = common::files(&dir.path().join("out"))
        .iter()
        .filter_map(|f| {
            let name = f.file_name()?.to_string_lossy().to_string();
            Some(name.strip_prefix("part-")?.split('-').next()?.to_string())
        })
        .collect();
    assert_eq!(instances.len(), 2, "{instances:?}");
    // The savepoints' offsets were committed (a partition no record went to has none).
    let mut expected = counts(&topic);
    expected.retain(|_, n| *n > 0);
    let mut committed = committed(&group, &topic);
    committed.retain(|p, _| expected.contains_key(p));
    assert_eq!(committed, expected);
}

/// A pattern subscription reads every matching topic (and no other), and `start_from:
/// timestamp` starts each partition where the broker's offsets-for-times lookup says (records
/// written by another client with explicit Kafka timestamps; the lookup asked again by that
/// client). Against Kafka that is record 100 of each topic; the test broker (tansu 0.6) answers
/// offset 0 for every instant, so there every record is expected.
#[test]
fn a_topic_pattern_from_a_timestamp_reads_the_matching_topics_from_that_instant() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = common::unique("pattern");
    for (name, partitions) in [("a", 2), ("b", 3), ("c", 1)] {
        let topic = format!("{prefix}-{name}");
        tool(&["create", &topic, &partitions.to_string()]);
        // 200 records one second apart from 00:16:40 on 1970-01-01, keyed over 5 keys.
        let records: String = (0..200)
            .map(|i| {
                format!(
                    "{}\n",
                    serde_json::json!({
                        "key": format!("k{}", i % 5),
                        "value": format!("{{\"id\":{i},\"t\":\"{name}\"}}"),
                        "timestamp": 1_000_000 + i * 1000,
                    })
                )
            })
            .collect();
        tool_with_input(&["produce", &topic], &records);
    }
    let group = common::unique("group");
    let out = dir.path().join("out");
    let pipeline = dir.path().join("pattern.yaml");
    std::fs::write(
        &pipeline,
        format!(
            r#"version: 1
name: pattern
sources:
  rows:
    type: kafka
    brokers: {b}
    topic_pattern: "{prefix}-(a|b)"
    group_id: {group}
    start_from: timestamp
    start_timestamp: 1970-01-01T00:18:20Z
    schema: {{id: int, t: string}}
sinks:
  out:
    type: s3
    inputs: [rows]
    url: file://{out}/
    path: "{{t}}/"
    format: json
"#,
            b = brokers(),
            out = out.display()
        ),
    )
    .unwrap();
    let o = finish({
        let mut c = streamctl();
        c.arg("run")
            .arg(&pipeline)
            .args(["--progress", "off", "--bounded"]);
        c
    });
    assert!(o.status.success(), "{}", stderr(&o));
    let mut read: Vec<(String, i64)> = Vec::new();
    for f in common::files(&out) {
        if f.file_name().unwrap().to_string_lossy().starts_with('.') {
            continue;
        }
        for line in std::fs::read_to_string(&f).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            read.push((
                v["t"].as_str().unwrap().to_string(),
                v["id"].as_i64().unwrap(),
            ));
        }
    }
    read.sort();
    // 00:18:20 is record 100's timestamp: in a and b, every record at or after the offset the
    // broker gives for it in the record's partition; none of c.
    let mut expected: Vec<(String, i64)> = Vec::new();
    for name in ["a", "b"] {
        let topic = format!("{prefix}-{name}");
        let starts: BTreeMap<String, i64> =
            serde_json::from_str(&tool(&["offsets-for-times", &topic, "1100000"])).unwrap();
        for line in tool(&["dump", &topic]).lines() {
            let r: serde_json::Value = serde_json::from_str(line).unwrap();
            let start = starts[&r["partition"].to_string()];
            if start >= 0 && r["offset"].as_i64().unwrap() >= start {
                let v: serde_json::Value =
                    serde_json::from_str(r["value"].as_str().unwrap()).unwrap();
                expected.push((name.to_string(), v["id"].as_i64().unwrap()));
            }
        }
    }
    expected.sort();
    assert!(!expected.is_empty());
    assert_eq!(read, expected);
}

/// A partition with no records stops holding the watermark once `idle_timeout` passes: an
/// unbounded run writes the windows the other partitions closed while it keeps running
/// (without idleness the empty partition would hold every window open until the end).
#[test]
fn an_empty_partition_stops_holding_windows_back_after_the_idle_timeout() {
    let topic = create_topic(4);
    // 60 records a second apart on partitions 0 to 2 (partition 3 gets none), key = partition.
    let records: String = (0..180)
        .map(|i| {
            format!(
                "{}\n",
                serde_json::json!({
                    "key": format!("p{}", i % 3),
                    "value": format!("{{\"k\":\"p{}\",\"t\":{}}}", i % 3, (i / 3) * 1000),
                    "timestamp": 0,
                    "partition": i % 3,
                })
            )
        })
        .collect();
    tool_with_input(&["produce", &topic], &records);
    let dir = tempfile::tempdir().unwrap();
    let pipeline = counts_per_key_pipeline(dir.path(), &topic, "2s");
    let mut child = streamctl()
        .arg("run")
        .arg(&pipeline)
        .args(["--progress", "off"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Rows arrive on standard output while the run goes on: read them on a thread.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // Windows [0 s, 10 s) to [40 s, 50 s) close once partition 3 is idle (the newest event
    // is at 59 s on every other partition): 5 windows × 3 keys, 10 records each.
    let mut rows = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while rows.len() < 15 && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            if line.starts_with("k,") || line.starts_with("window") || !line.contains(',') {
                continue;
            }
            rows.push(line);
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the run ended ({status}) before writing the windows: {rows:?}");
        }
    }
    let _ = child.kill();
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        rows.len(),
        15,
        "windows written while the run goes on: {rows:?}\n{}",
        stderr(&o)
    );
    for key in ["p0", "p1", "p2"] {
        let of_key: Vec<&String> = rows.iter().filter(|r| r.contains(key)).collect();
        assert_eq!(of_key.len(), 5, "{rows:?}");
        assert!(of_key.iter().all(|r| r.ends_with(",10")), "{rows:?}");
    }
}

/// One generated movie impression: timestamp (unique: one second apart), movie, user.
type Impression = (i64, String, String);

fn impression(v: &serde_json::Value) -> Impression {
    (
        v["timestamp"].as_i64().unwrap(),
        v["movieId"].as_str().unwrap().to_string(),
        v["userId"].as_str().unwrap().to_string(),
    )
}

/// The records [`start_sink_run`]'s generator makes (same preset, seed, interval), written by
/// `streamctl generate`, by timestamp: what the topic must hold.
fn generated_impressions(dir: &Path, count: u64) -> BTreeMap<i64, Impression> {
    let file = dir.join("expected.jsonl");
    let o = streamctl()
        .args(["generate", "movie_impressions", "--interval", "1s"])
        .args(["--count", &count.to_string(), "-o"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let expected: BTreeMap<i64, Impression> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| {
            let r = impression(&serde_json::from_str(l).unwrap());
            (r.0, r)
        })
        .collect();
    assert_eq!(expected.len() as u64, count, "timestamps are unique");
    expected
}

/// Starts a paced pipeline, `count` generated impressions at `rate` a second → a `type:
/// kafka` sink (key `movieId`, JSON) into `topic` on `brokers`, with checkpoints every second
/// in `dir/checkpoints` and its standard error in `dir/run.log`; `properties` for the
/// producer.
fn start_sink_run(
    dir: &Path,
    count: u64,
    rate: u64,
    brokers: &str,
    topic: &str,
    properties: &[(&str, &str)],
) -> std::process::Child {
    let properties: Vec<String> = properties
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    let pipeline = dir.join("sink.yaml");
    std::fs::write(
        &pipeline,
        format!(
            r#"version: 1
name: kafka-sink
sources:
  impressions:
    type: generator
    preset: movie_impressions
    count: {count}
    rate: {rate}
    interval: 1s
sinks:
  topic:
    type: kafka
    inputs: [impressions]
    brokers: {brokers}
    topic: {topic}
    key: movieId
    format: json
    properties: {{{properties}}}
"#,
            properties = properties.join(", ")
        ),
    )
    .unwrap();
    streamctl()
        .arg("run")
        .arg(&pipeline)
        .args(["--progress", "off", "--checkpoint-interval", "1s"])
        .arg("--checkpoint-dir")
        .arg(dir.join("checkpoints"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("run.log")).unwrap())
        .spawn()
        .unwrap()
}

/// Reads `topic` on `brokers` back with another client (confluent-kafka) and checks it holds
/// exactly the `expected` records: none missing, none written twice, none that was not
/// generated, each with its key and in the order of its key's records. Prints the counts;
/// `context` (logs) goes into failure messages.
fn check_sink_topic(
    kafka: &common::Service,
    brokers: &str,
    topic: &str,
    expected: &BTreeMap<i64, Impression>,
    context: &dyn Fn() -> String,
) {
    let dumped: Vec<serde_json::Value> =
        common::kafka_broker::kafka_tool(kafka, brokers, &["dump", topic])
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    let mut seen: BTreeMap<i64, u32> = BTreeMap::new();
    // Per key, the timestamps in offset order (the dump lists each partition in order).
    let mut last_of_key: HashMap<String, i64> = HashMap::new();
    let mut out_of_order = Vec::new();
    let mut strangers = Vec::new();
    for r in &dumped {
        let value: serde_json::Value = serde_json::from_str(r["value"].as_str().unwrap())
            .unwrap_or_else(|e| panic!("{r}: {e}"));
        let got = impression(&value);
        if expected.get(&got.0) != Some(&got) {
            strangers.push(r.to_string());
            continue;
        }
        assert_eq!(r["key"].as_str(), Some(got.1.as_str()), "{r}");
        *seen.entry(got.0).or_default() += 1;
        if let Some(&last) = last_of_key.get(&got.1)
            && last >= got.0
        {
            out_of_order.push(r.to_string());
        }
        last_of_key.insert(got.1.clone(), got.0);
    }
    let missing: Vec<i64> = expected
        .keys()
        .filter(|t| !seen.contains_key(t))
        .copied()
        .collect();
    let twice: Vec<(i64, u32)> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(t, n)| (*t, *n))
        .collect();
    let summary = format!(
        "{} records in the topic for {} generated: {} missing (first: {:?}), {} written more than once (first: {:?}), {} not generated (first: {:?}), {} out of their key's order (first: {:?})",
        dumped.len(),
        expected.len(),
        missing.len(),
        missing.first(),
        twice.len(),
        twice.first(),
        strangers.len(),
        strangers.first(),
        out_of_order.len(),
        out_of_order.first()
    );
    println!("{summary}");
    assert!(
        missing.is_empty() && strangers.is_empty(),
        "{summary}\n{}",
        context()
    );
    assert!(
        twice.is_empty() && out_of_order.is_empty(),
        "{summary}\n{}",
        context()
    );
}

/// Waits up to `limit` for `run` to end by itself and fails the test unless it succeeded;
/// `context` (logs) goes into failure messages.
fn expect_success(run: &mut std::process::Child, limit: Duration, context: &dyn Fn() -> String) {
    let Some(status) = common::wait_for(run, limit) else {
        run.kill().unwrap();
        let _ = run.wait();
        panic!("the run did not end within {limit:?}:\n{}", context());
    };
    assert!(status.success(), "{status}:\n{}", context());
}

/// The Kafka sink across broker restarts: a paced pipeline (generated impressions →
/// `type: kafka` sink, checkpoints every second) keeps writing while its broker (a tansu of
/// this test's own, with S3 storage so a restart keeps the log) is killed with SIGKILL and
/// restarted, then stopped with SIGTERM and restarted, both in the middle of the run (see
/// below for when exactly). The broker is stopped between two produce requests (killed
/// inside one, the test broker loses the batch by itself); what the client does when a
/// connection dies inside one is tested by
/// `a_kafka_sink_loses_nothing_when_connections_are_cut_inside_produce_requests`.
///
/// The guarantee tested is the documented one (README, "Checkpoints and exactly-once
/// output"): the sink is at-least-once. The run must end by itself, successfully (no hang, no
/// error: checkpoints taken during an outage wait for the acknowledgements), and every
/// generated record must be in the topic afterwards, read back with another client
/// (confluent-kafka), with its key, in the order of its key's records. Records written twice
/// are counted and printed; within one run of streamctl the idempotent producer must not
/// write any twice, so any duplicate fails the test too.
#[test]
fn a_kafka_sink_loses_nothing_when_its_broker_is_killed_and_restarted_mid_run() {
    use common::kafka_broker::{Broker, Stop, kafka_tool};

    // 30 s of records at 1000/s: both restarts (about 20 s with the SIGTERM's wait) land
    // inside the run.
    const RECORDS: u64 = 30_000;
    const RATE: u64 = 1_000;
    let dir = tempfile::tempdir().unwrap();
    let s3 = common::service("s3");
    let kafka = common::service("kafka");
    let bucket = common::unique("sink-restart");
    common::s3_client(&s3, &["mkbucket", &bucket]);
    let mut broker = Broker::new(&kafka, &s3, &bucket, dir.path().join("broker.log"));
    let b = broker.address();
    let topic = common::unique("sink-restart");
    kafka_tool(&kafka, &b, &["create", &topic, "3"]);
    let expected = generated_impressions(dir.path(), RECORDS);

    let checkpoints = dir.path().join("checkpoints");
    let log = dir.path().join("run.log");
    let mut run = start_sink_run(dir.path(), RECORDS, RATE, &b, &topic, &[]);
    let run_log = || std::fs::read_to_string(&log).unwrap_or_default();
    // Waits for checkpoint `id` (a checkpoint completes only after the sink's flush: every
    // record before it acknowledged), failing the test if the run ends or takes too long.
    let await_checkpoint = |run: &mut std::process::Child, id: u64, broker: &Broker| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while common::newest_checkpoint(&checkpoints) < id {
            if let Some(status) = run.try_wait().unwrap() {
                panic!(
                    "the run ended ({status}) before checkpoint {id}:\n{}\nbroker:\n{}",
                    run_log(),
                    broker.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no checkpoint {id} within 30 s:\n{}\nbroker:\n{}",
                run_log(),
                broker.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    // Each restart: the broker goes down (SIGKILL, then SIGTERM), stays down 2 s while the
    // run keeps producing into librdkafka's queue and a checkpoint falls due (its flush waits
    // for the broker), comes back, and the run must complete two more checkpoints.
    //
    // streamctl is paused (SIGSTOP) while the broker stops, and resumed before it restarts:
    // tansu with S3 storage records a batch's producer sequence and offsets before it stores
    // the batch, so a SIGKILL inside a produce request loses that batch for good (the retry
    // is answered as a duplicate; an independent client, confluent-kafka, loses records the
    // same way). Pausing the client lets the broker finish the requests it has and makes the
    // crash land between two of them, as it would be harmless on Kafka itself. The SIGTERM
    // needs the pause too: tansu exits only once its connections are idle.
    await_checkpoint(&mut run, 2, &broker);
    for how in [Stop::Kill, Stop::Term] {
        signal(&run, libc::SIGSTOP);
        broker.wait_idle(Duration::from_secs(5));
        broker.stop_with(how);
        signal(&run, libc::SIGCONT);
        let before = common::newest_checkpoint(&checkpoints);
        std::thread::sleep(Duration::from_secs(2));
        assert!(
            run.try_wait().unwrap().is_none(),
            "the run ended while the broker was down ({how:?}):\n{}",
            run_log()
        );
        // No checkpoint completes while its records cannot be acknowledged (one may have
        // been storing its file when the run was paused).
        let during = common::newest_checkpoint(&checkpoints);
        assert!(
            during <= before + 1,
            "checkpoints {before} to {during} completed while the broker was down ({how:?})"
        );
        broker.start();
        let next = common::newest_checkpoint(&checkpoints) + 2;
        await_checkpoint(&mut run, next, &broker);
    }
    let context = || format!("run:\n{}\nbroker:\n{}", run_log(), broker.log_tail());
    expect_success(&mut run, Duration::from_secs(60), &context);
    check_sink_topic(&kafka, &b, &topic, &expected, &context);
}

/// The Kafka sink when connections die inside produce requests, on the client's side: the
/// pipeline of the broker-restart test above (paced, checkpoints every second) writes to a
/// broker of its own (tansu, memory storage) through our fault-injecting proxy
/// (tests/common/kafka_proxy.rs), which for most of the run cuts connections in the middle
/// of produce requests (the broker never gets them whole), loses the broker's answers to
/// produce requests it stored, and resets connections between requests. The run must end
/// by itself, successfully, and the topic (read back with confluent-kafka) must hold every
/// generated record exactly once, with its key, in its key's order; the proxy must have
/// injected at least 3 faults of each kind, and have seen every batch of a lost answer sent
/// again (same producer id, epoch and sequence: the broker answers it as a duplicate rather
/// than storing it twice). `CHAOS_SEED` repeats a run's schedule of faults (not its timing).
/// About 17 s.
#[test]
fn a_kafka_sink_loses_nothing_when_connections_are_cut_inside_produce_requests() {
    use common::kafka_broker::{Broker, Storage, kafka_tool};
    use common::kafka_proxy::{Faults, Proxy};
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    // 15 s of records at 1000/s, faults for the first 12 s.
    const RECORDS: u64 = 15_000;
    const RATE: u64 = 1_000;
    let seed = common::seed();
    let dir = tempfile::tempdir().unwrap();
    let kafka = common::service("kafka");
    let proxy = Proxy::bind();
    let b = proxy.address();
    let broker = Broker::with(
        &kafka,
        Storage::Memory,
        Some(b.clone()),
        dir.path().join("broker.log"),
    );
    let faults = Arc::new(Faults::new(seed, Duration::from_millis(300)));
    faults.failing.store(false, Ordering::Relaxed);
    proxy.start(broker.address(), faults.clone());
    let topic = common::unique("sink-proxy");
    kafka_tool(&kafka, &b, &["create", &topic, "3"]);
    let expected = generated_impressions(dir.path(), RECORDS);

    let log = dir.path().join("run.log");
    let started = Instant::now();
    faults.failing.store(true, Ordering::Relaxed);
    // librdkafka waits twice as long before each reconnection (from 100 ms), until it has
    // not reconnected for reconnect.backoff.max.ms (10 s by default): capped at 0.5 s, so the
    // faults keep coming instead of being spaced out ever more. Delivery does not depend on
    // it.
    let mut run = start_sink_run(
        dir.path(),
        RECORDS,
        RATE,
        &b,
        &topic,
        &[("reconnect.backoff.max.ms", "500")],
    );
    let context = || {
        format!(
            "seed {seed}; proxy: {}\nrun:\n{}\nbroker:\n{}",
            faults.summary(),
            std::fs::read_to_string(&log).unwrap_or_default(),
            broker.log_tail()
        )
    };
    while started.elapsed() < Duration::from_secs(12) {
        assert!(
            run.try_wait().unwrap().is_none(),
            "the run ended while faults were on:\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    faults.failing.store(false, Ordering::Relaxed);
    // Checkpoints (each waiting for every record before it to be acknowledged) completed
    // while the faults went on.
    let checkpoints = common::newest_checkpoint(&dir.path().join("checkpoints"));
    expect_success(&mut run, Duration::from_secs(30), &context);
    let elapsed = started.elapsed();
    println!(
        "seed {seed}: proxy: {} (run: {elapsed:?}, {checkpoints} checkpoints while failing)",
        faults.summary()
    );
    assert!(
        checkpoints >= 4,
        "seed {seed}: only {checkpoints} checkpoints in 12 s of faults:\n{}",
        context()
    );
    check_sink_topic(&kafka, &b, &topic, &expected, &context);
    for (kind, n) in [
        ("connections cut mid-request", &faults.cut_mid_request),
        ("lost answers", &faults.lost_answers),
        ("resets between requests", &faults.resets),
    ] {
        assert!(
            n.load(Ordering::Relaxed) >= 3,
            "seed {seed}: too few {kind} injected: {}",
            faults.summary()
        );
    }
    // The producer did not know the broker stored the batches of the lost answers: it sent
    // each again (same producer id, epoch and sequence), and none is in the topic twice.
    assert_eq!(
        faults.not_resent(),
        Vec::new(),
        "seed {seed}: batches of lost answers not sent again: {}",
        faults.summary()
    );
}

/// Sends `sig` to `child`.
fn signal(child: &std::process::Child, sig: i32) {
    // SAFETY: kill(2) on a child this test spawned and has not reaped yet.
    let rc = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(rc, 0, "kill({sig})");
}

/// Records read ahead while the group forms reach the engine in the order they were read
/// across partitions, not one partition after another: partition 0 holds 2,000,000 records and
/// partitions 1 to 3 two thousand each over the same event times. Handed over partition by
/// partition, the engine spent longer than `idle_timeout` on partition 0's while the others
/// had nothing, they went idle, the watermark jumped to partition 0's newest time, and their
/// records, read ahead but not yet applied, were all late (this test then fails: processing
/// 2M records takes seconds in a debug build). In read order the others' first runs come
/// after at most one fetch of partition 0 (the broker's 5 MiB answer), well within the 1 s.
#[test]
fn records_read_ahead_reach_the_engine_interleaved_across_partitions() {
    let topic = create_topic(4);
    const BIG: i64 = 2_000_000;
    const SMALL: i64 = 2_000;
    let mut records = String::new();
    let mut push = |partition: i64, t: i64| {
        let value = format!("{{\"k\":\"p{partition}\",\"t\":{t}}}");
        records.push_str(
            &serde_json::json!({"key": format!("p{partition}"), "value": value, "timestamp": 0, "partition": partition})
                .to_string(),
        );
        records.push('\n');
    };
    // Event times 0 to 2,000 s on every partition: 1 ms apart on partition 0, 1 s apart on
    // the others.
    for i in 0..BIG {
        push(0, i);
    }
    for partition in 1..4 {
        for j in 0..SMALL {
            push(partition, j * (BIG / SMALL));
        }
    }
    tool_with_input(&["produce", &topic], &records);
    let dir = tempfile::tempdir().unwrap();
    let pipeline = counts_per_key_pipeline(dir.path(), &topic, "1s");
    let o = streamctl()
        .arg("run")
        .arg(&pipeline)
        .args(["--bounded", "--progress", "off"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    // Records per partition over all windows (a late record is in none).
    let mut per_partition: BTreeMap<String, i64> = BTreeMap::new();
    for row in out.lines().skip(1) {
        let fields: Vec<&str> = row.split(',').collect();
        *per_partition.entry(fields[2].to_string()).or_default() +=
            fields[3].parse::<i64>().unwrap();
    }
    let expected: BTreeMap<String, i64> = (0..4)
        .map(|p| (format!("p{p}"), if p == 0 { BIG } else { SMALL }))
        .collect();
    assert_eq!(per_partition, expected, "{}", stderr(&o));
}
