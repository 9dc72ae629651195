//! Path templates of bucketed sinks: `"{window_start:%Y-%m-%d--%H}/{movieId}/"`.
//!
//! `{field}` inserts a value, `{field:FORMAT}` formats a time field with strftime. Inserted
//! values are sanitized by default so record data cannot add path levels or leave the prefix.

use std::fmt::Write;

use crate::data::{Column, Schema, Value, time};

/// One piece of a template.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    Literal(String),
    Field {
        name: String,
        /// Index of the field in the sink's input schema.
        column: usize,
        /// strftime format for time fields.
        format: Option<String>,
        /// For epoch-number fields: ms per unit.
        epoch_unit_ms: Option<i64>,
        /// The whole value of a Hive-style level (`key={field}/`): escaped the way Flink's
        /// filesystem sink escapes partition values, so both engines lay out files alike.
        hive: bool,
    },
}

/// A parsed, resolved template.
#[derive(Debug, Clone, PartialEq)]
pub struct PathTemplate {
    pub segments: Vec<Segment>,
    pub sanitize: bool,
}

/// A template problem, with the byte range inside the template text.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateError {
    pub code: &'static str,
    pub message: String,
    pub span: (usize, usize),
    pub help: Option<String>,
}

/// Placeholder `{…}` found in a template, before resolution.
#[derive(Debug, Clone, PartialEq)]
struct Placeholder<'a> {
    name: &'a str,
    format: Option<&'a str>,
    start: usize,
    end: usize,
}

/// The name written for NULL or empty values (Flink's `partition.default-name`).
pub const DEFAULT_PARTITION: &str = "__DEFAULT_PARTITION__";

impl PathTemplate {
    /// Parses `text` and resolves its fields against `schema`.
    ///
    /// # Errors
    /// Every problem: unbalanced braces, unknown fields, formats on non-time fields, bad
    /// strftime patterns, `..` or absolute paths, unsanitized text fields.
    pub fn parse(
        text: &str,
        schema: &Schema,
        sanitize: bool,
    ) -> Result<PathTemplate, Vec<TemplateError>> {
        let mut errors = Vec::new();
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut literal_start = 0;
        let mut i = 0;
        let bytes = text.as_bytes();
        while i < bytes.len() {
            match bytes[i] {
                b'{' => {
                    if !literal.is_empty() {
                        check_literal(&literal, literal_start, literal_start == 0, &mut errors);
                        segments.push(Segment::Literal(std::mem::take(&mut literal)));
                    }
                    let Some(close) = text[i..].find('}') else {
                        errors.push(TemplateError {
                            code: "bad-template",
                            message: "`{` is never closed".to_string(),
                            span: (i, text.len()),
                            help: Some("write `{field}` or `{field:%Y-%m-%d}`".to_string()),
                        });
                        break;
                    };
                    let inner = &text[i + 1..i + close];
                    let (name, format) = match inner.split_once(':') {
                        Some((n, f)) => (n.trim(), Some(f)),
                        None => (inner.trim(), None),
                    };
                    let placeholder = Placeholder {
                        name,
                        format,
                        start: i,
                        end: i + close + 1,
                    };
                    match resolve(&placeholder, schema, sanitize) {
                        Ok(segment) => segments.push(segment),
                        Err(e) => errors.push(e),
                    }
                    i += close + 1;
                    literal_start = i;
                }
                b'}' => {
                    errors.push(TemplateError {
                        code: "bad-template",
                        message: "`}` without a matching `{`".to_string(),
                        span: (i, i + 1),
                        help: None,
                    });
                    i += 1;
                }
                _ => {
                    let c = text[i..].chars().next().unwrap_or(' ');
                    literal.push(c);
                    i += c.len_utf8();
                }
            }
        }
        if !literal.is_empty() {
            check_literal(&literal, literal_start, literal_start == 0, &mut errors);
            segments.push(Segment::Literal(literal));
        }
        mark_hive_levels(&mut segments);
        if errors.is_empty() {
            Ok(PathTemplate { segments, sanitize })
        } else {
            Err(errors)
        }
    }

