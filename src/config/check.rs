//! Structural check of the YAML tree against the JSON Schema generated from the config types.
//!
//! serde stops at the first error and forgets positions; this pass walks the whole tree first
//! and reports *every* unknown key, missing key, wrong type, bad enum value and malformed
//! duration/size, each at its line and column with a suggestion. It also records on each
//! scalar what type it resolved to, so deserialization afterwards cannot disagree.

use serde_json::{Map, Value};

use super::values::check_format;
use super::yaml::{Node, NodeKind, Resolved, is_null_text};
use crate::diag::{Diagnostic, Span, closest, did_you_mean, list_names};

/// Checks `node` against `schema` (the root of a generated JSON Schema, with `$defs`).
pub fn check(node: &mut Node, schema: &Value) -> Vec<Diagnostic> {
    let mut checker = Checker {
        defs: schema.get("$defs").and_then(Value::as_object),
        diagnostics: Vec::new(),
    };
    checker.check(node, schema, &Place::root());
    checker.diagnostics
}

/// Where in the pipeline a node is, for messages: `kafka source `impressions``.
#[derive(Clone)]
struct Place {
    /// Human description of the enclosing object.
    owner: String,
    /// Dotted path of keys from the root.
    path: String,
    /// Span of the key that led here, for "missing key" errors on this object.
    key_span: Option<Span>,
}

impl Place {
    fn root() -> Place {
        Place {
            owner: "the pipeline".to_string(),
            path: String::new(),
            key_span: None,
        }
    }

    fn child(&self, key: &str, key_span: Span) -> Place {
        let path = if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        };
        // Components are named by their section: `sources.<name>` is "source `<name>`".
        let owner = match self.path.as_str() {
            "sources" => format!("source `{key}`"),
            "transforms" => format!("transform `{key}`"),
            "sinks" => format!("sink `{key}`"),
            _ => format!("`{path}`"),
        };
        Place {
            owner,
            path,
            key_span: Some(key_span),
        }
    }

    fn item(&self, index: usize, span: Span) -> Place {
        let path = format!("{}[{index}]", self.path);
        Place {
            owner: format!("`{path}`"),
            path,
            key_span: Some(span),
        }
    }
}

struct Checker<'s> {
    defs: Option<&'s Map<String, Value>>,
    diagnostics: Vec<Diagnostic>,
}

impl<'s> Checker<'s> {
    fn resolve(&self, mut schema: &'s Value) -> &'s Value {
        while let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let name = reference.trim_start_matches("#/$defs/");
            match self.defs.and_then(|d| d.get(name)) {
                Some(target) => schema = target,
                None => break,
            }
        }
        schema
    }

    fn check(&mut self, node: &mut Node, schema: &'s Value, place: &Place) {
        let schema = self.resolve(schema);
        if let Some(branches) = schema.get("anyOf").and_then(Value::as_array) {
            return self.check_any_of(node, branches, place);
        }
        if let Some(branches) = schema.get("oneOf").and_then(Value::as_array) {
            return self.check_one_of(node, branches, place);
        }
        let types = schema_types(schema);
        if types.is_empty() {
            return; // `true` / unconstrained
        }
        if node.is_null() && types.contains(&"null") {
            set_resolved(node, Resolved::Null);
            return;
        }
        if types.contains(&"object") && matches!(node.kind, NodeKind::Map(_)) {
            return self.check_object(node, schema, place, &[]);
        }
        if types.contains(&"array") && matches!(node.kind, NodeKind::Seq(_)) {
            if let (NodeKind::Seq(items), Some(item_schema)) = (&mut node.kind, schema.get("items"))
            {
                for (i, item) in items.iter_mut().enumerate() {
                    let item_place = place.item(i, item.span);
                    self.check(item, item_schema, &item_place);
                }
            }
            return;
        }
        self.check_scalar(node, schema, &types, place);
    }

