//! `streamctl run` end to end, through the binary: reference pipelines against independent
//! computations and golden outputs, bad-record policies, late events, stdin, gzip and globs,
//! progress lines, Ctrl-C and exit codes.

mod common;

use common::files;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn streamctl() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_streamctl"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut c = streamctl();
    c.arg("run").args(args).arg("--progress").arg("off");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run streamctl")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The rows of a JSON-lines output file.
fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn write_pipeline(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("pipeline.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn movie_impressions_local_matches_an_independent_computation() {
    let out = tempfile::tempdir().unwrap();
    let input = root().join("data/movie-impressions.jsonl");
    let o = run(
        &["pipelines/movie-impressions-local.yaml"],
        &[
            ("INPUT", input.display().to_string()),
            ("OUTPUT", format!("file://{}/", out.path().display())),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));

    // Expected: 15-minute tumbling windows per (movieId, userId): count and max timestamp.
    let mut expected: BTreeMap<(i64, String, String), (i64, i64)> = BTreeMap::new();
    for line in std::fs::read_to_string(&input).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let t = v["timestamp"].as_i64().unwrap();
        let key = (
            t.div_euclid(900_000),
            v["movieId"].as_str().unwrap().to_string(),
            v["userId"].as_str().unwrap().to_string(),
        );
        let e = expected.entry(key).or_insert((0, i64::MIN));
        e.0 += 1;
        e.1 = e.1.max(t);
    }
    let mut expected_rows: Vec<String> = expected
        .iter()
        .map(|((w, m, u), (c, mx))| {
            let hour = common::hour_bucket(w * 900_000);
            format!("{hour}/{m} {m},{u},{c},{mx}")
        })
        .collect();
    expected_rows.sort();

    let mut got_rows = Vec::new();
    for file in files(out.path()) {
        let rel = file.strip_prefix(out.path()).unwrap().display().to_string();
        assert!(
            !rel.contains(".inprogress"),
            "an unfinished file was left: {rel}"
        );
        let parts: Vec<&str> = rel.split('/').collect();
        assert_eq!(
            parts.len(),
            3,
            "expected yyyy-MM-dd--HH/movieId/file, got {rel}"
        );
        assert!(
            parts[2].starts_with("part-") && parts[2].ends_with(".csv"),
            "{rel}"
        );
        let text = std::fs::read_to_string(&file).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("movieId,userId,impressions,latestImpression")
        );
        for line in lines {
            got_rows.push(format!("{}/{} {line}", parts[0], parts[1]));
        }
    }
    got_rows.sort();
    assert_eq!(got_rows.len(), expected_rows.len());
    assert_eq!(got_rows, expected_rows);
}

/// Output of a local reference pipeline as sorted text lines, one per row (Parquet rows are
/// read back with the parquet crate).
fn output_rows(dir: &Path) -> Vec<String> {
    let mut rows = Vec::new();
    for file in files(dir) {
        let rel = file.strip_prefix(dir).unwrap().display().to_string();
        assert!(!rel.contains(".inprogress"), "unfinished file {rel}");
        let bucket = Path::new(&rel)
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        if rel.ends_with(".parquet") {
            use parquet::file::reader::{FileReader, SerializedFileReader};
            let reader = SerializedFileReader::new(std::fs::File::open(&file).unwrap()).unwrap();
            for row in reader.get_row_iter(None).unwrap() {
                rows.push(format!("{bucket} {}", row.unwrap()));
            }
        } else {
            for line in std::fs::read_to_string(&file).unwrap().lines() {
                rows.push(format!("{bucket} {line}"));
            }
        }
    }
    rows.sort();
    rows
}

#[test]
fn local_reference_pipelines_match_their_golden_outputs() {
    // (pipeline, writes to an object sink, records to generate)
    let cases = [
        ("taxi-hot-spots-local", true, "1000"),
        ("taxi-airport-durations-local", true, "30000"),
        ("stock-price-alerts-local", false, "30000"),
        ("delivery-agent-sessions-local", true, "30000"),
    ];
    let mut stale = Vec::new();
    for (name, object_sink, count) in cases {
        let out = tempfile::tempdir().unwrap();
        let target = if object_sink {
            format!("file://{}/", out.path().display())
        } else {
            out.path().join("out.jsonl").display().to_string()
        };
        let o = run(
            &[&format!("pipelines/{name}.yaml")],
            &[
                ("COUNT", count.to_string()),
                ("OUTPUT", target),
                (
                    "LATE_OUTPUT",
                    out.path().join("late.jsonl").display().to_string(),
                ),
            ],
        );
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let rows = output_rows(out.path());
        assert!(!rows.is_empty(), "{name} wrote nothing");
        let golden_path = root().join("tests/golden").join(format!("{name}.txt"));
        let text = rows.join("\n") + "\n";
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(golden_path.parent().unwrap()).unwrap();
            std::fs::write(&golden_path, &text).unwrap();
            continue;
        }
        let golden = std::fs::read_to_string(&golden_path).unwrap_or_default();
        if golden != text {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "output differs from tests/golden for {stale:?}; inspect the diff and, if intended, run `UPDATE_GOLDEN=1 cargo test --test run`"
    );
}

