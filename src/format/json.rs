//! JSON decoding (schema-driven, one object per line or message).
//!
//! [`JsonDecoder`] is a hand-written scanner specialised on the schema rather than a generic
//! JSON parser followed by a conversion: it appends each value straight into its column and
//! skips everything else without building a tree, so a record costs no allocation. Semantics
//! follow Flink's `json` format with `fail-on-missing-field = false`:
//!
//! - every line (message) is one JSON object; blank lines are skipped;
//! - fields not in the schema are skipped, missing fields and `null` are NULL, and of
//!   duplicate keys the last wins;
//! - a STRING field takes a string, or the JSON text of any other value (`12`, `true`,
//!   `{"a":1}` as written);
//! - BIGINT takes integral numbers (`3.0` and `1e3` included) and strings holding one,
//!   DOUBLE any number or numeric string, BOOLEAN `true`/`false` (also quoted), TIMESTAMP a
//!   string [`parse_timestamp`] understands, ARRAY<T> an array of such values.
//!
//! With `types: strict` ([`JsonDecoder::with_strict_types`]) there are no conversions between
//! JSON types: a STRING takes only strings, BIGINT only integers written as such, DOUBLE only
//! numbers, BOOLEAN only `true`/`false`.
//!
//! Anything else, including malformed JSON and invalid UTF-8, makes the record bad: it goes
//! to the dead-letter output with a message naming the field or the byte where parsing
//! stopped, and the batch is left exactly as it was.
//!
//! The text conversions ([`convert_text`], [`Mismatch`]) and the record [`Rollback`] are
//! shared with the CSV decoder.

use std::borrow::Cow;

use memchr::memchr;

use super::{BadRecord, Decoder};
use crate::data::time::parse_timestamp;
use crate::data::{Batch, Column, ColumnData, DataType, Schema};

/// Containers nested deeper than this (the record object counting as level 1) make a record
/// bad, so skipping hostile input cannot exhaust the stack.
const MAX_DEPTH: u32 = 128;

/// Decodes JSON objects into rows of a schema. See the module documentation for the rules.
pub struct JsonDecoder {
    names: Vec<String>,
    types: Vec<DataType>,
    /// Open-addressing table of field indexes + 1 (0 = empty slot), keyed by [`key_hash`];
    /// at least twice as large as the schema, so probes end quickly at an empty slot.
    table: Vec<u32>,
    /// `predict[k]`: the field whose key followed field `k` in the previous record
    /// (`predict[n]`: the first key). Records of a stream nearly always share a key order,
    /// so one comparison usually finds the field without hashing.
    predict: Vec<u32>,
    /// `key_texts[k]`: field `k`'s key as it appears in a record, after the opening quote
    /// (`name":`), when its name needs no escapes: the predicted key is then recognised in
    /// one comparison, without scanning for the end of the string.
    key_texts: Vec<Option<Box<[u8]>>>,
    /// `seen[k] == generation` when field `k` was set by the current record.
    seen: Vec<u32>,
    generation: u32,
    /// Keys and values with escapes are decoded here when they do not go to a column.
    scratch: String,
    rollback: Rollback,
    /// Values of the current record that did not convert, with their field: the record
    /// fails unless a duplicate key replaces them.
    unconverted: Vec<(usize, Fail)>,
    /// `types: strict`: a value must have its field's JSON type (no conversions).
    strict: bool,
}

impl JsonDecoder {
    pub fn new(schema: &Schema) -> JsonDecoder {
        let n = schema.fields.len();
        let size = (2 * n).next_power_of_two().max(2);
        let mut table = vec![0u32; size];
        for (i, field) in schema.fields.iter().enumerate() {
            let mut slot = key_hash(field.name.as_bytes()) & (size - 1);
            loop {
                match table[slot] {
                    0 => {
                        table[slot] = i as u32 + 1;
                        break;
                    }
                    // A duplicate name (rejected by validation anyway): the first one wins.
                    e if schema.fields[e as usize - 1].name == field.name => break,
                    _ => slot = (slot + 1) & (size - 1),
                }
            }
        }
        JsonDecoder {
            names: schema.fields.iter().map(|f| f.name.clone()).collect(),
            types: schema.fields.iter().map(|f| f.data_type.clone()).collect(),
            table,
            // Guess schema order until the data shows its own.
            predict: (1..=n as u32).chain([0]).collect(),
            key_texts: schema
                .fields
                .iter()
                .map(|f| {
                    let name = f.name.as_bytes();
                    let plain = name.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\');
                    plain.then(|| [name, b"\":"].concat().into_boxed_slice())
                })
                .collect(),
            seen: vec![0; n],
            generation: 0,
            scratch: String::new(),
            rollback: Rollback::default(),
            unconverted: Vec::new(),
            strict: false,
        }
    }

    /// With `strict`, a value of another JSON type than its field's (`17` or `{…}` for a
    /// string, `"12"` or `3.0` for an int) makes the record bad instead of being converted.
    #[must_use]
    pub fn with_strict_types(mut self, strict: bool) -> JsonDecoder {
        self.strict = strict;
        self
    }

