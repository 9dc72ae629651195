//! Transforms: the steps between sources and sinks. One variant per `type:`.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

use super::source::BadRecordsConfig;
use super::values::{Duration, SqlText};

/// A processing step. `type` picks what it does.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TransformConfig {
    /// Keeps the records for which a SQL condition is TRUE (NULL and FALSE drop them).
    Filter(FilterTransform),
    /// Computes new columns from SQL expressions (a projection, like `SELECT … FROM input`).
    Select(SelectTransform),
    /// Turns each element of an array field into a record of its own (`CROSS JOIN UNNEST`).
    Explode(ExplodeTransform),
    /// Groups records into event-time windows and aggregates each group.
    Window(WindowTransform),
}

impl TransformConfig {
    pub fn type_name(&self) -> &'static str {
        match self {
            TransformConfig::Filter(_) => "filter",
            TransformConfig::Select(_) => "select",
            TransformConfig::Explode(_) => "explode",
            TransformConfig::Window(_) => "window",
        }
    }

    pub fn inputs(&self) -> &[String] {
        match self {
            TransformConfig::Filter(t) => &t.inputs,
            TransformConfig::Select(t) => &t.inputs,
            TransformConfig::Explode(t) => &t.inputs,
            TransformConfig::Window(t) => &t.inputs,
        }
    }

    pub fn bad_records(&self) -> Option<&BadRecordsConfig> {
        match self {
            TransformConfig::Filter(t) => t.bad_records.as_ref(),
            TransformConfig::Select(t) => t.bad_records.as_ref(),
            TransformConfig::Explode(_) => None,
            TransformConfig::Window(t) => t.bad_records.as_ref(),
        }
    }
}

/// Keeps matching records.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterTransform {
    /// Names of the sources or transforms this reads from.
    pub inputs: Vec<String>,
    /// SQL boolean condition, e.g. `rating >= 4 AND country IN ('DE', 'FR')`.
    #[serde(rename = "where")]
    pub condition: SqlText,
    /// What to do when the condition cannot be evaluated (e.g. a failing CAST). Default: skip and count.
    #[serde(default)]
    pub bad_records: Option<BadRecordsConfig>,
}

/// Computes columns.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SelectTransform {
    /// Names of the sources or transforms this reads from.
    pub inputs: Vec<String>,
    /// Output columns in order: name → SQL expression, e.g. `{movie: movieId, hour: "HOUR(ts)"}`.
    pub fields: IndexMap<String, SqlText>,
    /// Keep every input column too, with `fields` added after them (or replacing same-named
    /// ones). Default `false`: only `fields`.
    #[serde(default)]
    pub append: bool,
    /// What to do when an expression cannot be evaluated (e.g. a failing CAST). Default: skip and count.
    #[serde(default)]
    pub bad_records: Option<BadRecordsConfig>,
}

/// Flattens an array field.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplodeTransform {
    /// Names of the sources or transforms this reads from.
    pub inputs: Vec<String>,
    /// The array field to explode; each element becomes one output record.
    pub field: String,
    /// Name of the element column in the output. Default: the array field's name.
    #[serde(default, rename = "as")]
    pub alias: Option<String>,
    /// Keep records whose array is empty or NULL, with a NULL element. Default `false`
    /// (like `CROSS JOIN UNNEST`).
    #[serde(default)]
    pub keep_empty: bool,
}

/// Event-time windowed aggregation.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowTransform {
    /// Names of the sources or transforms this reads from (they must carry event time).
    pub inputs: Vec<String>,
    /// Window shape: `{type: tumbling, size: 15m}`, `{type: sliding, size: 1h, slide: 5m}`
    /// or `{type: session, gap: 30m}`.
    pub window: WindowSpec,
    /// Grouping keys: field names or SQL expressions (`expr AS name`). Default: one group.
    #[serde(default)]
    pub group_by: Vec<SqlText>,
    /// Output columns computed per window and group: name → SQL aggregate, e.g.
    /// `{impressions: "COUNT(*)", latest: "MAX(timestamp)"}`.
    pub aggregates: IndexMap<String, SqlText>,
    /// Late events: how long after a window fires it still accepts them, and where the
    /// later ones go. Default: nothing accepted late; late events are counted and reported.
    #[serde(default)]
    pub late: Option<LateConfig>,
    /// What to do when an aggregate argument cannot be evaluated. Default: skip and count.
    #[serde(default)]
    pub bad_records: Option<BadRecordsConfig>,
}

/// Window shapes. Windows are aligned to the Unix epoch in UTC, like Flink's window TVFs.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum WindowSpec {
    /// Fixed, non-overlapping windows: `[floor(t / size) * size, + size)`.
    Tumbling {
        /// Window length, e.g. `15m`.
        size: Duration,
    },
    /// Overlapping windows of `size` starting every `slide` (Flink HOP); each event is in
    /// `size / slide` windows.
    Sliding {
        /// Window length, e.g. `1h`; a multiple of `slide`.
        size: Duration,
        /// Distance between window starts, e.g. `5m`.
        slide: Duration,
    },
    /// Per-group windows that close after `gap` without events.
    Session {
        /// Inactivity that ends a session, e.g. `30m`.
        gap: Duration,
    },
}

impl WindowSpec {
    pub fn type_name(&self) -> &'static str {
        match self {
            WindowSpec::Tumbling { .. } => "tumbling",
            WindowSpec::Sliding { .. } => "sliding",
            WindowSpec::Session { .. } => "session",
        }
    }
}

/// How a window with allowed lateness writes results that late events change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EmitMode {
    /// A row when the window ends, and an updated row (with a higher `revision`) after each
    /// allowed late event.
    #[default]
    Updates,
    /// One row per window and key, once the allowed lateness has passed.
    Final,
}

/// Late-event handling.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LateConfig {
    /// How long after the watermark passes a window's end it still accepts events (as in
    /// Flink's allowed lateness); `emit` says how their results are written. Default `0s`.
    #[serde(default)]
    pub allowed_lateness: Duration,
    /// With `allowed_lateness`: `updates` (the default) writes a window's row when the
    /// watermark passes its end and again after each event that arrives within the lateness,
    /// with a `revision` column (0 for the first row, then 1, 2, …: keep the highest per window
    /// and key); `final` waits out the lateness and writes each row once, so append-only
    /// outputs hold no superseded rows, at the price of results `allowed_lateness` later.
    #[serde(default)]
    pub emit: Option<EmitMode>,
    /// Name of a stream that receives late events; sinks read it by this name. It gets one
    /// row per window an event was too late for (an event of a sliding window may miss
    /// several, or only some, of its windows): the event's fields plus `late_window_start`
    /// and `late_window_end`. Without it, late events are counted and reported.
    #[serde(default)]
    pub to: Option<String>,
}
