//! Small value types that people write as text: durations (`15m`), sizes (`128MiB`), field
//! types (`timestamp_ms`), instants (`2019-01-07T00:00:00Z`) and SQL snippets.
//!
//! Each parses with one function used both by deserialization and by the schema check (which
//! reports the error at the value's position), and describes itself to the JSON Schema with a
//! `format` the checker knows.

use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, de};

use crate::data::DataType;

/// A length of time written with units: `250ms`, `5s`, `15m`, `1h30m`, `1d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration {
    pub millis: i64,
}

impl Duration {
    pub const ZERO: Duration = Duration { millis: 0 };

    pub fn from_millis(millis: i64) -> Duration {
        Duration { millis }
    }

    pub fn as_std(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.millis.max(0) as u64)
    }

    /// What a number written without a unit would mean with each likely unit, for the hint of
    /// `size: 900000`: "`900000ms` = 15 minutes, `900000s` = 10.4 days". `None` unless `text`
    /// is a plain whole number.
    pub fn unit_readings(text: &str) -> Option<String> {
        let text = text.trim();
        let number: i64 = text.parse().ok().filter(|n| *n > 0)?;
        let mut units: Vec<(&str, i64)> = vec![("ms", 1), ("s", 1_000)];
        if number < 1_000 {
            units.push(("m", 60_000));
        }
        let readings: Vec<String> = units
            .iter()
            .filter_map(|(unit, factor)| {
                let millis = number.checked_mul(*factor)?;
                Some(format!("`{text}{unit}` = {}", spoken(millis)))
            })
            .collect();
        Some(readings.join(", "))
    }

    /// Parses `1h30m`, `250ms`, `0`. Units: ms, s, m, h, d.
    pub fn parse(text: &str) -> Result<Duration, String> {
        let t = text.trim();
        if t == "0" {
            return Ok(Duration::ZERO);
        }
        if t.is_empty() {
            return Err("empty duration".to_string());
        }
        let mut total: i64 = 0;
        let mut rest = t;
        while !rest.is_empty() {
            // A number, possibly with a fraction (`1.5h`).
            let digits = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(format!("`{t}` is not a duration"));
            }
            let number_text = &rest[..digits];
            let number: f64 = number_text
                .parse()
                .map_err(|_| format!("`{t}` is not a duration"))?;
            rest = rest[digits..].trim_start();
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit() || c.is_whitespace())
                .unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            // The units Flink accepts in its duration settings, singular and plural.
            let factor: i64 = match unit.to_ascii_lowercase().as_str() {
                "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 1,
                "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
                "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
                "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000,
                "d" | "day" | "days" => 86_400_000,
                "" => {
                    return Err(format!(
                        "`{t}` needs a unit (ms, s, m, h or d), e.g. `{number_text}s`"
                    ));
                }
                _ => {
                    return Err(format!(
                        "unknown unit `{unit}` in `{t}`; use ms, s, m, h or d (or milliseconds, seconds, minutes, hours, days)"
                    ));
                }
            };
            let millis = number * factor as f64;
            if !millis.is_finite() || millis > i64::MAX as f64 / 2.0 {
                return Err(format!("`{t}` is too large"));
            }
            if millis.fract() != 0.0 {
                return Err(format!("`{t}` is not a whole number of milliseconds"));
            }
            total = total
                .checked_add(millis as i64)
                .ok_or_else(|| format!("`{t}` is too large"))?;
            rest = rest[unit_len..].trim_start();
        }
        Ok(Duration { millis: total })
    }
}

/// A duration as a person says it: "15 minutes", "10.4 days", "1 second".
pub fn spoken(millis: i64) -> String {
    let units = [
        (86_400_000, "day"),
        (3_600_000, "hour"),
        (60_000, "minute"),
        (1_000, "second"),
        (1, "millisecond"),
    ];
    let (size, unit) = units
        .into_iter()
        .find(|(size, _)| millis >= *size)
        .unwrap_or((1, "millisecond"));
    let value = millis as f64 / size as f64;
    let rounded = (value * 10.0).round() / 10.0;
    let plural = if rounded == 1.0 { "" } else { "s" };
    if rounded.fract() == 0.0 {
        format!("{rounded:.0} {unit}{plural}")
    } else {
        format!("{rounded:.1} {unit}{plural}")
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.millis;
        if ms == 0 {
            return write!(f, "0s");
        }
        let units = [
            (86_400_000, "d"),
            (3_600_000, "h"),
            (60_000, "m"),
            (1_000, "s"),
            (1, "ms"),
        ];
        let mut rest = ms;
        for (size, unit) in units {
            if rest >= size {
                write!(f, "{}{unit}", rest / size)?;
                rest %= size;
            }
        }
        Ok(())
    }
}

