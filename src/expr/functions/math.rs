//! Numeric functions. BIGINT arguments stay BIGINT where Flink keeps the type (ABS, ROUND,
//! TRUNCATE, FLOOR, CEIL, SIGN, MOD); the others compute in DOUBLE like `java.lang.Math`.

use std::cmp::Ordering;

use super::Function;
use super::args::{
    P, check, check_variadic, coerce, common_type, f64_at, i64_at, numeric_like, opt_i64_at, sig,
    value_at, widest_value_type,
};
use crate::data::{DataType, OwnedValue, Value};

/// A DOUBLE function of one numeric argument; a macro because evaluators are plain function
/// pointers and cannot capture which `f64` operation to apply.
macro_rules! double_fn {
    ($name:literal, $desc:literal, $f:expr) => {
        Function::strict(
            $name,
            concat!($name, "(numeric) → DOUBLE"),
            $desc,
            |a| sig($name, a, &[P::Num], &[], DataType::Double),
            |a| Ok(Value::Double(($f)(f64_at(a, 0)?))),
        )
    };
}

/// A DOUBLE constant (PI(), E()).
macro_rules! constant_fn {
    ($name:literal, $desc:literal, $value:expr) => {
        Function::strict(
            $name,
            concat!($name, "() → DOUBLE"),
            $desc,
            |a| sig($name, a, &[], &[], DataType::Double),
            |_| Ok(Value::Double($value)),
        )
    };
}

/// A function of one numeric argument returning the argument's type: `$int` applies to
/// BIGINT, `$double` to DOUBLE.
macro_rules! same_type_fn {
    ($name:literal, $desc:literal, $int:expr, $double:expr) => {
        Function::strict(
            $name,
            concat!($name, "(numeric) → same type"),
            $desc,
            |a| {
                check($name, a, &[P::Num], &[])?;
                Ok(numeric_like(a.first()))
            },
            |a| match value_at(a, 0)? {
                Value::Int(n) => Ok(Value::Int(($int)(*n))),
                _ => Ok(Value::Double(($double)(f64_at(a, 0)?))),
            },
        )
    };
}

