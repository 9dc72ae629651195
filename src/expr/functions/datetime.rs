//! Date/time functions, in UTC (the session time zone of our Flink translation). Timestamps
//! are milliseconds since the epoch; calendar fields come from [`javafmt::Parts`].
//!
//! Units arrive as upper-case STRING literals (the compiler turns `FLOOR(ts TO HOUR)`,
//! `EXTRACT(DOW FROM ts)`, `TIMESTAMPADD(DAY, …)` into `'HOUR'`, `'DOW'`, `'DAY'`).

use std::cell::RefCell;
use std::rc::Rc;

use super::Function;
use super::args::{P, check, f64_at, i64_at, sig, str_at, text, ts_at, value_at};
use super::cache::Lru;
use super::javafmt::{self, Flavor, Item, MS_PER_DAY, Parts, add_months, days_from_civil};
use crate::data::{DataType, OwnedValue, Value};

/// Flink's valid TO_TIMESTAMP_LTZ range: 0000-01-01 00:00:00 to 9999-12-31 23:59:59.999.
const MIN_EPOCH_MILLIS: i64 = -62_167_219_200_000;
const MAX_EPOCH_MILLIS: i64 = 253_402_300_799_999;
const MIN_EPOCH_SECONDS: i64 = -62_167_219_200;
const MAX_EPOCH_SECONDS: i64 = 253_402_300_799;

