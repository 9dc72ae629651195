//! Checkpoints: one consistent snapshot of a running job — every source's positions, every
//! stage's state and watermarks, and what each sink prepared — written atomically, so a
//! restarted run continues exactly where the snapshot was taken.
//!
//! The engine takes them between two batches ([`crate::engine`]); this module defines what
//! one holds, its file format (versioned, checksummed), where checkpoints are kept
//! ([`store`]), which one a restart uses (the newest readable), and whether a changed
//! pipeline can still use it ([`Layout`]).

pub mod store;

use std::fmt::Write as _;

use crate::plan::{NodeKind, Plan, WindowKind};
use crate::runtime::state::{StateError, StateReader, StateResult, StateWriter};
use crate::runtime::{ConnectorError, Position, SinkSnapshot};

pub use store::CheckpointStore;

const MAGIC: &[u8; 16] = b"streamctl-ckpt\n\0";
const VERSION: u32 = 1;

/// One checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub id: u64,
    /// When it was taken (ms since the epoch, wall clock).
    pub created_ms: i64,
    pub pipeline: String,
    /// The job's instance id (object names carry it).
    pub instance: String,
    /// Taken at the end of the input: the run completed.
    pub finished: bool,
    /// The pipeline's stateful shape when it was taken.
    pub layout: Layout,
    pub sources: Vec<SourceState>,
    pub stages: Vec<StageState>,
    pub sinks: Vec<SinkState>,
    pub counters: Counters,
}

/// Where one source was.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceState {
    pub name: String,
    pub positions: Vec<Position>,
    /// The source's watermark, never moving back.
    pub watermark: i64,
    /// The input ended (bounded): the watermark is +∞.
    pub finished: bool,
    /// Per partition (by name): the newest event time seen, and whether it was idle.
    pub partitions: Vec<PartitionWatermark>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionWatermark {
    pub name: String,
    pub max_time: i64,
    pub idle: bool,
}

/// One stage (source, transform or sink) of the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageState {
    pub name: String,
    pub in_watermark: i64,
    pub out_watermark: i64,
    pub idle: bool,
    /// For `checkpoints show`: windows (panes or sessions) and groups held.
    pub open_windows: u64,
    pub open_groups: u64,
    /// The operator's own state.
    pub state: Vec<u8>,
}

/// What one sink prepared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkState {
    pub name: String,
    pub snapshot: SinkSnapshot,
}

/// One window stage's late-event counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LateCount {
    pub stage: String,
    pub events: u64,
    pub partial: u64,
    pub contributions: u64,
}

/// Run counters, so a resumed run reports totals since the job started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Records read, per source (in plan order of sources).
    pub records_in: Vec<u64>,
    pub bad_records: u64,
    /// Late events per window stage.
    pub late: Vec<LateCount>,
    pub records_out: u64,
    pub files_committed: u64,
    pub bytes_out: u64,
}

