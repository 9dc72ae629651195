//! Window aggregate expressions: `COUNT(*)`, `MAX(ts)`, and expressions over aggregates such
//! as `MAX(price) - MIN(price)`.
//!
//! Each output column compiles to a *post* expression over a row made of the group keys followed
//! by the results of the distinct aggregate calls found in all outputs; the calls themselves
//! (function, argument over the input, DISTINCT) are what the window operator accumulates.

use std::cell::RefCell;

use sqlparser::ast;

use super::compile::{Compiler, ExprError, function_args, parse_sql, span_of};
use super::{Expr, ExprKind};
use crate::data::{DataType, Field, Schema};

/// Aggregate functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggFunc {
    Count,
    Sum,
    Min,
    Max,
    Avg,
    FirstValue,
    LastValue,
}

impl AggFunc {
    pub fn name(self) -> &'static str {
        match self {
            AggFunc::Count => "COUNT",
            AggFunc::Sum => "SUM",
            AggFunc::Min => "MIN",
            AggFunc::Max => "MAX",
            AggFunc::Avg => "AVG",
            AggFunc::FirstValue => "FIRST_VALUE",
            AggFunc::LastValue => "LAST_VALUE",
        }
    }

    fn from_name(name: &str) -> Option<AggFunc> {
        Some(match name {
            "COUNT" => AggFunc::Count,
            "SUM" => AggFunc::Sum,
            "MIN" => AggFunc::Min,
            "MAX" => AggFunc::Max,
            "AVG" => AggFunc::Avg,
            "FIRST_VALUE" => AggFunc::FirstValue,
            "LAST_VALUE" => AggFunc::LastValue,
            _ => return None,
        })
    }
}

/// One aggregate to accumulate per window and group.
#[derive(Debug, Clone, PartialEq)]
pub struct AggCall {
    pub func: AggFunc,
    /// The argument over the input row; `None` for `COUNT(*)`.
    pub arg: Option<Expr>,
    pub distinct: bool,
    /// The result type (Flink's: COUNT → BIGINT, SUM/AVG keep BIGINT or DOUBLE, MIN/MAX/FIRST/LAST keep the argument's).
    pub ty: DataType,
}

impl AggCall {
    /// What the call's state depends on, e.g. `COUNT(*)`, `MAX(TIMESTAMP) TIMESTAMP`,
    /// `COUNT(DISTINCT STRING) BIGINT`: checkpoints compare these.
    pub fn describe(&self) -> String {
        let arg = match &self.arg {
            None => "*".to_string(),
            Some(a) => a.ty.as_ref().map_or("?".to_string(), ToString::to_string),
        };
        let distinct = if self.distinct { "DISTINCT " } else { "" };
        format!("{}({distinct}{arg}) {}", self.func.name(), self.ty)
    }
}

/// Collects the aggregate calls of all output expressions of one window.
pub struct AggregateCollector {
    pub input: Schema,
    /// Group keys come first in the post row; call results follow.
    pub key_count: usize,
    pub calls: Vec<AggCall>,
}

