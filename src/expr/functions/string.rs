//! String functions. Positions and lengths count characters (Unicode scalar values), as
//! Flink's `BinaryStringData` does; behaviour at the edges (position 0 or negative, empty
//! separators, negative lengths) follows Flink's runtime (`SqlFunctionUtils`,
//! `BinaryStringDataUtil`, `StringCallGen`).

use std::cell::RefCell;
use std::sync::LazyLock;

use regex::{NoExpand, Regex, RegexBuilder};

use super::Function;
use super::args::{P, check_variadic, i64_at, opt_i64_at, sig, str_at, text, value_at};
use super::cache::Lru;
use super::json;
use crate::data::{DataType, OwnedValue, Value};

/// Functions that build strings (REPEAT, LPAD, RPAD) refuse results beyond this size: Flink
/// would die with an OutOfMemoryError, we fail the record instead of the process.
const MAX_GENERATED_BYTES: usize = 256 << 20;

fn str1(name: &str, a: &[Option<DataType>]) -> Result<DataType, String> {
    sig(name, a, &[P::Str], &[], DataType::String)
}

fn str2(name: &str, a: &[Option<DataType>]) -> Result<DataType, String> {
    sig(name, a, &[P::Str, P::Str], &[], DataType::String)
}

fn str_int(name: &str, a: &[Option<DataType>]) -> Result<DataType, String> {
    sig(name, a, &[P::Str, P::Int], &[], DataType::String)
}

fn opt_text(s: Option<String>) -> OwnedValue {
    s.map_or(Value::Null, text)
}

