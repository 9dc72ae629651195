//! Aggregate state, column by column: slot `i` of every accumulator belongs to one group of
//! one window (or session). Updates run as tight loops over a batch; merging two slots serves
//! sliding windows (panes) and session merges.

use std::collections::HashSet;

use super::keys::encode_value;
use crate::data::{Column, ColumnData, DataType, OwnedValue, Value};
use crate::expr::{AggCall, AggFunc};
use crate::runtime::state::{StateError, StateReader, StateResult, StateWriter};

/// Marks a row that updates nothing (late, or failed to evaluate).
pub const NO_SLOT: u32 = u32::MAX;

/// Which values a DISTINCT aggregate has seen (in key encoding).
type Seen = HashSet<Vec<u8>>;

#[derive(Debug)]
enum Acc {
    /// COUNT(*) (`star`) or COUNT(x) (non-NULL x).
    Count {
        star: bool,
        counts: Vec<i64>,
    },
    SumInt {
        sums: Vec<i64>,
        has: Vec<bool>,
    },
    SumDouble {
        sums: Vec<f64>,
        has: Vec<bool>,
    },
    AvgInt {
        sums: Vec<i64>,
        counts: Vec<i64>,
    },
    AvgDouble {
        sums: Vec<f64>,
        counts: Vec<i64>,
    },
    /// MIN/MAX over BIGINT or TIMESTAMP.
    ExtremeInt {
        max: bool,
        timestamp: bool,
        values: Vec<i64>,
        has: Vec<bool>,
    },
    ExtremeDouble {
        max: bool,
        values: Vec<f64>,
        has: Vec<bool>,
    },
    /// MIN/MAX over STRING or BOOLEAN.
    ExtremeValue {
        max: bool,
        values: Vec<OwnedValue>,
    },
    /// FIRST_VALUE / LAST_VALUE by arrival order, ignoring NULLs (as Flink does).
    FirstLast {
        last: bool,
        values: Vec<OwnedValue>,
        seqs: Vec<u64>,
    },
    /// COUNT/SUM/AVG(DISTINCT x).
    Distinct {
        func: AggFunc,
        ty: DataType,
        seen: Vec<Seen>,
    },
}

/// One accumulator per aggregate call, all sharing slot numbers.
#[derive(Debug)]
pub struct Accumulators {
    accs: Vec<Acc>,
    slots: usize,
    free: Vec<u32>,
}

impl Accumulators {
    pub fn new(calls: &[AggCall]) -> Accumulators {
        let accs = calls
            .iter()
            .map(|call| {
                let arg_ty = call.arg.as_ref().and_then(|a| a.ty.clone());
                let max = call.func == AggFunc::Max;
                if call.distinct {
                    return Acc::Distinct {
                        func: call.func,
                        ty: arg_ty.unwrap_or(DataType::Int),
                        seen: Vec::new(),
                    };
                }
                match (call.func, arg_ty) {
                    (AggFunc::Count, _) => Acc::Count {
                        star: call.arg.is_none(),
                        counts: Vec::new(),
                    },
                    (AggFunc::Sum, Some(DataType::Double)) => Acc::SumDouble {
                        sums: Vec::new(),
                        has: Vec::new(),
                    },
                    (AggFunc::Sum, _) => Acc::SumInt {
                        sums: Vec::new(),
                        has: Vec::new(),
                    },
                    (AggFunc::Avg, Some(DataType::Double)) => Acc::AvgDouble {
                        sums: Vec::new(),
                        counts: Vec::new(),
                    },
                    (AggFunc::Avg, _) => Acc::AvgInt {
                        sums: Vec::new(),
                        counts: Vec::new(),
                    },
                    (
                        AggFunc::Min | AggFunc::Max,
                        Some(t @ (DataType::Int | DataType::Timestamp)),
                    ) => Acc::ExtremeInt {
                        max,
                        timestamp: t == DataType::Timestamp,
                        values: Vec::new(),
                        has: Vec::new(),
                    },
                    (AggFunc::Min | AggFunc::Max, Some(DataType::Double)) => Acc::ExtremeDouble {
                        max,
                        values: Vec::new(),
                        has: Vec::new(),
                    },
                    (AggFunc::Min | AggFunc::Max, _) => Acc::ExtremeValue {
                        max,
                        values: Vec::new(),
                    },
                    (AggFunc::FirstValue | AggFunc::LastValue, _) => Acc::FirstLast {
                        last: call.func == AggFunc::LastValue,
                        values: Vec::new(),
                        seqs: Vec::new(),
                    },
                }
            })
            .collect();
        Accumulators {
            accs,
            slots: 0,
            free: Vec::new(),
        }
    }

