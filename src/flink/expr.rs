//! Typed expressions ([`crate::expr::Expr`]) printed as Flink SQL.
//!
//! The printer works from the type-checked tree, not the user's text: columns are resolved,
//! literals carry the engine's types (`4.2E0` is a DOUBLE, as in the engine; Flink would read
//! `4.2` as DECIMAL), and the calls `expr::compile` made of special syntax (`TRIM(LEADING …)`,
//! `EXTRACT`, `FLOOR(ts TO HOUR)`, `arr[i]`) are printed back as that syntax.

use super::sql;
use crate::data::{DataType, Value};
use crate::expr::{AggCall, Expr, ExprKind};

/// A function of the library that Flink SQL 1.20 has no equivalent for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoEquivalent {
    pub function: &'static str,
    /// The nearest thing Flink offers, for the diagnostic.
    pub nearest: &'static str,
}

/// Functions of the library without a Flink counterpart, and what to use instead. Every
/// other library function exists in Flink 1.20 under the same name with the same meaning
/// (the conformance tests run them on Flink).
const NO_EQUIVALENT: &[(&str, &str)] = &[];

/// Library functions Flink returns as INT (32 bits) where the engine's result is BIGINT: cast
/// back so arithmetic on them cannot overflow differently.
const INT_RESULT: &[&str] = &[
    "CHAR_LENGTH",
    "CHARACTER_LENGTH",
    "POSITION",
    "LOCATE",
    "ASCII",
    "CARDINALITY",
];

/// Prints `expr`; `column(i)` gives the SQL text of input column `i`.
///
/// # Errors
/// The first function used that Flink cannot run.
pub fn print(expr: &Expr, column: &dyn Fn(usize) -> String) -> Result<String, NoEquivalent> {
    Printer { column }.expr(expr)
}

/// Prints an aggregate call (`COUNT(*)`, `SUM(DISTINCT x)`) over the window's input.
///
/// # Errors
/// As [`print`], for the argument.
pub fn print_call(
    call: &AggCall,
    column: &dyn Fn(usize) -> String,
) -> Result<String, NoEquivalent> {
    let arg = match &call.arg {
        None => "*".to_string(),
        Some(a) => print(a, column)?,
    };
    let distinct = if call.distinct { "DISTINCT " } else { "" };
    Ok(format!("{}({distinct}{arg})", call.func.name()))
}

fn no_equivalent(name: &str) -> Option<NoEquivalent> {
    NO_EQUIVALENT
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(function, nearest)| NoEquivalent { function, nearest })
}

struct Printer<'a> {
    column: &'a dyn Fn(usize) -> String,
}

impl Printer<'_> {
    fn expr(&self, e: &Expr) -> Result<String, NoEquivalent> {
        Ok(match &e.kind {
            ExprKind::Literal(v) => sql::literal(v, e.ty.as_ref()),
            ExprKind::Column(i) => (self.column)(*i),
            ExprKind::Not(inner) => format!("(NOT {})", self.expr(inner)?),
            ExprKind::Negate(inner) => format!("(-{})", self.expr(inner)?),
            ExprKind::Binary(op, l, r) => {
                format!("({} {} {})", self.expr(l)?, op.symbol(), self.expr(r)?)
            }
            ExprKind::IsNull { expr, negated } => {
                format!("({} IS {}NULL)", self.expr(expr)?, not(*negated))
            }
            ExprKind::IsBool {
                expr,
                value,
                negated,
            } => format!(
                "({} IS {}{})",
                self.expr(expr)?,
                not(*negated),
                if *value { "TRUE" } else { "FALSE" }
            ),
            ExprKind::IsDistinct {
                left,
                right,
                negated,
            } => format!(
                "({} IS {}DISTINCT FROM {})",
                self.expr(left)?,
                not(*negated),
                self.expr(right)?
            ),
            ExprKind::InList {
                expr,
                list,
                negated,
            } => format!(
                "({} {}IN ({}))",
                self.expr(expr)?,
                not(*negated),
                self.list(list)?
            ),
            ExprKind::Between {
                expr,
                low,
                high,
                negated,
            } => format!(
                "({} {}BETWEEN {} AND {})",
                self.expr(expr)?,
                not(*negated),
                self.expr(low)?,
                self.expr(high)?
            ),
            ExprKind::Like {
                expr,
                pattern,
                escape,
                negated,
            } => {
                let escape = match escape {
                    Some(c) => format!(" ESCAPE {}", sql::string(&c.to_string())),
                    None => String::new(),
                };
                format!(
                    "({} {}LIKE {}{escape})",
                    self.expr(expr)?,
                    not(*negated),
                    self.expr(pattern)?
                )
            }
            ExprKind::Case {
                operand,
                whens,
                otherwise,
            } => {
                let mut out = String::from("CASE");
                if let Some(o) = operand {
                    out.push(' ');
                    out.push_str(&self.expr(o)?);
                }
                for (w, t) in whens {
                    out.push_str(&format!(" WHEN {} THEN {}", self.expr(w)?, self.expr(t)?));
                }
                if let Some(o) = otherwise {
                    out.push_str(&format!(" ELSE {}", self.expr(o)?));
                }
                out.push_str(" END");
                out
            }
            ExprKind::Cast { expr, to, try_cast } => format!(
                "{}CAST({} AS {})",
                if *try_cast { "TRY_" } else { "" },
                self.expr(expr)?,
                sql::type_name(to)
            ),
            ExprKind::Call { function, args } => self.call(function.name, args)?,
        })
    }

    fn list(&self, items: &[Expr]) -> Result<String, NoEquivalent> {
        let printed: Result<Vec<String>, NoEquivalent> =
            items.iter().map(|e| self.expr(e)).collect();
        Ok(printed?.join(", "))
    }

    /// A unit keyword passed as a string literal by the compiler (`'HOUR'`).
    fn unit(arg: &Expr) -> String {
        match &arg.kind {
            ExprKind::Literal(Value::Str(s)) => s.to_string(),
            _ => "SECOND".to_string(),
        }
    }

    fn call(&self, name: &'static str, args: &[Expr]) -> Result<String, NoEquivalent> {
        if let Some(n) = no_equivalent(name) {
            return Err(n);
        }
        let arg = |i: usize| self.expr(&args[i]);
        let text = match (name, args.len()) {
            ("TRIM_BOTH" | "TRIM_LEADING" | "TRIM_TRAILING", 2) => {
                let side = name.trim_start_matches("TRIM_");
                format!("TRIM({side} {} FROM {})", arg(1)?, arg(0)?)
            }
            ("EXTRACT_FIELD", 2) => format!("EXTRACT({} FROM {})", Self::unit(&args[0]), arg(1)?),
            ("FLOOR_TS" | "CEIL_TS", 2) => format!(
                "{}({} TO {})",
                name.trim_end_matches("_TS"),
                arg(0)?,
                Self::unit(&args[1])
            ),
            ("TIMESTAMPADD" | "TIMESTAMPDIFF", 3) => {
                format!("{name}({}, {}, {})", Self::unit(&args[0]), arg(1)?, arg(2)?)
            }
            ("ELEMENT_AT", 2) => format!("({})[{}]", arg(0)?, arg(1)?),
            ("POSITION", 2) => format!("POSITION({} IN {})", arg(0)?, arg(1)?),
            // Flink's TO_TIMESTAMP is a TIMESTAMP(3); the engine's timestamps are instants.
            ("TO_TIMESTAMP", _) => format!(
                "CAST(TO_TIMESTAMP({}) AS TIMESTAMP_LTZ(3))",
                self.list(args)?
            ),
            _ => format!("{name}({})", self.list(args)?),
        };
        Ok(if INT_RESULT.contains(&name) {
            format!("CAST({text} AS BIGINT)")
        } else {
            text
        })
    }
}

