//! From SQL text to a typed [`Expr`]: parse with `sqlparser`, resolve column names against the
//! input schema, check types the way Flink SQL does, and report problems with the byte range
//! of the offending part of the expression.

use sqlparser::ast::{
    self, BinaryOperator, CastKind, CeilFloorKind, DateTimeField, Expr as SqlExpr, FunctionArg,
    FunctionArgExpr, FunctionArguments, Spanned, UnaryOperator, Value as SqlValue,
};
use sqlparser::dialect::Dialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Location;

use std::cell::RefCell;

use super::aggregate::AggregateCollector;
use super::functions::{self, Function};
use super::{BinaryOp, Expr, ExprKind};
use crate::data::{DataType, Schema, Value, time};
use crate::diag::{closest, did_you_mean};

/// A problem in an expression, located by byte offsets into the expression text.
#[derive(Debug, Clone, PartialEq)]
pub struct ExprError {
    pub code: &'static str,
    pub message: String,
    /// Byte range in the SQL text; `None` when the whole expression is meant.
    pub span: Option<(usize, usize)>,
    pub help: Option<String>,
}

impl ExprError {
    pub(super) fn new(code: &'static str, message: impl Into<String>) -> ExprError {
        ExprError {
            code,
            message: message.into(),
            span: None,
            help: None,
        }
    }

    pub(super) fn at(mut self, span: Option<(usize, usize)>) -> ExprError {
        if self.span.is_none() {
            self.span = span;
        }
        self
    }

    pub(super) fn help(mut self, help: impl Into<String>) -> ExprError {
        self.help = Some(help.into());
        self
    }
}

/// Flink SQL lexical rules: backticks quote identifiers; strings are single-quoted with `''`.
/// Double quotes are read as identifiers so that `"abc"` gets a helpful error instead of a
/// silent meaning Flink would not share.
#[derive(Debug)]
pub(super) struct FlinkDialect;

impl Dialect for FlinkDialect {
    fn is_identifier_start(&self, ch: char) -> bool {
        ch.is_alphabetic() || ch == '_'
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        ch.is_alphanumeric() || ch == '_' || ch == '$'
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        ch == '`' || ch == '"'
    }

    fn supports_filter_during_aggregation(&self) -> bool {
        true
    }
}

/// Parses one SQL expression (the whole text must be one expression).
///
/// # Errors
/// A syntax error located in `sql`.
pub fn parse_sql(sql: &str) -> Result<SqlExpr, ExprError> {
    let dialect = FlinkDialect;
    let syntax = |e: sqlparser::parser::ParserError| {
        let text = e.to_string();
        let message = text
            .trim_start_matches("sql parser error: ")
            .split(" at Line: ")
            .next()
            .unwrap_or_default()
            .to_string();
        // The expression stopped early: point just past its end, where something is missing.
        let ended = message.ends_with("found: EOF");
        let message = if ended {
            let expected = message
                .trim_start_matches("Expected: ")
                .trim_end_matches("found: EOF")
                .trim_end_matches([',', ' ']);
            format!("the expression ends too early; expected {expected}")
        } else {
            message
        };
        let position = if ended {
            let end = sql.trim_end().len();
            Some((end, end))
        } else {
            location_in_message(&text).map(|loc| {
                let start = byte_offset(sql, loc);
                (start, next_token_end(sql, start))
            })
        };
        ExprError::new("sql-syntax", format!("SQL syntax error: {message}"))
            .at(position.or(Some((0, sql.len()))))
            .help(if ended {
                "something is missing at the end: an operand after an operator, or a closing `)`"
            } else {
                "expressions are Flink SQL: strings in 'single quotes', names with spaces or keywords in `backticks`"
            })
    };
    // sqlparser reads `==` as `=`; Flink SQL rejects it, so must we.
    if let Ok(tokens) = sqlparser::tokenizer::Tokenizer::new(&dialect, sql).tokenize_with_location()
        && let Some(double) = tokens
            .iter()
            .find(|t| t.token == sqlparser::tokenizer::Token::DoubleEq)
    {
        let start = byte_offset(sql, double.span.start);
        return Err(ExprError::new(
            "sql-syntax",
            "SQL syntax error: `==` is not an SQL operator",
        )
        .at(Some((start, start + 2)))
        .help("SQL compares with a single `=`"));
    }
    let mut parser = Parser::new(&dialect).try_with_sql(sql).map_err(syntax)?;
    let expr = parser.parse_expr().map_err(syntax)?;
    let next = parser.peek_token();
    if next.token != sqlparser::tokenizer::Token::EOF {
        let start = byte_offset(sql, next.span.start);
        let word = next.token.to_string().to_ascii_uppercase();
        let help = match word.as_str() {
            "AS" => {
                "one expression per setting; to name a result use the key (e.g. `total: SUM(x)`), not `AS`"
            }
            "THEN" | "ELSE" | "WHEN" => {
                "a value chosen by a condition is written `CASE WHEN cond THEN a ELSE b END`"
            }
            "=>" => "did you mean `>=`?",
            _ => {
                "one expression per setting: is an operator (`AND`, `+`, `=`…) or a comma missing before this?"
            }
        };
        return Err(ExprError::new(
            "sql-syntax",
            format!(
                "SQL syntax error: unexpected `{}` after the expression",
                next.token
            ),
        )
        .at(Some((start, sql.len())))
        .help(help));
    }
    Ok(expr)
}

/// sqlparser reports positions only inside the message text (`… at Line: 1, Column: 7`).
fn location_in_message(message: &str) -> Option<Location> {
    let rest = &message[message.find("Line: ")? + 6..];
    let (line, rest) = rest.split_once(", Column: ")?;
    let column: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some(Location {
        line: line.trim().parse().ok()?,
        column: column.parse().ok()?,
    })
}