    /// A fresh slot (reusing freed ones, cleared now: the new group's first update follows, so
    /// the memory is touched once instead of twice).
    pub fn alloc(&mut self) -> u32 {
        if let Some(slot) = self.free.pop() {
            for acc in &mut self.accs {
                acc.reset(slot as usize);
            }
            return slot;
        }
        for acc in &mut self.accs {
            acc.push_empty();
        }
        self.slots += 1;
        (self.slots - 1) as u32
    }

    /// Returns a slot for reuse ([`Accumulators::alloc`] clears it).
    pub fn release(&mut self, slot: u32) {
        self.free.push(slot);
    }

    /// Heap bytes held by the state of every slot (for the state memory limit), estimated in
    /// constant time: string values by count, DISTINCT sets without their values.
    pub fn state_bytes(&self) -> usize {
        self.accs.iter().map(Acc::state_bytes).sum::<usize>() + self.free.capacity() * 4
    }

    /// Slots in use.
    pub fn live(&self) -> usize {
        self.slots - self.free.len()
    }

    /// Adds row `offset + j` to slot `slots[j]` for every `j` (skipping `NO_SLOT`).
    /// `args[i]` is the evaluated argument column of call `i` (`None` for COUNT(*)); `seq` is
    /// the arrival sequence number of row `offset`.
    pub fn update(&mut self, slots: &[u32], offset: usize, args: &[Option<&Column>], seq: u64) {
        for (acc, arg) in self.accs.iter_mut().zip(args) {
            acc.update(slots, offset, *arg, seq);
        }
    }

    /// Whether merging one slot into a fresh slot gives back its state exactly, so that a
    /// group in one pane of a sliding window can be written from that pane's own slot. Not
    /// for sums and averages of doubles (`0.0 + -0.0` is `0.0`) nor DISTINCT sets (a merged
    /// set may iterate in another order, and doubles summed in another order may differ).
    pub fn merge_into_fresh_copies(&self) -> bool {
        self.accs.iter().all(|acc| {
            !matches!(
                acc,
                Acc::SumDouble { .. } | Acc::AvgDouble { .. } | Acc::Distinct { .. }
            )
        })
    }

    /// Merges the state of `src` into `dst` (both keep existing).
    pub fn merge(&mut self, dst: u32, src: u32) {
        for acc in &mut self.accs {
            acc.merge(dst as usize, src as usize);
        }
    }

    /// Writes `slot`'s state of every call (for checkpoints).
    pub fn snapshot_slot(&self, slot: u32, w: &mut StateWriter) {
        for acc in &self.accs {
            acc.snapshot(slot as usize, w);
        }
    }

    /// A new slot holding state written by [`Accumulators::snapshot_slot`].
    ///
    /// # Errors
    /// When the state cannot be read.
    pub fn restore_slot(&mut self, r: &mut StateReader<'_>) -> StateResult<u32> {
        let slot = self.alloc();
        for acc in &mut self.accs {
            acc.restore(slot as usize, r)?;
        }
        Ok(slot)
    }

    /// Pushes the result of every call for `slot` into `out` (one column per call).
    pub fn output(&self, slot: u32, out: &mut [Column]) {
        for (acc, column) in self.accs.iter().zip(out.iter_mut()) {
            acc.output(slot as usize, column);
        }
    }
}

