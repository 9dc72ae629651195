//! The pipeline file as a YAML tree that remembers where every key and value came from.
//!
//! `serde_yaml` (deprecated upstream) and its forks drop positions once a value is parsed, so
//! errors found later (an unknown key, a bad duration, a SQL typo) could not point back at the
//! file. We parse with `yaml-rust2`'s event API into [`Node`]s carrying byte [`Span`]s, resolve
//! `${VAR}` interpolation on that tree, and deserialize the typed config from it
//! (see [`super::de`]). Scalars stay text until the schema says what they should be, so
//! `country: NO` stays a string (no YAML 1.1 "Norway problem").

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::diag::{Diagnostic, Span};

/// A YAML value with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    /// The value after `${VAR}` interpolation.
    pub value: String,
    /// Plain (unquoted) scalars may be numbers, booleans or null; quoted ones are strings.
    pub plain: bool,
    /// The value came (partly) from the environment: keep it out of messages.
    pub interpolated: bool,
    /// The text as written, when it had `${…}` (named in messages instead of the value).
    pub written: Option<String>,
    /// Interpolation failed (already reported): no further checks of this value.
    pub unresolved: bool,
    /// What the schema check decided this scalar is; guides deserialization.
    pub resolved: Option<Resolved>,
}

/// The type a scalar was resolved to by the schema check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    Null,
    Bool,
    Int,
    Float,
    String,
}

impl Node {
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            NodeKind::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Seq(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_scalar(&self) -> Option<&Scalar> {
        match &self.kind {
            NodeKind::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The scalar's text, if this is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        self.as_scalar().map(|s| s.value.as_str())
    }

    /// Looks up a key of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// Looks up a key of a mapping, returning the key node too (for its span).
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, v)| (k, v))
    }

    /// Whether this node is an explicit or implicit YAML null (`~`, `null`, or nothing).
    pub fn is_null(&self) -> bool {
        match &self.kind {
            NodeKind::Scalar(s) => s.plain && is_null_text(&s.value),
            _ => false,
        }
    }

    /// What a message may show of this value: the text, unless it came from the environment
    /// (which may hold secrets).
    pub fn describe(&self) -> String {
        match &self.kind {
            NodeKind::Scalar(s) if s.interpolated => match &s.written {
                Some(w) => format!("the value of `{}`", truncate(w, 60)),
                None => "the interpolated value".to_string(),
            },
            NodeKind::Scalar(s) => format!("`{}`", truncate(&s.value, 60)),
            NodeKind::Seq(_) => "a list".to_string(),
            NodeKind::Map(_) => "a mapping".to_string(),
        }
    }

    /// "a string", "a list"… for type-mismatch messages.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar(s) if !s.plain => "a string",
            NodeKind::Scalar(s) if is_null_text(&s.value) => "null",
            NodeKind::Scalar(s) if s.value == "true" || s.value == "false" => "a boolean",
            NodeKind::Scalar(s) if s.value.parse::<f64>().is_ok() => "a number",
            NodeKind::Scalar(_) => "a string",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }
}