    /// The schema index of `key`, trying the field predicted to come after `prev` first.
    #[inline]
    fn field_index(&self, key: &[u8], prev: usize) -> Option<usize> {
        let guess = self.predict[prev] as usize;
        if self
            .names
            .get(guess)
            .is_some_and(|n| same_key(n.as_bytes(), key))
        {
            return Some(guess);
        }
        let mask = self.table.len() - 1;
        let mut slot = key_hash(key) & mask;
        loop {
            let entry = self.table[slot] as usize;
            if entry == 0 {
                return None;
            }
            if same_key(self.names[entry - 1].as_bytes(), key) {
                return Some(entry - 1);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// The field predicted to come after `prev` and the position after its key and colon, if
    /// the key at `pos` (an opening quote) is that field's, written without escapes or
    /// spaces before the colon.
    #[inline]
    fn predicted_key(&self, bytes: &[u8], pos: usize, prev: usize) -> Option<(usize, usize)> {
        let guess = self.predict[prev] as usize;
        let text = self.key_texts.get(guess)?.as_deref()?;
        let start = pos + 1;
        let found = bytes.get(start..start + text.len())?;
        same_key(found, text).then_some((guess, start + text.len()))
    }

    /// Decodes one record into `out`: `Ok(true)` for a row, `Ok(false)` for a blank line.
    /// On error `out` is unchanged.
    fn decode_record(&mut self, text: &str, out: &mut Batch) -> Result<bool, String> {
        let mut p = Parser {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            scratch: std::mem::take(&mut self.scratch),
            strict: self.strict,
        };
        let result = self.parse_record(&mut p, &mut out.columns, out.num_rows);
        self.scratch = p.scratch;
        match result {
            Ok(row) => {
                out.num_rows += usize::from(row);
                Ok(row)
            }
            Err(fail) => {
                self.rollback.undo(&mut out.columns, out.num_rows);
                Err(self.describe(&fail, text))
            }
        }
    }

    fn parse_record(
        &mut self,
        p: &mut Parser<'_>,
        cols: &mut [Column],
        rows: usize,
    ) -> Result<bool, Fail> {
        p.skip_ws();
        match p.peek() {
            None => return Ok(false),
            Some(b'{') => p.pos += 1,
            Some(_) => return Err(Fail::NotObject { at: p.pos }),
        }
        self.rollback.start();
        self.unconverted.clear();
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.seen.fill(0);
            self.generation = 1;
        }
        let n = self.types.len();
        let mut set = 0;
        let mut prev = n;

        p.skip_ws();
        if p.peek() == Some(b'}') {
            p.pos += 1;
        } else {
            loop {
                if p.peek() != Some(b'"') {
                    return Err(p.syntax("expected '\"' to start a key"));
                }
                let index = if let Some((i, after)) = self.predicted_key(p.bytes, p.pos, prev) {
                    p.pos = after;
                    Some(i)
                } else {
                    let key = p.scan_string()?;
                    let index = if key.escaped {
                        p.scratch.clear();
                        unescape(p.slice(key.start, key.end), &mut p.scratch).map_err(
                            |(at, what)| Fail::Syntax {
                                at: key.start + at,
                                what,
                            },
                        )?;
                        self.field_index(p.scratch.as_bytes(), prev)
                    } else {
                        self.field_index(&p.bytes[key.start..key.end], prev)
                    };
                    p.skip_ws();
                    p.eat(b':', "expected ':'")?;
                    index
                };
                p.skip_ws();
                match index {
                    Some(i) => {
                        if self.seen[i] == self.generation {
                            cols[i].truncate(rows);
                            self.unconverted.retain(|(field, _)| *field != i);
                        } else {
                            self.seen[i] = self.generation;
                            set += 1;
                        }
                        if p.peek() == Some(b'n') || matches!(self.types[i], DataType::Array(_)) {
                            self.rollback.before_null(cols);
                        }
                        let start = p.pos;
                        if let Err(fail) = p.value(&self.types[i], &mut cols[i], 2) {
                            let Fail::Value { .. } = fail else {
                                return Err(fail);
                            };
                            // A later duplicate key may still replace this value, so go on
                            // past it and decide at the end.
                            cols[i].truncate(rows);
                            self.unconverted.push((i, fail.in_field(i)));
                            p.pos = start;
                            p.skip_value(2)?;
                        }
                        self.predict[prev] = i as u32;
                        prev = i;
                    }
                    None => p.skip_value(2)?,
                }
                p.skip_ws();
                match p.peek() {
                    Some(b',') => {
                        p.pos += 1;
                        p.skip_ws();
                    }
                    Some(b'}') => {
                        p.pos += 1;
                        break;
                    }
                    _ => return Err(p.syntax("expected ',' or '}'")),
                }
            }
        }
        p.skip_ws();
        if p.pos < p.bytes.len() {
            return Err(p.syntax("unexpected text after the object"));
        }
        if !self.unconverted.is_empty() {
            return Err(self.unconverted.swap_remove(0).1);
        }
        // Nothing can fail from here on, so these NULLs need no rollback.
        if set < n {
            for (col, &seen) in cols.iter_mut().zip(&self.seen) {
                if seen != self.generation {
                    col.push_null();
                }
            }
        }
        Ok(true)
    }

    fn describe(&self, fail: &Fail, text: &str) -> String {
        match *fail {
            Fail::Syntax { at, what } => format!("invalid JSON at byte {}: {what}", at + 1),
            Fail::NotObject { at } => format!(
                "expected a JSON object, found {}",
                shorten(text.get(at..).unwrap_or_default())
            ),
            Fail::Value {
                mismatch,
                start,
                end,
                field,
                element,
            } => {
                let name = field.and_then(|i| self.names.get(i)).map_or("?", |n| n);
                let element = element.map_or(String::new(), |k| format!(", element {}", k + 1));
                let found = shorten(text.get(start..end).unwrap_or_default());
                format!("field `{name}`{element}: {}", mismatch.describe(&found))
            }
        }
    }
}

impl Decoder for JsonDecoder {
    fn decode_lines(
        &mut self,
        chunk: &[u8],
        first_line: u64,
        out: &mut Batch,
        bad: &mut Vec<BadRecord>,
    ) {
        // One validation pass over the whole chunk is much cheaper than one per line; lines
        // of a valid chunk are then `str` slices (split at ASCII bytes, so on char
        // boundaries). Only a chunk with invalid UTF-8 is validated line by line.
        let text = std::str::from_utf8(chunk).ok();
        // A byte order mark may start a file (Jackson skips it too), nowhere else.
        let mut start = if first_line == 1 && chunk.starts_with("\u{feff}".as_bytes()) {
            3
        } else {
            0
        };
        let mut line_no = first_line;
        while start < chunk.len() {
            let end = memchr(b'\n', &chunk[start..]).map_or(chunk.len(), |i| start + i);
            let line_end = if end > start && chunk[end - 1] == b'\r' {
                end - 1
            } else {
                end
            };
            let line = &chunk[start..line_end];
            let result = match text.map_or_else(
                || std::str::from_utf8(line).ok(),
                |t| t.get(start..line_end),
            ) {
                Some(line) => self.decode_record(line, out),
                None => Err(utf8_error(line)),
            };
            if let Err(error) = result {
                bad.push(BadRecord {
                    raw: line.to_vec(),
                    error,
                    line: line_no,
                    offset: None,
                });
            }
            start = end + 1;
            line_no += 1;
        }
    }

    fn decode_message(&mut self, bytes: &[u8], out: &mut Batch) -> Result<(), String> {
        let text = std::str::from_utf8(bytes).map_err(|_| utf8_error(bytes))?;
        match self.decode_record(text, out)? {
            true => Ok(()),
            false => Err("empty message: expected a JSON object".to_string()),
        }
    }
}

fn utf8_error(bytes: &[u8]) -> String {
    let at = std::str::from_utf8(bytes)
        .err()
        .map_or(0, |e| e.valid_up_to());
    format!("invalid UTF-8 at byte {}", at + 1)
}

/// `a == b`, without a call to `memcmp` for keys of up to 16 bytes (most field names): each
/// record compares every key with a name, and the call was a fifth of decoding. Two
/// overlapping words cover the first and the last bytes of the key.
#[inline]
fn same_key(a: &[u8], b: &[u8]) -> bool {
    fn words<const N: usize>(a: &[u8], b: &[u8]) -> bool {
        a.first_chunk::<N>() == b.first_chunk::<N>() && a.last_chunk::<N>() == b.last_chunk::<N>()
    }
    if a.len() != b.len() {
        return false;
    }
    match a.len() {
        0..=3 => a.iter().zip(b).all(|(x, y)| x == y),
        4..=7 => words::<4>(a, b),
        8..=16 => words::<8>(a, b),
        _ => a == b,
    }
}

/// FxHash-style hash: plenty for a few dozen short, distinct field names.
#[inline]
fn key_hash(key: &[u8]) -> usize {
    let mut h = key.len() as u64;
    for &b in key {
        h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    (h >> 32) as usize
}

/// Why a record failed, with byte offsets into its text (formatted only when it fails).
#[derive(Debug)]
enum Fail {
    /// Malformed JSON.
    Syntax { at: usize, what: &'static str },
    /// Well-formed, but not an object.
    NotObject { at: usize },
    /// A well-formed value (`start..end`) that does not convert to its field's type.
    Value {
        mismatch: Mismatch,
        start: usize,
        end: usize,
        field: Option<usize>,
        element: Option<usize>,
    },
}

impl Fail {
    fn in_field(self, index: usize) -> Fail {
        match self {
            Fail::Value {
                mismatch,
                start,
                end,
                element,
                ..
            } => Fail::Value {
                mismatch,
                start,
                end,
                field: Some(index),
                element,
            },
            other => other,
        }
    }

    fn at_element(self, index: usize) -> Fail {
        match self {
            Fail::Value {
                mismatch,
                start,
                end,
                field,
                element: None,
            } => Fail::Value {
                mismatch,
                start,
                end,
                field,
                element: Some(index),
            },
            other => other,
        }
    }
}

/// A string token: its content is `start..end` (between the quotes, escapes undecoded).
struct StrToken {
    start: usize,
    end: usize,
    escaped: bool,
}

/// A number token, with its value when it is a plain integer that fits in an `i64`.
struct NumToken {
    int: Option<i64>,
    /// No fraction and no exponent.
    plain: bool,
    /// Digits before the fraction.
    digits: usize,
}

/// A cursor over one record's text.
struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    scratch: String,
    /// `types: strict`: no conversions between JSON types.
    strict: bool,
}

impl<'a> Parser<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn syntax(&self, what: &'static str) -> Fail {
        Fail::Syntax { at: self.pos, what }
    }

    #[inline]
    fn eat(&mut self, byte: u8, what: &'static str) -> Result<(), Fail> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.syntax(what))
        }
    }

