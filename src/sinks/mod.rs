//! Sinks: where results go. Each connector lives in the file named by its `type:`; [`build`]
//! is the registry (one `match`).

pub mod object;
pub mod path_template;
pub mod store;
pub mod stream;
pub mod threaded;

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::SinkConfig;
use crate::data::SchemaRef;
use crate::engine::metrics::Metrics;
use crate::engine::operator::Operator;
use crate::format::encode::EncodeOptions;
use crate::plan::SinkPlan;

/// The running sink for a plan node, on a thread of its own.
///
/// # Errors
/// When the sink cannot start (unwritable path, connector not in this build…).
pub fn build(
    name: &str,
    plan: &SinkPlan,
    input: SchemaRef,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
) -> Result<Box<dyn Operator>, String> {
    let sink = build_inline(name, plan, input, metrics, clock)?;
    Ok(Box::new(threaded::ThreadedSink::spawn(name, sink)?))
}

/// The sink itself, to run on the calling thread.
///
/// # Errors
/// As [`build`].
fn build_inline(
    name: &str,
    plan: &SinkPlan,
    _input: SchemaRef,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
) -> Result<Box<dyn Operator>, String> {
    match &plan.config {
        SinkConfig::S3(config) => {
            let store = store::open(&config.url)?;
            let template = plan
                .path
                .clone()
                .ok_or_else(|| "internal error: object sink without a path template".to_string())?;
            Ok(Box::new(object::ObjectSink::new(
                name,
                config,
                template,
                plan.projection.clone(),
                store,
                metrics,
                clock,
            )))
        }
        SinkConfig::File(config) => Ok(Box::new(stream::StreamSink::new(
            name,
            stream::Target::File {
                path: config.path.clone().into(),
            },
            &EncodeOptions {
                format: config.format,
                csv: config.csv.clone().unwrap_or_default(),
            },
            &plan.projection,
            metrics,
        )?)),
        SinkConfig::Stdout(config) => Ok(Box::new(stream::StreamSink::new(
            name,
            stream::Target::Stdout,
            &EncodeOptions {
                format: config.format,
                csv: Default::default(),
            },
            &plan.projection,
            metrics,
        )?)),
        SinkConfig::Kafka(_) => Err(
            "the Kafka sink is not in this build yet; for local runs use `stdout`, `file` or an s3 sink with a file:// URL".to_string(),
        ),
        SinkConfig::Kinesis(_) => Err(
            "the Kinesis sink is not in this build yet; for local runs use `stdout`, `file` or an s3 sink with a file:// URL".to_string(),
        ),
    }
}