/// Byte offset of a 1-based line/column (columns count characters) in `sql`.
pub(super) fn byte_offset(sql: &str, loc: Location) -> usize {
    if loc.line == 0 {
        return 0;
    }
    let mut offset = 0;
    for (i, line) in sql.split_inclusive('\n').enumerate() {
        if i + 1 == loc.line as usize {
            let col = (loc.column as usize).saturating_sub(1);
            return offset
                + line
                    .char_indices()
                    .nth(col)
                    .map_or(line.trim_end_matches('\n').len(), |(b, _)| b);
        }
        offset += line.len();
    }
    sql.len()
}

fn next_token_end(sql: &str, start: usize) -> usize {
    let rest = &sql[start.min(sql.len())..];
    let len = rest
        .char_indices()
        .find(|(i, c)| *i > 0 && (c.is_whitespace() || "(),".contains(*c)))
        .map_or(rest.len(), |(i, _)| i);
    start + len.max(1).min(rest.len())
}

/// Byte range of a parsed node in `sql`.
pub(super) fn span_of(sql: &str, node: &impl Spanned) -> Option<(usize, usize)> {
    let span = node.span();
    if span.start.line == 0 {
        return None;
    }
    let start = byte_offset(sql, span.start);
    let end = byte_offset(sql, span.end).max(start);
    Some((start, end))
}

/// Compiles a scalar expression over `schema`.
///
/// # Errors
/// Syntax errors, unknown columns and functions, type errors, aggregates outside a window.
pub fn compile(sql: &str, schema: &Schema) -> Result<Expr, ExprError> {
    let ast = parse_sql(sql)?;
    Compiler::scalar(sql, schema).expr(&ast)
}

/// Compiles a `group_by` entry: a field name or `expr AS name`. Returns the output name.
///
/// # Errors
/// As [`compile`]; also a computed key without a name.
pub fn compile_group_key(sql: &str, schema: &Schema) -> Result<(String, Expr), ExprError> {
    // `AS` is not part of an expression in sqlparser; split it off the end.
    let (body, alias) = split_alias(sql);
    let ast = parse_sql(body)?;
    let expr = Compiler::scalar(body, schema).expr(&ast)?;
    let name = match (alias, &ast) {
        (Some(alias), _) => alias.to_string(),
        (None, SqlExpr::Identifier(ident)) => ident.value.clone(),
        (None, _) => {
            return Err(ExprError::new(
                "unnamed-group-key",
                "a computed grouping key needs a name",
            )
            .at(Some((0, sql.len())))
            .help(format!("write `{} AS <name>`", sql.trim())));
        }
    };
    if matches!(expr.ty, Some(DataType::Array(_))) {
        return Err(ExprError::new(
            "type-mismatch",
            "cannot group by an ARRAY; explode it first",
        )
        .at(Some((0, body.len()))));
    }
    Ok((name, expr))
}

/// Splits `expr AS name` (case-insensitive `AS`, name optionally backticked).
pub(super) fn split_alias(sql: &str) -> (&str, Option<&str>) {
    let trimmed = sql.trim_end();
    let upper = trimmed.to_ascii_uppercase();
    if let Some(pos) = upper.rfind(" AS ") {
        let alias = trimmed[pos + 4..].trim().trim_matches('`');
        if !alias.is_empty() && alias.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return (&sql[..pos], Some(alias));
        }
    }
    (sql, None)
}

/// Names of the aggregate functions, which only windows may use.
pub(super) const AGGREGATE_NAMES: &[&str] = &[
    "COUNT",
    "SUM",
    "MIN",
    "MAX",
    "AVG",
    "FIRST_VALUE",
    "LAST_VALUE",
];

pub(super) struct Compiler<'a> {
    pub sql: &'a str,
    pub schema: &'a Schema,
    /// Set while compiling window aggregates: where aggregate calls go.
    pub aggregates: Option<&'a RefCell<AggregateCollector>>,
    /// Compiling the argument of an aggregate (so a nested aggregate is an error).
    pub in_aggregate: bool,
}