pub(super) fn functions() -> Vec<Function> {
    vec![
        Function::strict(
            "UPPER",
            "UPPER(string) → STRING",
            "The string in upper case.",
            |a| str1("UPPER", a),
            |a| Ok(text(str_at(a, 0)?.to_uppercase())),
        ),
        Function::strict(
            "LOWER",
            "LOWER(string) → STRING",
            "The string in lower case.",
            |a| str1("LOWER", a),
            |a| Ok(text(str_at(a, 0)?.to_lowercase())),
        ),
        Function::strict(
            "TRIM",
            "TRIM(string) → STRING",
            "The string without leading and trailing spaces.",
            |a| str1("TRIM", a),
            |a| Ok(text(str_at(a, 0)?.trim_matches(' '))),
        ),
        Function::strict(
            "LTRIM",
            "LTRIM(string) → STRING",
            "The string without leading spaces.",
            |a| str1("LTRIM", a),
            |a| Ok(text(str_at(a, 0)?.trim_start_matches(' '))),
        ),
        Function::strict(
            "RTRIM",
            "RTRIM(string) → STRING",
            "The string without trailing spaces.",
            |a| str1("RTRIM", a),
            |a| Ok(text(str_at(a, 0)?.trim_end_matches(' '))),
        ),
        Function::strict(
            "TRIM_BOTH",
            "TRIM_BOTH(string, characters) → STRING",
            "The string without leading and trailing characters that occur in `characters` (TRIM(BOTH c FROM s)).",
            |a| str2("TRIM_BOTH", a),
            |a| {
                let set = str_at(a, 1)?;
                Ok(text(str_at(a, 0)?.trim_matches(|c| set.contains(c))))
            },
        ),
        Function::strict(
            "TRIM_LEADING",
            "TRIM_LEADING(string, characters) → STRING",
            "The string without leading characters that occur in `characters` (TRIM(LEADING c FROM s)).",
            |a| str2("TRIM_LEADING", a),
            |a| {
                let set = str_at(a, 1)?;
                Ok(text(str_at(a, 0)?.trim_start_matches(|c| set.contains(c))))
            },
        ),
        Function::strict(
            "TRIM_TRAILING",
            "TRIM_TRAILING(string, characters) → STRING",
            "The string without trailing characters that occur in `characters` (TRIM(TRAILING c FROM s)).",
            |a| str2("TRIM_TRAILING", a),
            |a| {
                let set = str_at(a, 1)?;
                Ok(text(str_at(a, 0)?.trim_end_matches(|c| set.contains(c))))
            },
        ),
        Function::strict(
            "CHAR_LENGTH",
            "CHAR_LENGTH(string) → BIGINT",
            "The number of characters in the string.",
            |a| sig("CHAR_LENGTH", a, &[P::Str], &[], DataType::Int),
            |a| Ok(Value::Int(char_count(str_at(a, 0)?))),
        ),
        Function::strict(
            "CHARACTER_LENGTH",
            "CHARACTER_LENGTH(string) → BIGINT",
            "The number of characters in the string (same as CHAR_LENGTH).",
            |a| sig("CHARACTER_LENGTH", a, &[P::Str], &[], DataType::Int),
            |a| Ok(Value::Int(char_count(str_at(a, 0)?))),
        ),
        Function::strict(
            "CONCAT",
            "CONCAT(string1, string2, …) → STRING",
            "The strings joined together; NULL if any argument is NULL.",
            |a| check_variadic("CONCAT", a, 1, P::Str).map(|()| DataType::String),
            |a| {
                let mut out = String::new();
                for i in 0..a.len() {
                    out.push_str(str_at(a, i)?);
                }
                Ok(text(out))
            },
        ),
        Function::sees_nulls(
            "CONCAT_WS",
            "CONCAT_WS(separator, string1, string2, …) → STRING",
            "The non-NULL strings joined with the separator; NULL only if the separator is NULL.",
            |a| check_variadic("CONCAT_WS", a, 1, P::Str).map(|()| DataType::String),
            concat_ws,
        ),
        Function::strict(
            "SUBSTRING",
            "SUBSTRING(string, from [, length]) → STRING",
            "The characters from 1-based position `from` (negative counts from the end), to the end or `length` characters; NULL if `length` is negative.",
            |a| {
                sig(
                    "SUBSTRING",
                    a,
                    &[P::Str, P::Int],
                    &[P::Int],
                    DataType::String,
                )
            },
            substring,
        ),
        Function::strict(
            "SUBSTR",
            "SUBSTR(string, from [, length]) → STRING",
            "Same as SUBSTRING(string, from [, length]).",
            |a| sig("SUBSTR", a, &[P::Str, P::Int], &[P::Int], DataType::String),
            substring,
        ),
        Function::strict(
            "REPLACE",
            "REPLACE(string, search, replacement) → STRING",
            "The string with every (non-overlapping) occurrence of `search` replaced.",
            |a| {
                sig(
                    "REPLACE",
                    a,
                    &[P::Str, P::Str, P::Str],
                    &[],
                    DataType::String,
                )
            },
            |a| Ok(text(str_at(a, 0)?.replace(str_at(a, 1)?, str_at(a, 2)?))),
        ),
        Function::strict(
            "POSITION",
            "POSITION(needle, haystack) → BIGINT",
            "The 1-based position of the first occurrence of `needle` in `haystack`, 0 if absent (POSITION(needle IN haystack)).",
            |a| sig("POSITION", a, &[P::Str, P::Str], &[], DataType::Int),
            |a| Ok(Value::Int(locate(str_at(a, 0)?, str_at(a, 1)?, 1))),
        ),
        Function::strict(
            "LOCATE",
            "LOCATE(needle, haystack [, start]) → BIGINT",
            "The 1-based position of the first occurrence of `needle` in `haystack` at or after position `start`, 0 if absent.",
            |a| sig("LOCATE", a, &[P::Str, P::Str], &[P::Int], DataType::Int),
            |a| {
                let start = opt_i64_at(a, 2)?.unwrap_or(1);
                Ok(Value::Int(locate(str_at(a, 0)?, str_at(a, 1)?, start)))
            },
        ),
        Function::strict(
            "LPAD",
            "LPAD(string, length, padding) → STRING",
            "The string left-padded with repetitions of `padding` (or cut) to `length` characters; NULL if `length` is negative or `padding` empty.",
            |a| sig("LPAD", a, &[P::Str, P::Int, P::Str], &[], DataType::String),
            |a| pad(a, true),
        ),
        Function::strict(
            "RPAD",
            "RPAD(string, length, padding) → STRING",
            "The string right-padded with repetitions of `padding` (or cut) to `length` characters; NULL if `length` is negative or `padding` empty.",
            |a| sig("RPAD", a, &[P::Str, P::Int, P::Str], &[], DataType::String),
            |a| pad(a, false),
        ),
        Function::strict(
            "INITCAP",
            "INITCAP(string) → STRING",
            "The string with the first letter of each word (run of ASCII letters and digits) in upper case and the rest in lower case.",
            |a| str1("INITCAP", a),
            |a| Ok(text(initcap(str_at(a, 0)?))),
        ),
        Function::strict(
            "REVERSE",
            "REVERSE(string) → STRING",
            "The characters of the string in reverse order.",
            |a| str1("REVERSE", a),
            |a| Ok(text(str_at(a, 0)?.chars().rev().collect::<String>())),
        ),
        Function::strict(
            "REPEAT",
            "REPEAT(string, times) → STRING",
            "The string repeated `times` times (empty if `times` is not positive).",
            |a| str_int("REPEAT", a),
            repeat,
        ),
        Function::strict(
            "SPLIT_INDEX",
            "SPLIT_INDEX(string, delimiter, index) → STRING",
            "The 0-based `index`-th piece of the string split at `delimiter`; NULL if out of range.",
            |a| {
                sig(
                    "SPLIT_INDEX",
                    a,
                    &[P::Str, P::Str, P::Int],
                    &[],
                    DataType::String,
                )
            },
            |a| {
                Ok(opt_text(split_index(
                    str_at(a, 0)?,
                    str_at(a, 1)?,
                    i64_at(a, 2)?,
                )))
            },
        ),
        Function::strict(
            "REGEXP",
            "REGEXP(string, regex) → BOOLEAN",
            "Whether some substring of the string matches the Java regular expression (FALSE for an empty regex).",
            |a| sig("REGEXP", a, &[P::Str, P::Str], &[], DataType::Bool),
            |a| {
                let pattern = str_at(a, 1)?;
                // Flink answers FALSE for an empty pattern, although it matches everywhere.
                if pattern.is_empty() {
                    return Ok(Value::Bool(false));
                }
                let re = regex(pattern).map_err(|e| format!("REGEXP: {e}"))?;
                Ok(Value::Bool(re.is_match(str_at(a, 0)?)))
            },
        ),
        Function::strict(
            "REGEXP_EXTRACT",
            "REGEXP_EXTRACT(string, regex [, group]) → STRING",
            "Group `group` (default 0, the whole match) of the first match of the Java regular expression; NULL if nothing matches or the group does not exist.",
            |a| {
                sig(
                    "REGEXP_EXTRACT",
                    a,
                    &[P::Str, P::Str],
                    &[P::Int],
                    DataType::String,
                )
            },
            regexp_extract,
        ),
        Function::strict(
            "REGEXP_REPLACE",
            "REGEXP_REPLACE(string, regex, replacement) → STRING",
            "The string with every match of the Java regular expression replaced by the literal `replacement`.",
            |a| {
                sig(
                    "REGEXP_REPLACE",
                    a,
                    &[P::Str, P::Str, P::Str],
                    &[],
                    DataType::String,
                )
            },
            |a| {
                let re = regex(str_at(a, 1)?).map_err(|e| format!("REGEXP_REPLACE: {e}"))?;
                // Flink quotes the replacement (Matcher.quoteReplacement): `$1` stays literal.
                let replaced = re.replace_all(str_at(a, 0)?, NoExpand(str_at(a, 2)?));
                Ok(text(replaced.into_owned()))
            },
        ),
        Function::strict(
            "LEFT",
            "LEFT(string, length) → STRING",
            "The first `length` characters of the string (empty if `length` is not positive).",
            |a| str_int("LEFT", a),
            |a| {
                let (s, n) = (str_at(a, 0)?, i64_at(a, 1)?);
                Ok(text(if n <= 0 {
                    ""
                } else {
                    substring_sql(s, 1, n).unwrap_or("")
                }))
            },
        ),
        Function::strict(
            "RIGHT",
            "RIGHT(string, length) → STRING",
            "The last `length` characters of the string (empty if `length` is not positive).",
            |a| str_int("RIGHT", a),
            |a| {
                let (s, n) = (str_at(a, 0)?, i64_at(a, 1)?);
                let right = if n <= 0 {
                    ""
                } else if n >= char_count(s) {
                    s
                } else {
                    substring_sql(s, -n, i64::MAX).unwrap_or("")
                };
                Ok(text(right))
            },
        ),
        Function::strict(
            "ASCII",
            "ASCII(string) → BIGINT",
            "The code of the first byte of the string (0 for an empty string).",
            |a| sig("ASCII", a, &[P::Str], &[], DataType::Int),
            // Flink reads the first UTF-8 byte as a signed Java byte: ASCII('é') is -61.
            |a| {
                Ok(Value::Int(
                    str_at(a, 0)?
                        .bytes()
                        .next()
                        .map_or(0, |b| i64::from(b as i8)),
                ))
            },
        ),
        Function::strict(
            "CHR",
            "CHR(code) → STRING",
            "The character with code `code` modulo 256 (empty for a negative code).",
            |a| sig("CHR", a, &[P::Int], &[], DataType::String),
            |a| {
                let code = i64_at(a, 0)?;
                Ok(text(if code < 0 {
                    String::new()
                } else {
                    // `code & 0xFF` is what Flink computes (its docs say "modulo 255").
                    char::from((code & 0xFF) as u8).to_string()
                }))
            },
        ),
        Function::sees_nulls(
            "IS_DIGIT",
            "IS_DIGIT(string) → BOOLEAN",
            "Whether the string is non-empty and all its characters are digits (FALSE for NULL).",
            |a| sig("IS_DIGIT", a, &[P::Str], &[], DataType::Bool),
            |a| all_chars_in(a, &DIGITS),
        ),
        Function::sees_nulls(
            "IS_ALPHA",
            "IS_ALPHA(string) → BOOLEAN",
            "Whether the string is non-empty and all its characters are letters (FALSE for NULL).",
            |a| sig("IS_ALPHA", a, &[P::Str], &[], DataType::Bool),
            |a| all_chars_in(a, &LETTERS),
        ),
        Function::strict(
            "JSON_VALUE",
            "JSON_VALUE(json, path) → STRING",
            "The scalar at the JSONPath (`$.a.b`, `$.a[0]`, `$['a']`) in the JSON text as a STRING; NULL if absent, not a scalar, or the text is not JSON.",
            |a| sig("JSON_VALUE", a, &[P::Str, P::Str], &[], DataType::String),
            |a| {
                let value = json::json_value(str_at(a, 0)?, str_at(a, 1)?)
                    .map_err(|e| format!("JSON_VALUE: {e}"))?;
                Ok(opt_text(value))
            },
        ),
    ]
}