impl Checkpoint {
    /// The checkpoint file's bytes: magic, version, length, body, CRC-32 of the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = StateWriter::new();
        w.u64(self.id);
        w.i64(self.created_ms);
        w.str(&self.pipeline);
        w.str(&self.instance);
        w.bool(self.finished);
        self.layout.write(&mut w);
        w.usize(self.sources.len());
        for s in &self.sources {
            w.str(&s.name);
            w.usize(s.positions.len());
            for p in &s.positions {
                p.write(&mut w);
            }
            w.i64(s.watermark);
            w.bool(s.finished);
            w.usize(s.partitions.len());
            for p in &s.partitions {
                w.str(&p.name);
                w.i64(p.max_time);
                w.bool(p.idle);
            }
        }
        w.usize(self.stages.len());
        for s in &self.stages {
            w.str(&s.name);
            w.i64(s.in_watermark);
            w.i64(s.out_watermark);
            w.bool(s.idle);
            w.u64(s.open_windows);
            w.u64(s.open_groups);
            w.bytes(&s.state);
        }
        w.usize(self.sinks.len());
        for s in &self.sinks {
            w.str(&s.name);
            s.snapshot.write(&mut w);
        }
        let c = &self.counters;
        w.usize(c.records_in.len());
        for n in &c.records_in {
            w.u64(*n);
        }
        w.usize(c.late.len());
        for l in &c.late {
            w.str(&l.stage);
            w.u64(l.events);
            w.u64(l.partial);
            w.u64(l.contributions);
        }
        for n in [c.bad_records, c.records_out, c.files_committed, c.bytes_out] {
            w.u64(n);
        }
        let body = w.into_bytes();
        let mut out = Vec::with_capacity(body.len() + 32);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(body.len() as u64).to_le_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_le_bytes());
        out
    }

    /// Reads a checkpoint file.
    ///
    /// # Errors
    /// When the bytes are not a complete checkpoint of a version this build reads.
    pub fn decode(bytes: &[u8]) -> StateResult<Checkpoint> {
        let err = |m: &str| StateError(m.to_string());
        if bytes.len() < MAGIC.len() + 12 + 4 || &bytes[..MAGIC.len()] != MAGIC {
            return Err(err("not a streamctl checkpoint"));
        }
        let mut at = MAGIC.len();
        let version = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or_default());
        at += 4;
        if version != VERSION {
            return Err(StateError(format!(
                "checkpoint format version {version}; this build reads version {VERSION}"
            )));
        }
        let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default()) as usize;
        at += 8;
        if bytes.len() != at + len + 4 {
            return Err(StateError(format!(
                "truncated: {} bytes, expected {}",
                bytes.len(),
                at + len + 4
            )));
        }
        let body = &bytes[at..at + len];
        let crc = u32::from_le_bytes(bytes[at + len..].try_into().unwrap_or_default());
        if crc != crc32(body) {
            return Err(err("checksum mismatch: the file is corrupt"));
        }
        let mut r = StateReader::new(body);
        let id = r.u64()?;
        let created_ms = r.i64()?;
        let pipeline = r.string()?;
        let instance = r.string()?;
        let finished = r.bool()?;
        let layout = Layout::read(&mut r)?;
        let mut sources = Vec::new();
        for _ in 0..r.count(4)? {
            let name = r.string()?;
            let mut positions = Vec::new();
            for _ in 0..r.count(2)? {
                positions.push(Position::read(&mut r)?);
            }
            let watermark = r.i64()?;
            let source_finished = r.bool()?;
            let mut partitions = Vec::new();
            for _ in 0..r.count(3)? {
                partitions.push(PartitionWatermark {
                    name: r.string()?,
                    max_time: r.i64()?,
                    idle: r.bool()?,
                });
            }
            sources.push(SourceState {
                name,
                positions,
                watermark,
                finished: source_finished,
                partitions,
            });
        }
        let mut stages = Vec::new();
        for _ in 0..r.count(6)? {
            stages.push(StageState {
                name: r.string()?,
                in_watermark: r.i64()?,
                out_watermark: r.i64()?,
                idle: r.bool()?,
                open_windows: r.u64()?,
                open_groups: r.u64()?,
                state: r.bytes()?.to_vec(),
            });
        }
        let mut sinks = Vec::new();
        for _ in 0..r.count(3)? {
            sinks.push(SinkState {
                name: r.string()?,
                snapshot: SinkSnapshot::read(&mut r)?,
            });
        }
        let mut records_in = Vec::new();
        for _ in 0..r.count(1)? {
            records_in.push(r.u64()?);
        }
        let mut late = Vec::new();
        for _ in 0..r.count(4)? {
            late.push(LateCount {
                stage: r.string()?,
                events: r.u64()?,
                partial: r.u64()?,
                contributions: r.u64()?,
            });
        }
        let counters = Counters {
            records_in,
            late,
            bad_records: r.u64()?,
            records_out: r.u64()?,
            files_committed: r.u64()?,
            bytes_out: r.u64()?,
        };
        if !r.is_at_end() {
            return Err(err("trailing bytes after the checkpoint body"));
        }
        Ok(Checkpoint {
            id,
            created_ms,
            pipeline,
            instance,
            finished,
            layout,
            sources,
            stages,
            sinks,
            counters,
        })
    }

    pub fn stage(&self, name: &str) -> Option<&StageState> {
        self.stages.iter().find(|s| s.name == name)
    }

    pub fn source(&self, name: &str) -> Option<&SourceState> {
        self.sources.iter().find(|s| s.name == name)
    }

    pub fn sink(&self, name: &str) -> Option<&SinkState> {
        self.sinks.iter().find(|s| s.name == name)
    }
}

