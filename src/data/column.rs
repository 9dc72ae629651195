//! Columns: one typed vector per field, with an optional validity mask for NULLs.

use super::{DataType, Value};

/// Packed strings: row `i` is `data[offsets[i]..offsets[i + 1]]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Strings {
    pub offsets: Vec<u32>,
    pub data: String,
}

impl Strings {
    pub fn with_capacity(rows: usize, bytes: usize) -> Strings {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Strings {
            offsets,
            data: String::with_capacity(bytes),
        }
    }

    #[inline]
    pub fn get(&self, i: usize) -> &str {
        &self.data[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    #[inline]
    pub fn push(&mut self, s: &str) {
        self.data.push_str(s);
        self.offsets.push(self.data.len() as u32);
    }

    /// Ends the current row after bytes were appended to `data` directly.
    #[inline]
    pub fn finish_row(&mut self) {
        self.offsets.push(self.data.len() as u32);
    }

    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn truncate(&mut self, rows: usize) {
        self.offsets.truncate(rows + 1);
        let end = self.offsets[rows] as usize;
        self.data.truncate(end);
    }
}

/// Lists: row `i` holds child rows `offsets[i]..offsets[i + 1]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Lists {
    pub offsets: Vec<u32>,
    pub values: Column,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    Bool(Vec<bool>),
    Int(Vec<i64>),
    Double(Vec<f64>),
    Timestamp(Vec<i64>),
    Str(Strings),
    List(Box<Lists>),
}

/// A column of a batch. `valid[i] == false` marks row `i` NULL; `None` means no NULLs.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub data: ColumnData,
    pub valid: Option<Vec<bool>>,
}

impl Column {
    pub fn new(data_type: &DataType, capacity: usize) -> Column {
        let data = match data_type {
            DataType::Bool => ColumnData::Bool(Vec::with_capacity(capacity)),
            DataType::Int => ColumnData::Int(Vec::with_capacity(capacity)),
            DataType::Double => ColumnData::Double(Vec::with_capacity(capacity)),
            DataType::Timestamp => ColumnData::Timestamp(Vec::with_capacity(capacity)),
            DataType::String => ColumnData::Str(Strings::with_capacity(capacity, capacity * 8)),
            DataType::Array(element) => ColumnData::List(Box::new(Lists {
                offsets: vec![0],
                values: Column::new(element, capacity),
            })),
        };
        Column { data, valid: None }
    }

    pub fn data_type(&self) -> DataType {
        match &self.data {
            ColumnData::Bool(_) => DataType::Bool,
            ColumnData::Int(_) => DataType::Int,
            ColumnData::Double(_) => DataType::Double,
            ColumnData::Timestamp(_) => DataType::Timestamp,
            ColumnData::Str(_) => DataType::String,
            ColumnData::List(l) => DataType::Array(Box::new(l.values.data_type())),
        }
    }