impl<'a> Compiler<'a> {
    pub(super) fn scalar(sql: &'a str, schema: &'a Schema) -> Compiler<'a> {
        Compiler {
            sql,
            schema,
            aggregates: None,
            in_aggregate: false,
        }
    }

    fn span(&self, node: &impl Spanned) -> Option<(usize, usize)> {
        span_of(self.sql, node)
    }

    pub(super) fn expr(&self, e: &SqlExpr) -> Result<Expr, ExprError> {
        self.expr_inner(e).map_err(|err| err.at(self.span(e)))
    }

    fn expr_inner(&self, e: &SqlExpr) -> Result<Expr, ExprError> {
        match e {
            SqlExpr::Identifier(ident) => self.column(ident),
            SqlExpr::CompoundIdentifier(parts) => Err(ExprError::new(
                "unsupported-sql",
                format!(
                    "`{}`: nested field access is not supported",
                    parts
                        .iter()
                        .map(|p| p.value.as_str())
                        .collect::<Vec<_>>()
                        .join(".")
                ),
            )
            .help(
                "declare flat fields in the source `schema`, or use JSON_VALUE on a STRING field",
            )),
            SqlExpr::Value(v) => self.literal(&v.value),
            SqlExpr::TypedString(ts) => self.typed_string(&ts.data_type, &ts.value.value),
            SqlExpr::Nested(inner) => self.expr(inner),
            SqlExpr::UnaryOp { op, expr } => self.unary(*op, expr),
            SqlExpr::BinaryOp { left, op, right } => self.binary(left, op, right),
            SqlExpr::IsNull(inner) | SqlExpr::IsNotNull(inner) => Ok(Expr {
                kind: ExprKind::IsNull {
                    expr: Box::new(self.expr(inner)?),
                    negated: matches!(e, SqlExpr::IsNotNull(_)),
                },
                ty: Some(DataType::Bool),
            }),
            SqlExpr::IsTrue(inner)
            | SqlExpr::IsNotTrue(inner)
            | SqlExpr::IsFalse(inner)
            | SqlExpr::IsNotFalse(inner) => {
                let inner_expr = self.boolean(inner)?;
                Ok(Expr {
                    kind: ExprKind::IsBool {
                        expr: Box::new(inner_expr),
                        value: matches!(e, SqlExpr::IsTrue(_) | SqlExpr::IsNotTrue(_)),
                        negated: matches!(e, SqlExpr::IsNotTrue(_) | SqlExpr::IsNotFalse(_)),
                    },
                    ty: Some(DataType::Bool),
                })
            }
            SqlExpr::IsDistinctFrom(l, r) | SqlExpr::IsNotDistinctFrom(l, r) => {
                let (left, right) = (self.expr(l)?, self.expr(r)?);
                self.comparable(&left, &right, "IS DISTINCT FROM", e)?;
                Ok(Expr {
                    kind: ExprKind::IsDistinct {
                        left: Box::new(left),
                        right: Box::new(right),
                        negated: matches!(e, SqlExpr::IsNotDistinctFrom(..)),
                    },
                    ty: Some(DataType::Bool),
                })
            }
            SqlExpr::InList {
                expr,
                list,
                negated,
            } => {
                let target = self.expr(expr)?;
                let mut items = Vec::with_capacity(list.len());
                for item in list {
                    let compiled = self.coerce_literal(self.expr(item)?, &target);
                    self.comparable(&target, &compiled, "IN", item)?;
                    items.push(compiled);
                }
                Ok(Expr {
                    kind: ExprKind::InList {
                        expr: Box::new(target),
                        list: items,
                        negated: *negated,
                    },
                    ty: Some(DataType::Bool),
                })
            }
            SqlExpr::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let target = self.expr(expr)?;
                let low_e = self.coerce_literal(self.expr(low)?, &target);
                let high_e = self.coerce_literal(self.expr(high)?, &target);
                self.comparable(&target, &low_e, "BETWEEN", low)?;
                self.comparable(&target, &high_e, "BETWEEN", high)?;
                Ok(Expr {
                    kind: ExprKind::Between {
                        expr: Box::new(target),
                        low: Box::new(low_e),
                        high: Box::new(high_e),
                        negated: *negated,
                    },
                    ty: Some(DataType::Bool),
                })
            }
            SqlExpr::Like {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            } => {
                if *any {
                    return Err(ExprError::new(
                        "unsupported-sql",
                        "LIKE ANY is not supported",
                    ));
                }
                let target = self.string_operand(expr, "LIKE")?;
                let pattern_e = self.string_operand(pattern, "LIKE")?;
                let escape = match escape_char.as_deref() {
                    None => None,
                    Some(SqlExpr::Value(v)) => match &v.value {
                        SqlValue::SingleQuotedString(s) if s.chars().count() == 1 => {
                            s.chars().next()
                        }
                        _ => {
                            return Err(ExprError::new(
                                "type-mismatch",
                                "the LIKE escape must be one character in single quotes",
                            ));
                        }
                    },
                    Some(_) => {
                        return Err(ExprError::new(
                            "type-mismatch",
                            "the LIKE escape must be one character in single quotes",
                        ));
                    }
                };
                if let ExprKind::Literal(Value::Str(p)) = &pattern_e.kind {
                    functions::check_like_pattern(p, escape).map_err(|m| {
                        ExprError::new("bad-argument", m).at(self.span(pattern.as_ref()))
                    })?;
                }
                Ok(Expr {
                    kind: ExprKind::Like {
                        expr: Box::new(target),
                        pattern: Box::new(pattern_e),
                        escape,
                        negated: *negated,
                    },
                    ty: Some(DataType::Bool),
                })
            }
            SqlExpr::ILike { .. } => {
                Err(ExprError::new("unsupported-sql", "Flink SQL has no ILIKE")
                    .help("write `LOWER(x) LIKE 'pattern'`"))
            }
            SqlExpr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => self.case(operand.as_deref(), conditions, else_result.as_deref()),
            SqlExpr::Cast {
                kind,
                expr,
                data_type,
                ..
            } => {
                let inner = self.expr(expr)?;
                let to = sql_type(data_type)
                    .map_err(|m| ExprError::new("unsupported-type", m).at(self.span(e)))?;
                if let Some(from) = &inner.ty {
                    functions::cast_type_rule(from, &to)
                        .map_err(|m| ExprError::new("type-mismatch", m))?;
                }
                Ok(Expr {
                    kind: ExprKind::Cast {
                        expr: Box::new(inner),
                        to: to.clone(),
                        try_cast: matches!(kind, CastKind::TryCast | CastKind::SafeCast),
                    },
                    ty: Some(to),
                })
            }
            SqlExpr::Function(func) => self.function(func),
            SqlExpr::Extract { field, expr, .. } => {
                let unit = datetime_unit(field)?;
                self.call_named(
                    "EXTRACT_FIELD",
                    vec![unit_literal(&unit), self.expr(expr)?],
                    e,
                )
            }
            SqlExpr::Floor { expr, field } | SqlExpr::Ceil { expr, field } => {
                let is_floor = matches!(e, SqlExpr::Floor { .. });
                match field {
                    CeilFloorKind::DateTimeField(DateTimeField::NoDateTime) => self.call_named(
                        if is_floor { "FLOOR" } else { "CEIL" },
                        vec![self.expr(expr)?],
                        e,
                    ),
                    CeilFloorKind::DateTimeField(unit) => {
                        let unit = datetime_unit(unit)?;
                        self.call_named(
                            if is_floor { "FLOOR_TS" } else { "CEIL_TS" },
                            vec![self.expr(expr)?, unit_literal(&unit)],
                            e,
                        )
                    }
                    CeilFloorKind::Scale(_) => Err(ExprError::new(
                        "unsupported-sql",
                        "FLOOR/CEIL with a scale is not Flink SQL",
                    )),
                }
            }
            SqlExpr::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![self.expr(expr)?];
                args.push(match substring_from {
                    Some(from) => self.expr(from)?,
                    None => Expr::literal(Value::Int(1), Some(DataType::Int)),
                });
                if let Some(len) = substring_for {
                    args.push(self.expr(len)?);
                }
                self.call_named("SUBSTRING", args, e)
            }
            SqlExpr::Position { expr, r#in } => {
                self.call_named("POSITION", vec![self.expr(expr)?, self.expr(r#in)?], e)
            }
            SqlExpr::Trim {
                trim_where,
                trim_what,
                expr,
                ..
            } => {
                let target = self.expr(expr)?;
                let what = match trim_what {
                    Some(w) => self.expr(w)?,
                    None => Expr::literal(Value::Str(" ".into()), Some(DataType::String)),
                };
                let name = match trim_where {
                    Some(ast::TrimWhereField::Leading) => "TRIM_LEADING",
                    Some(ast::TrimWhereField::Trailing) => "TRIM_TRAILING",
                    _ => "TRIM_BOTH",
                };
                self.call_named(name, vec![target, what], e)
            }
            SqlExpr::Interval(_) => Err(ExprError::new(
                "unsupported-sql",
                "an INTERVAL can only be added to or subtracted from a timestamp",
            )
            .help(
                "e.g. `ts + INTERVAL '5' MINUTE`; for differences use TIMESTAMPDIFF(unit, a, b)",
            )),
            other => Err(ExprError::new(
                "unsupported-sql",
                format!("`{other}` is not supported in streamctl expressions"),
            )
            .help("see docs/expressions.md for the supported SQL")),
        }
    }

    fn column(&self, ident: &ast::Ident) -> Result<Expr, ExprError> {
        let name = &ident.value;
        if let Some(i) = self.schema.index_of(name) {
            let field = &self.schema.fields[i];
            return Ok(Expr::column(i, field.data_type.clone()));
        }
        if let Some(collector) = self.aggregates
            && collector.borrow().input.index_of(name).is_some()
        {
            return Err(ExprError::new(
                "not-aggregated",
                format!("`{name}` is neither a grouping key nor inside an aggregate function"),
            )
            .help(format!(
                "aggregate it (e.g. `MAX({name})`) or add it to `group_by`"
            )));
        }
        let mut err = if ident.quote_style == Some('"') {
            ExprError::new(
                "unknown-field",
                format!("unknown field \"{name}\" (double quotes name a field in SQL)"),
            )
        } else {
            ExprError::new("unknown-field", format!("unknown field `{name}`"))
        };
        if ident.quote_style == Some('"') {
            err = err.help(format!(
                "string literals use single quotes in SQL: '{name}'; double quotes name fields"
            ));
        } else if let Some(c) = closest(name, self.schema.names()) {
            err = err.help(format!("did you mean `{c}`?"));
        } else if let Some(collector) = self.aggregates
            && let Some(c) = closest(name, collector.borrow().input.names())
        {
            // In a window output: the input's fields are there inside aggregates.
            err = err.help(format!(
                "did you mean `{c}` (inside an aggregate, e.g. `MAX({c})`)?"
            ));
        } else {
            err = err.help(format!(
                "fields here: {}",
                crate::diag::list_names(&self.schema.names())
            ));
        }
        Err(err)
    }

    fn literal(&self, v: &SqlValue) -> Result<Expr, ExprError> {
        Ok(match v {
            SqlValue::Number(n, _) => match n.parse::<i64>() {
                Ok(i) => Expr::literal(Value::Int(i), Some(DataType::Int)),
                Err(_) => match n.parse::<f64>() {
                    Ok(f) => Expr::literal(Value::Double(f), Some(DataType::Double)),
                    Err(_) => {
                        return Err(ExprError::new("bad-literal", format!("bad number `{n}`")));
                    }
                },
            },
            SqlValue::SingleQuotedString(s) => {
                Expr::literal(Value::Str(s.clone().into()), Some(DataType::String))
            }
            SqlValue::Boolean(b) => Expr::literal(Value::Bool(*b), Some(DataType::Bool)),
            SqlValue::Null => Expr::literal(Value::Null, None),
            SqlValue::DoubleQuotedString(s) => {
                return Err(ExprError::new(
                    "bad-literal",
                    format!("\"{s}\" is not a string literal in SQL"),
                )
                .help(format!("write '{s}' in single quotes")));
            }
            other => {
                return Err(ExprError::new(
                    "unsupported-sql",
                    format!("literal `{other}` is not supported"),
                ));
            }
        })
    }

    fn typed_string(&self, data_type: &ast::DataType, value: &SqlValue) -> Result<Expr, ExprError> {
        let text = match value {
            SqlValue::SingleQuotedString(s) => s.as_str(),
            _ => return Err(ExprError::new("bad-literal", "expected a quoted literal")),
        };
        match sql_type(data_type) {
            Ok(DataType::Timestamp) => match time::parse_timestamp(text) {
                Some(ms) => Ok(Expr::literal(
                    Value::Timestamp(ms),
                    Some(DataType::Timestamp),
                )),
                None => Err(
                    ExprError::new("bad-literal", format!("'{text}' is not a timestamp"))
                        .help("write TIMESTAMP 'yyyy-MM-dd HH:mm:ss[.SSS]'"),
                ),
            },
            Ok(other) => {
                let converted = functions::cast(&Value::Str(text.into()), &other)
                    .map_err(|m| ExprError::new("bad-literal", m))?;
                Ok(Expr::literal(converted, Some(other)))
            }
            Err(m) => Err(ExprError::new("unsupported-type", m)),
        }
    }

    fn boolean(&self, e: &SqlExpr) -> Result<Expr, ExprError> {
        let compiled = self.expr(e)?;
        match &compiled.ty {
            Some(DataType::Bool) | None => Ok(compiled),
            Some(other) => Err(ExprError::new(
                "type-mismatch",
                format!("expected a BOOLEAN condition, found {other}"),
            )
            .at(self.span(e))
            .help("compare it, e.g. `x > 0` or `x IS NOT NULL`")),
        }
    }

    fn string_operand(&self, e: &SqlExpr, op: &str) -> Result<Expr, ExprError> {
        let compiled = self.expr(e)?;
        match &compiled.ty {
            Some(DataType::String) | None => Ok(compiled),
            Some(other) => Err(ExprError::new(
                "type-mismatch",
                format!("{op} needs STRING operands, found {other}"),
            )
            .at(self.span(e))
            .help("convert with CAST(x AS STRING)")),
        }
    }

    fn unary(&self, op: UnaryOperator, inner: &SqlExpr) -> Result<Expr, ExprError> {
        match op {
            UnaryOperator::Not => Ok(Expr {
                kind: ExprKind::Not(Box::new(self.boolean(inner)?)),
                ty: Some(DataType::Bool),
            }),
            UnaryOperator::Minus | UnaryOperator::Plus => {
                let compiled = self.expr(inner)?;
                match &compiled.ty {
                    Some(t) if !t.is_numeric() => Err(ExprError::new(
                        "type-mismatch",
                        format!("cannot negate a {t}"),
                    )
                    .at(self.span(inner))),
                    _ if op == UnaryOperator::Plus => Ok(compiled),
                    _ => {
                        // Fold negative literals so `-5` is a literal (used by IN lists etc.).
                        if let ExprKind::Literal(v) = &compiled.kind {
                            match v {
                                Value::Int(i) => {
                                    return Ok(Expr::literal(
                                        Value::Int(i.wrapping_neg()),
                                        compiled.ty,
                                    ));
                                }
                                Value::Double(d) => {
                                    return Ok(Expr::literal(Value::Double(-d), compiled.ty));
                                }
                                _ => {}
                            }
                        }
                        let ty = compiled.ty.clone();
                        Ok(Expr {
                            kind: ExprKind::Negate(Box::new(compiled)),
                            ty,
                        })
                    }
                }
            }
            other => Err(ExprError::new(
                "unsupported-sql",
                format!("operator `{other}` is not supported"),
            )),
        }
    }

    fn binary(&self, l: &SqlExpr, op: &BinaryOperator, r: &SqlExpr) -> Result<Expr, ExprError> {
        let op = match op {
            BinaryOperator::Plus => BinaryOp::Add,
            BinaryOperator::Minus => BinaryOp::Subtract,
            BinaryOperator::Multiply => BinaryOp::Multiply,
            BinaryOperator::Divide => BinaryOp::Divide,
            BinaryOperator::Modulo => BinaryOp::Modulo,
            BinaryOperator::Eq => BinaryOp::Eq,
            BinaryOperator::NotEq => BinaryOp::NotEq,
            BinaryOperator::Lt => BinaryOp::Lt,
            BinaryOperator::LtEq => BinaryOp::LtEq,
            BinaryOperator::Gt => BinaryOp::Gt,
            BinaryOperator::GtEq => BinaryOp::GtEq,
            BinaryOperator::And => BinaryOp::And,
            BinaryOperator::Or => BinaryOp::Or,
            BinaryOperator::StringConcat => BinaryOp::Concat,
            other => {
                return Err(ExprError::new(
                    "unsupported-sql",
                    format!("operator `{other}` is not supported"),
                ));
            }
        };
        // Timestamp ± INTERVAL is TIMESTAMPADD.
        if matches!(op, BinaryOp::Add | BinaryOp::Subtract) {
            if let SqlExpr::Interval(interval) = r {
                return self.add_interval(l, interval, op == BinaryOp::Subtract);
            }
            if let (SqlExpr::Interval(interval), BinaryOp::Add) = (l, op) {
                return self.add_interval(r, interval, false);
            }
        }
        match op {
            BinaryOp::And | BinaryOp::Or => {
                let (left, right) = (self.boolean(l)?, self.boolean(r)?);
                Ok(binary_expr(op, left, right, DataType::Bool))
            }
            BinaryOp::Concat => {
                let left = self.string_operand(l, "||")?;
                let right = self.string_operand(r, "||")?;
                Ok(binary_expr(op, left, right, DataType::String))
            }
            _ if op.is_comparison() => {
                let left = self.expr(l)?;
                let right = self.coerce_literal(self.expr(r)?, &left);
                let left = self.coerce_literal(left, &right);
                self.comparable(&left, &right, op.symbol(), r)?;
                Ok(binary_expr(op, left, right, DataType::Bool))
            }
            _ => {
                let (left, right) = (self.expr(l)?, self.expr(r)?);
                let ty = match (&left.ty, &right.ty) {
                    (Some(a), Some(b)) if a.is_numeric() && b.is_numeric() => {
                        if *a == DataType::Double || *b == DataType::Double {
                            DataType::Double
                        } else {
                            DataType::Int
                        }
                    }
                    (Some(a), None) | (None, Some(a)) if a.is_numeric() => a.clone(),
                    (None, None) => DataType::Int,
                    (Some(DataType::Timestamp), _) | (_, Some(DataType::Timestamp)) => {
                        return Err(ExprError::new(
                            "type-mismatch",
                            format!("`{}` on a TIMESTAMP needs an INTERVAL", op.symbol()),
                        )
                        .help("write `ts + INTERVAL '5' MINUTE`, or TIMESTAMPDIFF(SECOND, a, b) for a difference"));
                    }
                    (Some(a), Some(b)) => {
                        let bad = if a.is_numeric() { (b, r) } else { (a, l) };
                        return Err(ExprError::new(
                            "type-mismatch",
                            format!(
                                "`{}` needs numbers, found {} {} {}",
                                op.symbol(),
                                a,
                                op.symbol(),
                                b
                            ),
                        )
                        .at(self.span(bad.1))
                        .help(
                            if *a == DataType::String
                                && *b == DataType::String
                                && op == BinaryOp::Add
                            {
                                "to join strings write `||` instead of `+`, e.g. `a || '-' || b`"
                            } else if *bad.0 == DataType::String {
                                "convert with CAST(x AS BIGINT) or CAST(x AS DOUBLE)"
                            } else {
                                "arithmetic works on BIGINT and DOUBLE"
                            },
                        ));
                    }
                    (Some(a), None) | (None, Some(a)) => {
                        return Err(ExprError::new(
                            "type-mismatch",
                            format!("`{}` needs numbers, found {a}", op.symbol()),
                        ));
                    }
                };
                Ok(binary_expr(op, left, right, ty))
            }
        }
    }

    fn add_interval(
        &self,
        ts: &SqlExpr,
        interval: &ast::Interval,
        subtract: bool,
    ) -> Result<Expr, ExprError> {
        let base = self.expr(ts)?;
        if !matches!(base.ty, Some(DataType::Timestamp) | None) {
            return Err(ExprError::new(
                "type-mismatch",
                format!(
                    "an INTERVAL can only be added to a TIMESTAMP, not {}",
                    base.ty
                        .as_ref()
                        .map_or("NULL".to_string(), |t| t.to_string())
                ),
            )
            .at(self.span(ts))
            .help("for epoch-millisecond fields, convert first: TO_TIMESTAMP_LTZ(ts, 3)"));
        }
        let amount_text = match interval.value.as_ref() {
            SqlExpr::Value(v) => match &v.value {
                SqlValue::SingleQuotedString(s) | SqlValue::Number(s, _) => s.clone(),
                _ => String::new(),
            },
            _ => String::new(),
        };
        let amount: i64 = amount_text.trim().parse().map_err(|_| {
            ExprError::new(
                "bad-literal",
                format!("INTERVAL '{amount_text}' must be a whole number of one unit"),
            )
            .help("write e.g. INTERVAL '90' MINUTE")
        })?;
        let unit = match &interval.leading_field {
            Some(field) if interval.last_field.is_none() => datetime_unit(field)?,
            _ => {
                return Err(ExprError::new(
                    "unsupported-sql",
                    "only single-unit intervals are supported",
                )
                .help("write e.g. INTERVAL '90' MINUTE"));
            }
        };
        let amount = if subtract {
            amount.wrapping_neg()
        } else {
            amount
        };
        self.call_named(
            "TIMESTAMPADD",
            vec![
                unit_literal(&unit),
                Expr::literal(Value::Int(amount), Some(DataType::Int)),
                base,
            ],
            ts,
        )
    }

    /// A string literal compared with a TIMESTAMP is read as a timestamp (as Flink does).
    fn coerce_literal(&self, e: Expr, other: &Expr) -> Expr {
        if other.ty == Some(DataType::Timestamp)
            && let ExprKind::Literal(Value::Str(s)) = &e.kind
            && let Some(ms) = time::parse_timestamp(s)
        {
            return Expr::literal(Value::Timestamp(ms), Some(DataType::Timestamp));
        }
        e
    }

    fn comparable(&self, a: &Expr, b: &Expr, what: &str, at: &SqlExpr) -> Result<(), ExprError> {
        match (&a.ty, &b.ty) {
            (None, _) | (_, None) => Ok(()),
            (Some(x), Some(y)) if x == y || (x.is_numeric() && y.is_numeric()) => {
                if matches!(x, DataType::Array(_)) {
                    Err(ExprError::new("type-mismatch", "arrays cannot be compared"))
                } else {
                    Ok(())
                }
            }
            (Some(x), Some(y)) => {
                let number_literal = matches!(b.kind, ExprKind::Literal(_)) && y.is_numeric();
                let help = if (*x == DataType::Timestamp || *y == DataType::Timestamp)
                    && (x.is_numeric() || y.is_numeric())
                {
                    "epoch numbers are BIGINT: compare with TO_TIMESTAMP_LTZ(ms, 3), or compare numbers"
                        .to_string()
                } else if *x == DataType::String && number_literal {
                    let text = self.span(at).map_or("…", |(s, e)| self.sql[s..e].trim());
                    format!("the other side is a STRING: quote the value, '{text}'")
                } else {
                    "convert one side with CAST(… AS …)".to_string()
                };
                Err(ExprError::new(
                    "type-mismatch",
                    format!("cannot compare {x} with {y} in {what}"),
                )
                .at(self.span(at))
                .help(help))
            }
        }
    }

    fn case(
        &self,
        operand: Option<&SqlExpr>,
        conditions: &[ast::CaseWhen],
        else_result: Option<&SqlExpr>,
    ) -> Result<Expr, ExprError> {
        let operand_e = operand.map(|o| self.expr(o)).transpose()?;
        let mut whens = Vec::with_capacity(conditions.len());
        let mut result_types: Vec<(Option<DataType>, &SqlExpr)> = Vec::new();
        for cw in conditions {
            let condition = match &operand_e {
                Some(op) => {
                    let value = self.coerce_literal(self.expr(&cw.condition)?, op);
                    self.comparable(op, &value, "CASE", &cw.condition)?;
                    value
                }
                None => self.boolean(&cw.condition)?,
            };
            let result = self.expr(&cw.result)?;
            result_types.push((result.ty.clone(), &cw.result));
            whens.push((condition, result));
        }
        let otherwise = else_result.map(|e| self.expr(e)).transpose()?;
        if let (Some(o), Some(e)) = (&otherwise, else_result) {
            result_types.push((o.ty.clone(), e));
        }
        let mut ty: Option<DataType> = None;
        for (t, at) in &result_types {
            ty = match (ty, t) {
                (None, t) => t.clone(),
                (Some(a), None) => Some(a),
                (Some(a), Some(b)) if a == *b => Some(a),
                (Some(a), Some(b)) if a.is_numeric() && b.is_numeric() => Some(DataType::Double),
                (Some(a), Some(b)) => {
                    return Err(ExprError::new(
                        "type-mismatch",
                        format!("CASE branches return different types: {a} and {b}"),
                    )
                    .at(self.span(*at))
                    .help("make every THEN/ELSE the same type, e.g. with CAST"));
                }
            };
        }
        Ok(Expr {
            kind: ExprKind::Case {
                operand: operand_e.map(Box::new),
                whens,
                otherwise: otherwise.map(Box::new),
            },
            ty,
        })
    }

    fn function(&self, func: &ast::Function) -> Result<Expr, ExprError> {
        let name = func.name.to_string().to_ascii_uppercase();
        if AGGREGATE_NAMES.contains(&name.as_str()) {
            return match self.aggregates {
                Some(collector) => collector.borrow_mut().aggregate(self.sql, func, &name),
                None if self.in_aggregate => Err(ExprError::new(
                    "nested-aggregate",
                    format!("aggregate function {name} cannot be nested inside another aggregate"),
                )
                .help("aggregate input fields directly; to aggregate aggregates, add a second window that reads this one")),
                None => Err(ExprError::new(
                    "aggregate-outside-window",
                    format!("aggregate function {name} is only allowed in a window's `aggregates`"),
                )
                .help("aggregate over time with a `type: window` transform")),
            };
        }
        if func.filter.is_some() || func.over.is_some() {
            return Err(ExprError::new(
                "unsupported-sql",
                format!("{name}: FILTER and OVER clauses are not supported"),
            ));
        }
        if functions::lookup(&name).is_none() {
            // Before looking at the arguments, so `COUNTT(*)` is a typo, not a misplaced `*`.
            return Err(self.unknown_function(&name, &SqlExpr::Function(func.clone())));
        }
        let raw_args = function_args(func)?;
        // TIMESTAMPADD(HOUR, …) / TIMESTAMPDIFF(HOUR, …) take a unit keyword first.
        let takes_unit = matches!(name.as_str(), "TIMESTAMPADD" | "TIMESTAMPDIFF");
        let mut args = Vec::with_capacity(raw_args.len());
        for (i, arg) in raw_args.iter().enumerate() {
            match arg {
                Some(SqlExpr::Identifier(ident)) if takes_unit && i == 0 => {
                    args.push(unit_literal(&ident.value.to_ascii_uppercase()));
                }
                Some(e) => args.push(self.expr(e)?),
                None => {
                    return Err(ExprError::new(
                        "unsupported-sql",
                        format!("{name}(*) is not valid; only COUNT(*) takes `*`"),
                    ));
                }
            }
        }
        self.call_named(&name, args, &SqlExpr::Function(func.clone()))
    }

    pub(super) fn call_named(
        &self,
        name: &str,
        args: Vec<Expr>,
        at: &SqlExpr,
    ) -> Result<Expr, ExprError> {
        let Some(function) = functions::lookup(name) else {
            return Err(self.unknown_function(name, at));
        };
        call(function, args).map_err(|e| e.at(self.span(at)))
    }

    fn unknown_function(&self, name: &str, at: &SqlExpr) -> ExprError {
        let names = functions::all()
            .iter()
            .map(|f| f.name)
            .chain(AGGREGATE_NAMES.iter().copied());
        let help = did_you_mean(name, names)
            .unwrap_or_else(|| "see docs/expressions.md for the supported functions".to_string());
        ExprError::new("unknown-function", format!("unknown function {name}"))
            .help(help)
            .at(self.span(at))
    }
}