    /// Whether the template inserts no values (every record goes to one bucket).
    pub fn is_static(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Literal(_)))
    }

    /// Renders the bucket path of one row into `out` (cleared first).
    pub fn render_into(&self, columns: &[Column], row: usize, out: &mut String) {
        out.clear();
        for segment in &self.segments {
            match segment {
                Segment::Literal(s) => out.push_str(s),
                Segment::Field {
                    column,
                    format,
                    epoch_unit_ms,
                    hive,
                    ..
                } => {
                    let value = columns[*column].value(row);
                    let start = out.len();
                    if *hive {
                        let raw = match (&value, format) {
                            (Value::Null, _) => String::new(),
                            (Value::Timestamp(ms), Some(f)) => time::format_strftime(*ms, f),
                            (Value::Int(n), Some(f)) => time::format_strftime(
                                n.saturating_mul(epoch_unit_ms.unwrap_or(1)),
                                f,
                            ),
                            (v, _) => v.to_string(),
                        };
                        hive_escape_into(&raw, out);
                        continue;
                    }
                    match (&value, format) {
                        (Value::Null, _) => {}
                        // A time format is the user's own text around digits: its `/` are
                        // meant as path levels, so it is not escaped.
                        (Value::Timestamp(ms), Some(f)) => {
                            out.push_str(&time::format_strftime(*ms, f));
                            continue;
                        }
                        (Value::Int(n), Some(f)) => {
                            let ms = n.saturating_mul(epoch_unit_ms.unwrap_or(1));
                            out.push_str(&time::format_strftime(ms, f));
                            continue;
                        }
                        (v, _) => {
                            let _ = write!(out, "{v}");
                        }
                    }
                    if self.sanitize {
                        let raw = out.split_off(start);
                        let segment_start = out.is_empty() || out.ends_with('/');
                        sanitize_into(&raw, segment_start, out);
                    } else if out.len() == start {
                        out.push_str(DEFAULT_PARTITION);
                    }
                }
            }
        }
    }
}

fn resolve(p: &Placeholder<'_>, schema: &Schema, sanitize: bool) -> Result<Segment, TemplateError> {
    let span = (p.start, p.end);
    let Some(column) = schema.index_of(p.name) else {
        let expression = p.name.contains(|c: char| "( )+-*/|'".contains(c));
        let help = if expression {
            Some(
                "a template inserts fields, not expressions: compute it in a `select` first"
                    .to_string(),
            )
        } else {
            crate::diag::did_you_mean(p.name, schema.names())
        };
        let help = help.unwrap_or_else(|| {
            format!(
                "fields available here: {}",
                crate::diag::list_names(&schema.names())
            )
        });
        return Err(TemplateError {
            code: "unknown-field",
            message: format!(
                "path template uses `{}`, which the sink's input does not carry",
                p.name
            ),
            span,
            help: Some(help),
        });
    };
    let field = &schema.fields[column];
    if let Some(format) = p.format {
        if !field.is_time() {
            return Err(TemplateError {
                code: "format-on-non-time",
                message: format!(
                    "`{}` is {}, so it cannot take a time format",
                    p.name, field.data_type
                ),
                span,
                help: Some(format!("write `{{{}}}`", p.name)),
            });
        }
        if let Err(m) = time::check_strftime(format) {
            return Err(TemplateError {
                code: "bad-time-format",
                message: m,
                span,
                help: Some("strftime: %Y year, %m month, %d day, %H hour, %M minute".to_string()),
            });
        }
    }
    if !sanitize && field.data_type == crate::data::DataType::String {
        return Err(TemplateError {
            code: "unsafe-path-template",
            message: format!(
                "`{{{}}}` inserts record text into the path unsanitized: a value such as `../x` or `a/b` would leave the bucket",
                p.name
            ),
            span,
            help: Some("remove `path_sanitize: false` (values are then escaped), or bucket by a non-text field".to_string()),
        });
    }
    Ok(Segment::Field {
        name: p.name.to_string(),
        column,
        format: p.format.map(str::to_string),
        epoch_unit_ms: field.epoch_unit_ms,
        hive: false,
    })
}

/// Marks fields that make up the whole value of a `key={field}` level (key of letters,
/// digits, `_` and `-`; a time format without `/`).
fn mark_hive_levels(segments: &mut [Segment]) {
    for i in 1..segments.len() {
        let after_key = match &segments[i - 1] {
            Segment::Literal(text) => text
                .rsplit('/')
                .next()
                .and_then(|level| level.strip_suffix('='))
                .is_some_and(|key| {
                    !key.is_empty()
                        && key
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                }),
            Segment::Field { .. } => false,
        };
        let level_ends = match segments.get(i + 1) {
            None => true,
            Some(Segment::Literal(text)) => text.starts_with('/'),
            Some(Segment::Field { .. }) => false,
        };
        if let Segment::Field { format, hive, .. } = &mut segments[i] {
            *hive = after_key && level_ends && !format.as_deref().is_some_and(|f| f.contains('/'));
        }
    }
}