/// Updates `has`/`values` so that `values[s]` keeps the extreme of itself and `v`.
#[inline]
fn keep_extreme<T: PartialOrd + Copy>(
    max: bool,
    values: &mut [T],
    has: &mut [bool],
    s: usize,
    v: T,
) {
    if !has[s] || (max && v > values[s]) || (!max && v < values[s]) {
        values[s] = v;
        has[s] = true;
    }
}

impl Acc {
    fn state_bytes(&self) -> usize {
        fn vec<T>(v: &Vec<T>) -> usize {
            v.capacity() * std::mem::size_of::<T>()
        }
        match self {
            Acc::Count { counts, .. } => vec(counts),
            Acc::SumInt { sums, has } => vec(sums) + vec(has),
            Acc::SumDouble { sums, has } => vec(sums) + vec(has),
            Acc::AvgInt { sums, counts } => vec(sums) + vec(counts),
            Acc::AvgDouble { sums, counts } => vec(sums) + vec(counts),
            Acc::ExtremeInt { values, has, .. } => vec(values) + vec(has),
            Acc::ExtremeDouble { values, has, .. } => vec(values) + vec(has),
            Acc::ExtremeValue { values, .. } => vec(values) + values.len() * 16,
            Acc::FirstLast { values, seqs, .. } => vec(values) + vec(seqs) + values.len() * 16,
            // Walking every set per batch would cost more than it tells: the sets themselves
            // are counted, not their values.
            Acc::Distinct { seen, .. } => vec(seen),
        }
    }

    fn push_empty(&mut self) {
        match self {
            Acc::Count { counts, .. } => counts.push(0),
            Acc::SumInt { sums, has } => {
                sums.push(0);
                has.push(false);
            }
            Acc::SumDouble { sums, has } => {
                sums.push(0.0);
                has.push(false);
            }
            Acc::AvgInt { sums, counts } => {
                sums.push(0);
                counts.push(0);
            }
            Acc::AvgDouble { sums, counts } => {
                sums.push(0.0);
                counts.push(0);
            }
            Acc::ExtremeInt { values, has, .. } => {
                values.push(0);
                has.push(false);
            }
            Acc::ExtremeDouble { values, has, .. } => {
                values.push(0.0);
                has.push(false);
            }
            Acc::ExtremeValue { values, .. } => values.push(Value::Null),
            Acc::FirstLast { values, seqs, .. } => {
                values.push(Value::Null);
                seqs.push(0);
            }
            Acc::Distinct { seen, .. } => seen.push(Seen::new()),
        }
    }

    fn reset(&mut self, s: usize) {
        match self {
            Acc::Count { counts, .. } => counts[s] = 0,
            Acc::SumInt { sums, has } => {
                sums[s] = 0;
                has[s] = false;
            }
            Acc::SumDouble { sums, has } => {
                sums[s] = 0.0;
                has[s] = false;
            }
            Acc::AvgInt { sums, counts } => {
                sums[s] = 0;
                counts[s] = 0;
            }
            Acc::AvgDouble { sums, counts } => {
                sums[s] = 0.0;
                counts[s] = 0;
            }
            Acc::ExtremeInt { has, .. } | Acc::ExtremeDouble { has, .. } => has[s] = false,
            Acc::ExtremeValue { values, .. } => values[s] = Value::Null,
            Acc::FirstLast { values, seqs, .. } => {
                values[s] = Value::Null;
                seqs[s] = 0;
            }
            Acc::Distinct { seen, .. } => seen[s] = Seen::new(),
        }
    }

