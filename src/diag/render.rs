//! Rendering diagnostics: rustc-style snippets for people, JSON for tools, and workflow
//! commands for GitHub Actions annotations.

use std::fmt::Write;

use super::{Diagnostic, Severity, SourceFile};

/// How `validate` (and every command that reports pipeline problems) prints diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Snippets with carets, for people.
    Human,
    /// One JSON document with every diagnostic, for editors and scripts.
    Json,
    /// GitHub Actions workflow commands (`::error file=…,line=…::…`), shown as annotations.
    Github,
}

struct Style {
    on: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// Renders diagnostics the way rustc does: header, location, the offending line with a caret
/// under the span, then the help and notes.
pub fn render_human(file: &SourceFile, diagnostics: &[Diagnostic], color: bool) -> String {
    let style = Style { on: color };
    let mut out = String::new();
    for d in diagnostics {
        let (sev_color, sev) = match d.severity {
            Severity::Error => ("1;31", "error"),
            Severity::Warning => ("1;33", "warning"),
        };
        let _ = writeln!(
            out,
            "{}{} {}",
            style.paint(sev_color, &format!("{sev}[{}]", d.code)),
            style.paint("1", ":"),
            style.paint("1", &d.message)
        );
        let gutter_width;
        match d.span {
            Some(span) => {
                let start = file.line_col(span.start);
                let end = file.line_col(span.end.max(span.start));
                gutter_width = start.line.to_string().len();
                let pad = " ".repeat(gutter_width);
                let _ = writeln!(
                    out,
                    "{pad}{} {}:{}:{}",
                    style.paint("1;34", "-->"),
                    file.path,
                    start.line,
                    start.column
                );
                let line_text = file.line_text(start.line);
                let _ = writeln!(out, "{pad} {}", style.paint("1;34", "|"));
                let _ = writeln!(
                    out,
                    "{} {} {}",
                    style.paint("1;34", &start.line.to_string()),
                    style.paint("1;34", "|"),
                    line_text
                );
                let line_chars = line_text.chars().count();
                let caret_len = if end.line == start.line {
                    end.column.saturating_sub(start.column).max(1)
                } else {
                    line_chars.saturating_sub(start.column - 1).max(1)
                };
                let indent: String = line_text
                    .chars()
                    .take(start.column - 1)
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                let carets = "^".repeat(caret_len);
                let label = d
                    .label
                    .as_deref()
                    .map(|l| format!(" {l}"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{pad} {} {indent}{}",
                    style.paint("1;34", "|"),
                    style.paint(sev_color, &format!("{carets}{label}"))
                );
            }
            None => {
                gutter_width = 1;
                let _ = writeln!(out, "{} {}", style.paint("1;34", " -->"), file.path);
            }
        }
        let pad = " ".repeat(gutter_width);
        for note in &d.notes {
            let _ = writeln!(out, "{pad} {} note: {note}", style.paint("1;34", "="));
        }
        if let Some(help) = &d.help {
            let _ = writeln!(out, "{pad} {} help: {help}", style.paint("1;34", "="));
        }
        out.push('\n');
    }
    out
}

/// One JSON object per diagnostic, with 1-based positions.
pub fn diagnostic_json(file: &SourceFile, d: &Diagnostic) -> serde_json::Value {
    let mut obj = serde_json::json!({
        "file": file.path,
        "severity": d.severity.as_str(),
        "code": d.code,
        "message": d.message,
    });
    if let Some(span) = d.span {
        let start = file.line_col(span.start);
        let end = file.line_col(span.end);
        obj["line"] = start.line.into();
        obj["column"] = start.column.into();
        obj["end_line"] = end.line.into();
        obj["end_column"] = end.column.into();
    }
    if let Some(label) = &d.label {
        obj["label"] = label.clone().into();
    }
    if let Some(help) = &d.help {
        obj["help"] = help.clone().into();
    }
    if !d.notes.is_empty() {
        obj["notes"] = d.notes.clone().into();
    }
    obj
}

/// A JSON array of every diagnostic of one file.
pub fn render_json(file: &SourceFile, diagnostics: &[Diagnostic]) -> Vec<serde_json::Value> {
    diagnostics
        .iter()
        .map(|d| diagnostic_json(file, d))
        .collect()
}

/// GitHub Actions workflow commands: each diagnostic becomes an annotation on the file.
pub fn render_github(file: &SourceFile, diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let level = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut props = format!("file={}", escape_property(&file.path));
        if let Some(span) = d.span {
            let start = file.line_col(span.start);
            let end = file.line_col(span.end);
            let _ = write!(props, ",line={},col={}", start.line, start.column);
            if end.line == start.line {
                let _ = write!(props, ",endColumn={}", end.column);
            } else {
                let _ = write!(props, ",endLine={}", end.line);
            }
        }
        let _ = write!(
            props,
            ",title={}",
            escape_property(&format!("streamctl {}", d.code))
        );
        let mut message = d.message.clone();
        for note in &d.notes {
            message.push_str("\nnote: ");
            message.push_str(note);
        }
        if let Some(help) = &d.help {
            message.push_str("\nhelp: ");
            message.push_str(help);
        }
        let _ = writeln!(out, "::{level} {props}::{}", escape_data(&message));
    }
    out
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Span;

    #[test]
    fn human_output_points_at_the_span() {
        let file = SourceFile::new("p.yaml", "sources:\n  a:\n    topc: x\n");
        let d = Diagnostic::error("unknown-key", "unknown key `topc`")
            .at(Span::new(18, 22))
            .with_help("did you mean `topic`?");
        let text = render_human(&file, &[d], false);
        assert_eq!(
            text,
            "error[unknown-key]: unknown key `topc`\n --> p.yaml:3:5\n  |\n3 |     topc: x\n  |     ^^^^\n  = help: did you mean `topic`?\n\n"
        );
    }

    #[test]
    fn github_output_escapes_newlines_and_commas() {
        let file = SourceFile::new("a,b.yaml", "x: 1\n");
        let d = Diagnostic::error("bad", "first\nsecond").at(Span::new(0, 1));
        assert_eq!(
            render_github(&file, &[d]),
            "::error file=a%2Cb.yaml,line=1,col=1,endColumn=2,title=streamctl bad::first%0Asecond\n"
        );
    }
}
