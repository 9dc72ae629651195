//! Window results equal a brute-force oracle on random, out-of-order, multi-partition input:
//! tumbling, sliding and session windows, with late events, allowed lateness (emitting updates
//! with revisions, or final rows once the lateness has passed), idle and finishing partitions,
//! and arbitrary batch boundaries.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use streamctl::data::{Batch, Column, DataType, Field, Schema, Value};
use streamctl::engine::operator::{Emitter, Operator};
use streamctl::engine::watermark::{MAX_WATERMARK, MIN_WATERMARK, WatermarkTracker};
use streamctl::engine::window::{WindowCore, aligned::AlignedWindows, session::SessionWindows};
use streamctl::expr::{compile_aggregates, compile_group_key};
use streamctl::plan::{BadRecords, EmitMode, WindowKind, WindowPlan};
use streamctl::runtime::Metrics;
use streamctl::runtime::state::{StateReader, StateWriter};

const AGGREGATES: &[(&str, &str)] = &[
    ("n", "COUNT(*)"),
    ("nv", "COUNT(v)"),
    ("s", "SUM(v)"),
    ("lo", "MIN(v)"),
    ("hi", "MAX(v)"),
    ("first", "FIRST_VALUE(v)"),
    ("last", "LAST_VALUE(v)"),
    ("distinct", "COUNT(DISTINCT v)"),
    ("spread", "MAX(v) - MIN(v)"),
];

#[derive(Debug, Clone)]
enum Action {
    Event {
        partition: u32,
        t: i64,
        key: u8,
        v: Option<i64>,
    },
    /// The partition goes quiet past its idle timeout.
    Idle(u32),
    /// The partition reaches its end.
    Close(u32),
}

#[derive(Debug, Clone)]
struct Case {
    kind: WindowKind,
    delay: i64,
    lateness: i64,
    /// `emit: final` (else `updates`).
    emit_final: bool,
    /// Before this action, the state is checkpointed and restored into a fresh operator.
    restart_at: Option<usize>,
    partitions: u32,
    actions: Vec<Action>,
    /// Where batches are cut (indexes into `actions`).
    cuts: Vec<bool>,
    /// With COUNT(DISTINCT v) among the aggregates. Without it, sliding windows write a group
    /// found in one pane from that pane's own state instead of a merged copy.
    distinct: bool,
}

/// The place of COUNT(DISTINCT v) among the aggregates' values.
const DISTINCT_COLUMN: usize = 7;

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("k", DataType::String),
        Field::new("v", DataType::Int),
    ])
}