pub(super) fn functions() -> Vec<Function> {
    vec![
        same_type_fn!(
            "ABS",
            "The absolute value (ABS of the smallest BIGINT is itself, as in Java).",
            i64::wrapping_abs,
            f64::abs
        ),
        same_type_fn!(
            "FLOOR",
            "The largest integral value not greater than the argument.",
            |n: i64| n,
            f64::floor
        ),
        same_type_fn!(
            "CEIL",
            "The smallest integral value not less than the argument.",
            |n: i64| n,
            f64::ceil
        ),
        same_type_fn!("CEILING", "Same as CEIL.", |n: i64| n, f64::ceil),
        same_type_fn!(
            "SIGN",
            "The signum of the argument: -1, 0 or 1.",
            i64::signum,
            java_signum
        ),
        Function::strict(
            "ROUND",
            "ROUND(numeric [, digits]) → same type",
            "The number rounded half away from zero to `digits` decimal places (default 0; negative rounds left of the point).",
            |a| {
                check("ROUND", a, &[P::Num], &[P::Int])?;
                Ok(numeric_like(a.first()))
            },
            |a| round_like(a, "ROUND", Rounding::HalfUp),
        ),
        Function::strict(
            "TRUNCATE",
            "TRUNCATE(numeric [, digits]) → same type",
            "The number truncated toward zero to `digits` decimal places (default 0; negative truncates left of the point).",
            |a| {
                check("TRUNCATE", a, &[P::Num], &[P::Int])?;
                Ok(numeric_like(a.first()))
            },
            |a| round_like(a, "TRUNCATE", Rounding::Down),
        ),
        Function::strict(
            "MOD",
            "MOD(integer1, integer2) → BIGINT",
            "The remainder of integer1 divided by integer2, negative only if integer1 is; an error if integer2 is 0.",
            // Flink (Calcite) accepts only exact numerics for MOD.
            |a| sig("MOD", a, &[P::Int, P::Int], &[], DataType::Int),
            |a| {
                let (x, y) = (i64_at(a, 0)?, i64_at(a, 1)?);
                if y == 0 {
                    return Err(format!("MOD({x}, 0): division by zero"));
                }
                Ok(Value::Int(x.wrapping_rem(y)))
            },
        ),
        Function::strict(
            "POWER",
            "POWER(base, exponent) → DOUBLE",
            "`base` raised to the power `exponent`.",
            |a| sig("POWER", a, &[P::Num, P::Num], &[], DataType::Double),
            |a| Ok(Value::Double(java_pow(f64_at(a, 0)?, f64_at(a, 1)?))),
        ),
        Function::strict(
            "POW",
            "POW(base, exponent) → DOUBLE",
            "Same as POWER.",
            |a| sig("POW", a, &[P::Num, P::Num], &[], DataType::Double),
            |a| Ok(Value::Double(java_pow(f64_at(a, 0)?, f64_at(a, 1)?))),
        ),
        double_fn!(
            "SQRT",
            "The square root (NaN for negative numbers).",
            f64::sqrt
        ),
        double_fn!("EXP", "e raised to the power of the argument.", f64::exp),
        double_fn!(
            "LN",
            "The natural logarithm (NaN for negative numbers, -Infinity for 0).",
            f64::ln
        ),
        double_fn!("LOG10", "The base-10 logarithm.", f64::log10),
        // Flink computes ln(x) / ln(2), which differs from log2 in the last bit for some x.
        double_fn!("LOG2", "The base-2 logarithm.", |x: f64| x.ln() / 2f64.ln()),
        Function::strict(
            "LOG",
            "LOG([base,] numeric) → DOUBLE",
            "The natural logarithm of the number, or with two arguments its logarithm to `base`.",
            |a| sig("LOG", a, &[P::Num], &[P::Num], DataType::Double),
            |a| {
                Ok(Value::Double(if a.len() == 2 {
                    f64_at(a, 1)?.ln() / f64_at(a, 0)?.ln()
                } else {
                    f64_at(a, 0)?.ln()
                }))
            },
        ),
        constant_fn!("PI", "The number π.", std::f64::consts::PI),
        constant_fn!("E", "The number e.", std::f64::consts::E),
        double_fn!("SIN", "The sine of an angle in radians.", f64::sin),
        double_fn!("COS", "The cosine of an angle in radians.", f64::cos),
        double_fn!("TAN", "The tangent of an angle in radians.", f64::tan),
        double_fn!("COT", "The cotangent of an angle in radians.", |x: f64| 1.0
            / x.tan()),
        double_fn!("ASIN", "The arc sine, in radians.", f64::asin),
        double_fn!("ACOS", "The arc cosine, in radians.", f64::acos),
        double_fn!("ATAN", "The arc tangent, in radians.", f64::atan),
        double_fn!("SINH", "The hyperbolic sine.", f64::sinh),
        double_fn!("COSH", "The hyperbolic cosine.", f64::cosh),
        double_fn!("TANH", "The hyperbolic tangent.", f64::tanh),
        Function::strict(
            "ATAN2",
            "ATAN2(y, x) → DOUBLE",
            "The angle in radians of the point (x, y) from the positive x axis.",
            |a| sig("ATAN2", a, &[P::Num, P::Num], &[], DataType::Double),
            |a| Ok(Value::Double(f64_at(a, 0)?.atan2(f64_at(a, 1)?))),
        ),
        double_fn!(
            "DEGREES",
            "The angle in radians converted to degrees.",
            f64::to_degrees
        ),
        double_fn!(
            "RADIANS",
            "The angle in degrees converted to radians.",
            f64::to_radians
        ),
        Function::strict(
            "GREATEST",
            "GREATEST(value1, value2, …) → common type",
            "The greatest of the arguments; NULL if any argument is NULL.",
            |a| extreme_type("GREATEST", a),
            |a| extreme(a, Ordering::Greater),
        ),
        Function::strict(
            "LEAST",
            "LEAST(value1, value2, …) → common type",
            "The least of the arguments; NULL if any argument is NULL.",
            |a| extreme_type("LEAST", a),
            |a| extreme(a, Ordering::Less),
        ),
    ]
}

