//! Real services for integration tests. Each is installed and started by the project's own
//! script, `scripts/services/<name>.sh start` (cached under `~/.cache/streamctl`), which
//! prints `KEY=VALUE` lines (endpoints, credentials). One instance per machine is shared by
//! every test and test process; tests use unique names and never reset a server's whole
//! state. A test that cannot get its service fails, naming why: it never skips.

#![allow(dead_code)] // each test binary uses part of this module

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// A running service: what its start script printed.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    env: HashMap<String, String>,
}

impl Service {
    /// A value the start script printed, e.g. `endpoint`.
    pub fn get(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("service {} did not print {key}=", self.name))
    }

    /// Every KEY=VALUE the start script printed, for a child process's environment.
    pub fn env(&self) -> impl Iterator<Item = (&String, &String)> {
        self.env.iter()
    }
}

/// Starts (or finds running) service `name`, once per test process.
pub fn service(name: &str) -> Service {
    static STARTED: OnceLock<Mutex<HashMap<String, Service>>> = OnceLock::new();
    let started = STARTED.get_or_init(Mutex::default);
    let mut started = started.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = started.get(name) {
        return s.clone();
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("scripts/services")
        .join(format!("{name}.sh"));
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg("start")
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "service {name} could not be started by {}:\n{}\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let env = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let s = Service {
        name: name.to_string(),
        env,
    };
    started.insert(name.to_string(), s.clone());
    s
}

/// A name no other test (or test process) uses: `prefix-<pid>-<n>`, lowercase, safe for
/// buckets, topics and streams.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A small deterministic random source (xorshift) for chaos tests, seeded per test and printed
/// on failure.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The chaos seed: `CHAOS_SEED` to repeat a run, else from the clock.
#[allow(clippy::disallowed_methods)] // a seed, not event time
pub fn seed() -> u64 {
    std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        })
}

/// Waits for `child` up to `limit`; `None` if it is still running.
pub fn wait_for(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Every file under `dir`, recursively, sorted.
pub fn files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

pub mod kafka_broker;
pub mod kafka_proxy;
pub mod s3_proxy;

/// `yyyy-MM-dd--HH` of an epoch-millisecond instant in UTC (computed without a date crate,
/// to check the engine's bucket names independently).
pub fn hour_bucket(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let hour = ms.rem_euclid(86_400_000) / 3_600_000;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}--{hour:02}")
}

/// streamctl with the standard AWS variables `service` printed (endpoint, credentials,
/// region) and nothing from the caller's AWS setup: no profile, no instance metadata.
pub fn streamctl_with_aws(service: &Service) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_streamctl"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    with_aws(c, service)
}

/// `c` (any program) with the AWS variables `service` printed and nothing from the caller's
/// AWS setup.
pub fn with_aws(mut c: std::process::Command, service: &Service) -> std::process::Command {
    for (k, v) in service.env() {
        if k.starts_with("AWS_") {
            c.env(k, v);
        }
    }
    c.env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent");
    c
}

/// The newest checkpoint id in the local checkpoint directory `dir` (0 when there is none;
/// ids only grow, while the number of files stays at the retention).
pub fn newest_checkpoint(dir: &std::path::Path) -> u64 {
    files(dir)
        .iter()
        .filter_map(|f| {
            let name = f.file_name()?.to_string_lossy().to_string();
            name.strip_prefix("chk-")?
                .strip_suffix(".ckpt")?
                .parse()
                .ok()
        })
        .max()
        .unwrap_or(0)
}

/// The rows of the job of `pipelines/movie-impressions.yaml` computed directly from its
/// JSON-lines input, as `yyyy-MM-dd--HH/movieId movieId,userId,count,latest`: per 15-minute
/// window (epoch-aligned, UTC), movie and user, the count and the latest timestamp.
pub fn movie_job_rows(input: &std::path::Path) -> Vec<String> {
    let mut groups: std::collections::HashMap<(i64, String, String), (u64, i64)> =
        std::collections::HashMap::new();
    for line in std::fs::read_to_string(input).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let ts = v["timestamp"].as_i64().unwrap();
        let key = (
            ts.div_euclid(900_000) * 900_000,
            v["movieId"].as_str().unwrap().to_string(),
            v["userId"].as_str().unwrap().to_string(),
        );
        let e = groups.entry(key).or_insert((0, i64::MIN));
        e.0 += 1;
        e.1 = e.1.max(ts);
    }
    let mut rows: Vec<String> = groups
        .into_iter()
        .map(|((start, movie, user), (n, last))| {
            format!("{}/{movie} {movie},{user},{n},{last}", hour_bucket(start))
        })
        .collect();
    rows.sort();
    rows
}

/// The independent S3 client (boto3): tests/s3_client.py.
pub fn s3_client(s3: &Service, args: &[&str]) -> String {
    let mut c = with_aws(std::process::Command::new(s3.get("S3_PYTHON")), s3);
    let o = c
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/s3_client.py"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "s3_client.py {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Offsets by partition (`"0"`, `"1"`, …) of `topic` in the output of `streamctl checkpoints
/// show`; a partition read to its end counts as its record count from `ends`.
pub fn kafka_checkpoint_offsets(
    shown: &str,
    topic: &str,
    ends: &std::collections::BTreeMap<String, i64>,
) -> std::collections::BTreeMap<String, i64> {
    let mut offsets = std::collections::BTreeMap::new();
    for line in shown.lines() {
        let Some((partition, offset)) = line
            .trim()
            .strip_prefix(&format!("{topic}/"))
            .and_then(|l| l.split_once(" @ "))
        else {
            continue;
        };
        let offset = match offset.strip_prefix("offset ") {
            Some(n) => n.parse().unwrap(),
            None => {
                assert_eq!(offset, "end", "{line}");
                ends[partition]
            }
        };
        offsets.insert(partition.to_string(), offset);
    }
    offsets
}
