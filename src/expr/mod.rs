//! SQL expressions: parsed with `sqlparser`, type-checked against a stream's schema into a
//! typed [`Expr`] tree, evaluated row by row over batches (NULLs with SQL's three-valued logic).
//!
//! One language serves both engines: the embedded engine evaluates [`Expr`]s; the Flink
//! translation prints the same user text. So the compiler accepts only what Flink SQL 1.20
//! accepts with the same meaning, and rejects the rest with a diagnostic.

mod aggregate;
mod compile;
mod eval;
pub mod functions;

pub use aggregate::{AggCall, AggFunc, AggregateExprs, compile_aggregates};
pub use compile::{ExprError, compile, compile_group_key, parse_sql};
pub use eval::{EvalError, eval, eval_column, eval_predicate};

use std::fmt;

use crate::data::{DataType, OwnedValue};

/// A type-checked expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    /// The result type; `None` only for an untyped `NULL` literal.
    pub ty: Option<DataType>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Literal(OwnedValue),
    /// A column of the input, by index.
    Column(usize),
    Not(Box<Expr>),
    Negate(Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    IsNull {
        expr: Box<Expr>,
        negated: bool,
    },
    /// `IS [NOT] TRUE` / `IS [NOT] FALSE`: never NULL.
    IsBool {
        expr: Box<Expr>,
        value: bool,
        negated: bool,
    },
    /// `IS [NOT] DISTINCT FROM`: equality where NULL equals NULL.
    IsDistinct {
        left: Box<Expr>,
        right: Box<Expr>,
        negated: bool,
    },
    InList {
        expr: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    Between {
        expr: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    Like {
        expr: Box<Expr>,
        pattern: Box<Expr>,
        escape: Option<char>,
        negated: bool,
    },
    Case {
        /// `CASE x WHEN v …` compares `x = v`; without it each WHEN is a condition.
        operand: Option<Box<Expr>>,
        whens: Vec<(Expr, Expr)>,
        otherwise: Option<Box<Expr>>,
    },
    Cast {
        expr: Box<Expr>,
        to: DataType,
        /// `TRY_CAST`: NULL instead of an error when the value does not convert.
        try_cast: bool,
    },
    Call {
        function: &'static functions::Function,
        args: Vec<Expr>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Subtract,
    Multiply,
    Divide,
    Modulo,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    And,
    Or,
    Concat,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Subtract => "-",
            BinaryOp::Multiply => "*",
            BinaryOp::Divide => "/",
            BinaryOp::Modulo => "%",
            BinaryOp::Eq => "=",
            BinaryOp::NotEq => "<>",
            BinaryOp::Lt => "<",
            BinaryOp::LtEq => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::GtEq => ">=",
            BinaryOp::And => "AND",
            BinaryOp::Or => "OR",
            BinaryOp::Concat => "||",
        }
    }

    fn is_comparison(self) -> bool {
        matches!(
            self,
            BinaryOp::Eq
                | BinaryOp::NotEq
                | BinaryOp::Lt
                | BinaryOp::LtEq
                | BinaryOp::Gt
                | BinaryOp::GtEq
        )
    }
}

impl Expr {
    pub fn literal(value: OwnedValue, ty: Option<DataType>) -> Expr {
        Expr {
            kind: ExprKind::Literal(value),
            ty,
        }
    }

    pub fn column(index: usize, ty: DataType) -> Expr {
        Expr {
            kind: ExprKind::Column(index),
            ty: Some(ty),
        }
    }

    /// The column this expression reads directly, if it is a plain column reference.
    pub fn as_column(&self) -> Option<usize> {
        match self.kind {
            ExprKind::Column(i) => Some(i),
            _ => None,
        }
    }

    /// Every input column the expression reads.
    pub fn columns(&self, out: &mut Vec<usize>) {
        self.visit(&mut |e| {
            if let ExprKind::Column(i) = e.kind {
                out.push(i);
            }
        });
    }

    fn visit(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        match &self.kind {
            ExprKind::Literal(_) | ExprKind::Column(_) => {}
            ExprKind::Not(e) | ExprKind::Negate(e) => e.visit(f),
            ExprKind::IsNull { expr, .. } | ExprKind::IsBool { expr, .. } => expr.visit(f),
            ExprKind::Cast { expr, .. } => expr.visit(f),
            ExprKind::Binary(_, l, r)
            | ExprKind::IsDistinct {
                left: l, right: r, ..
            } => {
                l.visit(f);
                r.visit(f);
            }
            ExprKind::InList { expr, list, .. } => {
                expr.visit(f);
                list.iter().for_each(|e| e.visit(f));
            }
            ExprKind::Between {
                expr, low, high, ..
            } => {
                expr.visit(f);
                low.visit(f);
                high.visit(f);
            }
            ExprKind::Like { expr, pattern, .. } => {
                expr.visit(f);
                pattern.visit(f);
            }
            ExprKind::Case {
                operand,
                whens,
                otherwise,
            } => {
                if let Some(o) = operand {
                    o.visit(f);
                }
                for (w, t) in whens {
                    w.visit(f);
                    t.visit(f);
                }
                if let Some(o) = otherwise {
                    o.visit(f);
                }
            }
            ExprKind::Call { args, .. } => args.iter().for_each(|e| e.visit(f)),
        }
    }
}

impl fmt::Debug for functions::Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)
    }
}

