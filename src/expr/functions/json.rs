//! JSON_VALUE with the JSONPath subset pipelines use: `$`, `.name`, `['name']` / `["name"]`
//! (also after a dot, `$.['a b']`), `[index]` (negative counts from the end), with an optional
//! `lax` / `strict` mode prefix. With Flink's defaults (NULL ON EMPTY, NULL ON ERROR) both
//! modes give NULL for anything missing, so the mode needs no further handling.

use serde_json::Value as Json;

use crate::data::Value;

#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Index(i64),
}

#[derive(Debug, PartialEq)]
enum PathError {
    /// Not a JSONPath: Flink reports it through ON ERROR, i.e. NULL.
    Invalid(String),
    /// Valid JSONPath (wildcards, filters, slices, functions) this implementation does not
    /// evaluate; an error so that nobody silently gets NULL instead of Flink's answer.
    Unsupported(String),
}

/// The scalar at `path` as text; `Ok(None)` for SQL NULL.
pub(super) fn json_value(json: &str, path: &str) -> Result<Option<String>, String> {
    let steps = match parse_path(path) {
        Ok(steps) => steps,
        Err(PathError::Invalid(_)) => return Ok(None),
        Err(PathError::Unsupported(e)) => return Err(e),
    };
    // Like Jackson (which Flink uses), read the first JSON value and ignore what follows.
    let Some(Ok(mut node)) = serde_json::Deserializer::from_str(json)
        .into_iter::<Json>()
        .next()
    else {
        return Ok(None);
    };
    for step in &steps {
        let next = match (step, node) {
            (Step::Key(k), Json::Object(mut map)) => map.remove(k),
            (Step::Index(i), Json::Array(mut items)) => {
                let len = items.len() as i64;
                let i = if *i < 0 { len + i } else { *i };
                usize::try_from(i)
                    .ok()
                    .filter(|&i| i < items.len())
                    .map(|i| items.swap_remove(i))
            }
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => return Ok(None),
        }
    }
    Ok(match node {
        Json::String(s) => Some(s),
        Json::Bool(b) => Some(b.to_string()),
        // Integers print as integers, fractions like Java's Double.toString (Jackson maps
        // them to Long/Double and Flink prints those).
        Json::Number(n) => Some(match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => Value::Double(f).to_string(),
            _ => n.to_string(),
        }),
        // JSON null is SQL NULL; objects and arrays are not scalars (an error → NULL).
        Json::Null | Json::Object(_) | Json::Array(_) => None,
    })
}

/// Validation of a literal path (see `check_literal_args`).
pub(super) fn check_path(path: &str) -> Result<(), String> {
    parse_path(path).map(|_| ()).map_err(|e| match e {
        PathError::Invalid(m) | PathError::Unsupported(m) => m,
    })
}

fn parse_path(path: &str) -> Result<Vec<Step>, PathError> {
    let invalid = |why: &str| PathError::Invalid(format!("invalid JSON path '{path}': {why}"));
    let unsupported =
        |what: &str| PathError::Unsupported(format!("JSON path '{path}': {what} is not supported"));
    let mut rest = path.trim();
    for mode in ["lax", "strict"] {
        let head = rest.get(..mode.len());
        let tail = rest.get(mode.len()..).unwrap_or_default();
        if head.is_some_and(|h| h.eq_ignore_ascii_case(mode))
            && tail.starts_with(char::is_whitespace)
        {
            rest = tail.trim_start();
            break;
        }
    }
    rest = rest
        .strip_prefix('$')
        .ok_or_else(|| invalid("it must start with `$`"))?;
    let mut steps = Vec::new();
    while let Some(c) = rest.chars().next() {
        if c == '.' {
            rest = &rest[1..];
            if rest.starts_with('.') {
                return Err(unsupported("recursive descent `..`"));
            }
            if rest.starts_with('*') {
                return Err(unsupported("the wildcard `*`"));
            }
            if rest.starts_with('[') {
                continue;
            }
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            let name = &rest[..end];
            if name.is_empty() {
                return Err(invalid("empty member name"));
            }
            if name.ends_with(')') {
                return Err(unsupported("a function call"));
            }
            steps.push(Step::Key(name.to_string()));
            rest = &rest[end..];
        } else if c == '[' {
            let (step, tail) = bracket(&rest[1..], &invalid, &unsupported)?;
            steps.push(step);
            rest = tail;
        } else {
            return Err(invalid(&format!("unexpected `{c}`")));
        }
    }
    Ok(steps)
}

