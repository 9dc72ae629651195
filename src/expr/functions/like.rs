//! SQL LIKE without regular expressions or allocation: the evaluator calls [`like`] once per
//! row, usually with a constant pattern.

/// One unit of a LIKE pattern.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Token {
    /// `%`: any sequence of characters.
    Any,
    /// `_`: exactly one character.
    One,
    Literal(char),
}

/// The token starting at byte `i` of `pattern` and the offset after it. An escape character
/// makes the next character literal; a dangling escape at the end stands for itself (Flink
/// rejects such a pattern, see [`check_like_pattern`], but a pattern read from a column must
/// still give an answer).
#[inline]
fn token(pattern: &str, i: usize, escape: Option<char>) -> Option<(Token, usize)> {
    let c = pattern[i..].chars().next()?;
    let next = i + c.len_utf8();
    if Some(c) == escape {
        return Some(match pattern[next..].chars().next() {
            Some(e) => (Token::Literal(e), next + e.len_utf8()),
            None => (Token::Literal(c), next),
        });
    }
    Some(match c {
        '%' => (Token::Any, next),
        '_' => (Token::One, next),
        _ => (Token::Literal(c), next),
    })
}

/// SQL LIKE: `%` matches any sequence of characters, `_` exactly one, the escape character
/// makes the following character literal. Case-sensitive, as in Flink.
///
/// Greedy matching with backtracking to the last `%` only: a later `%` can absorb anything an
/// earlier one could, so this is complete and runs in O(|value| · |pattern|) at worst.
pub fn like(value: &str, pattern: &str, escape: Option<char>) -> bool {
    let (mut v, mut p) = (0usize, 0usize);
    // Where to resume after the last `%`: pattern offset after it, value offset it covers to.
    let mut resume: Option<(usize, usize)> = None;
    loop {
        match token(pattern, p, escape) {
            Some((Token::Any, next)) => {
                resume = Some((next, v));
                p = next;
                continue;
            }
            Some((t, next)) => {
                if let Some(c) = value[v..].chars().next()
                    && (t == Token::One || t == Token::Literal(c))
                {
                    v += c.len_utf8();
                    p = next;
                    continue;
                }
            }
            None if v == value.len() => return true,
            None => {}
        }
        // Mismatch: let the last `%` absorb one more character and retry after it.
        match resume {
            Some((after, covered)) if covered < value.len() => {
                let c = value[covered..].chars().next().map_or(1, char::len_utf8);
                resume = Some((after, covered + c));
                p = after;
                v = covered + c;
            }
            _ => return false,
        }
    }
}

/// Flink rejects a pattern where the escape character is not followed by `%`, `_` or itself;
/// the compiler can call this for literal patterns.
///
/// # Errors
/// A message naming the offending position.
pub fn check_like_pattern(pattern: &str, escape: Option<char>) -> Result<(), String> {
    let Some(e) = escape else { return Ok(()) };
    let mut chars = pattern.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == e {
            match chars.next() {
                Some((_, n)) if n == '%' || n == '_' || n == e => {}
                _ => {
                    return Err(format!(
                        "invalid escape sequence in LIKE pattern '{pattern}' at position {}",
                        i + 1
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(like("hello", "hello", None));
        assert!(!like("hello", "hell", None));
        assert!(like("hello", "h%", None));
        assert!(like("hello", "%llo", None));
        assert!(like("hello", "%ll%", None));
        assert!(like("hello", "h_llo", None));
        assert!(!like("hello", "h_lo", None));
        assert!(like("", "%", None));
        assert!(like("", "", None));
        assert!(!like("", "_", None));
        assert!(!like("a", "", None));
        assert!(like("abcabc", "%abc", None));
        assert!(like("aaab", "%a%b", None));
        assert!(!like("aaac", "%a%b", None));
        assert!(like("mississippi", "m%iss%pi", None));
        assert!(like("mississippi", "%s%s%s%", None));
        assert!(!like("mississippi", "%s%s%s%s%s%", None));
        assert!(like("héllo", "h_llo", None));
        assert!(like("日本語", "_本%", None));
        assert!(!like("Hello", "hello", None));
        assert!(like("a\nb", "a%b", None));
        assert!(like("ab", "a%%b", None));
    }

    #[test]
    fn escapes() {
        assert!(like("100%", "100!%", Some('!')));
        assert!(!like("1000", "100!%", Some('!')));
        assert!(like("a_b", r"a\_b", Some('\\')));
        assert!(!like("axb", r"a\_b", Some('\\')));
        assert!(like(r"a\b", r"a\\b", Some('\\')));
        assert!(like("a!", "a!", Some('!')));
        assert!(like("%", "é%", Some('é')));
        assert!(check_like_pattern("100!%", Some('!')).is_ok());
        assert!(check_like_pattern("a!b", Some('!')).is_err());
        assert!(check_like_pattern("a!", Some('!')).is_err());
        assert!(check_like_pattern("a!b", None).is_ok());
    }

    /// Cross-check against a regex translation on small random inputs.
    #[test]
    fn agrees_with_a_regex() {
        let alphabet = ['a', 'b', '%', '_'];
        let mut seed = 12345u64;
        let mut next = |n: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n
        };
        for _ in 0..3000 {
            let plen = next(6);
            let pattern: String = (0..plen).map(|_| alphabet[next(4)]).collect();
            let vlen = next(7);
            let value: String = (0..vlen).map(|_| alphabet[next(2)]).collect();
            let re: String = pattern
                .chars()
                .map(|c| match c {
                    '%' => "(?s:.*)".to_string(),
                    '_' => "(?s:.)".to_string(),
                    c => regex::escape(&c.to_string()),
                })
                .collect();
            let re = regex::Regex::new(&format!("^{re}$")).unwrap();
            assert_eq!(
                like(&value, &pattern, None),
                re.is_match(&value),
                "{value} LIKE {pattern}"
            );
        }
    }
}
