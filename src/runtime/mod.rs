//! The runtime contract: what sources, operators and sinks implement and the engine drives.
//!
//! This module sits below all of them: it imports only [`crate::data`] and [`crate::clock`],
//! so the engine does not know connectors and connectors do not know the engine or the
//! pipeline file. What it defines:
//!
//! - [`source`]: a source sends batches, each with the [`Position`] after it, starts from the
//!   positions of a restored checkpoint, and hears when checkpoints complete;
//! - [`state`]: operators write their state into checkpoints and read it back;
//! - [`sink`]: a sink prepares what it wrote (durable, invisible), commits it once the
//!   checkpoint that covers it is durable, and removes leftovers of failed attempts;
//! - [`error`]: every connector error says whose it is: the user's, an external system's
//!   (retryable or not), or ours;
//! - [`metrics`]: the counters a run reports.

pub mod error;
pub mod metrics;
pub mod position;
pub mod sink;
pub mod source;
pub mod state;

pub use error::{ConnectorError, ErrorDomain};
pub use metrics::Metrics;
pub use position::{Offset, Position, StartPositions};
pub use sink::{IfExists, PendingObject, Sink, SinkSnapshot, SinkStart};
pub use source::{
    BadRecord, CompletedCheckpoints, EventTime, Source, SourceContext, SourceEvent, SourceMessage,
};
pub use state::{StateError, StateReader, StateResult, StateWriter};

/// No watermark yet: nothing is late.
pub const MIN_WATERMARK: i64 = i64::MIN;
/// The end of bounded input: every window fires.
pub const MAX_WATERMARK: i64 = i64::MAX;
