//! S3 end to end, through the binary, against the local S3 server started by
//! `scripts/services/s3.sh` (moto on 127.0.0.1): the movie-impressions job lands the same
//! buckets and rows in S3 as in a directory, read back with an independent client (boto3) and
//! with pyarrow's Hive partition discovery; a checkpointed run into S3 killed with SIGKILL and
//! restarted leaves every row exactly once; a proxy of our own that fails requests (503
//! SlowDown, 500, connections reset mid-upload, answers lost after S3 acted) loses and
//! duplicates nothing; start-up errors say what to fix. Endpoint and credentials reach
//! streamctl only through the standard AWS variables. Every test uses its own bucket.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::s3_client as client;
use common::s3_proxy::{Faults, start_proxy};
use common::{Rng, Service, seed, wait_for};

fn s3() -> Service {
    common::service("s3")
}

/// streamctl with the S3 server's standard AWS variables.
fn streamctl(s3: &Service) -> Command {
    common::streamctl_with_aws(s3)
}

fn bucket(s3: &Service) -> String {
    let name = common::unique("streamctl-test");
    client(s3, &["mkbucket", &name]);
    name
}

/// Every object under `prefix`: relative key → text.
fn objects(s3: &Service, bucket: &str, prefix: &str) -> BTreeMap<String, String> {
    client(s3, &["objects", bucket, prefix])
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let key = v["key"].as_str().unwrap();
            (
                key.strip_prefix(prefix).unwrap().to_string(),
                v["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn open_uploads(s3: &Service, bucket: &str) -> Vec<String> {
    client(s3, &["uploads", bucket, ""])
        .lines()
        .map(str::to_string)
        .collect()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Every file under `dir`: relative path → text.
fn local_files(dir: &Path) -> BTreeMap<String, String> {
    common::files(dir)
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            (rel, std::fs::read_to_string(&p).unwrap())
        })
        .collect()
}

/// Data rows of CSV texts (headers dropped), sorted.
fn csv_rows<'a>(texts: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut rows: Vec<String> = texts
        .flat_map(|t| t.lines().skip(1).map(str::to_string))
        .collect();
    rows.sort();
    rows
}

/// Bucket directory of each file, with its data rows: what a reader of the layout sees
/// (object names carry a per-run instance id, so they differ between runs).
fn by_bucket(files: &BTreeMap<String, String>) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, text) in files {
        let dir = key.rsplit_once('/').map_or("", |(d, _)| d).to_string();
        out.entry(dir)
            .or_default()
            .extend(text.lines().skip(1).map(str::to_string));
    }
    for rows in out.values_mut() {
        rows.sort();
    }
    out
}

