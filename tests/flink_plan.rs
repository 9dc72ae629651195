//! The cluster path's translation, without Flink: `plan --target flink-sql` scripts of the
//! reference pipelines (snapshots), connector options checked against the Flink connector
//! documentation, `validate --target flink` positions, `plan --format json`, and secrets.
//! Running the scripts on real Flink is tests/flink.rs.
//!
//! After a deliberate change of the SQL: `INSTA_UPDATE=always cargo test --test flink_plan`,
//! read the changed `tests/snapshots/flink_plan__*.snap`, commit them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use streamctl::flink::{Options, translate};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn streamctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_streamctl"))
        .current_dir(root())
        .args(args)
        .output()
        .expect("run streamctl")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

fn reference_pipelines() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("pipelines"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| !streamctl::testing::is_test_file(p))
        .collect();
    files.sort();
    files
}

/// The script of a pipeline text, with `${VAR}` defaults and `/base` as the directory.
fn script(name: &str, text: &str) -> streamctl::flink::Script {
    let v = streamctl::plan::validate(name, text.to_string(), &|_| None);
    let plan = v
        .plan
        .unwrap_or_else(|| panic!("{name} is invalid: {:?}", v.diagnostics));
    translate(
        &plan,
        &Options {
            base_dir: PathBuf::from("/base"),
            include_secrets: false,
            pipeline_file: Some(name.to_string()),
        },
    )
}

fn file_script(path: &Path) -> streamctl::flink::Script {
    let name = format!("pipelines/{}", path.file_name().unwrap().to_string_lossy());
    script(&name, &std::fs::read_to_string(path).unwrap())
}

#[test]
fn reference_pipelines_translate_to_the_same_sql() {
    for path in reference_pipelines() {
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        insta::assert_snapshot!(stem, file_script(&path).sql);
    }
}

/// Option names of the `WITH (…)` clauses in a script, per connector.
fn options_by_connector(sql: &str) -> Vec<(String, BTreeSet<String>)> {
    let mut out = Vec::new();
    for with in sql.split(") WITH (").skip(1) {
        let body = &with[..with.find("\n);").expect("end of WITH")];
        let mut connector = String::new();
        let mut keys = BTreeSet::new();
        for line in body.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let key = line
                .split(" = ")
                .next()
                .unwrap()
                .trim_matches('\'')
                .to_string();
            if key == "connector" {
                connector = line
                    .split(" = ")
                    .nth(1)
                    .unwrap()
                    .trim_end_matches(',')
                    .trim_matches('\'')
                    .to_string();
            }
            keys.insert(key);
        }
        out.push((connector, keys));
    }
    out
}

/// Option names from the connector documentation (Flink 1.20 and its external connectors):
/// `docs/content/docs/connectors/table/kafka.md` of apache/flink-connector-kafka,
/// `docs/content/docs/connectors/table/kinesis.md` of apache/flink-connector-aws (the
/// `kinesis-legacy` / 4.x `kinesis` table), `filesystem.md`, `formats/json.md`,
/// `formats/csv.md` and `formats/raw.md` of apache/flink. `properties.*` passes any Kafka
/// client setting through.
const KAFKA: &[&str] = &[
    "connector",
    "topic",
    "topic-pattern",
    "properties.bootstrap.servers",
    "properties.group.id",
    "format",
    "key.format",
    "key.fields",
    "key.fields-prefix",
    "value.format",
    "value.fields-include",
    "scan.startup.mode",
    "scan.startup.specific-offsets",
    "scan.startup.timestamp-millis",
    "scan.bounded.mode",
    "scan.topic-partition-discovery.interval",
    "sink.partitioner",
    "sink.delivery-guarantee",
    "sink.transactional-id-prefix",
    "sink.parallelism",
];
const KINESIS: &[&str] = &[
    "connector",
    "stream",
    "format",
    "aws.region",
    "aws.endpoint",
    "aws.credentials.provider",
    "scan.stream.initpos",
    "scan.stream.initpos-timestamp",
    "scan.stream.initpos-timestamp-format",
    "scan.shard.idle.interval",
    "sink.partitioner-field-delimiter",
    "sink.fail-on-error",
];
const FILESYSTEM: &[&str] = &[
    "connector",
    "path",
    "format",
    "source.monitor-interval",
    "partition.default-name",
    "sink.rolling-policy.file-size",
    "sink.rolling-policy.rollover-interval",
    "sink.rolling-policy.check-interval",
    "sink.partition-commit.trigger",
    "sink.partition-commit.delay",
    "sink.partition-commit.policy.kind",
    "sink.partition-commit.success-file.name",
    "auto-compaction",
];
const FORMATS: &[&str] = &[
    "json.fail-on-missing-field",
    "json.ignore-parse-errors",
    "json.timestamp-format.standard",
    "csv.field-delimiter",
    "csv.ignore-parse-errors",
    "csv.quote-character",
    "csv.null-literal",
];