/// A partition value the way Flink writes it (`PartitionPathUtils.escapePathName`): NULL,
/// empty and blank values are [`DEFAULT_PARTITION`]; control characters and
/// `"#%'*/:=?\{[]^` and DEL are `%XX`.
pub fn hive_escape_into(raw: &str, out: &mut String) {
    if raw.trim().is_empty() {
        out.push_str(DEFAULT_PARTITION);
        return;
    }
    for c in raw.chars() {
        if c < ' ' || c == '\x7f' || "\"#%'*/:=?\\{[]^".contains(c) {
            let _ = write!(out, "%{:02X}", c as u32);
        } else {
            out.push(c);
        }
    }
}

fn check_literal(literal: &str, start: usize, first: bool, errors: &mut Vec<TemplateError>) {
    if first && literal.starts_with('/') {
        errors.push(TemplateError {
            code: "unsafe-path",
            message: "a path template is relative to the sink's `url`; it cannot start with `/`"
                .to_string(),
            span: (start, start + 1),
            help: Some("drop the leading `/`".to_string()),
        });
    }
    if literal.split(['/', '\\']).any(|part| part == "..") {
        let at = literal.find("..").unwrap_or(0) + start;
        errors.push(TemplateError {
            code: "unsafe-path",
            message: "`..` in a path template would leave the sink's prefix".to_string(),
            span: (at, at + 2),
            help: Some(
                "the template is relative to the sink's `url`; to write elsewhere, change `url`"
                    .to_string(),
            ),
        });
    }
}

/// Escapes a value so it stays one safe path segment: `/`, `\`, control characters and `%`
/// are percent-encoded, `.`/`..` are encoded, a leading `.` or `_` is encoded where the value
/// starts a directory name (Athena, Hive and Spark skip such directories), and empty or NULL
/// becomes [`DEFAULT_PARTITION`] (as Flink does).
pub fn sanitize_into(raw: &str, segment_start: bool, out: &mut String) {
    if raw.is_empty() {
        out.push_str(DEFAULT_PARTITION);
        return;
    }
    if raw == "." || raw == ".." {
        for _ in 0..raw.len() {
            out.push_str("%2E");
        }
        return;
    }
    for (i, c) in raw.chars().enumerate() {
        match c {
            '.' | '_' if i == 0 && segment_start => {
                let _ = write!(out, "%{:02X}", c as u8);
            }
            '/' | '\\' | '%' | '\0'..='\x1f' | '\x7f' => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "%{b:02X}");
                }
            }
            c => out.push(c),
        }
    }
}

/// How long one bucket of a time format lasts: its finest field (`%Y-%m-%d--%H` → an hour).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TimeUnit {
    Millisecond,
    Second,
    Minute,
    Hour,
    Day,
    /// ISO weeks (Monday to Sunday).
    Week,
    Month,
    Year,
}

/// The finest unit a strftime format shows; `None` when it shows no time at all.
pub fn time_unit(format: &str) -> Option<TimeUnit> {
    use chrono::format::{Fixed, Item, Numeric, StrftimeItems};
    let mut finest: Option<TimeUnit> = None;
    for item in StrftimeItems::new(format) {
        let unit = match item {
            Item::Numeric(n, _) => match n {
                Numeric::Year
                | Numeric::YearDiv100
                | Numeric::YearMod100
                | Numeric::IsoYear
                | Numeric::IsoYearDiv100
                | Numeric::IsoYearMod100
                | Numeric::Quarter => TimeUnit::Year,
                Numeric::Month => TimeUnit::Month,
                Numeric::WeekFromSun | Numeric::WeekFromMon | Numeric::IsoWeek => TimeUnit::Week,
                Numeric::Day
                | Numeric::NumDaysFromSun
                | Numeric::WeekdayFromMon
                | Numeric::Ordinal => TimeUnit::Day,
                Numeric::Hour | Numeric::Hour12 => TimeUnit::Hour,
                Numeric::Minute => TimeUnit::Minute,
                Numeric::Second | Numeric::Timestamp => TimeUnit::Second,
                _ => TimeUnit::Millisecond,
            },
            Item::Fixed(f) => match f {
                Fixed::ShortMonthName | Fixed::LongMonthName => TimeUnit::Month,
                Fixed::ShortWeekdayName | Fixed::LongWeekdayName => TimeUnit::Day,
                Fixed::LowerAmPm | Fixed::UpperAmPm => TimeUnit::Hour,
                Fixed::RFC2822 | Fixed::RFC3339 => TimeUnit::Second,
                Fixed::TimezoneName
                | Fixed::TimezoneOffset
                | Fixed::TimezoneOffsetColon
                | Fixed::TimezoneOffsetDoubleColon
                | Fixed::TimezoneOffsetTripleColon
                | Fixed::TimezoneOffsetColonZ
                | Fixed::TimezoneOffsetZ => continue,
                _ => TimeUnit::Millisecond,
            },
            _ => continue,
        };
        finest = Some(finest.map_or(unit, |f| f.min(unit)));
    }
    finest
}