    fn update(&mut self, slots: &[u32], offset: usize, arg: Option<&Column>, seq: u64) {
        let live = slots
            .iter()
            .enumerate()
            .filter(|(_, s)| **s != NO_SLOT)
            .map(|(j, s)| (offset + j, s));
        match self {
            Acc::Count { star, counts } => match (arg, *star) {
                (_, true) | (None, _) => {
                    for (_, &s) in live {
                        counts[s as usize] += 1;
                    }
                }
                (Some(col), false) => {
                    for (r, &s) in live {
                        if !col.is_null(r) {
                            counts[s as usize] += 1;
                        }
                    }
                }
            },
            Acc::SumInt { sums, has } => {
                let Some(col) = arg else { return };
                if let ColumnData::Int(v) = &col.data {
                    for (r, &s) in live {
                        if !col.is_null(r) {
                            sums[s as usize] = sums[s as usize].wrapping_add(v[r]);
                            has[s as usize] = true;
                        }
                    }
                }
            }
            Acc::SumDouble { sums, has } => {
                let Some(col) = arg else { return };
                for (r, &s) in live {
                    if let Some(d) = as_f64(col, r) {
                        sums[s as usize] += d;
                        has[s as usize] = true;
                    }
                }
            }
            Acc::AvgInt { sums, counts } => {
                let Some(col) = arg else { return };
                if let ColumnData::Int(v) = &col.data {
                    for (r, &s) in live {
                        if !col.is_null(r) {
                            sums[s as usize] = sums[s as usize].wrapping_add(v[r]);
                            counts[s as usize] += 1;
                        }
                    }
                }
            }
            Acc::AvgDouble { sums, counts } => {
                let Some(col) = arg else { return };
                for (r, &s) in live {
                    if let Some(d) = as_f64(col, r) {
                        sums[s as usize] += d;
                        counts[s as usize] += 1;
                    }
                }
            }
            Acc::ExtremeInt {
                max, values, has, ..
            } => {
                let Some(col) = arg else { return };
                if let ColumnData::Int(v) | ColumnData::Timestamp(v) = &col.data {
                    let max = *max;
                    match &col.valid {
                        None => {
                            for (r, &s) in live {
                                keep_extreme(max, values, has, s as usize, v[r]);
                            }
                        }
                        Some(valid) => {
                            for (r, &s) in live {
                                if valid[r] {
                                    keep_extreme(max, values, has, s as usize, v[r]);
                                }
                            }
                        }
                    }
                }
            }
            Acc::ExtremeDouble { max, values, has } => {
                let Some(col) = arg else { return };
                let max = *max;
                for (r, &s) in live {
                    if let Some(d) = as_f64(col, r) {
                        keep_extreme(max, values, has, s as usize, d);
                    }
                }
            }
            Acc::ExtremeValue { max, values } => {
                let Some(col) = arg else { return };
                for (r, &s) in live {
                    let v = col.value(r);
                    if v.is_null() {
                        continue;
                    }
                    let cur = &mut values[s as usize];
                    let better = match cur.sql_cmp(&v) {
                        None => cur.is_null(),
                        Some(o) => (*max && o.is_lt()) || (!*max && o.is_gt()),
                    };
                    if better {
                        *cur = v.into_owned();
                    }
                }
            }
            Acc::FirstLast { last, values, seqs } => {
                let Some(col) = arg else { return };
                for (r, &s) in live {
                    if col.is_null(r) {
                        continue;
                    }
                    let s = s as usize;
                    // Sequence numbers start at 1 so 0 means "nothing yet".
                    if seqs[s] == 0 || *last {
                        values[s] = col.value(r).into_owned();
                        seqs[s] = seq + (r - offset) as u64 + 1;
                    }
                }
            }
            Acc::Distinct { seen, .. } => {
                let Some(col) = arg else { return };
                let mut buf = Vec::new();
                for (r, &s) in live {
                    if col.is_null(r) {
                        continue;
                    }
                    buf.clear();
                    encode_value(col, r, &mut buf);
                    if !seen[s as usize].contains(&buf) {
                        seen[s as usize].insert(buf.clone());
                    }
                }
            }
        }
    }