    pub fn len(&self) -> usize {
        match &self.data {
            ColumnData::Bool(v) => v.len(),
            ColumnData::Int(v) | ColumnData::Timestamp(v) => v.len(),
            ColumnData::Double(v) => v.len(),
            ColumnData::Str(s) => s.len(),
            ColumnData::List(l) => l.offsets.len() - 1,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    pub fn is_null(&self, row: usize) -> bool {
        self.valid.as_ref().is_some_and(|v| !v[row])
    }

    /// The value at `row`, borrowing strings from the column.
    pub fn value(&self, row: usize) -> Value<'_> {
        if self.is_null(row) {
            return Value::Null;
        }
        match &self.data {
            ColumnData::Bool(v) => Value::Bool(v[row]),
            ColumnData::Int(v) => Value::Int(v[row]),
            ColumnData::Double(v) => Value::Double(v[row]),
            ColumnData::Timestamp(v) => Value::Timestamp(v[row]),
            ColumnData::Str(s) => Value::Str(s.get(row).into()),
            ColumnData::List(l) => {
                let (start, end) = (l.offsets[row] as usize, l.offsets[row + 1] as usize);
                Value::List((start..end).map(|i| l.values.value(i)).collect())
            }
        }
    }

    /// Marks the last pushed row NULL (keeps the placeholder value written for it).
    fn mark_last_null(&mut self) {
        let len = self.len();
        let valid = self.valid.get_or_insert_with(|| vec![true; len]);
        valid.resize(len, true);
        valid[len - 1] = false;
    }

    fn mark_last_valid(&mut self) {
        if let Some(valid) = &mut self.valid {
            valid.push(true);
        }
    }

    pub fn push_null(&mut self) {
        match &mut self.data {
            ColumnData::Bool(v) => v.push(false),
            ColumnData::Int(v) | ColumnData::Timestamp(v) => v.push(0),
            ColumnData::Double(v) => v.push(0.0),
            ColumnData::Str(s) => s.push(""),
            ColumnData::List(l) => {
                let end = *l.offsets.last().unwrap_or(&0);
                l.offsets.push(end);
            }
        }
        self.mark_last_null();
    }

    #[inline]
    pub fn push_int(&mut self, x: i64) {
        match &mut self.data {
            ColumnData::Int(v) | ColumnData::Timestamp(v) => v.push(x),
            ColumnData::Double(v) => v.push(x as f64),
            _ => panic!("push_int on a {} column", self.data_type()),
        }
        self.mark_last_valid();
    }

    /// Pushes `x` as the next `n` rows: `n` calls of [`Column::push_int`] at once.
    pub fn push_repeated_int(&mut self, x: i64, n: usize) {
        match &mut self.data {
            ColumnData::Int(v) | ColumnData::Timestamp(v) => v.resize(v.len() + n, x),
            ColumnData::Double(v) => v.resize(v.len() + n, x as f64),
            _ => panic!("push_repeated_int on a {} column", self.data_type()),
        }
        let len = self.len();
        if let Some(valid) = &mut self.valid {
            valid.resize(len, true);
        }
    }

    #[inline]
    pub fn push_double(&mut self, x: f64) {
        match &mut self.data {
            ColumnData::Double(v) => v.push(x),
            _ => panic!("push_double on a {} column", self.data_type()),
        }
        self.mark_last_valid();
    }

    #[inline]
    pub fn push_bool(&mut self, x: bool) {
        match &mut self.data {
            ColumnData::Bool(v) => v.push(x),
            _ => panic!("push_bool on a {} column", self.data_type()),
        }
        self.mark_last_valid();
    }

    #[inline]
    pub fn push_str(&mut self, x: &str) {
        match &mut self.data {
            ColumnData::Str(s) => s.push(x),
            _ => panic!("push_str on a {} column", self.data_type()),
        }
        self.mark_last_valid();
    }

    /// Appends a value of this column's type (an `Int` into a DOUBLE column widens). Callers
    /// type-check beforehand; a mismatch is a bug in streamctl.
    pub fn push_value(&mut self, value: &Value<'_>) {
        match (value, &mut self.data) {
            (Value::Null, _) => self.push_null(),
            (Value::Bool(b), ColumnData::Bool(v)) => {
                v.push(*b);
                self.mark_last_valid();
            }
            (Value::Int(x), ColumnData::Int(v))
            | (Value::Timestamp(x), ColumnData::Timestamp(v)) => {
                v.push(*x);
                self.mark_last_valid();
            }
            (Value::Int(x), ColumnData::Double(v)) => {
                v.push(*x as f64);
                self.mark_last_valid();
            }
            (Value::Double(x), ColumnData::Double(v)) => {
                v.push(*x);
                self.mark_last_valid();
            }
            (Value::Str(x), ColumnData::Str(s)) => {
                s.push(x);
                self.mark_last_valid();
            }
            (Value::List(items), ColumnData::List(l)) => {
                for item in items {
                    l.values.push_value(item);
                }
                l.offsets.push(l.values.len() as u32);
                self.mark_last_valid();
            }
            (v, _) => panic!(
                "internal error: a {v:?} value pushed into a {} column",
                self.data_type()
            ),
        }
    }

    /// Appends row `row` of `other` (same type).
    pub fn push_from(&mut self, other: &Column, row: usize) {
        if other.is_null(row) {
            self.push_null();
            return;
        }
        match (&mut self.data, &other.data) {
            (ColumnData::Bool(a), ColumnData::Bool(b)) => a.push(b[row]),
            (ColumnData::Int(a), ColumnData::Int(b))
            | (ColumnData::Timestamp(a), ColumnData::Timestamp(b)) => a.push(b[row]),
            (ColumnData::Double(a), ColumnData::Double(b)) => a.push(b[row]),
            (ColumnData::Str(a), ColumnData::Str(b)) => a.push(b.get(row)),
            _ => {
                let value = other.value(row);
                self.push_value(&value);
                return;
            }
        }
        self.mark_last_valid();
    }

    /// Drops rows from `rows` on: undoes a partly decoded record.
    pub fn truncate(&mut self, rows: usize) {
        match &mut self.data {
            ColumnData::Bool(v) => v.truncate(rows),
            ColumnData::Int(v) | ColumnData::Timestamp(v) => v.truncate(rows),
            ColumnData::Double(v) => v.truncate(rows),
            ColumnData::Str(s) => s.truncate(rows),
            ColumnData::List(l) => {
                l.offsets.truncate(rows + 1);
                let end = l.offsets[rows] as usize;
                l.values.truncate(end);
            }
        }
        if let Some(valid) = &mut self.valid {
            valid.truncate(rows);
        }
    }

    /// Keeps the rows where `keep` is true.
    pub fn filter(&self, keep: &[bool]) -> Column {
        let count = keep.iter().filter(|&&k| k).count();
        let mut out = Column::new(&self.data_type(), count);
        match (&self.data, &mut out.data) {
            (ColumnData::Int(a), ColumnData::Int(b))
            | (ColumnData::Timestamp(a), ColumnData::Timestamp(b)) => {
                b.extend(a.iter().zip(keep).filter(|(_, k)| **k).map(|(x, _)| *x));
            }
            (ColumnData::Double(a), ColumnData::Double(b)) => {
                b.extend(a.iter().zip(keep).filter(|(_, k)| **k).map(|(x, _)| *x));
            }
            (ColumnData::Bool(a), ColumnData::Bool(b)) => {
                b.extend(a.iter().zip(keep).filter(|(_, k)| **k).map(|(x, _)| *x));
            }
            (ColumnData::Str(a), ColumnData::Str(b)) => {
                for (i, _) in keep.iter().enumerate().filter(|(_, k)| **k) {
                    b.push(a.get(i));
                }
            }
            _ => {
                for (i, _) in keep.iter().enumerate().filter(|(_, k)| **k) {
                    out.push_from(self, i);
                }
                return out;
            }
        }
        if let Some(valid) = &self.valid {
            out.valid = Some(
                valid
                    .iter()
                    .zip(keep)
                    .filter(|(_, k)| **k)
                    .map(|(v, _)| *v)
                    .collect(),
            );
        }
        out
    }

    /// Rows picked by index, in that order (rows may repeat).
    pub fn take(&self, rows: &[u32]) -> Column {
        let mut out = Column::new(&self.data_type(), rows.len());
        for &r in rows {
            out.push_from(self, r as usize);
        }
        out
    }

    /// A column of `len` copies of one value.
    pub fn repeat(data_type: &DataType, value: &Value<'_>, len: usize) -> Column {
        let mut out = Column::new(data_type, len);
        for _ in 0..len {
            out.push_value(value);
        }
        out
    }

    /// Appends every row of `other` (same type).
    pub fn extend_from(&mut self, other: &Column) {
        for row in 0..other.len() {
            self.push_from(other, row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_and_truncation_keep_columns_aligned() {
        let mut c = Column::new(&DataType::String, 4);
        c.push_str("a");
        c.push_null();
        c.push_str("ccc");
        assert_eq!(c.len(), 3);
        assert_eq!(c.value(1), Value::Null);
        assert_eq!(c.value(2), Value::Str("ccc".into()));
        c.truncate(1);
        c.push_str("d");
        assert_eq!(c.len(), 2);
        assert_eq!(c.value(1), Value::Str("d".into()));
        assert!(!c.is_null(1));
    }

    #[test]
    fn filter_and_take_select_rows() {
        let mut c = Column::new(&DataType::Int, 4);
        for x in [1, 2, 3] {
            c.push_int(x);
        }
        c.push_null();
        let f = c.filter(&[true, false, true, true]);
        assert_eq!(f.len(), 3);
        assert_eq!(f.value(2), Value::Null);
        let t = c.take(&[2, 2, 0]);
        assert_eq!(t.value(0), Value::Int(3));
        assert_eq!(t.value(2), Value::Int(1));
    }

    #[test]
    fn lists_hold_child_values() {
        let mut c = Column::new(&DataType::Array(Box::new(DataType::Int)), 2);
        c.push_value(&Value::List(vec![Value::Int(1), Value::Int(2)]));
        c.push_null();
        c.push_value(&Value::List(vec![]));
        assert_eq!(c.len(), 3);
        assert_eq!(c.value(0), Value::List(vec![Value::Int(1), Value::Int(2)]));
        assert_eq!(c.value(1), Value::Null);
        assert_eq!(c.value(2), Value::List(vec![]));
    }
}