fn char_count(s: &str) -> i64 {
    s.chars().count() as i64
}

/// The byte offset of character `n` (the end of the string if it has fewer characters).
fn byte_offset(s: &str, n: i64) -> usize {
    usize::try_from(n)
        .ok()
        .and_then(|n| s.char_indices().nth(n).map(|(b, _)| b))
        .unwrap_or(s.len())
}

/// Flink's `substringSQL`: 1-based `pos`, negative `pos` counts from the end, 0 means 1;
/// `None` (NULL) for a negative length.
fn substring_sql(s: &str, pos: i64, len: i64) -> Option<&str> {
    if len < 0 {
        return None;
    }
    let n = char_count(s);
    let start = match pos {
        p if p > 0 => p - 1,
        p if p < 0 => n + p,
        _ => 0,
    };
    if start < 0 || start >= n {
        return Some("");
    }
    let end = if n - start < len { n } else { start + len };
    Some(&s[byte_offset(s, start)..byte_offset(s, end)])
}

fn substring(a: &[Value<'_>]) -> Result<OwnedValue, String> {
    let len = opt_i64_at(a, 2)?.unwrap_or(i64::MAX);
    Ok(substring_sql(str_at(a, 0)?, i64_at(a, 1)?, len).map_or(Value::Null, text))
}

fn concat_ws(a: &[Value<'_>]) -> Result<OwnedValue, String> {
    let separator = match value_at(a, 0)? {
        Value::Null => return Ok(Value::Null),
        _ => str_at(a, 0)?,
    };
    let mut out = String::new();
    let mut first = true;
    for (i, v) in a.iter().enumerate().skip(1) {
        if v.is_null() {
            continue;
        }
        if !first {
            out.push_str(separator);
        }
        out.push_str(str_at(a, i)?);
        first = false;
    }
    Ok(text(out))
}

/// Flink's `position(seek, s, from)`: search from character `from - 1` (clamped to 0); an
/// empty needle is found at 1 whatever `from` is.
fn locate(needle: &str, haystack: &str, from: i64) -> i64 {
    if needle.is_empty() {
        return 1;
    }
    let skip = from.saturating_sub(1).max(0);
    let start = byte_offset(haystack, skip);
    match haystack[start..].find(needle) {
        Some(b) => char_count(&haystack[..start + b]) + 1,
        None => 0,
    }
}

fn pad(a: &[Value<'_>], left: bool) -> Result<OwnedValue, String> {
    let (s, len, padding) = (str_at(a, 0)?, i64_at(a, 1)?, str_at(a, 2)?);
    if len < 0 || padding.is_empty() {
        return Ok(Value::Null);
    }
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    // A character takes at most 4 bytes.
    if len > MAX_GENERATED_BYTES / 4 {
        return Err(format!(
            "{}: result of {len} characters is too large",
            if left { "LPAD" } else { "RPAD" }
        ));
    }
    let base = s.chars().take(len);
    let fill_len = len.saturating_sub(s.chars().count());
    let fill = padding.chars().cycle().take(fill_len);
    Ok(text(if left {
        fill.chain(base).collect::<String>()
    } else {
        base.chain(fill).collect::<String>()
    }))
}

/// Calcite's INITCAP: words are runs of ASCII letters and digits; everything else (including
/// non-ASCII letters) separates words and is kept as is.
fn initcap(s: &str) -> String {
    let mut start = true;
    s.chars()
        .map(|c| {
            let alnum = c.is_ascii_alphanumeric();
            let out = if start {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            start = !alnum;
            out
        })
        .collect()
}

fn repeat(a: &[Value<'_>]) -> Result<OwnedValue, String> {
    let (s, times) = (str_at(a, 0)?, i64_at(a, 1)?);
    let times = usize::try_from(times).unwrap_or(0);
    match s.len().checked_mul(times) {
        Some(bytes) if bytes <= MAX_GENERATED_BYTES => Ok(text(s.repeat(times))),
        _ => Err(format!(
            "REPEAT: result of {times} repetitions is too large"
        )),
    }
}

/// Flink splits with commons-lang `splitByWholeSeparatorPreserveAllTokens`: empty pieces are
/// kept, an empty string has no pieces, an empty delimiter splits at spaces.
fn split_index(s: &str, delimiter: &str, index: i64) -> Option<String> {
    let index = usize::try_from(index).ok()?;
    if s.is_empty() {
        return None;
    }
    let delimiter = if delimiter.is_empty() { " " } else { delimiter };
    s.split(delimiter).nth(index).map(str::to_string)
}

fn regexp_extract(a: &[Value<'_>]) -> Result<OwnedValue, String> {
    let re = regex(str_at(a, 1)?).map_err(|e| format!("REGEXP_EXTRACT: {e}"))?;
    let group = opt_i64_at(a, 2)?.unwrap_or(0);
    // A group that does not exist is an exception Flink catches: the result is NULL.
    let Ok(group) = usize::try_from(group) else {
        return Ok(Value::Null);
    };
    Ok(re
        .captures(str_at(a, 0)?)
        .and_then(|c| c.get(group))
        .map_or(Value::Null, |m| text(m.as_str())))
}

static DIGITS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\p{Nd}+$").expect("valid"));
static LETTERS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\p{L}+$").expect("valid"));

/// IS_DIGIT / IS_ALPHA: Java's `Character.isDigit` is category Nd and `isLetter` is L.
fn all_chars_in(a: &[Value<'_>], class: &Regex) -> Result<OwnedValue, String> {
    Ok(Value::Bool(match value_at(a, 0)? {
        Value::Str(s) => class.is_match(s),
        _ => false,
    }))
}

thread_local! {
    static REGEXES: RefCell<Lru<Result<Regex, String>>> = const { RefCell::new(Lru::new(32)) };
}

/// The compiled form of a Java regular expression, cached per thread.
pub(super) fn regex(pattern: &str) -> Result<Regex, String> {
    REGEXES.with(|cache| cache.borrow_mut().get_or_insert(pattern, compile_regex))
}

/// Validation of a literal pattern (see `check_literal_args`).
pub(super) fn check_regex(pattern: &str) -> Result<(), String> {
    regex(pattern).map(|_| ())
}

fn compile_regex(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(&java_to_rust_regex(pattern))
        .build()
        .map_err(|e| {
            // The regex crate's message spans several lines (pattern, caret, error).
            let message = e.to_string();
            let reason = message.lines().last().unwrap_or_default();
            let reason = reason.trim().trim_start_matches("error: ");
            format!("invalid regular expression '{pattern}': {reason}")
        })
}

/// Java's POSIX classes (`\p{Alpha}` …) are ASCII-only; the regex crate reads the same names
/// as Unicode properties or not at all.
const POSIX_CLASSES: &[(&str, &str)] = &[
    ("Lower", "a-z"),
    ("Upper", "A-Z"),
    ("ASCII", r"\x00-\x7F"),
    ("Alpha", "a-zA-Z"),
    ("Digit", "0-9"),
    ("Alnum", "a-zA-Z0-9"),
    ("Punct", r"!-/:-@\[-`{-~"),
    ("Graph", r"!-~"),
    ("Print", r" -~"),
    ("Blank", r" \t"),
    ("Cntrl", r"\x00-\x1F\x7F"),
    ("XDigit", "0-9a-fA-F"),
    ("Space", r" \t\n\x0B\x0C\r"),
];

/// Rewrites the Java-only parts of a pattern into the regex crate's syntax: `\d \w \s` and
/// their negations are ASCII in Java (Unicode in the regex crate), `\Q…\E` quotes, and the
/// POSIX classes. Constructs the regex crate lacks (look-around, back-references) stay and
/// are reported as invalid.
fn java_to_rust_regex(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut rest = pattern;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let Some(c) = after.chars().next() else {
            out.push('\\');
            return out;
        };
        rest = &after[c.len_utf8()..];
        let class = match c {
            'd' => Some("[0-9]"),
            'D' => Some("[^0-9]"),
            'w' => Some("[0-9A-Za-z_]"),
            'W' => Some("[^0-9A-Za-z_]"),
            's' => Some(r"[\t\n\x0B\x0C\r ]"),
            'S' => Some(r"[^\t\n\x0B\x0C\r ]"),
            _ => None,
        };
        if let Some(class) = class {
            out.push_str(class);
        } else if c == 'Q' {
            let (quoted, tail) = rest.split_once(r"\E").unwrap_or((rest, ""));
            out.push_str(&regex::escape(quoted));
            rest = tail;
        } else if let Some((negated, set, tail)) = posix_class(c, rest) {
            out.push_str(if negated { "[^" } else { "[" });
            out.push_str(set);
            out.push(']');
            rest = tail;
        } else {
            out.push('\\');
            out.push(c);
        }
    }
    out.push_str(rest);
    out
}

fn posix_class(c: char, rest: &str) -> Option<(bool, &'static str, &str)> {
    let negated = match c {
        'p' => false,
        'P' => true,
        _ => return None,
    };
    let inner = rest.strip_prefix('{')?;
    let (name, tail) = inner.split_once('}')?;
    let set = POSIX_CLASSES.iter().find(|(n, _)| *n == name)?.1;
    Some((negated, set, tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::test_support::{call, ok, types};

    fn s(v: &str) -> Value<'static> {
        Value::Str(v.to_string().into())
    }

    const STR: Option<DataType> = Some(DataType::String);
    const INT: Option<DataType> = Some(DataType::Int);

    #[test]
    fn case_and_trim() {
        assert_eq!(ok("UPPER", &[s("aßc")]), s("ASSC"));
        assert_eq!(ok("LOWER", &[s("ÀB")]), s("àb"));
        assert_eq!(ok("TRIM", &[s("  a b \t ")]), s("a b \t"));
        assert_eq!(ok("LTRIM", &[s("  a ")]), s("a "));
        assert_eq!(ok("RTRIM", &[s("  a ")]), s("  a"));
        assert_eq!(ok("TRIM_BOTH", &[s("xyaxy"), s("yx")]), s("a"));
        assert_eq!(ok("TRIM_LEADING", &[s("xxa"), s("x")]), s("a"));
        assert_eq!(ok("TRIM_TRAILING", &[s("axx"), s("x")]), s("a"));
        assert_eq!(ok("TRIM_BOTH", &[s("aa"), s("")]), s("aa"));
        assert_eq!(ok("UPPER", &[Value::Null]), Value::Null);
        assert_eq!(
            types("UPPER", &[INT]).unwrap_err(),
            "UPPER expects a STRING argument, found BIGINT"
        );
        assert!(types("TRIM_BOTH", &[STR]).is_err());
    }

    #[test]
    fn lengths_count_characters() {
        assert_eq!(ok("CHAR_LENGTH", &[s("héllo")]), Value::Int(5));
        assert_eq!(ok("CHARACTER_LENGTH", &[s("")]), Value::Int(0));
        assert_eq!(types("CHAR_LENGTH", &[None]), Ok(DataType::Int));
    }

    #[test]
    fn concat_and_concat_ws() {
        assert_eq!(ok("CONCAT", &[s("AA"), s("BB"), s("CC")]), s("AABBCC"));
        assert_eq!(ok("CONCAT", &[s("AA"), Value::Null]), Value::Null);
        // Flink's documented example.
        assert_eq!(
            ok(
                "CONCAT_WS",
                &[s("~"), s("AA"), Value::Null, s("BB"), s(""), s("CC")]
            ),
            s("AA~BB~~CC")
        );
        assert_eq!(ok("CONCAT_WS", &[Value::Null, s("a")]), Value::Null);
        assert_eq!(ok("CONCAT_WS", &[s(","), Value::Null]), s(""));
        assert_eq!(ok("CONCAT_WS", &[s(",")]), s(""));
        assert!(types("CONCAT", &[]).is_err());
        assert!(types("CONCAT", &[STR, INT]).is_err());
    }

    #[test]
    fn substring_follows_flink() {
        let sub = |v: &str, from: i64, len: Option<i64>| {
            let mut args = vec![s(v), Value::Int(from)];
            args.extend(len.map(Value::Int));
            ok("SUBSTRING", &args)
        };
        assert_eq!(sub("hello", 2, Some(3)), s("ell"));
        assert_eq!(sub("hello", 2, None), s("ello"));
        assert_eq!(sub("hello", 0, Some(2)), s("he"));
        assert_eq!(sub("hello", -3, None), s("llo"));
        assert_eq!(sub("hello", -3, Some(2)), s("ll"));
        assert_eq!(sub("hello", -9, Some(2)), s(""));
        assert_eq!(sub("hello", 9, None), s(""));
        assert_eq!(sub("hello", 1, Some(-1)), Value::Null);
        assert_eq!(sub("hello", 4, Some(i64::MAX)), s("lo"));
        assert_eq!(sub("héllo", 2, Some(2)), s("él"));
        assert_eq!(sub("", 1, Some(2)), s(""));
        assert_eq!(sub("abc", i64::MIN, None), s(""));
        assert_eq!(
            ok("SUBSTR", &[s("hello"), Value::Int(2), Value::Int(1)]),
            s("e")
        );
        assert_eq!(
            types("SUBSTRING", &[STR, Some(DataType::Double)]).unwrap_err(),
            "SUBSTRING expects an integer (BIGINT) second argument, found DOUBLE"
        );
        assert!(types("SUBSTRING", &[STR]).is_err());
    }

    #[test]
    fn replace_position_locate() {
        assert_eq!(
            ok("REPLACE", &[s("hello world"), s("world"), s("flink")]),
            s("hello flink")
        );
        assert_eq!(ok("REPLACE", &[s("ababab"), s("abab"), s("z")]), s("zab"));
        assert_eq!(ok("REPLACE", &[s("abc"), s(""), s("-")]), s("-a-b-c-"));
        assert_eq!(ok("POSITION", &[s("lo"), s("hello")]), Value::Int(4));
        assert_eq!(ok("POSITION", &[s("x"), s("hello")]), Value::Int(0));
        assert_eq!(ok("POSITION", &[s(""), s("hello")]), Value::Int(1));
        assert_eq!(ok("POSITION", &[s("l"), s("héllo")]), Value::Int(3));
        assert_eq!(
            ok("LOCATE", &[s("l"), s("hello"), Value::Int(4)]),
            Value::Int(4)
        );
        assert_eq!(
            ok("LOCATE", &[s("l"), s("hello"), Value::Int(5)]),
            Value::Int(0)
        );
        assert_eq!(
            ok("LOCATE", &[s("h"), s("hello"), Value::Int(-3)]),
            Value::Int(1)
        );
        assert_eq!(
            ok("LOCATE", &[s("h"), s("hello"), Value::Int(99)]),
            Value::Int(0)
        );
        assert_eq!(ok("LOCATE", &[s("l"), s("hello")]), Value::Int(3));
        assert_eq!(ok("LOCATE", &[s("l"), Value::Null]), Value::Null);
    }

    #[test]
    fn padding() {
        // Flink's documented examples.
        assert_eq!(ok("LPAD", &[s("hi"), Value::Int(4), s("??")]), s("??hi"));
        assert_eq!(ok("LPAD", &[s("hi"), Value::Int(1), s("??")]), s("h"));
        assert_eq!(ok("RPAD", &[s("hi"), Value::Int(4), s("??")]), s("hi??"));
        assert_eq!(ok("RPAD", &[s("hi"), Value::Int(1), s("??")]), s("h"));
        assert_eq!(ok("LPAD", &[s("hi"), Value::Int(5), s("ab")]), s("abahi"));
        assert_eq!(ok("RPAD", &[s("hi"), Value::Int(5), s("ab")]), s("hiaba"));
        assert_eq!(ok("LPAD", &[s("hi"), Value::Int(0), s("?")]), s(""));
        assert_eq!(ok("LPAD", &[s("hi"), Value::Int(-1), s("?")]), Value::Null);
        assert_eq!(ok("RPAD", &[s("hi"), Value::Int(3), s("")]), Value::Null);
        assert!(call("LPAD", &[s("hi"), Value::Int(i64::MAX), s("?")]).is_err());
    }

    #[test]
    fn initcap_reverse_repeat() {
        assert_eq!(
            ok("INITCAP", &[s("hello wORLD 1st-place")]),
            s("Hello World 1st-Place")
        );
        assert_eq!(ok("INITCAP", &[s("élan")]), s("éLan"));
        assert_eq!(ok("REVERSE", &[s("héllo")]), s("olléh"));
        assert_eq!(ok("REPEAT", &[s("ab"), Value::Int(3)]), s("ababab"));
        assert_eq!(ok("REPEAT", &[s("ab"), Value::Int(-1)]), s(""));
        assert_eq!(ok("REPEAT", &[s(""), Value::Int(i64::MAX)]), s(""));
        assert!(call("REPEAT", &[s("ab"), Value::Int(i64::MAX)]).is_err());
    }

    #[test]
    fn split_index() {
        let split = |v: &str, d: &str, i: i64| ok("SPLIT_INDEX", &[s(v), s(d), Value::Int(i)]);
        assert_eq!(split("a,b,,c", ",", 1), s("b"));
        assert_eq!(split("a,b,,c", ",", 2), s(""));
        assert_eq!(split("a,b,,c", ",", 4), Value::Null);
        assert_eq!(split("a,b", ",", -1), Value::Null);
        assert_eq!(split("", ",", 0), Value::Null);
        assert_eq!(split("a-!-b", "-!-", 1), s("b"));
        assert_eq!(split("a b", "", 1), s("b"));
        assert_eq!(split("a,", ",", 1), s(""));
    }

    #[test]
    fn regular_expressions() {
        assert_eq!(ok("REGEXP", &[s("abc123"), s(r"\d+")]), Value::Bool(true));
        assert_eq!(ok("REGEXP", &[s("abc"), s(r"^b")]), Value::Bool(false));
        assert_eq!(ok("REGEXP", &[s("abc"), s("")]), Value::Bool(false));
        // Java's \d is ASCII only.
        assert_eq!(ok("REGEXP", &[s("١٢٣"), s(r"\d")]), Value::Bool(false));
        assert!(
            call("REGEXP", &[s("abc"), s("(")])
                .unwrap_err()
                .contains("invalid regular expression '('")
        );
        // Flink's documented example.
        assert_eq!(
            ok(
                "REGEXP_EXTRACT",
                &[s("foothebar"), s("foo(.*?)(bar)"), Value::Int(2)]
            ),
            s("bar")
        );
        assert_eq!(ok("REGEXP_EXTRACT", &[s("foothebar"), s("o+")]), s("oo"));
        assert_eq!(
            ok(
                "REGEXP_EXTRACT",
                &[s("foothebar"), s("foo(.*?)(bar)"), Value::Int(3)]
            ),
            Value::Null
        );
        assert_eq!(
            ok(
                "REGEXP_EXTRACT",
                &[s("foothebar"), s("foo"), Value::Int(-1)]
            ),
            Value::Null
        );
        assert_eq!(ok("REGEXP_EXTRACT", &[s("abc"), s("x")]), Value::Null);
        assert_eq!(ok("REGEXP_EXTRACT", &[s("ab"), s("a(x)?")]), s("a"));
        assert_eq!(
            ok("REGEXP_EXTRACT", &[s("ab"), s("a(x)?"), Value::Int(1)]),
            Value::Null
        );
        // Flink's documented example; the replacement is literal.
        assert_eq!(
            ok("REGEXP_REPLACE", &[s("foobar"), s("oo|ar"), s("")]),
            s("fb")
        );
        assert_eq!(
            ok("REGEXP_REPLACE", &[s("ab"), s("(a)"), s("$1$1")]),
            s("$1$1b")
        );
        assert_eq!(
            ok("REGEXP_REPLACE", &[s("abc"), s("x*"), s("-")]),
            s("-a-b-c-")
        );
    }

    #[test]
    fn java_regex_translation() {
        assert_eq!(
            java_to_rust_regex(r"\d\w\s"),
            r"[0-9][0-9A-Za-z_][\t\n\x0B\x0C\r ]"
        );
        assert_eq!(java_to_rust_regex(r"[^\D]"), r"[^[^0-9]]");
        assert_eq!(java_to_rust_regex(r"\Qa.b\E+"), r"a\.b+");
        assert_eq!(java_to_rust_regex(r"\\d"), r"\\d");
        assert_eq!(
            java_to_rust_regex(r"\p{Alpha}\P{Digit}\p{L}"),
            r"[a-zA-Z][^0-9]\p{L}"
        );
        assert_eq!(java_to_rust_regex("a\\"), "a\\");
        assert!(regex(r"\p{Punct}+").unwrap().is_match("!?"));
        assert!(regex(r"(?<year>\d{4})").is_ok());
        assert!(regex(r"a(?=b)").is_err());
    }

    #[test]
    fn left_right_ascii_chr() {
        assert_eq!(ok("LEFT", &[s("hello"), Value::Int(2)]), s("he"));
        assert_eq!(ok("LEFT", &[s("hello"), Value::Int(-2)]), s(""));
        assert_eq!(ok("LEFT", &[s("hello"), Value::Int(99)]), s("hello"));
        assert_eq!(ok("RIGHT", &[s("hello"), Value::Int(2)]), s("lo"));
        assert_eq!(ok("RIGHT", &[s("hello"), Value::Int(0)]), s(""));
        assert_eq!(ok("RIGHT", &[s("hello"), Value::Int(99)]), s("hello"));
        assert_eq!(ok("ASCII", &[s("abc")]), Value::Int(97));
        assert_eq!(ok("ASCII", &[s("")]), Value::Int(0));
        assert_eq!(ok("ASCII", &[s("é")]), Value::Int(-61));
        // Flink's documented examples.
        assert_eq!(ok("CHR", &[Value::Int(97)]), s("a"));
        assert_eq!(ok("CHR", &[Value::Int(353)]), s("a"));
        assert_eq!(ok("CHR", &[Value::Int(-1)]), s(""));
        assert_eq!(ok("CHR", &[Value::Int(256)]), s("\0"));
        assert_eq!(ok("CHR", &[Value::Int(233)]), s("é"));
    }

    #[test]
    fn digit_and_alpha_predicates() {
        assert_eq!(ok("IS_DIGIT", &[s("0123")]), Value::Bool(true));
        assert_eq!(ok("IS_DIGIT", &[s("١٢")]), Value::Bool(true));
        assert_eq!(ok("IS_DIGIT", &[s("1.5")]), Value::Bool(false));
        assert_eq!(ok("IS_DIGIT", &[s("")]), Value::Bool(false));
        assert_eq!(ok("IS_DIGIT", &[Value::Null]), Value::Bool(false));
        assert_eq!(ok("IS_ALPHA", &[s("abcÉ")]), Value::Bool(true));
        assert_eq!(ok("IS_ALPHA", &[s("ab1")]), Value::Bool(false));
        assert_eq!(ok("IS_ALPHA", &[Value::Null]), Value::Bool(false));
    }

    #[test]
    fn json_value() {
        assert_eq!(
            ok("JSON_VALUE", &[s(r#"{"a": true}"#), s("$.a")]),
            s("true")
        );
        assert_eq!(
            ok("JSON_VALUE", &[s(r#"{"a": true}"#), s("$.b")]),
            Value::Null
        );
        assert_eq!(ok("JSON_VALUE", &[s("not json"), s("$.a")]), Value::Null);
        assert_eq!(ok("JSON_VALUE", &[Value::Null, s("$.a")]), Value::Null);
        assert!(call("JSON_VALUE", &[s("{}"), s("$..a")]).is_err());
    }
}