/// Type-checks a call of a library function, and checks its constant arguments (units,
/// regular expressions, date patterns, JSON paths) now rather than on every record.
pub(super) fn call(function: &'static Function, args: Vec<Expr>) -> Result<Expr, ExprError> {
    let types: Vec<Option<DataType>> = args.iter().map(|a| a.ty.clone()).collect();
    let ty = (function.return_type)(&types).map_err(|message| {
        ExprError::new("type-mismatch", message).help(format!("usage: {}", function.signature))
    })?;
    let literals: Vec<Option<&Value<'_>>> = args
        .iter()
        .map(|a| match &a.kind {
            ExprKind::Literal(v) => Some(v),
            _ => None,
        })
        .collect();
    functions::check_literal_args(function.name, &literals).map_err(|message| {
        ExprError::new("bad-argument", message).help(format!("usage: {}", function.signature))
    })?;
    Ok(Expr {
        kind: ExprKind::Call { function, args },
        ty: Some(ty),
    })
}

fn binary_expr(op: BinaryOp, left: Expr, right: Expr, ty: DataType) -> Expr {
    Expr {
        kind: ExprKind::Binary(op, Box::new(left), Box::new(right)),
        ty: Some(ty),
    }
}

/// The positional arguments of a call; `None` stands for `*`.
pub(super) fn function_args(func: &ast::Function) -> Result<Vec<Option<&SqlExpr>>, ExprError> {
    match &func.args {
        FunctionArguments::None => Ok(Vec::new()),
        FunctionArguments::Subquery(_) => Err(ExprError::new(
            "unsupported-sql",
            "subqueries are not supported",
        )),
        FunctionArguments::List(list) => list
            .args
            .iter()
            .map(|arg| match arg {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Ok(Some(e)),
                FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => Ok(None),
                _ => Err(ExprError::new(
                    "unsupported-sql",
                    "named and qualified arguments are not supported",
                )),
            })
            .collect(),
    }
}