pub fn is_null_text(s: &str) -> bool {
    matches!(s, "" | "~" | "null" | "Null" | "NULL")
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

/// Parses YAML text into a [`Node`] tree. Returns every problem found: syntax errors (the
/// first one stops parsing), duplicate keys, anchors and multi-document files.
pub fn parse(text: &str) -> Result<Node, Vec<Diagnostic>> {
    match parse_lenient(text)? {
        (root, diagnostics) if diagnostics.is_empty() => Ok(root),
        (_, diagnostics) => Err(diagnostics),
    }
}

/// Like [`parse`], but problems that leave a usable tree (duplicate keys, YAML tags) come back
/// beside the tree, so the rest of the file can still be checked and every mistake reported
/// in one pass. `Err` only when there is no tree: syntax errors, several documents, no document.
pub fn parse_lenient(text: &str) -> Result<(Node, Vec<Diagnostic>), Vec<Diagnostic>> {
    let offsets = CharOffsets::new(text);
    let mut builder = TreeBuilder {
        text,
        offsets: &offsets,
        stack: Vec::new(),
        anchors: HashMap::new(),
        documents: Vec::new(),
        diagnostics: Vec::new(),
    };
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, true) {
        let at = offsets.at(text, e.marker());
        let message = e.info().to_string();
        if let Some(d) = likely_cause(text, at.min(text.len()), &message)
            .or_else(|| misindented_key(text, at.min(text.len()), &message))
        {
            return Err(vec![d]);
        }
        let reported = at.min(text.len());
        let (at, label) = syntax_error_position(text, at, &message);
        let help = match (&label, text[at..].starts_with('[')) {
            (Some(_), true) => syntax_help("flow sequence"),
            (Some(_), false) => syntax_help("flow mapping"),
            (None, _) => syntax_help(&message),
        };
        let mut d = match &label {
            // The cause was found away from where the parser stopped: say what it is, and keep
            // the parser's words as a note.
            Some(_) => {
                let open = &text[at..next_char_end(text, at)];
                let (line, column) = (line_of(text, reported), column_of(text, reported));
                Diagnostic::error(
                    "yaml-syntax",
                    format!("YAML syntax error: unclosed `{open}`"),
                )
                .with_note(format!(
                    "the YAML parser stopped at line {line}, column {column}: {message}"
                ))
            }
            None => Diagnostic::error("yaml-syntax", format!("YAML syntax error: {message}")),
        }
        .at(Span::new(at, next_char_end(text, at)))
        .with_help(help);
        if let Some(label) = label {
            d = d.with_label(label);
        }
        return Err(vec![d]);
    }
    let TreeBuilder {
        mut documents,
        mut diagnostics,
        ..
    } = builder;
    if documents.len() > 1 {
        let second = &documents[1];
        diagnostics.push(
            Diagnostic::error(
                "multiple-documents",
                "a pipeline file holds exactly one YAML document",
            )
            .at(second.span)
            .with_help("put each pipeline in a file of its own"),
        );
    }
    if documents.len() > 1 {
        return Err(diagnostics);
    }
    match documents.pop() {
        Some(root) if documents.is_empty() => Ok((root, diagnostics)),
        _ => Err(vec![
            Diagnostic::error("empty-file", "the pipeline file is empty").with_help(
                "start from an example in pipelines/, or run `streamctl validate --help`",
            ),
        ]),
    }
}

/// Common mistakes behind a YAML syntax error, found on the lines up to where the parser gave
/// up: an unquoted `{…}` path template (read as a flow mapping) and `key:value` without the
/// space YAML needs after `:`.
fn likely_cause(text: &str, at: usize, message: &str) -> Option<Diagnostic> {
    let error_line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let mut line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    for _ in 0..6 {
        let line = &text[line_start..error_line_end.max(line_start)];
        let line = line.split('\n').next().unwrap_or_default();
        let indent = line.len() - line.trim_start().len();
        let content = &line[indent..];
        if let Some((key, value)) = content.split_once(": ") {
            let value = value.trim_start();
            let value_at = line_start + line.len() - content.len()
                + key.len()
                + 2
                + (content.len() - key.len() - 2 - value.len());
            // `count: ${COUNT}` inside a `{…}` mapping: the braces of `${…}` end the mapping.
            if let Some(dollar) = line.find("${")
                && line[..dollar].contains('{')
            {
                let at = line_start + dollar;
                return Some(
                    Diagnostic::error(
                        "yaml-syntax",
                        "YAML syntax error: `${…}` inside a `{…}` mapping must be quoted",
                    )
                    .at(Span::new(at, at + 2))
                    .with_note(format!("the YAML parser said: {message}"))
                    .with_help("write the value in quotes, e.g. `count: \"${COUNT}\"`, or use one `key: value` per line"),
                );
            }
            // `path: {window_start:%Y}/{movieId}/`: a template, not a mapping.
            if value.starts_with('{')
                && let Some(close) = value.find('}')
                && !value[1..close].contains(": ")
                && !value[1..close].contains(',')
                && !value[close + 1..].trim().is_empty()
                && !value[close + 1..].trim_start().starts_with('#')
            {
                return Some(
                    Diagnostic::error(
                        "yaml-syntax",
                        "YAML syntax error: a value starting with `{` is read as a YAML mapping",
                    )
                    .at(Span::new(value_at, value_at + 1))
                    .with_note(format!("the YAML parser said: {message}"))
                    .with_help(format!(
                        "quote it: `{key}: \"{}\"`",
                        value.split(" #").next().unwrap_or(value).trim_end()
                    )),
                );
            }
        } else if let Some(colon) = content.find(':')
            && colon > 0
            && content[..colon]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && content[colon + 1..]
                .chars()
                .next()
                .is_some_and(|c| !c.is_whitespace() && c != '/' && c != ':')
            && !content.starts_with('-')
        {
            // `type:file`: one text to YAML, which then trips on the next key.
            let key = &content[..colon];
            let colon_at = line_start + indent + colon;
            return Some(
                Diagnostic::error(
                    "yaml-syntax",
                    format!("YAML syntax error: `{key}:` needs a space after the colon"),
                )
                .at(Span::new(colon_at, colon_at + 1))
                .with_note(format!("the YAML parser said: {message}"))
                .with_help(format!(
                    "write `{key}: {}`",
                    content[colon + 1..].trim_end()
                )),
            );
        }
        if line_start == 0 {
            break;
        }
        line_start = text[..line_start - 1].rfind('\n').map_or(0, |i| i + 1);
    }
    None
}

