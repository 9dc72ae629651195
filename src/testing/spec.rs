//! Reading a test file: the spanned YAML tree → [`TestFile`], keeping the position of every
//! test, step and expected row for diagnostics, failure reports and `--update`. Structural
//! problems (unknown keys, wrong shapes) are reported here, all at once; what depends on the
//! pipeline (source and sink names, fields, types) is checked by [`super::check`].

use std::path::{Path, PathBuf};

use crate::config::yaml::{self, Node, NodeKind};
use crate::diag::{Diagnostic, SourceFile, Span, did_you_mean, list_names};

/// A loaded test file.
#[derive(Debug, Clone)]
pub struct TestFile {
    pub file: SourceFile,
    /// The test file on disk.
    pub path: PathBuf,
    /// The pipeline under test on disk.
    pub pipeline: PathBuf,
    /// Where the file names its pipeline (`pipeline:`), for diagnostics about it.
    pub pipeline_span: Option<Span>,
    pub env: Vec<(String, String)>,
    pub tests: Vec<TestCase>,
    /// The `tests:` list, where `--create-from` appends.
    pub tests_node: Option<Node>,
}

#[derive(Debug, Clone)]
pub struct TestCase {
    pub name: String,
    pub name_span: Span,
    /// The test's mapping.
    pub node: Node,
    pub env: Vec<(String, String)>,
    pub inputs: Vec<SourceInput>,
    pub outputs: Option<Outputs>,
    pub counts: Option<Counts>,
    pub error: Option<(String, Span)>,
    /// It has structural errors (reported): it is neither checked further nor run.
    pub broken: bool,
}

impl TestCase {
    /// Whether it lists no sink's output: `--update` writes them all.
    pub fn states_no_outputs(&self) -> bool {
        self.outputs.as_ref().is_none_or(|o| o.sinks.is_empty())
    }

    /// It states nothing a run could contradict (no sink output, count or error), so it
    /// would pass whatever the pipeline does.
    pub fn checks_nothing(&self) -> bool {
        self.states_no_outputs()
            && self
                .counts
                .as_ref()
                .is_none_or(|c| c.late_events.is_empty() && c.bad_records.is_none())
            && self.error.is_none()
    }
}

/// The `outputs:` of a test.
#[derive(Debug, Clone)]
pub struct Outputs {
    pub key_span: Span,
    pub node: Node,
    pub sinks: Vec<SinkExpect>,
}

#[derive(Debug, Clone)]
pub struct SourceInput {
    pub source: String,
    pub span: Span,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone)]
pub struct Step {
    pub kind: StepKind,
    pub partition: Option<u32>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum StepKind {
    /// A record as a mapping of fields.
    Record(Node),
    /// A record's exact text.
    Raw(String),
    /// Every record of a file.
    File {
        path: PathBuf,
        shown: String,
    },
    /// A watermark advance, in ms since the epoch.
    Watermark(i64),
    Idle,
}

/// How an expectation was written, so `--update` writes it back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A list of rows.
    Rows,
    /// A mapping with `rows`, `objects`, `content`.
    Detailed,
}

#[derive(Debug, Clone)]
pub struct SinkExpect {
    pub sink: String,
    pub key_span: Span,
    pub node: Node,
    pub shape: Shape,
    pub rows: Option<Vec<Node>>,
    pub ordered: bool,
    pub objects: Option<Vec<ObjectExpect>>,
    pub content: Option<(String, Span)>,
}

#[derive(Debug, Clone)]
pub struct ObjectExpect {
    /// The path under the sink's url, normalized (`a/b/`).
    pub key: String,
    pub key_span: Span,
    pub node: Node,
    pub shape: Shape,
    pub rows: Option<Vec<Node>>,
    pub content: Option<(String, Span)>,
}

#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// Late events by window stage: the stage (and where it is named), the count and where
    /// it is written.
    pub late_events: Vec<LateCount>,
    /// The count and where it is written.
    pub bad_records: Option<(u64, Span)>,
}

#[derive(Debug, Clone)]
pub struct LateCount {
    pub stage: String,
    pub stage_span: Span,
    pub count: u64,
    pub count_span: Span,
}

