//! Submitting a pipeline to a cluster. The Flink SQL script of [`crate::flink`] goes to a
//! Flink through its own command-line client ([`flink_cli`]): against YARN for a self-managed
//! Hadoop cluster, or a local Flink.

pub mod flink_cli;