/// A line of the file: where it starts, its indentation, and its text after the indentation.
struct Line<'t> {
    start: usize,
    indent: usize,
    content: &'t str,
}

impl Line<'_> {
    /// The key of a `key: value` or `key:` line.
    fn key(&self) -> Option<&str> {
        let key = self
            .content
            .split_once(": ")
            .map(|(k, _)| k)
            .or_else(|| self.content.strip_suffix(':'))?;
        (!key.is_empty() && !key.starts_with(['-', '#', '{', '[', '"', '\''])).then_some(key)
    }

    /// Whether the line opens a block: `key:` with nothing after it (but a comment).
    fn opens_block(&self) -> bool {
        let content = self
            .content
            .split(" #")
            .next()
            .unwrap_or_default()
            .trim_end();
        content.ends_with(':') || content.ends_with(": |") || content.ends_with(": >")
    }
}

/// The lines with content (not blank, not only a comment) before and after the line at
/// `line_start`: the nearest `before` one and the nearest `after` one.
fn neighbour_lines(text: &str, line_start: usize) -> (Vec<Line<'_>>, Vec<Line<'_>>) {
    let mut before = Vec::new();
    let mut after = Vec::new();
    let mut start = 0;
    for raw in text.split_inclusive('\n') {
        let line = raw.trim_end_matches(['\n', '\r']);
        let content = line.trim_start_matches(' ');
        if !content.is_empty() && !content.starts_with('#') {
            let l = Line {
                start,
                indent: line.len() - content.len(),
                content,
            };
            if start < line_start {
                before.push(l);
            } else if start > line_start {
                after.push(l);
            }
        }
        start += raw.len();
    }
    before.reverse();
    (before, after)
}

/// A key indented deeper than the `key: value` line above it, which YAML reads as a value
/// containing `: ` ("mapping values are not allowed in this context"). Either that key is
/// indented too far, or the line above is indented too little (when it is the first key of its
/// block and the keys below agree with the deeper one); the diagnostic points at the line that
/// is out of step.
fn misindented_key(text: &str, at: usize, message: &str) -> Option<Diagnostic> {
    if !message.contains("mapping values are not allowed") {
        return None;
    }
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let (before, after) = neighbour_lines(text, line_start);
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let raw = &text[line_start..line_end];
    let content = raw.trim_start_matches(' ');
    let this = Line {
        start: line_start,
        indent: raw.len() - content.len(),
        content,
    };
    let key = this.key()?;
    // The parser stopped at this line's own `key:`, not at a `: ` inside its value.
    if at != line_start + this.indent + key.len() {
        return None;
    }
    let above = before.first()?;
    let above_key = above.key()?;
    if above.indent >= this.indent || above.opens_block() {
        return None;
    }
    let above_opens_its_block = before
        .get(1)
        .is_some_and(|parent| parent.indent < above.indent && parent.opens_block());
    let below_agrees = after.first().is_some_and(|next| next.indent == this.indent);
    let note = format!("the YAML parser said: {message}");
    if above_opens_its_block && below_agrees {
        let at = above.start + above.indent;
        return Some(
            Diagnostic::error(
                "yaml-syntax",
                format!(
                    "YAML syntax error: `{above_key}:` is indented less than the keys below it"
                ),
            )
            .at(Span::new(at, at + above_key.len()))
            .with_note(note)
            .with_help(format!(
                "indent `{above_key}:` by {} spaces, like `{key}:` on the next line",
                this.indent
            )),
        );
    }
    let at = this.start + this.indent;
    Some(
        Diagnostic::error(
            "yaml-syntax",
            format!("YAML syntax error: `{key}:` is indented more than `{above_key}:` above it"),
        )
        .at(Span::new(at, at + key.len()))
        .with_note(note)
        .with_help(format!(
            "indent `{key}:` by {} spaces, like `{above_key}:`; only a key ending in `:` (with its value on the lines below) takes deeper lines",
            above.indent
        )),
    )
}