/// About how long a bucket of `unit` lasts (months and years as 30 and 365 days).
pub fn unit_ms(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Millisecond => 1,
        TimeUnit::Second => 1_000,
        TimeUnit::Minute => 60_000,
        TimeUnit::Hour => 3_600_000,
        TimeUnit::Day => 86_400_000,
        TimeUnit::Week => 7 * 86_400_000,
        TimeUnit::Month => 30 * 86_400_000,
        TimeUnit::Year => 365 * 86_400_000,
    }
}

/// The end (exclusive, ms since the epoch, UTC) of the `unit` bucket holding `ms`.
pub fn bucket_end(ms: i64, unit: TimeUnit) -> i64 {
    use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc};
    let fixed = |size: i64| ms.div_euclid(size).saturating_add(1).saturating_mul(size);
    match unit {
        TimeUnit::Millisecond => ms.saturating_add(1),
        TimeUnit::Second => fixed(1_000),
        TimeUnit::Minute => fixed(60_000),
        TimeUnit::Hour => fixed(3_600_000),
        TimeUnit::Day => fixed(86_400_000),
        TimeUnit::Week | TimeUnit::Month | TimeUnit::Year => {
            let Some(t) = Utc.timestamp_millis_opt(ms).single() else {
                return i64::MAX;
            };
            let date = t.date_naive();
            let next = match unit {
                TimeUnit::Week => Some(
                    date + Duration::days(7 - i64::from(date.weekday().num_days_from_monday())),
                ),
                TimeUnit::Month if date.month() == 12 => {
                    NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)
                }
                TimeUnit::Month => NaiveDate::from_ymd_opt(date.year(), date.month() + 1, 1),
                _ => NaiveDate::from_ymd_opt(date.year() + 1, 1, 1),
            };
            next.and_then(|d| d.and_hms_opt(0, 0, 0))
                .map_or(i64::MAX, |d| d.and_utc().timestamp_millis())
        }
    }
}

/// The directory name a time level gets in a Hive-style layout: `dt` for a date (and time),
/// or the unit of a format with one field (`%H` → `hour`). Flink's translation names
/// non-Hive levels the same way.
pub fn time_level_name(format: &str) -> &'static str {
    let specifiers: Vec<char> = format
        .split('%')
        .skip(1)
        .filter_map(|s| s.chars().next())
        .collect();
    match specifiers.as_slice() {
        ['Y'] => "year",
        ['m'] => "month",
        ['d'] => "day",
        ['H'] => "hour",
        ['M'] => "minute",
        _ => "dt",
    }
}