const BAD_INPUT: &str = r#"{"movieId":"m1","userId":"u1","timestamp":1000}
{"movieId":"m1","userId":"u1","timestamp":"abc"}
this is not json
{"movieId":"m1","userId":"u2"}
{"movieId":"m1","userId":"u1","timestamp":2000}
"#;

fn bad_records_pipeline(dir: &Path, policy: &str) -> PathBuf {
    std::fs::write(dir.join("in.jsonl"), BAD_INPUT).unwrap();
    write_pipeline(
        dir,
        &format!(
            r#"version: 1
name: bad-records
sources:
  s:
    type: file
    path: {dir}/in.jsonl
    schema: {{movieId: string, userId: string, timestamp: timestamp_ms}}
    event_time: {{field: timestamp}}
    bad_records: {policy}
transforms:
  w:
    type: window
    inputs: [s]
    window: {{type: tumbling, size: 1m}}
    group_by: [userId]
    aggregates: {{n: COUNT(*)}}
sinks:
  out:
    type: file
    inputs: [w]
    path: {dir}/out.jsonl
{dead_letter_sink}"#,
            dir = dir.display(),
            dead_letter_sink = if policy.contains("dead_letter") {
                format!(
                    "  dead:\n    type: file\n    inputs: [bad]\n    path: {}/dead.jsonl\n",
                    dir.display()
                )
            } else {
                String::new()
            }
        ),
    )
}