fn syntax_help(message: &str) -> String {
    if message.contains("tab") {
        "YAML indents with spaces, never tabs".to_string()
    } else if message.contains("flow sequence") {
        "close the list with `]` (`[a, b]`), or write one `- item` per line".to_string()
    } else if message.contains("flow mapping") {
        "close the mapping with `}` (`{a: 1, b: 2}`), or write one `key: value` per line"
            .to_string()
    } else if message.contains("mapping values are not allowed") {
        "a value that contains `: ` must be quoted, e.g. `where: \"a: b\"`".to_string()
    } else if message.contains("did not find expected key") || message.contains("block") {
        "check the indentation of this line against the lines above it".to_string()
    } else {
        "check quoting and indentation around this position".to_string()
    }
}

/// Where a syntax error should point. The parser reports where it gave up, which is often
/// lines after the mistake: an unclosed `[`/`{` is found at the next line that cannot continue
/// it, a tab just after the tab, a mis-indented key at its `:`. Point at the cause instead.
fn syntax_error_position(text: &str, at: usize, message: &str) -> (usize, Option<String>) {
    let at = at.min(text.len());
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    // An unclosed `[`/`{` shows up as a flow error, or as a misplaced `:` on the next key.
    let open = if message.contains("flow sequence") {
        Some('[')
    } else if message.contains("flow mapping") {
        Some('{')
    } else if message.contains("':' indicator") {
        unclosed_flow_opener(text, at, None)
            .map(|i| if text[i..].starts_with('[') { '[' } else { '{' })
    } else {
        None
    };
    if let Some(open) = open
        && let Some(opener) = unclosed_flow_opener(text, at, Some(open))
    {
        let close = if open == '[' { ']' } else { '}' };
        return (
            opener,
            Some(format!("this `{open}` is never closed with `{close}`")),
        );
    }
    if message.contains("tab") {
        // On the reported line, or on the next one (the parser may stop at the line end).
        let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
        let next_end = text[(line_end + 1).min(text.len())..]
            .find('\n')
            .map_or(text.len(), |i| line_end + 1 + i);
        if let Some(tab) = text[line_start..next_end].find('\t') {
            return (line_start + tab, None);
        }
    }
    if message.contains("did not find expected key") {
        let indent = text[line_start..at].len() - text[line_start..at].trim_start().len();
        if line_start + indent < at {
            return (line_start + indent, None);
        }
    }
    (at, None)
}

/// The last `[` (or `{`) before `upto` that is not closed before it, skipping quoted text and
/// comments.
fn unclosed_flow_opener(text: &str, upto: usize, open: Option<char>) -> Option<usize> {
    let mut stack: Vec<(char, usize)> = Vec::new();
    let mut quote: Option<char> = None;
    let mut comment = false;
    let mut escaped = false;
    let mut prev = '\n';
    for (i, c) in text[..upto].char_indices() {
        if comment {
            comment = c != '\n';
        } else if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if q == '"' && c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
        } else {
            match c {
                '#' if prev.is_whitespace() => comment = true,
                '\'' | '"' if prev.is_whitespace() || "[{,:".contains(prev) => quote = Some(c),
                '[' | '{' => stack.push((c, i)),
                ']' | '}' => {
                    stack.pop();
                }
                _ => {}
            }
        }
        prev = c;
    }
    stack
        .iter()
        .rev()
        .find(|(c, _)| open.is_none_or(|o| *c == o))
        .map(|&(_, i)| i)
}

fn next_char_end(text: &str, at: usize) -> usize {
    text[at.min(text.len())..]
        .chars()
        .next()
        .map_or(at, |c| at + c.len_utf8())
}

