//! `streamctl test`, through the binary: every pipeline in `pipelines/` has tests and they
//! pass; a changed expectation or input fails with a diff naming the line, window and key;
//! `--update` and `--create-from` write tests that pass; `validate` checks test files; the
//! schema of test files is current.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn streamctl(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_streamctl"))
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// A copy of a reference pipeline and its tests in a temporary directory.
fn copy_of(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for file in [format!("{name}.yaml"), format!("{name}.test.yaml")] {
        std::fs::copy(root().join("pipelines").join(&file), dir.path().join(&file)).unwrap();
    }
    let test = dir.path().join(format!("{name}.test.yaml"));
    (dir, test)
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} lacks {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

fn line_of(path: &Path, needle: &str) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

/// The `.yaml` files in `dir` and the directories below it.
fn yaml_files_below(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(yaml_files_below(&path));
        } else if path.extension().is_some_and(|e| e == "yaml") {
            found.push(path);
        }
    }
    found
}

#[test]
fn every_reference_pipeline_has_tests_and_they_pass() {
    let mut untested = Vec::new();
    for path in yaml_files_below(&root().join("pipelines")) {
        if path.extension().is_some_and(|e| e == "yaml")
            && !streamctl::testing::is_test_file(&path)
            && !streamctl::testing::test_file_for(&path).exists()
        {
            untested.push(path.display().to_string());
        }
    }
    assert!(untested.is_empty(), "pipelines without tests: {untested:?}");
    let o = streamctl(&root(), &["test", "pipelines/"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", stderr(&o));
    assert!(out.contains("test result: ok."), "{out}");
    assert!(
        !out.contains("FAIL") && !out.contains("no tests for"),
        "{out}"
    );
    // Each reference pipeline's tests exercise a late event; where the pipeline routes late
    // events or bad records, the tests expect the routed rows (late rows name the window they
    // missed, dead letters their position) and feed a bad record as raw bytes.
    for path in yaml_files_below(&root().join("pipelines")) {
        if !streamctl::testing::is_test_file(&path) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let pipeline =
            std::fs::read_to_string(streamctl::testing::spec::default_pipeline_for(&path)).unwrap();
        let shown = path.display();
        assert!(
            text.contains("late_events") || text.contains("late_window_start"),
            "{shown} has no late event"
        );
        let routes = |what: &str| {
            pipeline
                .lines()
                .any(|l| l.trim_start().starts_with(what) && l.contains("to:"))
        };
        if routes("late:") {
            assert!(
                text.contains("late_window_start"),
                "{shown}: no routed late row"
            );
        }
        if routes("bad_records:") {
            assert!(
                text.contains("raw:") && text.contains("position:"),
                "{shown}: no dead letter"
            );
        }
        assert!(
            text.contains("raw:") || !text.contains("bad_records"),
            "{shown}"
        );
    }
}

#[test]
fn a_changed_expected_value_fails_naming_the_line_window_key_and_field() {
    let (dir, test) = copy_of("movie-impressions-local");
    let row = "{movieId: \"2001\", userId: \"1970\", impressions: 2, latestImpression: 2019-01-07T00:07:30Z}";
    edit(&test, row, &row.replace("impressions: 2", "impressions: 3"));
    let line = line_of(&test, "impressions: 3");
    let o = streamctl(dir.path(), &["test", "."]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("FAIL  impressions are counted per movie and user"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "sink `hourly`, line {line}: row differs (window 2019-01-07 00:00–00:15, key movieId=2001, userId=1970, object 2019-01-07--00/2001/)"
        )),
        "{out}"
    );
    assert!(out.contains("impressions: expected 3, actual 2"), "{out}");
    assert!(
        out.contains("test result: FAILED. 4 passed, 1 failed"),
        "{out}"
    );
}

#[test]
fn a_changed_input_timestamp_fails_with_the_rows_that_moved() {
    let (dir, test) = copy_of("movie-impressions-local");
    // The 00:52 impression moves to 01:10: it leaves the 00:45 window and the 00 hour.
    edit(
        &test,
        "{movieId: \"2016\", userId: \"1970\", timestamp: 2019-01-07T00:52:00Z}",
        "{movieId: \"2016\", userId: \"1970\", timestamp: 2019-01-07T01:10:00Z}",
    );
    let o = streamctl(dir.path(), &["test", "movie-impressions-local.yaml"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("object `2019-01-07--00/2016/` was not written"),
        "{out}"
    );
    assert!(
        out.contains("row differs (window 2019-01-07 01:00–01:15, key movieId=2016, userId=1970, object 2019-01-07--01/2016/)"),
        "{out}"
    );
    assert!(out.contains("impressions: expected 1, actual 2"), "{out}");
}

#[test]
fn a_removed_watermark_step_changes_what_is_late() {
    let (dir, test) = copy_of("movie-impressions-local");
    edit(&test, "        - watermark: 2019-01-07T00:20:00Z\n", "");
    let o = streamctl(dir.path(), &["test", ".", "--filter", "watermark advance"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("window `per_user` counted 0 late events, expected 1"),
        "{out}"
    );
    assert!(out.contains("4 filtered out"), "{out}");
}

#[test]
fn update_rewrites_what_changed_and_keeps_the_rest_of_the_file() {
    let (dir, test) = copy_of("movie-impressions-local");
    let row = "{movieId: \"2001\", userId: \"1970\", impressions: 2, latestImpression: 2019-01-07T00:07:30Z}";
    edit(&test, row, &row.replace("impressions: 2", "impressions: 3"));
    edit(
        &test,
        "      late_events: {per_user: 1}\n      bad_records: 0",
        "      late_events: {per_user: 7}\n      bad_records: 0",
    );
    let before = std::fs::read_to_string(&test).unwrap();
    let o = streamctl(dir.path(), &["test", ".", "--update"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("2 updated"), "{}", stdout(&o));
    let after = std::fs::read_to_string(&test).unwrap();
    let original =
        std::fs::read_to_string(root().join("pipelines/movie-impressions-local.test.yaml"))
            .unwrap();
    assert_eq!(
        after, original,
        "--update restores the reference file exactly"
    );
    assert_ne!(before, after);
    let o = streamctl(dir.path(), &["test", "."]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn update_writes_the_outputs_of_a_test_that_has_none() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("pipelines/taxi-hot-spots.yaml"),
        dir.path().join("hot.yaml"),
    )
    .unwrap();
    let test = dir.path().join("hot.test.yaml");
    std::fs::write(
        &test,
        "tests:\n  - name: one start and a bad record   # say what it shows\n    inputs:\n      trips:\n        - {tripId: a, event: start, lat: 40.7512, lon: -73.9876, passengers: 2, timestamp: 2019-01-07T08:03:00Z}\n        - raw: 'not a trip'\n  - name: outputs to fill in\n    inputs:\n      trips:\n        - {tripId: b, event: start, lat: 40.7512, lon: -73.9876, passengers: 1, timestamp: 2019-01-07T09:03:00Z}\n    outputs: {}   # to fill in\n",
    )
    .unwrap();
    // Without expectations it would pass whatever the pipeline does: it fails, saying why.
    let o = streamctl(dir.path(), &["test", "hot.yaml"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("line 2: the test checks nothing"),
        "{}",
        stdout(&o)
    );
    let o = streamctl(dir.path(), &["test", "hot.yaml", "--update"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let text = std::fs::read_to_string(&test).unwrap();
    assert!(text.contains("# say what it shows"), "{text}");
    assert!(
        text.contains(
            "    outputs:\n      hot_spots_s3:\n        objects:\n          2019-01-07/08/:\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("      bad_trips_s3:\n        - {component: trips, error: 'expected a JSON object, found not a trip', raw: not a trip, position: trips:2, raw_base64: false}"),
        "{text}"
    );
    // `outputs: {}` is replaced by every sink's outputs, its comment kept.
    assert!(
        text.contains(
            "    outputs:\n      hot_spots_s3:\n        objects:\n          2019-01-07/09/:\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("      bad_trips_s3: []   # to fill in\n"),
        "{text}"
    );
    let o = streamctl(dir.path(), &["test", "hot.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn create_from_samples_real_input_into_a_passing_test() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        root().join("pipelines/movie-impressions-local.yaml"),
        dir.path().join("movies.yaml"),
    )
    .unwrap();
    let data = std::fs::read_to_string(root().join("data/movie-impressions.jsonl")).unwrap();
    let mut sample: Vec<&str> = data.lines().take(12).collect();
    sample.insert(3, "{\"movieId\": \"2001\", \"timestamp\": \"noon\"}");
    std::fs::write(dir.path().join("sample.jsonl"), sample.join("\n") + "\n").unwrap();
    let o = streamctl(
        dir.path(),
        &[
            "test",
            "movies.yaml",
            "--create-from",
            "sample.jsonl",
            "--records",
            "6",
            "--name",
            "a sample",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("added test `a sample` to movies.test.yaml: 6 records"),
        "{}",
        stdout(&o)
    );
    let text = std::fs::read_to_string(dir.path().join("movies.test.yaml")).unwrap();
    // Time fields read as instants; the record the source cannot read is kept exactly.
    assert!(
        text.contains("- {movieId: '2001', userId: '1970', timestamp: 2019-01-06T23:59:58.274Z}"),
        "{text}"
    );
    assert!(
        text.contains("- raw: '{\"movieId\": \"2001\", \"timestamp\": \"noon\"}'"),
        "{text}"
    );
    assert!(
        text.contains("    outputs:\n      hourly:\n        objects:\n"),
        "{text}"
    );
    assert_eq!(text.matches("impressions: 1").count(), 5, "{text}");
    // A second sample goes beside the first.
    let o = streamctl(
        dir.path(),
        &[
            "test",
            "movies.test.yaml",
            "--create-from",
            "sample.jsonl",
            "--records",
            "2",
            "--name",
            "another",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let o = streamctl(dir.path(), &["test", "."]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("test result: ok. 2 passed"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn github_format_annotates_the_failing_line() {
    let (dir, test) = copy_of("taxi-hot-spots");
    edit(
        &test,
        "raw: trip d started, position: trips:4",
        "raw: trip d started, position: trips:5",
    );
    let line = line_of(&test, "position: trips:5");
    let o = streamctl(dir.path(), &["test", ".", "--format", "github"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let annotation = out
        .lines()
        .find(|l| l.starts_with("::error "))
        .unwrap_or_else(|| panic!("no annotation in {out}"));
    assert!(
        annotation.starts_with(&format!(
            "::error file=./taxi-hot-spots.test.yaml,line={line},"
        )),
        "{annotation}"
    );
    assert!(
        annotation.contains("sink `bad_trips_s3`: row differs (record trips:4)"),
        "{annotation}"
    );
    assert!(
        annotation.contains("position: expected trips:5, actual trips:4"),
        "{annotation}"
    );
}

#[test]
fn a_test_can_expect_the_run_to_fail() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("strict.yaml"),
        "version: 1\nname: strict\nsources:\n  s:\n    type: stdin\n    schema: {id: string, n: int, ts: timestamp_ms}\n    event_time: {field: ts}\n    bad_records: {policy: fail}\nsinks:\n  out: {type: stdout, inputs: [s]}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("strict.test.yaml"),
        "tests:\n  - name: a bad record stops the run\n    inputs:\n      s:\n        - {id: a, n: 1, ts: 2019-01-07T00:00:00Z}\n        - raw: '{\"id\": \"b\", \"n\": \"many\", \"ts\": 1}'\n    error: \"bad record at s:2\"\n  - name: good records go through in order\n    inputs:\n      s:\n        - {id: a, n: 1, ts: 2019-01-07T00:00:00Z}\n        - {id: b, n: 2, ts: 2019-01-07T00:00:01Z}\n    outputs:\n      out:\n        content: |\n          {\"id\":\"a\",\"n\":1,\"ts\":1546819200000}\n          {\"id\":\"b\",\"n\":2,\"ts\":1546819201000}\n",
    )
    .unwrap();
    let o = streamctl(dir.path(), &["test", "."]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    edit(
        &dir.path().join("strict.test.yaml"),
        "bad record at s:2",
        "bad record at s:3",
    );
    let o = streamctl(dir.path(), &["test", "."]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("the run failed, but not with `bad record at s:3`"),
        "{out}"
    );
    assert!(out.contains("+ `s`: bad record at s:2: field `n`"), "{out}");
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = streamctl(dir.path(), &["test", "missing/"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("missing/ does not exist"),
        "{}",
        stderr(&o)
    );
    let o = streamctl(dir.path(), &["test", "."]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no test files (`*.test.yaml`) in ."),
        "{}",
        stderr(&o)
    );
    std::fs::copy(
        root().join("pipelines/movie-impressions-local.yaml"),
        dir.path().join("m.yaml"),
    )
    .unwrap();
    let o = streamctl(dir.path(), &["test", "m.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("m.yaml has no tests: write m.test.yaml"),
        "{}",
        stderr(&o)
    );
    let o = streamctl(dir.path(), &["test", "--records", "3"]);
    assert_eq!(o.status.code(), Some(2), "clap usage error");
}

#[test]
fn validate_checks_test_files_against_their_pipeline() {
    let (dir, test) = copy_of("movie-impressions-local");
    edit(
        &test,
        "{movieId: \"2001\", userId: \"1970\", timestamp: 2019-01-07T00:10:00Z}",
        "{movieID: \"2001\", userId: \"1970\", timestamp: 2019-01-07T00:10:00Z}",
    );
    edit(
        &test,
        "      hourly:\n        - {movieId: \"2001\", userId: \"1970\", impressions: 1, latestImpression: 2019-01-07T00:10:00Z}",
        "      hourly:\n        - {movieId: \"2001\", userId: \"1970\", impressions: one, latestImpression: 2019-01-07T00:10:00Z}",
    );
    let record = line_of(&test, "movieID");
    let row = line_of(&test, "impressions: one");
    let o = streamctl(
        dir.path(),
        &[
            "validate",
            "movie-impressions-local.test.yaml",
            "movie-impressions-local.yaml",
        ],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "--> movie-impressions-local.test.yaml:{record}:12"
        )),
        "{err}"
    );
    assert!(
        err.contains("`movieID` is not a field of this source; did you mean `movieId`?"),
        "{err}"
    );
    assert!(
        err.contains(&format!("--> movie-impressions-local.test.yaml:{row}:")),
        "{err}"
    );
    assert!(
        err.contains("`impressions` is int: expected a whole number, found `one`"),
        "{err}"
    );
    assert!(
        stdout(&o).contains("movie-impressions-local.test.yaml: invalid (2 errors)"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("movie-impressions-local.yaml: valid"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        stdout(&o).matches(".test.yaml").count(),
        1,
        "{}",
        stdout(&o)
    );
    // Naming the pipeline alone checks the tests beside it.
    let o = streamctl(dir.path(), &["validate", "movie-impressions-local.yaml"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("movie-impressions-local.test.yaml: invalid (2 errors)"),
        "{}",
        stdout(&o)
    );
    assert!(
        stderr(&o).contains("`movieID` is not a field of this source"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        stdout(&o).matches(".test.yaml").count(),
        1,
        "{}",
        stdout(&o)
    );
    // `test` refuses to run the file, with the same diagnostics.
    let o = streamctl(dir.path(), &["test", "."]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("the test file is invalid (2 errors, shown above)"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn checked_in_test_schema_is_up_to_date_and_describes_every_property() {
    let generated =
        serde_json::to_string_pretty(&streamctl::testing::config::json_schema()).unwrap() + "\n";
    let checked_in =
        std::fs::read_to_string(root().join("schemas/pipeline-test.schema.json")).unwrap();
    assert!(
        checked_in == generated,
        "schemas/pipeline-test.schema.json is stale: run `make schema` (or `streamctl schema --tests -o schemas/pipeline-test.schema.json`)"
    );
    let mut missing = Vec::new();
    streamctl::config::visit_schemas(&mut streamctl::testing::config::json_schema(), &mut |obj| {
        if let Some(serde_json::Value::Object(props)) = obj.get("properties") {
            for (name, prop) in props {
                if prop.get("description").is_none() {
                    missing.push(name.clone());
                }
            }
        }
    });
    assert!(missing.is_empty(), "undocumented: {missing:?}");
}

#[test]
fn shipped_test_files_follow_the_schema() {
    use serde::Deserialize;
    let schema = streamctl::testing::config::json_schema();
    for entry in std::fs::read_dir(root().join("pipelines")).unwrap() {
        let path = entry.unwrap().path();
        if !streamctl::testing::is_test_file(&path) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut node = streamctl::config::yaml::parse(&text).unwrap();
        let problems = streamctl::config::check::check(&mut node, &schema);
        assert!(problems.is_empty(), "{}: {problems:?}", path.display());
        streamctl::testing::config::TestFileConfig::deserialize(
            streamctl::config::de::NodeDeserializer(&node),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

/// The test file examples of `streamctl test --help` and the README run as written against the
/// pipeline they describe (a copy of pipelines/movie-impressions-local.yaml as movies.yaml).
#[test]
fn the_documented_examples_pass_as_written() {
    let help = stdout(&streamctl(&root(), &["test", "--help"]));
    let start = help
        .find("  # movies.test.yaml")
        .expect("an example in --help");
    let help_example: String = help[start..]
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| format!("{}\n", l.strip_prefix("  ").unwrap_or(l)))
        .collect();
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find("```yaml\n# movies.test.yaml")
        .expect("an example in README.md");
    let readme_example: String = readme[start + "```yaml\n".len()..]
        .split("```")
        .next()
        .unwrap()
        .to_string();
    for (what, example) in [("--help", help_example), ("README.md", readme_example)] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            root().join("pipelines/movie-impressions-local.yaml"),
            dir.path().join("movies.yaml"),
        )
        .unwrap();
        std::fs::write(dir.path().join("movies.test.yaml"), &example).unwrap();
        let o = streamctl(dir.path(), &["test", "movies.yaml"]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "the example of {what} fails:\n{example}\n{}{}",
            stdout(&o),
            stderr(&o)
        );
    }
}