/// Whether `path` names a test file (`*.test.yaml`, `*.test.yml`).
pub fn is_test_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".test.yaml") || n.ends_with(".test.yml"))
}

/// The test file beside a pipeline: `movies.yaml` → `movies.test.yaml`.
pub fn test_file_for(pipeline: &Path) -> PathBuf {
    let stem = pipeline
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    pipeline.with_file_name(format!("{stem}.test.yaml"))
}

/// The pipeline a test file tests when it does not say: `movies.test.yaml` → `movies.yaml`.
pub fn default_pipeline_for(test_file: &Path) -> PathBuf {
    let name = test_file
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let pipeline = name
        .strip_suffix(".test.yaml")
        .map(|s| format!("{s}.yaml"))
        .or_else(|| name.strip_suffix(".test.yml").map(|s| format!("{s}.yml")))
        .unwrap_or(name);
    test_file.with_file_name(pipeline)
}

/// Keys of a control step, which a record mapping cannot be confused with unless its source
/// has a field so named (then records are written `- record: {…}`).
pub const STEP_KEYS: [&str; 5] = ["watermark", "idle", "raw", "record", "file"];

/// Reads a test file's text. `path` is where it is on disk (relative paths in it are taken
/// from its directory); `shown` is how diagnostics name it.
///
/// # Errors
/// Every structural problem, with positions (the file is not usable then).
pub fn parse(
    path: &Path,
    shown: &str,
    text: String,
) -> (SourceFile, Option<TestFile>, Vec<Diagnostic>) {
    let text = match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    };
    let file = SourceFile::new(shown, text);
    let (root, mut diagnostics) = match yaml::parse_lenient(&file.text) {
        Ok(parsed) => parsed,
        Err(d) => return (file, None, d),
    };
    let mut reader = Reader {
        text: &file.text,
        dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
        diagnostics: Vec::new(),
    };
    let parsed = reader.file(&root, path);
    diagnostics.append(&mut reader.diagnostics);
    crate::diag::sort(&mut diagnostics);
    match parsed {
        Some(mut t) => {
            t.file = file.clone();
            (file, Some(t), diagnostics)
        }
        None => (file, None, diagnostics),
    }
}

struct Reader<'t> {
    text: &'t str,
    dir: PathBuf,
    diagnostics: Vec<Diagnostic>,
}