/// CRC-32 (IEEE), as gzip and zip use.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum()
}

/// The stateful shape of a pipeline: for each source, window and sink, the settings its state
/// depends on. A checkpoint can be used by a pipeline whose layout matches; settings that
/// state does not depend on (filters, paths, rolling, lateness, output expressions) may
/// change freely.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    pub stages: Vec<StageLayout>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageLayout {
    pub name: String,
    /// `source`, `window` or `sink`.
    pub role: String,
    /// (aspect, value) pairs, e.g. ("window", "tumbling 15m").
    pub aspects: Vec<(String, String)>,
}

impl Layout {
    pub fn of(plan: &Plan) -> Layout {
        let ms = |ms: i64| crate::config::Duration::from_millis(ms).to_string();
        let mut stages = Vec::new();
        for node in &plan.nodes {
            let (role, aspects) = match &node.kind {
                NodeKind::Source(s) => (
                    "source",
                    vec![("type".to_string(), s.config.type_name().to_string())],
                ),
                NodeKind::Window(w) => {
                    let kind = match w.kind {
                        WindowKind::Tumbling { size } => format!("tumbling {}", ms(size)),
                        WindowKind::Sliding { size, slide } => {
                            format!("sliding {} every {}", ms(size), ms(slide))
                        }
                        WindowKind::Session { gap } => format!("session gap {}", ms(gap)),
                    };
                    let keys: Vec<String> = w
                        .key_sql
                        .iter()
                        .zip(&w.aggregates.keys)
                        .map(|(sql, (_, e))| {
                            format!(
                                "{sql} {}",
                                e.ty.as_ref().map_or("?".into(), |t| t.to_string())
                            )
                        })
                        .collect();
                    let calls: Vec<String> =
                        w.aggregates.calls.iter().map(|c| c.describe()).collect();
                    (
                        "window",
                        vec![
                            ("window".to_string(), kind),
                            ("group by".to_string(), keys.join(", ")),
                            ("aggregates".to_string(), calls.join(", ")),
                        ],
                    )
                }
                NodeKind::Sink(s) => (
                    "sink",
                    vec![("type".to_string(), s.config.type_name().to_string())],
                ),
                _ => continue,
            };
            stages.push(StageLayout {
                name: node.name.clone(),
                role: role.to_string(),
                aspects,
            });
        }
        Layout { stages }
    }

    fn write(&self, w: &mut StateWriter) {
        w.usize(self.stages.len());
        for s in &self.stages {
            w.str(&s.name);
            w.str(&s.role);
            w.usize(s.aspects.len());
            for (k, v) in &s.aspects {
                w.str(k);
                w.str(v);
            }
        }
    }

    fn read(r: &mut StateReader<'_>) -> StateResult<Layout> {
        let mut stages = Vec::new();
        for _ in 0..r.count(3)? {
            let name = r.string()?;
            let role = r.string()?;
            let mut aspects = Vec::new();
            for _ in 0..r.count(2)? {
                aspects.push((r.string()?, r.string()?));
            }
            stages.push(StageLayout {
                name,
                role,
                aspects,
            });
        }
        Ok(Layout { stages })
    }

