//! What a run leaves at its destinations, through the binary: reruns never silently double a
//! dataset, an unusable destination fails before any input is read, a failed run leaves no
//! hidden files, and the summary counts only rows that became visible.

mod common;

use common::files;

use std::io::Write;
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

fn hidden(dir: &Path) -> Vec<PathBuf> {
    files(dir)
        .into_iter()
        .filter(|f| {
            f.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect()
}

/// Data rows (CSV headers dropped) of the visible files under `dir`, sorted.
fn rows(dir: &Path) -> Vec<String> {
    let mut rows: Vec<String> = files(dir)
        .iter()
        .filter(|f| !f.file_name().unwrap().to_string_lossy().starts_with('.'))
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .skip(1)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    rows.sort();
    rows
}

fn run_movies(out: &Path, extra: &[&str]) -> Output {
    let input = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/movie-impressions.jsonl");
    streamctl()
        .args([
            "run",
            "pipelines/movie-impressions-local.yaml",
            "--progress",
            "off",
        ])
        .args(extra)
        .env("INPUT", input)
        .env("OUTPUT", format!("file://{}/", out.display()))
        .output()
        .unwrap()
}

#[test]
fn a_rerun_into_the_same_output_is_refused_unless_told_to_overwrite_or_append() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let first = run_movies(&out, &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    let once = rows(&out);
    assert!(!once.is_empty());

    let again = run_movies(&out, &[]);
    let err = stderr(&again);
    assert_eq!(again.status.code(), Some(2), "{err}");
    assert!(err.contains("already holds files"), "{err}");
    assert!(err.contains("--if-exists overwrite"), "{err}");
    assert!(!err.contains("records in"), "refused before reading: {err}");
    assert_eq!(rows(&out), once, "nothing was added");

    let overwrite = run_movies(&out, &["--if-exists", "overwrite"]);
    assert!(overwrite.status.success(), "{}", stderr(&overwrite));
    assert_eq!(rows(&out), once, "replaced, not doubled");

    let append = run_movies(&out, &["--if-exists", "append"]);
    assert!(append.status.success(), "{}", stderr(&append));
    let mut twice = once.clone();
    twice.extend(once.iter().cloned());
    twice.sort();
    assert_eq!(rows(&out), twice, "appending was asked for");
}

#[test]
fn an_unwritable_output_fails_before_reading_an_input_that_never_ends() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-directory");
    std::fs::write(&blocker, "x").unwrap();
    let pipeline = dir.path().join("p.yaml");
    std::fs::write(
        &pipeline,
        format!(
            r#"version: 1
name: stdin-forever
sources:
  s:
    type: stdin
    schema: {{k: string, t: timestamp_ms}}
    event_time: {{field: t}}
transforms:
  w:
    type: window
    inputs: [s]
    window: {{type: tumbling, size: 1m}}
    group_by: [k]
    aggregates: {{n: COUNT(*)}}
sinks:
  out:
    type: s3
    inputs: [w]
    url: file://{}/out/
    format: csv
"#,
            blocker.display()
        ),
    )
    .unwrap();
    // Stdin stays open and silent: the run must not wait for it to learn it cannot write.
    let mut child = streamctl()
        .arg("run")
        .arg(&pipeline)
        .args(["--progress", "off"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"{\"k\":\"a\",\"t\":1}\n").unwrap();
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the run waited for input instead of failing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(stdin);
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot start the pipeline"), "{err}");
    assert!(err.contains("sink `out`"), "{err}");
}

#[test]
fn a_failed_run_leaves_no_hidden_files_and_counts_only_visible_rows() {
    let dir = tempfile::tempdir().unwrap();
    // Windows fire (and files open) before a bad record stops the run under `policy: fail`.
    let mut input = String::new();
    // More than one read chunk (1 MiB), so windows fire before the bad record is decoded.
    for i in 0..100_000 {
        input.push_str(&format!("{{\"k\":\"k{}\",\"t\":{}}}\n", i % 7, i * 1000));
    }
    input.push_str("{\"k\":\"bad\",\"t\":\"not a time\"}\n");
    std::fs::write(dir.path().join("in.jsonl"), input).unwrap();
    let pipeline = dir.path().join("p.yaml");
    std::fs::write(
        &pipeline,
        format!(
            r#"version: 1
name: fails
sources:
  s:
    type: file
    path: {dir}/in.jsonl
    schema: {{k: string, t: timestamp_ms}}
    event_time: {{field: t}}
    bad_records: {{policy: fail}}
transforms:
  w:
    type: window
    inputs: [s]
    window: {{type: tumbling, size: 1m}}
    group_by: [k]
    aggregates: {{n: COUNT(*)}}
sinks:
  out:
    type: s3
    inputs: [w]
    url: file://{dir}/out/
    path: "{{k}}/"
    format: csv
    rolling: {{max_bytes: 10KiB}}
"#,
            dir = dir.path().display()
        ),
    )
    .unwrap();
    let o = streamctl()
        .arg("run")
        .arg(&pipeline)
        .args(["--progress", "off"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let out = dir.path().join("out");
    assert!(hidden(&out).is_empty(), "{:?}", hidden(&out));
    let visible = rows(&out).len();
    assert!(
        visible > 0,
        "some files rolled (were published) before the failure"
    );
}
