//! Conformance with real Apache Flink 1.20: the SQL of `streamctl plan --target flink-sql`,
//! run by Flink (the PyPI `apache-flink` build that `scripts/flink.sh` installs), gives the
//! same rows as the embedded engine.
//!
//! Every pipeline in `pipelines/` and a set of randomized pipelines (window kinds and sizes,
//! keys, filters, computed columns, several aggregates) over randomized inputs (disorder within
//! the watermark bound) run twice: with `streamctl run`, and as the generated SQL on Flink.
//! Sources and sinks are swapped for files first (Flink's Kafka, Kinesis and Parquet jars are
//! not available here; tests/flink_plan.rs checks that DDL against the connector docs): each
//! source reads a JSON-lines file of `streamctl generate` records matching its schema, each
//! sink writes a directory; everything else is the pipeline as written. Outputs must be equal
//! as multisets of rows (doubles compared to 12 significant digits: Flink may add in another
//! order), and where the bucket template is Hive style, with each row in the same directory.
//! Sinks that `validate --target flink` reports as left out (late events, dead letters) are
//! not compared. All scripts run in one Flink JVM (`src/flink/sql_runner.py --batch`).
//!
//! The randomized cases come from a seed; `STREAMCTL_FLINK_SEED=N` reruns another set.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value as Json, json};
use yaml_rust2::yaml::Hash;
use yaml_rust2::{Yaml, YamlEmitter, YamlLoader};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// streamctl with a clean environment (so `${VAR:-default}` takes its default).
fn streamctl(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_streamctl"));
    c.current_dir(root()).env_clear().args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run streamctl")
}

fn ok(o: std::process::Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// The Python of the project's Flink install (installed on first use; fails loudly).
fn flink_python() -> String {
    let o = Command::new(root().join("scripts/flink.sh"))
        .arg("python")
        .output()
        .expect("run scripts/flink.sh");
    assert!(
        o.status.success(),
        "scripts/flink.sh could not install Flink: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// One sink of a case whose output both engines must agree on.
struct Compared {
    sink: String,
    fields: Vec<(String, String)>,
    format: String,
    header: bool,
    /// Compare each row's directory too (a Hive-style template).
    same_layout: bool,
}

struct Case {
    name: String,
    dir: PathBuf,
    compared: Vec<Compared>,
}

fn str_yaml(s: &str) -> Yaml {
    Yaml::String(s.to_string())
}

fn get<'a>(map: &'a Hash, key: &str) -> Option<&'a Yaml> {
    map.get(&str_yaml(key))
}

/// The YAML type name of a plan JSON field.
fn yaml_type(field: &Json) -> String {
    let ty = field["type"].as_str().unwrap();
    match (ty, field["epoch_unit_ms"].as_i64()) {
        ("BIGINT", Some(1)) => "timestamp_ms".into(),
        ("BIGINT", Some(1000)) => "timestamp_s".into(),
        ("BIGINT", _) => "int".into(),
        ("DOUBLE", _) => "double".into(),
        ("STRING", _) => "string".into(),
        ("BOOLEAN", _) => "boolean".into(),
        ("TIMESTAMP_LTZ(3)", _) => "timestamp".into(),
        (other, _) => panic!("no input data for fields of type {other}"),
    }
}

/// The generator preset whose records carry every field of `schema` with the same type.
fn preset_for(schema: &[Json]) -> &'static str {
    let presets: [(&str, &[(&str, &str)]); 4] = [
        (
            "movie_impressions",
            &[
                ("movieId", "STRING"),
                ("userId", "STRING"),
                ("timestamp", "BIGINT"),
            ],
        ),
        (
            "taxi_trips",
            &[
                ("tripId", "STRING"),
                ("event", "STRING"),
                ("lat", "DOUBLE"),
                ("lon", "DOUBLE"),
                ("passengers", "BIGINT"),
                ("durationSec", "BIGINT"),
                ("airport", "STRING"),
                ("timestamp", "BIGINT"),
            ],
        ),
        (
            "stock_ticks",
            &[
                ("symbol", "STRING"),
                ("price", "DOUBLE"),
                ("volume", "BIGINT"),
                ("timestamp", "BIGINT"),
            ],
        ),
        (
            "delivery_pings",
            &[
                ("agentId", "STRING"),
                ("lat", "DOUBLE"),
                ("lon", "DOUBLE"),
                ("speedKmh", "DOUBLE"),
                ("timestamp", "BIGINT"),
            ],
        ),
    ];
    presets
        .iter()
        .find(|(_, fields)| {
            schema.iter().all(|f| {
                fields.contains(&(f["name"].as_str().unwrap(), f["type"].as_str().unwrap()))
            })
        })
        .map(|(p, _)| *p)
        .unwrap_or_else(|| panic!("no generator preset has the fields {schema:?}"))
}

