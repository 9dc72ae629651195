//! Bucket layout: a sink's path template as Flink filesystem partitions.
//!
//! Flink's filesystem sink lays out partitions Hive-style, `key=value/` per level, with the
//! partition columns taken out of the files. A template whose every level is `key={field}` or
//! `key={field:FORMAT}` (Hive style) lays out identically in both engines: each level becomes
//! an extra STRING partition column computed from the row, so the files still carry every
//! column the pipeline writes. Any other template is translated to the nearest Hive-style
//! layout (each level named after what it holds), which the plan and `validate --target
//! flink` report.

use super::sql;
use crate::data::{DataType, Schema};
use crate::plan::path_template::{self, PathTemplate, Segment};

/// One partition column of a Flink sink table.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionColumn {
    /// Directory key (`dt` in `dt=2019-01-07/`).
    pub name: String,
    /// STRING expression over the sink's input row giving the directory value.
    pub value: String,
}

/// How a template translates.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Layout {
    /// Literal directories before the first bucket level, appended to the sink path.
    pub prefix: String,
    pub partitions: Vec<PartitionColumn>,
    /// Set when Flink's layout differs from the template: the template that describes what
    /// Flink writes (and that the embedded engine would write identically).
    pub nearest: Option<String>,
    /// Time formats with no Flink pattern equivalent (the level uses ISO date text instead).
    pub untranslatable_formats: Vec<String>,
}

/// One part of a directory level.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Field {
        column: usize,
        name: String,
        format: Option<String>,
    },
}

/// Translates `template` (over the sink's input `schema`). `written` are the names of the
/// columns the files hold: a partition key may not repeat one of them.
pub fn translate(template: &PathTemplate, schema: &Schema, written: &[&str]) -> Layout {
    let levels = levels(template);
    let mut layout = Layout::default();
    let mut hive = true;
    let mut names: Vec<String> = Vec::new();
    let mut nearest = String::new();
    let mut in_prefix = true;
    for level in &levels {
        let has_field = level.iter().any(|p| matches!(p, Part::Field { .. }));
        if in_prefix && !has_field {
            // Fixed directories before any bucket are part of the sink path.
            let text: String = level
                .iter()
                .map(|p| match p {
                    Part::Literal(s) => s.as_str(),
                    Part::Field { .. } => "",
                })
                .collect();
            layout.prefix.push_str(&text);
            layout.prefix.push('/');
            nearest.push_str(&text);
            nearest.push('/');
            continue;
        }
        in_prefix = false;
        let (name, value_parts) = match hive_level(level) {
            Some((key, part)) if !written.contains(&key) && !names.iter().any(|n| n == key) => {
                (key.to_string(), vec![part.clone()])
            }
            Some((key, part)) => {
                hive = false;
                (unique(key.to_string(), written, &names), vec![part.clone()])
            }
            None => {
                hive = false;
                (unique(level_name(level), written, &names), level.clone())
            }
        };
        let mut values = Vec::new();
        for part in &value_parts {
            values.push(match part {
                Part::Literal(s) => sql::string(s),
                Part::Field {
                    column,
                    format,
                    name,
                } => {
                    let (value, ok) = field_value(schema, *column, format.as_deref());
                    if !ok {
                        layout
                            .untranslatable_formats
                            .push(format!("{{{name}:{}}}", format.as_deref().unwrap_or("")));
                    }
                    value
                }
            });
        }
        let value = if values.len() == 1 {
            values.remove(0)
        } else {
            format!("CONCAT({})", values.join(", "))
        };
        nearest.push_str(&format!("{name}={}/", template_text(&value_parts)));
        names.push(name.clone());
        layout.partitions.push(PartitionColumn { name, value });
    }
    if !hive || !layout.untranslatable_formats.is_empty() {
        layout.nearest = Some(nearest);
    }
    layout
}

/// `key={field}` or `key={field:FORMAT}`: the key and the field part.
fn hive_level(level: &[Part]) -> Option<(&str, &Part)> {
    match level {
        [Part::Literal(key), field @ Part::Field { .. }] => {
            let key = key.strip_suffix('=')?;
            let valid = !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            valid.then_some((key, field))
        }
        _ => None,
    }
}