impl Reader<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    fn error(&mut self, code: &'static str, message: String, span: Span) -> &mut Diagnostic {
        self.diagnostics
            .push(Diagnostic::error(code, message).at(span));
        self.diagnostics.last_mut().expect("just pushed")
    }

    /// The entries of a mapping, or an error naming what it should be.
    fn map<'n>(&mut self, node: &'n Node, what: &str, help: &str) -> Option<&'n [(Node, Node)]> {
        match &node.kind {
            NodeKind::Map(entries) => Some(entries),
            _ if node.is_null() => Some(&[]),
            _ => {
                let d = self.error(
                    "type-mismatch",
                    format!("{what} must be a mapping, found {}", node.kind_name()),
                    node.span,
                );
                if !help.is_empty() {
                    d.help = Some(help.to_string());
                }
                None
            }
        }
    }

    fn seq<'n>(&mut self, node: &'n Node, what: &str, help: &str) -> Option<&'n [Node]> {
        match &node.kind {
            NodeKind::Seq(items) => Some(items),
            _ => {
                let d = self.error(
                    "type-mismatch",
                    format!("{what} must be a list, found {}", node.kind_name()),
                    node.span,
                );
                if !help.is_empty() {
                    d.help = Some(help.to_string());
                }
                None
            }
        }
    }

    fn text(&mut self, node: &Node, what: &str) -> Option<String> {
        match node.as_str() {
            Some(s) if !node.is_null() => Some(s.to_string()),
            _ => {
                self.error(
                    "type-mismatch",
                    format!("{what} must be text, found {}", node.kind_name()),
                    node.span,
                );
                None
            }
        }
    }

    /// Reports keys of `entries` not in `allowed`.
    fn known_keys(&mut self, entries: &[(Node, Node)], allowed: &[&str], owner: &str) {
        for (key, _) in entries {
            let name = key.as_str().unwrap_or_default();
            if !allowed.contains(&name) {
                let help = did_you_mean(name, allowed.iter().copied())
                    .unwrap_or_else(|| format!("{owner} takes {}", list_names(allowed)));
                self.error(
                    "unknown-key",
                    format!("unknown key `{name}` in {owner}"),
                    key.span,
                )
                .help = Some(help);
            }
        }
    }

    fn env(&mut self, node: &Node, owner: &str) -> Vec<(String, String)> {
        let Some(entries) = self.map(
            node,
            &format!("`env` of {owner}"),
            "write `env: {NAME: value}`",
        ) else {
            return Vec::new();
        };
        let mut env = Vec::new();
        for (k, v) in entries {
            let name = k.as_str().unwrap_or_default().to_string();
            match v.as_str() {
                Some(value) => env.push((name, value.to_string())),
                None => {
                    self.error(
                        "type-mismatch",
                        format!("variable `{name}` must be text, found {}", v.kind_name()),
                        v.span,
                    );
                }
            }
        }
        env
    }

    fn file(&mut self, root: &Node, path: &Path) -> Option<TestFile> {
        let entries = self.map(
            root,
            "a test file",
            "start with `tests:` and a list of tests (see `streamctl test --help`)",
        )?;
        self.known_keys(entries, &["pipeline", "env", "tests"], "a test file");
        let mut pipeline = default_pipeline_for(path);
        let mut pipeline_span = None;
        if let Some((_, p)) = root.entry("pipeline")
            && let Some(name) = self.text(p, "`pipeline`")
        {
            pipeline = self.dir.join(name);
            pipeline_span = Some(p.span);
        }
        let env = root
            .get("env")
            .map(|e| self.env(e, "the test file"))
            .unwrap_or_default();
        let mut tests = Vec::new();
        let tests_node = root.get("tests").cloned();
        match root.entry("tests") {
            None => {
                self.error(
                    "missing-key",
                    "a test file needs `tests:`, a list of tests".to_string(),
                    root.span,
                )
                .help = Some("see `streamctl test --help` for an example".to_string());
            }
            Some((_, list)) => {
                if let Some(items) = self.seq(list, "`tests`", "write one `- name: …` per test") {
                    let mut names: Vec<(String, Span)> = Vec::new();
                    for item in items {
                        if let Some(t) = self.test(item) {
                            if let Some((_, first)) = names.iter().find(|(n, _)| *n == t.name) {
                                let line = self.line(first.start);
                                self.error(
                                    "duplicate-test",
                                    format!("two tests are named `{}`", t.name),
                                    t.name_span,
                                )
                                .help = Some(format!(
                                    "the first is on line {line}; give each test its own name, failures are reported by name"
                                ));
                            }
                            names.push((t.name.clone(), t.name_span));
                            tests.push(t);
                        }
                    }
                }
            }
        }
        Some(TestFile {
            file: SourceFile::new("", ""),
            path: path.to_path_buf(),
            pipeline,
            pipeline_span,
            env,
            tests,
            tests_node,
        })
    }

    fn test(&mut self, node: &Node) -> Option<TestCase> {
        let errors_before = self.diagnostics.iter().filter(|d| d.is_error()).count();
        let mut case = self.test_case(node)?;
        case.broken = self.diagnostics.iter().filter(|d| d.is_error()).count() > errors_before;
        Some(case)
    }

    fn test_case(&mut self, node: &Node) -> Option<TestCase> {
        let entries = self.map(
            node,
            "a test",
            "write `- name: …` with `inputs:` and `outputs:`",
        )?;
        self.known_keys(
            entries,
            &[
                "name",
                "description",
                "env",
                "inputs",
                "outputs",
                "counts",
                "error",
            ],
            "a test",
        );
        let (name, name_span) = match node.entry("name") {
            Some((_, n)) => (self.text(n, "a test's `name`")?, n.span),
            None => {
                self.error(
                    "missing-key",
                    "a test needs a `name`".to_string(),
                    node.span,
                )
                .help = Some(
                    "say what it shows, e.g. `name: a late event goes to the late stream`"
                        .to_string(),
                );
                return None;
            }
        };
        if let Some(d) = node.get("description") {
            self.text(d, "`description`");
        }
        let env = node
            .get("env")
            .map(|e| self.env(e, "a test"))
            .unwrap_or_default();
        let mut inputs = Vec::new();
        if let Some(i) = node.get("inputs")
            && let Some(entries) = self.map(i, "`inputs`", "write `inputs: {<source>: [records…]}`")
        {
            for (k, v) in entries {
                let source = k.as_str().unwrap_or_default().to_string();
                let mut steps = Vec::new();
                if !v.is_null()
                    && let Some(items) = self.seq(
                        v,
                        &format!("the input of source `{source}`"),
                        "write one `- {field: value, …}` per record",
                    )
                {
                    for item in items {
                        if let Some(step) = self.step(item) {
                            steps.push(step);
                        }
                    }
                }
                inputs.push(SourceInput {
                    source,
                    span: k.span,
                    steps,
                });
            }
        }
        let outputs = match node.entry("outputs") {
            Some((k, v)) => self.outputs(k, v),
            None => None,
        };
        let counts = node.get("counts").and_then(|c| self.counts(c));
        let error = match node.get("error") {
            Some(e) => self.text(e, "`error`").map(|t| (t, e.span)),
            None => None,
        };
        Some(TestCase {
            name,
            name_span,
            node: node.clone(),
            env,
            inputs,
            outputs,
            counts,
            error,
            broken: false,
        })
    }

    fn partition(&mut self, node: &Node) -> Option<u32> {
        let p = node.get("partition")?;
        match p.as_str().and_then(|s| s.trim().parse::<u32>().ok()) {
            Some(n) => Some(n),
            None => {
                self.error(
                    "type-mismatch",
                    format!(
                        "`partition` must be a number from 0, found {}",
                        p.describe()
                    ),
                    p.span,
                );
                None
            }
        }
    }

    fn step(&mut self, node: &Node) -> Option<Step> {
        let Some(entries) = node.as_map() else {
            self.error(
                "type-mismatch",
                format!("an input step must be a mapping, found {}", node.kind_name()),
                node.span,
            )
            .help = Some(
                "a record is `- {field: value, …}`; steps are `- watermark: <instant>`, `- idle: true`, `- raw: '<bytes>'`, `- file: <path>`"
                    .to_string(),
            );
            return None;
        };
        let keys: Vec<&str> = entries.iter().filter_map(|(k, _)| k.as_str()).collect();
        let controls: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| STEP_KEYS.contains(k))
            .collect();
        let is_control = controls.len() == 1
            && keys
                .iter()
                .all(|k| STEP_KEYS.contains(k) || *k == "partition");
        if !is_control {
            return Some(Step {
                kind: StepKind::Record(node.clone()),
                partition: None,
                span: node.span,
            });
        }
        let partition = self.partition(node);
        let key = controls[0];
        let value = node.get(key).expect("present");
        let kind = match key {
            "watermark" => StepKind::Watermark(self.instant(value, "`watermark`")?),
            "idle" => match value.as_str() {
                Some("true") => StepKind::Idle,
                _ => {
                    self.error(
                        "type-mismatch",
                        format!("`idle` takes `true`, found {}", value.describe()),
                        value.span,
                    )
                    .help = Some(
                        "write `- idle: true` (with `partition:` for one partition)".to_string(),
                    );
                    return None;
                }
            },
            "raw" => {
                let raw = self.text(value, "`raw`")?;
                if raw.contains('\n') {
                    self.error(
                        "bad-raw-record",
                        "`raw` holds one record: it cannot contain a line break".to_string(),
                        value.span,
                    )
                    .help = Some("write one `- raw:` step per record".to_string());
                    return None;
                }
                StepKind::Raw(raw)
            }
            "record" => {
                if value.as_map().is_none() {
                    self.error(
                        "type-mismatch",
                        format!(
                            "`record` must be a mapping of fields, found {}",
                            value.kind_name()
                        ),
                        value.span,
                    );
                    return None;
                }
                StepKind::Record(value.clone())
            }
            "file" => {
                let shown = self.text(value, "`file`")?;
                let path = self.dir.join(&shown);
                if !path.is_file() {
                    self.error(
                        "missing-file",
                        format!(
                            "input file `{shown}` does not exist (looked for {})",
                            path.display()
                        ),
                        value.span,
                    )
                    .help = Some("paths are relative to the test file".to_string());
                    return None;
                }
                StepKind::File { path, shown }
            }
            _ => unreachable!("one of STEP_KEYS"),
        };
        Some(Step {
            kind,
            partition,
            span: node.span,
        })
    }

    fn instant(&mut self, node: &Node, what: &str) -> Option<i64> {
        let text = node.as_str().unwrap_or_default().trim();
        if let Ok(ms) = text.parse::<i64>() {
            return Some(ms);
        }
        match crate::data::time::parse_timestamp(text) {
            Some(ms) => Some(ms),
            None => {
                self.error(
                    "bad-instant",
                    format!("{what} must be an instant, found {}", node.describe()),
                    node.span,
                )
                .help =
                    Some("write e.g. `2019-01-07T00:20:00Z` (or epoch milliseconds)".to_string());
                None
            }
        }
    }

    fn outputs(&mut self, key: &Node, node: &Node) -> Option<Outputs> {
        let entries = self.map(node, "`outputs`", "write `outputs: {<sink>: [rows…]}`")?;
        let mut sinks = Vec::new();
        for (k, v) in entries {
            let sink = k.as_str().unwrap_or_default().to_string();
            if let Some(e) = self.sink_expect(&sink, k.span, v) {
                sinks.push(e);
            }
        }
        Some(Outputs {
            key_span: key.span,
            node: node.clone(),
            sinks,
        })
    }

    fn rows(&mut self, node: &Node, owner: &str) -> Option<Vec<Node>> {
        let items = self.seq(node, owner, "write one `- {field: value, …}` per row")?;
        let mut rows = Vec::new();
        for item in items {
            if item.as_map().is_some() {
                rows.push(item.clone());
            } else {
                self.error(
                    "type-mismatch",
                    format!(
                        "a row must be a mapping of fields, found {}",
                        item.kind_name()
                    ),
                    item.span,
                )
                .help = Some("write `- {field: value, …}`".to_string());
            }
        }
        Some(rows)
    }

    fn content(&mut self, node: &Node) -> Option<(String, Span)> {
        self.text(node, "`content`").map(|t| (t, node.span))
    }

    fn sink_expect(&mut self, sink: &str, key_span: Span, node: &Node) -> Option<SinkExpect> {
        let owner = format!("the expected output of sink `{sink}`");
        if matches!(node.kind, NodeKind::Seq(_)) || node.is_null() {
            let rows = if node.is_null() {
                Vec::new()
            } else {
                self.rows(node, &owner)?
            };
            return Some(SinkExpect {
                sink: sink.to_string(),
                key_span,
                node: node.clone(),
                shape: Shape::Rows,
                rows: Some(rows),
                ordered: false,
                objects: None,
                content: None,
            });
        }
        let entries = self.map(
            node,
            &owner,
            "write a list of rows, or `rows:`, `objects:` or `content:`",
        )?;
        self.known_keys(entries, &["rows", "ordered", "objects", "content"], &owner);
        let rows = match node.get("rows") {
            Some(r) => Some(self.rows(r, &owner)?),
            None => None,
        };
        let ordered = match node.get("ordered") {
            Some(o) => match o.as_str() {
                Some("true") => true,
                Some("false") => false,
                _ => {
                    self.error(
                        "type-mismatch",
                        format!(
                            "`ordered` must be `true` or `false`, found {}",
                            o.describe()
                        ),
                        o.span,
                    );
                    false
                }
            },
            None => false,
        };
        let content = match node.get("content") {
            Some(c) => Some(self.content(c)?),
            None => None,
        };
        let objects = match node.get("objects") {
            Some(o) => {
                let entries = self.map(o, "`objects`", "write `objects: {<path>/: [rows…]}`")?;
                let mut objects = Vec::new();
                for (k, v) in entries {
                    let key = normalize_object_key(k.as_str().unwrap_or_default());
                    if let Some((existing, _)) = objects
                        .iter()
                        .map(|o: &ObjectExpect| (o.key.clone(), o.key_span))
                        .find(|(e, _)| *e == key)
                    {
                        self.error(
                            "duplicate-key",
                            format!("object `{existing}` is listed twice"),
                            k.span,
                        );
                        continue;
                    }
                    if let Some(object) = self.object(key, k.span, v) {
                        objects.push(object);
                    }
                }
                Some(objects)
            }
            None => None,
        };
        if rows.is_none() && objects.is_none() && content.is_none() {
            self.error(
                "missing-key",
                format!("{owner} says nothing: give `rows`, `objects` or `content`"),
                node.span,
            );
            return None;
        }
        Some(SinkExpect {
            sink: sink.to_string(),
            key_span,
            node: node.clone(),
            shape: Shape::Detailed,
            rows,
            ordered,
            objects,
            content,
        })
    }

    fn object(&mut self, key: String, key_span: Span, node: &Node) -> Option<ObjectExpect> {
        let owner = format!("object `{key}`");
        if matches!(node.kind, NodeKind::Seq(_)) {
            let rows = self.rows(node, &owner)?;
            return Some(ObjectExpect {
                key,
                key_span,
                node: node.clone(),
                shape: Shape::Rows,
                rows: Some(rows),
                content: None,
            });
        }
        let entries = self.map(
            node,
            &owner,
            "write a list of rows, or `rows:` or `content:`",
        )?;
        self.known_keys(entries, &["rows", "content"], &owner);
        let rows = match node.get("rows") {
            Some(r) => Some(self.rows(r, &owner)?),
            None => None,
        };
        let content = match node.get("content") {
            Some(c) => Some(self.content(c)?),
            None => None,
        };
        if rows.is_none() && content.is_none() {
            self.error(
                "missing-key",
                format!("{owner} says nothing: give `rows` or `content`"),
                node.span,
            );
            return None;
        }
        Some(ObjectExpect {
            key,
            key_span,
            node: node.clone(),
            shape: Shape::Detailed,
            rows,
            content,
        })
    }

    fn counts(&mut self, node: &Node) -> Option<Counts> {
        let entries = self.map(
            node,
            "`counts`",
            "write `counts: {late_events: {<window>: n}, bad_records: n}`",
        )?;
        self.known_keys(entries, &["late_events", "bad_records"], "`counts`");
        let mut counts = Counts::default();
        if let Some(l) = node.get("late_events")
            && let Some(stages) = self.map(
                l,
                "`late_events`",
                "write `late_events: {<window stage>: n}`",
            )
        {
            for (k, v) in stages {
                if let Some(n) = self.count(v) {
                    counts.late_events.push(LateCount {
                        stage: k.as_str().unwrap_or_default().to_string(),
                        stage_span: k.span,
                        count: n,
                        count_span: v.span,
                    });
                }
            }
        }
        if let Some(b) = node.get("bad_records") {
            counts.bad_records = self.count(b).map(|n| (n, b.span));
        }
        Some(counts)
    }

    fn count(&mut self, node: &Node) -> Option<u64> {
        match node.as_str().and_then(|s| s.trim().parse::<u64>().ok()) {
            Some(n) => Some(n),
            None => {
                self.error(
                    "type-mismatch",
                    format!("a count must be a whole number, found {}", node.describe()),
                    node.span,
                );
                None
            }
        }
    }
}

/// Object paths compare without a leading `/` and with a trailing one (`a/b` = `/a/b/`).
pub fn normalize_object_key(key: &str) -> String {
    let trimmed = key.trim().trim_start_matches('/');
    if trimmed.is_empty() || trimmed.ends_with('/') {
        trimmed.to_string()
    } else {
        format!("{trimmed}/")
    }
}
