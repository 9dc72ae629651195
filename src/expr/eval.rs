//! Evaluating typed expressions row by row, with SQL NULL semantics.
//!
//! Errors (integer division by zero, a failing CAST) belong to one record: the batch-level
//! functions return them per row so the operator can apply the bad-record policy to exactly
//! those rows.

use std::borrow::Cow;
use std::cmp::Ordering;

use super::functions;
use super::{BinaryOp, Expr, ExprKind};
use crate::data::{Batch, Column, DataType, Value};

/// Why evaluating an expression failed for one row.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalError {
    pub row: usize,
    pub message: String,
}

/// Evaluates `expr` on row `row` of `columns`.
///
/// # Errors
/// A runtime error of this row (division by zero, failed CAST…).
pub fn eval<'a>(expr: &'a Expr, columns: &'a [Column], row: usize) -> Result<Value<'a>, String> {
    Ok(match &expr.kind {
        ExprKind::Literal(v) => borrow(v),
        ExprKind::Column(i) => columns[*i].value(row),
        ExprKind::Not(e) => match eval(e, columns, row)? {
            Value::Bool(b) => Value::Bool(!b),
            _ => Value::Null,
        },
        ExprKind::Negate(e) => match eval(e, columns, row)? {
            Value::Int(i) => Value::Int(i.wrapping_neg()),
            Value::Double(d) => Value::Double(-d),
            _ => Value::Null,
        },
        ExprKind::Binary(op, l, r) => binary(*op, l, r, columns, row)?,
        ExprKind::IsNull { expr, negated } => {
            Value::Bool(eval(expr, columns, row)?.is_null() != *negated)
        }
        ExprKind::IsBool {
            expr,
            value,
            negated,
        } => {
            let is = matches!(eval(expr, columns, row)?, Value::Bool(b) if b == *value);
            Value::Bool(is != *negated)
        }
        ExprKind::IsDistinct {
            left,
            right,
            negated,
        } => {
            let (a, b) = (eval(left, columns, row)?, eval(right, columns, row)?);
            let distinct = match (&a, &b) {
                (Value::Null, Value::Null) => false,
                (Value::Null, _) | (_, Value::Null) => true,
                _ => a.sql_cmp(&b) != Some(Ordering::Equal),
            };
            Value::Bool(distinct != *negated)
        }
        ExprKind::InList {
            expr,
            list,
            negated,
        } => {
            let target = eval(expr, columns, row)?;
            if target.is_null() {
                return Ok(Value::Null);
            }
            // x IN (…) is TRUE on a match, else NULL if any item was NULL, else FALSE.
            let mut saw_null = false;
            for item in list {
                let v = eval(item, columns, row)?;
                match target.sql_cmp(&v) {
                    Some(Ordering::Equal) => return Ok(Value::Bool(!*negated)),
                    None => saw_null |= v.is_null(),
                    _ => {}
                }
            }
            if saw_null {
                Value::Null
            } else {
                Value::Bool(*negated)
            }
        }
        ExprKind::Between {
            expr,
            low,
            high,
            negated,
        } => {
            let v = eval(expr, columns, row)?;
            let lo = eval(low, columns, row)?;
            let hi = eval(high, columns, row)?;
            let ge_low = v.sql_cmp(&lo).map(|o| o != Ordering::Less);
            let le_high = v.sql_cmp(&hi).map(|o| o != Ordering::Greater);
            match and3(ge_low, le_high) {
                Some(b) => Value::Bool(b != *negated),
                None => Value::Null,
            }
        }
        ExprKind::Like {
            expr,
            pattern,
            escape,
            negated,
        } => match (eval(expr, columns, row)?, eval(pattern, columns, row)?) {
            (Value::Str(s), Value::Str(p)) => {
                Value::Bool(functions::like(&s, &p, *escape) != *negated)
            }
            _ => Value::Null,
        },
        ExprKind::Case {
            operand,
            whens,
            otherwise,
        } => {
            let subject = operand
                .as_ref()
                .map(|o| eval(o, columns, row))
                .transpose()?;
            for (when, then) in whens {
                let w = eval(when, columns, row)?;
                let hit = match &subject {
                    Some(s) => s.sql_cmp(&w) == Some(Ordering::Equal),
                    None => w == Value::Bool(true),
                };
                if hit {
                    return widen(eval(then, columns, row)?, expr.ty.as_ref());
                }
            }
            match otherwise {
                Some(o) => widen(eval(o, columns, row)?, expr.ty.as_ref())?,
                None => Value::Null,
            }
        }
        ExprKind::Cast {
            expr: inner,
            to,
            try_cast,
        } => {
            let v = eval(inner, columns, row)?;
            match functions::cast(&v, to) {
                Ok(v) => v,
                Err(_) if *try_cast => Value::Null,
                Err(e) => return Err(e),
            }
        }
        ExprKind::Call { function, args } => {
            let mut values = Vec::with_capacity(args.len());
            for a in args {
                let v = eval(a, columns, row)?;
                if function.null_in_null_out && v.is_null() {
                    return Ok(Value::Null);
                }
                values.push(v);
            }
            // Functions over mixed BIGINT/DOUBLE arguments (COALESCE, IF, GREATEST…) may
            // return a BIGINT where the declared type is DOUBLE.
            widen((function.eval)(&values)?, expr.ty.as_ref())?
        }
    })
}