/// Maps yaml-rust2's positions to byte offsets. Its markers count characters, except that
/// the text lines of a block scalar (`|`, `>`) advance `index` and `col` by their length in
/// *bytes* (yaml-rust2 0.13, `scan_block_scalar_content_line`), which would shift every
/// position after a block scalar holding non-ASCII text. Lines are always counted right and
/// a block scalar's text ends its line, so a position is taken from its line and column.
struct CharOffsets {
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
    text_len: usize,
}

impl CharOffsets {
    fn new(text: &str) -> CharOffsets {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        CharOffsets {
            line_starts,
            text_len: text.len(),
        }
    }

    /// The byte offset of a marker (1-based line, 0-based column in characters).
    fn at(&self, text: &str, marker: &Marker) -> usize {
        let Some(&start) = marker
            .line()
            .checked_sub(1)
            .and_then(|l| self.line_starts.get(l))
        else {
            return self.text_len;
        };
        let line = &text[start..];
        line.char_indices()
            .nth(marker.col())
            .map_or(self.text_len.min(start + line.len()), |(i, _)| start + i)
    }
}

enum Frame {
    Seq {
        start: usize,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        start: usize,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        pending_key: Option<Node>,
    },
}

struct TreeBuilder<'a> {
    text: &'a str,
    offsets: &'a CharOffsets,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    documents: Vec<Node>,
    diagnostics: Vec<Diagnostic>,
}

impl TreeBuilder<'_> {
    fn push_node(&mut self, node: Node, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.documents.push(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                pending_key,
                ..
            }) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => {
                    if let Some(key_text) = key.as_str()
                        && let Some((first, _)) =
                            entries.iter().find(|(k, _)| k.as_str() == Some(key_text))
                    {
                        let first_line = line_of(self.text, first.span.start);
                        self.diagnostics.push(
                            Diagnostic::error(
                                "duplicate-key",
                                format!("key `{key_text}` appears twice in this mapping"),
                            )
                            .at(key.span)
                            .with_label("second definition")
                            .with_help(format!(
                                "the first definition is on line {first_line}; keep one of them"
                            )),
                        );
                    }
                    entries.push((key, node));
                }
            },
        }
    }

    fn scalar_span(&self, start: usize, style: TScalarStyle, value: &str) -> Span {
        let rest = &self.text[start.min(self.text.len())..];
        let len = match style {
            TScalarStyle::Plain => {
                if rest.starts_with(value) {
                    value.len()
                } else {
                    // Multi-line plain scalar: underline to the end of its first line.
                    rest.find('\n').unwrap_or(rest.len())
                }
            }
            TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => quoted_len(
                rest,
                if style == TScalarStyle::SingleQuoted {
                    '\''
                } else {
                    '"'
                },
            ),
            _ => rest.find('\n').unwrap_or(rest.len()),
        };
        Span::new(start, start + len)
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// 1-based column (in characters) of a byte offset.
fn column_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    text[line_start..offset].chars().count() + 1
}

/// Length of a quoted scalar including both quotes.
fn quoted_len(rest: &str, quote: char) -> usize {
    let mut chars = rest.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        if quote == '"' && c == '\\' {
            chars.next();
        } else if c == quote {
            if quote == '\'' && chars.peek().map(|&(_, n)| n) == Some('\'') {
                chars.next();
                continue;
            }
            return i + c.len_utf8();
        }
    }
    rest.len()
}

