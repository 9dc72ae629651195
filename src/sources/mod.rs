//! Sources: where records come from. Each connector lives in the file named by its `type:`;
//! [`build`] is the registry (one `match`). Sources implement the runtime contract
//! ([`crate::runtime::source`]): batches with positions, starting from a checkpoint's.

pub mod file;
pub mod generator;
pub mod kafka;
pub mod kinesis;
pub mod lines;
pub mod pool;
pub mod stdin;

use crate::data::{Batch, ColumnData};
use crate::format::Decoder;
use crate::plan::connectors::{DataFormat, Decoding, SourceConnector};
use crate::runtime::{BadRecord, ConnectorError, EventTime, Source};

/// The connector for a source's settings.
///
/// # Errors
/// When the connector is not available in this build, or cannot work as configured.
pub fn build(
    connector: &SourceConnector,
    bounded: bool,
) -> Result<Box<dyn Source>, ConnectorError> {
    match connector {
        SourceConnector::File(f) => Ok(Box::new(file::FileSource::new(f.clone()))),
        SourceConnector::Stdin(s) => Ok(Box::new(stdin::StdinSource::new(s.decoding.clone()))),
        SourceConnector::Generator(g) => {
            if bounded && g.count.is_none() {
                return Err(ConnectorError::user(
                    "this generator has no `count`, so `--bounded` cannot end it; set `count:`",
                ));
            }
            Ok(Box::new(generator::GeneratorSource::new(g.clone())))
        }
        SourceConnector::Kafka(k) => Ok(Box::new(kafka::KafkaSource::new(k.clone()))),
        SourceConnector::Kinesis(k) => Ok(Box::new(kinesis::KinesisSource::new(k.clone()))),
    }
}

/// The decoder for a source's format and schema.
pub fn decoder(decoding: &Decoding, schema: &crate::data::Schema) -> Box<dyn Decoder> {
    match decoding.format {
        DataFormat::Json => Box::new(
            crate::format::json::JsonDecoder::new(schema).with_strict_types(decoding.strict_types),
        ),
        DataFormat::Csv => Box::new(
            crate::format::csv::CsvDecoder::new(
                schema,
                decoding.csv_delimiter,
                decoding.csv_header,
            )
            .with_strict_types(decoding.strict_types),
        ),
    }
}

/// Fills `batch.times` from the event-time column; rows without an event time become bad
/// records. `origin` gives a row's line number and its bytes as read, when the source has
/// them (otherwise the dead letter holds the row as JSON).
pub fn extract_event_time<'c>(
    batch: &mut Batch,
    event_time: &EventTime,
    schema: &crate::data::Schema,
    origin: &dyn Fn(usize) -> Option<(u64, &'c [u8])>,
    bad: &mut Vec<BadRecord>,
) {
    let column = &batch.columns[event_time.column];
    let unit = event_time.epoch_unit_ms.unwrap_or(1);
    let values = match &column.data {
        ColumnData::Int(v) | ColumnData::Timestamp(v) => v,
        _ => return,
    };
    let mut times = Vec::with_capacity(batch.num_rows);
    let mut keep: Option<Vec<bool>> = None;
    for (row, &value) in values.iter().enumerate().take(batch.num_rows) {
        if column.is_null(row) {
            let field = &schema.fields[event_time.column].name;
            let (line, raw) = match origin(row) {
                Some((line, raw)) => (line, raw.to_vec()),
                None => (
                    0,
                    crate::data::row_json(schema, &batch.columns, row).into_bytes(),
                ),
            };
            bad.push(BadRecord {
                raw,
                error: format!("missing event time: field `{field}` is null or absent"),
                line,
                offset: None,
            });
            keep.get_or_insert_with(|| vec![true; batch.num_rows])[row] = false;
            continue;
        }
        times.push(value.saturating_mul(unit));
    }
    if let Some(keep) = keep {
        let times_kept = times;
        *batch = batch.filter(&keep);
        batch.times = times_kept;
    } else {
        batch.times = times;
    }
}