    fn check_any_of(&mut self, node: &mut Node, branches: &'s [Value], place: &Place) {
        // `Option<T>` is `anyOf: [T, {type: null}]`.
        let non_null: Vec<&'s Value> = branches
            .iter()
            .filter(|b| schema_types(b) != ["null"])
            .collect();
        if node.is_null() && non_null.len() < branches.len() {
            set_resolved(node, Resolved::Null);
            return;
        }
        if let [only] = non_null.as_slice() {
            return self.check(node, only, place);
        }
        // A real union: accept the first branch that produces no errors.
        let before = self.diagnostics.len();
        for branch in &non_null {
            let mut trial = node.clone();
            self.check(&mut trial, branch, place);
            if self.diagnostics.len() == before {
                *node = trial;
                return;
            }
            self.diagnostics.truncate(before);
        }
        if let Some(first) = non_null.first() {
            self.check(node, first, place);
        }
    }

    fn check_one_of(&mut self, node: &mut Node, branches: &'s [Value], place: &Place) {
        let branches: Vec<&'s Value> = branches.iter().map(|b| self.resolve(b)).collect();
        // Unit enums: every branch is a string constant.
        let constants: Vec<&str> = branches
            .iter()
            .filter_map(|b| b.get("const").and_then(Value::as_str))
            .collect();
        if constants.len() == branches.len() {
            return self.check_constant(node, &constants, place);
        }
        // Internally tagged enums: pick the branch whose `type` constant matches.
        let tags: Vec<(&str, &'s Value)> = branches
            .iter()
            .filter_map(|b| {
                let tag = b.pointer("/properties/type/const")?.as_str()?;
                Some((tag, *b))
            })
            .collect();
        if tags.len() == branches.len() {
            return self.check_tagged(node, &tags, place);
        }
        if let Some(first) = branches.first() {
            self.check(node, first, place);
        }
    }

    fn check_constant(&mut self, node: &mut Node, allowed: &[&str], place: &Place) {
        let Some(text) = node.as_str().map(str::to_string) else {
            self.push(
                Diagnostic::error(
                    "type-mismatch",
                    format!(
                        "{} must be one of {}, found {}",
                        describe_value(place),
                        list_names(allowed),
                        node.kind_name()
                    ),
                )
                .at(node.span),
            );
            return;
        };
        if allowed.contains(&text.as_str()) {
            set_resolved(node, Resolved::String);
            return;
        }
        let help = did_you_mean(&text, allowed.iter().copied())
            .unwrap_or_else(|| format!("use one of {}", list_names(allowed)));
        self.push(
            Diagnostic::error(
                "unknown-variant",
                format!(
                    "{} must be one of {}, found {}",
                    describe_value(place),
                    list_names(allowed),
                    node.describe()
                ),
            )
            .at(node.span)
            .with_help(help),
        );
    }

    fn check_tagged(&mut self, node: &mut Node, tags: &[(&str, &'s Value)], place: &Place) {
        let names: Vec<&str> = tags.iter().map(|(t, _)| *t).collect();
        let kind = component_kind(place);
        if !matches!(node.kind, NodeKind::Map(_)) {
            self.push(
                Diagnostic::error(
                    "type-mismatch",
                    format!(
                        "{} must be a mapping, found {}",
                        place.owner,
                        node.kind_name()
                    ),
                )
                .at(node.span)
                .with_help(format!(
                    "write `type: <one of {}>` and its settings",
                    names.join(", ")
                )),
            );
            return;
        }
        let Some((type_key, type_value)) = node.entry("type") else {
            // A component named like a setting (`event_time`, `schema`…) is usually a setting
            // that lost its indentation and left the component above it.
            let name = place.path.rsplit('.').next().unwrap_or_default();
            let is_setting = tags.iter().any(|(_, branch)| {
                branch
                    .get("properties")
                    .and_then(Value::as_object)
                    .is_some_and(|p| p.contains_key(name) && name != "type")
            });
            let help = if is_setting {
                format!(
                    "`{name}` is a setting of a {kind}: indent it under the {kind} above to make it part of it"
                )
            } else {
                format!("add `type:` with one of {}", list_names(&names))
            };
            self.push(
                Diagnostic::error("missing-key", format!("{} needs a `type`", place.owner))
                    .at(place.key_span.unwrap_or(node.span))
                    .with_help(help),
            );
            return;
        };
        let _ = type_key;
        let tag = type_value.as_str().unwrap_or_default().to_string();
        let type_span = type_value.span;
        match tags.iter().find(|(t, _)| *t == tag) {
            Some((_, branch)) => {
                let owner = if kind.is_empty() {
                    place.owner.clone()
                } else {
                    format!("{tag} {}", place.owner)
                };
                let tagged_place = Place {
                    owner,
                    ..place.clone()
                };
                let others: Vec<(&str, &'s Value)> =
                    tags.iter().filter(|(t, _)| *t != tag).copied().collect();
                self.check_object(node, branch, &tagged_place, &others);
            }
            None => {
                let what = if kind.is_empty() {
                    "type".to_string()
                } else {
                    format!("{kind} type")
                };
                let help = did_you_mean(&tag, names.iter().copied())
                    .unwrap_or_else(|| format!("use one of {}", list_names(&names)));
                self.push(
                    Diagnostic::error(
                        "unknown-type",
                        format!(
                            "unknown {what} `{tag}` in {}; expected one of {}",
                            place.owner,
                            list_names(&names)
                        ),
                    )
                    .at(type_span)
                    .with_help(help),
                );
            }
        }
    }

    /// Checks a mapping against an object schema. `variants` are the other branches of a
    /// tagged enum this object is one branch of (for "that key belongs to `type: x`" hints).
    fn check_object(
        &mut self,
        node: &mut Node,
        schema: &'s Value,
        place: &Place,
        variants: &[(&str, &'s Value)],
    ) {
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let node_span = node.span;
        let NodeKind::Map(entries) = &mut node.kind else {
            return;
        };
        // Where a missing key is reported: the key naming this object, or (at the top level)
        // the first key of the file.
        let missing_at = place
            .key_span
            .or(entries.first().map(|(k, _)| k.span))
            .unwrap_or(node_span);
        // Typos of required keys: reported once, as the unknown key with its suggestion.
        let mut suggested: Vec<String> = Vec::new();
        for (key, value) in entries.iter_mut() {
            let Some(key_text) = key.as_str().map(str::to_string) else {
                self.push(Diagnostic::error("bad-key", "keys must be plain names").at(key.span));
                continue;
            };
            set_resolved(key, Resolved::String);
            let child = place.child(&key_text, key.span);
            if let Some(prop) = properties.and_then(|p| p.get(&key_text)) {
                self.check(value, prop, &child);
            } else if let Some(extra) = additional.filter(|a| a.is_object()) {
                self.check(value, extra, &child);
            } else if additional == Some(&Value::Bool(false)) || properties.is_some() {
                let known: Vec<&str> = properties
                    .map(|p| {
                        p.keys()
                            .map(String::as_str)
                            .filter(|k| *k != "type")
                            .collect()
                    })
                    .unwrap_or_default();
                let suggestion = closest(&key_text, known.iter().copied()).or_else(|| {
                    SYNONYMS
                        .iter()
                        .find(|(other, _)| key_text.eq_ignore_ascii_case(other))
                        .and_then(|(_, meant)| known.iter().copied().find(|k| k == meant))
                });
                // A key of another `type:` (e.g. `slide` on a tumbling window).
                let owners: Vec<&str> = variants
                    .iter()
                    .filter(|(_, branch)| {
                        branch
                            .get("properties")
                            .and_then(|p| p.get(&key_text))
                            .is_some()
                    })
                    .map(|(tag, _)| *tag)
                    .collect();
                let help = match suggestion {
                    Some(s) if required.contains(&s) => {
                        format!("did you mean `{s}`? (`{s}` is required)")
                    }
                    Some(s) => format!("did you mean `{s}`?"),
                    None if key_text == "inputs" && component_kind(place) == "source" => {
                        "sources read from outside the pipeline; only transforms and sinks have `inputs`"
                            .to_string()
                    }
                    None if !owners.is_empty() => format!(
                        "`{key_text}` only applies to `type: {}`; known keys here: {}",
                        owners.join("` or `type: "),
                        list_names(&known)
                    ),
                    None => format!("known keys here: {}", list_names(&known)),
                };
                suggested.extend(suggestion.map(str::to_string));
                self.push(
                    Diagnostic::error(
                        "unknown-key",
                        format!("unknown key `{key_text}` in {}", place.owner),
                    )
                    .at(key.span)
                    .with_help(help),
                );
            }
        }
        for name in required {
            if !entries.iter().any(|(k, _)| k.as_str() == Some(name))
                && !suggested.iter().any(|s| s == name)
            {
                let description = properties
                    .and_then(|p| p.get(name))
                    .and_then(|p| self.resolve(p).get("description").or(p.get("description")))
                    .and_then(Value::as_str)
                    .map(first_sentence);
                self.push(
                    Diagnostic::error(
                        "missing-key",
                        format!("{} is missing required key `{name}`", place.owner),
                    )
                    .at(missing_at)
                    .with_help_opt(description.map(|d| format!("`{name}`: {d}"))),
                );
            }
        }
    }

    fn check_scalar(&mut self, node: &mut Node, schema: &Value, types: &[&str], place: &Place) {
        let expected = expected_name(types);
        let Some(scalar) = node.as_scalar() else {
            self.push(
                Diagnostic::error(
                    "type-mismatch",
                    format!(
                        "{} must be {expected}, found {}",
                        describe_value(place),
                        node.kind_name()
                    ),
                )
                .at(node.span)
                .with_help_opt(shape_help(node, types)),
            );
            return;
        };
        if scalar.unresolved {
            // `${VAR}` failed and was reported; its text says nothing about the value.
            return;
        }
        let text = scalar.value.clone();
        let plain_null = scalar.plain && is_null_text(&text);
        // A value left empty (`path:`) has no text of its own to point at: point at its key.
        let span = if plain_null && text.is_empty() {
            place.key_span.unwrap_or(node.span)
        } else {
            node.span
        };
        let resolved = if types.contains(&"integer") && text.trim().parse::<i64>().is_ok() {
            Some(Resolved::Int)
        } else if types.contains(&"number") && text.trim().parse::<f64>().is_ok() {
            Some(Resolved::Float)
        } else if types.contains(&"boolean") && matches!(text.as_str(), "true" | "false") {
            Some(Resolved::Bool)
        } else if types.contains(&"string") && !plain_null {
            Some(Resolved::String)
        } else {
            None
        };
        let Some(resolved) = resolved else {
            // The value itself (unless it came from the environment, which may hold secrets).
            let found = if plain_null {
                "nothing".to_string()
            } else {
                format!("{} {}", node.kind_name(), node.describe())
            };
            let help = if types.contains(&"array") {
                Some(if scalar.interpolated || plain_null {
                    "write a list: `[a, b]` or one `- item` per line".to_string()
                } else {
                    format!("write a list: `[{}]`", text.trim())
                })
            } else if plain_null && text.is_empty() {
                let key = place.path.rsplit('.').next().unwrap_or_default();
                Some(format!("write a value after `{key}:`"))
            } else if types.contains(&"boolean") {
                Some("write `true` or `false`".to_string())
            } else if types.contains(&"integer") && text.contains('.') {
                Some("this must be a whole number".to_string())
            } else if types.contains(&"integer") {
                let digits: String = text.chars().filter(char::is_ascii_digit).collect();
                Some(if digits.is_empty() || scalar.interpolated {
                    "write a whole number, e.g. `1`".to_string()
                } else {
                    format!("write the number alone: `{digits}`")
                })
            } else {
                None
            };
            self.push(
                Diagnostic::error(
                    "type-mismatch",
                    format!(
                        "{} must be {expected}, found {found}",
                        describe_value(place)
                    ),
                )
                .at(span)
                .with_help_opt(help),
            );
            return;
        };
        set_resolved(node, resolved);
        if resolved == Resolved::Int {
            let value: i64 = text.trim().parse().unwrap_or_default();
            if let Some(min) = schema.get("minimum").and_then(Value::as_i64)
                && value < min
            {
                self.push(
                    Diagnostic::error(
                        "out-of-range",
                        format!(
                            "{} must be at least {min}, found {value}",
                            describe_value(place)
                        ),
                    )
                    .at(node.span),
                );
            }
            if let Some(format) = schema.get("format").and_then(Value::as_str)
                && let Some(max) = integer_format_max(format)
                && value > max
            {
                self.push(
                    Diagnostic::error(
                        "out-of-range",
                        format!(
                            "{} must be at most {max}, found {value}",
                            describe_value(place)
                        ),
                    )
                    .at(node.span),
                );
            }
        }
        if resolved == Resolved::String {
            let chars = text.chars().count() as u64;
            let min = schema.get("minLength").and_then(Value::as_u64);
            let max = schema.get("maxLength").and_then(Value::as_u64);
            if (min == Some(1) && max == Some(1)) && chars != 1 {
                self.push(
                    Diagnostic::error(
                        "type-mismatch",
                        format!(
                            "{} must be a single character, found {}",
                            describe_value(place),
                            node.describe()
                        ),
                    )
                    .at(node.span)
                    .with_help("for a tab, write \"\\t\" in double quotes"),
                );
            }
            if let Some(format) = schema.get("format").and_then(Value::as_str)
                && let Err(problem) = check_format(format, &text)
            {
                let code = match format {
                    "duration" => "bad-duration",
                    "byte-size" => "bad-size",
                    "field-type" => "unknown-field-type",
                    "timestamp" => "bad-timestamp",
                    _ => "bad-value",
                };
                let problem = if node.as_scalar().is_some_and(|s| s.interpolated) {
                    format!("{} is not a valid {format}", node.describe())
                } else {
                    problem
                };
                // A number without a unit: show what each unit would make of it, since the
                // intended one is a guess (`size: 900000` is 15 minutes in milliseconds).
                let readings = (format == "duration"
                    && !node.as_scalar().is_some_and(|s| s.interpolated))
                .then(|| crate::config::Duration::unit_readings(&text))
                .flatten();
                let problem = match &readings {
                    Some(_) => format!("`{}` needs a unit (ms, s, m, h or d)", text.trim()),
                    None => problem,
                };
                if let Some(readings) = readings {
                    self.push(
                        Diagnostic::error(code, format!("{}: {problem}", describe_value(place)))
                            .at(node.span)
                            .with_help(readings),
                    );
                    return;
                }
                let help = match format {
                    "duration" => Some("durations look like `250ms`, `5s`, `15m`, `1h30m` or `1d`"),
                    "byte-size" => Some("sizes look like `4096`, `512KiB`, `128MiB` or `1GB`"),
                    "timestamp" => Some("write an RFC 3339 instant, e.g. `2019-01-07T00:00:00Z`"),
                    _ => None,
                }
                // Only when the problem does not already say what to write.
                .filter(|_| !problem.contains("e.g.") && !problem.contains("; use "));
                self.push(
                    Diagnostic::error(code, format!("{}: {problem}", describe_value(place)))
                        .at(node.span)
                        .with_help_opt(help.map(str::to_string)),
                );
            }
        }
    }

    fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }
}

/// Names people bring from other tools, and the key they mean here (suggested only where that
/// key exists).
const SYNONYMS: &[(&str, &str)] = &[
    ("separator", "delimiter"),
    ("sep", "delimiter"),
    ("max_size", "max_bytes"),
    ("max_file_size", "max_bytes"),
    ("size", "max_bytes"),
    ("from", "inputs"),
    ("source", "inputs"),
    ("sources", "inputs"),
    ("condition", "where"),
    ("filter", "where"),
    ("predicate", "where"),
    ("columns", "fields"),
    ("select", "fields"),
    ("bootstrap_servers", "brokers"),
    ("bootstrap.servers", "brokers"),
    ("servers", "brokers"),
    ("bucket", "url"),
    ("prefix", "url"),
    ("location", "url"),
    ("file", "path"),
    ("filename", "path"),
    ("key_by", "group_by"),
    ("partition_by", "group_by"),
    ("keys", "group_by"),
    ("watermark", "max_out_of_orderness"),
    ("time_field", "field"),
    ("timestamp_field", "field"),
    ("column", "field"),
    ("encoding", "format"),
    ("codec", "format"),
    ("consumer_group", "group_id"),
    ("group", "group_id"),
    ("offset", "start_from"),
    ("auto_offset_reset", "start_from"),
    ("aggregations", "aggregates"),
    ("aggs", "aggregates"),
    ("metrics", "aggregates"),
    ("late_events", "late"),
    ("dead_letter", "bad_records"),
    ("errors", "bad_records"),
];

fn schema_types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => {
            if schema.get("const").is_some() {
                vec!["string"]
            } else {
                Vec::new()
            }
        }
    }
}

fn expected_name(types: &[&str]) -> String {
    let names: Vec<&str> = types
        .iter()
        .filter(|t| **t != "null")
        .map(|t| match *t {
            "string" => "text",
            "integer" => "a whole number",
            "number" => "a number",
            "boolean" => "`true` or `false`",
            "array" => "a list",
            "object" => "a mapping",
            other => other,
        })
        .collect();
    names.join(" or ")
}

fn integer_format_max(format: &str) -> Option<i64> {
    match format {
        "uint8" => Some(u8::MAX as i64),
        "uint16" => Some(u16::MAX as i64),
        "uint32" => Some(u32::MAX as i64),
        "int32" => Some(i32::MAX as i64),
        _ => None,
    }
}

/// Help for a list/mapping written where the other shape (or a scalar) was expected.
fn shape_help(node: &Node, types: &[&str]) -> Option<String> {
    match (&node.kind, types.contains(&"array")) {
        (NodeKind::Map(_), true) => {
            Some("write a list: `[a, b]` or one `- item` per line".to_string())
        }
        (NodeKind::Seq(_), false) if types.contains(&"string") => {
            Some("this takes a single value, not a list".to_string())
        }
        (NodeKind::Seq(_), false) if types.contains(&"object") => {
            Some("write one `name: value` per line, without the `- `".to_string())
        }
        _ => None,
    }
}

/// "`event_time.field` of source `x`" style name for the value at `place`.
fn describe_value(place: &Place) -> String {
    if place.path.is_empty() {
        "the pipeline".to_string()
    } else {
        format!("`{}`", place.path)
    }
}

/// The kind of component a place names ("source", "transform", "sink"), or "" elsewhere.
fn component_kind(place: &Place) -> &'static str {
    let mut parts = place.path.split('.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("sources"), Some(_), None) => "source",
        (Some("transforms"), Some(_), None) => "transform",
        (Some("sinks"), Some(_), None) => "sink",
        _ => "",
    }
}

/// The first sentence of a description (not cut at an abbreviation such as `e.g.`).
fn first_sentence(text: &str) -> String {
    let mut from = 0;
    while let Some(i) = text[from..].find(". ").map(|i| from + i) {
        let before = &text[..i + 1];
        if !(before.ends_with("e.g.") || before.ends_with("i.e.")) {
            return before.to_string();
        }
        from = i + 2;
    }
    text.to_string()
}

fn set_resolved(node: &mut Node, resolved: Resolved) {
    if let NodeKind::Scalar(s) = &mut node.kind {
        s.resolved = Some(resolved);
    }
}