    fn merge(&mut self, d: usize, s: usize) {
        match self {
            Acc::Count { counts, .. } => counts[d] += counts[s],
            Acc::SumInt { sums, has } => {
                if has[s] {
                    sums[d] = sums[d].wrapping_add(sums[s]);
                    has[d] = true;
                }
            }
            Acc::SumDouble { sums, has } => {
                if has[s] {
                    sums[d] += sums[s];
                    has[d] = true;
                }
            }
            Acc::AvgInt { sums, counts } => {
                sums[d] = sums[d].wrapping_add(sums[s]);
                counts[d] += counts[s];
            }
            Acc::AvgDouble { sums, counts } => {
                sums[d] += sums[s];
                counts[d] += counts[s];
            }
            Acc::ExtremeInt {
                max, values, has, ..
            } => {
                if has[s] {
                    let v = values[s];
                    keep_extreme(*max, values, has, d, v);
                }
            }
            Acc::ExtremeDouble { max, values, has } => {
                if has[s] {
                    let v = values[s];
                    keep_extreme(*max, values, has, d, v);
                }
            }
            Acc::ExtremeValue { max, values } => {
                let v = values[s].clone();
                if v.is_null() {
                    return;
                }
                let better = match values[d].sql_cmp(&v) {
                    None => values[d].is_null(),
                    Some(o) => (*max && o.is_lt()) || (!*max && o.is_gt()),
                };
                if better {
                    values[d] = v;
                }
            }
            Acc::FirstLast { last, values, seqs } => {
                if seqs[s] == 0 {
                    return;
                }
                let take =
                    seqs[d] == 0 || (*last && seqs[s] > seqs[d]) || (!*last && seqs[s] < seqs[d]);
                if take {
                    values[d] = values[s].clone();
                    seqs[d] = seqs[s];
                }
            }
            Acc::Distinct { seen, .. } => {
                let src = std::mem::take(&mut seen[s]);
                seen[d].extend(src.iter().cloned());
                seen[s] = src;
            }
        }
    }

    fn output(&self, s: usize, out: &mut Column) {
        match self {
            Acc::Count { counts, .. } => out.push_int(counts[s]),
            Acc::SumInt { sums, has } => push_opt(out, has[s].then(|| Value::Int(sums[s]))),
            Acc::SumDouble { sums, has } => push_opt(out, has[s].then(|| Value::Double(sums[s]))),
            // Flink's AVG over BIGINT divides with truncation towards zero.
            Acc::AvgInt { sums, counts } => push_opt(
                out,
                (counts[s] > 0).then(|| Value::Int(sums[s] / counts[s])),
            ),
            Acc::AvgDouble { sums, counts } => push_opt(
                out,
                (counts[s] > 0).then(|| Value::Double(sums[s] / counts[s] as f64)),
            ),
            Acc::ExtremeInt {
                timestamp,
                values,
                has,
                ..
            } => push_opt(
                out,
                has[s].then(|| {
                    if *timestamp {
                        Value::Timestamp(values[s])
                    } else {
                        Value::Int(values[s])
                    }
                }),
            ),
            Acc::ExtremeDouble { values, has, .. } => {
                push_opt(out, has[s].then(|| Value::Double(values[s])))
            }
            Acc::ExtremeValue { values, .. } | Acc::FirstLast { values, .. } => {
                out.push_value(&values[s])
            }
            Acc::Distinct { func, ty, seen } => {
                let set = &seen[s];
                if *func == AggFunc::Count {
                    out.push_int(set.len() as i64);
                    return;
                }
                let values = set.iter().map(|k| super::keys::decode_value(ty, k).0);
                let (mut int_sum, mut double_sum, mut n) = (0i64, 0f64, 0i64);
                for v in values {
                    match v {
                        Value::Int(i) => int_sum = int_sum.wrapping_add(i),
                        Value::Double(d) => double_sum += d,
                        _ => continue,
                    }
                    n += 1;
                }
                let result = match (func, ty) {
                    (_, _) if n == 0 => Value::Null,
                    (AggFunc::Sum, DataType::Double) => Value::Double(double_sum),
                    (AggFunc::Sum, _) => Value::Int(int_sum),
                    (_, DataType::Double) => Value::Double(double_sum / n as f64),
                    _ => Value::Int(int_sum / n),
                };
                out.push_value(&result);
            }
        }
    }
}

