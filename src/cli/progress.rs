//! Progress of `streamctl run`: a live bar on a terminal, a log line every few seconds
//! otherwise, and the final summary.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use streamctl::data::time::format_sql;
use streamctl::runtime::metrics::{LateStage, Metrics, Snapshot};
use streamctl::runtime::{MAX_WATERMARK, MIN_WATERMARK};

/// When to show the live display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// A live bar on a terminal, periodic log lines otherwise.
    Auto,
    /// The live bar (log lines when stderr is not a terminal).
    Bar,
    /// Periodic log lines only.
    Log,
    /// Nothing but the final summary.
    Off,
}

pub struct Progress {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    pub fn start(metrics: Arc<Metrics>, mode: ProgressMode, log_every: Duration) -> Progress {
        let done = Arc::new(AtomicBool::new(false));
        // A live bar needs a terminal to redraw in; elsewhere log lines say the same.
        let bar = match mode {
            ProgressMode::Auto | ProgressMode::Bar => std::io::stderr().is_terminal(),
            ProgressMode::Log | ProgressMode::Off => false,
        };
        let thread = (mode != ProgressMode::Off).then(|| {
            let done = done.clone();
            std::thread::spawn(move || {
                if bar {
                    live(&metrics, &done);
                } else {
                    log(&metrics, &done, log_every);
                }
            })
        });
        Progress { done, thread }
    }

    pub fn stop(mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn live(metrics: &Metrics, done: &AtomicBool) {
    let bar = indicatif::ProgressBar::new(0);
    let start = Instant::now();
    let mut rate = Rate::new(0);
    let mut source_rates: Vec<Rate> = Vec::new();
    while !done.load(Ordering::Relaxed) {
        let s = metrics.snapshot();
        let per_sec = rate.update(s.records_in);
        if let Some(progress) = s.progress {
            if bar.length() != Some(1000) {
                bar.set_length(1000);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{spinner:.green} {elapsed_precise} [{bar:30.cyan/blue}] {percent:>3}% ETA {eta}  {msg}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("█▉▊▋▌▍▎▏ "),
                );
            }
            bar.set_position((progress * 1000.0) as u64);
        } else if bar.length() != Some(0) || start.elapsed() < Duration::from_millis(150) {
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner:.green} {elapsed_precise}  {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.set_length(0);
        }
        let mut message = format!("{}\n  {}", throughput(&s, per_sec), state(&s, metrics));
        if metrics.sources.len() > 1 {
            // One line per source: records, rate and bytes of each.
            if source_rates.is_empty() {
                source_rates = metrics
                    .sources
                    .iter()
                    .map(|m| Rate::new(m.records.load(Ordering::Relaxed)))
                    .collect();
            }
            for (m, r) in metrics.sources.iter().zip(&mut source_rates) {
                let records = m.records.load(Ordering::Relaxed);
                let rate = r.update(records);
                message.push_str(&format!(
                    "\n  source {}: {} records ({}/s{})",
                    m.name,
                    count(records),
                    count(rate as u64),
                    input_bytes(m.bytes.load(Ordering::Relaxed))
                ));
            }
        }
        bar.set_message(message);
        bar.tick();
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();
}

fn log(metrics: &Metrics, done: &AtomicBool, every: Duration) {
    let mut last = Instant::now();
    let mut rate = Rate::new(0);
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if last.elapsed() >= every {
            last = Instant::now();
            let s = metrics.snapshot();
            let per_sec = rate.update(s.records_in);
            let percent = s
                .progress
                .map(|p| format!("{:.0}% · ", 100.0 * p))
                .unwrap_or_default();
            let sources = if metrics.sources.len() > 1 {
                let parts: Vec<String> = metrics
                    .sources
                    .iter()
                    .map(|m| format!("{} {}", m.name, count(m.records.load(Ordering::Relaxed))))
                    .collect();
                format!(" ({})", parts.join(", "))
            } else {
                String::new()
            };
            eprintln!(
                "[streamctl] {percent}{}{sources} · {}",
                throughput(&s, per_sec),
                state(&s, metrics)
            );
        }
    }
}

/// Records per second over the last few seconds (since the start at first). Sources hand over
/// records a chunk at a time, so a rate over a shorter span would drop to 0/s between two
/// chunks; and a first reading needs no earlier one (the first log line comes after seconds).
struct Rate {
    samples: std::collections::VecDeque<(Instant, u64)>,
}

/// How far back the rate looks.
const RATE_WINDOW: Duration = Duration::from_secs(5);

impl Rate {
    /// A rate counting from now, when `records` have been seen.
    fn new(records: u64) -> Rate {
        Rate::starting_at(Instant::now(), records)
    }

