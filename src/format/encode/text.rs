//! Text forms of values, appended to a byte buffer without allocating: the CSV and JSON
//! encoders share them. Each produces exactly the bytes of its reference in `crate::data`
//! (`format_double`, `time::format_sql`, `Value`'s `Display`), which the tests check; the
//! references allocate a `String` per value, too slow for output at hundreds of MB/s.

use std::cell::RefCell;
use std::fmt::{self, Write};

use crate::data::time::{MAX_MILLIS, MIN_MILLIS};
use crate::data::{Column, ColumnData};

#[inline]
pub(super) fn push_int(buf: &mut Vec<u8>, x: i64) {
    buf.extend_from_slice(itoa::Buffer::new().format(x).as_bytes());
}

#[inline]
pub(super) fn push_bool(buf: &mut Vec<u8>, b: bool) {
    buf.extend_from_slice(if b { b"true" } else { b"false" });
}

/// A double the way Java's `Double.toString` (and `format_double`, behind `Value`'s `Display`)
/// prints it: plain decimals with at least one fraction digit for `1e-3 <= |d| < 1e7`
/// (`0.5`, `1.0`, `123456.789`), else one digit, fraction and exponent (`1.0E10`, `1.5E-5`).
pub(super) fn push_double(buf: &mut Vec<u8>, d: f64) {
    if !d.is_finite() {
        let text: &[u8] = if d.is_nan() {
            b"NaN"
        } else if d > 0.0 {
            b"Infinity"
        } else {
            b"-Infinity"
        };
        buf.extend_from_slice(text);
        return;
    }
    if d == 0.0 {
        buf.extend_from_slice(if d.is_sign_negative() {
            b"-0.0"
        } else {
            b"0.0"
        });
        return;
    }
    // The digits come from Rust's shortest round-trip formatting, as in `format_double`
    // (ryu would be faster, but breaks ties between two shortest candidates differently:
    // 1000000000000000.25 gives ...0.2 there, ...0.3 here). Formatted into a stack buffer as
    // `d.ddde±x`, then laid out Java's way.
    let mut printed = StackText::default();
    // 17 digits, point, `e-324`: always fits.
    let _ = write!(printed, "{:e}", d.abs());
    let printed = printed.as_bytes();
    let (mantissa, exponent) = match printed.iter().position(|&b| b == b'e') {
        Some(e) => (&printed[..e], parse_exponent(&printed[e + 1..])),
        None => (printed, 0),
    };
    // `digits` holds the significant digits d1 d2 d3…; the value is 0.d1d2d3… × 10^point.
    let mut digits = [0u8; 32];
    let mut n = 0;
    let mut point = 0i32;
    let mut after_point = false;
    for &b in mantissa {
        if b == b'.' {
            after_point = true;
        } else if n == 0 && b == b'0' {
            // A leading zero: after the point it scales the value down.
            if after_point {
                point -= 1;
            }
        } else {
            digits[n] = b;
            n += 1;
            if !after_point {
                point += 1;
            }
        }
    }
    while n > 1 && digits[n - 1] == b'0' {
        n -= 1;
    }
    let digits = &digits[..n];
    // Scientific exponent: the value is d1.d2d3… × 10^sci.
    let sci = point + exponent - 1;

    if d < 0.0 {
        buf.push(b'-');
    }
    if (1e-3..1e7).contains(&d.abs()) {
        if sci >= 0 {
            let int_len = sci as usize + 1;
            if digits.len() <= int_len {
                buf.extend_from_slice(digits);
                buf.resize(buf.len() + int_len - digits.len(), b'0');
                buf.extend_from_slice(b".0");
            } else {
                buf.extend_from_slice(&digits[..int_len]);
                buf.push(b'.');
                buf.extend_from_slice(&digits[int_len..]);
            }
        } else {
            buf.extend_from_slice(b"0.");
            buf.resize(buf.len() + (-sci - 1) as usize, b'0');
            buf.extend_from_slice(digits);
        }
    } else {
        buf.push(digits[0]);
        buf.push(b'.');
        if digits.len() > 1 {
            buf.extend_from_slice(&digits[1..]);
        } else {
            buf.push(b'0');
        }
        buf.push(b'E');
        push_int(buf, i64::from(sci));
    }
}

/// A small text buffer on the stack for `write!`.
#[derive(Default)]
struct StackText {
    bytes: [u8; 32],
    len: usize,
}