/// `Math.signum`: zeros (keeping their sign) and NaN map to themselves.
fn java_signum(x: f64) -> f64 {
    if x == 0.0 || x.is_nan() {
        x
    } else {
        1f64.copysign(x)
    }
}

/// `Math.pow` differs from C's `pow` (which `f64::powf` follows) on two edges: a NaN
/// exponent always gives NaN, and ±1 to an infinite power is NaN.
fn java_pow(base: f64, exponent: f64) -> f64 {
    if exponent.is_nan() || base.abs() == 1.0 && exponent.is_infinite() {
        return f64::NAN;
    }
    base.powf(exponent)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Rounding {
    /// BigDecimal HALF_UP: half away from zero (ROUND).
    HalfUp,
    /// BigDecimal DOWN: toward zero (TRUNCATE).
    Down,
}

fn round_like(a: &[Value<'_>], name: &str, mode: Rounding) -> Result<OwnedValue, String> {
    let digits = opt_i64_at(a, 1)?.unwrap_or(0);
    match value_at(a, 0)? {
        Value::Int(n) => Ok(Value::Int(round_int(*n, digits, mode))),
        _ => {
            let x = f64_at(a, 0)?;
            // Flink goes through BigDecimal, which has no NaN or infinity.
            round_double(x, digits, mode)
                .map(Value::Double)
                .ok_or_else(|| format!("{name}: cannot round {}", Value::Double(x)))
        }
    }
}

/// Flink's `sround(long, int)`: BigDecimal rounding, then `longValue()`, which keeps the low
/// 64 bits when the rounded value no longer fits.
fn round_int(n: i64, digits: i64, mode: Rounding) -> i64 {
    if digits >= 0 {
        return n;
    }
    let Some(scale) = u32::try_from(digits.unsigned_abs())
        .ok()
        .and_then(|e| 10i128.checked_pow(e))
    else {
        // 10^39 and beyond: every BIGINT is less than half a unit.
        return 0;
    };
    let n = i128::from(n);
    let (mut q, r) = (n / scale, n % scale);
    if mode == Rounding::HalfUp && r.abs() * 2 >= scale {
        q += n.signum();
    }
    (q * scale) as i64
}

/// Flink's `sround(double, int)` / `struncate`: `BigDecimal.valueOf(x)` (the shortest decimal
/// that reads back as `x`) rounded to `digits` places, back to double. Decimal arithmetic on
/// that representation makes ROUND(2.675, 2) = 2.68 where binary arithmetic gives 2.67.
/// `None` for NaN and infinities.
fn round_double(x: f64, digits: i64, mode: Rounding) -> Option<f64> {
    if !x.is_finite() {
        return None;
    }
    if x == 0.0 {
        return Some(x);
    }
    let sci = format!("{:e}", x.abs());
    let (mantissa, exponent) = sci.split_once('e')?;
    let exponent: i64 = exponent.parse().ok()?;
    let all: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    // Digit k has weight 10^(exponent - k); keep the digits of weight 10^-digits and above.
    let keep = i128::from(exponent) + i128::from(digits) + 1;
    let Ok(keep) = usize::try_from(keep) else {
        return Some(0.0); // below half a unit of the last kept place
    };
    if keep >= all.len() {
        return Some(x);
    }
    let mut kept = all[..keep].to_vec();
    if mode == Rounding::HalfUp && all[keep] >= b'5' {
        increment_decimal(&mut kept);
    }
    if kept.is_empty() {
        return Some(0.0);
    }
    let sign = if x < 0.0 { "-" } else { "" };
    let kept = String::from_utf8(kept).ok()?;
    format!("{sign}{kept}e{}", -i128::from(digits)).parse().ok()
}

/// Adds one to a string of decimal digits ("199" → "200", "" → "1", "99" → "100").
fn increment_decimal(digits: &mut Vec<u8>) {
    for d in digits.iter_mut().rev() {
        if *d == b'9' {
            *d = b'0';
        } else {
            *d += 1;
            return;
        }
    }
    digits.insert(0, b'1');
}

fn extreme_type(name: &str, a: &[Option<DataType>]) -> Result<DataType, String> {
    check_variadic(name, a, 1, P::Any)?;
    let t = common_type(name, a)?;
    if matches!(t, DataType::Array(_)) {
        return Err(format!("{name} cannot compare arrays"));
    }
    Ok(t)
}

fn extreme(a: &[Value<'_>], wanted: Ordering) -> Result<OwnedValue, String> {
    let mut best = value_at(a, 0)?;
    for v in &a[1..] {
        if v.sql_cmp(best) == Some(wanted) {
            best = v;
        }
    }
    Ok(coerce(best, &widest_value_type(a)))
}

#[cfg(test)]
mod tests {
    use super::super::lookup;
    use super::*;

    use super::super::test_support::{call, ok};

    fn d(name: &str, args: &[Value<'_>]) -> f64 {
        match ok(name, args) {
            Value::Double(x) => x,
            other => panic!("{name} gave {other:?}"),
        }
    }

    fn types(name: &str, args: &[Option<DataType>]) -> Result<DataType, String> {
        (lookup(name).expect("function exists").return_type)(args)
    }

    use Value::{Double as D, Int as I};

    #[test]
    fn abs_sign_floor_ceil_keep_the_type() {
        assert_eq!(ok("ABS", &[I(-3)]), I(3));
        assert_eq!(ok("ABS", &[I(i64::MIN)]), I(i64::MIN));
        assert_eq!(ok("ABS", &[D(-2.5)]), D(2.5));
        assert_eq!(ok("ABS", &[Value::Null]), Value::Null);
        assert_eq!(ok("SIGN", &[I(-7)]), I(-1));
        assert_eq!(ok("SIGN", &[D(0.0)]), D(0.0));
        assert_eq!(ok("SIGN", &[D(-2.0)]), D(-1.0));
        assert_eq!(ok("FLOOR", &[D(-1.5)]), D(-2.0));
        assert_eq!(ok("FLOOR", &[I(5)]), I(5));
        assert_eq!(ok("CEIL", &[D(1.2)]), D(2.0));
        assert_eq!(ok("CEILING", &[D(-1.2)]), D(-1.0));
        assert_eq!(types("ABS", &[Some(DataType::Int)]), Ok(DataType::Int));
        assert_eq!(
            types("ABS", &[Some(DataType::Double)]),
            Ok(DataType::Double)
        );
        assert_eq!(types("ABS", &[None]), Ok(DataType::Double));
        assert_eq!(
            types("ABS", &[Some(DataType::String)]).unwrap_err(),
            "ABS expects a numeric argument, found STRING"
        );
    }

    #[test]
    fn round_is_half_up_in_decimal() {
        assert_eq!(ok("ROUND", &[D(2.5)]), D(3.0));
        assert_eq!(ok("ROUND", &[D(-2.5)]), D(-3.0));
        assert_eq!(ok("ROUND", &[D(2.675), I(2)]), D(2.68));
        assert_eq!(ok("ROUND", &[D(1.005), I(2)]), D(1.01));
        assert_eq!(ok("ROUND", &[D(1234.5678), I(-2)]), D(1200.0));
        assert_eq!(ok("ROUND", &[D(1250.0), I(-2)]), D(1300.0));
        assert_eq!(ok("ROUND", &[D(0.4)]), D(0.0));
        assert_eq!(ok("ROUND", &[D(-0.4)]), D(0.0));
        assert_eq!(ok("ROUND", &[D(0.5), I(-1)]), D(0.0));
        assert_eq!(ok("ROUND", &[D(5.0), I(-1)]), D(10.0));
        assert_eq!(ok("ROUND", &[D(9.99), I(1)]), D(10.0));
        assert_eq!(ok("ROUND", &[D(1e-7), I(3)]), D(0.0));
        assert_eq!(ok("ROUND", &[D(1.5e300), I(-400)]), D(0.0));
        assert_eq!(ok("ROUND", &[D(0.1), I(i64::MAX)]), D(0.1));
        assert_eq!(ok("ROUND", &[D(0.1), I(i64::MIN)]), D(0.0));
        assert_eq!(ok("ROUND", &[D(123.456), I(1)]), D(123.5));
        assert!(call("ROUND", &[D(f64::NAN)]).is_err());
        assert_eq!(ok("ROUND", &[I(1250), I(-2)]), I(1300));
        assert_eq!(ok("ROUND", &[I(-1250), I(-2)]), I(-1300));
        assert_eq!(ok("ROUND", &[I(1249), I(-2)]), I(1200));
        assert_eq!(ok("ROUND", &[I(17), I(2)]), I(17));
        assert_eq!(ok("ROUND", &[I(i64::MAX), I(-50)]), I(0));
        // BigDecimal.longValue keeps the low 64 bits.
        assert_eq!(ok("ROUND", &[I(i64::MAX), I(-1)]), I(-9223372036854775806));
        assert_eq!(
            types("ROUND", &[Some(DataType::Int), Some(DataType::Int)]),
            Ok(DataType::Int)
        );
        assert!(types("ROUND", &[Some(DataType::Double), Some(DataType::Double)]).is_err());
        assert_eq!(
            types("ROUND", &[Some(DataType::String)]).unwrap_err(),
            "ROUND expects a numeric first argument, found STRING"
        );
    }

    #[test]
    fn truncate_goes_toward_zero() {
        // Flink's documented examples: 42.324.truncate(2) = 42.32, truncate() = 42.0.
        assert_eq!(ok("TRUNCATE", &[D(42.324), I(2)]), D(42.32));
        assert_eq!(ok("TRUNCATE", &[D(42.324)]), D(42.0));
        assert_eq!(ok("TRUNCATE", &[D(-42.9)]), D(-42.0));
        assert_eq!(ok("TRUNCATE", &[D(4.99), I(-1)]), D(0.0));
        assert_eq!(ok("TRUNCATE", &[I(1999), I(-3)]), I(1000));
        assert_eq!(ok("TRUNCATE", &[I(-1999), I(-3)]), I(-1000));
    }

    #[test]
    fn modulo() {
        assert_eq!(ok("MOD", &[I(7), I(3)]), I(1));
        assert_eq!(ok("MOD", &[I(-7), I(3)]), I(-1));
        assert_eq!(ok("MOD", &[I(7), I(-3)]), I(1));
        assert_eq!(ok("MOD", &[I(i64::MIN), I(-1)]), I(0));
        assert!(
            call("MOD", &[I(7), I(0)])
                .unwrap_err()
                .contains("division by zero")
        );
        assert_eq!(
            types("MOD", &[Some(DataType::Double), Some(DataType::Int)]).unwrap_err(),
            "MOD expects an integer (BIGINT) first argument, found DOUBLE"
        );
    }

    #[test]
    fn powers_and_logarithms() {
        assert_eq!(d("POWER", &[I(2), I(10)]), 1024.0);
        assert_eq!(d("POW", &[D(4.0), D(0.5)]), 2.0);
        assert!(d("POWER", &[D(1.0), D(f64::NAN)]).is_nan());
        assert!(d("POWER", &[D(-1.0), D(f64::INFINITY)]).is_nan());
        assert_eq!(d("POWER", &[D(f64::NAN), D(0.0)]), 1.0);
        assert_eq!(d("SQRT", &[I(16)]), 4.0);
        assert!(d("SQRT", &[I(-1)]).is_nan());
        assert_eq!(d("EXP", &[I(0)]), 1.0);
        assert_eq!(d("LN", &[I(1)]), 0.0);
        assert_eq!(d("LN", &[I(0)]), f64::NEG_INFINITY);
        assert_eq!(d("LOG10", &[I(1000)]), 3.0);
        assert_eq!(d("LOG2", &[I(8)]), 8f64.ln() / 2f64.ln());
        assert_eq!(d("LOG", &[D(std::f64::consts::E)]), 1.0);
        assert_eq!(d("LOG", &[I(10), I(100)]), 2.0);
        assert!(types("LOG", &[]).is_err());
    }

    #[test]
    fn trigonometry_and_constants() {
        assert_eq!(d("PI", &[]), std::f64::consts::PI);
        assert_eq!(d("E", &[]), std::f64::consts::E);
        assert_eq!(
            types("PI", &[Some(DataType::Int)]).unwrap_err(),
            "PI takes no arguments, found 1"
        );
        assert_eq!(d("SIN", &[I(0)]), 0.0);
        assert_eq!(d("COS", &[I(0)]), 1.0);
        assert_eq!(d("TAN", &[I(0)]), 0.0);
        assert!((d("COT", &[D(1.0)]) - 0.6420926159343306).abs() < 1e-15);
        assert_eq!(d("ASIN", &[I(1)]), std::f64::consts::FRAC_PI_2);
        assert_eq!(d("ACOS", &[I(1)]), 0.0);
        assert_eq!(d("ATAN", &[I(0)]), 0.0);
        assert_eq!(d("ATAN2", &[I(1), I(1)]), std::f64::consts::FRAC_PI_4);
        assert_eq!(d("SINH", &[I(0)]), 0.0);
        assert_eq!(d("COSH", &[I(0)]), 1.0);
        assert_eq!(d("TANH", &[I(0)]), 0.0);
        assert_eq!(d("DEGREES", &[D(std::f64::consts::PI)]), 180.0);
        assert_eq!(d("RADIANS", &[I(180)]), std::f64::consts::PI);
        assert_eq!(ok("SIN", &[Value::Null]), Value::Null);
    }

    #[test]
    fn greatest_and_least() {
        assert_eq!(ok("GREATEST", &[I(1), I(5), I(3)]), I(5));
        assert_eq!(ok("GREATEST", &[I(1), D(0.5)]), D(1.0));
        assert_eq!(ok("LEAST", &[I(1), D(0.5)]), D(0.5));
        assert_eq!(ok("GREATEST", &[I(1), Value::Null]), Value::Null);
        let s = |v: &str| Value::Str(v.to_string().into());
        assert_eq!(ok("LEAST", &[s("b"), s("a")]), s("a"));
        assert_eq!(
            ok("GREATEST", &[Value::Timestamp(5), Value::Timestamp(9)]),
            Value::Timestamp(9)
        );
        assert_eq!(
            types("GREATEST", &[Some(DataType::Int), Some(DataType::Double)]),
            Ok(DataType::Double)
        );
        assert!(types("GREATEST", &[Some(DataType::Int), Some(DataType::String)]).is_err());
        assert!(types("LEAST", &[]).is_err());
    }

    #[test]
    fn decimal_increment() {
        let inc = |s: &str| {
            let mut v = s.as_bytes().to_vec();
            increment_decimal(&mut v);
            String::from_utf8(v).unwrap()
        };
        assert_eq!(inc("199"), "200");
        assert_eq!(inc("99"), "100");
        assert_eq!(inc(""), "1");
    }
}
