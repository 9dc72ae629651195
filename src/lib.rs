//! streamctl: declarative stream processing from one YAML file.
//!
//! The data path is the module layout:
//!
//! ```text
//! config ──► plan ──► job ──► engine ◄── sources ─ format (decode)
//!  (what the   (validated,  (connectors,  │
//!   user wrote) typed graph) checkpoints) └──► sinks ─ format (encode)
//!
//!                 runtime: the contract below engine, sources and sinks
//! ```
//!
//! - [`config`]: the pipeline file's typed model, with positions for diagnostics.
//! - [`plan`]: validation turns a config into a [`plan::Plan`] (every check, all errors at
//!   once), with typed, defaulted connector settings ([`plan::connectors`]).
//! - [`expr`]: SQL expressions: parse with `sqlparser`, type-check, evaluate.
//! - [`data`]: columnar batches and values.
//! - [`runtime`]: the contract sources, operators and sinks implement: positions, state
//!   snapshots, two-phase commit, error domains.
//! - [`job`]: builds a plan's connectors and finds its checkpoint; [`engine`] runs it;
//!   [`checkpoint`] is what a checkpoint holds and where it is kept.
//! - [`sources`], [`format`], [`sinks`]: the connectors and codecs.
//! - [`aws`]: AWS client setup shared by the S3 (and later Kinesis, EMR) connectors.
//! - [`flink`]: the cluster path: a plan as a Flink SQL script; [`submit`] hands it to a cluster.
//! - [`testing`]: pipeline tests (`*.test.yaml`): records in, expected rows out, on the real
//!   engine with sources and sinks replaced.
//! - [`diag`]: diagnostics and their rendering.
//!
//! Nothing below `cli` prints; the library returns values and errors.

#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod aws;
pub mod checkpoint;
pub mod clock;
pub mod config;
pub mod data;
pub mod diag;
pub mod engine;
pub mod expr;
pub mod fault;
pub mod flink;
pub mod format;
pub mod job;
pub mod kafka;
pub mod plan;
pub mod replay;
pub mod runtime;
pub mod sinks;
pub mod sources;
pub mod submit;
pub mod testing;
