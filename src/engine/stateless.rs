//! Record-at-a-time transforms: filter, select, explode. Event time and per-record watermarks
//! travel with the rows.

use std::sync::Arc;

use super::operator::{BadRecordRouter, Emitter, Operator, Result};
use crate::data::{Batch, Column, ColumnData, SchemaRef};
use crate::expr::{EvalError, Expr, eval_column, eval_predicate};
use crate::plan::{ExplodePlan, FilterPlan, SelectPlan};
use crate::runtime::Metrics;

/// Keeps rows whose condition is TRUE.
pub struct Filter {
    predicate: Expr,
    input_schema: SchemaRef,
    bad: BadRecordRouter,
}

impl Filter {
    pub fn new(
        name: &str,
        plan: &FilterPlan,
        input_schema: SchemaRef,
        metrics: Arc<Metrics>,
    ) -> Filter {
        Filter {
            predicate: plan.predicate.clone(),
            input_schema,
            bad: BadRecordRouter::new(name, plan.bad_records, metrics),
        }
    }
}

impl Operator for Filter {
    fn process(&mut self, _input: usize, batch: Batch, out: &mut Emitter) -> Result<()> {
        let mut errors = Vec::new();
        let keep = eval_predicate(&self.predicate, &batch, &mut errors);
        self.bad.route(
            self.bad.rejections(&self.input_schema, &batch, &errors),
            out,
        )?;
        out.emit(0, batch.filter(&keep));
        Ok(())
    }
}

/// Computes output columns.
pub struct Select {
    columns: Vec<(Expr, crate::data::DataType)>,
    input_schema: SchemaRef,
    bad: BadRecordRouter,
}

impl Select {
    pub fn new(
        name: &str,
        plan: &SelectPlan,
        input_schema: SchemaRef,
        output_schema: SchemaRef,
        metrics: Arc<Metrics>,
    ) -> Select {
        let columns = plan
            .columns
            .iter()
            .zip(&output_schema.fields)
            .map(|((_, e, _), f)| (e.clone(), f.data_type.clone()))
            .collect();
        Select {
            columns,
            input_schema,
            bad: BadRecordRouter::new(name, plan.bad_records, metrics),
        }
    }
}

impl Operator for Select {
    fn process(&mut self, _input: usize, batch: Batch, out: &mut Emitter) -> Result<()> {
        let mut errors: Vec<EvalError> = Vec::new();
        let columns: Vec<Column> = self
            .columns
            .iter()
            .map(|(e, ty)| eval_column(e, ty, &batch, &mut errors))
            .collect();
        let mut result = Batch::new(columns, batch.num_rows);
        result.times = batch.times.clone();
        result.watermarks = batch.watermarks.clone();
        if !errors.is_empty() {
            let mut keep = vec![true; batch.num_rows];
            for e in &errors {
                keep[e.row] = false;
            }
            errors.sort_by_key(|e| e.row);
            errors.dedup_by_key(|e| e.row);
            self.bad.route(
                self.bad.rejections(&self.input_schema, &batch, &errors),
                out,
            )?;
            result = result.filter(&keep);
        }
        out.emit(0, result);
        Ok(())
    }
}

/// One output row per array element.
pub struct Explode {
    column: usize,
    keep_empty: bool,
}

impl Explode {
    pub fn new(plan: &ExplodePlan) -> Explode {
        Explode {
            column: plan.column,
            keep_empty: plan.keep_empty,
        }
    }
}

impl Operator for Explode {
    fn process(&mut self, _input: usize, batch: Batch, out: &mut Emitter) -> Result<()> {
        let array = &batch.columns[self.column];
        let ColumnData::List(lists) = &array.data else {
            return Err(super::operator::EngineError::Internal(
                "explode over a column that is not an array".to_string(),
            ));
        };
        // Which input row each output row comes from, and which element it takes.
        let mut rows: Vec<u32> = Vec::new();
        let mut elements: Vec<Option<u32>> = Vec::new();
        for row in 0..batch.num_rows {
            let (start, end) = (lists.offsets[row], lists.offsets[row + 1]);
            if array.is_null(row) || start == end {
                if self.keep_empty {
                    rows.push(row as u32);
                    elements.push(None);
                }
                continue;
            }
            for e in start..end {
                rows.push(row as u32);
                elements.push(Some(e));
            }
        }
        let mut result = batch.take(&rows);
        let mut element_column = Column::new(&lists.values.data_type(), rows.len());
        for e in &elements {
            match e {
                Some(e) => element_column.push_from(&lists.values, *e as usize),
                None => element_column.push_null(),
            }
        }
        result.columns[self.column] = element_column;
        out.emit(0, result);
        Ok(())
    }
}