/// A template with every level that is one bare placeholder written Hive style (`key=value`),
/// so Athena, Spark, DuckDB and pyarrow read the levels as columns:
/// `{window_start:%Y-%m-%d--%H}/{movieId}/` → `dt={window_start:%Y-%m-%d--%H}/movieId={movieId}/`.
/// Levels with other text are kept as written.
pub fn hive_style(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut level = String::new();
    let mut depth = 0usize;
    let flush = |level: &mut String, out: &mut String| {
        let inner = level
            .strip_prefix('{')
            .and_then(|l| l.strip_suffix('}'))
            .filter(|i| !i.contains(['{', '}']));
        match inner {
            Some(inner) => {
                let (name, format) = match inner.split_once(':') {
                    Some((n, f)) => (n.trim(), Some(f)),
                    None => (inner.trim(), None),
                };
                let key = match format {
                    Some(f) if time_unit(f).is_some() => time_level_name(f),
                    _ => name,
                };
                out.push_str(key);
                out.push('=');
                out.push_str(level);
            }
            None => out.push_str(level),
        }
        level.clear();
    };
    for c in text.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            '/' if depth == 0 => {
                flush(&mut level, &mut out);
                out.push('/');
                continue;
            }
            _ => {}
        }
        level.push(c);
    }
    flush(&mut level, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DataType, Field};

    fn schema() -> Schema {
        let mut ts = Field::new("ts", DataType::Int);
        ts.epoch_unit_ms = Some(1);
        Schema::new(vec![
            Field::new("window_start", DataType::Timestamp),
            Field::new("movieId", DataType::String),
            Field::new("n", DataType::Int),
            ts,
        ])
    }

    #[test]
    fn renders_time_buckets_and_escapes_values() {
        let t =
            PathTemplate::parse("{window_start:%Y-%m-%d--%H}/{movieId}/", &schema(), true).unwrap();
        let mut cols = vec![
            Column::new(&DataType::Timestamp, 2),
            Column::new(&DataType::String, 2),
        ];
        cols[0].push_value(&Value::Timestamp(1_546_845_718_557));
        cols[0].push_value(&Value::Timestamp(0));
        cols[1].push_str("../etc");
        cols[1].push_str("");
        let mut out = String::new();
        t.render_into(&cols, 0, &mut out);
        assert_eq!(out, "2019-01-07--07/%2E.%2Fetc/");
        t.render_into(&cols, 1, &mut out);
        assert_eq!(out, "1970-01-01--00/__DEFAULT_PARTITION__/");
    }

    #[test]
    fn hive_levels_are_escaped_like_flink() {
        let t = PathTemplate::parse(
            "dt={window_start:%H:%M}/m={movieId}/x{movieId}/",
            &schema(),
            true,
        )
        .unwrap();
        let hive: Vec<bool> = t
            .segments
            .iter()
            .filter_map(|s| match s {
                Segment::Field { hive, .. } => Some(*hive),
                Segment::Literal(_) => None,
            })
            .collect();
        assert_eq!(hive, [true, true, false]);
        let mut cols = vec![
            Column::new(&DataType::Timestamp, 2),
            Column::new(&DataType::String, 2),
        ];
        cols[0].push_value(&Value::Timestamp(1_546_845_718_557));
        cols[0].push_value(&Value::Timestamp(0));
        cols[1].push_str("a=b/c:d é");
        cols[1].push_str("  ");
        let mut out = String::new();
        t.render_into(&cols, 0, &mut out);
        assert_eq!(out, "dt=07%3A21/m=a%3Db%2Fc%3Ad é/xa=b%2Fc:d é/");
        t.render_into(&cols, 1, &mut out);
        assert_eq!(out, "dt=00%3A00/m=__DEFAULT_PARTITION__/x  /");
    }

    #[test]
    fn epoch_number_fields_take_formats() {
        assert!(PathTemplate::parse("{ts:%Y}", &schema(), true).is_ok());
        let e = PathTemplate::parse("{n:%Y}", &schema(), true).unwrap_err();
        assert_eq!(e[0].code, "format-on-non-time");
    }

    #[test]
    fn reports_unknown_fields_and_escapes() {
        let e = PathTemplate::parse("x/{movieid}/../{nope", &schema(), true).unwrap_err();
        let codes: Vec<_> = e.iter().map(|e| e.code).collect();
        assert_eq!(codes, vec!["unknown-field", "unsafe-path", "bad-template"]);
        assert_eq!(e[0].span, (2, 11));
        assert_eq!(e[0].help.as_deref(), Some("did you mean `movieId`?"));
        let e = PathTemplate::parse("a/../{n}", &schema(), true).unwrap_err();
        assert_eq!(e[0].code, "unsafe-path");
        let e = PathTemplate::parse("{movieId}/", &schema(), false).unwrap_err();
        assert_eq!(e[0].code, "unsafe-path-template");
    }

    #[test]
    fn hive_style_names_bare_levels() {
        assert_eq!(
            hive_style("{window_start:%Y-%m-%d--%H}/{movieId}/"),
            "dt={window_start:%Y-%m-%d--%H}/movieId={movieId}/"
        );
        assert_eq!(
            hive_style("raw/{window_start:%Y}/{window_start:%m}/m={movieId}/x{n}"),
            "raw/year={window_start:%Y}/month={window_start:%m}/m={movieId}/x{n}"
        );
        assert_eq!(hive_style("{ts:%Y/%m}/"), "dt={ts:%Y/%m}/");
    }

    #[test]
    fn time_buckets_end_at_the_next_unit_boundary() {
        assert_eq!(time_unit("%Y-%m-%d--%H"), Some(TimeUnit::Hour));
        assert_eq!(time_unit("%Y/%m"), Some(TimeUnit::Month));
        assert_eq!(time_unit("static"), None);
        let t = 1_546_845_718_557; // 2019-01-07 07:21:58.557, a Monday
        assert_eq!(bucket_end(t, TimeUnit::Hour), 1_546_848_000_000);
        assert_eq!(bucket_end(t, TimeUnit::Day), 1_546_905_600_000);
        assert_eq!(bucket_end(t, TimeUnit::Week), 1_547_424_000_000);
        assert_eq!(bucket_end(t, TimeUnit::Month), 1_548_979_200_000);
        assert_eq!(bucket_end(t, TimeUnit::Year), 1_577_836_800_000);
    }
}
