//! Timestamps: milliseconds since the Unix epoch, always UTC (Flink runs with
//! `table.local-time-zone = UTC` in our translation, so both engines agree).

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// The smallest and largest instants we represent; outside them formatting is undefined.
pub const MIN_MILLIS: i64 = -62_135_596_800_000; // 0001-01-01
pub const MAX_MILLIS: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999

pub fn to_datetime(millis: i64) -> Option<DateTime<Utc>> {
    if !(MIN_MILLIS..=MAX_MILLIS).contains(&millis) {
        return None;
    }
    Utc.timestamp_millis_opt(millis).single()
}

/// `yyyy-MM-dd HH:mm:ss.SSS`, how Flink prints TIMESTAMP(3) values.
pub fn format_sql(millis: i64) -> String {
    match to_datetime(millis) {
        Some(dt) => dt.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        None => millis.to_string(),
    }
}

/// Formats with strftime patterns (`%Y-%m-%d--%H`), used by path templates.
pub fn format_strftime(millis: i64, pattern: &str) -> String {
    match to_datetime(millis) {
        Some(dt) => {
            use std::fmt::Write;
            let mut out = String::new();
            // chrono reports bad patterns through fmt::Error; validation rejects them first.
            if write!(out, "{}", dt.format(pattern)).is_err() {
                return millis.to_string();
            }
            out
        }
        None => millis.to_string(),
    }
}

/// Whether a strftime pattern is valid (used by validation of path templates).
pub fn check_strftime(pattern: &str) -> Result<(), String> {
    use chrono::format::{Item, StrftimeItems};
    if StrftimeItems::new(pattern).any(|item| matches!(item, Item::Error)) {
        return Err(format!("`{pattern}` is not a valid strftime pattern"));
    }
    Ok(())
}

/// Parses the timestamp forms people and Flink write: RFC 3339 (`2019-01-07T07:15:00Z`,
/// with offset or fraction), SQL (`2019-01-07 07:15:00.123`, taken as UTC) and a bare date.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
        return Some(dt.timestamp_millis());
    }
    for pattern in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, pattern) {
            return Some(naive.and_utc().timestamp_millis());
        }
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return date
            .and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc().timestamp_millis());
    }
    None
}

/// RFC 3339 with milliseconds, for JSON output and logs.
pub fn format_rfc3339(millis: i64) -> String {
    match to_datetime(millis) {
        Some(dt) => dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => millis.to_string(),
    }
}

/// `floor(t / size) * size` that rounds towards negative infinity for times before 1970.
#[inline]
pub fn floor_to(t: i64, size: i64) -> i64 {
    t - t.rem_euclid(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_common_forms() {
        let expected = 1_546_845_718_557;
        assert_eq!(parse_timestamp("2019-01-07T07:21:58.557Z"), Some(expected));
        assert_eq!(parse_timestamp("2019-01-07 07:21:58.557"), Some(expected));
        assert_eq!(
            parse_timestamp("2019-01-07T08:21:58.557+01:00"),
            Some(expected)
        );
        assert_eq!(parse_timestamp("2019-01-07"), Some(1_546_819_200_000));
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn formats_like_flink() {
        assert_eq!(format_sql(1_546_845_718_557), "2019-01-07 07:21:58.557");
        assert_eq!(
            format_strftime(1_546_845_718_557, "%Y-%m-%d--%H"),
            "2019-01-07--07"
        );
        assert!(check_strftime("%Y-%").is_err());
    }

    #[test]
    fn floor_rounds_down_before_the_epoch() {
        assert_eq!(floor_to(-1, 1000), -1000);
        assert_eq!(floor_to(1999, 1000), 1000);
    }
}
