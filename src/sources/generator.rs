//! The `generator` source: deterministic synthetic data for demos, tests and benchmarks.
//!
//! Record `i` has base time `start + i * interval`; its event time is moved up to `disorder`
//! into the past, so `max_out_of_orderness: <disorder>` never sees a late record. The same
//! seed always produces the same records.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::Ordering;

use super::extract_event_time;
use crate::data::{Batch, Column, DataType, Field, Schema};
use crate::plan::connectors::{GeneratorPreset, GeneratorSource as GeneratorConfig};
use crate::runtime::{ConnectorError, Offset, Position, Source, SourceContext, SourceEvent};

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
        GeneratorPreset::Bids => vec![
            i("auction"),
            i("bidder"),
            i("price"),
            s("channel"),
            epoch_ms("timestamp"),
        ],
    })
}

/// The preset field that holds the event time.
pub const TIME_FIELD: &str = "timestamp";

/// 2019-01-07T00:00:00Z, the day of the movie-impressions seed.
pub use crate::plan::connectors::GENERATOR_INTERVAL_MS as DEFAULT_INTERVAL_MS;
pub use crate::plan::connectors::GENERATOR_START_MS as DEFAULT_START_MS;

/// Records per batch when the generator runs as fast as it can.
const BATCH: usize = 8192;

const SYMBOLS: &[&str] = &[
    "AAPL", "MSFT", "GOOG", "AMZN", "META", "NVDA", "TSLA", "NFLX", "IBM", "ORCL",
];
const AGENTS: u64 = 200;
/// How many keys are hot (`hot_share` of the records go to them).
pub const HOT_KEYS: u64 = 10;
/// The first user, bidder and auction id (as in Nexmark).
const FIRST_ID: u64 = 1000;
const CHANNELS: &[&str] = &["Google", "Facebook", "Baidu", "Apple"];

/// SplitMix64: small, fast, and the same everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Produces the records of one generator configuration, batch by batch.
pub struct Generator {
    preset: GeneratorPreset,
    schema: Schema,
    rng: Rng,
    next: u64,
    count: Option<u64>,
    start: i64,
    interval: i64,
    disorder: i64,
    partitions: u32,
    users: u64,
    hot_share: f64,
    prices: Vec<f64>,
    /// Taxi trips under way, by when they end.
    trips: BinaryHeap<Reverse<TripUnderWay>>,
    next_trip: u64,
    batch_index: u64,
}

/// A taxi trip that has started: it ends at the first record due at or after `ends_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct TripUnderWay {
    ends_at: i64,
    id: u64,
    started_at: i64,
    passengers: i64,
}