fn borrow<'a>(v: &'a Value<'static>) -> Value<'a> {
    match v {
        Value::Str(s) => Value::Str(Cow::Borrowed(s.as_ref())),
        other => other.clone(),
    }
}

/// CASE branches of BIGINT and DOUBLE produce DOUBLE.
fn widen<'a>(v: Value<'a>, ty: Option<&DataType>) -> Result<Value<'a>, String> {
    Ok(match (v, ty) {
        (Value::Int(i), Some(DataType::Double)) => Value::Double(i as f64),
        (v, _) => v,
    })
}

fn and3(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

fn binary<'a>(
    op: BinaryOp,
    l: &'a Expr,
    r: &'a Expr,
    columns: &'a [Column],
    row: usize,
) -> Result<Value<'a>, String> {
    // AND/OR short-circuit with three-valued logic: FALSE AND NULL is FALSE.
    if matches!(op, BinaryOp::And | BinaryOp::Or) {
        let a = as_bool(eval(l, columns, row)?);
        let decided = if op == BinaryOp::And {
            Some(false)
        } else {
            Some(true)
        };
        if a == decided {
            return Ok(Value::Bool(a == Some(true)));
        }
        let b = as_bool(eval(r, columns, row)?);
        let result = if op == BinaryOp::And {
            and3(a, b)
        } else {
            match (a, b) {
                (Some(true), _) | (_, Some(true)) => Some(true),
                (Some(false), Some(false)) => Some(false),
                _ => None,
            }
        };
        return Ok(result.map_or(Value::Null, Value::Bool));
    }
    let a = eval(l, columns, row)?;
    let b = eval(r, columns, row)?;
    if a.is_null() || b.is_null() {
        return Ok(Value::Null);
    }
    Ok(match op {
        BinaryOp::Eq
        | BinaryOp::NotEq
        | BinaryOp::Lt
        | BinaryOp::LtEq
        | BinaryOp::Gt
        | BinaryOp::GtEq => match a.sql_cmp(&b) {
            None => Value::Null,
            Some(o) => Value::Bool(match op {
                BinaryOp::Eq => o == Ordering::Equal,
                BinaryOp::NotEq => o != Ordering::Equal,
                BinaryOp::Lt => o == Ordering::Less,
                BinaryOp::LtEq => o != Ordering::Greater,
                BinaryOp::Gt => o == Ordering::Greater,
                _ => o != Ordering::Less,
            }),
        },
        BinaryOp::Concat => match (a, b) {
            (Value::Str(x), Value::Str(y)) => {
                let mut s = x.into_owned();
                s.push_str(&y);
                Value::Str(s.into())
            }
            _ => Value::Null,
        },
        _ => arithmetic(op, a, b)?,
    })
}

fn as_bool(v: Value<'_>) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(b),
        _ => None,
    }
}

/// BIGINT arithmetic wraps on overflow and fails on division by zero, as in Flink (Java);
/// DOUBLE follows IEEE 754.
fn arithmetic<'a>(op: BinaryOp, a: Value<'a>, b: Value<'a>) -> Result<Value<'a>, String> {
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => Value::Int(match op {
            BinaryOp::Add => x.wrapping_add(y),
            BinaryOp::Subtract => x.wrapping_sub(y),
            BinaryOp::Multiply => x.wrapping_mul(y),
            BinaryOp::Divide if y == 0 => return Err("division by zero".to_string()),
            BinaryOp::Divide => x.wrapping_div(y),
            BinaryOp::Modulo if y == 0 => return Err("division by zero (modulo)".to_string()),
            BinaryOp::Modulo => x.wrapping_rem(y),
            _ => return Ok(Value::Null),
        }),
        (a, b) => {
            let (Some(x), Some(y)) = (to_f64(&a), to_f64(&b)) else {
                return Ok(Value::Null);
            };
            Value::Double(match op {
                BinaryOp::Add => x + y,
                BinaryOp::Subtract => x - y,
                BinaryOp::Multiply => x * y,
                BinaryOp::Divide => x / y,
                BinaryOp::Modulo => x % y,
                _ => return Ok(Value::Null),
            })
        }
    })
}