/// An amount of bytes: `128MiB`, `1GB`, `512KiB`, `4096`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ByteSize {
    pub bytes: u64,
}

impl ByteSize {
    pub fn parse(text: &str) -> Result<ByteSize, String> {
        let t = text.trim();
        let digits = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        if digits == 0 {
            return Err(format!("`{t}` is not a size; write e.g. `128MiB`"));
        }
        let number: f64 = t[..digits]
            .parse()
            .map_err(|_| format!("`{t}` is not a size"))?;
        let factor: u64 = match t[digits..].trim() {
            "" | "B" | "b" => 1,
            "KB" | "kB" | "kb" => 1_000,
            "KiB" | "K" | "k" => 1 << 10,
            "MB" | "mb" => 1_000_000,
            "MiB" | "M" => 1 << 20,
            "GB" | "gb" => 1_000_000_000,
            "GiB" | "G" => 1 << 30,
            "TB" => 1_000_000_000_000,
            "TiB" | "T" => 1 << 40,
            other => {
                return Err(format!(
                    "unknown size unit `{other}`; use B, KB, KiB, MB, MiB, GB or GiB"
                ));
            }
        };
        let bytes = number * factor as f64;
        if bytes > u64::MAX as f64 {
            return Err(format!("`{t}` is too large"));
        }
        Ok(ByteSize {
            bytes: bytes as u64,
        })
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.bytes;
        for (size, unit) in [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")] {
            if b >= size && b.is_multiple_of(size) {
                return write!(f, "{}{unit}", b / size);
            }
        }
        write!(f, "{b}B")
    }
}

/// An instant, written RFC 3339 (`2019-01-07T00:00:00Z`); milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant {
    pub millis: i64,
}

impl Instant {
    pub fn parse(text: &str) -> Result<Instant, String> {
        crate::data::time::parse_timestamp(text.trim())
            .map(|millis| Instant { millis })
            .ok_or_else(|| {
                format!("`{text}` is not a timestamp; write e.g. `2019-01-07T00:00:00Z`")
            })
    }
}

/// A declared field type: `string`, `int`, `double`, `boolean`, `timestamp`, `timestamp_ms`,
/// `timestamp_s`, `array<string>`…
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldType {
    pub data_type: DataType,
    /// Integers declared `timestamp_ms`/`timestamp_s` hold epoch time in this many ms per unit.
    pub epoch_unit_ms: Option<i64>,
    pub text: String,
}

/// The field type names accepted in `schema:`, for help texts.
pub const FIELD_TYPE_NAMES: &[&str] = &[
    "string",
    "int",
    "double",
    "boolean",
    "timestamp",
    "timestamp_ms",
    "timestamp_s",
    "array<…>",
];

impl FieldType {
    pub fn parse(text: &str) -> Result<FieldType, String> {
        let t = text.trim();
        let lower = t.to_ascii_lowercase();
        let (data_type, epoch_unit_ms) = match lower.as_str() {
            "string" | "str" | "varchar" | "text" => (DataType::String, None),
            "int" | "integer" | "bigint" | "long" => (DataType::Int, None),
            "double" | "float" | "number" => (DataType::Double, None),
            "boolean" | "bool" => (DataType::Bool, None),
            "timestamp" => (DataType::Timestamp, None),
            "timestamp_ms" => (DataType::Int, Some(1)),
            "timestamp_s" => (DataType::Int, Some(1000)),
            _ => {
                if let Some(inner) = lower
                    .strip_prefix("array<")
                    .and_then(|s| s.strip_suffix('>'))
                {
                    let element = FieldType::parse(inner)?;
                    if matches!(element.data_type, DataType::Array(_)) {
                        return Err("nested arrays are not supported".to_string());
                    }
                    (DataType::Array(Box::new(element.data_type)), None)
                } else {
                    // Every accepted spelling, so `integr` finds `integer`.
                    let accepted = [
                        "string",
                        "str",
                        "varchar",
                        "text",
                        "int",
                        "integer",
                        "bigint",
                        "long",
                        "double",
                        "float",
                        "number",
                        "boolean",
                        "bool",
                        "timestamp",
                        "timestamp_ms",
                        "timestamp_s",
                    ];
                    let hint = crate::diag::did_you_mean(&lower, accepted)
                        .map(|h| format!("; {h}"))
                        .unwrap_or_default();
                    return Err(format!(
                        "unknown field type `{t}`; use one of {}{hint}",
                        FIELD_TYPE_NAMES.join(", ")
                    ));
                }
            }
        };
        Ok(FieldType {
            data_type,
            epoch_unit_ms,
            text: t.to_string(),
        })
    }
}