/// Rewrites a pipeline for the comparison: sources read generated files, sinks write under
/// `${SINK_ROOT}`. Returns the case (not yet run).
fn file_case(name: &str, original: &str, base: &Path) -> Case {
    let dir = base.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let pipeline = dir.join("original.yaml");
    std::fs::write(&pipeline, original).unwrap();
    let plan: Json = serde_json::from_str(&ok(
        streamctl(
            &["plan", pipeline.to_str().unwrap(), "--format", "json"],
            &[],
        ),
        "plan --format json",
    ))
    .unwrap();
    let mut doc = YamlLoader::load_from_str(original).unwrap().remove(0);
    let Yaml::Hash(top) = &mut doc else {
        panic!("not a mapping")
    };
    top.remove(&str_yaml("checkpoint"));
    let old_sources = get(top, "sources").cloned().unwrap();
    let old_sinks = get(top, "sinks").cloned().unwrap();
    let mut sources = Hash::new();
    let mut sinks = Hash::new();
    let mut compared = Vec::new();
    for stage in plan["stages"].as_array().unwrap() {
        let stage_name = stage["name"].as_str().unwrap();
        let settings = &stage["settings"];
        match stage["kind"].as_str().unwrap() {
            "source" => {
                let schema = stage["outputs"][0]["schema"].as_array().unwrap().clone();
                let data = dir.join(format!("{stage_name}.jsonl"));
                let mut args = vec!["generate".to_string()];
                if stage["type"] == "generator" {
                    let preset = settings["preset"].as_str().unwrap();
                    let snake: String = preset
                        .chars()
                        .enumerate()
                        .flat_map(|(i, c)| {
                            let lower = c.to_ascii_lowercase();
                            if c.is_uppercase() && i > 0 {
                                vec!['_', lower]
                            } else {
                                vec![lower]
                            }
                        })
                        .collect();
                    args.push(snake);
                    args.push(format!("--seed={}", settings["seed"]));
                    if let Some(i) = settings["interval_ms"].as_i64() {
                        args.push(format!("--interval={i}ms"));
                    }
                    args.push(format!("--disorder={}ms", settings["disorder_ms"]));
                } else {
                    args.push(preset_for(&schema).to_string());
                    args.push("--interval=50ms".to_string());
                    let bound = settings["event_time"]["max_out_of_orderness_ms"]
                        .as_i64()
                        .unwrap_or(0);
                    args.push(format!("--disorder={bound}ms"));
                }
                args.push("--count=20000".to_string());
                args.push(format!("--output={}", data.display()));
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                ok(streamctl(&args, &[]), "generate");
                let mut source = Hash::new();
                source.insert(str_yaml("type"), str_yaml("file"));
                source.insert(str_yaml("path"), str_yaml(data.to_str().unwrap()));
                source.insert(str_yaml("format"), str_yaml("json"));
                let mut fields = Hash::new();
                for f in &schema {
                    fields.insert(
                        str_yaml(f["name"].as_str().unwrap()),
                        str_yaml(&yaml_type(f)),
                    );
                }
                source.insert(str_yaml("schema"), Yaml::Hash(fields));
                if let Some(et) = settings.get("event_time") {
                    let mut e = Hash::new();
                    e.insert(str_yaml("field"), str_yaml(et["field"].as_str().unwrap()));
                    e.insert(
                        str_yaml("max_out_of_orderness"),
                        str_yaml(&format!("{}ms", et["max_out_of_orderness_ms"])),
                    );
                    source.insert(str_yaml("event_time"), Yaml::Hash(e));
                }
                if let Some(Yaml::Hash(old)) =
                    old_sources.as_hash().and_then(|h| get(h, stage_name))
                    && let Some(bad) = get(old, "bad_records")
                {
                    source.insert(str_yaml("bad_records"), bad.clone());
                }
                sources.insert(str_yaml(stage_name), Yaml::Hash(source));
            }
            "sink" => {
                let Some(Yaml::Hash(old)) = old_sinks.as_hash().and_then(|h| get(h, stage_name))
                else {
                    panic!("sink {stage_name} not in the file")
                };
                let mut sink = Hash::new();
                sink.insert(str_yaml("inputs"), get(old, "inputs").unwrap().clone());
                let mut format = settings["format"].as_str().unwrap_or("json").to_string();
                if format == "parquet" {
                    // No Parquet jar in the PyPI Flink; the layout and rows are what is compared.
                    format = "json".to_string();
                }
                let header = settings["csv"]["header"].as_bool().unwrap_or(true);
                let mut same_layout = false;
                if stage["type"] == "file" {
                    sink.insert(str_yaml("type"), str_yaml("file"));
                    sink.insert(
                        str_yaml("path"),
                        str_yaml(&format!("${{SINK_ROOT}}/{stage_name}")),
                    );
                } else {
                    sink.insert(str_yaml("type"), str_yaml("s3"));
                    sink.insert(
                        str_yaml("url"),
                        str_yaml(&format!("file://${{SINK_ROOT}}/{stage_name}/")),
                    );
                    if let Some(path) = get(old, "path") {
                        sink.insert(str_yaml("path"), path.clone());
                    }
                }
                sink.insert(str_yaml("format"), str_yaml(&format));
                for key in ["fields", "csv", "rolling"] {
                    if let Some(v) = get(old, key) {
                        sink.insert(str_yaml(key), v.clone());
                    }
                }
                if let Some(path) = settings["path"].as_str()
                    && !path.is_empty()
                {
                    same_layout = is_hive(path);
                }
                sinks.insert(str_yaml(stage_name), Yaml::Hash(sink));
                let fields: Vec<(String, String)> = plan["stages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .flat_map(|s| s["outputs"].as_array().unwrap().iter())
                    .find(|o| Some(o["name"].clone()) == stage["inputs"].get(0).cloned())
                    .map(|o| {
                        let by_name: HashMap<&str, &str> = o["schema"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|f| (f["name"].as_str().unwrap(), f["type"].as_str().unwrap()))
                            .collect();
                        settings["fields"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|f| {
                                let n = f.as_str().unwrap();
                                (n.to_string(), by_name[n].to_string())
                            })
                            .collect()
                    })
                    .unwrap();
                compared.push(Compared {
                    sink: stage_name.to_string(),
                    fields,
                    format,
                    header,
                    same_layout,
                });
            }
            _ => {}
        }
    }
    top.insert(str_yaml("sources"), Yaml::Hash(sources));
    top.insert(str_yaml("sinks"), Yaml::Hash(sinks));
    let mut text = String::new();
    YamlEmitter::new(&mut text).dump(&doc).unwrap();
    std::fs::write(dir.join("pipeline.yaml"), text).unwrap();
    Case {
        name: name.to_string(),
        dir,
        compared,
    }
}

/// Whether every level of a bucket template is `key={…}`.
fn is_hive(template: &str) -> bool {
    template.split('/').filter(|l| !l.is_empty()).all(|level| {
        level.split_once('=').is_some_and(|(k, v)| {
            !k.contains('{')
                && v.starts_with('{')
                && v.ends_with('}')
                && v.matches('{').count() == 1
        })
    })
}

/// Runs the engine, writes the Flink script, and drops sinks Flink leaves out.
fn prepare(case: &mut Case) {
    let pipeline = case.dir.join("pipeline.yaml");
    let pipeline = pipeline.to_str().unwrap();
    let engine = case.dir.join("engine");
    let flink = case.dir.join("flink");
    ok(
        streamctl(
            &["run", pipeline, "--progress", "off"],
            &[("SINK_ROOT", engine.to_str().unwrap())],
        ),
        &format!("{}: streamctl run", case.name),
    );
    let sql = ok(
        streamctl(
            &["plan", pipeline, "--target", "flink-sql"],
            &[("SINK_ROOT", flink.to_str().unwrap())],
        ),
        &format!("{}: plan --target flink-sql", case.name),
    );
    std::fs::write(case.dir.join("job.sql"), sql).unwrap();
    let report: Json = serde_json::from_str(&ok(
        streamctl(
            &[
                "validate", pipeline, "--target", "flink", "--format", "json",
            ],
            &[("SINK_ROOT", flink.to_str().unwrap())],
        ),
        "validate --target flink",
    ))
    .unwrap();
    let left_out: Vec<String> = report["files"][0]["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] == "flink-left-out")
        .map(|d| d["message"].as_str().unwrap().to_string())
        .collect();
    case.compared.retain(|c| {
        !left_out
            .iter()
            .any(|m| m.starts_with(&format!("`{}` is left out", c.sink)))
    });
}

/// A value in a form both engines' text agrees on.
fn normalize(value: &Json, ty: &str) -> String {
    let text = match value {
        Json::Null => return "NULL".to_string(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.is_empty() && ty != "STRING" {
        return "NULL".to_string();
    }
    match ty {
        "DOUBLE" => match text.parse::<f64>() {
            Ok(d) => format!("{d:.11e}"),
            Err(_) => text,
        },
        "TIMESTAMP_LTZ(3)" => {
            let t = text.trim_end_matches('Z').replace('T', " ");
            let (secs, frac) = t.split_once('.').unwrap_or((&t, "0"));
            format!("{secs}.{:0<3}", &frac[..frac.len().min(3)])
        }
        _ => text,
    }
}

/// Rows of a sink's output directory (or file): `(directory, row)` counts.
fn rows(path: &Path, c: &Compared, flink: bool) -> BTreeMap<(String, Vec<String>), usize> {
    let mut out = BTreeMap::new();
    let mut files = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        if p.is_file() {
            files.push(p);
            continue;
        }
        for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !name.starts_with('.') && !name.starts_with('_') {
                stack.push(e.path());
            }
        }
    }
    for file in files {
        let dir = file
            .parent()
            .unwrap()
            .strip_prefix(path)
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        let dir = if c.same_layout { dir } else { String::new() };
        let text = std::fs::read_to_string(&file).unwrap();
        if c.format == "csv" {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(c.header && !flink)
                .from_reader(text.as_bytes());
            for record in reader.records() {
                let record = record.unwrap();
                let row = c
                    .fields
                    .iter()
                    .zip(record.iter())
                    .map(|((_, ty), v)| normalize(&Json::String(v.to_string()), ty))
                    .collect();
                *out.entry((dir.clone(), row)).or_insert(0) += 1;
            }
        } else {
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let v: Json = serde_json::from_str(line).unwrap();
                let row = c
                    .fields
                    .iter()
                    .map(|(n, ty)| normalize(v.get(n).unwrap_or(&Json::Null), ty))
                    .collect();
                *out.entry((dir.clone(), row)).or_insert(0) += 1;
            }
        }
    }
    out
}

/// Runs every case's script on Flink in one JVM and compares.
fn conform(mut cases: Vec<Case>) {
    for case in &mut cases {
        prepare(case);
    }
    let jobs: Vec<Json> = cases
        .iter()
        .map(|c| json!({"name": c.name, "script": c.dir.join("job.sql")}))
        .collect();
    let base = cases[0].dir.parent().unwrap().to_path_buf();
    let jobs_file = base.join("jobs.json");
    std::fs::write(&jobs_file, serde_json::to_string(&jobs).unwrap()).unwrap();
    let o = Command::new(flink_python())
        .arg(root().join("src/flink/sql_runner.py"))
        .arg("--batch")
        .arg(&jobs_file)
        .output()
        .expect("run the Flink SQL runner");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "the Flink runner failed: {}\n{stdout}",
        String::from_utf8_lossy(&o.stderr)
    );
    let results: HashMap<String, Json> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Json>(l).ok())
        .map(|j| (j["name"].as_str().unwrap().to_string(), j))
        .collect();
    let mut failures = Vec::new();
    for case in &cases {
        let Some(result) = results.get(&case.name) else {
            failures.push(format!("{}: no result from Flink", case.name));
            continue;
        };
        if result["ok"] != true {
            failures.push(format!(
                "{}: Flink failed: {}\n{}",
                case.name,
                result["error"],
                std::fs::read_to_string(case.dir.join("job.sql")).unwrap()
            ));
            continue;
        }
        assert!(
            !case.compared.is_empty() || case.name.starts_with("pipelines/"),
            "{}: nothing to compare",
            case.name
        );
        for c in &case.compared {
            let engine = rows(&case.dir.join("engine").join(&c.sink), c, false);
            let flink = rows(&case.dir.join("flink").join(&c.sink), c, true);
            let count = |m: &BTreeMap<_, usize>| m.values().sum::<usize>();
            if engine != flink {
                let only_engine: Vec<_> = engine
                    .iter()
                    .filter(|(k, v)| flink.get(*k) != Some(v))
                    .take(3)
                    .collect();
                let only_flink: Vec<_> = flink
                    .iter()
                    .filter(|(k, v)| engine.get(*k) != Some(v))
                    .take(3)
                    .collect();
                failures.push(format!(
                    "{} sink `{}`: engine {} rows, Flink {} rows; differing engine rows {only_engine:?}; differing Flink rows {only_flink:?}\n{}",
                    case.name,
                    c.sink,
                    count(&engine),
                    count(&flink),
                    std::fs::read_to_string(case.dir.join("job.sql")).unwrap()
                ));
            } else {
                assert!(
                    count(&engine) > 0 || case.name.starts_with("random"),
                    "{} sink `{}` wrote nothing",
                    case.name,
                    c.sink
                );
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// ----- randomized pipelines --------------------------------------------------------------

/// SplitMix64, so a seed always gives the same cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A random pipeline over `{k, g, v, n, ts}` events and its input file.
fn random_case(index: usize, rng: &mut Rng, base: &Path) -> Case {
    let name = format!("random-{index}");
    let dir = base.join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    // Input: keys with characters a bucket path must escape, timestamps moved back by up to
    // the watermark bound.
    let bound = *rng.pick(&[0i64, 500, 2_000, 10_000]);
    let step = *rng.pick(&[200i64, 1_000, 3_000]);
    let keys = ["a", "b", "c d", "e/f", "g:h", "i=j", "k%l"];
    let count = 300 + rng.below(1200) as i64;
    let start = 1_546_819_200_000i64 + rng.below(3_600_000) as i64;
    let text_time = rng.chance(30);
    let mut lines = String::new();
    for i in 0..count {
        let ts = start + i * step
            - if bound > 0 {
                rng.below(bound as u64 + 1) as i64
            } else {
                0
            };
        let k = rng.pick(&keys);
        let v = (rng.below(20_000) as f64) / 100.0 - 50.0;
        let n = rng.below(1000) as i64 - 100;
        let g = rng.below(7) as i64;
        let nullable_n = if rng.chance(5) { Json::Null } else { json!(n) };
        let ts = if text_time {
            // Both forms Flink reads as UTC timestamp text.
            let t = chrono::DateTime::from_timestamp_millis(ts).unwrap();
            json!(if i % 2 == 0 {
                t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
            } else {
                t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
            })
        } else {
            json!(ts)
        };
        lines.push_str(&json!({"k": k, "g": g, "v": v, "n": nullable_n, "ts": ts}).to_string());
        lines.push('\n');
    }
    let input = dir.join("input.jsonl");
    std::fs::write(&input, lines).unwrap();

    let filter = rng.chance(50).then(|| {
        rng.pick(&[
            "v > 0",
            "n IS NOT NULL AND n % 3 <> 0",
            "k IN ('a', 'c d', 'g:h') OR g >= 5",
            "NOT (k LIKE 'e%') AND v BETWEEN -20 AND 100",
            "CASE WHEN g > 3 THEN v > 10 ELSE n < 500 END",
        ])
        .to_string()
    });
    let computed = rng.chance(60);
    let window = match rng.below(3) {
        0 => format!(
            "{{type: tumbling, size: {}}}",
            rng.pick(&["10s", "1m", "5m", "1h"])
        ),
        1 => {
            let (size, slide) =
                *rng.pick(&[("1m", "10s"), ("10m", "2m"), ("30s", "30s"), ("1h", "15m")]);
            format!("{{type: sliding, size: {size}, slide: {slide}}}")
        }
        _ => format!("{{type: session, gap: {}}}", rng.pick(&["5s", "30s", "2m"])),
    };
    let session = window.contains("session");
    let group_by: Vec<&str> = match rng.below(if session { 3 } else { 4 }) {
        0 => vec!["k"],
        1 => vec!["k", "g"],
        2 if !session => vec!["g % 3 AS gm"],
        2 => vec!["g"],
        _ => vec![],
    };
    let group_by: Vec<String> = group_by
        .into_iter()
        .map(|g| {
            if computed && g == "g" {
                "g2".to_string()
            } else {
                g.to_string()
            }
        })
        .collect();
    let all_aggs = [
        ("events", "COUNT(*)"),
        ("n_sum", "SUM(n)"),
        ("n_count", "COUNT(n)"),
        ("v_min", "MIN(v)"),
        ("v_max", "MAX(v)"),
        ("v_avg", "AVG(v)"),
        ("ts_last", "MAX(ts)"),
        ("keys", "COUNT(DISTINCT k)"),
        ("spread", "MAX(v) - MIN(v)"),
        ("v_first", "FIRST_VALUE(v)"),
        ("v_lastv", "LAST_VALUE(v)"),
        ("n_avg", "AVG(CAST(n AS DOUBLE))"),
    ];
    // FIRST_VALUE/LAST_VALUE over sliding and session windows is a reported gap.
    let mut aggs: Vec<(&str, &str)> = all_aggs
        .iter()
        .copied()
        .filter(|_| rng.chance(45))
        .filter(|(_, a)| !a.contains("_VALUE") || window.contains("tumbling"))
        .collect();
    if aggs.is_empty() {
        aggs.push(all_aggs[0]);
    }
    let after = rng
        .chance(30)
        .then(|| "events > 1".to_string())
        .filter(|_| aggs.iter().any(|a| a.0 == "events"));
    let format = *rng.pick(&["json", "csv"]);
    // Bucket by hour, and by a key when there is one (Hive style: laid out identically).
    let key_dir = group_by
        .iter()
        .find(|g| *g == "k")
        .map(|_| "key={k}/".to_string())
        .unwrap_or_default();
    let path = format!("hour={{window_start:%Y-%m-%d--%H}}/{key_dir}");

    let mut y = format!(
        "version: 1\nname: {name}\nsources:\n  events:\n    type: file\n    path: {}\n    format: json\n    schema: {{k: string, g: int, v: double, n: int, ts: {}}}\n    event_time: {{field: ts, max_out_of_orderness: {bound}ms}}\ntransforms:\n",
        input.display(),
        if text_time {
            "timestamp"
        } else {
            "timestamp_ms"
        }
    );
    let mut upstream = "events".to_string();
    if let Some(f) = &filter {
        y.push_str(&format!(
            "  filtered:\n    type: filter\n    inputs: [{upstream}]\n    where: \"{f}\"\n"
        ));
        upstream = "filtered".into();
    }
    if computed {
        y.push_str(&format!(
            "  computed:\n    type: select\n    inputs: [{upstream}]\n    append: true\n    fields:\n      g2: \"g * 10 + CHAR_LENGTH(k)\"\n      label: \"UPPER(k) || '-' || CAST(g AS STRING)\"\n"
        ));
        upstream = "computed".into();
    }
    y.push_str(&format!(
        "  windowed:\n    type: window\n    inputs: [{upstream}]\n    window: {window}\n    group_by: [{}]\n    aggregates:\n",
        group_by.iter().map(|g| format!("\"{g}\"")).collect::<Vec<_>>().join(", ")
    ));
    for (n, a) in &aggs {
        y.push_str(&format!("      {n}: \"{a}\"\n"));
    }
    upstream = "windowed".into();
    if let Some(a) = &after {
        y.push_str(&format!(
            "  busy:\n    type: filter\n    inputs: [{upstream}]\n    where: \"{a}\"\n"
        ));
        upstream = "busy".into();
    }
    let mut fields = vec!["window_start".to_string(), "window_end".to_string()];
    for g in &group_by {
        fields.push(g.rsplit(' ').next().unwrap().to_string());
    }
    fields.extend(aggs.iter().map(|(n, _)| n.to_string()));
    let csv = if format == "csv" {
        "    csv: {header: false}\n"
    } else {
        ""
    };
    y.push_str(&format!(
        "sinks:\n  out:\n    type: s3\n    inputs: [{upstream}]\n    url: file://${{SINK_ROOT}}/out/\n    path: \"{path}\"\n    format: {format}\n{csv}    fields: [{}]\n",
        fields.join(", ")
    ));
    std::fs::write(dir.join("pipeline.yaml"), &y).unwrap();
    let plan: Json = serde_json::from_str(&ok(
        streamctl(
            &[
                "plan",
                dir.join("pipeline.yaml").to_str().unwrap(),
                "--format",
                "json",
            ],
            &[("SINK_ROOT", "/x")],
        ),
        &format!("{name}: plan\n{y}"),
    ))
    .unwrap();
    let window_schema = plan["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "windowed")
        .unwrap()["outputs"][0]["schema"]
        .clone();
    let types: HashMap<String, String> = window_schema
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    Case {
        name,
        dir,
        compared: vec![Compared {
            sink: "out".into(),
            fields: fields
                .iter()
                .map(|f| (f.clone(), types[f].clone()))
                .collect(),
            format: format.into(),
            header: false,
            same_layout: true,
        }],
    }
}

#[test]
fn flink_agrees_with_the_engine_on_every_example_and_random_pipelines() {
    // STREAMCTL_FLINK_KEEP=1 keeps the cases (pipelines, inputs, scripts, outputs).
    let temp = tempfile::TempDir::with_prefix("streamctl-flink-").unwrap();
    let base = temp.path().to_path_buf();
    if std::env::var_os("STREAMCTL_FLINK_KEEP").is_some() {
        eprintln!("keeping the cases in {}", temp.keep().display());
    }
    let mut cases = Vec::new();
    let mut pipelines: Vec<PathBuf> = std::fs::read_dir(root().join("pipelines"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| !streamctl::testing::is_test_file(p))
        .collect();
    pipelines.sort();
    for p in &pipelines {
        let name = format!("pipelines/{}", p.file_stem().unwrap().to_string_lossy());
        cases.push(file_case(
            &name,
            &std::fs::read_to_string(p).unwrap(),
            &base,
        ));
    }
    let seed: u64 = std::env::var("STREAMCTL_FLINK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(11);
    let mut rng = Rng(seed);
    for i in 0..12 {
        cases.push(random_case(i, &mut rng, &base));
    }
    conform(cases);
}

/// `submit --target local` goes the way `--target yarn` goes (`bin/flink run` with the staged
/// script), against the PyPI Flink, and writes what the embedded engine writes.
#[test]
fn submit_to_a_local_flink_writes_what_the_engine_writes() {
    let flink_home = {
        let o = Command::new(root().join("scripts/flink.sh"))
            .output()
            .expect("run scripts/flink.sh");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    ok(
        streamctl(
            &[
                "generate",
                "movie_impressions",
                "--count=5000",
                "--interval=200ms",
                "--disorder=4s",
                "--output",
                input.to_str().unwrap(),
            ],
            &[],
        ),
        "generate",
    );
    let pipeline = "pipelines/movie-impressions-local.yaml";
    let run = |what: &str, args: &[&str], out: &Path| {
        let mut env = vec![
            ("INPUT", input.to_str().unwrap().to_string()),
            ("OUTPUT", format!("file://{}/", out.display())),
            ("FLINK_HOME", flink_home.clone()),
            ("PATH", std::env::var("PATH").unwrap_or_default()),
        ];
        if let Some(java) = std::env::var_os("JAVA_HOME") {
            env.push(("JAVA_HOME", java.to_string_lossy().to_string()));
        }
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        ok(streamctl(args, &env), what)
    };
    let engine = dir.path().join("engine");
    let flink = dir.path().join("flink");
    run("run", &["run", pipeline, "--progress", "off"], &engine);
    let out = run(
        "submit --target local",
        &["submit", pipeline, "--target", "local"],
        &flink,
    );
    assert!(
        out.contains("Flink job") && out.contains("finished"),
        "{out}"
    );
    let c = Compared {
        sink: String::new(),
        fields: ["movieId", "userId", "impressions", "latestImpression"]
            .iter()
            .map(|f| {
                (
                    f.to_string(),
                    if f.ends_with("Id") {
                        "STRING"
                    } else {
                        "BIGINT"
                    }
                    .to_string(),
                )
            })
            .collect(),
        format: "csv".into(),
        header: true,
        same_layout: false,
    };
    let (a, b) = (rows(&engine, &c, false), rows(&flink, &c, true));
    assert!(!a.is_empty());
    assert_eq!(a, b);
    // The staged script (it may hold secrets) is removed once the client is done.
    let leftovers: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("streamctl-submit-")
        })
        .filter(|e| e.path().join("movie-impressions-local.sql").exists())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