impl AggregateCollector {
    pub(super) fn aggregate(
        &mut self,
        sql: &str,
        func: &ast::Function,
        name: &str,
    ) -> Result<Expr, ExprError> {
        let agg = AggFunc::from_name(name).ok_or_else(|| {
            ExprError::new("unknown-function", format!("unknown aggregate {name}"))
        })?;
        if func.filter.is_some() || func.over.is_some() || !func.within_group.is_empty() {
            return Err(ExprError::new(
                "unsupported-sql",
                format!("{name}: FILTER, OVER and WITHIN GROUP are not supported"),
            ));
        }
        let distinct = matches!(
            &func.args,
            ast::FunctionArguments::List(list)
                if matches!(list.duplicate_treatment, Some(ast::DuplicateTreatment::Distinct))
        );
        let args = function_args(func)?;
        let inner = Compiler {
            in_aggregate: true,
            ..Compiler::scalar(sql, &self.input)
        };
        let arg = match (agg, args.as_slice()) {
            (AggFunc::Count, [None]) if !distinct => None,
            (_, [Some(e)]) => Some(inner.expr(e)?),
            (_, [None]) => {
                return Err(ExprError::new(
                    "unsupported-sql",
                    format!("{name}(*) is not valid; only COUNT(*) takes `*`"),
                ));
            }
            _ => {
                return Err(ExprError::new(
                    "wrong-arguments",
                    format!("{name} takes exactly one argument, found {}", args.len()),
                )
                .at(span_of(sql, func)));
            }
        };
        let arg_ty = arg.as_ref().and_then(|a| a.ty.clone());
        let ty = match agg {
            AggFunc::Count => DataType::Int,
            AggFunc::Sum | AggFunc::Avg => match &arg_ty {
                Some(t) if t.is_numeric() => t.clone(),
                Some(t) => {
                    let help = if *t == DataType::String {
                        format!(
                            "{name} needs numbers; to count values use COUNT, or convert with CAST(x AS DOUBLE)"
                        )
                    } else {
                        format!("{name} works on BIGINT and DOUBLE")
                    };
                    return Err(ExprError::new(
                        "type-mismatch",
                        format!("{name} over a {t} is not allowed"),
                    )
                    .at(args[0].and_then(|a| span_of(sql, a)))
                    .help(help));
                }
                None => DataType::Int,
            },
            AggFunc::Min | AggFunc::Max | AggFunc::FirstValue | AggFunc::LastValue => match &arg_ty
            {
                Some(DataType::Array(_)) => {
                    return Err(ExprError::new(
                        "type-mismatch",
                        format!("{name} over an ARRAY is not supported"),
                    ));
                }
                Some(t) => t.clone(),
                None => {
                    return Err(ExprError::new(
                        "type-mismatch",
                        format!("{name}(NULL) has no type"),
                    )
                    .help("write CAST(NULL AS <type>)"));
                }
            },
        };
        if distinct && matches!(agg, AggFunc::FirstValue | AggFunc::LastValue) {
            return Err(ExprError::new(
                "unsupported-sql",
                format!("{name}(DISTINCT …) is not supported"),
            ));
        }
        // MIN/MAX ignore DISTINCT; keep calls canonical so they are shared.
        let distinct = distinct && matches!(agg, AggFunc::Count | AggFunc::Sum | AggFunc::Avg);
        let call = AggCall {
            func: agg,
            arg,
            distinct,
            ty: ty.clone(),
        };
        let slot = match self.calls.iter().position(|c| *c == call) {
            Some(i) => i,
            None => {
                self.calls.push(call);
                self.calls.len() - 1
            }
        };
        Ok(Expr::column(self.key_count + slot, ty))
    }
}

/// The compiled aggregation of one window: keys, calls, and output expressions.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateExprs {
    /// Grouping keys over the input: output name and expression.
    pub keys: Vec<(String, Expr)>,
    /// Distinct aggregate calls across all outputs.
    pub calls: Vec<AggCall>,
    /// Output columns: name and expression over `[keys…, call results…]`.
    pub outputs: Vec<(String, Expr)>,
}

impl AggregateExprs {
    /// Whether output `i` is just the result of one call (no post computation).
    pub fn output_is_call(&self, i: usize) -> Option<usize> {
        self.outputs[i]
            .1
            .as_column()
            .filter(|&c| c >= self.keys.len())
            .map(|c| c - self.keys.len())
    }
}

