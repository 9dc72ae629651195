//! Checkpoints and exactly-once output, through the binary: a run killed with SIGKILL at
//! random moments (and at the narrow ones: during a checkpoint write, between a checkpoint
//! and its publish, between two published files) and restarted each time ends with exactly
//! the output of a run that never crashed; savepoints on SIGTERM; falling back from a damaged
//! checkpoint; refusing a checkpoint the changed pipeline cannot use.

mod common;

use common::{Rng, files, seed, wait_for};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn streamctl() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_streamctl"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn is_hidden(p: &Path) -> bool {
    p.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// The data rows of every visible file under `dir` (headers dropped), sorted: what a reader
/// of the output sees, as a multiset.
fn rows(dir: &Path) -> Vec<String> {
    let mut rows = Vec::new();
    for f in files(dir).iter().filter(|f| !is_hidden(f)) {
        let text = std::fs::read_to_string(f).unwrap();
        let mut lines = text.lines();
        if f.extension().is_some_and(|e| e == "csv") {
            lines.next();
        }
        rows.extend(lines.map(str::to_string));
    }
    rows.sort();
    rows
}

/// Tumbling, sliding and session windows over a glob of files, into two bucketed sinks and
/// one single-file sink.
fn pipeline(dir: &Path) -> PathBuf {
    let text = format!(
        r#"version: 1
name: chaos
sources:
  impressions:
    type: file
    path: {dir}/in/*.jsonl
    schema: {{movieId: string, userId: string, timestamp: timestamp_ms}}
    event_time: {{field: timestamp, max_out_of_orderness: 4s}}
transforms:
  per_movie:
    type: window
    inputs: [impressions]
    window: {{type: tumbling, size: 1m}}
    group_by: [movieId]
    aggregates: {{n: COUNT(*), last: MAX(timestamp)}}
  sliding:
    type: window
    inputs: [impressions]
    window: {{type: sliding, size: 2m, slide: 30s}}
    group_by: [movieId]
    aggregates: {{n: COUNT(*), users: COUNT(DISTINCT userId)}}
  sessions:
    type: window
    inputs: [impressions]
    window: {{type: session, gap: 1m}}
    group_by: [movieId, userId]
    aggregates: {{n: COUNT(*), first: MIN(timestamp)}}
sinks:
  tumbling_out:
    type: s3
    inputs: [per_movie]
    url: file://{dir}/out/tumbling/
    path: "{{window_start:%Y-%m-%d--%H}}/{{movieId}}/"
    format: csv
    rolling: {{max_bytes: 4KiB}}
  sliding_out:
    type: s3
    inputs: [sliding]
    url: file://{dir}/out/sliding/
    path: "{{window_start:%H}}/"
    format: json
  sessions_out:
    type: file
    inputs: [sessions]
    path: {dir}/out/sessions.jsonl
"#,
        dir = dir.display()
    );
    let path = dir.join("pipeline.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `count` generated impressions split over three files in time order.
fn input(dir: &Path, count: u64) {
    let all = dir.join("all.jsonl");
    let o = streamctl()
        .args([
            "generate",
            "movie-impressions",
            "--disorder",
            "4s",
            "--count",
        ])
        .arg(count.to_string())
        .arg("-o")
        .arg(&all)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
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

fn start(pipeline: &Path, checkpoints: &Path, crash_at: Option<&str>) -> Child {
    let mut c = streamctl();
    c.arg("run")
        .arg(pipeline)
        .args(["--progress", "off", "--checkpoint-interval", "200ms"])
        .arg("--checkpoint-dir")
        .arg(checkpoints)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(point) = crash_at {
        c.env("STREAMCTL_CRASH_AT", point);
    }
    c.spawn().unwrap()
}

fn crash_free(dir: &Path) -> Vec<String> {
    let o = streamctl()
        .arg("run")
        .arg(pipeline(dir))
        .args(["--progress", "off"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    rows(&dir.join("out"))
}

#[test]
fn killed_at_random_moments_and_restarted_the_output_is_exactly_a_crash_free_runs() {
    let seed = seed();
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let reference_dir = tempfile::tempdir().unwrap();
    input(dir.path(), 2_000_000);
    std::fs::create_dir_all(reference_dir.path()).unwrap();
    std::os::unix::fs::symlink(dir.path().join("in"), reference_dir.path().join("in")).unwrap();
    let expected = crash_free(reference_dir.path());
    assert!(expected.len() > 10_000, "a meaningful amount of output");

    let p = pipeline(dir.path());
    let checkpoints = dir.path().join("checkpoints");
    // The narrow moments first, each once, then random kills, then a run left to finish.
    #[derive(Clone, Copy)]
    enum Attempt {
        CrashAt(&'static str),
        KillRandomly,
        Finish,
    }
    let mut schedule: Vec<Attempt> = [
        "checkpoint-rename:2",
        "checkpoint-written:2",
        "publish-between-files:3",
        "checkpoint-prepared:2",
    ]
    .into_iter()
    .map(Attempt::CrashAt)
    .collect();
    schedule.extend(std::iter::repeat_n(Attempt::KillRandomly, 12));
    schedule.push(Attempt::Finish);
    let (mut kills, mut crashes, mut completed) = (0, 0, false);
    for (attempt, step) in schedule.into_iter().enumerate() {
        let before = common::newest_checkpoint(&checkpoints);
        let crash_at = match step {
            Attempt::CrashAt(point) => Some(point),
            _ => None,
        };
        let mut child = start(&p, &checkpoints, crash_at);
        let status = match step {
            Attempt::CrashAt(_) | Attempt::Finish => wait_for(&mut child, Duration::from_secs(600)),
            Attempt::KillRandomly => {
                // A random moment after this attempt completed a checkpoint of its own, so
                // every attempt gets somewhere (the debug binary is slow) and kills land at any
                // point of the cycle: reading, checkpointing, publishing.
                let deadline = Instant::now() + Duration::from_secs(120);
                let mut status = None;
                while status.is_none() && common::newest_checkpoint(&checkpoints) == before {
                    assert!(
                        Instant::now() < deadline,
                        "seed {seed}: no checkpoint in 2 minutes"
                    );
                    status = wait_for(&mut child, Duration::from_millis(20));
                }
                status.or_else(|| wait_for(&mut child, Duration::from_millis(rng.below(300))))
            }
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
    }
    assert!(completed, "seed {seed}: the last run did not finish");
    assert!(kills >= 10, "seed {seed}: only {kills} random kills landed");
    assert_eq!(crashes, 4, "seed {seed}: every crash point was reached");
    let out = dir.path().join("out");
    let hidden: Vec<PathBuf> = files(&out).into_iter().filter(|f| is_hidden(f)).collect();
    assert!(hidden.is_empty(), "seed {seed}: leftovers {hidden:?}");
    let actual = rows(&out);
    assert_eq!(
        actual.len(),
        expected.len(),
        "seed {seed}: {kills} kills, {crashes} crashes"
    );
    assert!(
        actual == expected,
        "seed {seed}: same count, different rows"
    );
    let temps: Vec<PathBuf> = files(&checkpoints)
        .into_iter()
        .filter(|f| is_hidden(f))
        .collect();
    assert!(temps.is_empty(), "{temps:?}");
}

#[test]
fn a_damaged_newest_checkpoint_falls_back_to_the_previous_one() {
    let dir = tempfile::tempdir().unwrap();
    let reference_dir = tempfile::tempdir().unwrap();
    input(dir.path(), 300_000);
    std::os::unix::fs::symlink(dir.path().join("in"), reference_dir.path().join("in")).unwrap();
    let expected = crash_free(reference_dir.path());
    let p = pipeline(dir.path());
    let checkpoints = dir.path().join("checkpoints");
    // Stop right after a later checkpoint completed and published its files.
    let mut child = start(&p, &checkpoints, Some("checkpoint-written:4"));
    assert!(wait_for(&mut child, Duration::from_secs(120)).is_some());
    let mut ids: Vec<PathBuf> = files(&checkpoints)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "ckpt"))
        .collect();
    ids.sort();
    let newest = ids.last().unwrap().clone();
    let bytes = std::fs::read(&newest).unwrap();
    std::fs::write(&newest, &bytes[..bytes.len() / 2]).unwrap();
    let o = start(&p, &checkpoints, None).wait_with_output().unwrap();
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("cannot be read"), "{err}");
    assert!(err.contains("falling back"), "{err}");
    assert_eq!(rows(&dir.path().join("out")), expected);
}

#[test]
fn sigterm_takes_a_savepoint_and_the_next_run_continues_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let reference_dir = tempfile::tempdir().unwrap();
    input(dir.path(), 600_000);
    std::os::unix::fs::symlink(dir.path().join("in"), reference_dir.path().join("in")).unwrap();
    let expected = crash_free(reference_dir.path());
    let p = pipeline(dir.path());
    let checkpoints = dir.path().join("checkpoints");
    let mut c = streamctl();
    c.arg("run")
        .arg(&p)
        .args(["--progress", "off", "--checkpoint-interval", "1h"])
        .arg("--checkpoint-dir")
        .arg(&checkpoints)
        .stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(700));
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("savepoint: checkpoint 1"), "{err}");
    let o = start(&p, &checkpoints, None).wait_with_output().unwrap();
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("resuming from checkpoint 1"), "{err}");
    assert_eq!(rows(&dir.path().join("out")), expected);
    // The run completed: running it again publishes nothing new.
    let o = start(&p, &checkpoints, None).wait_with_output().unwrap();
    assert!(o.status.success());
    assert!(
        stderr(&o).contains("is of a run that completed"),
        "{}",
        stderr(&o)
    );
    assert_eq!(rows(&dir.path().join("out")), expected);
}

#[test]
fn a_pipeline_change_the_state_cannot_survive_is_refused_and_others_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    input(dir.path(), 100_000);
    let p = pipeline(dir.path());
    let checkpoints = dir.path().join("checkpoints");
    let mut child = start(&p, &checkpoints, Some("checkpoint-written:1"));
    assert!(wait_for(&mut child, Duration::from_secs(60)).is_some());
    let original = std::fs::read_to_string(&p).unwrap();

    std::fs::write(&p, original.replace("size: 1m", "size: 5m")).unwrap();
    let o = start(&p, &checkpoints, None).wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("window `per_movie`: window changed from `tumbling 1m` (checkpoint) to `tumbling 5m` (pipeline)"),
        "{err}"
    );
    assert!(err.contains("another checkpoint directory"), "{err}");

    std::fs::write(
        &p,
        original.replace(
            "group_by: [movieId]\n    aggregates: {n: COUNT(*), last",
            "group_by: [movieId, userId]\n    aggregates: {n: COUNT(*), last",
        ),
    )
    .unwrap();
    let err = stderr(&start(&p, &checkpoints, None).wait_with_output().unwrap());
    assert!(
        err.contains("window `per_movie`: group by changed from `movieId STRING` (checkpoint) to `movieId STRING, userId STRING` (pipeline)"),
        "{err}"
    );

    // Rolling and paths are not state: resuming with them changed works.
    std::fs::write(&p, original.replace("max_bytes: 4KiB", "max_bytes: 1MiB")).unwrap();
    let o = start(&p, &checkpoints, None).wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn checkpoints_can_be_listed_and_shown() {
    let dir = tempfile::tempdir().unwrap();
    input(dir.path(), 100_000);
    let p = pipeline(dir.path());
    let checkpoints = dir.path().join("checkpoints");
    let mut child = start(&p, &checkpoints, Some("checkpoint-written:2"));
    assert!(wait_for(&mut child, Duration::from_secs(60)).is_some());
    let o = streamctl()
        .args(["checkpoints", "list"])
        .arg(&checkpoints)
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        list.lines().count(),
        3,
        "a header and two checkpoints: {list}"
    );
    let o = streamctl()
        .args(["checkpoints", "show"])
        .arg(&checkpoints)
        .output()
        .unwrap();
    let show = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        show.starts_with("checkpoint 2 of pipeline `chaos`"),
        "{show}"
    );
    assert!(show.contains("part-0.jsonl @ "), "{show}");
    assert!(show.contains("stage `sessions`: "), "{show}");
    assert!(show.contains("sink `tumbling_out`: "), "{show}");
}

#[test]
fn stdin_cannot_be_checkpointed() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.yaml");
    std::fs::write(
        &p,
        "version: 1\nname: s\nsources:\n  s:\n    type: stdin\n    schema: {a: string}\nsinks:\n  o:\n    type: stdout\n    inputs: [s]\n",
    )
    .unwrap();
    let o = streamctl()
        .arg("run")
        .arg(&p)
        .arg("--checkpoint-dir")
        .arg(dir.path().join("c"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot be read again after a restart"),
        "{}",
        stderr(&o)
    );
}