impl StackText {
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        self.bytes
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The exponent after the `e` (`-7`, `16`).
fn parse_exponent(text: &[u8]) -> i32 {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let value = digits
        .iter()
        .fold(0i32, |acc, &b| acc * 10 + i32::from(b - b'0'));
    if negative { -value } else { value }
}

const MILLIS_PER_DAY: i64 = 86_400_000;

/// The text of one timestamp in range (years 1–9999), kept to be written again: rows of a
/// window repeat its start and end, and other times mostly share the day, whose digits are
/// then not computed again.
#[derive(Clone, Copy)]
pub(super) struct TimestampText {
    millis: i64,
    text: [u8; 23],
}

impl TimestampText {
    pub(super) const fn new() -> TimestampText {
        // `i64::MIN` is never a day in range, so the first timestamp fills every digit.
        TimestampText {
            millis: i64::MIN,
            text: *b"0000-00-00 00:00:00.000",
        }
    }

    /// `yyyy-MM-dd HH:mm:ss.SSS` of `millis`, which must be in `MIN_MILLIS..=MAX_MILLIS`.
    #[inline]
    pub(super) fn of(&mut self, millis: i64) -> &[u8; 23] {
        if self.millis != millis {
            self.set(millis);
        }
        &self.text
    }

    fn set(&mut self, millis: i64) {
        let text = &mut self.text;
        let day = millis.div_euclid(MILLIS_PER_DAY);
        if self.millis.div_euclid(MILLIS_PER_DAY) != day {
            let (year, month, day) = civil_from_days(day);
            put_digits(&mut text[0..4], year as u32);
            put_digits(&mut text[5..7], month);
            put_digits(&mut text[8..10], day);
        }
        let of_day = millis.rem_euclid(MILLIS_PER_DAY);
        put_digits(&mut text[11..13], (of_day / 3_600_000) as u32);
        put_digits(&mut text[14..16], (of_day / 60_000 % 60) as u32);
        put_digits(&mut text[17..19], (of_day / 1000 % 60) as u32);
        put_digits(&mut text[20..23], (of_day % 1000) as u32);
        self.millis = millis;
    }
}

/// The text of recently formatted timestamps (see [`push_timestamp`]).
struct TimestampCache {
    /// Window rows repeat their start and end row after row, alternating.
    entries: [TimestampText; 2],
    /// The entry used last (the other one is replaced on a miss).
    recent: usize,
}

thread_local! {
    static TIMESTAMPS: RefCell<TimestampCache> = const {
        RefCell::new(TimestampCache {
            entries: [TimestampText::new(); 2],
            recent: 0,
        })
    };
}

/// Whether `millis` is written as a date and time (else as the bare number).
#[inline]
pub(super) fn timestamp_in_range(millis: i64) -> bool {
    (MIN_MILLIS..=MAX_MILLIS).contains(&millis)
}

/// `yyyy-MM-dd HH:mm:ss.SSS` in UTC, as [`crate::data::time::format_sql`] (which falls back to
/// the bare number outside years 1–9999).
pub(super) fn push_timestamp(buf: &mut Vec<u8>, millis: i64) {
    if !timestamp_in_range(millis) {
        push_int(buf, millis);
        return;
    }
    TIMESTAMPS.with_borrow_mut(|cache| {
        // The entry used last, else the other one: that one holds `millis` or is replaced.
        let k = if cache.entries[cache.recent].millis == millis {
            cache.recent
        } else {
            1 - cache.recent
        };
        cache.recent = k;
        buf.extend_from_slice(cache.entries[k].of(millis));
    });
}

/// Writes `value` zero-padded into all of `out`.
fn put_digits(out: &mut [u8], mut value: u32) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// (year, month, day) of a day count since 1970-01-01 in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March, so the leap day comes last.
    let march_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * march_month + 2) / 5 + 1) as u32;
    let month = if march_month < 10 {
        march_month + 3
    } else {
        march_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The text of a value as `Value`'s `Display` gives it (CSV fields): NULL is empty, arrays are
/// `[a, b]` with their elements' text.
pub(super) fn push_display(buf: &mut Vec<u8>, column: &Column, row: usize) {
    if column.is_null(row) {
        return;
    }
    match &column.data {
        ColumnData::Bool(v) => push_bool(buf, v[row]),
        ColumnData::Int(v) => push_int(buf, v[row]),
        ColumnData::Double(v) => push_double(buf, v[row]),
        ColumnData::Timestamp(v) => push_timestamp(buf, v[row]),
        ColumnData::Str(s) => buf.extend_from_slice(s.get(row).as_bytes()),
        ColumnData::List(l) => {
            buf.push(b'[');
            for i in l.offsets[row] as usize..l.offsets[row + 1] as usize {
                if i > l.offsets[row] as usize {
                    buf.extend_from_slice(b", ");
                }
                push_display(buf, &l.values, i);
            }
            buf.push(b']');
        }
    }
}

/// A small deterministic generator for the encoders' randomised tests.
#[cfg(test)]
pub(super) struct TestRng(pub u64);

#[cfg(test)]
impl TestRng {
    pub fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::time::format_sql;
    use crate::data::{DataType, Value};

    fn double_text(d: f64) -> String {
        let mut buf = Vec::new();
        push_double(&mut buf, d);
        String::from_utf8(buf).unwrap()
    }

    /// The reference: `Value::Double`'s `Display` is `format_double`.
    fn format_double(d: f64) -> String {
        Value::Double(d).to_string()
    }

    fn timestamp_text(millis: i64) -> String {
        let mut buf = Vec::new();
        push_timestamp(&mut buf, millis);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn doubles_print_like_java() {
        for (d, expected) in [
            (1.0, "1.0"),
            (-1.0, "-1.0"),
            (0.5, "0.5"),
            (0.001, "0.001"),
            (0.000_999, "9.99E-4"),
            (1e10, "1.0E10"),
            (-1.5e-5, "-1.5E-5"),
            (123_456.789, "123456.789"),
            (9_999_999.0, "9999999.0"),
            (10_000_000.0, "1.0E7"),
            (1e16, "1.0E16"),
            (1.234e300, "1.234E300"),
            // Two shortest candidates (…0.2 and …0.3) are equally near: as `format_double`.
            (1e15 + 0.25, "1.0000000000000003E15"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(double_text(d), expected, "{d:?}");
        }
    }

    #[test]
    fn doubles_match_format_double() {
        let mut specials = vec![
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
            5e-324,
            1e-3,
            1e7,
            0.1 + 0.2,
            1.0 / 3.0,
            2.0_f64.powi(53),
            1e15,
            1e16,
            1e17,
            1e22,
            1e23,
        ];
        for k in -30..30 {
            let p = 10f64.powi(k);
            specials.extend([p, p * 1.5, p - p * f64::EPSILON, p + p * f64::EPSILON]);
        }
        for d in specials {
            for d in [d, -d] {
                assert_eq!(double_text(d), format_double(d), "{d:?}");
            }
        }
        let mut rng = TestRng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..100_000 {
            // Arbitrary bit patterns cover every exponent; short decimals cover the values
            // people actually write (prices, ratios).
            let any = f64::from_bits(rng.next());
            let decimal =
                (rng.below(2_000_000_000) as f64 - 1e9) / 10f64.powi(rng.below(12) as i32);
            for d in [any, decimal] {
                if d.is_finite() {
                    assert_eq!(
                        double_text(d),
                        format_double(d),
                        "{d:?} ({:#x})",
                        d.to_bits()
                    );
                }
            }
        }
    }

    #[test]
    fn timestamps_match_format_sql() {
        for millis in [
            0,
            -1,
            1,
            1_546_845_718_557,
            951_782_400_000,    // 2000-02-29
            -2_203_891_200_000, // 1900-03-01
            MIN_MILLIS,
            MIN_MILLIS - 1,
            MAX_MILLIS,
            MAX_MILLIS + 1,
            i64::MIN,
            i64::MAX,
        ] {
            assert_eq!(timestamp_text(millis), format_sql(millis), "{millis}");
        }
        assert_eq!(timestamp_text(1_546_845_718_557), "2019-01-07 07:21:58.557");
        assert_eq!(timestamp_text(MIN_MILLIS), "0001-01-01 00:00:00.000");
        let mut rng = TestRng(42);
        let span = (MAX_MILLIS - MIN_MILLIS) as u64;
        for _ in 0..50_000 {
            let millis = MIN_MILLIS + rng.below(span + 1) as i64;
            assert_eq!(timestamp_text(millis), format_sql(millis), "{millis}");
        }
    }

    #[test]
    fn display_text_matches_value_display() {
        let element = DataType::Array(Box::new(DataType::Double));
        let mut column = Column::new(&DataType::Array(Box::new(element)), 4);
        let values = [
            Value::List(vec![
                Value::List(vec![Value::Double(1.0), Value::Null, Value::Double(1e10)]),
                Value::Null,
                Value::List(vec![]),
            ]),
            Value::Null,
            Value::List(vec![]),
        ];
        for value in &values {
            column.push_value(value);
        }
        for (row, value) in values.iter().enumerate() {
            let mut buf = Vec::new();
            push_display(&mut buf, &column, row);
            assert_eq!(String::from_utf8(buf).unwrap(), value.to_string());
        }
        let mut buf = Vec::new();
        push_display(&mut buf, &column, 0);
        assert_eq!(buf, b"[[1.0, , 1.0E10], , []]");

        let mut strings = Column::new(&DataType::Array(Box::new(DataType::String)), 1);
        strings.push_value(&Value::List(vec![
            Value::Str("a, b".into()),
            Value::Str("".into()),
        ]));
        let mut buf = Vec::new();
        push_display(&mut buf, &strings, 0);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            strings.value(0).to_string()
        );
    }
}