/// A directory key for a level that is not Hive style: what it holds.
fn level_name(level: &[Part]) -> String {
    let mut parts = Vec::new();
    for p in level {
        if let Part::Field { name, format, .. } = p {
            parts.push(match format {
                Some(f) => path_template::time_level_name(f).to_string(),
                None => name.clone(),
            });
        }
    }
    if parts.is_empty() {
        "dir".to_string()
    } else {
        parts.join("_")
    }
}

/// `name`, or `name_bucket` (`_2`, …) when the files hold a column of that name or an
/// earlier level used it.
fn unique(name: String, written: &[&str], taken: &[String]) -> String {
    let clash = |n: &str| written.contains(&n) || taken.iter().any(|t| t == n);
    if !clash(&name) {
        return name;
    }
    let bucket = format!("{name}_bucket");
    if !clash(&bucket) {
        return bucket;
    }
    (2..)
        .map(|i| format!("{bucket}_{i}"))
        .find(|n| !clash(n))
        .unwrap_or(bucket)
}

fn template_text(parts: &[Part]) -> String {
    parts
        .iter()
        .map(|p| match p {
            Part::Literal(s) => s.clone(),
            Part::Field {
                name,
                format: Some(f),
                ..
            } => format!("{{{name}:{f}}}"),
            Part::Field { name, .. } => format!("{{{name}}}"),
        })
        .collect()
}

/// The template split into directory levels (a `/` in a literal or a time format ends one).
fn levels(template: &PathTemplate) -> Vec<Vec<Part>> {
    let mut levels: Vec<Vec<Part>> = vec![Vec::new()];
    let push_literal = |levels: &mut Vec<Vec<Part>>, text: &str| {
        for (i, piece) in text.split('/').enumerate() {
            if i > 0 {
                levels.push(Vec::new());
            }
            if !piece.is_empty() {
                let last = levels.last_mut().expect("one level");
                match last.last_mut() {
                    Some(Part::Literal(s)) => s.push_str(piece),
                    _ => last.push(Part::Literal(piece.to_string())),
                }
            }
        }
    };
    for segment in &template.segments {
        match segment {
            Segment::Literal(s) => push_literal(&mut levels, s),
            Segment::Field {
                name,
                column,
                format,
                ..
            } => match format {
                Some(f) if f.contains('/') => {
                    for (i, piece) in f.split('/').enumerate() {
                        if i > 0 {
                            levels.push(Vec::new());
                        }
                        if !piece.is_empty() {
                            levels.last_mut().expect("one level").push(Part::Field {
                                column: *column,
                                name: name.clone(),
                                format: Some(piece.to_string()),
                            });
                        }
                    }
                }
                _ => levels.last_mut().expect("one level").push(Part::Field {
                    column: *column,
                    name: name.clone(),
                    format: format.clone(),
                }),
            },
        }
    }
    levels.retain(|l| !l.is_empty());
    levels
}

/// The STRING value a field gives a directory, as the embedded engine renders it; `false`
/// when the time format has no Java pattern equivalent.
fn field_value(schema: &Schema, column: usize, format: Option<&str>) -> (String, bool) {
    let field = &schema.fields[column];
    let col = sql::ident(&field.name);
    let time = match (&field.data_type, field.epoch_unit_ms) {
        (DataType::Timestamp, _) => Some(col.clone()),
        (DataType::Int, Some(unit)) if format.is_some() => Some(format!(
            "TO_TIMESTAMP_LTZ({col}, {})",
            if unit == 1000 { 0 } else { 3 }
        )),
        _ => None,
    };
    match (time, format) {
        (Some(ts), Some(f)) => match java_pattern(f) {
            Some(p) => (format!("DATE_FORMAT({ts}, {})", sql::string(&p)), true),
            None => (format!("DATE_FORMAT({ts}, 'yyyy-MM-dd--HH')"), false),
        },
        (Some(ts), None) => (
            format!("DATE_FORMAT({ts}, 'yyyy-MM-dd HH:mm:ss.SSS')"),
            true,
        ),
        (None, _) => (
            match field.data_type {
                DataType::String => col,
                // The engine prints booleans in lower case; Flink's CAST gives TRUE/FALSE.
                DataType::Bool => {
                    format!("CASE WHEN {col} THEN 'true' WHEN NOT {col} THEN 'false' END")
                }
                _ => format!("CAST({col} AS STRING)"),
            },
            true,
        ),
    }
}