fn unit_literal(unit: &str) -> Expr {
    Expr::literal(Value::Str(unit.to_string().into()), Some(DataType::String))
}

fn datetime_unit(field: &DateTimeField) -> Result<String, ExprError> {
    let unit = match field {
        DateTimeField::Year | DateTimeField::Years => "YEAR",
        DateTimeField::Quarter => "QUARTER",
        DateTimeField::Month | DateTimeField::Months => "MONTH",
        DateTimeField::Week(_) | DateTimeField::Weeks => "WEEK",
        DateTimeField::Day | DateTimeField::Days => "DAY",
        DateTimeField::DayOfWeek | DateTimeField::Dow => "DOW",
        DateTimeField::DayOfYear | DateTimeField::Doy => "DOY",
        DateTimeField::Hour | DateTimeField::Hours => "HOUR",
        DateTimeField::Minute | DateTimeField::Minutes => "MINUTE",
        DateTimeField::Second | DateTimeField::Seconds => "SECOND",
        DateTimeField::Millisecond | DateTimeField::Milliseconds => "MILLISECOND",
        DateTimeField::Epoch => "EPOCH",
        other => {
            return Err(ExprError::new(
                "unsupported-sql",
                format!("time unit {other} is not supported"),
            ));
        }
    };
    Ok(unit.to_string())
}