    /// `text[start..end]`. Token boundaries are always at ASCII bytes, hence char
    /// boundaries; `get` just keeps a bug from turning into a panic.
    #[inline]
    fn slice(&self, start: usize, end: usize) -> &'a str {
        debug_assert!(self.text.is_char_boundary(start) && self.text.is_char_boundary(end));
        self.text.get(start..end).unwrap_or_default()
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), Fail> {
        if self.bytes.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.syntax("invalid literal (expected true, false or null)"))
        }
    }

    /// Finds the end of the string starting at `pos` (a `"`) and moves past it. Escapes are
    /// only skipped here (`\"` must not end the string); they are checked when decoded.
    #[inline]
    fn scan_string(&mut self) -> Result<StrToken, Fail> {
        let start = self.pos + 1;
        let mut i = start;
        let mut escaped = false;
        loop {
            // Eight bytes at a time while they last; the match below then handles the byte
            // that stopped the scan, or the short tail one byte at a time.
            while let Some(word) = self.bytes.get(i..).and_then(<[u8]>::first_chunk::<8>) {
                let special = special_bytes(u64::from_le_bytes(*word));
                if special != 0 {
                    i += (special.trailing_zeros() / 8) as usize;
                    break;
                }
                i += 8;
            }
            match self.bytes.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok(StrToken {
                        start,
                        end: i,
                        escaped,
                    });
                }
                Some(b'\\') => {
                    escaped = true;
                    i += 2;
                }
                Some(&c) if c < 0x20 => {
                    return Err(Fail::Syntax {
                        at: i,
                        what: "control character in string (must be escaped)",
                    });
                }
                Some(_) => i += 1,
                None => {
                    return Err(Fail::Syntax {
                        at: self.bytes.len(),
                        what: "unterminated string",
                    });
                }
            }
        }
    }

    /// Checks the escapes of a string token that is skipped.
    fn check_escapes(&self, tok: &StrToken) -> Result<(), Fail> {
        unescape(self.slice(tok.start, tok.end), &mut Discard).map_err(|(at, what)| Fail::Syntax {
            at: tok.start + at,
            what,
        })
    }

    /// Scans the number at `pos` (JSON grammar: no leading zeros, no `+`, digits on both
    /// sides of `.`) and moves past it.
    #[inline]
    fn scan_number(&mut self) -> Result<NumToken, Fail> {
        let b = self.bytes;
        let start = self.pos;
        let neg = b.get(start) == Some(&b'-');
        let int_start = start + usize::from(neg);
        let mut i = int_start;
        let mut acc: u64 = 0;
        while let Some(&c) = b.get(i) {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                break;
            }
            // Wraps for 20+ digits; only used for up to 18 (below).
            acc = acc.wrapping_mul(10).wrapping_add(u64::from(d));
            i += 1;
        }
        let digits = i - int_start;
        if digits == 0 {
            return Err(Fail::Syntax {
                at: i,
                what: "invalid number",
            });
        }
        if digits > 1 && b[int_start] == b'0' {
            return Err(Fail::Syntax {
                at: int_start,
                what: "invalid number (leading zero)",
            });
        }
        let skip_digits = |mut i: usize| {
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            i
        };
        let mut plain = true;
        if b.get(i) == Some(&b'.') {
            plain = false;
            let after = skip_digits(i + 1);
            if after == i + 1 {
                return Err(Fail::Syntax {
                    at: after,
                    what: "invalid number (expected a digit after '.')",
                });
            }
            i = after;
        }
        if let Some(b'e' | b'E') = b.get(i) {
            plain = false;
            i += 1;
            if let Some(b'+' | b'-') = b.get(i) {
                i += 1;
            }
            let after = skip_digits(i);
            if after == i {
                return Err(Fail::Syntax {
                    at: i,
                    what: "invalid number (expected a digit in the exponent)",
                });
            }
            i = after;
        }
        self.pos = i;
        let int = if !plain {
            None
        } else if digits <= 18 {
            // 10^18 < 2^63: no overflow possible.
            let x = acc as i64;
            Some(if neg { -x } else { x })
        } else {
            self.slice(start, i).parse::<i64>().ok()
        };
        Ok(NumToken { int, plain, digits })
    }

    /// Skips the value at `pos`, checking its syntax. `depth` is the nesting level a
    /// container starting here would have.
    fn skip_value(&mut self, depth: u32) -> Result<(), Fail> {
        match self.peek() {
            Some(b'"') => {
                let tok = self.scan_string()?;
                if tok.escaped {
                    self.check_escapes(&tok)?;
                }
                Ok(())
            }
            Some(b'{') => self.skip_container(depth, b'}'),
            Some(b'[') => self.skip_container(depth, b']'),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.scan_number().map(drop),
            _ => Err(self.syntax("expected a value")),
        }
    }

    fn skip_container(&mut self, depth: u32, close: u8) -> Result<(), Fail> {
        if depth > MAX_DEPTH {
            return Err(self.syntax("nesting deeper than 128 levels"));
        }
        let object = close == b'}';
        self.pos += 1;
        self.skip_ws();
        if self.peek() == Some(close) {
            self.pos += 1;
            return Ok(());
        }
        loop {
            if object {
                if self.peek() != Some(b'"') {
                    return Err(self.syntax("expected '\"' to start a key"));
                }
                let key = self.scan_string()?;
                if key.escaped {
                    self.check_escapes(&key)?;
                }
                self.skip_ws();
                self.eat(b':', "expected ':'")?;
                self.skip_ws();
            }
            self.skip_value(depth + 1)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws();
                }
                Some(c) if c == close => {
                    self.pos += 1;
                    return Ok(());
                }
                _ if object => return Err(self.syntax("expected ',' or '}'")),
                _ => return Err(self.syntax("expected ',' or ']'")),
            }
        }
    }

    /// Parses the value at `pos` into `col`, of type `ty`.
    fn value(&mut self, ty: &DataType, col: &mut Column, depth: u32) -> Result<(), Fail> {
        let start = self.pos;
        let mismatch = |p: &Parser<'_>, mismatch| Fail::Value {
            mismatch,
            start,
            end: p.pos,
            field: None,
            element: None,
        };
        match self.peek() {
            Some(b'"') => {
                let tok = self.scan_string()?;
                let content = self.slice(tok.start, tok.end);
                let bad_escape = |(at, what)| Fail::Syntax {
                    at: tok.start + at,
                    what,
                };
                if self.strict && !matches!(ty, DataType::String | DataType::Timestamp) {
                    // A quoted number or boolean: text, not the field's type.
                    self.pos = tok.end + 1;
                    return Err(mismatch(self, Mismatch::expected(ty)));
                }
                if let ColumnData::Str(strings) = &mut col.data {
                    if tok.escaped {
                        unescape(content, &mut strings.data).map_err(bad_escape)?;
                        strings.finish_row();
                        mark_valid(col);
                    } else {
                        col.push_str(content);
                    }
                    return Ok(());
                }
                let text = if tok.escaped {
                    self.scratch.clear();
                    unescape(content, &mut self.scratch).map_err(bad_escape)?;
                    self.scratch.as_str()
                } else {
                    content
                };
                let converted = convert_text(ty, text, self.strict);
                match converted {
                    Ok(scalar) => {
                        push_scalar(col, scalar);
                        Ok(())
                    }
                    Err(m) => Err(mismatch(self, m)),
                }
            }
            Some(b'-' | b'0'..=b'9') => {
                let num = self.scan_number()?;
                match ty {
                    DataType::Int if self.strict && !num.plain => {
                        return Err(mismatch(self, Mismatch::NotInteger));
                    }
                    DataType::String if self.strict => {
                        return Err(mismatch(self, Mismatch::NotString));
                    }
                    DataType::Int => {
                        let x = match num.int {
                            Some(x) => x,
                            None => parse_int_text(self.slice(start, self.pos))
                                .map_err(|m| mismatch(self, m))?,
                        };
                        col.push_int(x);
                    }
                    DataType::Double => {
                        // Below 10^15 an integer converts exactly; otherwise let the
                        // correctly rounding float parser handle it.
                        let x = match num.int {
                            Some(x) if num.plain && num.digits <= 15 => x as f64,
                            _ => self.slice(start, self.pos).parse().unwrap_or(f64::NAN),
                        };
                        col.push_double(x);
                    }
                    DataType::String => col.push_str(self.slice(start, self.pos)),
                    _ => return Err(mismatch(self, Mismatch::expected(ty))),
                }
                Ok(())
            }
            Some(c @ (b't' | b'f')) => {
                let b = c == b't';
                self.literal(if b { b"true" } else { b"false" })?;
                match ty {
                    DataType::Bool => col.push_bool(b),
                    DataType::String if self.strict => {
                        return Err(mismatch(self, Mismatch::NotString));
                    }
                    DataType::String => col.push_str(if b { "true" } else { "false" }),
                    _ => return Err(mismatch(self, Mismatch::expected(ty))),
                }
                Ok(())
            }
            Some(b'n') => {
                self.literal(b"null")?;
                col.push_null();
                Ok(())
            }
            Some(b'[') if matches!(ty, DataType::Array(_)) => self.array(ty, col, depth),
            Some(b'{' | b'[') => {
                self.skip_value(depth)?;
                if *ty == DataType::String && !self.strict {
                    col.push_str(self.slice(start, self.pos));
                    Ok(())
                } else {
                    Err(mismatch(self, Mismatch::expected(ty)))
                }
            }
            _ => Err(self.syntax("expected a value")),
        }
    }

    /// Parses the array at `pos` into `col`, a list column of type `ty`.
    fn array(&mut self, ty: &DataType, col: &mut Column, depth: u32) -> Result<(), Fail> {
        if depth > MAX_DEPTH {
            return Err(self.syntax("nesting deeper than 128 levels"));
        }
        let (DataType::Array(element), ColumnData::List(list)) = (ty, &mut col.data) else {
            return Err(self.syntax("internal error: the batch does not match the schema"));
        };
        self.pos += 1;
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
        } else {
            let mut index = 0;
            loop {
                self.value(element, &mut list.values, depth + 1)
                    .map_err(|fail| fail.at_element(index))?;
                self.skip_ws();
                match self.peek() {
                    Some(b',') => {
                        self.pos += 1;
                        self.skip_ws();
                        index += 1;
                    }
                    Some(b']') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.syntax("expected ',' or ']'")),
                }
            }
        }
        list.offsets.push(list.values.len() as u32);
        mark_valid(col);
        Ok(())
    }
}

/// Marks (high bit of a byte) the bytes of `word` that stop the fast string scan: `"`, `\`
/// and control characters. Only the lowest mark is exact (a borrow can mark bytes above a
/// true match), and that is the only one the scan uses.
#[inline]
fn special_bytes(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let is_quote = quote.wrapping_sub(ONES) & !quote;
    let is_backslash = backslash.wrapping_sub(ONES) & !backslash;
    let is_control = word.wrapping_sub(ONES * 0x20) & !word;
    (is_quote | is_backslash | is_control) & HIGH
}

/// Where decoded string content goes.
trait Sink {
    fn put_str(&mut self, s: &str);
    fn put_char(&mut self, c: char);
}

impl Sink for String {
    fn put_str(&mut self, s: &str) {
        self.push_str(s);
    }
    fn put_char(&mut self, c: char) {
        self.push(c);
    }
}

/// Checks escapes without keeping the result (skipped strings).
struct Discard;

impl Sink for Discard {
    fn put_str(&mut self, _: &str) {}
    fn put_char(&mut self, _: char) {}
}

/// Decodes string content with escapes into `out`. On error: the offset of the bad escape
/// within `s` and what is wrong.
fn unescape(s: &str, out: &mut impl Sink) -> Result<(), (usize, &'static str)> {
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        let rest = b.get(i..).unwrap_or_default();
        let Some(offset) = memchr(b'\\', rest) else {
            out.put_str(s.get(i..).unwrap_or_default());
            return Ok(());
        };
        let at = i + offset;
        out.put_str(s.get(i..at).unwrap_or_default());
        let (c, len) = match b.get(at + 1) {
            Some(b'"') => ('"', 2),
            Some(b'\\') => ('\\', 2),
            Some(b'/') => ('/', 2),
            Some(b'b') => ('\u{8}', 2),
            Some(b'f') => ('\u{c}', 2),
            Some(b'n') => ('\n', 2),
            Some(b'r') => ('\r', 2),
            Some(b't') => ('\t', 2),
            Some(b'u') => {
                let unit = hex4(b, at + 2).ok_or((at, "invalid \\u escape"))?;
                match unit {
                    0xD800..=0xDBFF => {
                        let low = match b.get(at + 6..at + 8) {
                            Some(b"\\u") => hex4(b, at + 8),
                            _ => None,
                        }
                        .filter(|low| (0xDC00..=0xDFFF).contains(low))
                        .ok_or((at, "unpaired surrogate in \\u escape"))?;
                        let code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                        (
                            char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER),
                            12,
                        )
                    }
                    0xDC00..=0xDFFF => return Err((at, "unpaired surrogate in \\u escape")),
                    _ => (
                        char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER),
                        6,
                    ),
                }
            }
            _ => return Err((at, "invalid escape")),
        };
        out.put_char(c);
        i = at + len;
    }
}