#[test]
fn bad_records_are_skipped_and_counted_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let p = bad_records_pipeline(dir.path(), "{policy: skip}");
    let o = run(&[p.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("3 bad records"), "{}", stderr(&o));
    let out = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap();
    assert!(out.contains(r#""userId":"u1","n":2"#), "{out}");
}

/// A run that reads no valid record (the wrong file, format or schema) says so and exits 3,
/// whether every record was bad or the input was empty.
#[test]
fn a_run_without_one_valid_record_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let p = bad_records_pipeline(dir.path(), "{policy: skip}");
    std::fs::write(dir.path().join("in.jsonl"), "movieId,userId\nm1,u1\n").unwrap();
    let o = run(&[p.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no valid record was read: all 2 records were bad"),
        "{}",
        stderr(&o)
    );
    std::fs::write(dir.path().join("in.jsonl"), "").unwrap();
    let o = run(&[p.to_str().unwrap(), "--if-exists", "overwrite"], &[]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no valid record was read: the input was empty"),
        "{}",
        stderr(&o)
    );
}

/// Types as documented: by default a JSON number in a `string` field becomes its text, a
/// quoted number an `int` (as in Flink's json format); with `types: strict` both are bad
/// records, counted and sent to the dead-letter stream with the reason.
#[test]
fn strict_types_make_wrong_types_bad_records() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.jsonl"),
        concat!(
            r#"{"k":"a","v":1,"t":1000}"#,
            "\n",
            r#"{"k":17,"v":1,"t":2000}"#,
            "\n",
            r#"{"k":"b","v":"12","t":3000}"#,
            "\n",
            r#"{"k":{"x":1},"v":1,"t":4000}"#,
            "\n",
        ),
    )
    .unwrap();
    let pipeline = |types: &str| {
        format!(
            "version: 1\nname: types\nsources:\n  s:\n    type: file\n    path: {dir}/in.jsonl\n    schema: {{k: string, v: int, t: timestamp_ms}}\n    types: {types}\n    bad_records: {{policy: dead_letter, to: bad}}\nsinks:\n  out:\n    type: file\n    inputs: [s]\n    path: {dir}/out-{types}.jsonl\n  dead:\n    type: file\n    inputs: [bad]\n    path: {dir}/dead-{types}.jsonl\n",
            dir = dir.path().display()
        )
    };
    for types in ["lenient", "strict"] {
        let p = dir.path().join(format!("{types}.yaml"));
        std::fs::write(&p, pipeline(types)).unwrap();
        let o = run(&[p.to_str().unwrap()], &[]);
        assert!(o.status.success(), "{types}: {}", stderr(&o));
    }
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    let lenient = read("out-lenient.jsonl");
    assert_eq!(lenient.lines().count(), 4, "{lenient}");
    assert!(lenient.contains(r#""k":"17""#), "{lenient}");
    assert!(lenient.contains(r#""v":12"#), "{lenient}");
    assert!(read("dead-lenient.jsonl").is_empty());
    assert_eq!(read("out-strict.jsonl").lines().count(), 1);
    let rows = json_lines(&dir.path().join("dead-strict.jsonl"));
    let errors: Vec<&str> = rows.iter().map(|r| r["error"].as_str().unwrap()).collect();
    assert_eq!(
        errors,
        [
            "field `k`: expected a string, found 17",
            r#"field `v`: expected a number, found "12""#,
            r#"field `k`: expected a string, found {"x":1}"#,
        ]
    );
}

#[test]
fn bad_records_fail_the_run_under_policy_fail() {
    let dir = tempfile::tempdir().unwrap();
    let p = bad_records_pipeline(dir.path(), "{policy: fail}");
    let o = run(&[p.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    // The message names the record's file and line, not a count of records decoded ahead.
    let input = dir.path().join("in.jsonl").display().to_string();
    assert!(
        err.contains(&format!(
            "`s`: bad record at {input}:2: field `timestamp`: expected a number, found \"abc\""
        )),
        "{err}"
    );
    assert!(
        err.contains(r#"record: {"movieId":"m1","userId":"u1","timestamp":"abc"}"#),
        "{err}"
    );
    assert!(!err.contains("after"), "{err}");
    assert!(
        !dir.path().join("out.jsonl").exists(),
        "no output may be committed"
    );
}

#[test]
fn bad_records_go_to_the_dead_letter_stream() {
    let dir = tempfile::tempdir().unwrap();
    let p = bad_records_pipeline(dir.path(), "{policy: dead_letter, to: bad}");
    let o = run(&[p.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = json_lines(&dir.path().join("dead.jsonl"));
    assert_eq!(rows.len(), 3, "{rows:?}");
    let positions: Vec<&str> = rows
        .iter()
        .map(|r| r["position"].as_str().unwrap())
        .collect();
    let input = dir.path().join("in.jsonl").display().to_string();
    assert_eq!(
        positions,
        [2, 3, 4].map(|line| format!("{input}:{line}")),
        "file:line of each"
    );
    assert!(rows[0]["error"].as_str().unwrap().contains("timestamp"));
    assert_eq!(rows[1]["raw"], "this is not json");
    // A record without event time keeps its bytes too (not re-serialized with a null).
    assert_eq!(rows[2]["raw"], r#"{"movieId":"m1","userId":"u2"}"#);
    assert!(rows.iter().all(|r| r["raw_base64"] == false));
    assert!(
        rows[2]["error"]
            .as_str()
            .unwrap()
            .contains("missing event time")
    );
    assert_eq!(rows[0]["component"], "s");
}

/// Dead letters keep the input bytes exactly: a CSV line as it was (also when it lacks the
/// event time), and a line that is not UTF-8 as base64 with `raw_base64: true`.
#[test]
fn dead_letters_keep_the_raw_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = b"k,t,v\na,1000,1\nb,,2\n\"c\" ,abc,3\n".to_vec();
    csv.extend_from_slice(b"d,\xff\xfe,4\n");
    std::fs::write(dir.path().join("in.csv"), &csv).unwrap();
    let p = write_pipeline(
        dir.path(),
        &format!(
            "version: 1\nname: raw\nsources:\n  s:\n    type: file\n    path: {dir}/in.csv\n    format: csv\n    schema: {{k: string, t: timestamp_ms, v: int}}\n    event_time: {{field: t}}\n    bad_records: {{policy: dead_letter, to: bad}}\nsinks:\n  out:\n    type: stdout\n    inputs: [s]\n  dead:\n    type: file\n    inputs: [bad]\n    path: {dir}/dead.jsonl\n",
            dir = dir.path().display()
        ),
    );
    let o = run(&[p.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = json_lines(&dir.path().join("dead.jsonl"));
    let raw: Vec<(&str, bool)> = rows
        .iter()
        .map(|r| {
            (
                r["raw"].as_str().unwrap(),
                r["raw_base64"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        raw,
        [
            ("b,,2", false),
            ("\"c\" ,abc,3", false),
            // base64 of `d,\xff\xfe,4`
            ("ZCz//iw0", true),
        ],
        "{rows:?}"
    );
}

#[test]
fn late_events_go_to_the_late_stream_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let input: String = [10_000, 70_000, 130_000, 5_000, 190_000]
        .iter()
        .map(|t| format!("{{\"k\":\"a\",\"t\":{t}}}\n"))
        .collect();
    std::fs::write(dir.path().join("in.jsonl"), input).unwrap();
    let pipeline = |late: &str| {
        format!(
            r#"version: 1
name: late
sources:
  s:
    type: file
    path: {dir}/in.jsonl
    schema: {{k: string, t: timestamp_ms}}
    event_time: {{field: t}}
transforms:
  w:
    type: window
    inputs: [s]
    window: {{type: tumbling, size: 1m}}
    group_by: [k]
    aggregates: {{n: COUNT(*)}}
    {late}
sinks:
  out:
    type: file
    inputs: [w]
    path: {dir}/out.jsonl
"#,
            dir = dir.path().display()
        )
    };
    let with_stream = pipeline("late: {to: late_events}")
        + &format!(
            "  late_out:\n    type: file\n    inputs: [late_events]\n    path: {}/late.jsonl\n",
            dir.path().display()
        );
    let p = write_pipeline(dir.path(), &with_stream);
    let o = run(&[p.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let late = std::fs::read_to_string(dir.path().join("late.jsonl")).unwrap();
    assert_eq!(
        late.trim(),
        r#"{"k":"a","t":5000,"late_window_start":"1970-01-01 00:00:00.000","late_window_end":"1970-01-01 00:01:00.000"}"#
    );
    assert!(
        stderr(&o).contains("`w`: 1 late event; sent to the late stream (1 row)"),
        "{}",
        stderr(&o)
    );
    let out = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap();
    assert_eq!(out.lines().count(), 4, "{out}");

    let p = write_pipeline(dir.path(), &pipeline(""));
    let o = run(&[p.to_str().unwrap(), "--if-exists", "overwrite"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("`w`: 1 late event; counted and not written"),
        "{}",
        stderr(&o)
    );
}

/// Sliding windows: an event late for only some of its windows counts in the others, and is
/// counted and routed for the ones it missed; late events and missed windows are reported
/// per stage, not summed over stages (4 events late at two stages are not 8 late records).
#[test]
fn late_events_of_sliding_windows_are_never_dropped_silently() {
    let dir = tempfile::tempdir().unwrap();
    // Watermark (no out-of-orderness) reaches 12s; then 7s (late for [0,10), not for
    // [5,15)), and 1s, 2s, 3s (late for both of their windows).
    let input: String = [1_000, 12_000, 7_000, 30_000, 1_000, 2_000, 3_000]
        .iter()
        .map(|t| format!("{{\"k\":\"a\",\"t\":{t}}}\n"))
        .collect();
    std::fs::write(dir.path().join("in.jsonl"), input).unwrap();
    let p = write_pipeline(
        dir.path(),
        &format!(
            "version: 1\nname: sliding-late\nsources:\n  s:\n    type: file\n    path: {dir}/in.jsonl\n    schema: {{k: string, t: timestamp_ms}}\n    event_time: {{field: t, max_out_of_orderness: 0s}}\ntransforms:\n  slide:\n    type: window\n    inputs: [s]\n    window: {{type: sliding, size: 10s, slide: 5s}}\n    group_by: [k]\n    aggregates: {{n: COUNT(*)}}\n    late: {{to: late_slide}}\n  tumble:\n    type: window\n    inputs: [s]\n    window: {{type: tumbling, size: 10s}}\n    group_by: [k]\n    aggregates: {{n: COUNT(*)}}\nsinks:\n  out:\n    type: file\n    inputs: [slide]\n    path: {dir}/out.jsonl\n  late:\n    type: file\n    inputs: [late_slide]\n    path: {dir}/late.jsonl\n  tumbled:\n    type: stdout\n    inputs: [tumble]\n",
            dir = dir.path().display()
        ),
    );
    let o = run(&[p.to_str().unwrap()], &[]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("`slide`: 4 late events (1 late for only some of its windows, and counted in the others); 7 window results missed them; sent to the late stream (7 rows)"),
        "{err}"
    );
    assert!(
        err.contains("the first, at 1970-01-01 00:00:07.000, came with the watermark at 1970-01-01 00:00:12.000: too late for window [1970-01-01 00:00:00.000, 1970-01-01 00:00:10.000)"),
        "{err}"
    );
    assert!(
        err.contains("`tumble`: 4 late events; counted and not written"),
        "{err}"
    );
    // The 7s event counts in [5s, 15s) with the 12s one.
    let out = json_lines(&dir.path().join("out.jsonl"));
    let window_5_15 = out
        .iter()
        .find(|r| r["window_start"] == "1970-01-01 00:00:05.000")
        .unwrap();
    assert_eq!(window_5_15["n"], 2);
    // One late row per (event, window missed).
    let late: Vec<(i64, String)> = json_lines(&dir.path().join("late.jsonl"))
        .iter()
        .map(|r| {
            (
                r["t"].as_i64().unwrap(),
                r["late_window_end"].as_str().unwrap()[11..19].to_string(),
            )
        })
        .collect();
    let want: Vec<(i64, String)> = [
        (7_000, "00:00:10"),
        (1_000, "00:00:05"),
        (1_000, "00:00:10"),
        (2_000, "00:00:05"),
        (2_000, "00:00:10"),
        (3_000, "00:00:05"),
        (3_000, "00:00:10"),
    ]
    .iter()
    .map(|(t, end)| (*t, end.to_string()))
    .collect();
    assert_eq!(late, want);
}

/// A pipeline with allowed lateness into CSV: `late` is the window's `late:` setting; a second
/// window of 20 seconds counts the first one's rows.
fn allowed_lateness_pipeline(dir: &Path, late: &str) -> PathBuf {
    // The watermark (no out-of-orderness) passes 10s; then 5s, 6s and 7s arrive within the
    // allowed lateness of 1m; 100s takes the watermark past the lateness of the first windows.
    // One file each, read in name order: each is a batch of its own, so stages see the
    // watermark advance between them (in one batch every row would be on time downstream).
    let times = [1_000, 2_000, 12_000, 5_000, 6_000, 7_000, 30_000, 100_000];
    for (i, t) in times.iter().enumerate() {
        std::fs::write(
            dir.join(format!("in-{i}.jsonl")),
            format!("{{\"k\":\"a\",\"t\":{t}}}\n"),
        )
        .unwrap();
    }
    write_pipeline(
        dir,
        &format!(
            "version: 1\nname: lateness\nsources:\n  s:\n    type: file\n    path: {dir}/in-*.jsonl\n    schema: {{k: string, t: timestamp_ms}}\n    event_time: {{field: t, max_out_of_orderness: 0s}}\ntransforms:\n  w:\n    type: window\n    inputs: [s]\n    window: {{type: tumbling, size: 10s}}\n    group_by: [k]\n    aggregates: {{n: COUNT(*)}}\n    late: {late}\n  totals:\n    type: window\n    inputs: [w]\n    window: {{type: tumbling, size: 20s}}\n    aggregates: {{rows: COUNT(*), events: SUM(n)}}\nsinks:\n  out:\n    type: file\n    inputs: [w]\n    path: {dir}/out.csv\n    format: csv\n  totals_out:\n    type: file\n    inputs: [totals]\n    path: {dir}/totals.jsonl\n",
            dir = dir.display()
        ),
    )
}

/// Updates are visible as updates: with allowed lateness, each re-emitted row of a window
/// carries a higher `revision` (the default, `emit: updates`), or the window is written once
/// after the lateness (`emit: final`), also for the window stage after it.
#[test]
fn allowed_lateness_updates_carry_a_revision_or_are_written_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = allowed_lateness_pipeline(dir.path(), "{allowed_lateness: 1m}");
    let o = run(&[p.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = std::fs::read_to_string(dir.path().join("out.csv")).unwrap();
    let first_window: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("1970-01-01 00:00:00.000"))
        .collect();
    assert_eq!(
        out.lines().next(),
        Some("window_start,window_end,k,n,revision")
    );
    assert_eq!(
        first_window,
        [
            "1970-01-01 00:00:00.000,1970-01-01 00:00:10.000,a,2,0",
            "1970-01-01 00:00:00.000,1970-01-01 00:00:10.000,a,3,1",
            "1970-01-01 00:00:00.000,1970-01-01 00:00:10.000,a,4,2",
            "1970-01-01 00:00:00.000,1970-01-01 00:00:10.000,a,5,3",
        ],
        "{out}"
    );

    let dir = tempfile::tempdir().unwrap();
    let p = allowed_lateness_pipeline(dir.path(), "{allowed_lateness: 1m, emit: final}");
    let o = run(&[p.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = std::fs::read_to_string(dir.path().join("out.csv")).unwrap();
    assert_eq!(
        out,
        "window_start,window_end,k,n\n\
         1970-01-01 00:00:00.000,1970-01-01 00:00:10.000,a,5\n\
         1970-01-01 00:00:10.000,1970-01-01 00:00:20.000,a,1\n\
         1970-01-01 00:00:30.000,1970-01-01 00:00:40.000,a,1\n\
         1970-01-01 00:01:40.000,1970-01-01 00:01:50.000,a,1\n"
    );
    // The stage after it takes no final row for late: its watermark was held back by the
    // lateness, as the rows were.
    let totals: Vec<(String, i64, i64)> = json_lines(&dir.path().join("totals.jsonl"))
        .iter()
        .map(|r| {
            (
                r["window_start"].as_str().unwrap()[11..19].to_string(),
                r["rows"].as_i64().unwrap(),
                r["events"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        totals,
        [
            ("00:00:00".to_string(), 2, 6),
            ("00:00:20".to_string(), 1, 1),
            ("00:01:40".to_string(), 1, 1)
        ]
    );
    assert!(!stderr(&o).contains("late event"), "{}", stderr(&o));
}

/// The demo: generated impressions with a few late and malformed records; the demo pipeline
/// counts them and puts each where it can be seen (a late file with the window missed, a
/// dead-letter file with the bytes as read, the reason and file:line).
#[test]
fn the_demo_shows_where_late_and_malformed_records_went() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("impressions.jsonl");
    let o = streamctl()
        .args([
            "generate",
            "movie_impressions",
            "--count",
            "20000",
            "--disorder",
            "4s",
        ])
        .args(["--late", "3", "--malformed", "4", "-o"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(
        &["pipelines/demo/movie-impressions-demo.yaml"],
        &[
            ("INPUT", input.display().to_string()),
            ("OUTPUT", format!("file://{}/output/", dir.path().display())),
            (
                "LATE_OUTPUT",
                dir.path().join("late.jsonl").display().to_string(),
            ),
            (
                "BAD_OUTPUT",
                dir.path().join("bad.jsonl").display().to_string(),
            ),
        ],
    );
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("`per_user`: 3 late events; sent to the late stream"),
        "{err}"
    );
    assert!(err.contains("4 bad records"), "{err}");
    let late = json_lines(&dir.path().join("late.jsonl"));
    assert_eq!(late.len(), 3);
    assert!(
        late.iter().all(|r| r["late_window_end"].is_string()),
        "{late:?}"
    );
    let bad = json_lines(&dir.path().join("bad.jsonl"));
    let errors: Vec<&str> = bad.iter().map(|r| r["error"].as_str().unwrap()).collect();
    assert!(errors[0].starts_with("invalid JSON"), "{errors:?}");
    assert_eq!(
        errors[1],
        r#"field `timestamp`: expected a number, found "soon""#
    );
    assert!(errors[2].starts_with("missing event time"), "{errors:?}");
    assert!(errors[3].starts_with("invalid UTF-8"), "{errors:?}");
    assert_eq!(bad[3]["raw_base64"], true);
    let input = input.display().to_string();
    assert!(
        bad.iter().all(|r| r["position"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{input}:"))),
        "{bad:?}"
    );
}

#[test]
fn stdin_csv_to_stdout_json() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_pipeline(
        dir.path(),
        r#"version: 1
name: stdin-csv
sources:
  s:
    type: stdin
    format: csv
    schema: {name: string, price: double, qty: int}
transforms:
  priced:
    type: select
    inputs: [s]
    fields:
      name: UPPER(name)
      total: price * qty
  big:
    type: filter
    inputs: [priced]
    where: total > 10
sinks:
  out:
    type: stdout
    inputs: [big]
    format: json
"#,
    );
    let mut child = streamctl()
        .args(["run", p.to_str().unwrap(), "--progress", "off"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"name,qty,price\napple,3,2.5\npear,10,1.5\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "{\"name\":\"PEAR\",\"total\":15.0}\n"
    );
}

#[test]
fn gzip_files_and_globs_are_read_in_name_order() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    for (name, lines) in [("b.jsonl.gz", 3), ("a.jsonl.gz", 2)] {
        let file = std::fs::File::create(dir.path().join(name)).unwrap();
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        for i in 0..lines {
            writeln!(gz, "{{\"k\":\"{name}\",\"v\":{i}}}").unwrap();
        }
        gz.finish().unwrap();
    }
    let p = write_pipeline(
        dir.path(),
        &format!(
            "version: 1\nname: gz\nsources:\n  s:\n    type: file\n    path: {}/*.jsonl.gz\n    schema: {{k: string, v: int}}\nsinks:\n  out:\n    type: stdout\n    inputs: [s]\n    format: csv\n",
            dir.path().display()
        ),
    );
    let o = streamctl()
        .args(["run", p.to_str().unwrap(), "--progress", "off"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        text,
        "k,v\na.jsonl.gz,0\na.jsonl.gz,1\nb.jsonl.gz,0\nb.jsonl.gz,1\nb.jsonl.gz,2\n"
    );
}

fn endless_generator_pipeline(dir: &Path) -> PathBuf {
    write_pipeline(
        dir,
        &format!(
            r#"version: 1
name: endless
sources:
  g:
    type: generator
    preset: movie_impressions
    rate: 2000
transforms:
  w:
    type: window
    inputs: [g]
    window: {{type: tumbling, size: 1s}}
    aggregates: {{n: COUNT(*)}}
sinks:
  out:
    type: s3
    inputs: [w]
    url: file://{}/out/
    format: csv
"#,
            dir.display()
        ),
    )
}

#[test]
fn bounded_refuses_an_endless_generator() {
    let dir = tempfile::tempdir().unwrap();
    let p = endless_generator_pipeline(dir.path());
    let o = run(&[p.to_str().unwrap(), "--bounded"], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no `count`"), "{}", stderr(&o));
}

#[test]
fn ctrl_c_stops_cleanly_and_commits_finished_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = endless_generator_pipeline(dir.path());
    let child = streamctl()
        .args([
            "run",
            p.to_str().unwrap(),
            "--progress",
            "log",
            "--log-every",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(
        err.contains("[streamctl]"),
        "a progress line is logged when not on a terminal: {err}"
    );
    let written = files(&dir.path().join("out"));
    assert!(
        !written.is_empty(),
        "windows that fired before Ctrl-C are committed"
    );
    assert!(
        written
            .iter()
            .all(|f| !f.display().to_string().contains(".inprogress"))
    );
}

/// A pipeline reading `source` (a `stdin` or `file` source block) into stdout.
fn idle_input_pipeline(dir: &Path, source: &str) -> PathBuf {
    write_pipeline(
        dir,
        &format!(
            "version: 1\nname: idle\nsources:\n  s:\n{source}    schema: {{k: string, t: timestamp_ms}}\n    event_time: {{field: t}}\ntransforms:\n  w:\n    type: window\n    inputs: [s]\n    window: {{type: tumbling, size: 1s}}\n    aggregates: {{n: COUNT(*)}}\nsinks:\n  out:\n    type: stdout\n    inputs: [w]\n"
        ),
    )
}

/// A running `streamctl run` whose stderr lines arrive on a channel.
struct Running {
    child: std::process::Child,
    /// Its stdin, held open and never written to.
    _stdin: Option<std::process::ChildStdin>,
    stderr: std::sync::mpsc::Receiver<String>,
    seen: String,
}

impl Running {
    /// Runs a pipeline reading `source` (a `stdin` or `file` source block) on input that is
    /// open but idle, and waits until it is running (its first progress line).
    fn on_idle_input(dir: &Path, source: &str) -> Running {
        let p = idle_input_pipeline(dir, source);
        let mut child = streamctl()
            .args(["run", p.to_str().unwrap()])
            .args(["--progress", "log", "--log-every", "1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (lines, stderr) = std::sync::mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let mut running = Running {
            _stdin: child.stdin.take(),
            child,
            stderr,
            seen: String::new(),
        };
        running.wait_for("[streamctl]");
        running
    }

    /// Waits for a stderr line containing `text` (a hang guard of a minute, not a timing).
    fn wait_for(&mut self, text: &str) {
        while !self.seen.contains(text) {
            match self.stderr.recv_timeout(std::time::Duration::from_secs(60)) {
                Ok(line) => {
                    self.seen.push_str(&line);
                    self.seen.push('\n');
                }
                Err(_) => panic!("no `{text}` on stderr; so far:\n{}", self.seen),
            }
        }
    }

    fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// The exit code and all of stderr; fails if the process has not ended within a minute.
    fn end(mut self) -> (Option<i32>, String) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("still running a minute after Ctrl-C:\n{}", self.seen);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        while let Ok(line) = self.stderr.recv_timeout(std::time::Duration::from_secs(10)) {
            self.seen.push_str(&line);
            self.seen.push('\n');
        }
        (status.code(), self.seen)
    }
}

/// Ctrl-C stops a run whose input is idle: stdin held open by a writer that sends nothing, and
/// a FIFO no writer has opened. Both sources are blocked in a read when the Ctrl-C comes.
#[test]
fn ctrl_c_stops_a_run_on_an_idle_stdin_or_fifo() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let sources = [
        "    type: stdin\n".to_string(),
        format!("    type: file\n    path: {}\n", fifo.display()),
    ];
    for source in sources {
        let running = Running::on_idle_input(dir.path(), &source);
        running.interrupt();
        let (code, err) = running.end();
        assert_eq!(code, Some(130), "{source}{err}");
        assert!(err.contains("interrupted:"), "{source}{err}");
    }
}

/// A second Ctrl-C while the run is stopping aborts it, and says so.
#[test]
fn a_second_ctrl_c_aborts_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut running = Running::on_idle_input(dir.path(), "    type: stdin\n");
    running.interrupt();
    running.wait_for("stopping");
    running.interrupt();
    let (code, err) = running.end();
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("aborted at the second Ctrl-C"), "{err}");
}

#[test]
fn an_invalid_pipeline_exits_1_with_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_pipeline(dir.path(), "version: 1\nname: x\nsources: {}\nsinks: {}\n");
    let o = run(&[p.to_str().unwrap()], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("error[no-sources]"), "{}", stderr(&o));
}

#[test]
fn a_missing_input_file_is_a_runtime_error() {
    let o = run(
        &["pipelines/movie-impressions-local.yaml"],
        &[
            ("INPUT", "/nonexistent/x.jsonl".to_string()),
            ("OUTPUT", "file:///tmp/never/".to_string()),
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("/nonexistent/x.jsonl"),
        "{}",
        stderr(&o)
    );
}

/// `OUTPUT=/some/dir/` (a plain path, not a URL): the error names the value that was used and
/// the URL to write instead, although the file only shows `${OUTPUT:-…}`.
#[test]
fn a_plain_output_path_is_named_in_the_error() {
    let o = run(
        &["pipelines/movie-impressions-local.yaml"],
        &[
            ("INPUT", "data/movie-impressions.jsonl".to_string()),
            ("OUTPUT", "/tmp/plain/dir/".to_string()),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("found `/tmp/plain/dir/` (from `${OUTPUT:-file://out/movie-impressions/}`)"),
        "{err}"
    );
    assert!(err.contains("write `file:///tmp/plain/dir/`"), "{err}");
}

#[test]
fn records_from_a_slow_stdin_flow_through_before_it_closes() {
    use std::io::{BufRead, Write};
    let dir = tempfile::tempdir().unwrap();
    let p = write_pipeline(
        dir.path(),
        "version: 1\nname: tail\nsources:\n  s:\n    type: stdin\n    schema: {msg: string}\nsinks:\n  out:\n    type: stdout\n    inputs: [s]\n",
    );
    let mut child = streamctl()
        .args(["run", p.to_str().unwrap(), "--progress", "off"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"{\"msg\":\"first\"}\n").unwrap();
    stdin.flush().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(std::time::Duration::from_secs(10));
    drop(stdin);
    let _ = child.wait();
    assert_eq!(
        line.as_deref(),
        Ok("{\"msg\":\"first\"}\n"),
        "the record must come out while stdin is still open"
    );
}

#[test]
fn explode_turns_array_elements_into_records() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.jsonl"),
        "{\"order\":\"o1\",\"items\":[\"apple\",\"pear\"]}\n{\"order\":\"o2\",\"items\":[]}\n{\"order\":\"o3\",\"items\":null}\n{\"order\":\"o4\",\"items\":[\"fig\"]}\n",
    )
    .unwrap();
    let pipeline = |keep_empty: bool| {
        format!(
            "version: 1\nname: explode\nsources:\n  s:\n    type: file\n    path: {}/in.jsonl\n    schema: {{order: string, items: array<string>}}\ntransforms:\n  x:\n    type: explode\n    inputs: [s]\n    field: items\n    as: item\n    keep_empty: {keep_empty}\nsinks:\n  out:\n    type: stdout\n    inputs: [x]\n    format: csv\n",
            dir.path().display()
        )
    };
    let p = write_pipeline(dir.path(), &pipeline(false));
    let o = streamctl()
        .args(["run", p.to_str().unwrap(), "--progress", "off"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "order,item\no1,apple\no1,pear\no4,fig\n"
    );
    let p = write_pipeline(dir.path(), &pipeline(true));
    let o = streamctl()
        .args(["run", p.to_str().unwrap(), "--progress", "off"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "order,item\no1,apple\no1,pear\no2,\no3,\no4,fig\n"
    );
}

#[test]
fn files_roll_by_size_and_appear_only_complete() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_pipeline(
        dir.path(),
        &format!(
            "version: 1\nname: roll\nsources:\n  g:\n    type: generator\n    preset: movie_impressions\n    count: 20000\nsinks:\n  out:\n    type: s3\n    inputs: [g]\n    url: file://{}/out/\n    format: json\n    rolling: {{max_bytes: 64KiB}}\n",
            dir.path().display()
        ),
    );
    let o = run(&[p.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let written = files(&dir.path().join("out"));
    assert!(
        written.len() >= 10,
        "20k records of ~60 bytes in 64 KiB files: {}",
        written.len()
    );
    let mut records = 0;
    for f in &written {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            name.starts_with("part-") && name.ends_with(".jsonl"),
            "{name}"
        );
        let len = std::fs::metadata(f).unwrap().len();
        // A file closes at the first slice of 512 rows that reaches the limit.
        assert!(len <= 64 * 1024 + 512 * 80, "{name} has {len} bytes");
        records += std::fs::read_to_string(f).unwrap().lines().count();
    }
    assert_eq!(records, 20000);
}

/// Window state past `--max-state-memory` stops the run with a message that names the stage,
/// its open windows and keys, and what to change; a generous limit changes nothing.
#[test]
fn window_state_over_the_memory_limit_stops_the_run_with_an_explanation() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = write_pipeline(
        dir.path(),
        r#"
version: 1
name: many-keys
sources:
  impressions:
    type: generator
    preset: movie_impressions
    count: 200000
    interval: 1ms
    users: 1000000
    event_time: {field: timestamp, max_out_of_orderness: 1s}
transforms:
  per_user:
    type: window
    inputs: [impressions]
    window: {type: tumbling, size: 15m}
    group_by: [movieId, userId]
    aggregates:
      impressions: COUNT(*)
sinks:
  out:
    type: file
    inputs: [per_user]
    path: ${OUTPUT}
    format: csv
"#,
    );
    let output = dir.path().join("out.csv");
    let env = [("OUTPUT", output.display().to_string())];
    let o = run(
        &[pipeline.to_str().unwrap(), "--max-state-memory", "1MiB"],
        &env,
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for expected in [
        "stage `per_user`",
        "memory limit of 1.00 MiB",
        "groups (a key in a window) in 1 open windows",
        "shorter windows",
        "fewer keys (`group_by`)",
        "`allowed_lateness`",
        "--max-state-memory",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in: {err}");
    }
    std::fs::remove_file(&output).ok();
    let o = run(
        &[pipeline.to_str().unwrap(), "--max-state-memory", "1GiB"],
        &env,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = std::fs::read_to_string(&output).unwrap().lines().count();
    // 200,000 draws from a million users in one 15-minute window (plus the header).
    assert!(rows > 180_000, "{rows} rows");
}