impl Acc {
    fn snapshot(&self, s: usize, w: &mut StateWriter) {
        match self {
            Acc::Count { counts, .. } => w.i64(counts[s]),
            Acc::SumInt { sums, has } => {
                w.i64(sums[s]);
                w.bool(has[s]);
            }
            Acc::SumDouble { sums, has } => {
                w.f64(sums[s]);
                w.bool(has[s]);
            }
            Acc::AvgInt { sums, counts } => {
                w.i64(sums[s]);
                w.i64(counts[s]);
            }
            Acc::AvgDouble { sums, counts } => {
                w.f64(sums[s]);
                w.i64(counts[s]);
            }
            Acc::ExtremeInt { values, has, .. } => {
                w.i64(values[s]);
                w.bool(has[s]);
            }
            Acc::ExtremeDouble { values, has, .. } => {
                w.f64(values[s]);
                w.bool(has[s]);
            }
            Acc::ExtremeValue { values, .. } => write_value(&values[s], w),
            Acc::FirstLast { values, seqs, .. } => {
                write_value(&values[s], w);
                w.u64(seqs[s]);
            }
            Acc::Distinct { seen, .. } => {
                // Sorted, so the same state always writes the same bytes.
                let mut items: Vec<&Vec<u8>> = seen[s].iter().collect();
                items.sort();
                w.usize(items.len());
                for item in items {
                    w.bytes(item);
                }
            }
        }
    }

    fn restore(&mut self, s: usize, r: &mut StateReader<'_>) -> StateResult<()> {
        match self {
            Acc::Count { counts, .. } => counts[s] = r.i64()?,
            Acc::SumInt { sums, has } => {
                sums[s] = r.i64()?;
                has[s] = r.bool()?;
            }
            Acc::SumDouble { sums, has } => {
                sums[s] = r.f64()?;
                has[s] = r.bool()?;
            }
            Acc::AvgInt { sums, counts } => {
                sums[s] = r.i64()?;
                counts[s] = r.i64()?;
            }
            Acc::AvgDouble { sums, counts } => {
                sums[s] = r.f64()?;
                counts[s] = r.i64()?;
            }
            Acc::ExtremeInt { values, has, .. } => {
                values[s] = r.i64()?;
                has[s] = r.bool()?;
            }
            Acc::ExtremeDouble { values, has, .. } => {
                values[s] = r.f64()?;
                has[s] = r.bool()?;
            }
            Acc::ExtremeValue { values, .. } => values[s] = read_value(r)?,
            Acc::FirstLast { values, seqs, .. } => {
                values[s] = read_value(r)?;
                seqs[s] = r.u64()?;
            }
            Acc::Distinct { seen, .. } => {
                let n = r.count(1)?;
                let mut set = Seen::with_capacity(n);
                for _ in 0..n {
                    set.insert(r.bytes()?.to_vec());
                }
                seen[s] = set;
            }
        }
        Ok(())
    }
}

/// A value in checkpointed state: a tag byte and its payload.
pub fn write_value(v: &Value<'_>, w: &mut StateWriter) {
    match v {
        Value::Null => w.u8(0),
        Value::Bool(b) => {
            w.u8(1);
            w.bool(*b);
        }
        Value::Int(i) => {
            w.u8(2);
            w.i64(*i);
        }
        Value::Double(d) => {
            w.u8(3);
            w.f64(*d);
        }
        Value::Timestamp(t) => {
            w.u8(4);
            w.i64(*t);
        }
        Value::Str(s) => {
            w.u8(5);
            w.str(s);
        }
        Value::List(items) => {
            w.u8(6);
            w.usize(items.len());
            for item in items {
                write_value(item, w);
            }
        }
    }
}

