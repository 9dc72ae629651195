//! Pipeline → Flink SQL: the cluster path.
//!
//! [`translate`] turns a validated [`Plan`] into one runnable Flink 1.20 SQL script: `SET`
//! statements, a `CREATE TABLE` per source and sink, a `CREATE TEMPORARY VIEW` per transform
//! (window TVFs for windows) and the `INSERT`s, in a `STATEMENT SET` when there are several.
//! Event time travels through every view in a hidden time-attribute column, as it travels
//! with each record in the embedded engine.
//!
//! What Flink SQL cannot do the way the engine does (routed late events, dead letters,
//! non-Hive bucket layouts, CSV headers…) is never dropped silently: each is a [`Gap`], printed
//! as a comment where it applies in the script and reported by `streamctl validate --target
//! flink` at its line in the pipeline file, with the nearest equivalent.
//!
//! Layout: [`sql`] quotes identifiers and escapes literals (the only place that does),
//! [`mod@expr`] prints typed expressions, [`layout`] maps bucket templates to Hive partitions,
//! [`connector`] holds every connector setting the DDL mirrors, [`translate`] assembles the
//! script.

mod connector;
mod expr;
pub mod layout;
pub mod sql;
mod translate;

pub use connector::is_secret;
pub use translate::{Options, Script, translate};

use crate::config::{Loaded, Locator};
use crate::diag::Diagnostic;
use crate::plan::{Plan, Validated};

/// The Flink version the SQL is written for (what Amazon EMR 7.x ships).
pub const FLINK_VERSION: &str = "1.20";

/// Something the cluster path cannot do the way the embedded engine does.
#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    /// The setting it concerns: `["sinks", "hourly", "path"]`.
    pub path: Vec<String>,
    /// Point at the key of `path` (a component or setting as a whole) rather than its value.
    pub at_key: bool,
    /// Stable identifier, `flink-…`.
    pub code: &'static str,
    pub message: String,
    /// The nearest equivalent.
    pub help: String,
}

impl Gap {
    fn new(path: &[&str], code: &'static str, message: impl Into<String>) -> Gap {
        Gap {
            path: path.iter().map(|s| s.to_string()).collect(),
            at_key: false,
            code,
            message: message.into(),
            help: String::new(),
        }
    }

    fn key(mut self) -> Gap {
        self.at_key = true;
        self
    }

    fn help(mut self, help: impl Into<String>) -> Gap {
        self.help = help.into();
        self
    }

    /// The gap as a warning located in the pipeline file.
    pub fn diagnostic(&self, loc: &Locator<'_>) -> Diagnostic {
        let path: Vec<&str> = self.path.iter().map(String::as_str).collect();
        let span = if self.at_key {
            loc.key(&path)
        } else {
            loc.value(&path)
        };
        let d = Diagnostic::warning(self.code, self.message.clone()).at(span);
        if self.help.is_empty() {
            d
        } else {
            d.with_help(self.help.clone())
        }
    }
}

/// Validates a pipeline for the cluster path: every check of [`crate::plan::validate`], plus a
/// warning for each [`Gap`] of its translation. Pure: reads nothing but `env`.
pub fn validate(
    path: &str,
    text: String,
    env: &dyn Fn(&str) -> Option<String>,
    options: &Options,
) -> Validated {
    crate::plan::validate_with(path, text, env, &|loaded, plan| gaps(loaded, plan, options))
}

/// The gaps of a plan's translation as diagnostics in its file.
pub fn gaps(loaded: &Loaded, plan: &Plan, options: &Options) -> Vec<Diagnostic> {
    let loc = Locator { root: &loaded.root };
    translate(plan, options)
        .gaps
        .iter()
        .map(|g| g.diagnostic(&loc))
        .collect()
}
