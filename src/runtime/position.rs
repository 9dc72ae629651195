//! Where a source is in its input. Every batch a source sends carries the position just after
//! its last record; a checkpoint records the positions of everything the engine has applied,
//! and a restarted source starts from them.

use std::fmt;

use super::state::{StateReader, StateResult, StateWriter};

/// A position within one partition of a source's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offset {
    /// A byte offset (decompressed, for `.gz`) just after the last record read, and the
    /// 1-based line number of the next record. Files.
    Bytes { offset: u64, line: u64 },
    /// The number of the next record to read: a Kafka offset, a generator's record index.
    Next(i64),
    /// The sequence number of the last record read; reading resumes after it (Kinesis).
    /// Kept as text: Kinesis sequence numbers are 128-bit decimals.
    After(String),
    /// Nothing read yet; reading starts with what arrived at or after this instant (epoch
    /// milliseconds): a Kinesis shard opened with `start_from: latest`, so a restart reads
    /// what came in since the first start rather than only what comes after the restart.
    Since(i64),
    /// The partition is done: nothing more to read from it.
    End,
}

/// The position of one partition: which partition (a file path, `topic/3`, a shard id) and
/// where in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub partition: String,
    pub offset: Offset,
}

impl Position {
    pub fn new(partition: impl Into<String>, offset: Offset) -> Position {
        Position {
            partition: partition.into(),
            offset,
        }
    }

    pub fn write(&self, w: &mut StateWriter) {
        w.str(&self.partition);
        match &self.offset {
            Offset::Bytes { offset, line } => {
                w.u8(0);
                w.u64(*offset);
                w.u64(*line);
            }
            Offset::Next(n) => {
                w.u8(1);
                w.i64(*n);
            }
            Offset::After(seq) => {
                w.u8(2);
                w.str(seq);
            }
            Offset::End => w.u8(3),
            Offset::Since(ms) => {
                w.u8(4);
                w.i64(*ms);
            }
        }
    }

    pub fn read(r: &mut StateReader<'_>) -> StateResult<Position> {
        let partition = r.string()?;
        let offset = match r.u8()? {
            0 => Offset::Bytes {
                offset: r.u64()?,
                line: r.u64()?,
            },
            1 => Offset::Next(r.i64()?),
            2 => Offset::After(r.string()?),
            3 => Offset::End,
            4 => Offset::Since(r.i64()?),
            other => {
                return Err(super::state::StateError(format!(
                    "unknown position kind {other}"
                )));
            }
        };
        Ok(Position { partition, offset })
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Offset::Bytes { offset, line } => write!(f, "byte {offset} (line {line})"),
            Offset::Next(n) => write!(f, "offset {n}"),
            Offset::After(seq) => write!(f, "after sequence number {seq}"),
            Offset::End => f.write_str("end"),
            Offset::Since(ms) => match chrono::DateTime::from_timestamp_millis(*ms) {
                Some(t) => write!(f, "arrivals since {}", t.format("%Y-%m-%dT%H:%M:%S%.3fZ")),
                None => write!(f, "arrivals since {ms} ms"),
            },
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} @ {}", self.partition, self.offset)
    }
}

/// The positions a source starts from, by partition (empty: from its configured start).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartPositions(pub Vec<Position>);

impl StartPositions {
    pub fn get(&self, partition: &str) -> Option<&Offset> {
        self.0
            .iter()
            .find(|p| p.partition == partition)
            .map(|p| &p.offset)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