/// Reads a value written by [`write_value`].
///
/// # Errors
/// When the state cannot be read.
pub fn read_value(r: &mut StateReader<'_>) -> StateResult<OwnedValue> {
    Ok(match r.u8()? {
        0 => Value::Null,
        1 => Value::Bool(r.bool()?),
        2 => Value::Int(r.i64()?),
        3 => Value::Double(r.f64()?),
        4 => Value::Timestamp(r.i64()?),
        5 => Value::Str(r.string()?.into()),
        6 => {
            let n = r.count(1)?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                items.push(read_value(r)?);
            }
            Value::List(items)
        }
        tag => return Err(StateError(format!("unknown value tag {tag}"))),
    })
}

fn push_opt(out: &mut Column, v: Option<Value<'_>>) {
    match v {
        Some(v) => out.push_value(&v),
        None => out.push_null(),
    }
}

#[inline]
fn as_f64(col: &Column, r: usize) -> Option<f64> {
    if col.is_null(r) {
        return None;
    }
    match &col.data {
        ColumnData::Double(v) => Some(v[r]),
        ColumnData::Int(v) => Some(v[r] as f64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Field, Schema};
    use crate::expr::{compile, compile_aggregates};

    fn calls(aggs: &[&str]) -> Vec<AggCall> {
        let schema = Schema::new(vec![
            Field::new("x", DataType::Int),
            Field::new("s", DataType::String),
        ]);
        let aggs: Vec<(String, String)> = aggs
            .iter()
            .enumerate()
            .map(|(i, a)| (format!("a{i}"), a.to_string()))
            .collect();
        let _ = compile("x", &schema);
        compile_aggregates(&schema, Vec::new(), &aggs)
            .unwrap()
            .calls
    }

    fn column(values: &[Option<i64>]) -> Column {
        let mut c = Column::new(&DataType::Int, values.len());
        for v in values {
            match v {
                Some(v) => c.push_int(*v),
                None => c.push_null(),
            }
        }
        c
    }

    #[test]
    fn update_merge_and_output() {
        let calls = calls(&[
            "COUNT(*)",
            "COUNT(x)",
            "SUM(x)",
            "AVG(x)",
            "MIN(x)",
            "MAX(x)",
            "FIRST_VALUE(x)",
            "LAST_VALUE(x)",
            "COUNT(DISTINCT x)",
        ]);
        let mut accs = Accumulators::new(&calls);
        let (a, b) = (accs.alloc(), accs.alloc());
        let x = column(&[Some(3), None, Some(-4), Some(3)]);
        let args: Vec<Option<&Column>> = calls.iter().map(|c| c.arg.as_ref().map(|_| &x)).collect();
        accs.update(&[a, a, b, NO_SLOT], 0, &args, 0);
        accs.update(&[b], 3, &args, 7);
        let mut out: Vec<Column> = calls.iter().map(|c| Column::new(&c.ty, 2)).collect();
        accs.output(a, &mut out);
        accs.merge(a, b);
        accs.output(a, &mut out);
        let row = |r: usize| out.iter().map(|c| c.value(r)).collect::<Vec<_>>();
        use Value::Int as I;
        assert_eq!(
            row(0),
            vec![I(2), I(1), I(3), I(3), I(3), I(3), I(3), I(3), I(1)]
        );
        // After merging b (-4 then 3): AVG truncates (2 / 3 = 0) like Flink; LAST is the
        // latest arrival across both.
        assert_eq!(
            row(1),
            vec![I(4), I(3), I(2), I(0), I(-4), I(3), I(3), I(3), I(2)]
        );
        accs.release(b);
        assert_eq!(accs.alloc(), b);
        assert_eq!(accs.live(), 2);
    }
}
