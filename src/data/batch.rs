//! Batches: the unit of data between stages.

use super::{Column, DataType, Schema};

/// Rows of one stream, column by column, with their event time.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// One column per schema field, all of length `num_rows`.
    pub columns: Vec<Column>,
    pub num_rows: usize,
    /// Event time of each row (ms since the epoch); empty when the stream has no event time.
    pub times: Vec<i64>,
    /// The watermark in force when each row arrived, set by the event-time stage; empty until
    /// then. Window operators judge lateness by it, so results do not depend on batch sizes.
    pub watermarks: Vec<i64>,
}

impl Batch {
    pub fn new(columns: Vec<Column>, num_rows: usize) -> Batch {
        debug_assert!(columns.iter().all(|c| c.len() == num_rows));
        Batch {
            columns,
            num_rows,
            times: Vec::new(),
            watermarks: Vec::new(),
        }
    }

    pub fn empty(schema: &Schema) -> Batch {
        Batch::new(
            schema
                .fields
                .iter()
                .map(|f| Column::new(&f.data_type, 0))
                .collect(),
            0,
        )
    }

    pub fn with_capacity(types: &[DataType], rows: usize) -> Batch {
        Batch::new(types.iter().map(|t| Column::new(t, rows)).collect(), 0)
    }

    pub fn is_empty(&self) -> bool {
        self.num_rows == 0
    }

    /// Keeps the rows where `keep` is true (columns, times and watermarks alike).
    pub fn filter(&self, keep: &[bool]) -> Batch {
        let num_rows = keep.iter().filter(|&&k| k).count();
        if num_rows == self.num_rows {
            return self.clone();
        }
        let pick = |v: &Vec<i64>| -> Vec<i64> {
            if v.is_empty() {
                Vec::new()
            } else {
                v.iter()
                    .zip(keep)
                    .filter(|(_, k)| **k)
                    .map(|(x, _)| *x)
                    .collect()
            }
        };
        Batch {
            columns: self.columns.iter().map(|c| c.filter(keep)).collect(),
            num_rows,
            times: pick(&self.times),
            watermarks: pick(&self.watermarks),
        }
    }

    /// Rows picked by index (rows may repeat), with their times and watermarks.
    pub fn take(&self, rows: &[u32]) -> Batch {
        let pick = |v: &Vec<i64>| -> Vec<i64> {
            if v.is_empty() {
                Vec::new()
            } else {
                rows.iter().map(|&r| v[r as usize]).collect()
            }
        };
        Batch {
            columns: self.columns.iter().map(|c| c.take(rows)).collect(),
            num_rows: rows.len(),
            times: pick(&self.times),
            watermarks: pick(&self.watermarks),
        }
    }

    /// Appends the rows of `other` (same schema).
    pub fn append(&mut self, other: &Batch) {
        for (a, b) in self.columns.iter_mut().zip(&other.columns) {
            a.extend_from(b);
        }
        self.num_rows += other.num_rows;
        self.times.extend_from_slice(&other.times);
        self.watermarks.extend_from_slice(&other.watermarks);
    }
}
