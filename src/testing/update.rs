//! `--update`: rewrites a test's expected outputs (and counts) from what its run wrote, in
//! the file's own text. Only the values under each sink's key change; comments and layout
//! elsewhere stay, rows that still match keep their text (and their trailing comments), and a
//! changed row keeps the fields it listed. Also renders whole tests for `--create-from`.

use super::check::{ExpectedRow, Prepared};
use super::compare::{Fate, actual_rows, pair_rows};
use super::runner::{Outcome, SinkCapture};
use super::spec::{ObjectExpect, Shape, SinkExpect, TestCase};
use super::values::{yaml_key, yaml_string, yaml_value};
use crate::data::{Field, Value};
use crate::diag::Span;
use crate::plan::{NodeKind, Plan};

/// A replacement of `span` of the file's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub span: Span,
    pub text: String,
}

/// Applies non-overlapping edits.
pub fn apply(text: &str, mut edits: Vec<Edit>) -> String {
    edits.sort_by_key(|e| e.span.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for e in edits {
        if e.span.start < at {
            continue;
        }
        out.push_str(&text[at..e.span.start]);
        out.push_str(&e.text);
        at = e.span.end;
    }
    out.push_str(&text[at..]);
    out
}

fn line_start(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1)
}

fn line_end(text: &str, offset: usize) -> usize {
    text[offset.min(text.len())..]
        .find('\n')
        .map_or(text.len(), |i| offset + i)
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// Where the block under the key at `key_start` ends: after the last line indented deeper
/// than the key (comments and blank lines at its end stay outside, unless `literal`, when
/// every deeper line is text).
fn block_end(text: &str, key_start: usize, literal: bool) -> usize {
    let key_indent = key_start - line_start(text, key_start);
    let mut at = line_end(text, key_start);
    let mut end = at;
    while at < text.len() {
        let next = at + 1;
        let stop = line_end(text, next);
        let line = &text[next..stop];
        let content = line.trim();
        if content.is_empty() || (!literal && content.starts_with('#')) {
            at = stop;
            continue;
        }
        if indent_of(line) <= key_indent {
            break;
        }
        end = stop;
        at = stop;
    }
    end
}

/// A value written back under a key.
enum ValueText {
    /// On the key's line: `[]`.
    Inline(String),
    /// Lines below the key, indented relative to it.
    Block(Vec<String>),
}

/// The edit replacing the value of the key at `key_span` with `value`.
fn replace_value(text: &str, key_span: Span, value: &ValueText) -> Edit {
    let key_line = line_start(text, key_span.start);
    let key_indent = key_span.start - key_line;
    let colon = text[key_span.end..]
        .find(':')
        .map_or(key_span.end, |i| key_span.end + i);
    let rest_end = line_end(text, colon);
    let rest = text[colon + 1..rest_end].trim();
    let literal = rest.starts_with('|') || rest.starts_with('>');
    let end = block_end(text, key_span.start, literal);
    // Keep a comment after the key (`hourly:   # why`) when the value was on the lines below.
    let keep_key_line = rest.is_empty() || rest.starts_with('#');
    // A block keeps the indentation it had; a new one goes two deeper than its key.
    let old_indent = (end > rest_end)
        .then(|| {
            text[rest_end + 1..end]
                .lines()
                .find(|l| !l.trim().is_empty() && !l.trim().starts_with('#'))
                .map(indent_of)
        })
        .flatten()
        .filter(|i| *i > key_indent || text[rest_end + 1..].trim_start().starts_with('-'));
    let indent = old_indent.unwrap_or(key_indent + 2);
    match value {
        ValueText::Inline(v) => Edit {
            span: Span::new(colon + 1, end),
            text: format!(" {v}"),
        },
        ValueText::Block(lines) => {
            let block: String = lines
                .iter()
                .map(|l| {
                    if l.is_empty() {
                        "\n".to_string()
                    } else {
                        format!("\n{}{l}", " ".repeat(indent))
                    }
                })
                .collect();
            if keep_key_line {
                Edit {
                    span: Span::new(rest_end, end),
                    text: block,
                }
            } else {
                Edit {
                    span: Span::new(colon + 1, end),
                    text: block,
                }
            }
        }
    }
}

/// A block scalar holding `content` exactly: `|` (`|-` without a final line break, `|+`
/// with several), or a quoted string when a block cannot hold it.
fn literal(key: &str, content: &str) -> Vec<String> {
    let printable = content
        .chars()
        .all(|c| c == '\n' || c == '\t' || !c.is_control());
    if content.is_empty() || !printable || content.starts_with(['\n', ' ']) {
        return vec![format!(
            "{key}: {}",
            serde_json::to_string(content).unwrap_or_default()
        )];
    }
    let body = content.trim_end_matches('\n');
    let chomp = match content.len() - body.len() {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let mut lines = vec![format!("{key}: |{chomp}")];
    let mut rest: Vec<&str> = content.split('\n').collect();
    if content.ends_with('\n') {
        rest.pop();
    }
    lines.extend(rest.iter().map(|l| {
        if l.is_empty() {
            String::new()
        } else {
            format!("  {l}")
        }
    }));
    lines
}

fn indented(lines: Vec<String>, by: usize) -> Vec<String> {
    lines
        .into_iter()
        .map(|l| {
            if l.is_empty() {
                l
            } else {
                format!("{}{l}", " ".repeat(by))
            }
        })
        .collect()
}

/// The text of a single-line `- {…}` item as written, with its trailing comment and the
/// comment lines just above it, when the row was written that way.
fn original_item(text: &str, row: &ExpectedRow) -> Option<Vec<String>> {
    let start = line_start(text, row.span.start);
    let end = line_end(text, row.span.start);
    if row.span.end > end {
        return None;
    }
    let line = text[start..end].trim();
    if !line.starts_with("- ") {
        return None;
    }
    let mut lines = vec![line.to_string()];
    let mut at = start;
    while at > 0 {
        let above = line_start(text, at - 1);
        let content = text[above..at - 1].trim();
        if !content.starts_with('#') {
            break;
        }
        lines.insert(0, content.to_string());
        at = above;
    }
    Some(lines)
}

/// A changed row written as before with only its differing values replaced, when it was
/// written on one line.
fn changed_item(
    text: &str,
    fields: &[Field],
    expected: &ExpectedRow,
    actual: &super::compare::ActualRow,
) -> Option<Vec<String>> {
    let mut lines = original_item(text, expected)?;
    let line_at = line_start(text, expected.span.start);
    let entries = expected.node.as_map()?;
    let mut edits = Vec::new();
    for (key, value) in entries {
        let name = key.as_str()?;
        let i = fields.iter().position(|f| f.name == name)?;
        let (_, want) = expected.values.iter().find(|(j, _)| *j == i)?;
        if !super::values::same(&actual.values[i], want) {
            edits.push(Edit {
                span: Span::new(value.span.start - line_at, value.span.end - line_at),
                text: yaml_value(&actual.values[i], &fields[i]),
            });
        }
    }
    let original = &text[line_at..line_end(text, line_at)];
    let changed = apply(original, edits);
    *lines.last_mut()? = changed.trim().to_string();
    Some(lines)
}

fn new_item(fields: &[Field], values: &[(usize, &Value<'_>)]) -> String {
    format!("- {}", super::compare::row_text(fields, values))
}

/// The rows to write for `actual`, reusing `expected` where it still holds.
#[allow(clippy::too_many_arguments)]
fn rows_text(
    text: &str,
    fields: &[Field],
    identifying: &[usize],
    expected: &[ExpectedRow],
    actual: &[&super::compare::ActualRow],
    ordered: bool,
) -> Vec<String> {
    let (fates, left) = pair_rows(identifying, expected, actual, ordered);
    let mut lines: Vec<Vec<String>> = Vec::new();
    for (e, fate) in expected.iter().zip(&fates) {
        match fate {
            Fate::Matched(_) => {
                lines.push(original_item(text, e).unwrap_or_else(|| {
                    let values: Vec<(usize, &Value<'_>)> =
                        e.values.iter().map(|(i, v)| (*i, v)).collect();
                    vec![new_item(fields, &values)]
                }));
            }
            Fate::Changed(a) => {
                let row = actual[*a];
                lines.push(changed_item(text, fields, e, row).unwrap_or_else(|| {
                    let values: Vec<(usize, &Value<'_>)> = e
                        .values
                        .iter()
                        .map(|(i, _)| (*i, &row.values[*i]))
                        .collect();
                    vec![new_item(fields, &values)]
                }));
            }
            Fate::Missing => {}
        }
    }
    if ordered {
        // In order: rebuild from the actual rows, keeping the lines written above in place.
        let mut by_actual: Vec<Option<Vec<String>>> = vec![None; actual.len()];
        let mut k = 0;
        for fate in &fates {
            if let Fate::Matched(a) | Fate::Changed(a) = fate {
                by_actual[*a] = lines.get(k).cloned();
                k += 1;
            }
        }
        return actual
            .iter()
            .enumerate()
            .flat_map(|(a, row)| {
                by_actual[a].clone().unwrap_or_else(|| {
                    let values: Vec<(usize, &Value<'_>)> = row.values.iter().enumerate().collect();
                    vec![new_item(fields, &values)]
                })
            })
            .collect();
    }
    for a in left {
        let values: Vec<(usize, &Value<'_>)> = actual[a].values.iter().enumerate().collect();
        lines.push(vec![new_item(fields, &values)]);
    }
    lines.into_iter().flatten().collect()
}

/// How to write one sink's expectation again.
struct SinkText<'a> {
    text: &'a str,
    fields: &'a [Field],
    identifying: Vec<usize>,
    rows: Vec<super::compare::ActualRow>,
    capture: &'a SinkCapture,
}

impl SinkText<'_> {
    fn rows(&self, expected: &[ExpectedRow], object: Option<&str>, ordered: bool) -> Vec<String> {
        let actual: Vec<&super::compare::ActualRow> = self
            .rows
            .iter()
            .filter(|r| object.is_none_or(|o| r.object.as_deref() == Some(o)))
            .collect();
        rows_text(
            self.text,
            self.fields,
            &self.identifying,
            expected,
            &actual,
            ordered,
        )
    }

    fn content(&self, object: Option<&str>) -> String {
        match object {
            None => String::from_utf8_lossy(&self.capture.text).to_string(),
            Some(key) => self
                .capture
                .objects
                .iter()
                .filter(|(name, _)| super::compare::object_dir(name) == key)
                .map(|(_, b)| String::from_utf8_lossy(b).to_string())
                .collect(),
        }
    }

    fn object_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.rows.iter().filter_map(|r| r.object.clone()).collect();
        keys.extend(
            self.capture
                .objects
                .keys()
                .map(|k| super::compare::object_dir(k)),
        );
        keys.sort();
        keys.dedup();
        keys
    }
}

fn rows_value(lines: Vec<String>) -> ValueText {
    if lines.is_empty() {
        ValueText::Inline("[]".to_string())
    } else {
        ValueText::Block(lines)
    }
}

fn keyed_rows(key: &str, lines: Vec<String>) -> Vec<String> {
    if lines.is_empty() {
        vec![format!("{key}: []")]
    } else {
        let mut out = vec![format!("{key}:")];
        out.extend(indented(lines, 2));
        out
    }
}

fn sink_value(
    s: &SinkText<'_>,
    expect: &SinkExpect,
    checked_rows: Option<&[ExpectedRow]>,
    checked_objects: &[(String, Option<&[ExpectedRow]>)],
) -> ValueText {
    if expect.shape == Shape::Rows {
        return rows_value(s.rows(checked_rows.unwrap_or_default(), None, expect.ordered));
    }
    let mut lines = Vec::new();
    if expect.rows.is_some() {
        lines.extend(keyed_rows(
            "rows",
            s.rows(checked_rows.unwrap_or_default(), None, expect.ordered),
        ));
    }
    if expect.ordered {
        lines.push("ordered: true".to_string());
    }
    if let Some(objects) = &expect.objects {
        // Objects keep how they were written; new ones follow the others (rows by default).
        let use_content = !objects.is_empty()
            && objects
                .iter()
                .all(|o| o.content.is_some() && o.rows.is_none());
        lines.push("objects:".to_string());
        for key in s.object_keys() {
            let old: Option<&ObjectExpect> = objects.iter().find(|o| o.key == key);
            let expected_rows = checked_objects
                .iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, r)| *r)
                .unwrap_or_default();
            let (want_rows, want_content, shape) = match old {
                Some(o) => (o.rows.is_some(), o.content.is_some(), o.shape),
                None if use_content => (false, true, Shape::Detailed),
                None => (true, false, Shape::Rows),
            };
            let yaml_k = yaml_string(&key);
            let rows = s.rows(expected_rows, Some(&key), expect.ordered);
            let mut object = Vec::new();
            if shape == Shape::Rows {
                object.extend(keyed_rows(&yaml_k, rows));
            } else {
                object.push(format!("{yaml_k}:"));
                if want_rows {
                    object.extend(indented(keyed_rows("rows", rows), 2));
                }
                if want_content {
                    object.extend(indented(literal("content", &s.content(Some(&key))), 2));
                }
            }
            lines.extend(indented(object, 2));
        }
        if s.object_keys().is_empty() {
            lines.pop();
            lines.push("objects: {}".to_string());
        }
    }
    if expect.content.is_some() {
        lines.extend(literal("content", &s.content(None)));
    }
    ValueText::Block(lines)
}

/// The edits that make `case`'s expectations say what `outcome` wrote. A test without
/// `outputs` (or with `outputs: {}`) gets one listing every sink.
pub fn edits(
    text: &str,
    case: &TestCase,
    plan: &Plan,
    prepared: &Prepared,
    outcome: &Outcome,
) -> Vec<Edit> {
    let mut edits = Vec::new();
    let empty = SinkCapture::default();
    let sink_text = |node: usize| -> Option<SinkText<'_>> {
        let NodeKind::Sink(sink) = &plan.nodes[node].kind else {
            return None;
        };
        let capture = outcome.captures.get(&node).unwrap_or(&empty);
        Some(SinkText {
            text,
            fields: &sink.projection.fields,
            identifying: super::compare::identity(plan, node, sink).written,
            rows: actual_rows(plan, node, capture),
            capture,
        })
    };
    match &case.outputs {
        Some(outputs) if outputs.sinks.is_empty() => {
            let indent = outputs.key_span.start - line_start(text, outputs.key_span.start);
            // The empty mapping's span may stop inside `{}`: replace through its `}`.
            let value = &text[outputs.node.span.start..];
            let end = match value.strip_prefix('{').and_then(|_| value.find('}')) {
                Some(close) => outputs.node.span.start + close + 1,
                None => outputs.node.span.end,
            };
            edits.push(Edit {
                span: Span::new(outputs.key_span.start, end),
                text: all_outputs(plan, outcome).join(&format!("\n{}", " ".repeat(indent))),
            });
        }
        Some(outputs) => {
            for expect in &outputs.sinks {
                let Some(check) = prepared.sinks.iter().find(|c| c.name == expect.sink) else {
                    continue;
                };
                let Some(s) = sink_text(check.node) else {
                    continue;
                };
                let objects: Vec<(String, Option<&[ExpectedRow]>)> = check
                    .objects
                    .iter()
                    .flatten()
                    .map(|o| (o.key.clone(), o.rows.as_deref()))
                    .collect();
                let value = sink_value(&s, expect, check.rows.as_deref(), &objects);
                edits.push(replace_value(text, expect.key_span, &value));
            }
        }
        None => {
            let lines = all_outputs(plan, outcome);
            let test_end = block_end_of_mapping(text, &case.node);
            let key_indent = case
                .node
                .as_map()
                .and_then(|m| m.first())
                .map_or(4, |(k, _)| k.span.start - line_start(text, k.span.start));
            let block: String = lines
                .iter()
                .map(|l| format!("\n{}{l}", " ".repeat(key_indent)))
                .collect();
            edits.push(Edit {
                span: Span::new(test_end, test_end),
                text: block,
            });
        }
    }
    if let Some(counts) = &case.counts {
        for late in &counts.late_events {
            let n = outcome
                .late_events
                .iter()
                .find(|(s, _)| *s == late.stage)
                .map_or(0, |(_, n)| *n);
            edits.push(Edit {
                span: late.count_span,
                text: n.to_string(),
            });
        }
        if let Some((_, span)) = counts.bad_records {
            edits.push(Edit {
                span,
                text: outcome.bad_records.to_string(),
            });
        }
    }
    edits
}

/// Where a test's mapping ends (after its last line).
fn block_end_of_mapping(text: &str, node: &crate::config::yaml::Node) -> usize {
    let Some((key, _)) = node.as_map().and_then(|m| m.last()) else {
        return line_end(text, node.span.end);
    };
    let key_line_end = line_end(text, key.span.start);
    block_end(text, key.span.start, false).max(key_line_end)
}

/// `outputs:` listing every sink's rows (objects by path for `s3` sinks with a path).
pub fn all_outputs(plan: &Plan, outcome: &Outcome) -> Vec<String> {
    let empty = SinkCapture::default();
    let mut lines = vec!["outputs:".to_string()];
    for (node, n) in plan.nodes.iter().enumerate() {
        let NodeKind::Sink(sink) = &n.kind else {
            continue;
        };
        let capture = outcome.captures.get(&node).unwrap_or(&empty);
        let rows = actual_rows(plan, node, capture);
        let fields = &sink.projection.fields;
        let item = |r: &super::compare::ActualRow| {
            let values: Vec<(usize, &Value<'_>)> = r.values.iter().enumerate().collect();
            new_item(fields, &values)
        };
        let bucketed = sink.path.as_ref().is_some_and(|p| !p.is_static());
        let mut sink_lines = Vec::new();
        if bucketed && !rows.is_empty() {
            sink_lines.push(format!("{}:", yaml_key(&n.name)));
            sink_lines.push("  objects:".to_string());
            let mut keys: Vec<String> = rows.iter().filter_map(|r| r.object.clone()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let items: Vec<String> = rows
                    .iter()
                    .filter(|r| r.object.as_deref() == Some(key.as_str()))
                    .map(item)
                    .collect();
                sink_lines.extend(indented(keyed_rows(&yaml_string(&key), items), 4));
            }
        } else {
            let items: Vec<String> = rows.iter().map(item).collect();
            sink_lines.extend(keyed_rows(&yaml_key(&n.name), items));
        }
        lines.extend(indented(sink_lines, 2));
    }
    lines
}

/// A record as a YAML flow mapping of the fields that are not NULL.
pub fn record_text(fields: &[Field], values: &[Value<'_>]) -> String {
    let parts: Vec<String> = fields
        .iter()
        .zip(values)
        .filter(|(_, v)| !v.is_null())
        .map(|(f, v)| format!("{}: {}", yaml_key(&f.name), yaml_value(v, f)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_value_is_replaced_and_the_comment_after_its_key_stays() {
        let text = "outputs:\n  s:   # why\n    - {a: 1}\n    # between\n    - {a: 2}\n  # next\n  t: []\n";
        let key = text.find("\n  s:").unwrap() + 3;
        let edit = replace_value(
            text,
            Span::new(key, key + 1),
            &ValueText::Block(vec!["- {a: 3}".to_string()]),
        );
        assert_eq!(
            apply(text, vec![edit]),
            "outputs:\n  s:   # why\n    - {a: 3}\n  # next\n  t: []\n"
        );
        let key = text.find("\n  t:").unwrap() + 3;
        let edit = replace_value(
            text,
            Span::new(key, key + 1),
            &ValueText::Block(vec!["- {a: 4}".to_string()]),
        );
        assert!(apply(text, vec![edit]).ends_with("  t:\n    - {a: 4}\n"));
    }

    #[test]
    fn literals_keep_the_text_exactly() {
        assert_eq!(
            literal("content", "a\nb\n"),
            vec!["content: |", "  a", "  b"]
        );
        assert_eq!(literal("content", "a"), vec!["content: |-", "  a"]);
        assert_eq!(literal("content", ""), vec!["content: \"\""]);
        for content in ["a\nb\n", "a", "x\n\ny\n", "a\n\n"] {
            let yaml = format!(
                "k:\n{}\n",
                indented(literal("content", content), 2).join("\n")
            );
            let root = crate::config::yaml::parse(&yaml).unwrap();
            assert_eq!(
                root.get("k").unwrap().get("content").unwrap().as_str(),
                Some(content),
                "{yaml}"
            );
        }
    }
}
