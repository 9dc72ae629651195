//! `--create-from`: a new test from a sample of real input. The first records of a file are
//! decoded with the source's own decoder and written as field mappings (instants for time
//! fields, so the test reads as times); records the source cannot decode are kept exactly,
//! as `raw:` steps. The expected outputs come from running the test ([`super::update`]).

use std::io::Read;

use super::values::yaml_string;
use crate::plan::{NodeKind, Plan};

/// The first `count` records of `input` (a file's bytes, gzip when `gzip`) as input steps of
/// source `node`, one YAML line each (`- {…}` or `- raw: …`).
///
/// # Errors
/// When the input cannot be read (bad gzip, a CSV header the source cannot use).
pub fn sample_steps(
    plan: &Plan,
    node: usize,
    input: &[u8],
    gzip: bool,
    count: usize,
) -> Result<Vec<String>, String> {
    let NodeKind::Source(source) = &plan.nodes[node].kind else {
        return Err(format!("`{}` is not a source", plan.nodes[node].name));
    };
    let mut bytes = Vec::new();
    let input = if gzip {
        flate2::read::MultiGzDecoder::new(input)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("reading gzip: {e}"))?;
        &bytes[..]
    } else {
        input
    };
    let schema = plan.nodes[node].outputs[0].schema.clone();
    let (decoding, messages) = super::check::decoding_of(&source.connector);
    let mut decoder = crate::sources::decoder(&decoding, &schema);
    let mut lines = input
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace));
    // Test records are CSV lines in schema order: records the source cannot read are written
    // in that order too, when the file's header orders columns otherwise.
    let mut reorder: Option<Vec<Option<usize>>> = None;
    if decoder.expects_header() {
        let header = lines.next().ok_or("the file is empty")?;
        decoder
            .read_header(header)
            .map_err(|e| format!("its CSV header does not fit the source: {e}"))?;
        let names = csv_fields(header, decoding.csv_delimiter).unwrap_or_default();
        let order: Vec<Option<usize>> = schema
            .fields
            .iter()
            .map(|f| names.iter().position(|n| n.trim() == f.name))
            .collect();
        if order.iter().enumerate().any(|(i, o)| *o != Some(i)) || names.len() != order.len() {
            reorder = Some(order);
        }
    }
    let mut steps = Vec::new();
    for (i, line) in lines.take(count).enumerate() {
        let (batch, _) = super::runner::decode_record(
            decoder.as_mut(),
            messages,
            line,
            i as u64 + 1,
            &schema,
            source.event_time.as_ref(),
        );
        if batch.num_rows == 1 {
            let values: Vec<_> = batch.columns.iter().map(|c| c.value(0)).collect();
            steps.push(format!(
                "- {}",
                super::update::record_text(&schema.fields, &values)
            ));
        } else {
            let raw = match (&reorder, csv_fields(line, decoding.csv_delimiter)) {
                (Some(order), Some(fields)) => {
                    let texts: Vec<String> = order
                        .iter()
                        .map(|o| o.and_then(|i| fields.get(i).cloned()).unwrap_or_default())
                        .collect();
                    String::from_utf8_lossy(&super::values::csv_line(
                        &texts,
                        decoding.csv_delimiter,
                    ))
                    .to_string()
                }
                _ => String::from_utf8_lossy(line).to_string(),
            };
            steps.push(format!("- raw: {}", yaml_string(&raw)));
        }
    }
    Ok(steps)
}

/// The fields of one CSV line, when it parses.
fn csv_fields(line: &[u8], delimiter: u8) -> Option<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(line);
    let record = reader.records().next()?.ok()?;
    Some(record.iter().map(str::to_string).collect())
}

/// The lines of a new test item (`- name: …`) feeding `steps` to `source`.
pub fn test_item(name: &str, source: &str, steps: &[String]) -> Vec<String> {
    let mut lines = vec![
        format!("- name: {}", yaml_string(name)),
        "  inputs:".to_string(),
        format!("    {}:", super::values::yaml_key(source)),
    ];
    lines.extend(steps.iter().map(|s| format!("      {s}")));
    lines
}

/// `text` (a test file, or `None` for a new one) with `item` appended to its `tests:`.
pub fn append_test(text: Option<&str>, item: &[String]) -> String {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        let mut out = String::from("tests:\n");
        for line in item {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
        return out;
    };
    // Items go at the indentation of the existing ones (after the last line of the file).
    let indent = text
        .lines()
        .skip_while(|l| !l.starts_with("tests:"))
        .skip(1)
        .find(|l| l.trim_start().starts_with("- "))
        .map_or(2, |l| l.len() - l.trim_start().len());
    let mut out = text.trim_end_matches('\n').to_string();
    if let Some(stripped) = out.strip_suffix("tests: []") {
        out = format!("{stripped}tests:");
    }
    out.push_str("\n\n");
    for line in item {
        out.push_str(&" ".repeat(indent));
        out.push_str(line);
        out.push('\n');
    }
    out
}
