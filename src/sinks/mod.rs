//! Sinks: where results go. Each connector lives in the file named by its `type:`; [`build`]
//! is the registry (one `match`). Sinks implement the runtime's two-phase contract
//! ([`crate::runtime::sink`]): write invisibly, prepare at checkpoints, publish on commit.

pub mod kafka;
pub mod kinesis;
pub mod messages;
pub mod object;
pub mod s3_store;
pub mod store;
pub mod stream;

use std::sync::Arc;

use crate::clock::Clock;
use crate::plan::SinkPlan;
use crate::plan::connectors::SinkConnector;
use crate::runtime::{ConnectorError, Metrics, Sink};

/// The sink for a plan node.
///
/// # Errors
/// When the sink is not available in this build or cannot work as configured.
pub fn build(
    plan: &SinkPlan,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
) -> Result<Box<dyn Sink>, ConnectorError> {
    match &plan.connector {
        SinkConnector::Object(settings) => {
            let aws = crate::aws::AwsSettings {
                region: settings.region.clone(),
                endpoint: settings.endpoint.clone(),
            };
            let store = store::open(&settings.url, &aws, settings.path_style)?;
            let template = plan
                .path
                .clone()
                .ok_or_else(|| ConnectorError::internal("object sink without a path template"))?;
            Ok(Box::new(object::ObjectSink::new(
                settings,
                template,
                plan.projection.clone(),
                store,
                metrics,
                clock,
            )))
        }
        SinkConnector::File(settings) => Ok(Box::new(stream::StreamSink::new(
            stream::Target::File {
                path: settings.path.clone(),
            },
            &settings.encoding,
            &plan.projection,
            metrics,
        ))),
        SinkConnector::Stdout(settings) => Ok(Box::new(stream::StreamSink::new(
            stream::Target::Stdout,
            &settings.encoding,
            &plan.projection,
            metrics,
        ))),
        SinkConnector::Kafka(settings) => Ok(Box::new(kafka::KafkaSink::new(
            settings,
            &plan.projection,
            plan.key.clone(),
            metrics,
        ))),
        SinkConnector::Kinesis(settings) => {
            let key = plan.key.clone().ok_or_else(|| {
                ConnectorError::internal("Kinesis sink without a partition key expression")
            })?;
            Ok(Box::new(kinesis::KinesisSink::new(
                settings,
                &plan.projection,
                key,
                metrics,
            )))
        }
    }
}