type Row = (i64, i64, String, Vec<Value<'static>>);

/// Runs the engine's window operator over the actions.
fn run_engine(case: &Case) -> (Vec<Row>, Late) {
    let schema = schema();
    let keys = vec![compile_group_key("k", &schema).unwrap()];
    let aggs: Vec<(String, String)> = AGGREGATES
        .iter()
        .enumerate()
        .filter(|&(i, _)| case.distinct || i != DISTINCT_COLUMN)
        .map(|(_, (n, s))| (n.to_string(), s.to_string()))
        .collect();
    let aggregates = compile_aggregates(&schema, keys, &aggs).unwrap();
    let plan = WindowPlan {
        kind: case.kind,
        aggregates,
        key_sql: vec!["k".into()],
        output_sql: aggs.iter().map(|(_, s)| s.clone()).collect(),
        allowed_lateness_ms: case.lateness,
        emit: if case.emit_final {
            EmitMode::Final
        } else {
            EmitMode::Updates
        },
        late_port: Some(1),
        bad_records: BadRecords::default(),
    };
    let metrics = Arc::new(Metrics::new(vec![]));
    let build = || -> Box<dyn Operator> {
        let core = WindowCore::new("w", &plan, Arc::new(schema.clone()), metrics.clone());
        match case.kind {
            WindowKind::Tumbling { size } => Box::new(AlignedWindows::new(core, size, size)),
            WindowKind::Sliding { size, slide } => Box::new(AlignedWindows::new(core, size, slide)),
            WindowKind::Session { gap } => Box::new(SessionWindows::new(core, gap)),
        }
    };
    let mut op = build();
    let mut tracker = WatermarkTracker::new(case.delay, None);
    for p in 0..case.partitions {
        tracker.open(p, 0);
    }
    let mut out = Emitter::default();
    let mut pending: Vec<(u32, i64, u8, Option<i64>)> = Vec::new();
    let flush = |pending: &mut Vec<(u32, i64, u8, Option<i64>)>,
                 tracker: &mut WatermarkTracker,
                 op: &mut Box<dyn Operator>,
                 out: &mut Emitter| {
        if pending.is_empty() {
            return;
        }
        let partition = pending[0].0;
        let mut k = Column::new(&DataType::String, pending.len());
        let mut v = Column::new(&DataType::Int, pending.len());
        let mut times = Vec::new();
        for (_, t, key, value) in pending.iter() {
            k.push_str(&format!("k{key}"));
            match value {
                Some(x) => v.push_int(*x),
                None => v.push_null(),
            }
            times.push(*t);
        }
        let mut batch = Batch::new(vec![k, v], pending.len());
        let mut watermarks = Vec::new();
        tracker.assign(partition, &times, 0, &mut watermarks);
        batch.times = times;
        batch.watermarks = watermarks;
        op.process(0, batch, out).unwrap();
        op.on_watermark(tracker.current(), out).unwrap();
        pending.clear();
    };
    for (i, action) in case.actions.iter().enumerate() {
        if case.restart_at == Some(i) {
            // A restart from a checkpoint: the state moves to a fresh operator.
            flush(&mut pending, &mut tracker, &mut op, &mut out);
            let mut state = StateWriter::new();
            op.snapshot(&mut state);
            let bytes = state.into_bytes();
            op = build();
            op.restore(&mut StateReader::new(&bytes)).unwrap();
        }
        match action {
            Action::Event {
                partition,
                t,
                key,
                v,
            } => {
                if pending.first().is_some_and(|p| p.0 != *partition) {
                    flush(&mut pending, &mut tracker, &mut op, &mut out);
                }
                pending.push((*partition, *t, *key, *v));
                if case.cuts[i] {
                    flush(&mut pending, &mut tracker, &mut op, &mut out);
                }
            }
            Action::Idle(p) => {
                flush(&mut pending, &mut tracker, &mut op, &mut out);
                tracker.mark_idle(*p);
                op.on_watermark(tracker.current(), &mut out).unwrap();
            }
            Action::Close(p) => {
                flush(&mut pending, &mut tracker, &mut op, &mut out);
                tracker.close(*p);
                op.on_watermark(tracker.current(), &mut out).unwrap();
            }
        }
    }
    flush(&mut pending, &mut tracker, &mut op, &mut out);
    op.on_watermark(MAX_WATERMARK, &mut out).unwrap();
    op.finish(&mut out).unwrap();
    let mut rows = Vec::new();
    let mut late = Vec::new();
    for (port, batch) in out.batches {
        for r in 0..batch.num_rows {
            let get = |c: usize| batch.columns[c].value(r).into_owned();
            if port == 1 {
                // The event, and the window it was too late for (the last column).
                let Value::Str(k) = get(0) else { panic!() };
                let Value::Timestamp(end) = get(batch.columns.len() - 1) else {
                    panic!("no late_window_end")
                };
                late.push((k.to_string(), batch.times[r], end));
                continue;
            }
            let (Value::Timestamp(s), Value::Timestamp(e), Value::Str(k)) =
                (get(0), get(1), get(2))
            else {
                panic!("bad window row")
            };
            rows.push((
                s,
                e,
                k.to_string(),
                (3..batch.columns.len()).map(get).collect(),
            ));
        }
    }
    rows.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    late.sort();
    (rows, late)
}

/// The watermark before each action, computed from scratch (O(n²)): the minimum over open,
/// non-idle partitions of (max time seen - delay), never decreasing.
fn oracle_watermarks(case: &Case) -> Vec<i64> {
    let mut result = Vec::new();
    let mut current = MIN_WATERMARK;
    for i in 0..case.actions.len() {
        result.push(current);
        let mut max: BTreeMap<u32, i64> =
            (0..case.partitions).map(|p| (p, MIN_WATERMARK)).collect();
        let mut idle: BTreeMap<u32, bool> = BTreeMap::new();
        for a in &case.actions[..=i] {
            match a {
                Action::Event { partition, t, .. } => {
                    if let Some(m) = max.get_mut(partition) {
                        *m = (*m).max(*t);
                    }
                    idle.insert(*partition, false);
                }
                Action::Idle(p) => {
                    idle.insert(*p, true);
                }
                Action::Close(p) => {
                    max.remove(p);
                }
            }
        }
        let min = max
            .iter()
            .filter(|(p, _)| !idle.get(p).copied().unwrap_or(false))
            .map(|(_, m)| {
                if *m == MIN_WATERMARK {
                    MIN_WATERMARK
                } else {
                    m - case.delay
                }
            })
            .min();
        if let Some(min) = min {
            current = current.max(min);
        }
    }
    result
}

fn aggregate(events: &[(i64, Option<i64>)]) -> Vec<Value<'static>> {
    let values: Vec<i64> = events.iter().filter_map(|e| e.1).collect();
    let opt = |x: Option<i64>| x.map_or(Value::Null, Value::Int);
    let mut distinct = values.clone();
    distinct.sort();
    distinct.dedup();
    let (lo, hi) = (values.iter().min().copied(), values.iter().max().copied());
    vec![
        Value::Int(events.len() as i64),
        Value::Int(values.len() as i64),
        opt((!values.is_empty()).then(|| values.iter().sum())),
        opt(lo),
        opt(hi),
        opt(values.first().copied()),
        opt(values.last().copied()),
        Value::Int(distinct.len() as i64),
        opt(lo.zip(hi).map(|(l, h)| h - l)),
    ]
}

