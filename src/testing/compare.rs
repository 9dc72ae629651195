//! Expected against actual: rows matched in any order (or in order with `ordered: true`),
//! objects by path, exact text, counters and errors. Every difference becomes a [`Finding`]
//! at the line of the test file it is about, naming the window and key of the rows involved,
//! so a failure says what changed rather than dumping two tables.

use std::collections::{BTreeMap, BTreeSet};

use super::check::{ExpectedRow, ObjectCheck, Prepared, SinkCheck};
use super::runner::{Outcome, SinkCapture};
use super::spec::normalize_object_key;
use super::values::{same, yaml_key, yaml_value};
use crate::data::{Batch, Field, OwnedValue, Schema, Value};
use crate::diag::Span;
use crate::plan::{NodeKind, Plan, SinkPlan};

/// One line of a finding's detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffLine {
    Note(String),
    /// What the test expects.
    Expected(String),
    /// What the run produced.
    Actual(String),
}

/// One difference between a test's expectations and its run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Where in the test file: the expected row or object, the sink, or the test.
    pub span: Span,
    /// The sink it is about, if any.
    pub sink: Option<String>,
    pub headline: String,
    pub lines: Vec<DiffLine>,
}

/// A row a sink wrote, with what identifies it for people.
#[derive(Debug, Clone)]
pub struct ActualRow {
    /// The written fields (the sink's projection).
    pub values: Vec<OwnedValue>,
    /// `window 2019-01-07 00:00–00:15, movieId=m1`: the window and key it belongs to.
    pub context: String,
    /// The object path under the sink's url (`s3` sinks).
    pub object: Option<String>,
}

/// How rows of a sink's input are identified: window columns and group keys, by input
/// column, and which written fields they are.
pub(crate) struct Identity {
    window: Option<(usize, usize, &'static str)>,
    keys: Vec<(String, usize)>,
    position: Option<usize>,
    /// Indexes into the written fields of the identifying ones.
    pub written: Vec<usize>,
}

pub(crate) fn identity(plan: &Plan, sink_node: usize, sink: &SinkPlan) -> Identity {
    let node = &plan.nodes[sink_node];
    let schema: &Schema = match node.inputs.first() {
        Some(r) => &plan.port(*r).schema,
        None => {
            return Identity {
                window: None,
                keys: Vec::new(),
                position: None,
                written: Vec::new(),
            };
        }
    };
    let window = [
        ("window_start", "window_end", "window"),
        ("late_window_start", "late_window_end", "missed window"),
    ]
    .iter()
    .find_map(|(s, e, label)| Some((schema.index_of(s)?, schema.index_of(e)?, *label)));
    // The group keys of the nearest window upstream, where the rows still carry them.
    let mut keys = Vec::new();
    let mut at = node.inputs.first().map(|r| r.node);
    while let Some(i) = at {
        match &plan.nodes[i].kind {
            NodeKind::Window(w) => {
                for (name, _) in &w.aggregates.keys {
                    if let Some(c) = schema.index_of(name) {
                        keys.push((name.clone(), c));
                    }
                }
                break;
            }
            NodeKind::Source(_) | NodeKind::Sink(_) => break,
            _ => at = plan.nodes[i].inputs.first().map(|r| r.node),
        }
    }
    let position = if schema.index_of("raw").is_some() && schema.index_of("component").is_some() {
        schema.index_of("position")
    } else {
        None
    };
    let mut identifying: BTreeSet<usize> = keys.iter().map(|(_, c)| *c).collect();
    if let Some((s, e, _)) = window {
        identifying.extend([s, e]);
    }
    identifying.extend(position);
    let written = sink
        .projection
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| identifying.contains(c))
        .map(|(i, _)| i)
        .collect();
    Identity {
        window,
        keys,
        position,
        written,
    }
}