impl Generator {
    pub fn new(config: &GeneratorConfig) -> Generator {
        Generator {
            preset: config.preset,
            schema: preset_schema(config.preset),
            rng: Rng::new(config.seed),
            next: 0,
            count: config.count,
            start: config.start_ms,
            interval: config.interval_ms.max(1),
            disorder: config.disorder_ms.max(0),
            partitions: config.partitions.max(1),
            users: config.users.max(1),
            hot_share: config.hot_share,
            prices: SYMBOLS
                .iter()
                .enumerate()
                .map(|(i, _)| 50.0 + 40.0 * i as f64)
                .collect(),
            trips: BinaryHeap::new(),
            next_trip: 0,
            batch_index: 0,
        }
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The index of the next record.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Skips to record `index` in batches of `batch` (records are a function of the seed and
    /// the order they are drawn in, so skipping regenerates them).
    pub fn skip_to(&mut self, index: u64, batch: usize) {
        while self.next < index {
            let n = ((index - self.next) as usize).min(batch);
            if self.next_batch(n).is_none() {
                break;
            }
        }
    }

    /// The next batch of up to `max` records and its partition, or `None` at the end.
    pub fn next_batch(&mut self, max: usize) -> Option<(u32, Batch)> {
        let remaining = self.count.map_or(u64::MAX, |c| c - self.next);
        let n = (max as u64).min(remaining) as usize;
        if n == 0 {
            return None;
        }
        let types: Vec<DataType> = self
            .schema
            .fields
            .iter()
            .map(|f| f.data_type.clone())
            .collect();
        let mut columns: Vec<Column> = types.iter().map(|t| Column::new(t, n)).collect();
        for _ in 0..n {
            let i = self.next;
            self.next += 1;
            let base = self
                .start
                .saturating_add((i as i64).saturating_mul(self.interval));
            let shift = if self.disorder > 0 {
                self.rng.below(self.disorder as u64 + 1) as i64
            } else {
                0
            };
            let t = base - shift;
            self.record(base, t, &mut columns);
        }
        let partition = (self.batch_index % u64::from(self.partitions)) as u32;
        self.batch_index += 1;
        Some((partition, Batch::new(columns, n)))
    }

    /// A user (bidder, auction) id: one of the hot ones for `hot_share` of the records, else
    /// any of `users`. Without hot keys it draws one number, as it always did.
    fn skewed_id(&mut self) -> u64 {
        if self.hot_share > 0.0 && self.rng.unit() < self.hot_share {
            return FIRST_ID + self.rng.below(HOT_KEYS);
        }
        FIRST_ID + self.rng.below(self.users)
    }

    /// Appends one record with event time `t`; `base` is its place in the sequence (`t`
    /// before the disorder shift).
    fn record(&mut self, base: i64, t: i64, columns: &mut [Column]) {
        let i = self.next - 1;
        match self.preset {
            GeneratorPreset::MovieImpressions => {
                let movie = 2000 + self.rng.below(50);
                let user = self.skewed_id();
                columns[0].push_str(itoa::Buffer::new().format(movie));
                columns[1].push_str(itoa::Buffer::new().format(user));
                columns[2].push_int(t);
            }
            GeneratorPreset::Bids => {
                let auction = self.skewed_id();
                let bidder = self.skewed_id();
                let price = 100 + self.rng.below(100_000);
                let channel = CHANNELS[self.rng.below(CHANNELS.len() as u64) as usize];
                columns[0].push_int(auction as i64);
                columns[1].push_int(bidder as i64);
                columns[2].push_int(price as i64);
                columns[3].push_str(channel);
                columns[4].push_int(t);
            }
            GeneratorPreset::TaxiTrips => {
                let rng = &mut self.rng;
                // A trip ends at the first record due after its duration; otherwise a new trip
                // starts. So an end event comes `durationSec` after its start (to the second,
                // whatever the disorder), and starts and ends interleave as in a real stream.
                let ending = self
                    .trips
                    .peek()
                    .is_some_and(|Reverse(trip)| trip.ends_at <= base);
                if ending && let Some(Reverse(trip)) = self.trips.pop() {
                    let airport = match rng.below(100) {
                        0..15 => Some(("JFK", 40.6413, -73.7781)),
                        15..25 => Some(("LGA", 40.7769, -73.8740)),
                        _ => None,
                    };
                    let (lat, lon) = match airport {
                        Some((_, lat, lon)) => (lat, lon),
                        None => (40.60 + rng.unit() * 0.30, -74.05 + rng.unit() * 0.30),
                    };
                    columns[0].push_str(&format!("t{}", trip.id));
                    columns[1].push_str("end");
                    columns[2].push_double((lat * 1e5).round() / 1e5);
                    columns[3].push_double((lon * 1e5).round() / 1e5);
                    columns[4].push_int(trip.passengers);
                    columns[5].push_int((t - trip.started_at).div_euclid(1000));
                    match airport {
                        Some((code, _, _)) => columns[6].push_str(code),
                        None => columns[6].push_null(),
                    }
                } else {
                    let id = self.next_trip;
                    self.next_trip += 1;
                    let lat = 40.60 + rng.unit() * 0.30;
                    let lon = -74.05 + rng.unit() * 0.30;
                    let passengers = 1 + rng.below(4) as i64;
                    let duration_ms = (300 + rng.below(3300) as i64) * 1000;
                    self.trips.push(Reverse(TripUnderWay {
                        ends_at: base.saturating_add(duration_ms),
                        id,
                        started_at: t,
                        passengers,
                    }));
                    columns[0].push_str(&format!("t{id}"));
                    columns[1].push_str("start");
                    columns[2].push_double((lat * 1e5).round() / 1e5);
                    columns[3].push_double((lon * 1e5).round() / 1e5);
                    columns[4].push_int(passengers);
                    columns[5].push_null();
                    columns[6].push_null();
                }
                columns[7].push_int(t);
            }
            GeneratorPreset::StockTicks => {
                let rng = &mut self.rng;
                let s = rng.below(SYMBOLS.len() as u64) as usize;
                // A random walk with occasional jumps, so alerts fire now and then.
                let step = (rng.unit() - 0.5) * 0.004
                    + if rng.below(500) == 0 {
                        (rng.unit() - 0.5) * 0.08
                    } else {
                        0.0
                    };
                self.prices[s] = (self.prices[s] * (1.0 + step)).max(1.0);
                columns[0].push_str(SYMBOLS[s]);
                columns[1].push_double((self.prices[s] * 100.0).round() / 100.0);
                columns[2].push_int(1 + rng.below(1000) as i64);
                columns[3].push_int(t);
            }
            GeneratorPreset::DeliveryPings => {
                let rng = &mut self.rng;
                // Agents work in shifts (two hours on, one off): only agents on shift ping, so
                // a shift change ends a session.
                let hour = t.div_euclid(3_600_000) as u64;
                let mut agent = i % AGENTS;
                while (hour + agent).is_multiple_of(3) {
                    agent = (agent + 1) % AGENTS;
                }
                let speed = 5.0 + rng.unit() * 40.0;
                columns[0].push_str(&format!("a{agent:03}"));
                columns[1].push_double(40.70 + rng.unit() * 0.1);
                columns[2].push_double(-74.00 + rng.unit() * 0.1);
                columns[3].push_double((speed * 10.0_f64).round() / 10.0);
                columns[4].push_int(t);
            }
        }
    }
}

/// The generator's one position: the index of the next record.
const POSITION: &str = "generator";

/// The generator as a pipeline source.
pub struct GeneratorSource {
    config: GeneratorConfig,
}

impl GeneratorSource {
    pub fn new(config: GeneratorConfig) -> GeneratorSource {
        GeneratorSource { config }
    }
}

impl Source for GeneratorSource {
    fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), ConnectorError> {
        let mut generator = Generator::new(&self.config);
        let partitions = self.config.partitions.max(1);
        for p in 0..partitions {
            if !ctx.send(SourceEvent::Opened {
                partition: p,
                name: format!("generator-{p}"),
            }) {
                return Ok(());
            }
        }
        if let Some(count) = self.config.count {
            ctx.set_total_records(count);
        }
        let batch_size = match self.config.rate {
            Some(rate) => ((rate / 10.0).ceil() as usize).clamp(1, BATCH),
            None => BATCH,
        };
        // A restart regenerates the records before its position and skips them; batches
        // keep their boundaries, so records land in the same partitions.
        if let Some(Offset::Next(next)) = ctx.start.get(POSITION) {
            generator.skip_to(*next as u64, batch_size);
        }
        let started = ctx.clock.now_ms();
        let mut produced: u64 = 0;
        while let Some((partition, mut batch)) = generator.next_batch(batch_size) {
            if ctx.stopped() {
                return Ok(());
            }
            produced += batch.num_rows as u64;
            let mut bad = Vec::new();
            if let Some(et) = &ctx.event_time {
                extract_event_time(&mut batch, et, generator.schema(), &|_| None, &mut bad);
            }
            // Generated records have no input bytes.
            let bytes = 0;
            let position = Position::new(POSITION, Offset::Next(generator.position() as i64));
            if !ctx.send(SourceEvent::Data {
                partition,
                batch,
                bad,
                bytes,
                position: Some(position),
            }) {
                return Ok(());
            }
            if let Some(rate) = self.config.rate {
                let due_ms = (produced as f64 / rate * 1000.0) as i64;
                let elapsed = ctx.clock.now_ms() - started;
                if due_ms > elapsed {
                    std::thread::sleep(std::time::Duration::from_millis((due_ms - elapsed) as u64));
                }
            }
        }
        for p in 0..partitions {
            ctx.send(SourceEvent::Closed { partition: p });
        }
        ctx.metrics.sources[ctx.metrics_index]
            .finished
            .store(true, Ordering::Relaxed);
        ctx.send(SourceEvent::Finished);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::data::Value;

    fn taxi_trips(disorder_ms: i64) -> Vec<(String, String, i64, Option<i64>, i64)> {
        let config = GeneratorConfig::from_config(
            &serde_json::from_value(serde_json::json!({
                "preset": "taxi_trips",
                "count": 200_000,
                "interval": "20ms",
                "disorder": format!("{disorder_ms}ms"),
            }))
            .unwrap(),
        );
        let mut generator = Generator::new(&config);
        let mut rows = Vec::new();
        while let Some((_, batch)) = generator.next_batch(4096) {
            for r in 0..batch.num_rows {
                let text = |c: usize| match batch.columns[c].value(r) {
                    Value::Str(s) => s.to_string(),
                    other => panic!("expected text, found {other:?}"),
                };
                let int = |c: usize| match batch.columns[c].value(r) {
                    Value::Int(i) => Some(i),
                    Value::Null => None,
                    other => panic!("expected an integer, found {other:?}"),
                };
                rows.push((text(0), text(1), int(4).unwrap(), int(5), int(7).unwrap()));
            }
        }
        rows
    }

    fn generated(preset: GeneratorPreset, users: u64, hot_share: f64, count: u64) -> Vec<Batch> {
        let config = GeneratorConfig {
            preset,
            count: Some(count),
            rate: None,
            seed: 7,
            partitions: 1,
            start_ms: DEFAULT_START_MS,
            interval_ms: 1,
            disorder_ms: 0,
            users,
            hot_share,
        };
        let mut generator = Generator::new(&config);
        std::iter::from_fn(|| generator.next_batch(4096).map(|(_, b)| b)).collect()
    }

    /// `users` sets how many distinct users appear; `hot_share` sends that share of records
    /// to the 10 hot ones.
    #[test]
    fn users_and_hot_share_shape_the_keys() {
        let mut users = std::collections::HashSet::new();
        for batch in generated(GeneratorPreset::MovieImpressions, 500_000, 0.0, 200_000) {
            for r in 0..batch.num_rows {
                users.insert(batch.columns[1].value(r).to_string());
            }
        }
        // 200k draws from 500k users: about 165k distinct.
        assert!((150_000..180_000).contains(&users.len()), "{}", users.len());

        let (mut hot, mut total) = (0, 0);
        let mut tail = std::collections::HashSet::new();
        for batch in generated(GeneratorPreset::Bids, 20_000, 0.5, 100_000) {
            for r in 0..batch.num_rows {
                let Value::Int(bidder) = batch.columns[1].value(r) else {
                    panic!("bidder is an integer")
                };
                assert!((1000..21_000).contains(&bidder));
                total += 1;
                if bidder < 1000 + HOT_KEYS as i64 {
                    hot += 1;
                } else {
                    tail.insert(bidder);
                }
            }
        }
        let share = f64::from(hot) / f64::from(total);
        assert!((0.49..0.52).contains(&share), "{share}");
        assert!(tail.len() > 18_000, "{}", tail.len());
    }

    /// A trip's end event comes `durationSec` after its start event (to the second), with the
    /// same passengers, once; with disorder too.
    #[test]
    fn taxi_trip_ends_match_their_duration() {
        for disorder in [0, 10_000] {
            let rows = taxi_trips(disorder);
            let mut started: HashMap<String, (i64, i64)> = HashMap::new();
            let mut ended = 0;
            for (trip, event, passengers, duration, t) in rows {
                match event.as_str() {
                    "start" => {
                        assert!(duration.is_none());
                        assert!(started.insert(trip, (t, passengers)).is_none());
                    }
                    "end" => {
                        let (start, start_passengers) =
                            started.remove(&trip).expect("an end after its start");
                        let duration = duration.expect("an end has a duration");
                        assert!((300 - 11..3600 + 11).contains(&duration), "{duration}");
                        assert!(
                            (0..1000).contains(&(t - start - duration * 1000)),
                            "trip {trip}: {start} → {t} is not {duration}s"
                        );
                        assert_eq!(passengers, start_passengers);
                        ended += 1;
                    }
                    other => panic!("event {other}"),
                }
            }
            // 200k records 20 ms apart (67 minutes): most trips end within the run.
            assert!(ended > 40_000, "{ended} trips ended");
        }
    }
}