fn hex4(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)?
        .iter()
        .try_fold(0, |acc, &c| Some(acc * 16 + (c as char).to_digit(16)?))
}

/// Marks the row just appended by hand valid (what `Column::push_*` do for themselves).
pub(super) fn mark_valid(col: &mut Column) {
    if let Some(valid) = &mut col.valid {
        valid.push(true);
    }
}

/// At most 60 characters of `text`, for error messages.
pub(super) fn shorten(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(60) {
        Some((i, _)) => Cow::Owned(format!("{}…", &text[..i])),
        None => Cow::Borrowed(text),
    }
}

// ---- Conversions of text to typed values, shared with the CSV decoder. ----

/// Why a value does not fit its field's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mismatch {
    NotString,
    NotNumber,
    NotInteger,
    OutOfRange,
    NotBoolean,
    NotTimestamp,
    NotArray,
}

impl Mismatch {
    /// What a field of type `ty` did not get.
    pub(super) fn expected(ty: &DataType) -> Mismatch {
        match ty {
            DataType::Bool => Mismatch::NotBoolean,
            DataType::Timestamp => Mismatch::NotTimestamp,
            DataType::Array(_) => Mismatch::NotArray,
            DataType::String => Mismatch::NotString,
            DataType::Int | DataType::Double => Mismatch::NotNumber,
        }
    }

    /// The message, given the offending value as it should be quoted.
    pub(super) fn describe(self, found: &str) -> String {
        match self {
            Mismatch::NotString => format!("expected a string, found {found}"),
            Mismatch::NotNumber => format!("expected a number, found {found}"),
            Mismatch::NotInteger => format!("expected an integer, found {found}"),
            Mismatch::OutOfRange => format!("{found} is out of range for BIGINT"),
            Mismatch::NotBoolean => format!("expected a boolean (true or false), found {found}"),
            Mismatch::NotTimestamp => {
                format!("expected a timestamp such as \"2019-01-07T07:21:58.557Z\", found {found}")
            }
            Mismatch::NotArray => format!("expected an array, found {found}"),
        }
    }
}

/// A converted value, ready to append.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Scalar<'a> {
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(&'a str),
}

/// Converts text (a JSON string's content, a CSV field) to a value of `ty`. Surrounding
/// whitespace is ignored except for STRING. With `strict`, an integer must be written as one
/// (`42`, not `42.0` or `4.2e1`).
pub(super) fn convert_text<'a>(
    ty: &DataType,
    text: &'a str,
    strict: bool,
) -> Result<Scalar<'a>, Mismatch> {
    match ty {
        DataType::String => Ok(Scalar::Str(text)),
        DataType::Int if strict && text.contains(['.', 'e', 'E']) => Err(Mismatch::NotInteger),
        DataType::Int => parse_int_text(text).map(Scalar::Int),
        DataType::Double => text
            .trim()
            .parse()
            .map(Scalar::Double)
            .map_err(|_| Mismatch::NotNumber),
        DataType::Bool => {
            let t = text.trim();
            if t.eq_ignore_ascii_case("true") {
                Ok(Scalar::Bool(true))
            } else if t.eq_ignore_ascii_case("false") {
                Ok(Scalar::Bool(false))
            } else {
                Err(Mismatch::NotBoolean)
            }
        }
        DataType::Timestamp => parse_timestamp(text.trim())
            .map(Scalar::Int)
            .ok_or(Mismatch::NotTimestamp),
        DataType::Array(_) => Err(Mismatch::NotArray),
    }
}

/// Appends a converted value (an `Int` into a TIMESTAMP column is epoch milliseconds).
pub(super) fn push_scalar(col: &mut Column, scalar: Scalar<'_>) {
    match scalar {
        Scalar::Bool(b) => col.push_bool(b),
        Scalar::Int(x) => col.push_int(x),
        Scalar::Double(x) => col.push_double(x),
        Scalar::Str(s) => col.push_str(s),
    }
}

/// Parses a decimal integer, which may be written with a zero fraction or an exponent
/// (`42`, `+7`, `007`, `3.0`, `1e3`, `1.5e1`), ignoring surrounding whitespace. Exact: the
/// digits are never rounded through a float, so `9007199254740993` stays itself.
pub(super) fn parse_int_text(text: &str) -> Result<i64, Mismatch> {
    let b = text.trim().as_bytes();
    // The common case, plain digits that cannot overflow, without the general machinery.
    let (negative, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, b),
    };
    if (1..=18).contains(&digits.len()) && digits.iter().all(u8::is_ascii_digit) {
        let x = digits
            .iter()
            .fold(0i64, |acc, &c| acc * 10 + i64::from(c - b'0'));
        return Ok(if negative { -x } else { x });
    }
    let (neg, b) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, b),
    };
    let digit_count = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
    let (int_digits, rest) = b.split_at(digit_count(b));
    let (frac_digits, rest) = match rest.split_first() {
        Some((b'.', after)) => after.split_at(digit_count(after)),
        _ => (&[][..], rest),
    };
    if int_digits.is_empty() && frac_digits.is_empty() {
        return Err(Mismatch::NotNumber);
    }
    let exponent = match rest.split_first() {
        None => 0,
        Some((b'e' | b'E', after)) => parse_exponent(after).ok_or(Mismatch::NotNumber)?,
        Some(_) => return Err(Mismatch::NotNumber),
    };
    // The value is digits × 10^(exponent − fraction length); trailing zeros of the digits
    // move into the power, and a negative power left over means a fractional part.
    let digits = || int_digits.iter().chain(frac_digits);
    let total = int_digits.len() + frac_digits.len();
    let trailing_zeros = digits().rev().take_while(|&&c| c == b'0').count();
    if trailing_zeros == total {
        return Ok(0);
    }
    let power = exponent - frac_digits.len() as i64 + trailing_zeros as i64;
    if power < 0 {
        return Err(Mismatch::NotInteger);
    }
    let mut magnitude: u64 = 0;
    for &c in digits().take(total - trailing_zeros) {
        magnitude = magnitude
            .checked_mul(10)
            .and_then(|m| m.checked_add(u64::from(c - b'0')))
            .ok_or(Mismatch::OutOfRange)?;
    }
    // Terminates quickly even for huge powers: the magnitude is at least 1, so it overflows
    // within 20 steps.
    for _ in 0..power {
        magnitude = magnitude.checked_mul(10).ok_or(Mismatch::OutOfRange)?;
    }
    if neg {
        0i64.checked_sub_unsigned(magnitude)
            .ok_or(Mismatch::OutOfRange)
    } else {
        i64::try_from(magnitude).map_err(|_| Mismatch::OutOfRange)
    }
}

/// `[+-]digits`, saturating far beyond any exponent that could matter.
fn parse_exponent(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, b),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let e = digits.iter().fold(0i64, |acc, &c| {
        (acc * 10 + i64::from(c - b'0')).min(1_000_000_000)
    });
    Some(if neg { -e } else { e })
}

/// Undoes a partly decoded record. Truncating the columns restores their values; what it
/// cannot restore is a validity mask that the record's first NULL created (`None` before,
/// `Some([true, …])` after), so the state of the masks is saved before the first NULL of a
/// record, which keeps the common NULL-free record free of any bookkeeping.
#[derive(Debug, Default)]
pub(super) struct Rollback {
    /// For each column, depth first (list children after their list): no mask before.
    maskless: Vec<bool>,
    saved: bool,
}

impl Rollback {
    /// A new record begins.
    #[inline]
    pub(super) fn start(&mut self) {
        self.saved = false;
    }

    /// Call before anything that may push a NULL (including into list elements).
    pub(super) fn before_null(&mut self, cols: &[Column]) {
        fn save(col: &Column, out: &mut Vec<bool>) {
            out.push(col.valid.is_none());
            if let ColumnData::List(list) = &col.data {
                save(&list.values, out);
            }
        }
        if !self.saved {
            self.maskless.clear();
            cols.iter().for_each(|c| save(c, &mut self.maskless));
            self.saved = true;
        }
    }