/// `2019-01-07 00:00–00:15` (seconds and dates only where they differ).
pub fn window_text(start: i64, end: i64) -> String {
    let Some((s, e)) =
        crate::data::time::to_datetime(start).zip(crate::data::time::to_datetime(end))
    else {
        return format!("{start}–{end}");
    };
    let whole_minutes = start.rem_euclid(60_000) == 0 && end.rem_euclid(60_000) == 0;
    let time = if whole_minutes {
        "%H:%M"
    } else {
        "%H:%M:%S%.3f"
    };
    let end_format = if s.date_naive() == e.date_naive() {
        time.to_string()
    } else {
        format!("%Y-%m-%d {time}")
    };
    format!(
        "{}–{}",
        s.format(&format!("%Y-%m-%d {time}")),
        e.format(&end_format)
    )
}

fn context_of(identity: &Identity, batch: &Batch, row: usize, object: Option<&str>) -> String {
    let mut parts = Vec::new();
    if let Some((s, e, label)) = identity.window
        && let (Value::Timestamp(start), Value::Timestamp(end)) =
            (batch.columns[s].value(row), batch.columns[e].value(row))
    {
        parts.push(format!("{label} {}", window_text(start, end)));
    }
    if !identity.keys.is_empty() {
        let keys: Vec<String> = identity
            .keys
            .iter()
            .map(|(name, c)| format!("{name}={}", batch.columns[*c].value(row)))
            .collect();
        parts.push(format!("key {}", keys.join(", ")));
    }
    if let Some(p) = identity.position {
        parts.push(format!("record {}", batch.columns[p].value(row)));
    }
    if let Some(o) = object.filter(|o| !o.is_empty()) {
        parts.push(format!("object {o}"));
    }
    parts.join(", ")
}

/// The rows a sink wrote, in the order it received them.
pub fn actual_rows(plan: &Plan, sink_node: usize, capture: &SinkCapture) -> Vec<ActualRow> {
    let NodeKind::Sink(sink) = &plan.nodes[sink_node].kind else {
        return Vec::new();
    };
    let identity = identity(plan, sink_node, sink);
    let mut rows = Vec::new();
    let mut bucket = String::new();
    for batch in &capture.batches {
        for row in 0..batch.num_rows {
            let object = sink.path.as_ref().map(|template| {
                bucket.clear();
                template.render_into(&batch.columns, row, &mut bucket);
                normalize_object_key(&bucket)
            });
            rows.push(ActualRow {
                values: sink
                    .projection
                    .columns
                    .iter()
                    .map(|&c| batch.columns[c].value(row).into_owned())
                    .collect(),
                context: context_of(&identity, batch, row, object.as_deref()),
                object,
            });
        }
    }
    rows
}

