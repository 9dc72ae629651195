//! What the user wrote: the pipeline file's typed model.
//!
//! The serde types here *are* the format: the JSON Schema in `schemas/` is generated from them
//! (`streamctl schema`), and the structural check walks that schema. Loading goes
//! text → [`yaml::Node`] tree with spans → `${VAR}` interpolation → [`check`] (every structural
//! problem, with positions) → serde into [`PipelineConfig`]. Semantic checks (graph, fields,
//! SQL, time) happen afterwards in [`crate::plan`].

pub mod check;
pub mod de;
pub mod sink;
pub mod source;
pub mod transform;
pub mod values;
pub mod yaml;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

pub use sink::SinkConfig;
pub use source::SourceConfig;
pub use transform::TransformConfig;
pub use values::{ByteSize, Duration, FieldType, Instant, SqlText};

use crate::diag::{Diagnostic, SourceFile, Span};
use yaml::Node;

/// A streamctl pipeline: named sources, transforms and sinks wired by `inputs`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Version of the pipeline format. Always `1`.
    pub version: u32,
    /// Name of the pipeline: used in output file names, the default Kafka group id and the
    /// Flink job name.
    pub name: String,
    /// What the pipeline does, for people reading it.
    #[serde(default)]
    pub description: Option<String>,
    /// Where records come from, by name.
    pub sources: IndexMap<String, SourceConfig>,
    /// Processing steps between sources and sinks, by name.
    #[serde(default)]
    pub transforms: IndexMap<String, TransformConfig>,
    /// Where results go, by name.
    pub sinks: IndexMap<String, SinkConfig>,
    /// Periodic checkpoints of positions, window state and pending output, so a restarted run
    /// continues exactly where the last completed checkpoint left off.
    #[serde(default)]
    pub checkpoint: Option<CheckpointConfig>,
}

/// Checkpoint settings.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Where checkpoints are stored: a local directory (`file:///var/lib/streamctl/…`) or
    /// `s3://bucket/prefix/`.
    pub url: String,
    /// Time between checkpoints; output files become visible at each one. Default `1m`.
    #[serde(default)]
    pub interval: Option<Duration>,
    /// How many complete checkpoints to keep: the newest, and older ones to fall back to if
    /// the newest cannot be read. Default 3.
    #[serde(default)]
    pub retain: Option<u32>,
}

/// The JSON Schema of the pipeline format, as checked in at `schemas/pipeline.schema.json`.
pub fn json_schema() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(PipelineConfig))
        .unwrap_or(serde_json::Value::Null);
    annotate(&mut schema);
    if let Some(obj) = schema.as_object_mut() {
        obj.insert(
            "$id".to_string(),
            "https://streamctl.dev/schemas/pipeline.schema.json".into(),
        );
        obj.insert("title".to_string(), "streamctl pipeline".into());
    }
    schema
}