impl MarkedEventReceiver for TreeBuilder<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let at = self.offsets.at(self.text, &mark);
        match ev {
            Event::Scalar(value, style, anchor, tag) => {
                let span = self.scalar_span(at, style, &value);
                if let Some(tag) = tag
                    && !tag.suffix.is_empty()
                    && tag.handle == "!!"
                    && tag.suffix != "str"
                {
                    self.diagnostics.push(
                        Diagnostic::error(
                            "yaml-tag",
                            format!("YAML tag `!!{}` is not supported here", tag.suffix),
                        )
                        .at(span)
                        .with_help("remove the tag; values are typed by the pipeline schema"),
                    );
                }
                let node = Node {
                    kind: NodeKind::Scalar(Scalar {
                        value,
                        plain: style == TScalarStyle::Plain,
                        interpolated: false,
                        written: None,
                        unresolved: false,
                        resolved: None,
                    }),
                    span,
                };
                self.push_node(node, anchor);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq {
                start: at,
                anchor,
                items: Vec::new(),
            }),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map {
                start: at,
                anchor,
                entries: Vec::new(),
                pending_key: None,
            }),
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq {
                        start,
                        anchor,
                        items,
                    }) => {
                        let end = items.last().map_or(at, |n| n.span.end).max(start);
                        (
                            Node {
                                kind: NodeKind::Seq(items),
                                span: Span::new(start, end),
                            },
                            anchor,
                        )
                    }
                    Some(Frame::Map {
                        start,
                        anchor,
                        entries,
                        ..
                    }) => {
                        let end = entries.last().map_or(at, |(_, v)| v.span.end).max(start);
                        (
                            Node {
                                kind: NodeKind::Map(entries),
                                span: Span::new(start, end),
                            },
                            anchor,
                        )
                    }
                    None => return,
                };
                self.push_node(node, anchor);
            }
            Event::Alias(anchor) => {
                let node = self.anchors.get(&anchor).cloned();
                if let Some(mut node) = node {
                    // Errors inside an alias point at the alias, where the user looks.
                    relocate(
                        &mut node,
                        Span::new(at, at + 1 + alias_len(&self.text[at..])),
                    );
                    self.push_node(node, 0);
                }
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

fn alias_len(rest: &str) -> usize {
    rest[1.min(rest.len())..]
        .find(|c: char| c.is_whitespace() || c == ',' || c == ']' || c == '}')
        .unwrap_or(rest.len().saturating_sub(1))
}

fn relocate(node: &mut Node, span: Span) {
    node.span = span;
    match &mut node.kind {
        NodeKind::Scalar(_) => {}
        NodeKind::Seq(items) => items.iter_mut().for_each(|n| relocate(n, span)),
        NodeKind::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
            relocate(k, span);
            relocate(v, span);
        }),
    }
}

/// Replaces `${VAR}` and `${VAR:-default}` in every scalar value (not in keys) using `lookup`.
/// `$$` writes a literal `$`. Undefined variables without a default are errors.
pub fn interpolate(
    node: &mut Node,
    lookup: &dyn Fn(&str) -> Option<String>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    match &mut node.kind {
        NodeKind::Scalar(s) => {
            if s.value.contains('$') {
                let raw = std::mem::take(&mut s.value);
                match interpolate_str(&raw, lookup) {
                    Ok((value, used)) => {
                        s.interpolated = used;
                        s.value = value;
                    }
                    Err(problem) => {
                        diagnostics.push(problem.into_diagnostic(node.span));
                        s.unresolved = true;
                        s.value = raw.clone();
                    }
                }
                s.written = Some(raw);
            }
        }
        NodeKind::Seq(items) => {
            for item in items {
                interpolate(item, lookup, diagnostics);
            }
        }
        NodeKind::Map(entries) => {
            for (_, value) in entries {
                interpolate(value, lookup, diagnostics);
            }
        }
    }
}

/// Why a `${…}` could not be substituted.
#[derive(Debug, PartialEq)]
pub enum InterpolationError {
    Undefined(String),
    Malformed(String),
}

impl InterpolationError {
    fn into_diagnostic(self, span: Span) -> Diagnostic {
        match self {
            InterpolationError::Undefined(var) => Diagnostic::error(
                "undefined-variable",
                format!("environment variable `{var}` is not set"),
            )
            .at(span)
            .with_help(format!(
                "set {var}, or give a default: `${{{var}:-default}}`"
            )),
            InterpolationError::Malformed(why) => {
                Diagnostic::error("bad-interpolation", format!("malformed `${{…}}`: {why}"))
                    .at(span)
                    .with_help("write `${VAR}`, `${VAR:-default}`, or `$$` for a literal `$`")
            }
        }
    }
}