fn not(negated: bool) -> &'static str {
    if negated { "NOT " } else { "" }
}

/// Whether Flink might type `expr` differently from the engine (INT for BIGINT): computed
/// BIGINT outputs are cast so view and sink columns have the engine's types.
pub fn needs_bigint_cast(expr: &Expr) -> bool {
    expr.ty == Some(DataType::Int) && expr.as_column().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Field, Schema};
    use crate::expr::{compile, functions};

    fn schema() -> Schema {
        let mut ts = Field::new("timestamp", DataType::Timestamp);
        ts.epoch_unit_ms = None;
        Schema::new(vec![
            Field::new("movieId", DataType::String),
            Field::new("rating", DataType::Int),
            Field::new("price", DataType::Double),
            ts,
            Field::new("tags", DataType::Array(Box::new(DataType::String))),
        ])
    }

    fn flink(sql: &str) -> String {
        let s = schema();
        let e = compile(sql, &s).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        print(&e, &|i| sql::ident(&s.fields[i].name)).unwrap()
    }

    #[test]
    fn special_syntax_is_printed_back() {
        assert_eq!(
            flink("TRIM(LEADING 'x' FROM movieId)"),
            "TRIM(LEADING 'x' FROM `movieId`)"
        );
        assert_eq!(flink("TRIM(movieId)"), "TRIM(BOTH ' ' FROM `movieId`)");
        assert_eq!(
            flink("EXTRACT(HOUR FROM `timestamp`)"),
            "EXTRACT(HOUR FROM `timestamp`)"
        );
        assert_eq!(
            flink("FLOOR(`timestamp` TO HOUR)"),
            "FLOOR(`timestamp` TO HOUR)"
        );
        assert_eq!(
            flink("`timestamp` + INTERVAL '5' MINUTE"),
            "TIMESTAMPADD(MINUTE, 5, `timestamp`)"
        );
        assert_eq!(flink("ELEMENT_AT(tags, 1)"), "(`tags`)[1]");
        assert_eq!(
            flink("POSITION('a' IN movieId) > 0"),
            "(CAST(POSITION('a' IN `movieId`) AS BIGINT) > 0)"
        );
    }

    #[test]
    fn literals_and_operators_keep_engine_types() {
        assert_eq!(flink("price * 1.5"), "(`price` * 1.5E0)");
        assert_eq!(
            flink("movieId LIKE 'a!%%' ESCAPE '!'"),
            "(`movieId` LIKE 'a!%%' ESCAPE '!')"
        );
        assert_eq!(
            flink("`timestamp` > '2019-01-07 00:00:00'"),
            "(`timestamp` > TO_TIMESTAMP_LTZ(1546819200000, 3))"
        );
        assert_eq!(
            flink("CASE WHEN rating > 3 THEN 'good' ELSE 'bad' END"),
            "CASE WHEN (`rating` > 3) THEN 'good' ELSE 'bad' END"
        );
        assert_eq!(
            flink("rating NOT IN (1, -2) AND NOT (price IS NULL)"),
            "((`rating` NOT IN (1, -2)) AND (NOT (`price` IS NULL)))"
        );
    }

    #[test]
    fn functions_without_equivalent_are_library_functions() {
        for (name, _) in NO_EQUIVALENT {
            assert!(
                functions::lookup(name).is_some(),
                "{name} is not a library function"
            );
        }
    }
}