    fn starting_at(at: Instant, records: u64) -> Rate {
        Rate {
            samples: std::collections::VecDeque::from([(at, records)]),
        }
    }

    fn update(&mut self, records: u64) -> f64 {
        self.update_at(Instant::now(), records)
    }

    fn update_at(&mut self, now: Instant, records: u64) -> f64 {
        self.samples.push_back((now, records));
        // Keep one sample at least `RATE_WINDOW` old, so the span never shrinks below it.
        while self.samples.len() > 2 && now.duration_since(self.samples[1].0) >= RATE_WINDOW {
            self.samples.pop_front();
        }
        let (since, before) = self.samples[0];
        let secs = now.duration_since(since).as_secs_f64();
        if secs <= 0.0 {
            return 0.0;
        }
        records.saturating_sub(before) as f64 / secs
    }
}

fn throughput(s: &Snapshot, per_sec: f64) -> String {
    format!(
        "{} records in ({}/s{}) · {} rows out, {}",
        count(s.records_in),
        count(per_sec as u64),
        input_bytes(s.bytes_in),
        count(s.records_out),
        plural(s.files_committed, "file")
    )
}

fn state(s: &Snapshot, metrics: &Metrics) -> String {
    let late = &metrics.late_stages();
    let watermark = match s.watermark {
        MIN_WATERMARK => "none yet".to_string(),
        MAX_WATERMARK => "end of input".to_string(),
        w => {
            let lag = s.max_event_time.saturating_sub(w).max(0);
            format!(
                "{} UTC ({} behind the newest event)",
                &format_sql(w)[..19],
                duration(lag)
            )
        }
    };
    let checkpoints = match metrics.last_checkpoint() {
        Some(c) => format!(
            " · checkpoint {} ({}, paused {} ms)",
            c.id,
            bytes(c.bytes),
            c.pause_ms
        ),
        None => String::new(),
    };
    format!(
        "watermark {watermark} · open windows {} · late {} · bad {}{checkpoints}",
        s.open_windows,
        late_counts(late),
        s.bad_records
    )
}

/// Late events per window stage: "4", or "4 at `w`, 0 at `tw`" with several stages (an event
/// late at two stages is late twice, so there is no total).
fn late_counts(late: &[Arc<LateStage>]) -> String {
    match late {
        [] => "0".to_string(),
        [one] => count(one.events.load(Ordering::Relaxed)),
        stages => stages
            .iter()
            .map(|l| {
                format!(
                    "{} at `{}`",
                    count(l.events.load(Ordering::Relaxed)),
                    l.stage
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

pub fn count(n: u64) -> String {
    // Each range ends where its rounding would reach the next unit ("1000.0k" is "1.00M").
    match n {
        0..1_000 => n.to_string(),
        1_000..999_950 => format!("{:.1}k", n as f64 / 1e3),
        999_950..999_995_000 => format!("{:.2}M", n as f64 / 1e6),
        _ => format!("{:.2}G", n as f64 / 1e9),
    }
}

/// ", 581 MiB" — nothing for sources without input bytes (generators).
fn input_bytes(n: u64) -> String {
    if n == 0 {
        String::new()
    } else {
        format!(", {}", bytes(n))
    }
}

fn plural(n: u64, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

pub fn bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}

fn duration(ms: i64) -> String {
    streamctl::config::Duration::from_millis(ms / 1000 * 1000).to_string()
}

/// The summary printed when a run ends.
pub fn summary(
    s: &Snapshot,
    late: &[Arc<LateStage>],
    elapsed: Duration,
    first_bad: Option<(String, String)>,
) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    // Files only where the output is files (a stdout sink writes none).
    let files = if s.files_committed > 0 {
        format!(
            " to {} ({})",
            plural(s.files_committed, "file"),
            bytes(s.bytes_out)
        )
    } else {
        String::new()
    };
    let mut text = format!(
        "{} in {:.2}s ({}/s{}); {} written{files}",
        plural_count(s.records_in, "record"),
        secs,
        count((s.records_in as f64 / secs) as u64),
        input_bytes(s.bytes_in),
        plural_count(s.records_out, "row"),
    );
    if s.peak_open_groups > 0 {
        // What window state memory followed: one group is one key in one window.
        // Exact, so that bytes per open key can be computed from it (scripts/bench*.sh).
        text.push_str(&format!(
            "\n  window state: at most {} open at once (a group is one key in one window)",
            match s.peak_open_groups {
                1 => "1 group".to_string(),
                n => format!("{n} groups"),
            }
        ));
    }
    for stage in late {
        text.push_str(&late_summary(stage));
    }
    if s.bad_records > 0 {
        text.push_str(&format!(
            "\n  {}",
            plural_count(s.bad_records, "bad record")
        ));
        if let Some((stage, error)) = first_bad {
            text.push_str(&format!(", first in `{stage}`: {error}"));
        }
    }
    text
}

/// What became of one window stage's late events: how many, how many windows missed them,
/// where they went, and the first one.
fn late_summary(stage: &LateStage) -> String {
    let events = stage.events.load(Ordering::Relaxed);
    if events == 0 {
        return String::new();
    }
    let partial = stage.partial.load(Ordering::Relaxed);
    let contributions = stage.contributions.load(Ordering::Relaxed);
    let mut text = format!(
        "\n  `{}`: {}",
        stage.stage,
        plural_count(events, "late event")
    );
    if partial > 0 {
        text.push_str(&format!(
            " ({} late for only some of {} windows, and counted in the others)",
            count(partial),
            if partial == 1 { "its" } else { "their" }
        ));
    }
    if contributions != events {
        text.push_str(&format!(
            "; {} missed them",
            plural_count(contributions, "window result")
        ));
    }
    if stage.routed {
        text.push_str(&format!(
            "; sent to the late stream ({})",
            plural_count(contributions, "row")
        ));
    } else {
        text.push_str("; counted and not written (route them with `late: {to: <stream>}`)");
    }
    if let Some(first) = stage.first() {
        text.push_str(&format!(
            "\n    the first, at {}, came with the watermark at {}: too late for window [{}, {})",
            format_sql(first.event_time),
            format_sql(first.watermark),
            format_sql(first.window_start),
            format_sql(first.window_end),
        ));
    }
    text
}

/// "1 record", "2.50M records".
fn plural_count(n: u64, what: &str) -> String {
    format!("{} {what}{}", count(n), if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_round_into_the_next_unit() {
        assert_eq!(count(999), "999");
        assert_eq!(count(1_500), "1.5k");
        assert_eq!(count(999_949), "999.9k");
        assert_eq!(count(999_996), "1.00M");
        assert_eq!(count(999_996_000), "1.00G");
    }

    /// The first log line comes `--log-every` seconds in: it shows the rate so far, not 0/s.
    #[test]
    fn the_first_reading_is_the_rate_since_the_start() {
        let t0 = Instant::now();
        let mut rate = Rate::starting_at(t0, 0);
        let per_sec = rate.update_at(t0 + Duration::from_secs(10), 1_000_000);
        assert!((per_sec - 100_000.0).abs() < 1.0, "{per_sec}");
    }

    /// Records arrive a decoded chunk at a time (here 20k every 1.2 s): after the first
    /// second the rate never reads 0/s between two chunks.
    #[test]
    fn the_rate_does_not_drop_to_zero_between_chunks() {
        let t0 = Instant::now();
        let mut rate = Rate::starting_at(t0, 0);
        let mut records = 0;
        for tick in 1..=200u64 {
            let now = t0 + Duration::from_millis(tick * 100);
            if tick % 12 == 0 {
                records += 20_000;
            }
            let per_sec = rate.update_at(now, records);
            if tick > 12 {
                assert!(per_sec > 5_000.0, "{per_sec}/s at {tick}00 ms");
            }
        }
    }
}