/// A SQL expression as written (parsed and type-checked during validation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlText(pub String);

macro_rules! text_value {
    ($ty:ty, $format:literal, $description:literal, $parse:expr) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                let parse: fn(&str) -> Result<$ty, String> = $parse;
                parse(&text).map_err(de::Error::custom)
            }
        }

        impl JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "format": $format,
                    "description": $description,
                })
            }

            fn inline_schema() -> bool {
                true
            }
        }
    };
}

text_value!(
    Duration,
    "duration",
    "A duration with units: `250ms`, `5s`, `15m`, `1h30m`, `1d`.",
    Duration::parse
);
text_value!(
    ByteSize,
    "byte-size",
    "A size in bytes with optional units: `4096`, `512KiB`, `128MiB`, `1GB`.",
    ByteSize::parse
);
text_value!(
    Instant,
    "timestamp",
    "An instant in RFC 3339 form, e.g. `2019-01-07T00:00:00Z`.",
    Instant::parse
);
text_value!(
    FieldType,
    "field-type",
    "A field type: `string`, `int`, `double`, `boolean`, `timestamp` (text), `timestamp_ms` / `timestamp_s` (epoch numbers), or `array<type>`.",
    FieldType::parse
);
text_value!(
    SqlText,
    "sql-expression",
    "A Flink SQL scalar or aggregate expression, e.g. `rating > 3` or `COUNT(*)`.",
    |s| Ok(SqlText(s.to_string()))
);

/// Checks a string against one of the custom formats above; used by the schema check so that
/// a bad `15x` is reported at its position rather than by serde without one.
pub fn check_format(format: &str, text: &str) -> Result<(), String> {
    match format {
        "duration" => Duration::parse(text).map(drop),
        "byte-size" => ByteSize::parse(text).map(drop),
        "timestamp" => Instant::parse(text).map(drop),
        "field-type" => FieldType::parse(text).map(drop),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_the_way_people_write_them() {
        assert_eq!(Duration::parse("15m").unwrap().millis, 900_000);
        assert_eq!(Duration::parse("1h30m").unwrap().millis, 5_400_000);
        assert_eq!(Duration::parse("250ms").unwrap().millis, 250);
        assert_eq!(Duration::parse("0").unwrap().millis, 0);
        assert!(Duration::parse("15").unwrap_err().contains("needs a unit"));
        assert_eq!(
            Duration::unit_readings("900000").as_deref(),
            Some("`900000ms` = 15 minutes, `900000s` = 10.4 days")
        );
        assert_eq!(
            Duration::unit_readings("15").as_deref(),
            Some("`15ms` = 15 milliseconds, `15s` = 15 seconds, `15m` = 15 minutes")
        );
        assert_eq!(
            Duration::unit_readings("1").as_deref(),
            Some("`1ms` = 1 millisecond, `1s` = 1 second, `1m` = 1 minute")
        );
        assert_eq!(Duration::unit_readings("15s"), None);
        assert!(Duration::parse("15x").unwrap_err().contains("unknown unit"));
        assert_eq!(Duration::parse("15 minutes").unwrap().millis, 900_000);
        assert_eq!(Duration::parse("5 seconds").unwrap().millis, 5_000);
        assert_eq!(Duration::parse("1.5h").unwrap().millis, 5_400_000);
        assert!(Duration::parse("0.5ms").is_err());
        assert!(Duration::parse("abc").is_err());
        assert_eq!(Duration::parse("1h30m").unwrap().to_string(), "1h30m");
    }

    #[test]
    fn sizes_accept_binary_and_decimal_units() {
        assert_eq!(ByteSize::parse("128MiB").unwrap().bytes, 128 << 20);
        assert_eq!(ByteSize::parse("1GB").unwrap().bytes, 1_000_000_000);
        assert_eq!(ByteSize::parse("4096").unwrap().bytes, 4096);
        assert!(ByteSize::parse("12XB").is_err());
        assert_eq!(ByteSize::parse("128MiB").unwrap().to_string(), "128MiB");
    }

    #[test]
    fn field_types_include_epoch_timestamps_and_arrays() {
        let t = FieldType::parse("timestamp_ms").unwrap();
        assert_eq!((t.data_type, t.epoch_unit_ms), (DataType::Int, Some(1)));
        assert_eq!(
            FieldType::parse("array<string>").unwrap().data_type,
            DataType::Array(Box::new(DataType::String))
        );
        assert!(
            FieldType::parse("strng")
                .unwrap_err()
                .contains("did you mean `string`")
        );
    }
}