/// Flink's default pattern for UNIX_TIMESTAMP, FROM_UNIXTIME and DATE_FORMAT of a string.
const DEFAULT_PATTERN: &str = "yyyy-MM-dd HH:mm:ss";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unit {
    Millisecond,
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

const UNIT_NAMES: &str = "MILLISECOND, SECOND, MINUTE, HOUR, DAY, WEEK, MONTH, QUARTER, YEAR";

impl Unit {
    /// `'HOUR'`, `'hour'` or Calcite's `SQL_TSI_HOUR`.
    fn parse(function: &str, unit: &str) -> Result<Unit, String> {
        let upper = unit.to_ascii_uppercase();
        let name = upper.strip_prefix("SQL_TSI_").unwrap_or(&upper);
        Ok(match name {
            "MILLISECOND" => Unit::Millisecond,
            "SECOND" => Unit::Second,
            "MINUTE" => Unit::Minute,
            "HOUR" => Unit::Hour,
            "DAY" => Unit::Day,
            "WEEK" => Unit::Week,
            "MONTH" => Unit::Month,
            "QUARTER" => Unit::Quarter,
            "YEAR" => Unit::Year,
            _ => {
                return Err(format!(
                    "{function}: unknown time unit '{unit}' (expected one of {UNIT_NAMES})"
                ));
            }
        })
    }

    /// The length of units of constant length.
    fn millis(self) -> Option<i64> {
        Some(match self {
            Unit::Millisecond => 1,
            Unit::Second => 1000,
            Unit::Minute => 60_000,
            Unit::Hour => 3_600_000,
            Unit::Day => MS_PER_DAY,
            Unit::Week => 7 * MS_PER_DAY,
            _ => return None,
        })
    }

    /// The number of months of calendar units.
    fn months(self) -> i64 {
        match self {
            Unit::Quarter => 3,
            Unit::Year => 12,
            _ => 1,
        }
    }
}

fn out_of_range(function: &str) -> String {
    format!("{function}: timestamp out of range")
}

/// A BIGINT field of a timestamp (YEAR(ts), HOUR(ts), …).
macro_rules! ts_field {
    ($name:literal, $desc:literal, $field:expr) => {
        Function::strict(
            $name,
            concat!($name, "(timestamp) → BIGINT"),
            $desc,
            |a| sig($name, a, &[P::Ts], &[], DataType::Int),
            |a| Ok(Value::Int(($field)(&Parts::from_millis(ts_at(a, 0)?)))),
        )
    };
}

pub(super) fn functions() -> Vec<Function> {
    vec![
        Function::strict(
            "TO_TIMESTAMP_LTZ",
            "TO_TIMESTAMP_LTZ(epoch, precision) → TIMESTAMP_LTZ(3)",
            "The instant `epoch` seconds (precision 0) or milliseconds (precision 3) after 1970-01-01 00:00:00 UTC; NULL outside years 0000–9999.",
            |a| {
                sig(
                    "TO_TIMESTAMP_LTZ",
                    a,
                    &[P::Num, P::Int],
                    &[],
                    DataType::Timestamp,
                )
            },
            to_timestamp_ltz,
        ),
        Function::strict(
            "TO_TIMESTAMP",
            "TO_TIMESTAMP(string [, format]) → TIMESTAMP_LTZ(3)",
            "The string parsed as a UTC date-time with a Java DateTimeFormatter pattern (default 'yyyy-MM-dd HH:mm:ss'); NULL if it does not parse.",
            |a| sig("TO_TIMESTAMP", a, &[P::Str], &[P::Str], DataType::Timestamp),
            to_timestamp,
        ),
        Function::strict(
            "DATE_FORMAT",
            "DATE_FORMAT(timestamp_or_string, format) → STRING",
            "The timestamp (or a 'yyyy-MM-dd HH:mm:ss' string) formatted with a Java date pattern such as 'yyyy-MM-dd HH:mm'.",
            |a| {
                check("DATE_FORMAT", a, &[P::Any, P::Str], &[])?;
                match &a[0] {
                    None | Some(DataType::Timestamp | DataType::String) => Ok(DataType::String),
                    Some(t) => Err(format!(
                        "DATE_FORMAT expects a TIMESTAMP or STRING first argument, found {t}"
                    )),
                }
            },
            date_format,
        ),
        Function::strict(
            "UNIX_TIMESTAMP",
            "UNIX_TIMESTAMP(string [, format]) → BIGINT",
            "Seconds since the epoch of the string parsed with a Java SimpleDateFormat pattern (default 'yyyy-MM-dd HH:mm:ss'); -9223372036854775808 if it does not parse, as in Flink.",
            |a| sig("UNIX_TIMESTAMP", a, &[P::Str], &[P::Str], DataType::Int),
            |a| {
                let items = pattern_at(a, 1, Flavor::Simple, "UNIX_TIMESTAMP")?;
                let parsed = javafmt::parse_simple(&items, str_at(a, 0)?);
                Ok(Value::Int(parsed.map_or(i64::MIN, |ms| ms / 1000)))
            },
        ),
        Function::strict(
            "FROM_UNIXTIME",
            "FROM_UNIXTIME(seconds [, format]) → STRING",
            "The instant `seconds` after the epoch formatted with a Java SimpleDateFormat pattern (default 'yyyy-MM-dd HH:mm:ss').",
            |a| sig("FROM_UNIXTIME", a, &[P::Num], &[P::Str], DataType::String),
            |a| {
                let items = pattern_at(a, 1, Flavor::Simple, "FROM_UNIXTIME")?;
                let seconds = match value_at(a, 0)? {
                    Value::Int(n) => *n,
                    _ => f64_at(a, 0)? as i64,
                };
                // Java computes `seconds * 1000` in a long, overflow included.
                let millis = seconds.wrapping_mul(1000);
                Ok(text(javafmt::format(&items, Flavor::Simple, millis)))
            },
        ),
        ts_field!("YEAR", "The year of the timestamp.", |p: &Parts| p.year),
        ts_field!(
            "QUARTER",
            "The quarter of the year (1–4).",
            |p: &Parts| i64::from(p.quarter())
        ),
        ts_field!("MONTH", "The month of the year (1–12).", |p: &Parts| {
            i64::from(p.month)
        }),
        ts_field!(
            "WEEK",
            "The ISO-8601 week of the year (1–53; weeks start on Monday).",
            |p: &Parts| i64::from(p.iso_week().1)
        ),
        ts_field!(
            "DAYOFYEAR",
            "The day of the year (1–366).",
            |p: &Parts| { i64::from(p.day_of_year()) }
        ),
        ts_field!(
            "DAYOFMONTH",
            "The day of the month (1–31).",
            |p: &Parts| i64::from(p.day)
        ),
        ts_field!(
            "DAYOFWEEK",
            "The day of the week, 1 = Sunday … 7 = Saturday.",
            |p: &Parts| i64::from(p.days_since_sunday()) + 1
        ),
        ts_field!("HOUR", "The hour of the day (0–23).", |p: &Parts| {
            i64::from(p.hour)
        }),
        ts_field!("MINUTE", "The minute of the hour (0–59).", |p: &Parts| {
            i64::from(p.minute)
        }),
        ts_field!(
            "SECOND",
            "The second of the minute (0–59).",
            |p: &Parts| i64::from(p.second)
        ),
        Function::strict(
            "FLOOR_TS",
            "FLOOR_TS(timestamp, unit) → TIMESTAMP_LTZ(3)",
            "The timestamp rounded down to a unit boundary (FLOOR(ts TO unit); weeks start on Sunday).",
            |a| sig("FLOOR_TS", a, &[P::Ts, P::Str], &[], DataType::Timestamp),
            |a| {
                let unit = Unit::parse("FLOOR_TS", str_at(a, 1)?)?;
                let floor = floor_ts(ts_at(a, 0)?, unit).ok_or_else(|| out_of_range("FLOOR_TS"))?;
                Ok(Value::Timestamp(floor))
            },
        ),
        Function::strict(
            "CEIL_TS",
            "CEIL_TS(timestamp, unit) → TIMESTAMP_LTZ(3)",
            "The timestamp rounded up to a unit boundary (CEIL(ts TO unit); weeks start on Sunday).",
            |a| sig("CEIL_TS", a, &[P::Ts, P::Str], &[], DataType::Timestamp),
            |a| {
                let unit = Unit::parse("CEIL_TS", str_at(a, 1)?)?;
                let ceil = ceil_ts(ts_at(a, 0)?, unit).ok_or_else(|| out_of_range("CEIL_TS"))?;
                Ok(Value::Timestamp(ceil))
            },
        ),
        Function::strict(
            "TIMESTAMPADD",
            "TIMESTAMPADD(unit, amount, timestamp) → TIMESTAMP_LTZ(3)",
            "The timestamp plus `amount` units; months keep the day of the month unless the month is shorter.",
            |a| {
                sig(
                    "TIMESTAMPADD",
                    a,
                    &[P::Str, P::Int, P::Ts],
                    &[],
                    DataType::Timestamp,
                )
            },
            |a| {
                let unit = Unit::parse("TIMESTAMPADD", str_at(a, 0)?)?;
                let sum = timestamp_add(unit, i64_at(a, 1)?, ts_at(a, 2)?)
                    .ok_or_else(|| out_of_range("TIMESTAMPADD"))?;
                Ok(Value::Timestamp(sum))
            },
        ),
        Function::strict(
            "TIMESTAMPDIFF",
            "TIMESTAMPDIFF(unit, timestamp1, timestamp2) → BIGINT",
            "The number of whole units from timestamp1 to timestamp2 (negative if timestamp2 is earlier).",
            |a| {
                sig(
                    "TIMESTAMPDIFF",
                    a,
                    &[P::Str, P::Ts, P::Ts],
                    &[],
                    DataType::Int,
                )
            },
            |a| {
                let unit = Unit::parse("TIMESTAMPDIFF", str_at(a, 0)?)?;
                let diff = timestamp_diff(unit, ts_at(a, 1)?, ts_at(a, 2)?)
                    .ok_or_else(|| out_of_range("TIMESTAMPDIFF"))?;
                Ok(Value::Int(diff))
            },
        ),
        Function::strict(
            "EXTRACT_FIELD",
            "EXTRACT_FIELD(unit, timestamp) → BIGINT",
            "A field of the timestamp (EXTRACT(unit FROM ts)): YEAR, QUARTER, MONTH, WEEK, DAY, DOY, DOW (1 = Sunday), ISODOW, ISOYEAR, HOUR, MINUTE, SECOND, MILLISECOND, MICROSECOND, NANOSECOND, EPOCH, DECADE, CENTURY or MILLENNIUM.",
            |a| sig("EXTRACT_FIELD", a, &[P::Str, P::Ts], &[], DataType::Int),
            |a| Ok(Value::Int(extract(str_at(a, 0)?, ts_at(a, 1)?)?)),
        ),
    ]
}

fn to_timestamp_ltz(a: &[Value<'_>]) -> Result<OwnedValue, String> {
    let precision = i64_at(a, 1)?;
    check_precision(precision)?;
    // Flink's DateTimeUtils.toTimestampData: seconds are range-checked before scaling,
    // DOUBLE seconds scale before truncating, the result is range-checked.
    let millis = match (value_at(a, 0)?, precision) {
        (Value::Int(s), 0) => (MIN_EPOCH_SECONDS..=MAX_EPOCH_SECONDS)
            .contains(s)
            .then(|| s * 1000),
        (Value::Int(ms), _) => Some(*ms),
        (_, 0) => {
            let s = f64_at(a, 0)?;
            (MIN_EPOCH_SECONDS as f64 <= s && s <= MAX_EPOCH_SECONDS as f64)
                .then_some((s * 1000.0) as i64)
        }
        _ => {
            let ms = f64_at(a, 0)?;
            (!ms.is_nan()).then_some(ms as i64)
        }
    };
    Ok(millis
        .filter(|ms| (MIN_EPOCH_MILLIS..=MAX_EPOCH_MILLIS).contains(ms))
        .map_or(Value::Null, Value::Timestamp))
}

fn check_precision(precision: i64) -> Result<(), String> {
    if precision == 0 || precision == 3 {
        Ok(())
    } else {
        Err(format!(
            "TO_TIMESTAMP_LTZ: precision {precision} is unsupported; use 0 for epoch seconds or 3 for epoch milliseconds"
        ))
    }
}

fn to_timestamp(a: &[Value<'_>]) -> Result<OwnedValue, String> {
    let s = str_at(a, 0)?;
    let parsed = if a.len() > 1 {
        let items = pattern_at(a, 1, Flavor::Modern, "TO_TIMESTAMP")?;
        // Flink falls back to java.sql.Timestamp/Date.valueOf when the format fails.
        javafmt::parse_modern(&items, s).or_else(|| javafmt::parse_sql_timestamp(s))
    } else {
        javafmt::parse_flink_default(s)
    };
    Ok(parsed.map_or(Value::Null, Value::Timestamp))
}

fn date_format(a: &[Value<'_>]) -> Result<OwnedValue, String> {
    match value_at(a, 0)? {
        Value::Timestamp(t) => {
            let items = pattern_at(a, 1, Flavor::Modern, "DATE_FORMAT")?;
            Ok(text(javafmt::format(&items, Flavor::Modern, *t)))
        }
        // A string goes through SimpleDateFormat both ways, read as 'yyyy-MM-dd HH:mm:ss'.
        _ => {
            let items = pattern_at(a, 1, Flavor::Simple, "DATE_FORMAT")?;
            let default = pattern(DEFAULT_PATTERN, Flavor::Simple)?;
            Ok(
                javafmt::parse_simple(&default, str_at(a, 0)?).map_or(Value::Null, |ms| {
                    text(javafmt::format(&items, Flavor::Simple, ms))
                }),
            )
        }
    }
}

thread_local! {
    static SIMPLE_PATTERNS: RefCell<Lru<Result<Rc<Vec<Item>>, String>>> =
        const { RefCell::new(Lru::new(16)) };
    static MODERN_PATTERNS: RefCell<Lru<Result<Rc<Vec<Item>>, String>>> =
        const { RefCell::new(Lru::new(16)) };
}

/// A compiled date pattern, cached per thread.
fn pattern(p: &str, flavor: Flavor) -> Result<Rc<Vec<Item>>, String> {
    let cache = match flavor {
        Flavor::Simple => &SIMPLE_PATTERNS,
        Flavor::Modern => &MODERN_PATTERNS,
    };
    cache.with(|c| {
        c.borrow_mut()
            .get_or_insert(p, |p| javafmt::compile(p, flavor).map(Rc::new))
    })
}

/// The pattern argument `i`, or Flink's default when the call has none.
fn pattern_at(
    a: &[Value<'_>],
    i: usize,
    flavor: Flavor,
    function: &str,
) -> Result<Rc<Vec<Item>>, String> {
    let p = if i < a.len() {
        str_at(a, i)?
    } else {
        DEFAULT_PATTERN
    };
    pattern(p, flavor).map_err(|e| format!("{function}: {e}"))
}

fn floor_ts(ts: i64, unit: Unit) -> Option<i64> {
    if let Some(size) = unit.millis().filter(|_| unit != Unit::Week) {
        // `time::floor_to` without its overflow near the smallest timestamp.
        return ts.checked_sub(ts.rem_euclid(size));
    }
    let p = Parts::from_millis(ts);
    let day = match unit {
        // Calcite's weeks start on Sunday.
        Unit::Week => p.epoch_day - i64::from(p.days_since_sunday()),
        Unit::Month => days_from_civil(p.year, p.month, 1),
        Unit::Quarter => days_from_civil(p.year, (p.quarter() - 1) * 3 + 1, 1),
        _ => days_from_civil(p.year, 1, 1),
    };
    day.checked_mul(MS_PER_DAY)
}

/// The smallest unit boundary not before `ts`.
fn ceil_ts(ts: i64, unit: Unit) -> Option<i64> {
    let floor = floor_ts(ts, unit)?;
    if floor == ts {
        return Some(ts);
    }
    if let Some(size) = unit.millis() {
        return floor.checked_add(size);
    }
    let p = Parts::from_millis(floor);
    let (y, m, _) = add_months(p.year, p.month, 1, unit.months())?;
    days_from_civil(y, m, 1).checked_mul(MS_PER_DAY)
}

fn timestamp_add(unit: Unit, amount: i64, ts: i64) -> Option<i64> {
    if let Some(size) = unit.millis() {
        return amount.checked_mul(size)?.checked_add(ts);
    }
    let p = Parts::from_millis(ts);
    let (y, m, d) = add_months(p.year, p.month, p.day, amount.checked_mul(unit.months())?)?;
    days_from_civil(y, m, i64::from(d))
        .checked_mul(MS_PER_DAY)?
        .checked_add(p.millis_of_day())
}

fn timestamp_diff(unit: Unit, from: i64, to: i64) -> Option<i64> {
    match unit.millis() {
        // Whole units, truncated toward zero.
        Some(size) => i64::try_from((i128::from(to) - i128::from(from)) / i128::from(size)).ok(),
        None => Some(months_between(to, from)? / unit.months()),
    }
}

/// Calcite's `subtractMonths(t0, t1)` (what Flink's TIMESTAMPDIFF uses for months, quarters
/// and years): the largest `m` with `addMonths(date(t1), m) <= date(t0)` for `t0 >= t1`
/// (negated otherwise), minus one when that lands on t0's day but before t1's time of day.
fn months_between(t0: i64, t1: i64) -> Option<i64> {
    let (d0, ms0) = (t0.div_euclid(MS_PER_DAY), t0.rem_euclid(MS_PER_DAY));
    let (d1, ms1) = (t1.div_euclid(MS_PER_DAY), t1.rem_euclid(MS_PER_DAY));
    let mut x = months_between_days(d0, d1)?;
    if add_months_to_day(d1, x)? == d0 && ms0 < ms1 {
        x -= 1;
    }
    Some(x)
}

fn months_between_days(d0: i64, d1: i64) -> Option<i64> {
    if d0 < d1 {
        return months_between_days(d1, d0).map(|m| -m);
    }
    let (y0, m0, _) = javafmt::civil_from_days(d0);
    let (y1, m1, _) = javafmt::civil_from_days(d1);
    // Adding the calendar month difference lands in d0's month: keep it if not past d0.
    let months = (y0 - y1) * 12 + i64::from(m0) - i64::from(m1);
    Some(if add_months_to_day(d1, months)? <= d0 {
        months
    } else {
        months - 1
    })
}

fn add_months_to_day(day: i64, months: i64) -> Option<i64> {
    let (y, m, d) = javafmt::civil_from_days(day);
    let (y, m, d) = add_months(y, m, d, months)?;
    Some(days_from_civil(y, m, i64::from(d)))
}

/// EXTRACT(unit FROM ts); units as Flink/Calcite name them.
fn extract(unit: &str, ts: i64) -> Result<i64, String> {
    let p = Parts::from_millis(ts);
    let year = p.year;
    Ok(match unit.to_ascii_uppercase().as_str() {
        "YEAR" => year,
        "QUARTER" => i64::from(p.quarter()),
        "MONTH" => i64::from(p.month),
        "WEEK" => i64::from(p.iso_week().1),
        "DAY" => i64::from(p.day),
        "DOY" => i64::from(p.day_of_year()),
        "DOW" => i64::from(p.days_since_sunday()) + 1,
        "ISODOW" => i64::from(p.iso_weekday()),
        "ISOYEAR" => p.iso_week().0,
        "HOUR" => i64::from(p.hour),
        "MINUTE" => i64::from(p.minute),
        "SECOND" => i64::from(p.second),
        "MILLISECOND" => i64::from(p.milli),
        "MICROSECOND" => i64::from(p.milli) * 1000,
        "NANOSECOND" => i64::from(p.milli) * 1_000_000,
        "EPOCH" => ts / 1000,
        "DECADE" => year / 10,
        "CENTURY" => {
            if year > 0 {
                (year + 99) / 100
            } else {
                (year - 99) / 100
            }
        }
        "MILLENNIUM" => {
            if year > 0 {
                (year + 999) / 1000
            } else {
                (year - 999) / 1000
            }
        }
        _ => {
            return Err(format!(
                "EXTRACT: unknown time unit '{unit}' (expected YEAR, QUARTER, MONTH, WEEK, DAY, DOY, DOW, ISODOW, ISOYEAR, HOUR, MINUTE, SECOND, MILLISECOND, MICROSECOND, NANOSECOND, EPOCH, DECADE, CENTURY or MILLENNIUM)"
            ));
        }
    })
}

/// Literal-argument checks of the date/time functions (see `check_literal_args`).
pub(super) fn check_literal_args(name: &str, args: &[Option<&Value<'_>>]) -> Result<(), String> {
    let text = |i: usize| match args.get(i) {
        Some(Some(Value::Str(s))) => Some(s.as_ref()),
        _ => None,
    };
    let pattern_ok = |p: &str, flavor: Flavor| {
        pattern(p, flavor)
            .map(drop)
            .map_err(|e| format!("{name}: {e}"))
    };
    let checked = match name {
        "FLOOR_TS" | "CEIL_TS" => text(1).map(|u| Unit::parse(name, u).map(drop)),
        "TIMESTAMPADD" | "TIMESTAMPDIFF" => text(0).map(|u| Unit::parse(name, u).map(drop)),
        "EXTRACT_FIELD" => text(0).map(|u| extract(u, 0).map(drop)),
        "TO_TIMESTAMP" => text(1).map(|p| pattern_ok(p, Flavor::Modern)),
        // The same pattern formats timestamps (DateTimeFormatter) and strings
        // (SimpleDateFormat); accept it if either reads it.
        "DATE_FORMAT" => text(1).map(|p| {
            pattern_ok(p, Flavor::Modern).or_else(|e| pattern_ok(p, Flavor::Simple).map_err(|_| e))
        }),
        "UNIX_TIMESTAMP" | "FROM_UNIXTIME" => text(1).map(|p| pattern_ok(p, Flavor::Simple)),
        "TO_TIMESTAMP_LTZ" => match args.get(1) {
            Some(Some(Value::Int(p))) => Some(check_precision(*p)),
            _ => None,
        },
        _ => None,
    };
    checked.unwrap_or(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::super::lookup;
    use super::*;
    use crate::data::time;

    use super::super::test_support::{call, ok};

    fn types(name: &str, args: &[Option<DataType>]) -> Result<DataType, String> {
        (lookup(name).expect("function exists").return_type)(args)
    }

    fn s(v: &str) -> Value<'static> {
        Value::Str(v.to_string().into())
    }

    /// A timestamp from its SQL text.
    fn ts(v: &str) -> Value<'static> {
        Value::Timestamp(time::parse_timestamp(v).expect("valid timestamp"))
    }

    use Value::{Double as D, Int as I, Null};

    #[test]
    fn to_timestamp_ltz() {
        assert_eq!(
            ok("TO_TIMESTAMP_LTZ", &[I(1_546_845_718), I(0)]),
            ts("2019-01-07 07:21:58")
        );
        assert_eq!(
            ok("TO_TIMESTAMP_LTZ", &[I(1_546_845_718_557), I(3)]),
            ts("2019-01-07 07:21:58.557")
        );
        assert_eq!(
            ok("TO_TIMESTAMP_LTZ", &[D(1.5), I(0)]),
            Value::Timestamp(1500)
        );
        assert_eq!(
            ok("TO_TIMESTAMP_LTZ", &[D(1500.9), I(3)]),
            Value::Timestamp(1500)
        );
        assert_eq!(ok("TO_TIMESTAMP_LTZ", &[I(i64::MAX), I(0)]), Null);
        assert_eq!(ok("TO_TIMESTAMP_LTZ", &[I(i64::MIN), I(3)]), Null);
        assert_eq!(ok("TO_TIMESTAMP_LTZ", &[D(f64::NAN), I(3)]), Null);
        assert_eq!(ok("TO_TIMESTAMP_LTZ", &[Null, I(3)]), Null);
        assert!(
            call("TO_TIMESTAMP_LTZ", &[I(1), I(6)])
                .unwrap_err()
                .contains("precision 6")
        );
        assert_eq!(
            types(
                "TO_TIMESTAMP_LTZ",
                &[Some(DataType::Double), Some(DataType::Int)]
            ),
            Ok(DataType::Timestamp)
        );
        assert!(types("TO_TIMESTAMP_LTZ", &[Some(DataType::Int)]).is_err());
    }

    #[test]
    fn to_timestamp() {
        assert_eq!(
            ok("TO_TIMESTAMP", &[s("2019-01-07 07:21:58")]),
            ts("2019-01-07 07:21:58")
        );
        assert_eq!(ok("TO_TIMESTAMP", &[s("2019-01-07")]), ts("2019-01-07"));
        assert_eq!(ok("TO_TIMESTAMP", &[s("garbage")]), Null);
        assert_eq!(
            ok("TO_TIMESTAMP", &[s("07/01/2019"), s("dd/MM/yyyy")]),
            ts("2019-01-07")
        );
        assert_eq!(
            ok(
                "TO_TIMESTAMP",
                &[s("2019-01-07T07:21:58.5"), s("yyyy-MM-dd'T'HH:mm:ss.S")]
            ),
            ts("2019-01-07 07:21:58.500")
        );
        // The format does not match: Flink falls back to Timestamp.valueOf.
        assert_eq!(
            ok("TO_TIMESTAMP", &[s("1999-9-10 05:20:10"), s("yyyy/MM/dd")]),
            ts("1999-09-10 05:20:10")
        );
        assert_eq!(ok("TO_TIMESTAMP", &[s("nope"), s("yyyy")]), Null);
        assert!(call("TO_TIMESTAMP", &[s("x"), s("yyyy bb")]).is_err());
    }

    #[test]
    fn date_format() {
        let t = ts("2019-01-07 07:21:58.057");
        assert_eq!(
            ok("DATE_FORMAT", &[t.clone(), s("yyyy-MM-dd HH:mm:ss")]),
            s("2019-01-07 07:21:58")
        );
        assert_eq!(
            ok(
                "DATE_FORMAT",
                &[t.clone(), s("yyyy-MM-dd'T'HH:mm:ss.SSSXXX")]
            ),
            s("2019-01-07T07:21:58.057Z")
        );
        assert_eq!(
            ok("DATE_FORMAT", &[t.clone(), s("EEE, d MMM yy h:mm a Z")]),
            s("Mon, 7 Jan 19 7:21 AM +0000")
        );
        assert_eq!(
            ok("DATE_FORMAT", &[s("2019-01-07 07:21:58"), s("yyyy/MM/dd")]),
            s("2019/01/07")
        );
        assert_eq!(ok("DATE_FORMAT", &[s("2019-01-07"), s("yyyy")]), Null);
        assert_eq!(ok("DATE_FORMAT", &[Null, s("yyyy")]), Null);
        assert!(
            call("DATE_FORMAT", &[t, s("yyyy-MM-dd bb")])
                .unwrap_err()
                .contains("DATE_FORMAT")
        );
        assert!(
            types(
                "DATE_FORMAT",
                &[Some(DataType::Int), Some(DataType::String)]
            )
            .is_err()
        );
        assert_eq!(
            types("DATE_FORMAT", &[Some(DataType::String), None]),
            Ok(DataType::String)
        );
    }

    #[test]
    fn unix_timestamp_and_back() {
        assert_eq!(ok("UNIX_TIMESTAMP", &[s("1970-01-01 00:00:44")]), I(44));
        assert_eq!(
            ok("UNIX_TIMESTAMP", &[s("2019-01-07 07:21:58")]),
            I(1_546_845_718)
        );
        // Flink's documented example (in UTC).
        assert_eq!(
            ok(
                "UNIX_TIMESTAMP",
                &[
                    s("1970-01-01 08:00:01.001 +0800"),
                    s("yyyy-MM-dd HH:mm:ss.SSS X")
                ]
            ),
            I(1)
        );
        assert_eq!(
            ok(
                "UNIX_TIMESTAMP",
                &[s("1969-12-31 23:59:59.500"), s("yyyy-MM-dd HH:mm:ss.SSS")]
            ),
            I(0)
        );
        assert_eq!(ok("UNIX_TIMESTAMP", &[s("not a date")]), I(i64::MIN));
        // Flink's documented example: FROM_UNIXTIME(44) in UTC.
        assert_eq!(ok("FROM_UNIXTIME", &[I(44)]), s("1970-01-01 00:00:44"));
        assert_eq!(
            ok("FROM_UNIXTIME", &[I(1_546_845_718), s("yyyy/MM/dd HH")]),
            s("2019/01/07 07")
        );
        assert_eq!(ok("FROM_UNIXTIME", &[D(44.9)]), s("1970-01-01 00:00:44"));
        assert_eq!(ok("FROM_UNIXTIME", &[I(-1)]), s("1969-12-31 23:59:59"));
        assert!(call("FROM_UNIXTIME", &[I(i64::MAX)]).is_ok());
        assert!(call("UNIX_TIMESTAMP", &[s("x"), s("'")]).is_err());
    }

    #[test]
    fn calendar_fields() {
        // Flink's documented examples for 1994-09-27 13:14:15.
        let t = ts("1994-09-27 13:14:15");
        let field = |name: &str| ok(name, std::slice::from_ref(&t));
        assert_eq!(field("YEAR"), I(1994));
        assert_eq!(field("QUARTER"), I(3));
        assert_eq!(field("MONTH"), I(9));
        assert_eq!(field("WEEK"), I(39));
        assert_eq!(field("DAYOFYEAR"), I(270));
        assert_eq!(field("DAYOFMONTH"), I(27));
        assert_eq!(field("DAYOFWEEK"), I(3));
        assert_eq!(field("HOUR"), I(13));
        assert_eq!(field("MINUTE"), I(14));
        assert_eq!(field("SECOND"), I(15));
        assert_eq!(ok("HOUR", &[Value::Timestamp(-1)]), I(23));
        assert_eq!(ok("YEAR", &[Null]), Null);
        assert_eq!(
            types("YEAR", &[Some(DataType::String)]).unwrap_err(),
            "YEAR expects a TIMESTAMP argument, found STRING"
        );
    }

    #[test]
    fn floor_and_ceil() {
        let t = ts("2019-08-07 07:21:58.557");
        let floor = |u: &str| ok("FLOOR_TS", &[t.clone(), s(u)]);
        let ceil = |u: &str| ok("CEIL_TS", &[t.clone(), s(u)]);
        assert_eq!(floor("SECOND"), ts("2019-08-07 07:21:58"));
        assert_eq!(floor("MINUTE"), ts("2019-08-07 07:21:00"));
        assert_eq!(floor("HOUR"), ts("2019-08-07 07:00:00"));
        assert_eq!(floor("DAY"), ts("2019-08-07"));
        assert_eq!(floor("WEEK"), ts("2019-08-04"));
        assert_eq!(floor("MONTH"), ts("2019-08-01"));
        assert_eq!(floor("QUARTER"), ts("2019-07-01"));
        assert_eq!(floor("year"), ts("2019-01-01"));
        assert_eq!(floor("MILLISECOND"), t);
        assert_eq!(ceil("SECOND"), ts("2019-08-07 07:21:59"));
        assert_eq!(ceil("HOUR"), ts("2019-08-07 08:00:00"));
        assert_eq!(ceil("DAY"), ts("2019-08-08"));
        assert_eq!(ceil("WEEK"), ts("2019-08-11"));
        assert_eq!(ceil("MONTH"), ts("2019-09-01"));
        assert_eq!(ceil("QUARTER"), ts("2019-10-01"));
        assert_eq!(ceil("YEAR"), ts("2020-01-01"));
        let boundary = ts("2019-08-01");
        assert_eq!(ok("CEIL_TS", &[boundary.clone(), s("MONTH")]), boundary);
        assert_eq!(
            ok("FLOOR_TS", &[Value::Timestamp(-1), s("DAY")]),
            ts("1969-12-31")
        );
        assert!(
            call("FLOOR_TS", &[t.clone(), s("FORTNIGHT")])
                .unwrap_err()
                .contains("FORTNIGHT")
        );
        assert!(call("CEIL_TS", &[Value::Timestamp(i64::MAX), s("YEAR")]).is_err());
        assert!(call("FLOOR_TS", &[Value::Timestamp(i64::MIN), s("YEAR")]).is_err());
    }

    #[test]
    fn timestamp_add() {
        let t = ts("2020-01-31 10:00:00");
        let add = |u: &str, n: i64| ok("TIMESTAMPADD", &[s(u), I(n), t.clone()]);
        assert_eq!(add("MONTH", 1), ts("2020-02-29 10:00:00"));
        assert_eq!(add("MONTH", -2), ts("2019-11-30 10:00:00"));
        assert_eq!(add("QUARTER", 1), ts("2020-04-30 10:00:00"));
        assert_eq!(add("YEAR", -1), ts("2019-01-31 10:00:00"));
        assert_eq!(add("WEEK", 1), ts("2020-02-07 10:00:00"));
        assert_eq!(add("DAY", -31), ts("2019-12-31 10:00:00"));
        assert_eq!(add("HOUR", 14), ts("2020-02-01 00:00:00"));
        assert_eq!(add("MINUTE", 90), ts("2020-01-31 11:30:00"));
        assert_eq!(add("SECOND", -1), ts("2020-01-31 09:59:59"));
        assert_eq!(add("MILLISECOND", 5), ts("2020-01-31 10:00:00.005"));
        assert_eq!(add("SQL_TSI_DAY", 1), ts("2020-02-01 10:00:00"));
        assert!(call("TIMESTAMPADD", &[s("DAY"), I(i64::MAX), t.clone()]).is_err());
        assert!(call("TIMESTAMPADD", &[s("YEAR"), I(i64::MAX), t.clone()]).is_err());
        assert!(call("TIMESTAMPADD", &[s("EON"), I(1), t]).is_err());
    }

    #[test]
    fn timestamp_diff() {
        let diff = |u: &str, a: &str, b: &str| ok("TIMESTAMPDIFF", &[s(u), ts(a), ts(b)]);
        assert_eq!(
            diff("DAY", "2020-01-01 23:00:00", "2020-01-02 01:00:00"),
            I(0)
        );
        assert_eq!(
            diff("HOUR", "2020-01-01 23:00:00", "2020-01-02 01:00:00"),
            I(2)
        );
        assert_eq!(
            diff("HOUR", "2020-01-02 01:00:00", "2020-01-01 23:30:00"),
            I(-1)
        );
        assert_eq!(
            diff("SECOND", "2020-01-01 00:00:00", "2020-01-01 00:00:01.999"),
            I(1)
        );
        assert_eq!(diff("WEEK", "2020-01-01", "2020-01-15"), I(2));
        assert_eq!(diff("MONTH", "2020-01-31", "2020-02-29"), I(1));
        assert_eq!(diff("MONTH", "2020-01-15", "2020-02-14"), I(0));
        assert_eq!(
            diff("MONTH", "2020-01-15 12:00:00", "2020-02-15 11:00:00"),
            I(0)
        );
        assert_eq!(
            diff("MONTH", "2020-01-15 12:00:00", "2020-02-15 12:00:00"),
            I(1)
        );
        assert_eq!(diff("MONTH", "2020-02-15", "2020-01-15"), I(-1));
        assert_eq!(diff("QUARTER", "2020-01-01", "2020-12-31"), I(3));
        assert_eq!(diff("YEAR", "2019-03-01", "2020-02-29"), I(0));
        assert_eq!(diff("YEAR", "2019-03-01", "2021-03-01"), I(2));
        assert_eq!(diff("YEAR", "2021-03-01", "2019-03-02"), I(-1));
        assert_eq!(
            ok(
                "TIMESTAMPDIFF",
                &[
                    s("MILLISECOND"),
                    Value::Timestamp(0),
                    Value::Timestamp(i64::MIN)
                ]
            ),
            I(i64::MIN)
        );
        assert!(
            call(
                "TIMESTAMPDIFF",
                &[
                    s("MILLISECOND"),
                    Value::Timestamp(i64::MIN),
                    Value::Timestamp(i64::MAX)
                ]
            )
            .is_err()
        );
    }

    #[test]
    fn months_between_matches_calcite_loop() {
        // Calcite's subtractMonths as written (a loop from an under-estimate).
        fn calcite(d0: i64, d1: i64) -> i64 {
            if d0 < d1 {
                return -calcite(d1, d0);
            }
            let mut m = (d0 - d1) / 31;
            loop {
                if add_months_to_day(d1, m).unwrap() >= d0 {
                    return m;
                }
                if add_months_to_day(d1, m + 1).unwrap() > d0 {
                    return m;
                }
                m += 1;
            }
        }
        for d0 in (-800..800).step_by(7) {
            for d1 in (-800..800).step_by(13) {
                assert_eq!(
                    months_between_days(d0, d1),
                    Some(calcite(d0, d1)),
                    "{d0} {d1}"
                );
            }
        }
    }

    #[test]
    fn extract() {
        let t = ts("2006-06-05 07:08:09.123");
        let e = |u: &str| ok("EXTRACT_FIELD", &[s(u), t.clone()]);
        assert_eq!(e("YEAR"), I(2006));
        assert_eq!(e("QUARTER"), I(2));
        assert_eq!(e("MONTH"), I(6));
        assert_eq!(e("WEEK"), I(23));
        assert_eq!(e("DAY"), I(5));
        assert_eq!(e("DOY"), I(156));
        assert_eq!(e("DOW"), I(2));
        assert_eq!(e("ISODOW"), I(1));
        assert_eq!(e("ISOYEAR"), I(2006));
        assert_eq!(e("HOUR"), I(7));
        assert_eq!(e("MINUTE"), I(8));
        assert_eq!(e("SECOND"), I(9));
        assert_eq!(e("MILLISECOND"), I(123));
        assert_eq!(e("MICROSECOND"), I(123_000));
        assert_eq!(e("EPOCH"), I(1_149_491_289));
        assert_eq!(e("DECADE"), I(200));
        assert_eq!(e("CENTURY"), I(21));
        assert_eq!(e("MILLENNIUM"), I(3));
        assert_eq!(e("dow"), I(2));
        assert!(call("EXTRACT_FIELD", &[s("FORTNIGHT"), ts("2006-06-05")]).is_err());
        assert_eq!(
            ok("EXTRACT_FIELD", &[s("EPOCH"), Value::Timestamp(-1500)]),
            I(-1)
        );
    }

    #[test]
    fn literal_checks() {
        let unit = s("WEEKS");
        assert!(check_literal_args("TIMESTAMPADD", &[Some(&unit), None, None]).is_err());
        let ok_unit = s("HOUR");
        assert!(check_literal_args("TIMESTAMPDIFF", &[Some(&ok_unit), None, None]).is_ok());
        assert!(check_literal_args("EXTRACT_FIELD", &[Some(&unit), None]).is_err());
        let precision = I(6);
        assert!(check_literal_args("TO_TIMESTAMP_LTZ", &[None, Some(&precision)]).is_err());
        let q = s("yyyy-QQ");
        // Valid for DateTimeFormatter (timestamps), not SimpleDateFormat.
        assert!(check_literal_args("DATE_FORMAT", &[None, Some(&q)]).is_ok());
        assert!(check_literal_args("FROM_UNIXTIME", &[None, Some(&q)]).is_err());
        assert!(check_literal_args("TO_TIMESTAMP", &[None, None]).is_ok());
    }
}