fn documented(connector: &str, key: &str) -> bool {
    let list = match connector {
        "kafka" => KAFKA,
        "kinesis" => KINESIS,
        "filesystem" => FILESYSTEM,
        "print" => &["connector"][..],
        other => panic!("unexpected connector {other}"),
    };
    let format_key = key.strip_prefix("value.").unwrap_or(key);
    list.contains(&key)
        || FORMATS.contains(&format_key)
        || (connector == "kafka" && key.starts_with("properties."))
}

const CONNECTORS: &str = "version: 1
name: connectors
sources:
  ticks:
    type: kafka
    brokers: b1:9092,b2:9092
    topic: ticks
    start_from: timestamp
    start_timestamp: 2024-01-01T00:00:00Z
    properties: {security.protocol: SASL_SSL, sasl.password: hunter2}
    format: csv
    csv: {header: false, delimiter: ';'}
    schema: {symbol: string, price: double, timestamp: timestamp_ms}
    event_time: {field: timestamp, max_out_of_orderness: 250ms}
  trips:
    type: kinesis
    stream: trips
    region: eu-west-1
    start_from: at_timestamp
    start_timestamp: 2024-01-01T00:00:00Z
    schema: {symbol: string, price: double, timestamp: timestamp_ms}
    event_time: {field: timestamp, max_out_of_orderness: 1s}
sinks:
  to_kafka:
    type: kafka
    inputs: [ticks]
    brokers: b1:9092
    topic: out
    key: UPPER(symbol)
    properties: {sasl.jaas.config: secret-jaas}
  to_kinesis:
    type: kinesis
    inputs: [trips]
    stream: out
    region: eu-west-1
    partition_key: symbol
  to_s3:
    type: s3
    inputs: [ticks]
    url: s3://bucket/prefix/
    path: \"dt={timestamp:%Y-%m-%d}/\"
    format: parquet
  to_stdout:
    type: stdout
    inputs: [trips]
";