/// Makes the generated schema self-contained and strict for editors and for [`check`]:
/// inlines `$ref`s that sit beside `properties` (schemars' shape for tagged variants with
/// flattened settings, which standard validators would otherwise reject under
/// `additionalProperties: false`), describes each variant's `type` tag, and closes every
/// object with named properties (serde cannot deny unknown fields next to `flatten`).
fn annotate(schema: &mut serde_json::Value) {
    let defs = schema.get("$defs").cloned().unwrap_or_default();
    visit_schemas(schema, &mut |obj| {
        if obj.contains_key("properties")
            && let Some(reference) = obj.get("$ref").and_then(|r| r.as_str()).map(str::to_string)
            && let Some(target) = defs.get(reference.trim_start_matches("#/$defs/"))
        {
            obj.remove("$ref");
            if let (
                Some(serde_json::Value::Object(extra)),
                Some(serde_json::Value::Object(props)),
            ) = (target.get("properties"), obj.get_mut("properties"))
            {
                for (k, v) in extra {
                    props.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            if let (Some(serde_json::Value::Array(extra)), Some(serde_json::Value::Array(req))) =
                (target.get("required"), obj.get_mut("required"))
            {
                req.extend(extra.iter().cloned());
            }
        }
        if let Some(serde_json::Value::Object(props)) = obj.get_mut("properties") {
            if let Some(tag) = props.get_mut("type")
                && let Some(value) = tag
                    .get("const")
                    .and_then(|c| c.as_str())
                    .map(str::to_string)
                && tag.get("description").is_none()
            {
                tag["description"] = format!("Selects `{value}`.").into();
            }
            obj.entry("additionalProperties").or_insert(false.into());
        }
    });
}

/// Calls `f` on every (sub)schema object, following schema keywords only (so a *field* named
/// `properties` is not mistaken for the keyword).
pub fn visit_schemas(
    schema: &mut serde_json::Value,
    f: &mut dyn FnMut(&mut serde_json::Map<String, serde_json::Value>),
) {
    let serde_json::Value::Object(obj) = schema else {
        return;
    };
    f(obj);
    for key in ["properties", "$defs"] {
        if let Some(serde_json::Value::Object(children)) = obj.get_mut(key) {
            children.values_mut().for_each(|c| visit_schemas(c, f));
        }
    }
    for key in ["additionalProperties", "items"] {
        if let Some(child) = obj.get_mut(key) {
            visit_schemas(child, f);
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(serde_json::Value::Array(children)) = obj.get_mut(key) {
            children.iter_mut().for_each(|c| visit_schemas(c, f));
        }
    }
}

/// A pipeline file that parsed and passed the structural check.
#[derive(Debug)]
pub struct Loaded {
    pub file: SourceFile,
    pub root: Node,
    /// The config, without the components in `broken`.
    pub config: PipelineConfig,
    /// Structural problems already found (only in components listed in `broken`).
    pub diagnostics: Vec<Diagnostic>,
    /// Components left out of `config` because they have structural errors; validation
    /// treats them as present but unknown, so their problems do not cascade.
    pub broken: Vec<BrokenComponent>,
}

/// A component that could not be read, and what can still be learned about it.
#[derive(Debug, Clone)]
pub struct BrokenComponent {
    /// `sources`, `transforms` or `sinks`.
    pub section: &'static str,
    pub name: String,
    /// The names in its `inputs`, if readable.
    pub inputs: Vec<String>,
    /// Streams it declares with `to:` (dead letters, late events), if readable.
    pub declares: Vec<String>,
}

/// A pipeline file that did not load, with everything wrong with it.
#[derive(Debug)]
pub struct LoadError {
    pub file: SourceFile,
    pub diagnostics: Vec<Diagnostic>,
}

/// Parses, interpolates, checks and deserializes a pipeline. `env` resolves `${VAR}`.
///
/// # Errors
/// Every syntax, interpolation and structural problem found, with positions.
pub fn load_str(
    path: &str,
    text: String,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, Box<LoadError>> {
    // A byte-order mark is invisible in editors; positions are counted without it.
    let text = match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    };
    let file = SourceFile::new(path, text);
    let fail = |file: SourceFile, diagnostics: Vec<Diagnostic>| {
        Err(Box::new(LoadError { file, diagnostics }))
    };
    let (mut root, mut diagnostics) = match yaml::parse_lenient(&file.text) {
        Ok(parsed) => parsed,
        Err(diagnostics) => return fail(file, diagnostics),
    };
    if !matches!(root.kind, yaml::NodeKind::Map(_)) {
        let d = Diagnostic::error(
            "type-mismatch",
            format!("a pipeline file is a mapping, found {}", root.kind_name()),
        )
        .at(root.span)
        .with_help("start with `version: 1`, `name:`, `sources:` and `sinks:`");
        diagnostics.push(d);
        return fail(file, diagnostics);
    }
    yaml::interpolate(&mut root, env, &mut diagnostics);
    diagnostics.extend(check::check(&mut root, &json_schema()));
    crate::diag::sort(&mut diagnostics);
    // Structural errors inside components: set those components aside and keep validating
    // the rest, so one pass reports everything. Errors elsewhere stop here.
    let (readable, broken) = if diagnostics.iter().any(Diagnostic::is_error) {
        match without_broken_components(&root, &diagnostics) {
            Some(split) => split,
            None => return fail(file, diagnostics),
        }
    } else {
        (root.clone(), Vec::new())
    };
    match PipelineConfig::deserialize(de::NodeDeserializer(&readable)) {
        Ok(config) => Ok(Loaded {
            file,
            root,
            config,
            diagnostics,
            broken,
        }),
        Err(e) => {
            let d = Diagnostic::error("invalid-value", e.message).at(e.span.unwrap_or(root.span));
            diagnostics.push(d);
            fail(file, diagnostics)
        }
    }
}

const SECTIONS: [&str; 3] = ["sources", "transforms", "sinks"];

/// The tree without the components that hold an error, and what is known about those; `None`
/// when an error lies outside every component (the file's shape itself is wrong).
fn without_broken_components(
    root: &Node,
    diagnostics: &[Diagnostic],
) -> Option<(Node, Vec<BrokenComponent>)> {
    let mut readable = root.clone();
    let mut broken = Vec::new();
    let mut covered = vec![false; diagnostics.len()];
    let yaml::NodeKind::Map(sections) = &mut readable.kind else {
        return None;
    };
    for (section_key, section) in sections.iter_mut() {
        let Some(&section_name) = SECTIONS.iter().find(|s| Some(**s) == section_key.as_str())
        else {
            continue;
        };
        let yaml::NodeKind::Map(components) = &mut section.kind else {
            continue;
        };
        components.retain(|(key, value)| {
            let span = key.span.join(value.span);
            let mut has_error = false;
            for (i, d) in diagnostics.iter().enumerate() {
                if d.is_error()
                    && d.span.is_some_and(|s| {
                        s.start >= span.start && s.start < span.end.max(span.start + 1)
                    })
                {
                    covered[i] = true;
                    has_error = true;
                }
            }
            if has_error {
                broken.push(BrokenComponent {
                    section: section_name,
                    name: key.as_str().unwrap_or_default().to_string(),
                    inputs: names_at(value, &["inputs"]),
                    declares: [["bad_records", "to"], ["late", "to"]]
                        .iter()
                        .flat_map(|path| names_at(value, path))
                        .collect(),
                });
            }
            !has_error
        });
    }
    let all_inside = diagnostics
        .iter()
        .zip(&covered)
        .all(|(d, c)| *c || !d.is_error());
    all_inside.then_some((readable, broken))
}

/// The text values at `path` under `node` (a scalar or a list of scalars).
fn names_at(node: &Node, path: &[&str]) -> Vec<String> {
    let mut n = node;
    for key in path {
        match n.get(key) {
            Some(child) => n = child,
            None => return Vec::new(),
        }
    }
    match (n.as_str(), n.as_seq()) {
        (Some(s), _) => vec![s.to_string()],
        (None, Some(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// Reads the process environment (the default for `${VAR}`).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Navigates the tree by keys, for pointing diagnostics at settings.
pub struct Locator<'a> {
    pub root: &'a Node,
}

impl<'a> Locator<'a> {
    /// The node at `path`, or the deepest ancestor that exists.
    pub fn node(&self, path: &[&str]) -> &'a Node {
        let mut node = self.root;
        for key in path {
            match node.get(key) {
                Some(child) => node = child,
                None => break,
            }
        }
        node
    }

    /// The span of the value at `path` (or the deepest ancestor's).
    pub fn value(&self, path: &[&str]) -> Span {
        self.node(path).span
    }

    /// The span of the key of `path`'s last element (or the value's when absent).
    pub fn key(&self, path: &[&str]) -> Span {
        let Some((last, parent)) = path.split_last() else {
            return self.root.span;
        };
        let parent_node = self.node(parent);
        match parent_node.entry(last) {
            Some((k, _)) => k.span,
            None => self.key(parent),
        }
    }

    /// The span of the `i`th item of the list at `path`.
    pub fn item(&self, path: &[&str], i: usize) -> Span {
        let node = self.node(path);
        node.as_seq()
            .and_then(|items| items.get(i))
            .map_or(node.span, |n| n.span)
    }

    /// The span of the value of key `key` in the mapping at `path` (map entries keyed by
    /// user names, e.g. aggregates).
    pub fn map_value(&self, path: &[&str], key: &str) -> Span {
        let node = self.node(path);
        node.get(key).map_or(node.span, |n| n.span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Loaded, Box<LoadError>> {
        load_str("test.yaml", text.to_string(), &|_| None)
    }

    fn codes(text: &str) -> Vec<(&'static str, usize)> {
        let (file, diagnostics) = match load(text) {
            Ok(l) => (l.file, l.diagnostics),
            Err(e) => (e.file, e.diagnostics),
        };
        diagnostics
            .iter()
            .map(|d| (d.code, file.line_col(d.span.unwrap().start).line))
            .collect()
    }

    const MINIMAL: &str = "version: 1
name: t
sources:
  s:
    type: file
    path: in.jsonl
    schema: {a: string, ts: timestamp_ms}
    event_time: {field: ts, max_out_of_orderness: 5s}
sinks:
  out:
    type: stdout
    inputs: [s]
";

    #[test]
    fn a_minimal_pipeline_loads() {
        let loaded = load(MINIMAL).unwrap_or_else(|e| panic!("{:?}", e.diagnostics));
        let SourceConfig::File(f) = &loaded.config.sources["s"] else {
            panic!("not a file source")
        };
        assert_eq!(f.decoding.schema.len(), 2);
        assert_eq!(
            f.decoding
                .event_time
                .as_ref()
                .unwrap()
                .max_out_of_orderness
                .millis,
            5000
        );
    }

    #[test]
    fn every_structural_problem_is_reported_with_its_line() {
        let text = MINIMAL
            .replace("path: in.jsonl", "pth: in.jsonl")
            .replace("max_out_of_orderness: 5s", "max_out_of_orderness: 5x")
            .replace("type: stdout", "type: stdot");
        assert_eq!(
            codes(&text),
            vec![
                ("unknown-key", 6),
                ("bad-duration", 8),
                ("unknown-type", 11)
            ]
        );
    }

    #[test]
    fn numbers_stay_text_where_text_is_expected() {
        let text = MINIMAL.replace("name: t", "name: 2024");
        assert_eq!(load(&text).unwrap().config.name, "2024");
    }

    #[test]
    fn the_generated_schema_describes_every_property() {
        let mut missing = Vec::new();
        visit_schemas(&mut json_schema(), &mut |obj| {
            if let Some(serde_json::Value::Object(props)) = obj.get("properties") {
                for (name, prop) in props {
                    if prop.get("description").is_none() {
                        missing.push(name.clone());
                    }
                }
            }
        });
        assert!(
            missing.is_empty(),
            "properties without a description: {missing:?}"
        );
    }
}