/// A row as a YAML flow mapping, the fields in `order`.
pub fn row_text(fields: &[Field], values: &[(usize, &Value<'_>)]) -> String {
    let parts: Vec<String> = values
        .iter()
        .map(|(i, v)| {
            format!(
                "{}: {}",
                yaml_key(&fields[*i].name),
                yaml_value(v, &fields[*i])
            )
        })
        .collect();
    format!("{{{}}}", parts.join(", "))
}

pub fn actual_text(fields: &[Field], row: &ActualRow) -> String {
    let values: Vec<(usize, &Value<'_>)> = row.values.iter().enumerate().collect();
    row_text(fields, &values)
}

pub fn expected_text(fields: &[Field], row: &ExpectedRow) -> String {
    let values: Vec<(usize, &Value<'_>)> = row.values.iter().map(|(i, v)| (*i, v)).collect();
    row_text(fields, &values)
}

fn matches(expected: &ExpectedRow, actual: &ActualRow) -> bool {
    expected
        .values
        .iter()
        .all(|(i, v)| same(&actual.values[*i], v))
}

/// A maximum matching of expected rows to actual rows they agree with (augmenting paths), so
/// rows that list only some fields never steal the partner another row needs.
pub fn match_rows(expected: &[ExpectedRow], actual: &[&ActualRow]) -> Vec<Option<usize>> {
    let adjacency: Vec<Vec<usize>> = expected
        .iter()
        .map(|e| {
            actual
                .iter()
                .enumerate()
                .filter(|(_, a)| matches(e, a))
                .map(|(j, _)| j)
                .collect()
        })
        .collect();
    let mut owner: Vec<Option<usize>> = vec![None; actual.len()];
    fn augment(
        e: usize,
        adjacency: &[Vec<usize>],
        owner: &mut [Option<usize>],
        seen: &mut [bool],
    ) -> bool {
        for &a in &adjacency[e] {
            if seen[a] {
                continue;
            }
            seen[a] = true;
            if owner[a].is_none_or(|other| augment(other, adjacency, owner, seen)) {
                owner[a] = Some(e);
                return true;
            }
        }
        false
    }
    for e in 0..expected.len() {
        // Rows that agree with exactly one actual row are the common case: try it directly.
        let mut seen = vec![false; actual.len()];
        augment(e, &adjacency, &mut owner, &mut seen);
    }
    let mut matched = vec![None; expected.len()];
    for (a, e) in owner.iter().enumerate() {
        if let Some(e) = e {
            matched[*e] = Some(a);
        }
    }
    matched
}

/// What became of an expected row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// It agrees with this actual row.
    Matched(usize),
    /// No actual row agrees with it, but this one is about the same window and key (or shares
    /// most fields): it changed.
    Changed(usize),
    /// Nothing was written like it.
    Missing,
}

/// Pairs expected rows with actual rows, in any order or in order. Returns each expected
/// row's fate and the actual rows no expected row accounts for.
pub fn pair_rows(
    identifying: &[usize],
    expected: &[ExpectedRow],
    actual: &[&ActualRow],
    ordered: bool,
) -> (Vec<Fate>, Vec<usize>) {
    if ordered {
        let fates = expected
            .iter()
            .enumerate()
            .map(|(k, e)| match actual.get(k) {
                Some(a) if matches(e, a) => Fate::Matched(k),
                Some(_) => Fate::Changed(k),
                None => Fate::Missing,
            })
            .collect();
        return (fates, (expected.len()..actual.len()).collect());
    }
    let matched = match_rows(expected, actual);
    let used: BTreeSet<usize> = matched.iter().flatten().copied().collect();
    let mut left: Vec<usize> = (0..actual.len()).filter(|a| !used.contains(a)).collect();
    let mut fates = Vec::with_capacity(expected.len());
    for (e, m) in expected.iter().zip(&matched) {
        if let Some(a) = m {
            fates.push(Fate::Matched(*a));
            continue;
        }
        // The actual row this one most likely meant: the one of the same window and key with
        // the most fields in common, else the one with the most fields in common (at least
        // half of those listed), so a row that moved to another window shows as moved.
        let ident: Vec<&(usize, OwnedValue)> = e
            .values
            .iter()
            .filter(|(i, _)| identifying.contains(i))
            .collect();
        let score = |a: usize| {
            e.values
                .iter()
                .filter(|(i, v)| same(&actual[a].values[*i], v))
                .count()
        };
        let best = |candidates: &mut dyn Iterator<Item = (usize, usize)>| {
            candidates
                .map(|(k, a)| (k, score(a)))
                .max_by_key(|(k, score)| (*score, std::cmp::Reverse(*k)))
        };
        let same_identity =
            if ident.is_empty() {
                None
            } else {
                best(
                    &mut left.iter().copied().enumerate().filter(|(_, a)| {
                        ident.iter().all(|(i, v)| same(&actual[*a].values[*i], v))
                    }),
                )
            };
        let paired = same_identity.or_else(|| {
            best(&mut left.iter().copied().enumerate())
                .filter(|(_, score)| *score > 0 && score * 2 >= e.values.len())
        });
        fates.push(match paired {
            Some((k, _)) => Fate::Changed(left.remove(k)),
            None => Fate::Missing,
        });
    }
    (fates, left)
}

/// Compares rows and reports each difference at its expected row (or at `fallback_span`
/// for rows nobody expected).
#[allow(clippy::too_many_arguments)]
fn compare_rows(
    fields: &[Field],
    identifying: &[usize],
    expected: &[ExpectedRow],
    actual: &[&ActualRow],
    ordered: bool,
    sink: &str,
    fallback_span: Span,
    out: &mut Vec<Finding>,
) {
    let finding = |span: Span, headline: String, lines: Vec<DiffLine>| Finding {
        span,
        sink: Some(sink.to_string()),
        headline,
        lines,
    };
    let context = |a: &ActualRow| {
        if a.context.is_empty() {
            String::new()
        } else {
            format!(" ({})", a.context)
        }
    };
    let (fates, left) = pair_rows(identifying, expected, actual, ordered);
    for (k, (e, fate)) in expected.iter().zip(&fates).enumerate() {
        let which = if ordered {
            format!("row {}", k + 1)
        } else {
            "row".to_string()
        };
        match fate {
            Fate::Matched(_) => {}
            Fate::Changed(a) => {
                let a = actual[*a];
                let lines = e
                    .values
                    .iter()
                    .filter(|(i, v)| !same(&a.values[*i], v))
                    .map(|(i, v)| {
                        DiffLine::Note(format!(
                            "{}: expected {}, actual {}",
                            fields[*i].name,
                            yaml_value(v, &fields[*i]),
                            yaml_value(&a.values[*i], &fields[*i])
                        ))
                    })
                    .collect();
                out.push(finding(
                    e.span,
                    format!("{which} differs{}", context(a)),
                    lines,
                ));
            }
            Fate::Missing => out.push(finding(
                e.span,
                format!("{which} missing: no row written matches it"),
                vec![DiffLine::Expected(expected_text(fields, e))],
            )),
        }
    }
    for a in left {
        let row = actual[a];
        let which = if ordered {
            format!("unexpected row {}", a + 1)
        } else {
            "unexpected row".to_string()
        };
        out.push(finding(
            fallback_span,
            format!("{which}{}", context(row)),
            vec![DiffLine::Actual(actual_text(fields, row))],
        ));
    }
}

/// A line diff of two texts (longest common subsequence), with a few lines of context.
pub fn text_diff(expected: &str, actual: &str) -> Vec<DiffLine> {
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    if e.len() * a.len() > 4_000_000 {
        let first = e
            .iter()
            .zip(&a)
            .position(|(x, y)| x != y)
            .unwrap_or(e.len().min(a.len()));
        return vec![
            DiffLine::Note(format!("first difference at line {}", first + 1)),
            DiffLine::Expected(e.get(first).copied().unwrap_or("(end)").to_string()),
            DiffLine::Actual(a.get(first).copied().unwrap_or("(end)").to_string()),
        ];
    }
    let mut lcs = vec![vec![0u32; a.len() + 1]; e.len() + 1];
    for i in (0..e.len()).rev() {
        for j in (0..a.len()).rev() {
            lcs[i][j] = if e[i] == a[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < e.len() || j < a.len() {
        if i < e.len() && j < a.len() && e[i] == a[j] {
            ops.push(DiffLine::Note(format!("  {}", e[i])));
            i += 1;
            j += 1;
        } else if i < e.len() && (j == a.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(DiffLine::Expected(e[i].to_string()));
            i += 1;
        } else {
            ops.push(DiffLine::Actual(a[j].to_string()));
            j += 1;
        }
    }
    if expected.ends_with('\n') != actual.ends_with('\n') {
        ops.push(DiffLine::Note(format!(
            "(the expected text {} with a line break, the actual text {})",
            if expected.ends_with('\n') {
                "ends"
            } else {
                "does not end"
            },
            if actual.ends_with('\n') {
                "does"
            } else {
                "does not"
            }
        )));
    }
    // Keep changes with two lines of context around them.
    let changed: Vec<bool> = ops
        .iter()
        .map(|l| !matches!(l, DiffLine::Note(_)))
        .collect();
    let last = ops.len().saturating_sub(1);
    let near = |k: usize| (k.saturating_sub(2)..=(k + 2).min(last)).any(|x| changed[x]);
    let mut out = Vec::new();
    let mut skipped = false;
    for (k, line) in ops.into_iter().enumerate() {
        if near(k) {
            if skipped {
                out.push(DiffLine::Note("  …".to_string()));
                skipped = false;
            }
            out.push(line);
        } else {
            skipped = true;
        }
    }
    out
}

fn content_of(capture: &SinkCapture, object: Option<&str>) -> String {
    match object {
        None => String::from_utf8_lossy(&capture.text).to_string(),
        Some(key) => capture
            .objects
            .iter()
            .filter(|(name, _)| object_dir(name) == key)
            .map(|(_, bytes)| String::from_utf8_lossy(bytes).to_string())
            .collect(),
    }
}

/// The directory of an object key, as expectations name it (`a/b/part-….csv` → `a/b/`).
pub fn object_dir(key: &str) -> String {
    match key.rfind('/') {
        Some(i) => normalize_object_key(&key[..=i]),
        None => String::new(),
    }
}

fn compare_sink(plan: &Plan, check: &SinkCheck, capture: &SinkCapture, out: &mut Vec<Finding>) {
    let NodeKind::Sink(sink) = &plan.nodes[check.node].kind else {
        return;
    };
    let fields = &sink.projection.fields;
    let identifying = identity(plan, check.node, sink).written;
    let rows = actual_rows(plan, check.node, capture);
    if let Some(expected) = &check.rows {
        let all: Vec<&ActualRow> = rows.iter().collect();
        compare_rows(
            fields,
            &identifying,
            expected,
            &all,
            check.ordered,
            &check.name,
            check.span,
            out,
        );
    }
    if let Some((text, span)) = &check.content {
        let actual = content_of(capture, None);
        if *text != actual {
            out.push(Finding {
                span: *span,
                sink: Some(check.name.clone()),
                headline: "the text written differs".to_string(),
                lines: text_diff(text, &actual),
            });
        }
    }
    if let Some(objects) = &check.objects {
        compare_objects(fields, &identifying, check, objects, &rows, capture, out);
    }
}

fn compare_objects(
    fields: &[Field],
    identifying: &[usize],
    check: &SinkCheck,
    objects: &[ObjectCheck],
    rows: &[ActualRow],
    capture: &SinkCapture,
    out: &mut Vec<Finding>,
) {
    let mut by_object: BTreeMap<String, Vec<&ActualRow>> = BTreeMap::new();
    for r in rows {
        by_object
            .entry(r.object.clone().unwrap_or_default())
            .or_default()
            .push(r);
    }
    for name in capture.objects.keys() {
        by_object.entry(object_dir(name)).or_default();
    }
    let written: Vec<String> = by_object.keys().cloned().collect();
    for o in objects {
        let Some(actual) = by_object.get(&o.key) else {
            let mut lines = vec![DiffLine::Note(format!(
                "written: {}",
                if written.is_empty() {
                    "nothing".to_string()
                } else {
                    written.join(", ")
                }
            ))];
            if let Some(rows) = &o.rows {
                lines.extend(
                    rows.iter()
                        .map(|r| DiffLine::Expected(expected_text(fields, r))),
                );
            }
            out.push(Finding {
                span: o.span,
                sink: Some(check.name.clone()),
                headline: format!("object `{}` was not written", o.key),
                lines,
            });
            continue;
        };
        if let Some(expected) = &o.rows {
            compare_rows(
                fields,
                identifying,
                expected,
                actual,
                check.ordered,
                &check.name,
                o.span,
                out,
            );
        }
        if let Some((text, span)) = &o.content {
            let content = content_of(capture, Some(&o.key));
            if *text != content {
                out.push(Finding {
                    span: *span,
                    sink: Some(check.name.clone()),
                    headline: format!("the text of object `{}` differs", o.key),
                    lines: text_diff(text, &content),
                });
            }
        }
    }
    for (key, actual) in &by_object {
        if objects.iter().any(|o| o.key == *key) {
            continue;
        }
        let mut lines: Vec<DiffLine> = actual
            .iter()
            .take(5)
            .map(|a| DiffLine::Actual(actual_text(fields, a)))
            .collect();
        if actual.len() > 5 {
            lines.push(DiffLine::Note(format!(
                "… and {} more rows",
                actual.len() - 5
            )));
        }
        out.push(Finding {
            span: check.span,
            sink: Some(check.name.clone()),
            headline: format!(
                "unexpected object `{key}` ({} row{})",
                actual.len(),
                if actual.len() == 1 { "" } else { "s" }
            ),
            lines,
        });
    }
}

/// Every difference between what `prepared` expects and `outcome`; empty when the test
/// passes. `test_span` is where findings about the whole test point (its name).
pub fn compare(
    plan: &Plan,
    prepared: &Prepared,
    outcome: &Outcome,
    test_span: Span,
) -> Vec<Finding> {
    let mut out = Vec::new();
    match (&prepared.error, &outcome.result) {
        (Some((text, span)), Ok(_)) => {
            out.push(Finding {
                span: *span,
                sink: None,
                headline: format!("expected the run to fail with `{text}`, but it completed"),
                lines: Vec::new(),
            });
            return out;
        }
        (Some((text, span)), Err(e)) => {
            let message = e.to_string();
            if !message.contains(text.as_str()) {
                out.push(Finding {
                    span: *span,
                    sink: None,
                    headline: format!("the run failed, but not with `{text}`"),
                    lines: message
                        .lines()
                        .map(|l| DiffLine::Actual(l.to_string()))
                        .collect(),
                });
            }
            return out;
        }
        (None, Err(e)) => {
            out.push(Finding {
                span: test_span,
                sink: None,
                headline: "the run failed".to_string(),
                lines: e
                    .to_string()
                    .lines()
                    .map(|l| DiffLine::Actual(l.to_string()))
                    .collect(),
            });
            return out;
        }
        (None, Ok(_)) => {}
    }
    let empty = SinkCapture::default();
    for check in &prepared.sinks {
        let capture = outcome.captures.get(&check.node).unwrap_or(&empty);
        compare_sink(plan, check, capture, &mut out);
    }
    if let Some(counts) = &prepared.counts {
        for late in &counts.late_events {
            let (stage, expected) = (&late.stage, late.count);
            let actual = outcome
                .late_events
                .iter()
                .find(|(s, _)| s == stage)
                .map_or(0, |(_, n)| *n);
            if actual != expected {
                out.push(Finding {
                    span: late.count_span,
                    sink: None,
                    headline: format!(
                        "window `{stage}` counted {actual} late events, expected {expected}"
                    ),
                    lines: Vec::new(),
                });
            }
        }
        if let Some((expected, span)) = counts.bad_records
            && outcome.bad_records != expected
        {
            out.push(Finding {
                span,
                sink: None,
                headline: format!(
                    "{} bad records were counted, expected {expected}",
                    outcome.bad_records
                ),
                lines: Vec::new(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(values: &[(usize, i64)]) -> ExpectedRow {
        ExpectedRow {
            span: Span::default(),
            values: values.iter().map(|(i, v)| (*i, Value::Int(*v))).collect(),
            node: crate::config::yaml::parse("{}").unwrap(),
        }
    }

    fn actual(values: &[i64]) -> ActualRow {
        ActualRow {
            values: values.iter().map(|v| Value::Int(*v)).collect(),
            context: String::new(),
            object: None,
        }
    }

    #[test]
    fn a_row_listing_fewer_fields_does_not_steal_the_partner_of_another() {
        // Expected 0 matches both actual rows; expected 1 only the first. Greedy matching in
        // order would give the first to expected 0 and fail expected 1.
        let expected = vec![row(&[(0, 1)]), row(&[(0, 1), (1, 2)])];
        let a = [actual(&[1, 2]), actual(&[1, 3])];
        let refs: Vec<&ActualRow> = a.iter().collect();
        assert_eq!(match_rows(&expected, &refs), vec![Some(1), Some(0)]);
    }

    #[test]
    fn windows_print_compactly() {
        assert_eq!(
            window_text(1_546_819_200_000, 1_546_820_100_000),
            "2019-01-07 00:00–00:15"
        );
        assert_eq!(
            window_text(1_546_905_300_000, 1_546_905_900_000),
            "2019-01-07 23:55–2019-01-08 00:05"
        );
    }

    #[test]
    fn text_diffs_show_changed_lines_with_context() {
        let d = text_diff("a\nb\nc\n", "a\nB\nc\n");
        assert_eq!(
            d,
            vec![
                DiffLine::Note("  a".into()),
                DiffLine::Expected("b".into()),
                DiffLine::Actual("B".into()),
                DiffLine::Note("  c".into()),
            ]
        );
    }
}
