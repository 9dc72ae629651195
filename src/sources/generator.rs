//! The `generator` source: deterministic synthetic data for demos, tests and benchmarks.

use crate::config::source::GeneratorPreset;
use crate::data::{DataType, Field, Schema};

/// The fields a preset produces.
pub fn preset_schema(preset: GeneratorPreset) -> Schema {
    let epoch_ms = |name: &str| Field {
        name: name.to_string(),
        data_type: DataType::Int,
        epoch_unit_ms: Some(1),
    };
    let s = |name: &str| Field::new(name, DataType::String);
    let d = |name: &str| Field::new(name, DataType::Double);
    let i = |name: &str| Field::new(name, DataType::Int);
    Schema::new(match preset {
        GeneratorPreset::MovieImpressions => vec![s("movieId"), s("userId"), epoch_ms("timestamp")],
        GeneratorPreset::TaxiTrips => vec![
            s("tripId"),
            s("event"),
            d("lat"),
            d("lon"),
            i("passengers"),
            i("durationSec"),
            s("airport"),
            epoch_ms("timestamp"),
        ],
        GeneratorPreset::StockTicks => {
            vec![s("symbol"), d("price"), i("volume"), epoch_ms("timestamp")]
        }
        GeneratorPreset::DeliveryPings => {
            vec![
                s("agentId"),
                d("lat"),
                d("lon"),
                d("speedKmh"),
                epoch_ms("timestamp"),
            ]
        }
    })
}

/// The preset field that holds the event time.
pub const TIME_FIELD: &str = "timestamp";
