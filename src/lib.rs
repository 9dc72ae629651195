//! streamctl: declarative stream processing from one YAML file.
//!
//! The data path is the module layout:
//!
//! ```text
//! config ──► plan ──► engine ◄── sources ─ format (decode)
//!  (what the   (validated,   │
//!   user wrote) typed graph)  └──► sinks ─ format (encode)
//! ```
//!
//! - [`config`]: the pipeline file's typed model, with positions for diagnostics.
//! - [`plan`]: validation turns a config into a [`plan::Plan`] (every check, all errors at once).
//! - [`expr`]: SQL expressions: parse with `sqlparser`, type-check, evaluate.
//! - [`data`]: columnar batches and values.
//! - [`sources`], [`format`], [`engine`], [`sinks`]: the embedded runtime.
//! - [`flink`]: the cluster path: a plan as a Flink SQL script.
//! - [`diag`]: diagnostics and their rendering.
//!
//! Nothing below `cli` prints; the library returns values and errors.

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod clock;
pub mod config;
pub mod data;
pub mod diag;
pub mod engine;
pub mod expr;
pub mod flink;
pub mod format;
pub mod plan;
pub mod sinks;
pub mod sources;