#[test]
fn connector_options_are_the_documented_ones() {
    let mut scripts: Vec<String> = reference_pipelines()
        .iter()
        .map(|p| file_script(p).sql)
        .collect();
    scripts.push(script("connectors.yaml", CONNECTORS).sql);
    let mut seen = BTreeSet::new();
    for sql in &scripts {
        for (connector, keys) in options_by_connector(sql) {
            for key in keys {
                assert!(
                    documented(&connector, &key),
                    "`{key}` is not a documented option of the {connector} connector"
                );
                seen.insert(connector.clone());
            }
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["filesystem", "kafka", "kinesis", "print"]
    );
    insta::assert_snapshot!("connectors", script("connectors.yaml", CONNECTORS).sql);
}

#[test]
fn secrets_are_never_printed() {
    let s = script("connectors.yaml", CONNECTORS);
    assert!(
        !s.sql.contains("hunter2") && !s.sql.contains("secret-jaas"),
        "{}",
        s.sql
    );
    assert!(
        s.sql
            .contains("'properties.sasl.password' holds a secret and is not printed")
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("connectors.yaml");
    std::fs::write(&file, CONNECTORS).unwrap();
    let file = file.display().to_string();
    for args in [
        vec!["plan", file.as_str(), "--target", "flink-sql"],
        vec![
            "plan",
            file.as_str(),
            "--target",
            "flink-sql",
            "--format",
            "json",
        ],
        vec!["plan", file.as_str(), "--format", "json"],
        vec!["plan", file.as_str()],
        vec!["validate", file.as_str(), "--target", "flink"],
    ] {
        let o = streamctl(&args);
        assert!(o.status.success(), "{args:?}: {}", text(&o.stderr));
        let all = text(&o.stdout) + &text(&o.stderr);
        assert!(
            !all.contains("hunter2") && !all.contains("secret-jaas"),
            "{args:?}: {all}"
        );
    }
    let o = streamctl(&["plan", &file, "--format", "json"]);
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        plan["stages"][0]["settings"]["properties"]["sasl.password"],
        "<redacted>"
    );
    assert_eq!(
        plan["stages"][0]["settings"]["properties"]["security.protocol"],
        "SASL_SSL"
    );
}

#[test]
fn plan_json_lists_stages_inputs_schemas_and_settings() {
    let o = streamctl(&[
        "plan",
        "pipelines/stock-price-alerts.yaml",
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(plan["pipeline"], "stock-price-alerts");
    let stages = plan["stages"].as_array().unwrap();
    let names: Vec<&str> = stages.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["ticks", "moves", "alerts", "messages", "alerts_topic"]
    );
    let moves = &stages[1];
    assert_eq!(moves["type"], "window");
    assert_eq!(moves["inputs"], serde_json::json!(["ticks"]));
    assert_eq!(
        moves["settings"]["window"],
        serde_json::json!({"type": "sliding", "size_ms": 60000, "slide_ms": 10000})
    );
    assert_eq!(moves["settings"]["group_by"], serde_json::json!(["symbol"]));
    let schema: Vec<String> = moves["outputs"][0]["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {}",
                f["name"].as_str().unwrap(),
                f["type"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        schema,
        [
            "window_start TIMESTAMP_LTZ(3)",
            "window_end TIMESTAMP_LTZ(3)",
            "symbol STRING",
            "firstPrice DOUBLE",
            "lastPrice DOUBLE",
            "minPrice DOUBLE",
            "maxPrice DOUBLE",
            "changePct DOUBLE"
        ]
    );
    assert_eq!(
        stages[0]["settings"]["event_time"]["max_out_of_orderness_ms"],
        2000
    );
    assert_eq!(stages[4]["kind"], "sink");
    assert_eq!(stages[4]["settings"]["key"], "symbol");
}

/// `validate --target flink` reports each gap at its line, and `--format json` lists them.
#[test]
fn validate_for_flink_points_at_what_flink_cannot_do() {
    let o = streamctl(&[
        "validate",
        "pipelines/delivery-agent-sessions.yaml",
        "--target",
        "flink",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let found: Vec<String> = doc["files"][0]["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{} {}:{}",
                d["code"].as_str().unwrap(),
                d["line"],
                d["column"]
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            "flink-bad-records 11:3",
            "flink-allowed-lateness 33:30",
            "flink-late-output 33:38",
            "flink-path-layout 40:11",
            "flink-left-out 43:3",
        ]
    );
    // The same file is valid for the embedded engine without warnings.
    let o = streamctl(&[
        "validate",
        "pipelines/delivery-agent-sessions.yaml",
        "--deny-warnings",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let o = streamctl(&[
        "validate",
        "pipelines/delivery-agent-sessions.yaml",
        "--target",
        "flink",
        "--deny-warnings",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let stderr = text(&o.stderr);
    assert!(
        stderr.contains("Flink SQL windows drop late events"),
        "{stderr}"
    );
}

#[test]
fn submit_explains_what_it_needs_and_dry_runs_without_printing_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("connectors.yaml");
    std::fs::write(&file, CONNECTORS).unwrap();
    let file = file.display().to_string();
    let o = Command::new(env!("CARGO_BIN_EXE_streamctl"))
        .args(["submit", &file, "--target", "yarn"])
        .env_remove("FLINK_HOME")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("FLINK_HOME is not set"),
        "{}",
        text(&o.stderr)
    );

    let home = dir.path().join("flink");
    std::fs::create_dir_all(home.join("bin")).unwrap();
    std::fs::write(home.join("bin/flink"), "").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_streamctl"))
        .args([
            "submit",
            &file,
            "--target",
            "yarn",
            "--dry-run",
            "--jar",
            "/jars/kafka.jar",
        ])
        .env("FLINK_HOME", &home)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let command = text(&o.stdout);
    assert!(
        command.contains("bin/flink run --target yarn-per-job --detached"),
        "{command}"
    );
    assert!(
        command.contains("-Dpipeline.jars=file:///jars/kafka.jar"),
        "{command}"
    );
    let all = command.clone() + &text(&o.stderr);
    assert!(
        !all.contains("hunter2") && !all.contains("secret-jaas"),
        "{all}"
    );
    // The staged script holds the secrets, readable by this user only.
    let script = command
        .split_whitespace()
        .find(|a| a.ends_with(".sql"))
        .unwrap();
    let meta = std::fs::metadata(script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let sql = std::fs::read_to_string(script).unwrap();
    assert!(
        sql.contains("'properties.sasl.password' = 'hunter2'"),
        "{sql}"
    );
    std::fs::remove_dir_all(Path::new(script).parent().unwrap()).unwrap();
}