/// A window row's values, with its `revision` when late events update windows.
fn revised(case: &Case, mut values: Vec<Value<'static>>, revision: i64) -> Vec<Value<'static>> {
    if case.lateness > 0 && !case.emit_final {
        values.push(Value::Int(revision));
    }
    values
}

/// Late events: (key, event time, end of the window it was too late for), one per window.
type Late = Vec<(String, i64, i64)>;

/// Tumbling and sliding windows from their definitions.
fn oracle_aligned(case: &Case, size: i64, slide: i64) -> (Vec<Row>, Late) {
    let wm = oracle_watermarks(case);
    let l = case.lateness;
    // (window end, key) → (on-time events, late-but-allowed events in arrival order)
    type Events = Vec<(i64, Option<i64>)>;
    let mut windows: BTreeMap<(i64, String), (Events, Vec<Events>)> = BTreeMap::new();
    let mut late = Vec::new();
    for (i, a) in case.actions.iter().enumerate() {
        let Action::Event { t, key, v, .. } = a else {
            continue;
        };
        let w = wm[i];
        let key = format!("k{key}");
        let last_start = t.div_euclid(slide) * slide;
        let mut start = last_start;
        while start > t - size {
            let end = start + size;
            if end - 1 + l <= w {
                // Too late for this window (and the earlier ones), maybe not for later ones.
                late.push((key.clone(), *t, end));
                start -= slide;
                continue;
            }
            let entry = windows.entry((end, key.clone())).or_default();
            if end - 1 > w {
                entry.0.push((i as i64, *v));
            } else if end - 1 + l > w {
                let mut all: Events = entry.0.clone();
                if let Some(prev) = entry.1.last() {
                    all = prev.clone();
                }
                all.push((i as i64, *v));
                entry.1.push(all);
            }
            start -= slide;
        }
    }
    let mut rows = Vec::new();
    for ((end, key), (on_time, updates)) in windows {
        let start = end - size;
        if case.emit_final {
            // One row once the lateness has passed: every event that was not late.
            let mut all = updates.last().cloned().unwrap_or_else(|| on_time.clone());
            all.sort_by_key(|e| e.0);
            let events: Vec<_> = all.iter().map(|(_, v)| (0, *v)).collect();
            rows.push((start, end, key.clone(), aggregate(&events)));
            continue;
        }
        if !on_time.is_empty() {
            let events: Vec<_> = on_time.iter().map(|(_, v)| (0, *v)).collect();
            rows.push((
                start,
                end,
                key.clone(),
                revised(case, aggregate(&events), 0),
            ));
        }
        for (revision, mut all) in (1..).zip(updates) {
            // Updates include the on-time events plus late ones so far, in arrival order.
            all.sort_by_key(|e| e.0);
            let events: Vec<_> = all.iter().map(|(_, v)| (0, *v)).collect();
            rows.push((
                start,
                end,
                key.clone(),
                revised(case, aggregate(&events), revision),
            ));
        }
    }
    rows.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    late.sort();
    (rows, late)
}

/// Session windows by direct simulation with plain lists.
fn oracle_sessions(case: &Case, gap: i64) -> (Vec<Row>, Late) {
    #[derive(Clone)]
    struct S {
        start: i64,
        end: i64,
        /// (arrival index, value)
        events: Vec<(usize, Option<i64>)>,
        fired: bool,
        revision: i64,
    }
    let wm = oracle_watermarks(case);
    let l = case.lateness;
    let mut sessions: BTreeMap<String, Vec<S>> = BTreeMap::new();
    let mut rows = Vec::new();
    let mut late = Vec::new();
    // With `emit: final` a session is written once its lateness has passed.
    let delay = if case.emit_final { l } else { 0 };
    let emit = |rows: &mut Vec<Row>, key: &str, s: &S| {
        let events: Vec<_> = s.events.iter().map(|(_, v)| (0, *v)).collect();
        rows.push((
            s.start,
            s.end,
            key.to_string(),
            revised(case, aggregate(&events), s.revision),
        ));
    };
    let advance = |sessions: &mut BTreeMap<String, Vec<S>>, rows: &mut Vec<Row>, w: i64| {
        for (key, list) in sessions.iter_mut() {
            for s in list.iter_mut() {
                if !s.fired && s.end - 1 + delay <= w {
                    s.fired = true;
                    emit(rows, key, s);
                }
            }
            list.retain(|s| !(s.fired && s.end - 1 + l <= w));
        }
    };
    for (i, a) in case.actions.iter().enumerate() {
        let Action::Event { t, key, v, .. } = a else {
            continue;
        };
        let w = wm[i];
        advance(&mut sessions, &mut rows, w);
        let key = format!("k{key}");
        let list = sessions.entry(key.clone()).or_default();
        let (start, end) = (*t, t + gap);
        let (touching, rest): (Vec<S>, Vec<S>) = list
            .drain(..)
            .partition(|s| s.start <= end && s.end >= start);
        *list = rest;
        if touching.is_empty() && end - 1 + l <= w {
            late.push((key, *t, end));
            continue;
        }
        // The merged session's row replaces the rows written for its parts.
        let revision = touching
            .iter()
            .map(|s| s.revision + i64::from(s.fired))
            .max()
            .unwrap_or(0);
        let mut merged = S {
            start,
            end,
            events: Vec::new(),
            fired: false,
            revision,
        };
        for s in touching {
            merged.start = merged.start.min(s.start);
            merged.end = merged.end.max(s.end);
            merged.events.extend(s.events);
        }
        merged.events.push((i, *v));
        // FIRST/LAST_VALUE follow arrival order across the merged sessions.
        merged.events.sort_by_key(|e| e.0);
        if !case.emit_final && merged.end - 1 <= w {
            merged.fired = true;
            emit(&mut rows, &key, &merged);
        }
        list.push(merged);
    }
    advance(&mut sessions, &mut rows, MAX_WATERMARK - 1 - l.max(0));
    advance(&mut sessions, &mut rows, MAX_WATERMARK);
    rows.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    late.sort();
    (rows, late)
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (case_with_every_aggregate(), any::<bool>())
        .prop_map(|(case, distinct)| Case { distinct, ..case })
}

fn case_with_every_aggregate() -> impl Strategy<Value = Case> {
    let kind = prop_oneof![
        (1i64..=4).prop_map(|s| WindowKind::Tumbling { size: s * 5 }),
        (1i64..=3, 1i64..=4).prop_map(|(slide, k)| WindowKind::Sliding {
            size: slide * 4 * k,
            slide: slide * 4
        }),
        (1i64..=12).prop_map(|gap| WindowKind::Session { gap }),
    ];
    (
        kind,
        0i64..8,
        prop_oneof![Just(0i64), Just(0), 1i64..15],
        any::<bool>(),
        1u32..=3,
        1usize..120,
    )
        .prop_flat_map(|(kind, delay, lateness, emit_final, partitions, n)| {
            let action = (
                0u32..partitions,
                0u8..20,
                -12i64..3,
                0u8..3,
                prop::option::weighted(0.85, -5i64..20),
            );
            (
                Just(kind),
                Just((delay, lateness, emit_final)),
                Just(partitions),
                prop::collection::vec(action, n),
                (
                    prop::collection::vec(any::<bool>(), n),
                    prop::option::of(0..n),
                ),
            )
        })
        .prop_map(
            |(kind, (delay, lateness, emit_final), partitions, raw, (cuts, restart_at))| {
                let mut actions = Vec::new();
                let mut closed = vec![false; partitions as usize];
                for (i, (p, roll, jitter, key, v)) in raw.into_iter().enumerate() {
                    if closed[p as usize] {
                        continue;
                    }
                    match roll {
                        // Now and then a partition goes idle or ends.
                        0 => actions.push(Action::Idle(p)),
                        1 if partitions > 1 && i > 10 => {
                            closed[p as usize] = true;
                            actions.push(Action::Close(p));
                        }
                        _ => {
                            // Mostly increasing times with disorder; sometimes far behind (late).
                            let base = i as i64 * 2;
                            let t = if roll == 2 { base - 40 } else { base + jitter };
                            actions.push(Action::Event {
                                partition: p,
                                t,
                                key,
                                v,
                            });
                        }
                    }
                }
                let cuts = cuts
                    .into_iter()
                    .chain(std::iter::repeat(false))
                    .take(actions.len())
                    .collect();
                Case {
                    kind,
                    delay,
                    lateness,
                    emit_final,
                    restart_at: restart_at.filter(|&i| i < actions.len()),
                    partitions,
                    actions,
                    cuts,
                    distinct: true,
                }
            },
        )
}

proptest! {
    // PROPTEST_CASES raises the count for a long soak (e.g. 20000 in release mode).
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(400), ..ProptestConfig::default() })]

    #[test]
    fn windows_equal_the_oracle(case in case_strategy()) {
        let (rows, late) = run_engine(&case);
        let (expected_rows, expected_late) = match case.kind {
            WindowKind::Tumbling { size } => oracle_aligned(&case, size, size),
            WindowKind::Sliding { size, slide } => oracle_aligned(&case, size, slide),
            WindowKind::Session { gap } => oracle_sessions(&case, gap),
        };
        let expected_rows = if case.distinct {
            expected_rows
        } else {
            let mut rows: Vec<Row> = expected_rows
                .into_iter()
                .map(|(s, e, k, mut values)| {
                    values.remove(DISTINCT_COLUMN);
                    (s, e, k, values)
                })
                .collect();
            rows.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
            rows
        };
        prop_assert_eq!(late, expected_late, "late records differ");
        prop_assert_eq!(rows, expected_rows, "window results differ");
    }
}

#[test]
fn in_order_tumbling_counts_are_exact() {
    let actions = (0..100)
        .map(|i| Action::Event {
            partition: 0,
            t: i,
            key: (i % 3) as u8,
            v: Some(i),
        })
        .collect::<Vec<_>>();
    let case = Case {
        kind: WindowKind::Tumbling { size: 10 },
        delay: 0,
        lateness: 0,
        emit_final: false,
        restart_at: None,
        partitions: 1,
        cuts: vec![false; actions.len()],
        actions,
        distinct: true,
    };
    let (rows, late) = run_engine(&case);
    assert!(late.is_empty());
    assert_eq!(rows.len(), 30);
    let total: i64 = rows
        .iter()
        .map(|r| match r.3[0] {
            Value::Int(n) => n,
            _ => 0,
        })
        .sum();
    assert_eq!(total, 100);
}