/// Functions are identified by name (each is one static entry of the library).
impl PartialEq for functions::Function {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl fmt::Display for Expr {
    /// A compact rendering for `streamctl plan` (columns as `#i`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::Literal(v) => match v {
                crate::data::Value::Str(s) => write!(f, "'{}'", s.replace('\'', "''")),
                crate::data::Value::Null => f.write_str("NULL"),
                other => write!(f, "{other}"),
            },
            ExprKind::Column(i) => write!(f, "#{i}"),
            ExprKind::Not(e) => write!(f, "NOT ({e})"),
            ExprKind::Negate(e) => write!(f, "-({e})"),
            ExprKind::Binary(op, l, r) => write!(f, "({l} {} {r})", op.symbol()),
            ExprKind::IsNull { expr, negated } => {
                write!(f, "({expr} IS {}NULL)", if *negated { "NOT " } else { "" })
            }
            ExprKind::IsBool {
                expr,
                value,
                negated,
            } => write!(
                f,
                "({expr} IS {}{})",
                if *negated { "NOT " } else { "" },
                if *value { "TRUE" } else { "FALSE" }
            ),
            ExprKind::IsDistinct {
                left,
                right,
                negated,
            } => write!(
                f,
                "({left} IS {}DISTINCT FROM {right})",
                if *negated { "NOT " } else { "" }
            ),
            ExprKind::InList {
                expr,
                list,
                negated,
            } => {
                write!(f, "({expr} {}IN (", if *negated { "NOT " } else { "" })?;
                for (i, e) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{e}")?;
                }
                f.write_str("))")
            }
            ExprKind::Between {
                expr,
                low,
                high,
                negated,
            } => write!(
                f,
                "({expr} {}BETWEEN {low} AND {high})",
                if *negated { "NOT " } else { "" }
            ),
            ExprKind::Like {
                expr,
                pattern,
                negated,
                ..
            } => write!(
                f,
                "({expr} {}LIKE {pattern})",
                if *negated { "NOT " } else { "" }
            ),
            ExprKind::Case {
                operand,
                whens,
                otherwise,
            } => {
                f.write_str("CASE")?;
                if let Some(o) = operand {
                    write!(f, " {o}")?;
                }
                for (w, t) in whens {
                    write!(f, " WHEN {w} THEN {t}")?;
                }
                if let Some(o) = otherwise {
                    write!(f, " ELSE {o}")?;
                }
                f.write_str(" END")
            }
            ExprKind::Cast { expr, to, try_cast } => write!(
                f,
                "{}CAST({expr} AS {to})",
                if *try_cast { "TRY_" } else { "" }
            ),
            ExprKind::Call { function, args } => {
                write!(f, "{}(", function.name)?;
                for (i, e) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{e}")?;
                }
                f.write_str(")")
            }
        }
    }
}