/// A strftime pattern as a Java date pattern (`%Y-%m-%d--%H` → `yyyy-MM-dd'--'HH`), or
/// `None` when it uses a specifier Java patterns cannot express the same way.
pub fn java_pattern(strftime: &str) -> Option<String> {
    let mut out = String::new();
    let mut literal = String::new();
    let flush = |out: &mut String, literal: &mut String| {
        if !literal.is_empty() {
            out.push('\'');
            out.push_str(&literal.replace('\'', "''"));
            out.push('\'');
            literal.clear();
        }
    };
    let mut chars = strftime.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            if c.is_ascii_digit() || c == ' ' || c == '-' || c == ':' || c == '.' || c == '_' {
                flush(&mut out, &mut literal);
                out.push(c);
            } else {
                literal.push(c);
            }
            continue;
        }
        let pattern = match chars.next()? {
            'Y' => "yyyy",
            'y' => "yy",
            'm' => "MM",
            'd' => "dd",
            'H' => "HH",
            'I' => "hh",
            'M' => "mm",
            'S' => "ss",
            'j' => "DDD",
            'b' | 'h' => "MMM",
            'B' => "MMMM",
            'a' => "EEE",
            'A' => "EEEE",
            'p' => "a",
            '%' => {
                literal.push('%');
                continue;
            }
            _ => return None,
        };
        flush(&mut out, &mut literal);
        out.push_str(pattern);
    }
    flush(&mut out, &mut literal);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Field;

    fn schema() -> Schema {
        let mut ts = Field::new("timestamp", DataType::Int);
        ts.epoch_unit_ms = Some(1);
        Schema::new(vec![
            Field::new("window_start", DataType::Timestamp),
            Field::new("movieId", DataType::String),
            Field::new("n", DataType::Int),
            ts,
        ])
    }

    fn layout(template: &str, written: &[&str]) -> Layout {
        let t = PathTemplate::parse(template, &schema(), true).unwrap();
        translate(&t, &schema(), written)
    }

    #[test]
    fn hive_templates_translate_as_they_are() {
        let l = layout(
            "dt={window_start:%Y-%m-%d}/movie={movieId}/",
            &["movieId", "n"],
        );
        assert_eq!(l.nearest, None);
        assert_eq!(l.prefix, "");
        assert_eq!(
            l.partitions,
            vec![
                PartitionColumn {
                    name: "dt".into(),
                    value: "DATE_FORMAT(`window_start`, 'yyyy-MM-dd')".into()
                },
                PartitionColumn {
                    name: "movie".into(),
                    value: "`movieId`".into()
                },
            ]
        );
        let l = layout("static/day={timestamp:%d}/", &[]);
        assert_eq!(l.prefix, "static/");
        assert_eq!(
            l.partitions[0].value,
            "DATE_FORMAT(TO_TIMESTAMP_LTZ(`timestamp`, 3), 'dd')"
        );
    }

    #[test]
    fn other_templates_get_the_nearest_hive_layout() {
        let l = layout("{window_start:%Y-%m-%d--%H}/{movieId}/", &["movieId", "n"]);
        assert_eq!(
            l.nearest.as_deref(),
            Some("dt={window_start:%Y-%m-%d--%H}/movieId_bucket={movieId}/")
        );
        let l = layout("{window_start:%Y-%m-%d/%H}/", &[]);
        assert_eq!(
            l.nearest.as_deref(),
            Some("dt={window_start:%Y-%m-%d}/hour={window_start:%H}/")
        );
        // A Hive key that repeats a written column cannot be both a directory and a field.
        let l = layout("movieId={movieId}/", &["movieId"]);
        assert_eq!(l.nearest.as_deref(), Some("movieId_bucket={movieId}/"));
        let l = layout("{movieId}-{n}/", &[]);
        assert_eq!(l.partitions[0].name, "movieId_n");
        assert_eq!(
            l.partitions[0].value,
            "CONCAT(`movieId`, '-', CAST(`n` AS STRING))"
        );
    }

    #[test]
    fn strftime_becomes_java_patterns() {
        assert_eq!(
            java_pattern("%Y-%m-%d--%H").as_deref(),
            Some("yyyy-MM-dd--HH")
        );
        assert_eq!(java_pattern("T%Hh").as_deref(), Some("'T'HH'h'"));
        assert_eq!(java_pattern("%e"), None);
    }
}