/// One `[...]` step, `s` starting after the `[`; returns the step and the text after `]`.
fn bracket<'a>(
    s: &'a str,
    invalid: &dyn Fn(&str) -> PathError,
    unsupported: &dyn Fn(&str) -> PathError,
) -> Result<(Step, &'a str), PathError> {
    let s = s.trim_start();
    let close = |tail: &'a str| -> Result<&'a str, PathError> {
        let tail = tail.trim_start();
        if tail.starts_with(',') {
            return Err(unsupported("a union `[a, b]`"));
        }
        if tail.starts_with(':') {
            return Err(unsupported("an array slice `[a:b]`"));
        }
        tail.strip_prefix(']').ok_or_else(|| invalid("missing `]`"))
    };
    match s.chars().next() {
        Some(q @ ('\'' | '"')) => {
            let body = &s[1..];
            let end = body
                .find(q)
                .ok_or_else(|| invalid("unterminated quoted name"))?;
            Ok((Step::Key(body[..end].to_string()), close(&body[end + 1..])?))
        }
        Some(c) if c == '-' || c.is_ascii_digit() => {
            let end = s[1..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(s.len(), |e| e + 1);
            let index = s[..end].parse().map_err(|_| invalid("bad array index"))?;
            Ok((Step::Index(index), close(&s[end..])?))
        }
        Some('*') => Err(unsupported("the wildcard `[*]`")),
        Some('?') => Err(unsupported("a filter `[?(...)]`")),
        _ => Err(invalid("expected a quoted name or an index in `[...]`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jv(json: &str, path: &str) -> Option<String> {
        json_value(json, path).unwrap()
    }

    #[test]
    fn paths_parse() {
        assert_eq!(parse_path("$"), Ok(vec![]));
        assert_eq!(
            parse_path("lax $.a['b c'][0].d[-1]"),
            Ok(vec![
                Step::Key("a".into()),
                Step::Key("b c".into()),
                Step::Index(0),
                Step::Key("d".into()),
                Step::Index(-1),
            ])
        );
        assert_eq!(
            parse_path(r#"STRICT $.["a.b"]"#),
            Ok(vec![Step::Key("a.b".into())])
        );
        assert!(matches!(parse_path("a.b"), Err(PathError::Invalid(_))));
        assert!(matches!(parse_path("laé $"), Err(PathError::Invalid(_))));
        assert!(matches!(parse_path("lax"), Err(PathError::Invalid(_))));
        assert!(matches!(parse_path("$.a["), Err(PathError::Invalid(_))));
        assert!(matches!(parse_path("$."), Err(PathError::Invalid(_))));
        assert!(matches!(parse_path("$['a"), Err(PathError::Invalid(_))));
        for p in [
            "$..a",
            "$.a[*]",
            "$.*",
            "$.a[0,1]",
            "$.a[0:2]",
            "$.a[?(@.b)]",
            "$.a.length()",
        ] {
            assert!(
                matches!(parse_path(p), Err(PathError::Unsupported(_))),
                "{p}"
            );
        }
    }

    #[test]
    fn scalars_come_back_as_text() {
        let doc = r#"{"a": {"b": [10, 1.5, "x", null, true, 1e2, {"c": 1}]}, "a b": "sp"}"#;
        assert_eq!(jv(doc, "$.a.b[0]").as_deref(), Some("10"));
        assert_eq!(jv(doc, "$.a.b[1]").as_deref(), Some("1.5"));
        assert_eq!(jv(doc, "$.a.b[2]").as_deref(), Some("x"));
        assert_eq!(jv(doc, "$.a.b[3]"), None);
        assert_eq!(jv(doc, "$.a.b[4]").as_deref(), Some("true"));
        assert_eq!(jv(doc, "$.a.b[5]").as_deref(), Some("100.0"));
        assert_eq!(jv(doc, "$.a.b[6]"), None);
        assert_eq!(jv(doc, "$.a.b[-1].c").as_deref(), Some("1"));
        assert_eq!(jv(doc, "$.a.b[99]"), None);
        assert_eq!(jv(doc, "$.a"), None);
        assert_eq!(jv(doc, "$['a b']").as_deref(), Some("sp"));
        assert_eq!(jv(doc, "$.a.x.y"), None);
        assert_eq!(jv("12", "$").as_deref(), Some("12"));
        assert_eq!(
            jv("18446744073709551615", "$").as_deref(),
            Some("18446744073709551615")
        );
        assert_eq!(jv(r#"{"a":1} trailing"#, "$.a").as_deref(), Some("1"));
        assert_eq!(jv("{bad", "$.a"), None);
        assert_eq!(jv(doc, "not a path"), None);
        assert!(json_value(doc, "$..a").is_err());
    }
}