    fn find(&self, name: &str) -> Option<&StageLayout> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// Why a checkpoint with layout `self` cannot be used by a pipeline with layout `now`:
    /// one line per difference; empty when it can. Sinks may come and go, except a sink whose
    /// prepared objects the checkpoint still has to publish (`pending_sinks`).
    pub fn incompatibilities(&self, now: &Layout, pending_sinks: &[&str]) -> Vec<String> {
        let mut problems = Vec::new();
        for old in &self.stages {
            match now.find(&old.name) {
                None if old.role == "sink" && !pending_sinks.contains(&old.name.as_str()) => {}
                None if old.role == "sink" => problems.push(format!(
                    "sink `{}` is gone, but the checkpoint holds files it must still publish",
                    old.name
                )),
                None => problems.push(format!(
                    "{} `{}` is gone; its state in the checkpoint cannot be used",
                    old.role, old.name
                )),
                Some(new) if new.role != old.role => problems.push(format!(
                    "`{}` was a {} and is now a {}",
                    old.name, old.role, new.role
                )),
                Some(new) => {
                    for (aspect, value) in &old.aspects {
                        let current = new
                            .aspects
                            .iter()
                            .find(|(a, _)| a == aspect)
                            .map_or("", |(_, v)| v.as_str());
                        if current != value {
                            problems.push(format!(
                                "{} `{}`: {aspect} changed from `{value}` (checkpoint) to `{current}` (pipeline)",
                                old.role, old.name
                            ));
                        }
                    }
                }
            }
        }
        for new in &now.stages {
            if new.role != "sink" && self.find(&new.name).is_none() {
                problems.push(format!(
                    "{} `{}` is new: it would start with no state in the middle of the input",
                    new.role, new.name
                ));
            }
        }
        problems
    }
}

/// The checkpoint a restart uses.
#[derive(Debug, Clone)]
pub struct Restored {
    pub checkpoint: Checkpoint,
    /// Newer checkpoints could not be read: this one is older than the newest.
    pub rolled_back: bool,
    /// Why newer checkpoints were skipped.
    pub warnings: Vec<String>,
}

/// The newest checkpoint in `store` that can be read, falling back to older ones (with a
/// warning each) when the newest is corrupt or truncated. `None` when there is none.
///
/// # Errors
/// When the store cannot be listed, or checkpoints exist and none can be read.
pub fn load_latest(store: &dyn CheckpointStore) -> Result<Option<Restored>, ConnectorError> {
    let ids = store.list()?;
    let mut warnings = Vec::new();
    for &id in ids.iter().rev() {
        let attempt = store.read(id).and_then(|bytes| {
            Checkpoint::decode(&bytes).map_err(|e| ConnectorError::user(e.to_string()))
        });
        match attempt {
            Ok(checkpoint) if checkpoint.id == id => {
                return Ok(Some(Restored {
                    checkpoint,
                    rolled_back: !warnings.is_empty(),
                    warnings,
                }));
            }
            Ok(checkpoint) => warnings.push(format!(
                "checkpoint {id} in {} says it is checkpoint {}; skipped",
                store.describe(),
                checkpoint.id
            )),
            Err(e) => warnings.push(format!(
                "checkpoint {id} in {} cannot be read ({e}); falling back to an older one",
                store.describe()
            )),
        }
    }
    if ids.is_empty() {
        Ok(None)
    } else {
        Err(ConnectorError::user(format!(
            "no checkpoint in {} can be read:\n  - {}\nMove the directory away to start over.",
            store.describe(),
            warnings.join("\n  - ")
        )))
    }
}

/// A human summary of a checkpoint, for `streamctl checkpoints show`.
pub fn describe(c: &Checkpoint, size: Option<u64>) -> String {
    let mut out = String::new();
    let when = crate::data::time::format_sql(c.created_ms);
    let _ = writeln!(out, "checkpoint {} of pipeline `{}`", c.id, c.pipeline);
    let _ = writeln!(out, "  taken:    {when} UTC");
    if let Some(size) = size {
        let _ = writeln!(out, "  size:     {size} bytes");
    }
    let _ = writeln!(out, "  instance: {}", c.instance);
    if c.finished {
        let _ = writeln!(out, "  the run completed: its input ended");
    }
    for s in &c.sources {
        let _ = writeln!(
            out,
            "  source `{}`: watermark {}",
            s.name,
            watermark(s.watermark)
        );
        for p in &s.positions {
            let _ = writeln!(out, "    {p}");
        }
    }
    for s in &c.stages {
        if s.open_windows > 0 || !s.state.is_empty() {
            let _ = writeln!(
                out,
                "  stage `{}`: {} open windows, {} groups, {} bytes of state, watermark {}",
                s.name,
                s.open_windows,
                s.open_groups,
                s.state.len(),
                watermark(s.in_watermark)
            );
        }
    }
    for s in &c.sinks {
        let _ = writeln!(
            out,
            "  sink `{}`: {} pending objects",
            s.name,
            s.snapshot.pending.len()
        );
        for p in &s.snapshot.pending {
            let _ = writeln!(out, "    {} ({} rows, {} bytes)", p.name, p.rows, p.bytes);
        }
    }
    out
}