/// Maps a SQL type name to ours. DECIMAL is approximated by DOUBLE.
pub(super) fn sql_type(t: &ast::DataType) -> Result<DataType, String> {
    use ast::DataType as T;
    Ok(match t {
        T::BigInt(_) | T::Int(_) | T::Integer(_) | T::SmallInt(_) | T::TinyInt(_) => DataType::Int,
        T::Double(_)
        | T::DoublePrecision
        | T::Float(_)
        | T::Real
        | T::Decimal(_)
        | T::Numeric(_)
        | T::Dec(_) => DataType::Double,
        T::String(_)
        | T::Varchar(_)
        | T::Char(_)
        | T::Text
        | T::CharVarying(_)
        | T::Character(_) => DataType::String,
        T::Boolean | T::Bool => DataType::Bool,
        T::Timestamp(_, _) | T::TimestampNtz(_) => DataType::Timestamp,
        T::Custom(name, _) if name.to_string().eq_ignore_ascii_case("TIMESTAMP_LTZ") => {
            DataType::Timestamp
        }
        T::Array(ast::ArrayElemTypeDef::AngleBracket(inner)) => {
            DataType::Array(Box::new(sql_type(inner)?))
        }
        other => {
            return Err(format!(
                "type {other} is not supported; use BIGINT, DOUBLE, STRING, BOOLEAN or TIMESTAMP(3)"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Field;

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("movieId", DataType::String),
            Field::new("rating", DataType::Int),
            Field::new("price", DataType::Double),
            Field::new("ts", DataType::Timestamp),
        ])
    }

    fn error(sql: &str) -> ExprError {
        compile(sql, &schema()).expect_err(sql)
    }

    #[test]
    fn types_follow_flink() {
        let s = schema();
        assert_eq!(compile("rating + 1", &s).unwrap().ty, Some(DataType::Int));
        assert_eq!(
            compile("rating / 2.0", &s).unwrap().ty,
            Some(DataType::Double)
        );
        assert_eq!(
            compile("rating > 3 AND price < 10", &s).unwrap().ty,
            Some(DataType::Bool)
        );
        assert_eq!(
            compile("CASE WHEN rating > 3 THEN 'good' ELSE 'bad' END", &s)
                .unwrap()
                .ty,
            Some(DataType::String)
        );
        assert_eq!(
            compile("ts > '2019-01-01 00:00:00'", &s).unwrap().ty,
            Some(DataType::Bool)
        );
    }

    #[test]
    fn unknown_fields_suggest_the_closest_name() {
        let e = error("movieid = 'x'");
        assert_eq!(e.code, "unknown-field");
        assert_eq!(e.span, Some((0, 7)));
        assert_eq!(e.help.as_deref(), Some("did you mean `movieId`?"));
    }

    #[test]
    fn double_quotes_hint_at_single_quotes() {
        let e = error("movieId = \"abc\"");
        assert!(e.help.clone().unwrap().contains("single quotes"), "{e:?}");
    }

    #[test]
    fn type_errors_point_at_the_operand() {
        let e = error("rating + movieId");
        assert_eq!(e.code, "type-mismatch");
        assert_eq!(e.span, Some((9, 16)));
    }

    #[test]
    fn aggregates_are_rejected_outside_windows() {
        assert_eq!(error("COUNT(*) > 1").code, "aggregate-outside-window");
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let e = error("rating >");
        assert_eq!(e.code, "sql-syntax");
        assert!(e.span.is_some());
        let e = error("rating > 1 extra");
        assert_eq!(e.code, "sql-syntax");
        assert_eq!(e.span, Some((11, 16)));
    }

    #[test]
    fn group_keys_take_aliases() {
        let (name, e) = compile_group_key("rating % 10 AS bucket", &schema()).unwrap();
        assert_eq!(name, "bucket");
        assert_eq!(e.ty, Some(DataType::Int));
        assert_eq!(
            compile_group_key("movieId", &schema()).unwrap().0,
            "movieId"
        );
        assert_eq!(
            compile_group_key("rating % 10", &schema())
                .unwrap_err()
                .code,
            "unnamed-group-key"
        );
    }
}