/// Substitutes variables in one string; returns the result and whether any variable was used.
pub fn interpolate_str(
    raw: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, bool), InterpolationError> {
    let mut out = String::with_capacity(raw.len());
    let mut used = false;
    let mut rest = raw;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(after) = rest.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(after) = rest.strip_prefix("${") {
            let close = after
                .find('}')
                .ok_or_else(|| InterpolationError::Malformed("missing `}`".to_string()))?;
            let inner = &after[..close];
            let (name, default) = match inner.find(":-") {
                Some(j) => (&inner[..j], Some(&inner[j + 2..])),
                None => (inner, None),
            };
            if name.is_empty()
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || name.starts_with(|c: char| c.is_ascii_digit())
            {
                return Err(InterpolationError::Malformed(format!(
                    "`{name}` is not a variable name (letters, digits and `_`)"
                )));
            }
            match lookup(name).filter(|v| !(v.is_empty() && default.is_some())) {
                Some(value) => {
                    used = true;
                    out.push_str(&value);
                }
                None => match default {
                    Some(d) => out.push_str(d),
                    None => return Err(InterpolationError::Undefined(name.to_string())),
                },
            }
            rest = &after[close + 1..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    Ok((out, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("kafka:9092".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn spans_point_at_keys_and_values() {
        let text = "a:\n  b: 'x y'\n  c: [1, 2]\n";
        let root = parse(text).unwrap();
        let (k, v) = root.get("a").unwrap().entry("b").unwrap();
        assert_eq!(&text[k.span.start..k.span.end], "b");
        assert_eq!(&text[v.span.start..v.span.end], "'x y'");
        let c = root.get("a").unwrap().get("c").unwrap();
        assert_eq!(c.as_seq().unwrap().len(), 2);
    }

    #[test]
    fn spans_are_byte_offsets_after_multibyte_text() {
        let text = "name: \"café\"\nversion: 1\n";
        let root = parse(text).unwrap();
        let (k, v) = root.entry("version").unwrap();
        assert_eq!(&text[k.span.start..k.span.end], "version");
        assert_eq!(&text[v.span.start..v.span.end], "1");
    }

    #[test]
    fn spans_stay_right_after_a_block_scalar_with_multibyte_text() {
        // yaml-rust2 advances its index by bytes inside block scalars.
        for text in [
            "a:\n  d: |\n    x 00:00–00:07 é\n  s: []\n",
            "a:\n  d: >\n    x 00:00–00:07\n    more é\n\n  s: []\n",
        ] {
            let root = parse(text).unwrap();
            let (k, v) = root.get("a").unwrap().entry("s").unwrap();
            assert_eq!(&text[k.span.start..k.span.end], "s", "{text}");
            assert_eq!(&text[v.span.start..v.span.start + 1], "[", "{text}");
        }
    }

    #[test]
    fn duplicate_keys_are_reported() {
        let errors = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(errors[0].code, "duplicate-key");
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let errors = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert_eq!(errors[0].code, "yaml-syntax");
        assert!(errors[0].span.is_some());
    }

    #[test]
    fn syntax_errors_point_at_their_cause() {
        let position = |text: &str| {
            let e = parse(text).unwrap_err().remove(0);
            let start = e.span.unwrap().start;
            (
                line_of(text, start),
                start - text[..start].rfind('\n').map_or(0, |i| i + 1) + 1,
            )
        };
        // The unclosed `[` on line 2, not where the parser gave up.
        assert_eq!(position("a: 1\nb: [x, y\nc:\n  d: 2\n"), (2, 4));
        assert_eq!(position("a: 1\nb: {x: 1, y: 2\nc: 3\n"), (2, 4));
        // The tab itself.
        assert_eq!(position("a:\n  b: 1\n\tc: 2\n"), (3, 1));
        // The mis-indented key, not its colon.
        assert_eq!(position("a:\n  b: 1\n  c: 2\n d: 3\n"), (4, 2));
    }

    #[test]
    fn interpolation_uses_defaults_and_reports_missing() {
        assert_eq!(
            interpolate_str("${HOST}", &env).unwrap(),
            ("kafka:9092".to_string(), true)
        );
        assert_eq!(
            interpolate_str("${NOPE:-127.0.0.1:9092}", &env).unwrap(),
            ("127.0.0.1:9092".to_string(), false)
        );
        assert_eq!(
            interpolate_str("${EMPTY:-d}", &env).unwrap(),
            ("d".to_string(), false)
        );
        assert_eq!(interpolate_str("$$5", &env).unwrap().0, "$5");
        assert_eq!(
            interpolate_str("${NOPE}", &env),
            Err(InterpolationError::Undefined("NOPE".to_string()))
        );
        assert!(matches!(
            interpolate_str("${NOPE", &env),
            Err(InterpolationError::Malformed(_))
        ));
    }
}