/// A watermark for people.
pub fn watermark(w: i64) -> String {
    match w {
        crate::runtime::MIN_WATERMARK => "none yet".to_string(),
        crate::runtime::MAX_WATERMARK => "end of input".to_string(),
        w => crate::data::time::format_sql(w),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{Offset, PendingObject};

    fn sample() -> Checkpoint {
        Checkpoint {
            id: 7,
            created_ms: 1_700_000_000_000,
            pipeline: "p".into(),
            instance: "abc".into(),
            finished: false,
            layout: Layout {
                stages: vec![StageLayout {
                    name: "w".into(),
                    role: "window".into(),
                    aspects: vec![("window".into(), "tumbling 15m".into())],
                }],
            },
            sources: vec![SourceState {
                name: "in".into(),
                positions: vec![
                    Position::new("a.jsonl", Offset::End),
                    Position::new(
                        "b.jsonl",
                        Offset::Bytes {
                            offset: 123,
                            line: 4,
                        },
                    ),
                ],
                watermark: 5,
                finished: false,
                partitions: vec![PartitionWatermark {
                    name: "b.jsonl".into(),
                    max_time: 10,
                    idle: false,
                }],
            }],
            stages: vec![StageState {
                name: "w".into(),
                in_watermark: 5,
                out_watermark: 5,
                idle: false,
                open_windows: 1,
                open_groups: 2,
                state: vec![1, 2, 3],
            }],
            sinks: vec![SinkState {
                name: "out".into(),
                snapshot: SinkSnapshot {
                    pending: vec![PendingObject {
                        name: "file:///x/part-1.csv".into(),
                        bytes: 10,
                        rows: 2,
                        token: "/x/.part-1.csv.inprogress".into(),
                    }],
                    state: vec![],
                },
            }],
            counters: Counters {
                records_in: vec![100],
                bad_records: 1,
                ..Counters::default()
            },
        }
    }

    #[test]
    fn round_trips_and_detects_damage() {
        let c = sample();
        let bytes = c.encode();
        assert_eq!(Checkpoint::decode(&bytes).unwrap(), c);
        for cut in [0, 10, bytes.len() / 2, bytes.len() - 1] {
            assert!(Checkpoint::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        let middle = flipped.len() / 2;
        flipped[middle] ^= 0x40;
        let e = Checkpoint::decode(&flipped).unwrap_err();
        assert!(e.0.contains("checksum"), "{e}");
    }

    #[test]
    fn falls_back_to_an_older_checkpoint_when_the_newest_is_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let store = store::open(&dir.path().display().to_string()).unwrap();
        let mut c = sample();
        store.write(7, &c.encode()).unwrap();
        c.id = 8;
        let bytes = c.encode();
        store.write(8, &bytes[..bytes.len() - 3]).unwrap();
        let restored = load_latest(store.as_ref()).unwrap().unwrap();
        assert_eq!(restored.checkpoint.id, 7);
        assert!(restored.rolled_back);
        assert!(
            restored.warnings[0].contains("checkpoint 8"),
            "{:?}",
            restored.warnings
        );
    }

    #[test]
    fn layout_changes_are_named() {
        let old = sample().layout;
        let mut new = old.clone();
        new.stages[0].aspects[0].1 = "tumbling 30m".into();
        let problems = old.incompatibilities(&new, &[]);
        assert_eq!(
            problems,
            vec![
                "window `w`: window changed from `tumbling 15m` (checkpoint) to `tumbling 30m` (pipeline)"
            ]
        );
        assert!(old.incompatibilities(&old, &[]).is_empty());
    }
}