fn generate(s3: &Service, path: &Path, count: u64) {
    let o = streamctl(s3)
        .args([
            "generate",
            "movie-impressions",
            "--disorder",
            "4s",
            "--count",
        ])
        .arg(count.to_string())
        .arg("-o")
        .arg(path)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn the_movie_impressions_job_writes_the_same_buckets_and_rows_to_s3_as_to_a_directory() {
    let s3 = s3();
    let bucket = bucket(&s3);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("impressions.jsonl");
    generate(&s3, &input, 200_000);
    let run = |output: &str| {
        let o = streamctl(&s3)
            .args([
                "run",
                "pipelines/movie-impressions-local.yaml",
                "--progress",
                "off",
            ])
            .env("INPUT", &input)
            .env("OUTPUT", output)
            .output()
            .unwrap();
        assert!(o.status.success(), "{output}: {}", stderr(&o));
    };
    let local = dir.path().join("out");
    run(&format!("file://{}/", local.display()));
    run(&format!("s3://{bucket}/impressions/"));
    let expected = local_files(&local);
    let actual = objects(&s3, &bucket, "impressions/");
    assert!(expected.len() > 50, "{} files", expected.len());
    assert_eq!(actual.len(), expected.len());
    assert_eq!(by_bucket(&actual), by_bucket(&expected));
    // Keys are `yyyy-MM-dd--HH/<movieId>/part-<instance>-<epoch>-<n>.csv`.
    for key in actual.keys() {
        let parts: Vec<&str> = key.split('/').collect();
        assert_eq!(parts.len(), 3, "{key}");
        assert_eq!(parts[0].len(), "2019-01-07--07".len(), "{key}");
        assert!(
            parts[2].starts_with("part-") && parts[2].ends_with(".csv"),
            "{key}"
        );
    }
    assert!(open_uploads(&s3, &bucket).is_empty());

    // A second run into the same prefix refuses to mix with the first's output.
    let o = streamctl(&s3)
        .args([
            "run",
            "pipelines/movie-impressions-local.yaml",
            "--progress",
            "off",
        ])
        .env("INPUT", &input)
        .env("OUTPUT", format!("s3://{bucket}/impressions/"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("already holds files"), "{}", stderr(&o));
}

#[test]
fn hive_style_output_reads_back_with_pyarrow_partition_discovery() {
    let s3 = s3();
    let bucket = bucket(&s3);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("impressions.jsonl");
    generate(&s3, &input, 30_000);
    let pipeline = dir.path().join("hive.yaml");
    std::fs::write(
        &pipeline,
        std::fs::read_to_string("pipelines/movie-impressions-local.yaml")
            .unwrap()
            .replace(
                "    format: csv",
                "    layout: hive\n    success_marker: true\n    format: csv",
            )
            .replace(
                "fields: [movieId, userId, impressions, latestImpression]",
                "fields: [userId, impressions, latestImpression]",
            ),
    )
    .unwrap();
    let o = streamctl(&s3)
        .arg("run")
        .arg(&pipeline)
        .args(["--progress", "off"])
        .env("INPUT", &input)
        .env("OUTPUT", format!("s3://{bucket}/hive/"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // pyarrow finds dt and movieId as columns from the key layout alone.
    let mut from_pyarrow: Vec<String> = client(&s3, &["hive", &bucket, "hive", "csv"])
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let text = |k: &str| match &v[k] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!(
                "{},{},{},{},{}",
                text("dt"),
                text("movieId"),
                text("userId"),
                text("impressions"),
                text("latestImpression")
            )
        })
        .collect();
    from_pyarrow.sort();
    // The same rows, computed from the keys and contents read with boto3; every hour is
    // finished (the input ended), so each has its `_SUCCESS` marker.
    let mut from_keys = Vec::new();
    let all = objects(&s3, &bucket, "hive/");
    let hours: std::collections::BTreeSet<&str> =
        all.keys().map(|k| k.split('/').next().unwrap()).collect();
    for hour in &hours {
        assert_eq!(
            all.get(&format!("{hour}/_SUCCESS")).map(String::as_str),
            Some("")
        );
    }
    for (key, text) in all.iter().filter(|(k, _)| !k.ends_with("/_SUCCESS")) {
        let levels: Vec<&str> = key.split('/').collect();
        let dt = levels[0].strip_prefix("dt=").unwrap();
        let movie = levels[1].strip_prefix("movieId=").unwrap();
        for row in text.lines().skip(1) {
            from_keys.push(format!("{dt},{movie},{row}"));
        }
    }
    from_keys.sort();
    assert!(from_keys.len() > 1000);
    assert_eq!(from_pyarrow, from_keys);
}

#[test]
fn start_up_errors_say_what_to_fix() {
    let s3 = s3();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("impressions.jsonl");
    generate(&s3, &input, 1_000);
    let run = |command: &mut Command, extra: &[&str]| {
        let o = command
            .args([
                "run",
                "pipelines/movie-impressions-local.yaml",
                "--progress",
                "off",
            ])
            .args(extra)
            .env("INPUT", &input)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        stderr(&o)
    };
    let missing = common::unique("no-such-bucket");
    let output = format!("s3://{missing}/x/");
    let err = run(streamctl(&s3).env("OUTPUT", &output), &[]);
    assert!(
        err.contains(&format!("bucket `{missing}` does not exist")),
        "{err}"
    );
    let err = run(
        streamctl(&s3)
            .env("OUTPUT", &output)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY"),
        &[],
    );
    assert!(err.contains("no AWS credentials found"), "{err}");
    assert!(err.contains("AWS_ACCESS_KEY_ID"), "{err}");
    let checkpoints = format!("s3://{missing}/checkpoints/");
    let err = run(
        streamctl(&s3).env("OUTPUT", "file:///tmp/unused/"),
        &["--checkpoint-dir", &checkpoints],
    );
    assert!(err.contains("checkpoint location"), "{err}");
    assert!(err.contains("does not exist"), "{err}");
    // A secret never appears, even in errors about credentials.
    let err = run(
        streamctl(&s3)
            .env("OUTPUT", &output)
            .env("AWS_SECRET_ACCESS_KEY", "very-secret-value"),
        &[],
    );
    assert!(!err.contains("very-secret-value"), "{err}");
}

/// A glob of gzip objects in S3 as a `file` source gives what the same files give locally.
#[test]
fn a_file_source_reads_a_glob_of_gzip_objects_from_s3() {
    let s3 = s3();
    let bucket = bucket(&s3);
    let dir = tempfile::tempdir().unwrap();
    let all = dir.path().join("all.jsonl");
    generate(&s3, &all, 60_000);
    let text = std::fs::read_to_string(&all).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let local_in = dir.path().join("in");
    std::fs::create_dir_all(&local_in).unwrap();
    for (i, part) in lines.chunks(lines.len().div_ceil(3)).enumerate() {
        let path = local_in.join(format!("part-{i}.jsonl.gz"));
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        gz.write_all((part.join("\n") + "\n").as_bytes()).unwrap();
        gz.finish().unwrap();
        let key = format!("landing/2019/part-{i}.jsonl.gz");
        client(&s3, &["put", &bucket, &key, path.to_str().unwrap()]);
    }
    // Not matched: another level, another extension.
    client(
        &s3,
        &[
            "put",
            &bucket,
            "landing/2019/x/part-9.jsonl.gz",
            all.to_str().unwrap(),
        ],
    );
    client(
        &s3,
        &[
            "put",
            &bucket,
            "landing/2019/notes.txt",
            all.to_str().unwrap(),
        ],
    );
    let run = |input: String, out: &Path| {
        let o = streamctl(&s3)
            .args([
                "run",
                "pipelines/movie-impressions-local.yaml",
                "--progress",
                "off",
            ])
            .env("INPUT", input)
            .env("OUTPUT", format!("file://{}/", out.display()))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
    };
    run(
        format!("{}/*.jsonl.gz", local_in.display()),
        &dir.path().join("local"),
    );
    run(
        format!("s3://{bucket}/landing/2019/*.jsonl.gz"),
        &dir.path().join("s3"),
    );
    let expected = csv_rows(local_files(&dir.path().join("local")).values());
    assert!(expected.len() > 1000);
    assert_eq!(
        csv_rows(local_files(&dir.path().join("s3")).values()),
        expected
    );
}

// ----- SIGKILL chaos into S3 ----------------------------------------------------------------

/// Per movie and user per minute into `${OUTPUT}`, in small files; `extra` adds sinks.
/// Impressions read from the files `split_input` wrote.
fn file_source(dir: &Path) -> String {
    format!(
        r#"    type: file
    path: {dir}/in/*.jsonl
    schema: {{movieId: string, userId: string, timestamp: timestamp_ms}}"#,
        dir = dir.display()
    )
}

/// Generated impressions, at most `rate` a second when given: a run that lasts long enough
/// for kills to land at random moments however fast the machine is.
fn generated_source(count: u64, rate: Option<u32>) -> String {
    let rate = rate.map(|r| format!("\n    rate: {r}")).unwrap_or_default();
    format!(
        r#"    type: generator
    preset: movie_impressions
    count: {count}
    partitions: 3
    disorder: 4s{rate}"#
    )
}

fn chaos_pipeline(dir: &Path, source: &str, max_bytes: &str, extra: &str) -> PathBuf {
    chaos_pipeline_named(dir, "pipeline.yaml", source, max_bytes, extra)
}

fn chaos_pipeline_named(
    dir: &Path,
    file_name: &str,
    source: &str,
    max_bytes: &str,
    extra: &str,
) -> PathBuf {
    let text = format!(
        r#"version: 1
name: s3-chaos
sources:
  impressions:
{source}
    event_time: {{field: timestamp, max_out_of_orderness: 4s}}
transforms:
  per_user:
    type: window
    inputs: [impressions]
    window: {{type: tumbling, size: 1m}}
    group_by: [movieId, userId]
    aggregates: {{n: COUNT(*), last: MAX(timestamp)}}
sinks:
  out:
    type: s3
    inputs: [per_user]
    url: ${{OUTPUT}}
    path: "{{window_start:%Y-%m-%d--%H}}/{{movieId}}/"
    format: csv
    rolling: {{max_bytes: {max_bytes}}}
{extra}"#
    );
    let path = dir.join(file_name);
    std::fs::write(&path, text).unwrap();
    path
}

fn split_input(s3: &Service, dir: &Path, count: u64) {
    let all = dir.join("all.jsonl");
    generate(s3, &all, count);
    let text = std::fs::read_to_string(&all).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::create_dir_all(dir.join("in")).unwrap();
    for (i, part) in lines.chunks(lines.len().div_ceil(3)).enumerate() {
        std::fs::write(
            dir.join(format!("in/part-{i}.jsonl")),
            part.join("\n") + "\n",
        )
        .unwrap();
    }
    std::fs::remove_file(all).unwrap();
}

#[test]
fn a_checkpointed_run_into_s3_killed_and_restarted_writes_every_row_exactly_once() {
    let s3 = s3();
    let bucket = bucket(&s3);
    let seed = seed();
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    const RECORDS: u64 = 150_000;
    let reference = dir.path().join("reference");
    let o = streamctl(&s3)
        .arg("run")
        .arg(chaos_pipeline_named(
            dir.path(),
            "reference.yaml",
            &generated_source(RECORDS, None),
            "16KiB",
            "",
        ))
        .args(["--progress", "off"])
        .env("OUTPUT", format!("file://{}/", reference.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let expected = csv_rows(local_files(&reference).values());
    assert!(expected.len() > 10_000);

    // An uninterrupted run takes 7.5 s at most 20k records a second.
    let pipeline = chaos_pipeline(
        dir.path(),
        &generated_source(RECORDS, Some(20_000)),
        "16KiB",
        "",
    );
    let checkpoints = format!("s3://{bucket}/checkpoints/job/");
    // The newest checkpoint id (0 before the first), as streamctl lists them.
    let newest_checkpoint = || {
        let o = streamctl(&s3)
            .args(["checkpoints", "list", &checkpoints])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
            .max()
            .unwrap_or(0)
    };
    let start = |crash_at: Option<&str>| {
        let mut c = streamctl(&s3);
        c.arg("run")
            .arg(&pipeline)
            .args(["--progress", "off", "--checkpoint-interval", "300ms"])
            .args(["--checkpoint-dir", &checkpoints])
            .env("OUTPUT", format!("s3://{bucket}/out/"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(point) = crash_at {
            c.env("STREAMCTL_CRASH_AT", point);
        }
        c.spawn().unwrap()
    };
    // The narrow moments first, then random kills once each attempt took a checkpoint.
    let mut schedule: Vec<Option<&str>> = vec![
        Some("checkpoint-written:2"),
        Some("publish-between-files:3"),
        Some("checkpoint-prepared:2"),
    ];
    schedule.extend(std::iter::repeat_n(None, 3));
    let (mut kills, mut crashes, mut completed) = (0, 0, false);
    for (attempt, crash_at) in schedule.iter().chain(std::iter::repeat(&None)).enumerate() {
        assert!(attempt < 40, "seed {seed}: the run does not complete");
        let mut child = start(*crash_at);
        let status = if crash_at.is_some() {
            wait_for(&mut child, Duration::from_secs(120))
        } else {
            let before = newest_checkpoint();
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut status = None;
            while status.is_none() && newest_checkpoint() == before {
                assert!(
                    Instant::now() < deadline,
                    "seed {seed}: no checkpoint in 2 minutes"
                );
                status = wait_for(&mut child, Duration::from_millis(50));
            }
            status.or_else(|| wait_for(&mut child, Duration::from_millis(rng.below(400))))
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
                child
                    .stderr
                    .as_mut()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                assert_eq!(s.signal(), Some(9), "seed {seed}: attempt {attempt}: {err}");
                crashes += 1;
            }
        }
    }
    assert!(completed);
    let actual = csv_rows(objects(&s3, &bucket, "out/").values());
    assert_eq!(actual.len(), expected.len(), "seed {seed}: {kills} kills");
    assert!(
        actual == expected,
        "seed {seed}: same count, different rows"
    );
    assert_eq!(crashes, 3, "seed {seed}: every crash point was reached");
    assert!(kills >= 3, "seed {seed}: only {kills} random kills landed");
    assert!(
        open_uploads(&s3, &bucket).is_empty(),
        "seed {seed}: uploads left open"
    );
}

#[test]
fn failing_requests_lose_and_duplicate_nothing() {
    let s3 = s3();
    let bucket = bucket(&s3);
    let dir = tempfile::tempdir().unwrap();
    split_input(&s3, dir.path(), 200_000);
    let source = file_source(dir.path());
    // Besides the windows, every event as JSON into one object (one checkpoint at the end):
    // over 8 MiB, so it goes up in two parts.
    let raw = format!(
        "  raw:\n    type: s3\n    inputs: [impressions]\n    url: s3://{bucket}/raw/\n    format: json\n"
    );
    let reference = dir.path().join("reference");
    let o = streamctl(&s3)
        .arg("run")
        .arg(chaos_pipeline(dir.path(), &source, "64KiB", ""))
        .args(["--progress", "off"])
        .env("OUTPUT", format!("file://{}/", reference.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let expected = csv_rows(local_files(&reference).values());
    let mut events: Vec<String> = (0..3)
        .flat_map(|i| {
            std::fs::read_to_string(dir.path().join(format!("in/part-{i}.jsonl")))
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    events.sort();
    let pipeline = chaos_pipeline(dir.path(), &source, "64KiB", &raw);

    let faults = Arc::new(Faults::default());
    let upstream = s3
        .get("S3_ENDPOINT")
        .trim_start_matches("http://")
        .to_string();
    let proxy = start_proxy(upstream, faults.clone());
    // Checkpoints and output both through the proxy.
    let started = Instant::now();
    let o = streamctl(&s3)
        .arg("run")
        .arg(&pipeline)
        .args(["--progress", "off", "--checkpoint-interval", "1h"])
        .args(["--checkpoint-dir", &format!("s3://{bucket}/checkpoints/")])
        .env("OUTPUT", format!("s3://{bucket}/out/"))
        .env("AWS_ENDPOINT_URL_S3", format!("http://{proxy}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    eprintln!(
        "through the proxy in {:?}: {}\n{}",
        started.elapsed(),
        faults.summary(),
        stderr(&o)
    );
    let actual = csv_rows(objects(&s3, &bucket, "out/").values());
    assert_eq!(actual.len(), expected.len());
    assert!(actual == expected, "same count, different rows");
    let raw = objects(&s3, &bucket, "raw/");
    assert!(
        raw.values().any(|t| t.len() > 8 << 20),
        "no multipart object"
    );
    let mut raw_events: Vec<String> = raw
        .values()
        .flat_map(|t| t.lines().map(str::to_string))
        .collect();
    raw_events.sort();
    assert_eq!(raw_events.len(), events.len());
    // The sink writes the same fields in the same order as the input's JSON.
    let normalize = |line: &String| serde_json::from_str::<serde_json::Value>(line).unwrap();
    assert!(
        raw_events
            .iter()
            .map(normalize)
            .eq(events.iter().map(normalize)),
        "the raw events differ"
    );
    assert!(open_uploads(&s3, &bucket).is_empty(), "uploads left open");
    let seen = |c: &AtomicU64| c.load(Ordering::Relaxed);
    assert!(seen(&faults.slow_down) > 0, "no SlowDown injected");
    assert!(seen(&faults.internal) > 0, "no 500 injected");
    assert!(seen(&faults.reset_mid_upload) > 0, "no upload reset");
    assert!(seen(&faults.lost_answers) > 0, "no answer lost");
}