/// Compiles the `aggregates` of a window given its already compiled keys. Errors come back per
/// output name so the caller can point at each.
///
/// # Errors
/// One `(output name, error)` per output that did not compile.
pub fn compile_aggregates(
    input: &Schema,
    keys: Vec<(String, Expr)>,
    aggregates: &[(String, String)],
) -> Result<AggregateExprs, Vec<(String, ExprError)>> {
    let post_schema = Schema::new(
        keys.iter()
            .map(|(name, e)| Field::new(name.clone(), e.ty.clone().unwrap_or(DataType::String)))
            .collect(),
    );
    let collector = RefCell::new(AggregateCollector {
        input: input.clone(),
        key_count: keys.len(),
        calls: Vec::new(),
    });
    let mut outputs = Vec::new();
    let mut errors = Vec::new();
    for (name, sql) in aggregates {
        let compiled = parse_sql(sql).and_then(|ast| {
            let compiler = Compiler {
                aggregates: Some(&collector),
                ..Compiler::scalar(sql, &post_schema)
            };
            let expr = compiler.expr(&ast)?;
            if !contains_aggregate(&expr, keys.len()) && !matches!(expr.kind, ExprKind::Literal(_)) {
                // e.g. `aggregates: {m: movieId}`: legal (a key) but almost always a mistake.
                if expr.as_column().is_none() {
                    return Err(ExprError::new(
                        "not-an-aggregate",
                        "this output uses no aggregate function",
                    )
                    .help("aggregate outputs look like `COUNT(*)` or `MAX(x) - MIN(x)`; keys come out of `group_by` on their own"));
                }
            }
            if expr.ty.is_none() {
                return Err(ExprError::new("type-mismatch", "NULL needs a type")
                    .help("write CAST(NULL AS <type>)"));
            }
            Ok(expr)
        });
        match compiled {
            Ok(expr) => outputs.push((name.clone(), expr)),
            Err(e) => errors.push((name.clone(), e)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(AggregateExprs {
        keys,
        calls: collector.into_inner().calls,
        outputs,
    })
}

fn contains_aggregate(expr: &Expr, key_count: usize) -> bool {
    let mut columns = Vec::new();
    expr.columns(&mut columns);
    columns.iter().any(|&c| c >= key_count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> Schema {
        Schema::new(vec![
            Field::new("symbol", DataType::String),
            Field::new("price", DataType::Double),
            Field::new("qty", DataType::Int),
        ])
    }

    fn compile(aggs: &[(&str, &str)]) -> Result<AggregateExprs, Vec<(String, ExprError)>> {
        let schema = input();
        let keys = vec![(
            "symbol".to_string(),
            super::super::compile("symbol", &schema).unwrap(),
        )];
        let aggs: Vec<(String, String)> = aggs
            .iter()
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect();
        compile_aggregates(&schema, keys, &aggs)
    }

    #[test]
    fn calls_are_shared_between_outputs() {
        let a = compile(&[
            ("hi", "MAX(price)"),
            ("lo", "MIN(price)"),
            ("spread", "MAX(price) - MIN(price)"),
            ("n", "COUNT(*)"),
        ])
        .unwrap();
        assert_eq!(a.calls.len(), 3);
        assert_eq!(a.output_is_call(0), Some(0));
        assert_eq!(a.output_is_call(2), None);
        assert_eq!(a.outputs[3].1.ty, Some(DataType::Int));
    }

    #[test]
    fn flink_result_types() {
        let a = compile(&[
            ("s", "SUM(qty)"),
            ("avg", "AVG(qty)"),
            ("avgd", "AVG(price)"),
        ])
        .unwrap();
        assert_eq!(a.calls[0].ty, DataType::Int);
        assert_eq!(a.calls[1].ty, DataType::Int);
        assert_eq!(a.calls[2].ty, DataType::Double);
    }

    #[test]
    fn mistakes_are_explained() {
        let errors = compile(&[("s", "SUM(symbol)")]).unwrap_err();
        assert_eq!(errors[0].1.code, "type-mismatch");
        assert_eq!(errors[0].1.span, Some((4, 10)));
        let errors = compile(&[("p", "price + 1")]).unwrap_err();
        assert_eq!(errors[0].1.code, "not-aggregated");
        let errors = compile(&[("p", "MAX(MIN(price))")]).unwrap_err();
        assert_eq!(errors[0].1.code, "nested-aggregate");
        assert!(compile(&[("d", "COUNT(DISTINCT symbol)")]).unwrap().calls[0].distinct);
    }
}