    /// Drops the current record's values: back to `rows` rows.
    pub(super) fn undo(&mut self, cols: &mut [Column], rows: usize) {
        fn restore(col: &mut Column, saved: &mut std::slice::Iter<'_, bool>) {
            if saved.next() == Some(&true) {
                col.valid = None;
            }
            if let ColumnData::List(list) = &mut col.data {
                restore(&mut list.values, saved);
            }
        }
        for col in cols.iter_mut() {
            col.truncate(rows);
        }
        if self.saved {
            let mut saved = self.maskless.iter();
            cols.iter_mut().for_each(|c| restore(c, &mut saved));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{OwnedValue, Value};
    use proptest::prelude::*;

    use super::super::test_support::{decode_with, schema};

    fn movies() -> Schema {
        schema(&[
            ("movieId", DataType::String),
            ("userId", DataType::String),
            ("timestamp", DataType::Int),
        ])
    }

    fn decode(schema: &Schema, input: &str) -> (Batch, Vec<BadRecord>) {
        decode_with(&mut JsonDecoder::new(schema), schema, input.as_bytes())
    }

    fn rows(batch: &Batch) -> Vec<Vec<OwnedValue>> {
        (0..batch.num_rows)
            .map(|r| {
                batch
                    .columns
                    .iter()
                    .map(|c| c.value(r).into_owned())
                    .collect()
            })
            .collect()
    }

    fn s(text: &str) -> OwnedValue {
        Value::Str(text.to_string().into())
    }

    /// The values of a one-field schema for each line, or the error message.
    fn one(ty: DataType, lines: &[&str]) -> Vec<Result<OwnedValue, String>> {
        let schema = schema(&[("f", ty)]);
        let mut decoder = JsonDecoder::new(&schema);
        lines
            .iter()
            .map(|line| {
                let mut out = Batch::empty(&schema);
                decoder
                    .decode_message(line.as_bytes(), &mut out)
                    .map(|()| out.columns[0].value(0).into_owned())
            })
            .collect()
    }

    /// The single error of decoding `line` with `schema`.
    fn error(schema: &Schema, line: &str) -> String {
        let (out, bad) = decode(schema, line);
        assert_eq!(out.num_rows, 0, "{line} decoded");
        assert_eq!(bad.len(), 1);
        bad[0].error.clone()
    }

    #[test]
    fn decodes_movie_impressions() {
        let (out, bad) = decode(
            &movies(),
            "{\"movieId\":\"m17\",\"userId\":\"u493\",\"timestamp\":1546845718557}\n\
             {\"timestamp\":1546845718558,\"userId\":\"u1\",\"movieId\":\"m2\"}\n",
        );
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(
            rows(&out),
            vec![
                vec![s("m17"), s("u493"), Value::Int(1546845718557)],
                vec![s("m2"), s("u1"), Value::Int(1546845718558)],
            ]
        );
        assert!(out.columns.iter().all(|c| c.valid.is_none()));
    }

    #[test]
    fn skips_blank_lines_and_counts_them() {
        let input =
            "\n  \t\r\n{\"timestamp\":1}\r\n\r\n{\"timestamp\":x}\n{ \"timestamp\" : 3 }\n\n";
        let (out, bad) = decode(&movies(), input);
        assert_eq!(out.num_rows, 2);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 5);
        assert_eq!(bad[0].raw, b"{\"timestamp\":x}");
        assert_eq!(out.columns[2].value(1), Value::Int(3));

        let mut out = Batch::empty(&movies());
        let mut bad = Vec::new();
        JsonDecoder::new(&movies()).decode_lines(b"{}\n{\n{}", 41, &mut out, &mut bad);
        assert_eq!((out.num_rows, bad.len(), bad[0].line), (2, 1, 42));
    }

    #[test]
    fn a_byte_order_mark_may_start_the_file() {
        let input = "\u{feff}{\"userId\":\"a\"}\n";
        let (out, bad) = decode(&movies(), input);
        assert_eq!((out.num_rows, bad.len()), (1, 0));
        let mut out = Batch::empty(&movies());
        let mut bad = Vec::new();
        JsonDecoder::new(&movies()).decode_lines(input.as_bytes(), 2, &mut out, &mut bad);
        assert_eq!(
            bad[0].error,
            "expected a JSON object, found \u{feff}{\"userId\":\"a\"}"
        );
    }

    #[test]
    fn last_line_may_lack_a_newline() {
        let (out, bad) = decode(&movies(), "{\"userId\":\"a\"}\n{\"userId\":\"b\"}");
        assert!(bad.is_empty());
        assert_eq!(out.columns[1].value(1), s("b"));
    }

    #[test]
    fn missing_fields_and_null_are_null() {
        let (out, bad) = decode(&movies(), "{\"movieId\":null,\"userId\":\"u\"}\n{}");
        assert!(bad.is_empty());
        assert_eq!(
            rows(&out),
            vec![
                vec![Value::Null, s("u"), Value::Null],
                vec![Value::Null, Value::Null, Value::Null],
            ]
        );
    }

    #[test]
    fn skips_unknown_fields_of_any_shape() {
        let line = r#"{"a":{"b":[1,2,{"c":"}]\"\\"}],"d":{}},"movieId":"m","e":[[],[[]]],"f":"\u00e9\"\n","g":-1.5e-3,"h":true,"i":null,"userId":"u"}"#;
        let (out, bad) = decode(&movies(), line);
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(rows(&out), vec![vec![s("m"), s("u"), Value::Null]]);
    }

    #[test]
    fn duplicate_keys_last_wins() {
        let schema = schema(&[
            ("s", DataType::String),
            ("i", DataType::Int),
            ("a", DataType::Array(Box::new(DataType::Int))),
        ]);
        let (out, bad) = decode(
            &schema,
            "{\"s\":\"x\",\"i\":1,\"s\":\"yy\",\"i\":null,\"a\":[1,2],\"a\":[3]}\n\
             {\"s\":null,\"s\":\"z\",\"i\":null,\"i\":7}",
        );
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(
            rows(&out),
            vec![
                vec![s("yy"), Value::Null, Value::List(vec![Value::Int(3)])],
                vec![s("z"), Value::Int(7), Value::Null],
            ]
        );
        // Only the kept value stays in the column's buffers.
        let ColumnData::Str(strings) = &out.columns[0].data else {
            panic!()
        };
        assert_eq!(strings.data, "yyz");
    }

    #[test]
    fn a_duplicate_key_replaces_a_value_that_does_not_convert() {
        let (out, bad) = decode(
            &movies(),
            r#"{"timestamp":"soon","timestamp":[1,2],"timestamp":5}"#,
        );
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(out.columns[2].value(0), Value::Int(5));
        assert_eq!(
            error(
                &movies(),
                r#"{"timestamp":5,"timestamp":"soon","userId":"u"}"#
            ),
            r#"field `timestamp`: expected a number, found "soon""#
        );
        // Syntax errors are never forgiven.
        assert_eq!(
            error(&movies(), r#"{"timestamp":[1,,2],"timestamp":5}"#),
            "invalid JSON at byte 17: expected a value"
        );
    }

    #[test]
    fn strings_decode_escapes() {
        let got = one(
            DataType::String,
            &[
                r#"{"f":"a\"b\\c\/d\b\f\n\r\t"}"#,
                r#"{"f":"\u00e9\u20AC\ud83d\ude00 ok"}"#,
                r#"{"f":"é€😀"}"#,
                r#"{"f":""}"#,
                r#"{"f":"long string well past eight bytes, \" with a quote"}"#,
            ],
        );
        assert_eq!(
            got,
            vec![
                Ok(s("a\"b\\c/d\u{8}\u{c}\n\r\t")),
                Ok(s("é€😀 ok")),
                Ok(s("é€😀")),
                Ok(s("")),
                Ok(s("long string well past eight bytes, \" with a quote")),
            ]
        );
    }

    #[test]
    fn string_fields_take_any_value_as_text() {
        let got = one(
            DataType::String,
            &[
                r#"{"f":12}"#,
                r#"{"f":-1.5E+3}"#,
                r#"{"f":true}"#,
                r#"{"f":false}"#,
                r#"{"f":{"a": [1, "x"]}}"#,
                r#"{"f":[]}"#,
            ],
        );
        let want = ["12", "-1.5E+3", "true", "false", r#"{"a": [1, "x"]}"#, "[]"];
        assert_eq!(got, want.iter().map(|w| Ok(s(w))).collect::<Vec<_>>());
    }

    /// `types: strict`: no conversions between JSON types; each mismatch is a bad record
    /// that names the field and the value.
    #[test]
    fn strict_types_make_wrong_json_types_bad_records() {
        let schema = schema(&[
            ("s", DataType::String),
            ("i", DataType::Int),
            ("d", DataType::Double),
            ("b", DataType::Bool),
            ("t", DataType::Timestamp),
            ("a", DataType::Array(Box::new(DataType::Int))),
        ]);
        let good = r#"{"s":"x","i":12,"d":1.5,"b":true,"t":"2019-01-07T00:00:00Z","a":[1,2]}"#;
        let bad = [
            (r#"{"s":17}"#, "field `s`: expected a string, found 17"),
            (r#"{"s":true}"#, "field `s`: expected a string, found true"),
            (
                r#"{"s":{"x":1}}"#,
                r#"field `s`: expected a string, found {"x":1}"#,
            ),
            (r#"{"s":[1]}"#, "field `s`: expected a string, found [1]"),
            (
                r#"{"i":"12"}"#,
                r#"field `i`: expected a number, found "12""#,
            ),
            (
                r#"{"i":12.0}"#,
                "field `i`: expected an integer, found 12.0",
            ),
            (r#"{"i":1e3}"#, "field `i`: expected an integer, found 1e3"),
            (
                r#"{"d":"1.5"}"#,
                r#"field `d`: expected a number, found "1.5""#,
            ),
            (
                r#"{"b":"true"}"#,
                r#"field `b`: expected a boolean (true or false), found "true""#,
            ),
            (
                r#"{"a":["1"]}"#,
                r#"field `a`, element 1: expected a number, found "1""#,
            ),
        ];
        let mut decoder = JsonDecoder::new(&schema).with_strict_types(true);
        let input: String = std::iter::once(good)
            .chain(bad.iter().map(|(line, _)| *line))
            .map(|l| format!("{l}\n"))
            .collect();
        let (out, rejected) = decode_with(&mut decoder, &schema, input.as_bytes());
        assert_eq!(out.num_rows, 1, "only the well-typed record decodes");
        let errors: Vec<&str> = rejected.iter().map(|b| b.error.as_str()).collect();
        let want: Vec<&str> = bad.iter().map(|(_, e)| *e).collect();
        assert_eq!(errors, want);
        // The same input, lenient: every record decodes (Flink's json format).
        let (out, rejected) = decode(&schema, &input);
        assert!(rejected.is_empty(), "{rejected:?}");
        assert_eq!(out.num_rows, 1 + bad.len());
    }

    #[test]
    fn bigint_fields() {
        let got = one(
            DataType::Int,
            &[
                r#"{"f":42}"#,
                r#"{"f":-9223372036854775808}"#,
                r#"{"f":9223372036854775807}"#,
                r#"{"f":3.0}"#,
                r#"{"f":1e3}"#,
                r#"{"f":1.5E1}"#,
                r#"{"f":-0}"#,
                r#"{"f":"17"}"#,
                r#"{"f":" -5 "}"#,
                r#"{"f":"2.50e2"}"#,
                r#"{"f":12345678901234567.0}"#,
            ],
        );
        let want = [
            42,
            i64::MIN,
            i64::MAX,
            3,
            1000,
            15,
            0,
            17,
            -5,
            250,
            12345678901234567,
        ];
        assert_eq!(
            got,
            want.iter().map(|&w| Ok(Value::Int(w))).collect::<Vec<_>>()
        );
    }

    #[test]
    fn bigint_errors_name_the_field() {
        let schema = movies();
        let cases = [
            (
                r#"{"timestamp":"abc"}"#,
                r#"field `timestamp`: expected a number, found "abc""#,
            ),
            (
                r#"{"timestamp":3.5}"#,
                "field `timestamp`: expected an integer, found 3.5",
            ),
            (
                r#"{"timestamp":1e-2}"#,
                "field `timestamp`: expected an integer, found 1e-2",
            ),
            (
                r#"{"timestamp":9223372036854775808}"#,
                "field `timestamp`: 9223372036854775808 is out of range for BIGINT",
            ),
            (
                r#"{"timestamp":1e19}"#,
                "field `timestamp`: 1e19 is out of range for BIGINT",
            ),
            (
                r#"{"timestamp":true}"#,
                "field `timestamp`: expected a number, found true",
            ),
            (
                r#"{"timestamp":[1]}"#,
                "field `timestamp`: expected a number, found [1]",
            ),
            (
                r#"{"timestamp":{"a":1}}"#,
                r#"field `timestamp`: expected a number, found {"a":1}"#,
            ),
            (
                r#"{"timestamp":"1.5"}"#,
                r#"field `timestamp`: expected an integer, found "1.5""#,
            ),
        ];
        for (line, want) in cases {
            assert_eq!(error(&schema, line), want, "{line}");
        }
    }

    #[test]
    fn double_fields() {
        let got = one(
            DataType::Double,
            &[
                r#"{"f":1}"#,
                r#"{"f":-2.5}"#,
                r#"{"f":1e-3}"#,
                r#"{"f":12345678901234567890}"#,
                r#"{"f":" 4.25 "}"#,
                r#"{"f":"-1E2"}"#,
            ],
        );
        let want = [1.0, -2.5, 1e-3, 12345678901234567890.0, 4.25, -100.0];
        assert_eq!(
            got,
            want.iter()
                .map(|&w| Ok(Value::Double(w)))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            one(DataType::Double, &[r#"{"f":"x1"}"#, r#"{"f":false}"#]),
            vec![
                Err(r#"field `f`: expected a number, found "x1""#.to_string()),
                Err("field `f`: expected a number, found false".to_string()),
            ]
        );
    }

    #[test]
    fn boolean_fields() {
        let got = one(
            DataType::Bool,
            &[
                r#"{"f":true}"#,
                r#"{"f":false}"#,
                r#"{"f":"true"}"#,
                r#"{"f":"FALSE"}"#,
                r#"{"f":1}"#,
                r#"{"f":"yes"}"#,
            ],
        );
        let fail = |found: &str| {
            Err(format!(
                "field `f`: expected a boolean (true or false), found {found}"
            ))
        };
        assert_eq!(
            got,
            vec![
                Ok(Value::Bool(true)),
                Ok(Value::Bool(false)),
                Ok(Value::Bool(true)),
                Ok(Value::Bool(false)),
                fail("1"),
                fail("\"yes\""),
            ]
        );
    }

    #[test]
    fn timestamp_fields_take_text() {
        let got = one(
            DataType::Timestamp,
            &[
                r#"{"f":"2019-01-07T07:21:58.557Z"}"#,
                r#"{"f":"2019-01-07 07:21:58.557"}"#,
                r#"{"f":"2019-01-07"}"#,
                r#"{"f":null}"#,
                r#"{"f":1546845718557}"#,
                r#"{"f":"yesterday"}"#,
            ],
        );
        let fail = |found: &str| {
            Err(format!(
                "field `f`: expected a timestamp such as \"2019-01-07T07:21:58.557Z\", found {found}"
            ))
        };
        assert_eq!(
            got,
            vec![
                Ok(Value::Timestamp(1_546_845_718_557)),
                Ok(Value::Timestamp(1_546_845_718_557)),
                Ok(Value::Timestamp(1_546_819_200_000)),
                Ok(Value::Null),
                fail("1546845718557"),
                fail("\"yesterday\""),
            ]
        );
    }

    #[test]
    fn epoch_bigint_fields_are_plain_integers() {
        let mut schema = schema(&[("t", DataType::Int)]);
        schema.fields[0].epoch_unit_ms = Some(1000);
        let (out, bad) = decode(&schema, "{\"t\":1546845718}");
        assert!(bad.is_empty());
        assert_eq!(out.columns[0].value(0), Value::Int(1_546_845_718));
    }

    #[test]
    fn array_fields() {
        let ints = DataType::Array(Box::new(DataType::Int));
        let got = one(
            ints.clone(),
            &[
                r#"{"f":[1, 2 ,3]}"#,
                r#"{"f":[]}"#,
                r#"{"f":[null,"4",5.0]}"#,
                r#"{"f":null}"#,
                r#"{"f":[1,"x"]}"#,
                r#"{"f":"[1]"}"#,
                r#"{"f":[1,]}"#,
            ],
        );
        let list = |v: Vec<OwnedValue>| Ok(Value::List(v));
        assert_eq!(
            got,
            vec![
                list(vec![Value::Int(1), Value::Int(2), Value::Int(3)]),
                list(vec![]),
                list(vec![Value::Null, Value::Int(4), Value::Int(5)]),
                Ok(Value::Null),
                Err(r#"field `f`, element 2: expected a number, found "x""#.to_string()),
                Err(r#"field `f`: expected an array, found "[1]""#.to_string()),
                Err("invalid JSON at byte 9: expected a value".to_string()),
            ]
        );
        let strings = DataType::Array(Box::new(DataType::String));
        assert_eq!(
            one(strings, &[r#"{"f":["a\n",1,{"b":[]},null]}"#]),
            vec![list(vec![s("a\n"), s("1"), s(r#"{"b":[]}"#), Value::Null])]
        );
    }

    #[test]
    fn syntax_errors_point_at_the_byte() {
        let schema = movies();
        let cases = [
            (
                r#"{"movieId" "m17"}"#,
                "invalid JSON at byte 12: expected ':'",
            ),
            (
                r#"{"movieId":"m17""#,
                "invalid JSON at byte 17: expected ',' or '}'",
            ),
            (
                r#"{"movieId":"m17"#,
                "invalid JSON at byte 16: unterminated string",
            ),
            (
                r#"{"movieId":"m17",}"#,
                "invalid JSON at byte 18: expected '\"' to start a key",
            ),
            (
                r#"{movieId:1}"#,
                "invalid JSON at byte 2: expected '\"' to start a key",
            ),
            (
                r#"{"x":01}"#,
                "invalid JSON at byte 6: invalid number (leading zero)",
            ),
            (
                r#"{"x":1.}"#,
                "invalid JSON at byte 8: invalid number (expected a digit after '.')",
            ),
            (r#"{"x":-}"#, "invalid JSON at byte 7: invalid number"),
            (
                r#"{"x":nul}"#,
                "invalid JSON at byte 6: invalid literal (expected true, false or null)",
            ),
            (r#"{"x":"\q"}"#, "invalid JSON at byte 7: invalid escape"),
            (
                r#"{"userId":"\ud800"}"#,
                "invalid JSON at byte 12: unpaired surrogate in \\u escape",
            ),
            (
                r#"{"x":"\udc00\ud800"}"#,
                "invalid JSON at byte 7: unpaired surrogate in \\u escape",
            ),
            (
                r#"{"x":"\u12"}"#,
                "invalid JSON at byte 7: invalid \\u escape",
            ),
            (
                "{\"x\":\"a\tb\"}",
                "invalid JSON at byte 8: control character in string (must be escaped)",
            ),
            (
                r#"{"x":1} {}"#,
                "invalid JSON at byte 9: unexpected text after the object",
            ),
            (r#"{"x":}"#, "invalid JSON at byte 6: expected a value"),
            (
                r#"{"x":[1 2]}"#,
                "invalid JSON at byte 9: expected ',' or ']'",
            ),
            (r#"[1,2]"#, "expected a JSON object, found [1,2]"),
            (r#"42"#, "expected a JSON object, found 42"),
            (r#""x""#, "expected a JSON object, found \"x\""),
        ];
        for (line, want) in cases {
            assert_eq!(error(&schema, line), want, "{line}");
        }
    }

    #[test]
    fn keys_may_be_escaped() {
        let (out, bad) = decode(
            &movies(),
            r#"{"movie\u0049d":"m","user\"Id":"x","\u0075serId":"u"}"#,
        );
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(rows(&out), vec![vec![s("m"), s("u"), Value::Null]]);
    }

    #[test]
    fn predicted_keys_are_only_taken_when_written_exactly() {
        // The first record teaches the key order; the next ones write the same keys with a
        // longer name, an escape, a space before the colon, or a truncated line.
        let (out, bad) = decode(
            &movies(),
            "{\"movieId\":\"a\",\"userId\":\"b\",\"timestamp\":1}\n\
             {\"movieId\":\"c\",\"userIdx\":\"?\",\"timestamp\":2}\n\
             {\"movieId\":\"d\",\"user\\u0049d\":\"e\",\"timestamp\" : 3}\n\
             {\"movieId\" :\"f\",\"userId\":\"g\",\"timest",
        );
        assert_eq!(
            rows(&out),
            vec![
                vec![s("a"), s("b"), Value::Int(1)],
                vec![s("c"), Value::Null, Value::Int(2)],
                vec![s("d"), s("e"), Value::Int(3)],
            ]
        );
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 4);
    }

    #[test]
    fn finds_fields_in_large_schemas_in_any_order() {
        let names: Vec<String> = (0..40).map(|i| format!("field_{i}")).collect();
        let fields: Vec<(&str, DataType)> =
            names.iter().map(|n| (n.as_str(), DataType::Int)).collect();
        let schema = schema(&fields);
        let mut decoder = JsonDecoder::new(&schema);
        let mut input = String::new();
        for shift in [0, 7, 13] {
            let body: Vec<String> = (0..40)
                .map(|i| (i * shift + i) % 40)
                .map(|i| format!("\"field_{i}\":{i},\"extra_{i}\":0"))
                .collect();
            input += &format!("{{{}}}\n", body.join(","));
        }
        let (out, bad) = decode_with(&mut decoder, &schema, input.as_bytes());
        assert!(bad.is_empty());
        for row in rows(&out) {
            let want: Vec<OwnedValue> = (0..40).map(Value::Int).collect();
            // Each line sets a field once at most (i * (shift + 1) mod 40 may repeat); the
            // ones it misses are NULL.
            for (got, want) in row.iter().zip(&want) {
                assert!(got == want || *got == Value::Null, "{got:?} vs {want:?}");
            }
        }
    }

    #[test]
    fn invalid_utf8_is_a_bad_record() {
        let schema = movies();
        let mut input = b"{\"movieId\":\"ok\"}\n{\"movieId\":\"a".to_vec();
        input.extend_from_slice(&[0xff, 0xfe]);
        input.extend_from_slice(b"\"}\n{\"userId\":\"\xc3\xa9\"}\n");
        let (out, bad) = decode_with(&mut JsonDecoder::new(&schema), &schema, &input);
        assert_eq!(out.num_rows, 2);
        assert_eq!(out.columns[1].value(1), s("é"));
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].error, "invalid UTF-8 at byte 14");
        // The bytes exactly as read, invalid ones included.
        assert_eq!(bad[0].raw, b"{\"movieId\":\"a\xff\xfe\"}");
        assert_eq!(bad[0].line, 2);
    }

    #[test]
    fn nesting_is_bounded() {
        let schema = movies();
        let deep = |n: usize| format!("{{\"x\":{}{}}}", "[".repeat(n), "]".repeat(n));
        let (out, bad) = decode(&schema, &deep(127));
        assert_eq!((out.num_rows, bad.len()), (1, 0));
        assert_eq!(
            error(&schema, &deep(128)),
            "invalid JSON at byte 133: nesting deeper than 128 levels"
        );
        // Far deeper than the stack could take if recursion were unbounded.
        let hostile = format!("{{\"x\":{}", "{\"a\":[".repeat(100_000));
        assert!(error(&schema, &hostile).contains("nesting deeper than 128 levels"));
        let strings = schema_with_string_array();
        assert!(error(&strings, &format!("{{\"a\":{}", "[".repeat(1000))).contains("nesting"));
    }

    fn schema_with_string_array() -> Schema {
        schema(&[("a", DataType::Array(Box::new(DataType::String)))])
    }

    #[test]
    fn bad_records_leave_the_batch_unchanged() {
        let schema = schema(&[
            ("s", DataType::String),
            ("i", DataType::Int),
            ("a", DataType::Array(Box::new(DataType::Int))),
        ]);
        let mut decoder = JsonDecoder::new(&schema);
        let mut out = Batch::empty(&schema);
        decoder
            .decode_message(br#"{"s":"a","i":1,"a":[1]}"#, &mut out)
            .unwrap();
        let before = out.clone();
        for bad in [
            r#"{"s":"bbb","i":null,"a":[null,2],"x":]}"#,
            r#"{"s":null,"a":[null,"x"]}"#,
            r#"{"a":[1,2],"s":"\u00e9 ccc","i":"x"}"#,
            r#"{"s":"dd","s":"ee","i":2}x"#,
            r#"{"i":3,"s":"ff"#,
        ] {
            assert!(
                decoder.decode_message(bad.as_bytes(), &mut out).is_err(),
                "{bad}"
            );
            assert_eq!(out, before, "{bad}");
        }
        assert_eq!(
            decoder.decode_message(b" \n ", &mut out),
            Err("empty message: expected a JSON object".to_string())
        );
        decoder.decode_message(br#"{"i":null}"#, &mut out).unwrap();
        assert_eq!(rows(&out)[1], vec![Value::Null, Value::Null, Value::Null]);
    }

    #[test]
    fn parses_exact_integers_from_text() {
        use Mismatch::*;
        let cases = [
            ("0", Ok(0)),
            ("+7", Ok(7)),
            ("007", Ok(7)),
            ("1.", Ok(1)),
            ("-0.000e5", Ok(0)),
            ("9007199254740993", Ok(9_007_199_254_740_993)),
            ("9.007199254740993e15", Ok(9_007_199_254_740_993)),
            ("-9223372036854775808", Ok(i64::MIN)),
            ("-92233720368547758.08e2", Ok(i64::MIN)),
            ("-9223372036854775809", Err(OutOfRange)),
            ("1e999999999999999999", Err(OutOfRange)),
            ("0e999999999999999999", Ok(0)),
            ("1e-999999999999999999", Err(NotInteger)),
            (".5", Err(NotInteger)),
            ("1.25e1", Err(NotInteger)),
            ("", Err(NotNumber)),
            ("-", Err(NotNumber)),
            (".", Err(NotNumber)),
            ("1e", Err(NotNumber)),
            ("1x", Err(NotNumber)),
            ("0x10", Err(NotNumber)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_int_text(text), want, "{text}");
        }
    }

    #[test]
    fn same_key_is_byte_equality() {
        let base: Vec<u8> = (b'a'..=b'z').collect();
        for len in 0..=20 {
            let key = &base[..len];
            assert!(same_key(key, key));
            assert!(!same_key(key, &base[..len + 1]));
            for at in 0..len {
                let mut other = key.to_vec();
                other[at] = b'_';
                assert!(!same_key(key, &other), "{len} {at}");
            }
        }
    }

    #[test]
    fn special_bytes_finds_the_first_stop() {
        let naive = |w: &[u8; 8]| w.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
        for word in [
            *b"abcdefgh",
            *b"abc\"efgh",
            *b"\\bc\"efgh",
            *b"a\x1fc\"e\x00gh",
            *b"\xff\xe9\x80\x7f\" \x01x",
        ] {
            let m = special_bytes(u64::from_le_bytes(word));
            let got = (m != 0).then(|| (m.trailing_zeros() / 8) as usize);
            assert_eq!(got, naive(&word), "{word:?}");
        }
    }

    proptest! {
        #[test]
        fn special_bytes_matches_a_byte_loop(word in any::<[u8; 8]>()) {
            let m = special_bytes(u64::from_le_bytes(word));
            let got = (m != 0).then(|| (m.trailing_zeros() / 8) as usize);
            let want = word.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
            prop_assert_eq!(got, want);
        }
    }

    // ---- Property tests against an oracle built on serde_json. ----

    fn oracle_schema() -> Schema {
        schema(&[
            ("s", DataType::String),
            ("i", DataType::Int),
            ("d", DataType::Double),
            ("b", DataType::Bool),
            ("t", DataType::Timestamp),
            ("ai", DataType::Array(Box::new(DataType::Int))),
            ("as", DataType::Array(Box::new(DataType::String))),
        ])
    }

    /// What the rules say a JSON value becomes in a field of type `ty` (`None`: bad record).
    fn expected(ty: &DataType, v: &serde_json::Value) -> Option<OwnedValue> {
        use serde_json::Value as J;
        Some(match (ty, v) {
            (_, J::Null) => Value::Null,
            (DataType::String, J::String(s)) => Value::Str(s.clone().into()),
            (DataType::String, other) => Value::Str(serde_json::to_string(other).ok()?.into()),
            (DataType::Int, J::Number(n)) => Value::Int(match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => i,
                (None, Some(f)) if n.is_f64() && f.fract() == 0.0 && f.abs() < 2f64.powi(53) => {
                    f as i64
                }
                _ => return None,
            }),
            (DataType::Int, J::String(s)) => Value::Int(parse_int_text(s).ok()?),
            (DataType::Double, J::Number(n)) => Value::Double(n.as_f64()?),
            (DataType::Double, J::String(s)) => Value::Double(s.trim().parse().ok()?),
            (DataType::Bool, J::Bool(b)) => Value::Bool(*b),
            (DataType::Bool, J::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return None,
            },
            (DataType::Timestamp, J::String(s)) => Value::Timestamp(parse_timestamp(s.trim())?),
            (DataType::Array(element), J::Array(items)) => Value::List(
                items
                    .iter()
                    .map(|item| expected(element, item))
                    .collect::<Option<Vec<_>>>()?,
            ),
            _ => return None,
        })
    }

    /// Whether `v` is an integral float beyond 2^53 headed for a BIGINT: the decoder converts
    /// the written decimal exactly, but the oracle only sees serde_json's rounded `f64`, so it
    /// cannot tell the right answer.
    fn beyond_f64_precision(ty: &DataType, v: &serde_json::Value) -> bool {
        match (ty, v) {
            (DataType::Int, serde_json::Value::Number(n)) => {
                n.is_f64() && n.as_f64().is_some_and(|f| f.abs() >= 2f64.powi(53))
            }
            (DataType::Array(element), serde_json::Value::Array(items)) => {
                items.iter().any(|item| beyond_f64_precision(element, item))
            }
            _ => false,
        }
    }

    fn arb_text() -> impl Strategy<Value = String> {
        prop_oneof![
            ".{0,12}",
            "[a-z\"\\\\/\n\t\u{0}\u{1f}é€😀]{0,20}",
            any::<i64>().prop_map(|i| i.to_string()),
            Just(" 42 ".to_string()),
            Just("3.0".to_string()),
            Just("1e3".to_string()),
            Just("-2.5".to_string()),
            Just("TRUE".to_string()),
            Just("false".to_string()),
            Just("NaN".to_string()),
            Just("2019-01-07T07:21:58.557Z".to_string()),
            Just("2019-01-07 07:21:58".to_string()),
        ]
    }

    fn arb_number() -> impl Strategy<Value = serde_json::Value> {
        prop_oneof![
            any::<i64>().prop_map(serde_json::Value::from),
            (0..1000i64).prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            any::<i32>().prop_map(|i| serde_json::Value::from(f64::from(i))),
            (-1e6..1e6f64).prop_map(serde_json::Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(serde_json::Value::from),
        ]
    }

    fn arb_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            arb_number(),
            arb_text().prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                prop::collection::vec(("[a-z]{1,3}", inner), 0..4)
                    .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    /// A key and value of a record: mostly schema fields with values that may or may not
    /// convert, sometimes other keys.
    fn arb_entry() -> impl Strategy<Value = (String, serde_json::Value)> {
        let key = prop_oneof![
            4 => prop::sample::select(vec!["s", "i", "d", "b", "t", "ai", "as"]).prop_map(String::from),
            1 => "[a-zé\"]{1,4}",
        ];
        let array = prop::collection::vec(
            prop_oneof![
                arb_number(),
                Just(serde_json::Value::Null),
                arb_text().prop_map(serde_json::Value::String)
            ],
            0..4,
        )
        .prop_map(serde_json::Value::Array);
        (key, prop_oneof![3 => arb_json(), 1 => array])
    }

    /// JSON text for `s`, optionally with every character escaped as `\uXXXX`.
    fn write_string(s: &str, escape_all: bool, out: &mut String) {
        if !escape_all {
            out.push_str(&serde_json::to_string(s).unwrap());
            return;
        }
        out.push('"');
        for unit in s.encode_utf16() {
            out.push_str(&format!("\\u{unit:04x}"));
        }
        out.push('"');
    }

    /// A record as JSON text, with the layout choices drawn by proptest.
    fn write_record(
        entries: &[(String, serde_json::Value)],
        layout: &[(bool, bool, u8)],
    ) -> String {
        let mut out = String::from("{");
        for (k, ((key, value), &(escape_key, escape_value, space))) in
            entries.iter().zip(layout.iter().cycle()).enumerate()
        {
            let ws = [" ", "", "\t", ""][usize::from(space % 4)];
            if k > 0 {
                out.push(',');
            }
            out.push_str(ws);
            write_string(key, escape_key, &mut out);
            out.push_str(ws);
            out.push(':');
            out.push_str(ws);
            match value {
                serde_json::Value::String(s) => write_string(s, escape_value, &mut out),
                other => out.push_str(&serde_json::to_string(other).unwrap()),
            }
            out.push_str(ws);
        }
        out.push('}');
        out
    }

    fn arb_record() -> impl Strategy<Value = (Vec<(String, serde_json::Value)>, String)> {
        (
            prop::collection::vec(arb_entry(), 0..10),
            prop::collection::vec(
                (
                    prop::bool::weighted(0.1),
                    prop::bool::weighted(0.2),
                    any::<u8>(),
                ),
                1..4,
            ),
        )
            .prop_map(|(entries, layout)| {
                let text = write_record(&entries, &layout);
                (entries, text)
            })
    }

    fn same(a: &OwnedValue, b: &OwnedValue) -> bool {
        match (a, b) {
            (Value::Double(x), Value::Double(y)) => x == y || (x.is_nan() && y.is_nan()),
            (Value::List(x), Value::List(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
            }
            _ => a == b,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn decodes_like_the_oracle((entries, text) in arb_record()) {
            let schema = oracle_schema();
            prop_assume!(!entries.iter().any(|(k, v)| schema
                .field(k)
                .is_some_and(|f| beyond_f64_precision(&f.data_type, v))));
            let want: Option<Vec<OwnedValue>> = schema
                .fields
                .iter()
                .map(|f| match entries.iter().rev().find(|(k, _)| *k == f.name) {
                    Some((_, v)) => expected(&f.data_type, v),
                    None => Some(Value::Null),
                })
                .collect();
            let mut out = Batch::empty(&schema);
            let got = JsonDecoder::new(&schema).decode_message(text.as_bytes(), &mut out);
            match want {
                Some(want) => {
                    prop_assert!(got.is_ok(), "{text}: {got:?}");
                    let row = &rows(&out)[0];
                    for ((got, want), field) in row.iter().zip(&want).zip(&schema.fields) {
                        prop_assert!(same(got, want), "{}: {got:?} != {want:?} in {text}", field.name);
                    }
                }
                None => {
                    prop_assert!(got.is_err(), "{text} decoded as {:?}", rows(&out));
                    prop_assert!(got.unwrap_err().starts_with("field `"));
                    prop_assert_eq!(out.num_rows, 0);
                }
            }
        }

        #[test]
        fn accepts_exactly_what_serde_json_accepts(
            (_, text) in arb_record(),
            cut in any::<prop::sample::Index>(),
            len in 0..4usize,
            insert in prop::sample::select(vec!["", "\"", "{", "}", "[", "]", ",", ":", "\\", "\\u", "\\ud83d", "0", "-", ".", "e", "x", " ", "\n", "\t", "é", "\u{1}", "true", "nul"]),
        ) {
            // A schema of strings only: whatever is well-formed decodes.
            let schema = schema(&[("s", DataType::String), ("i", DataType::String), ("as", DataType::String)]);
            let mut bytes = text.into_bytes();
            let at = cut.index(bytes.len() + 1);
            let end = (at + len).min(bytes.len());
            bytes.splice(at..end, insert.bytes());
            let serde: Result<serde_json::Value, _> = serde_json::from_slice(&bytes);
            if let Err(e) = &serde {
                prop_assume!(!e.to_string().contains("number out of range"));
            }
            let mut out = Batch::empty(&schema);
            let got = JsonDecoder::new(&schema).decode_message(&bytes, &mut out);
            let lossy = String::from_utf8_lossy(&bytes);
            prop_assert_eq!(
                got.is_ok(),
                matches!(serde, Ok(serde_json::Value::Object(_))),
                "{}: {:?} vs {:?}", lossy, got, serde
            );
        }

        #[test]
        fn bad_lines_never_change_the_batch(
            records in prop::collection::vec((arb_record(), any::<prop::sample::Index>(), any::<bool>()), 1..20),
        ) {
            let schema = oracle_schema();
            let mut lines = Vec::new();
            for ((_, text), cut, truncate) in records {
                let mut end = cut.index(text.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                let text = if truncate { text[..end].to_string() } else { text };
                lines.push(text.replace('\n', " "));
            }
            let chunk = lines.join("\n");
            let (all, bad) = decode(&schema, &chunk);
            let good: Vec<&str> = lines
                .iter()
                .enumerate()
                .filter(|(i, _)| !bad.iter().any(|b| b.line == *i as u64 + 1))
                .map(|(_, l)| l.as_str())
                .collect();
            let (only_good, none) = decode(&schema, &good.join("\n"));
            prop_assert!(none.is_empty());
            // Debug output rather than `==`: a NaN read from "NaN" equals itself there.
            prop_assert_eq!(format!("{all:?}"), format!("{only_good:?}"));
            for b in &bad {
                prop_assert_eq!(&b.raw, lines[b.line as usize - 1].as_bytes());
            }
        }

        #[test]
        fn random_bytes_never_panic(
            pieces in prop::collection::vec(
                prop_oneof![
                    any::<u8>().prop_map(|b| vec![b]),
                    prop::sample::select(vec![
                        "{", "}", "[", "]", "\"", ":", ",", "\\", "\\u", "d83d", "null", "true", "1",
                        "-", ".", "e", "\n", "\r\n", " ", "\"s\"", "\"i\"", "\"ai\"", "é", "\u{0}", "{\"s\":",
                    ]).prop_map(|s| s.as_bytes().to_vec()),
                ],
                0..80,
            ),
        ) {
            let schema = oracle_schema();
            let input = pieces.concat();
            let (out, bad) = decode_with(&mut JsonDecoder::new(&schema), &schema, &input);
            // Blank lines (and the nothing after a final newline) are skipped silently.
            let lines = input
                .split(|&b| b == b'\n')
                .filter(|line| !line.iter().all(|b| b" \t\r".contains(b)))
                .count();
            prop_assert_eq!(out.num_rows + bad.len(), lines);
            for col in &out.columns {
                prop_assert_eq!(col.len(), out.num_rows);
                if let Some(valid) = &col.valid {
                    prop_assert_eq!(valid.len(), out.num_rows);
                }
            }
        }
    }
}