fn to_f64(v: &Value<'_>) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Double(d) => Some(*d),
        _ => None,
    }
}

/// Evaluates `expr` for every row of `batch` into a new column of type `ty`. Rows that fail
/// are NULL in the result and reported in `errors`.
pub fn eval_column(
    expr: &Expr,
    ty: &DataType,
    batch: &Batch,
    errors: &mut Vec<EvalError>,
) -> Column {
    if let Some(i) = expr.as_column()
        && batch.columns[i].data_type() == *ty
    {
        return batch.columns[i].clone();
    }
    let mut out = Column::new(ty, batch.num_rows);
    for row in 0..batch.num_rows {
        match eval(expr, &batch.columns, row) {
            Ok(v) => out.push_value(&v),
            Err(message) => {
                out.push_null();
                errors.push(EvalError { row, message });
            }
        }
    }
    out
}

/// Evaluates a condition for every row: `true` where it is TRUE (NULL and FALSE are `false`).
pub fn eval_predicate(expr: &Expr, batch: &Batch, errors: &mut Vec<EvalError>) -> Vec<bool> {
    (0..batch.num_rows)
        .map(|row| match eval(expr, &batch.columns, row) {
            Ok(v) => v == Value::Bool(true),
            Err(message) => {
                errors.push(EvalError { row, message });
                false
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Field, Schema};
    use crate::expr::compile;

    fn batch() -> (Schema, Batch) {
        let schema = Schema::new(vec![
            Field::new("a", DataType::Int),
            Field::new("s", DataType::String),
            Field::new("b", DataType::Bool),
        ]);
        let mut cols: Vec<Column> = schema
            .fields
            .iter()
            .map(|f| Column::new(&f.data_type, 3))
            .collect();
        cols[0].push_int(1);
        cols[0].push_null();
        cols[0].push_int(0);
        cols[1].push_str("apple");
        cols[1].push_str("banana");
        cols[1].push_null();
        cols[2].push_bool(true);
        cols[2].push_null();
        cols[2].push_bool(false);
        (schema, Batch::new(cols, 3))
    }

    fn values(sql: &str) -> Vec<Value<'static>> {
        let (schema, b) = batch();
        let e = compile(sql, &schema).unwrap();
        (0..3)
            .map(|r| {
                eval(&e, &b.columns, r)
                    .map(|v| v.into_owned())
                    .unwrap_or(Value::Str("ERR".into()))
            })
            .collect()
    }

    #[test]
    fn three_valued_logic() {
        assert_eq!(
            values("b AND a > 0"),
            vec![Value::Bool(true), Value::Null, Value::Bool(false)]
        );
        assert_eq!(
            values("b OR a > 0"),
            vec![Value::Bool(true), Value::Null, Value::Bool(false)]
        );
        assert_eq!(
            values("a IN (1, NULL)"),
            vec![Value::Bool(true), Value::Null, Value::Null]
        );
        assert_eq!(
            values("a IS NULL"),
            vec![Value::Bool(false), Value::Bool(true), Value::Bool(false)]
        );
        assert_eq!(
            values("b IS NOT TRUE"),
            vec![Value::Bool(false), Value::Bool(true), Value::Bool(true)]
        );
    }

    #[test]
    fn arithmetic_errors_are_per_row() {
        assert_eq!(
            values("10 / a"),
            vec![Value::Int(10), Value::Null, Value::Str("ERR".into())]
        );
        assert_eq!(values("7 / 2")[0], Value::Int(3));
        assert_eq!(values("7 / 2.0")[0], Value::Double(3.5));
    }

    #[test]
    fn case_and_between() {
        assert_eq!(
            values("CASE WHEN a > 0 THEN 'pos' WHEN a = 0 THEN 'zero' END"),
            vec![
                Value::Str("pos".into()),
                Value::Null,
                Value::Str("zero".into())
            ]
        );
        assert_eq!(
            values("CASE a WHEN 1 THEN 1 ELSE 2.5 END")[0],
            Value::Double(1.0)
        );
        assert_eq!(
            values("a BETWEEN 0 AND 1"),
            vec![Value::Bool(true), Value::Null, Value::Bool(true)]
        );
    }

    #[test]
    fn predicate_keeps_only_true_rows() {
        let (schema, b) = batch();
        let e = compile("s LIKE 'b%' OR a = 1", &schema).unwrap();
        let mut errors = Vec::new();
        assert_eq!(eval_predicate(&e, &b, &mut errors), vec![true, true, false]);
        assert!(errors.is_empty());
    }
}
