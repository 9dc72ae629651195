//! The Kafka source (`type: kafka`): a member of a consumer group reading one or more topics
//! (or every topic matching a pattern) through librdkafka.
//!
//! **Threads.** The source thread serves the group (rebalances, errors) and pulls fetched
//! messages in large batches from one queue that every assigned partition feeds. It copies
//! each partition's messages into runs; a pool decodes runs in parallel and forwards them to
//! the engine in order ([`super::pool`]), so consuming is a memory copy per message and the
//! decoding scales with cores, as for files.
//!
//! **Positions.** A partition is named `topic/partition`; the position after a run is the
//! offset of the next record (`Offset::Next`). A run restored from a checkpoint starts each
//! partition at the checkpoint's offset, not at the group's. Offsets are committed to the
//! group only when the engine says that everything before them is safe: when a checkpoint
//! covering them completes, or, without checkpoints, when a bounded run ended and every sink
//! published everything. So a crash never loses a record and the group's lag is what is left
//! to do.
//!
//! **Rebalances.** Processes sharing a group split the partitions (cooperative-sticky
//! assignment, so a member joining or leaving moves only the partitions it must). A member
//! giving partitions up hands them over exactly: it sends what it read from them, the engine
//! takes a checkpoint, and the offsets of that checkpoint are committed before the partitions
//! go, so the next owner starts right after the last record this process applied. Window
//! state cannot move between processes: see the README on scale-out.
//!
//! **Bounded runs** stop each partition at the first partition-end event, i.e. at its end as
//! of when the run caught up with it (not at the broker's high watermark, which some brokers
//! report wrongly).

use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::{CStr, CString, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rdkafka::bindings as rdsys;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::topic_partition_list::{Offset as KafkaOffset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;

mod read_ahead;

use read_ahead::{AheadFrom, AheadPartition, ReadAhead};

use super::extract_event_time;
use super::pool::{Decoded, OrderedPool, Worker, worker_count};
use crate::data::{Batch, Column, DataType};
use crate::format::Decoder;
use crate::kafka;
use crate::plan::connectors::{KafkaMetadata, KafkaSource as Settings, KafkaStart};
use crate::runtime::{
    BadRecord, ConnectorError, Offset, Position, Source, SourceContext, SourceEvent,
};

/// Messages taken from librdkafka per call.
const FETCH_BATCH: usize = 8192;
/// A partition's run goes to the decoders when it holds this many bytes or messages.
const RUN_BYTES: usize = 512 << 10;
const RUN_MESSAGES: usize = 8192;
/// How long one wait for messages lasts (the stop flag and the group are checked between).
const WAIT_MS: i32 = 100;

/// Consumer settings streamctl chooses; `properties` may override the tunable ones.
const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    ("partition.assignment.strategy", "cooperative-sticky"),
    // A crashed member's partitions move after 6 s (the smallest session Kafka brokers
    // accept by default); raise it on networks with long pauses.
    ("session.timeout.ms", "6000"),
    ("heartbeat.interval.ms", "2000"),
    ("fetch.wait.max.ms", "100"),
    // When the pre-fetch queue is over `queued.min.messages`, librdkafka waits this long
    // before fetching again: 1 s by default, which capped a 2 M-record bounded run at about
    // 200k records/s (the queue drained in a fraction of the second, then nothing came). The
    // recheck every 20 ms costs next to nothing.
    ("fetch.queue.backoff.ms", "20"),
    ("allow.auto.create.topics", "false"),
];

pub struct KafkaSource {
    settings: Settings,
}

impl KafkaSource {
    pub fn new(settings: Settings) -> KafkaSource {
        KafkaSource { settings }
    }
}

impl Source for KafkaSource {
    fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), ConnectorError> {
        let s = &self.settings;
        let reset = match s.start {
            KafkaStart::Latest => "latest",
            _ => "earliest",
        };
        let mut defaults = CONSUMER_DEFAULTS.to_vec();
        defaults.push(("group.id", &s.group_id));
        defaults.push(("auto.offset.reset", reset));
        // Partition-end events only where they are needed: librdkafka counts one as consumed,
        // and a partition kept through a cooperative rebalance then resumes one record late.
        defaults.push((
            "enable.partition.eof",
            if ctx.bounded { "true" } else { "false" },
        ));
        let config = kafka::client_config(&s.brokers, &defaults, &s.properties)?;
        let session_ms: u64 = config
            .get("session.timeout.ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(6000);
        let group = Group::new(&ctx, s);
        let consumer: BaseConsumer<Group> = kafka::create(&config, group)?;
        let counts = kafka::check_topics(consumer.client(), &s.brokers, &s.topics)?;
        let end = BoundedEnd {
            partitions: s
                .pattern
                .is_none()
                .then(|| counts.iter().map(|(_, n)| n).sum()),
            settle: Duration::from_millis(session_ms) + SETTLE_MARGIN,
            session: Duration::from_millis(session_ms),
        };
        // Forwarding partition queues into one queue of our own must happen before any
        // partition is assigned; the queue lives as long as the consumer.
        let data_queue = DataQueue::new(consumer.client().native_ptr())?;
        consumer
            .context()
            .data_queue
            .store(data_queue.0, Ordering::SeqCst);
        ctx.completed.commit_on_close();
        let mut expected: Vec<String> = ctx
            .start
            .0
            .iter()
            .filter(|p| matches!(p.offset, Offset::Next(_)))
            .map(|p| p.partition.to_string())
            .collect();
        if s.pattern.is_none() {
            for (topic, partitions) in &counts {
                expected.extend((0..*partitions).map(|p| format!("{topic}/{p}")));
            }
        }
        consumer.context().reader().expect(expected);
        let subscription: Vec<String> = match &s.pattern {
            Some(p) => vec![format!("^({p})$")],
            None => s.topics.clone(),
        };
        let names: Vec<&str> = subscription.iter().map(String::as_str).collect();
        consumer
            .subscribe(&names)
            .map_err(|e| kafka::error("subscribing to the topics", &e))?;
        // Read while the group forms (see read_ahead.rs); without it if that cannot start.
        // After subscribing, so the join is under way meanwhile; the group's assignment is
        // applied only within `poll` on this thread, after this.
        let ahead = start_read_ahead(&consumer, &config, &ctx, s, &counts);
        consumer.context().reader().read_ahead = ahead;
        let result = consume(&consumer, &data_queue, &ctx, &end);
        // A run that ended before the group's first assignment read ahead for nothing.
        let unused = consumer.context().reader().read_ahead.take();
        drop(unused);
        // A failure goes to the engine first (the run ends with it); otherwise commit what
        // the engine says is safe once the run is over, then leave the group.
        let result = result.and_then(|()| finish(&consumer, &ctx));
        let group = consumer.context();
        group.over.store(true, Ordering::SeqCst);
        group
            .data_queue
            .store(std::ptr::null_mut(), Ordering::SeqCst);
        drop(data_queue);
        drop(consumer);
        result
    }
}

/// How long the source waits for partitions to read ahead before it checks the group again.
const READ_AHEAD_WAIT_MS: i32 = 10;
/// How long looking up the group's committed offsets for reading ahead may take (before the
/// group's assignment, and again when it comes).
const READ_AHEAD_LOOKUP: Duration = Duration::from_secs(5);
const READ_AHEAD_RECHECK: Duration = Duration::from_secs(1);

/// Starts reading the topics' partitions from where the group will start them, while the
/// group forms: checkpoint offsets, else the group's committed offsets or the earliest
/// (`start_from: latest` or a timestamp: nothing to gain). Not for patterns (the topics are
/// not known before the group assigns them).
fn start_read_ahead(
    consumer: &BaseConsumer<Group>,
    config: &rdkafka::ClientConfig,
    ctx: &SourceContext,
    s: &Settings,
    counts: &[(String, usize)],
) -> Option<ReadAhead> {
    if s.pattern.is_some() || s.read_ahead_bytes == 0 {
        return None;
    }
    let mut partitions: Vec<(String, i32, AheadFrom)> = Vec::new();
    let mut from_group = Vec::new();
    for (topic, count) in counts {
        for partition in 0..*count as i32 {
            match ctx.start.get(&format!("{topic}/{partition}")) {
                Some(Offset::Next(n)) => {
                    partitions.push((topic.clone(), partition, AheadFrom::Restored(*n)));
                }
                Some(_) => {}
                None => from_group.push((topic.clone(), partition)),
            }
        }
    }
    match s.start {
        KafkaStart::Earliest => partitions.extend(
            from_group
                .into_iter()
                .map(|(t, p)| (t, p, AheadFrom::Earliest)),
        ),
        KafkaStart::Committed if !from_group.is_empty() => {
            // Without the group's offsets, only the checkpoint's partitions are read ahead.
            let committed =
                read_ahead::committed(consumer, &from_group, READ_AHEAD_LOOKUP).unwrap_or_default();
            partitions.extend(from_group.into_iter().filter_map(|(t, p)| {
                let c = *committed.get(&(t.clone(), p))?;
                Some((t, p, AheadFrom::Committed(c)))
            }));
        }
        _ => {}
    }
    if partitions.is_empty() {
        return None;
    }
    let mut reader = consumer.context().reader();
    let partitions = partitions
        .into_iter()
        .map(|(topic, partition, from)| {
            let name = format!("{topic}/{partition}");
            AheadPartition {
                id: reader.id(&name),
                name: Arc::from(name),
                topic,
                partition,
                from,
            }
        })
        .collect();
    drop(reader);
    ReadAhead::start(config, partitions, s.read_ahead_bytes).ok()
}

/// When a bounded run may end once its partitions reached their ends.
///
/// A member of a group that also holds some of the topics' partitions is either a peer that
/// reads them (scale-out) or a process that died without leaving (a run killed and
/// restarted within the session timeout): its partitions come to us only after the broker
/// expels it. So a bounded run that does not hold every partition ends only once a session
/// timeout has passed since its last assignment without another one; one that holds them all
/// ends at once.
struct BoundedEnd {
    /// Partitions of the topics (`None` for a pattern, whose topics can change).
    partitions: Option<usize>,
    /// A session timeout and a margin.
    settle: Duration,
    session: Duration,
}

/// How long a bounded run waits for the group's first assignment before it fails (an
/// unbounded run waits as long as it takes).
const JOIN_LIMIT: Duration = Duration::from_secs(120);

/// Beyond the session timeout: time for the broker to notice an expired member and rebalance.
const SETTLE_MARGIN: Duration = Duration::from_secs(3);

/// Reads until the input ends (bounded) or a stop is requested.
fn consume(
    consumer: &BaseConsumer<Group>,
    data_queue: &DataQueue,
    ctx: &SourceContext,
    end: &BoundedEnd,
) -> Result<(), ConnectorError> {
    let group = consumer.context();
    let started = std::time::Instant::now();
    let mut messages: Vec<*mut rdsys::rd_kafka_message_t> = vec![std::ptr::null_mut(); FETCH_BATCH];
    loop {
        if ctx.stopped() {
            return Ok(());
        }
        match consumer.poll(Duration::ZERO) {
            Some(Err(e)) => handle_group_error(&e, group)?,
            // Every assigned partition feeds our queue; a message here would be lost.
            Some(Ok(_)) => {
                return Err(ConnectorError::internal(
                    "a Kafka message arrived on the group's queue instead of the source's",
                ));
            }
            None => {}
        }
        if let Some(e) = group.take_failure() {
            return Err(e);
        }
        let reading_ahead = step_read_ahead(group);
        // SAFETY: the queue and the consumer are alive; librdkafka writes at most
        // `messages.len()` message pointers, which we own until destroyed below.
        let n = unsafe {
            rdsys::rd_kafka_consume_batch_queue(
                data_queue.0,
                if reading_ahead { 0 } else { WAIT_MS },
                messages.as_mut_ptr(),
                messages.len(),
            )
        };
        let n = usize::try_from(n).unwrap_or(0);
        let mut reader = group.reader();
        for &m in &messages[..n] {
            // SAFETY: librdkafka returned these pointers to valid messages.
            let result = unsafe { reader.take(consumer, m) };
            unsafe { rdsys::rd_kafka_message_destroy(m) };
            result?;
        }
        if n < messages.len() {
            // Caught up: hand over partial runs now rather than wait for more.
            reader.submit_all()?;
        }
        if let Some((_, positions)) = ctx.completed.take() {
            reader.commit(consumer, &positions, CommitMode::Async)?;
        }
        reader.give_up_expected(end, started);
        if ctx.bounded && !reader.assigned_once && started.elapsed() >= JOIN_LIMIT {
            // Not even an empty assignment: the group never completed a rebalance for us.
            return Err(ConnectorError::external(
                format!(
                    "consumer group `{}` assigned this run no partitions (not even none) within {} s: \
                     the broker's group coordinator did not complete a rebalance (it may still \
                     wait for members of processes that died, or be stuck); run again, or use \
                     another `group_id`",
                    reader.settings.group_id,
                    JOIN_LIMIT.as_secs()
                ),
                true,
            ));
        }
        if ctx.bounded && reader.all_done() && reader.may_end(end) {
            reader.submit_all()?;
            if !reader.pool.flush() {
                return Ok(());
            }
            ctx.metrics.sources[ctx.metrics_index]
                .finished
                .store(true, Ordering::Relaxed);
            ctx.send(SourceEvent::Finished);
            return Ok(());
        }
    }
}

/// Until the group's first assignment, reads ahead (waiting briefly for it); then lets the
/// read-ahead go. Whether it is still reading ahead.
fn step_read_ahead(group: &Group) -> bool {
    let mut guard = group.reader();
    let reader = &mut *guard;
    if reader.read_ahead.is_none() {
        return false;
    }
    if reader.assigned_once {
        // Closed before what the assignment took from it goes to the decoders: its fetching
        // would compete with the group's consumer and its queue holds memory. Outside the
        // lock: closing a client can take a moment.
        let done = reader.read_ahead.take();
        drop(guard);
        drop(done);
        group.reader().submit_read_ahead();
        return false;
    }
    if let Some(ahead) = reader.read_ahead.as_mut() {
        ahead.read(READ_AHEAD_WAIT_MS, &reader.settings.metadata);
    }
    true
}

/// After reading: waits until the run is over, serving the group meanwhile, then commits the
/// newest positions the engine said are safe (synchronously: the process is about to exit).
fn finish(consumer: &BaseConsumer<Group>, ctx: &SourceContext) -> Result<(), ConnectorError> {
    let group = consumer.context();
    let mut latest = None;
    while !ctx.completed.is_closed() {
        let _ = consumer.poll(Duration::from_millis(50));
        if let Some(c) = ctx.completed.take() {
            latest = Some(c);
        }
    }
    if let Some(c) = ctx.completed.take() {
        latest = Some(c);
    }
    match latest {
        Some((_, positions)) => group
            .reader()
            .commit(consumer, &positions, CommitMode::Sync),
        None => Ok(()),
    }
}

/// Errors the group reports while running: a topic that disappeared or a fatal client
/// error stops the run; connection trouble is retried by librdkafka.
fn handle_group_error(e: &KafkaError, group: &Group) -> Result<(), ConnectorError> {
    match e {
        KafkaError::MessageConsumptionFatal(_) => Err(kafka::error("the Kafka consumer failed", e)),
        KafkaError::MessageConsumption(code) if kafka::user_code(*code) => {
            // A pattern subscription matches nothing yet: not an error.
            if group.pattern && *code == RDKafkaErrorCode::UnknownTopicOrPartition {
                return Ok(());
            }
            Err(kafka::error("reading from Kafka", e))
        }
        _ => Ok(()),
    }
}

/// The queue every assigned partition's fetched messages are forwarded to.
struct DataQueue(*mut rdsys::rd_kafka_queue_t);

impl DataQueue {
    /// A queue of `client`, which must be a live client's pointer.
    fn new(client: *mut rdsys::rd_kafka_t) -> Result<DataQueue, ConnectorError> {
        // SAFETY: the caller passes a live client.
        let q = unsafe { rdsys::rd_kafka_queue_new(client) };
        if q.is_null() {
            return Err(ConnectorError::internal(
                "librdkafka could not create a queue",
            ));
        }
        Ok(DataQueue(q))
    }
}

impl Drop for DataQueue {
    fn drop(&mut self) {
        // SAFETY: created by rd_kafka_queue_new and destroyed once.
        unsafe { rdsys::rd_kafka_queue_destroy(self.0) };
    }
}

/// Sends the fetched messages of `topic/partition` of `client` (a live client's pointer) to
/// `queue` (one of the same client's, alive).
fn forward_partition(
    client: *mut rdsys::rd_kafka_t,
    queue: *mut rdsys::rd_kafka_queue_t,
    topic: &str,
    partition: i32,
) -> Result<(), ConnectorError> {
    let c_topic = CString::new(topic)
        .map_err(|_| ConnectorError::user(format!("topic name `{topic}` holds a NUL byte")))?;
    // SAFETY: valid client and queue (the caller's promise); the partition queue handle is
    // released at once (the forwarding stays with the partition).
    unsafe {
        let q = rdsys::rd_kafka_queue_get_partition(client, c_topic.as_ptr(), partition);
        if q.is_null() {
            return Err(ConnectorError::internal(format!(
                "librdkafka has no queue for {topic}/{partition}"
            )));
        }
        rdsys::rd_kafka_queue_forward(q, queue);
        rdsys::rd_kafka_queue_destroy(q);
    }
    Ok(())
}

/// The consumer's context: librdkafka calls its rebalance handler from within `poll` on the
/// source thread, so the reader state sits behind a mutex the loop never holds across a
/// poll.
struct Group {
    reader: Mutex<Reader>,
    /// The queue partitions forward to (set once the consumer exists).
    data_queue: std::sync::atomic::AtomicPtr<rdsys::rd_kafka_queue_t>,
    failure: Mutex<Option<ConnectorError>>,
    /// The run is over: partitions are let go without a handover.
    over: AtomicBool,
    pattern: bool,
}

impl ClientContext for Group {}

impl Group {
    fn new(ctx: &SourceContext, settings: &Settings) -> Group {
        Group {
            reader: Mutex::new(Reader::new(ctx, settings)),
            data_queue: std::sync::atomic::AtomicPtr::new(std::ptr::null_mut()),
            failure: Mutex::new(None),
            over: AtomicBool::new(false),
            pattern: settings.pattern.is_some(),
        }
    }

    fn reader(&self) -> MutexGuard<'_, Reader> {
        self.reader.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fail(&self, e: ConnectorError) {
        if let Ok(mut f) = self.failure.lock()
            && f.is_none()
        {
            *f = Some(e);
        }
    }

    fn take_failure(&self) -> Option<ConnectorError> {
        self.failure.lock().ok().and_then(|mut f| f.take())
    }
}

impl ConsumerContext for Group {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let prepared = self.reader().assign(consumer, self, tpl);
                if let Err(e) = prepared {
                    self.fail(e);
                }
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let over = self.over.load(Ordering::SeqCst);
                if let Err(e) = self.reader().release(consumer, tpl, over) {
                    self.fail(e);
                }
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                self.fail(ConnectorError::external(
                    format!(
                        "consumer-group rebalance failed: {}",
                        kafka::describe_code(RDKafkaErrorCode::from(other))
                    ),
                    true,
                ));
                consumer.unassign()
            }
        };
        if let Err(e) = result {
            self.fail(kafka::error(
                "applying the group's partition assignment",
                &e,
            ));
        }
    }
}

/// One assigned partition.
struct Assigned {
    id: u32,
    name: Arc<str>,
    /// Messages read and not yet handed to the decoders.
    run: Run,
    /// The offset of the next record expected (records before it were read already).
    next: Option<i64>,
    /// Bounded: reached its end; later messages are ignored.
    done: bool,
}

/// What the source thread knows about its partitions.
struct Reader {
    ctx: SourceContext,
    settings: Settings,
    pool: OrderedPool<Run>,
    /// Assigned partitions by (topic index, partition).
    assigned: HashMap<(u32, i32), Assigned>,
    /// Topic names by index, and indexes by name and by librdkafka topic handle (messages
    /// carry the handle): no string is built per message.
    topic_names: Vec<String>,
    topic_indexes: HashMap<String, u32>,
    handles: HashMap<usize, u32>,
    /// Engine partition ids by name: a partition that comes back keeps its id.
    ids: HashMap<String, u32>,
    /// Records read while the group formed, until its first assignment takes them.
    read_ahead: Option<ReadAhead>,
    /// Runs read ahead of partitions just assigned, still to go to the decoders.
    ahead_runs: VecDeque<Run>,
    /// Partitions assigned before in this run: when they come back, the group's offset
    /// (committed when they were handed over) is where to resume, not the checkpoint's.
    seen: HashSet<String>,
    /// The group has assigned partitions at least once (possibly none).
    assigned_once: bool,
    /// When the group last assigned partitions to this member.
    assigned_at: Option<std::time::Instant>,
    /// Partitions this run expects to be assigned but does not hold yet (see
    /// [`Reader::expect`]), by name, with their engine ids.
    expected: HashMap<String, u32>,
}

impl Reader {
    fn new(ctx: &SourceContext, settings: &Settings) -> Reader {
        let value_schema = crate::data::Schema::new(
            ctx.schema.fields[..settings.value_fields.min(ctx.schema.fields.len())].to_vec(),
        );
        let workers = (0..worker_count())
            .map(|_| {
                let mut decoder = super::decoder(&settings.decoding, &value_schema);
                let ctx = ctx.clone();
                let settings = settings.clone();
                let work: Worker<Run> =
                    Box::new(move |run| decode_run(run, decoder.as_mut(), &settings, &ctx));
                work
            })
            .collect();
        Reader {
            ctx: ctx.clone(),
            settings: settings.clone(),
            pool: OrderedPool::new(ctx, workers),
            assigned: HashMap::new(),
            topic_names: Vec::new(),
            topic_indexes: HashMap::new(),
            handles: HashMap::new(),
            ids: HashMap::new(),
            read_ahead: None,
            ahead_runs: VecDeque::new(),
            seen: HashSet::new(),
            assigned_once: false,
            assigned_at: None,
            expected: HashMap::new(),
        }
    }

    fn topic_index(&mut self, topic: &str) -> u32 {
        if let Some(i) = self.topic_indexes.get(topic) {
            return *i;
        }
        let i = self.topic_names.len() as u32;
        self.topic_names.push(topic.to_string());
        self.topic_indexes.insert(topic.to_string(), i);
        i
    }

    /// Opens `names` for the watermark before the group assigns them: the partitions of the
    /// topics and those of the checkpoint being resumed. Until a partition is assigned it
    /// holds the watermark where the checkpoint had it (or where it is). Without this, a run
    /// that gets some partitions first (a killed run's member still holds the others until
    /// the broker expels it, a session timeout later) advances the watermark on those alone,
    /// and the others' records, read seconds later, are all late.
    fn expect(&mut self, names: impl IntoIterator<Item = String>) {
        for name in names {
            if self.expected.contains_key(&name) {
                continue;
            }
            let id = self.id(&name);
            self.expected.insert(name.clone(), id);
            self.ctx.send(SourceEvent::Opened {
                partition: id,
                name,
            });
        }
    }

    /// Partitions still not assigned long after any dead member would have been expelled
    /// belong to a live peer: they stop holding the watermark (idle, not ended: their
    /// positions stay as they were). That is two session timeouts and a margin after the
    /// start or the last assignment (a killed run's member is expelled within one; the
    /// rebalance that follows can take most of another on some brokers). The engine's
    /// `idle_timeout` may do it sooner; an assignment opens the partition again and its
    /// idle clock starts over.
    fn give_up_expected(&mut self, end: &BoundedEnd, started: std::time::Instant) {
        if self.expected.is_empty() {
            return;
        }
        let since = self.assigned_at.unwrap_or(started).max(started);
        if since.elapsed() < end.settle + end.session {
            return;
        }
        for (_, id) in self.expected.drain() {
            self.ctx.send(SourceEvent::Idle { partition: id });
        }
    }

    /// The engine's id of partition `name`: a partition that comes back keeps its id.
    fn id(&mut self, name: &str) -> u32 {
        match self.ids.get(name) {
            Some(id) => *id,
            None => {
                let id = self.ids.len() as u32;
                self.ids.insert(name.to_string(), id);
                id
            }
        }
    }

    fn all_done(&self) -> bool {
        self.assigned_once && self.assigned.values().all(|a| a.done)
    }

    /// Whether no other member can still hand partitions to this one (see [`BoundedEnd`]).
    fn may_end(&self, end: &BoundedEnd) -> bool {
        end.partitions.is_some_and(|n| self.assigned.len() >= n)
            || self.assigned_at.is_some_and(|t| t.elapsed() >= end.settle)
    }

    /// Partitions are being assigned: picks where each starts, routes its messages to our
    /// queue, and tells the engine it opened.
    fn assign(
        &mut self,
        consumer: &BaseConsumer<Group>,
        group: &Group,
        tpl: &mut TopicPartitionList,
    ) -> Result<(), ConnectorError> {
        self.assigned_once = true;
        self.assigned_at = Some(std::time::Instant::now());
        let mut by_time = TopicPartitionList::new();
        let mut finished = Vec::new();
        let partitions: Vec<(String, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (e.topic().to_string(), e.partition()))
            .collect();
        let committed_now = self.committed_now(consumer, &partitions);
        let mut taken: Vec<(u64, Run)> = Vec::new();
        for (topic, partition) in partitions {
            let name = format!("{topic}/{partition}");
            let restored = if self.seen.contains(&name) {
                None
            } else {
                self.ctx.start.get(&name).cloned()
            };
            // Where the group starts the partition, and that start in the read-ahead's terms
            // (`None`: nothing read ahead can match it).
            let (mut start, from) = match restored {
                Some(Offset::Next(n)) => (KafkaOffset::Offset(n), Some(AheadFrom::Restored(n))),
                Some(Offset::End) if self.ctx.bounded => {
                    finished.push((self.topic_index(&topic), partition));
                    (KafkaOffset::End, None)
                }
                _ if self.seen.contains(&name) => (KafkaOffset::Stored, None),
                _ => match self.settings.start {
                    KafkaStart::Committed => (
                        KafkaOffset::Stored,
                        committed_now
                            .get(&(topic.clone(), partition))
                            .map(|c| AheadFrom::Committed(*c)),
                    ),
                    KafkaStart::Earliest => (KafkaOffset::Beginning, Some(AheadFrom::Earliest)),
                    KafkaStart::Latest => (KafkaOffset::End, None),
                    KafkaStart::Timestamp => {
                        let ts = self.settings.start_timestamp_ms.unwrap_or(0);
                        by_time
                            .add_partition_offset(&topic, partition, KafkaOffset::Offset(ts))
                            .map_err(|e| kafka::error("looking up offsets by time", &e))?;
                        (KafkaOffset::Stored, None)
                    }
                },
            };
            // What was read ahead from the same start goes first; the group continues after.
            let ahead = from.and_then(|from| {
                self.read_ahead
                    .as_mut()?
                    .take_partition(&topic, partition, from)
            });
            if let Some((_, continue_at)) = &ahead {
                start = KafkaOffset::Offset(*continue_at);
            }
            let next = match start {
                KafkaOffset::Offset(n) => Some(n),
                _ => None,
            };
            tpl.set_partition_offset(&topic, partition, start)
                .map_err(|e| kafka::error("setting a start offset", &e))?;
            self.forward(consumer, group, &topic, partition)?;
            let id = self.id(&name);
            self.expected.remove(&name);
            self.seen.insert(name.clone());
            let name: Arc<str> = Arc::from(name);
            self.ctx.send(SourceEvent::Opened {
                partition: id,
                name: name.to_string(),
            });
            let key = (self.topic_index(&topic), partition);
            self.assigned.insert(
                key,
                Assigned {
                    id,
                    name: name.clone(),
                    run: Run::new(id, name, partition),
                    next,
                    done: false,
                },
            );
            if let Some((runs, _)) = ahead {
                taken.extend(runs.into_iter().filter(|(_, r)| !r.is_empty()));
            }
        }
        // Handed to the decoders by the source loop, after the assignment took effect (so the
        // group's fetching overlaps their decoding) and before any message of the group's
        // consumer is taken; in the order they were read across partitions, as the group's
        // consumer would have delivered them (one partition's runs after another's would
        // leave the later partitions without records long enough to go idle, and their
        // records late).
        taken.sort_unstable_by_key(|(order, _)| *order);
        self.ahead_runs
            .extend(taken.into_iter().map(|(_, run)| run));
        if by_time.count() > 0 {
            let found = consumer
                .offsets_for_times(by_time, kafka::CONNECT_TIMEOUT)
                .map_err(|e| kafka::error("looking up offsets by time", &e))?;
            for elem in found.elements() {
                // No record at or after the time: start at the end.
                let offset = match elem.offset() {
                    KafkaOffset::Offset(n) => KafkaOffset::Offset(n),
                    _ => KafkaOffset::End,
                };
                tpl.set_partition_offset(elem.topic(), elem.partition(), offset)
                    .map_err(|e| kafka::error("setting a start offset", &e))?;
            }
        }
        for key in finished {
            if let Some(a) = self.assigned.get_mut(&key) {
                a.done = true;
                self.ctx.send(SourceEvent::Closed { partition: a.id });
            }
        }
        Ok(())
    }

    /// The group's committed offsets now (`None`: none) of those of `partitions` that were
    /// read ahead from an earlier lookup of them: another member may have committed since.
    fn committed_now(
        &self,
        consumer: &BaseConsumer<Group>,
        partitions: &[(String, i32)],
    ) -> HashMap<(String, i32), Option<i64>> {
        let Some(ahead) = &self.read_ahead else {
            return HashMap::new();
        };
        let wanted: Vec<(String, i32)> = ahead
            .committed_partitions()
            .filter(|(t, p)| partitions.iter().any(|(t2, p2)| t2 == t && p2 == p))
            .map(|(t, p)| (t.to_string(), p))
            .collect();
        if wanted.is_empty() {
            return HashMap::new();
        }
        // A failed lookup leaves them out: they are read again from the group's start. Short:
        // this runs inside the rebalance callback, holding back the whole assignment.
        read_ahead::committed(consumer, &wanted, READ_AHEAD_RECHECK).unwrap_or_default()
    }

    /// Sends `topic/partition`'s fetched messages to our queue.
    fn forward(
        &self,
        consumer: &BaseConsumer<Group>,
        group: &Group,
        topic: &str,
        partition: i32,
    ) -> Result<(), ConnectorError> {
        let data_queue = group.data_queue.load(Ordering::SeqCst);
        if data_queue.is_null() {
            return Ok(());
        }
        forward_partition(consumer.client().native_ptr(), data_queue, topic, partition)
    }

    /// Partitions are being taken away: hands what was read from them to the engine, which
    /// takes a checkpoint (with checkpoints); their offsets are committed before they go.
    fn release(
        &mut self,
        consumer: &BaseConsumer<Group>,
        tpl: &TopicPartitionList,
        over: bool,
    ) -> Result<(), ConnectorError> {
        // Runs read ahead go before anything else of these partitions (the source loop
        // hands them over right after the assignment; this is for safety).
        self.submit_read_ahead();
        let mut ids = Vec::new();
        let released: Vec<(u32, i32)> = tpl
            .elements()
            .iter()
            .map(|e| (self.topic_index(e.topic()), e.partition()))
            .collect();
        for key in &released {
            if let Some(a) = self.assigned.get_mut(key) {
                let run = std::mem::replace(&mut a.run, Run::new(a.id, a.name.clone(), key.1));
                if !run.is_empty() && !over && !self.pool.submit(run) {
                    return Ok(());
                }
                ids.push(a.id);
            }
        }
        if over || self.ctx.stopped() || ids.is_empty() {
            for key in released {
                self.assigned.remove(&key);
            }
            return Ok(());
        }
        if !self.pool.flush() {
            return Ok(());
        }
        let (reply, answer) = channel();
        self.ctx.send(SourceEvent::Released {
            partitions: ids,
            reply,
        });
        // The engine answers once it has applied everything sent before (and taken a
        // checkpoint); it drops the request if the run ends first.
        let positions = answer.recv().ok().flatten();
        // Only the partitions handed over: the others' offsets go with the next checkpoint.
        let handed: Vec<Position> = positions
            .unwrap_or_default()
            .into_iter()
            .filter(|p| {
                released.iter().any(|k| {
                    self.assigned
                        .get(k)
                        .is_some_and(|a| *a.name == *p.partition)
                })
            })
            .collect();
        let result = self.commit(consumer, &handed, CommitMode::Sync);
        for key in released {
            self.assigned.remove(&key);
        }
        result
    }

    /// Commits `positions` of partitions this process holds (others' progress is theirs).
    fn commit(
        &self,
        consumer: &BaseConsumer<Group>,
        positions: &[Position],
        mode: CommitMode,
    ) -> Result<(), ConnectorError> {
        let mut tpl = TopicPartitionList::new();
        for (key, a) in &self.assigned {
            let Some(p) = positions.iter().find(|p| *p.partition == *a.name) else {
                continue;
            };
            let offset = match (&p.offset, a.next) {
                (Offset::Next(n), _) => *n,
                // A partition that ended (bounded): where this run stopped reading it.
                (Offset::End, Some(n)) => n,
                _ => continue,
            };
            let topic = &self.topic_names[key.0 as usize];
            tpl.add_partition_offset(topic, key.1, KafkaOffset::Offset(offset))
                .map_err(|e| kafka::error("committing offsets", &e))?;
        }
        if tpl.count() == 0 {
            return Ok(());
        }
        match consumer.commit(&tpl, mode) {
            Ok(()) => Ok(()),
            // An asynchronous commit that fails is superseded by the next one.
            Err(_) if matches!(mode, CommitMode::Async) => Ok(()),
            Err(e) => Err(kafka::error(
                "committing offsets to the consumer group (the next run re-reads from the previous commit)",
                &e,
            )),
        }
    }

    /// Takes one message from librdkafka into its partition's run.
    ///
    /// # Safety
    /// `m` must point to a valid message returned by librdkafka.
    unsafe fn take(
        &mut self,
        consumer: &BaseConsumer<Group>,
        m: *mut rdsys::rd_kafka_message_t,
    ) -> Result<(), ConnectorError> {
        // SAFETY: the caller guarantees `m` is valid.
        let msg = unsafe { &*m };
        let topic_handle = msg.rkt as usize;
        let topic_index = match self.handles.get(&topic_handle) {
            Some(i) => *i,
            None => {
                if msg.rkt.is_null() {
                    return self.message_error(msg);
                }
                // SAFETY: a valid topic handle has a NUL-terminated name.
                let name = unsafe { CStr::from_ptr(rdsys::rd_kafka_topic_name(msg.rkt)) };
                let i = self.topic_index(&name.to_string_lossy());
                self.handles.insert(topic_handle, i);
                i
            }
        };
        let topic = &self.topic_names[topic_index as usize];
        let key = (topic_index, msg.partition);
        let bounded = self.ctx.bounded;
        let Some(a) = self.assigned.get_mut(&key) else {
            // Fetched before the partition was taken away: its new owner reads it.
            return Ok(());
        };
        if a.done {
            return Ok(());
        }
        if msg.err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__PARTITION_EOF {
            if bounded {
                a.done = true;
                let (id, name, partition) = (a.id, a.name.clone(), key.1);
                if a.next.is_none() {
                    a.next = Some(msg.offset);
                }
                let run = std::mem::replace(&mut a.run, Run::new(id, name, partition));
                if !run.is_empty() && !self.pool.submit(run) {
                    return Ok(());
                }
                if self.pool.flush() {
                    self.ctx.send(SourceEvent::Closed { partition: id });
                }
                let _ = consumer;
            }
            return Ok(());
        }
        if msg.err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
            return self.message_error(msg);
        }
        if a.next.is_some_and(|n| msg.offset < n) {
            // Already read (librdkafka may deliver a fetch twice around a seek).
            return Ok(());
        }
        a.next = Some(msg.offset + 1);
        // SAFETY: `m` is valid; payload/key point to `len` bytes owned by the message.
        unsafe { a.run.push(m, &self.settings.metadata, topic) };
        if a.run.is_full() {
            let (id, name, partition) = (a.id, a.name.clone(), key.1);
            let run = std::mem::replace(&mut a.run, Run::new(id, name, partition));
            if !self.pool.submit(run) {
                return Ok(());
            }
        }
        Ok(())
    }

    fn message_error(&self, msg: &rdsys::rd_kafka_message_t) -> Result<(), ConnectorError> {
        let code = RDKafkaErrorCode::from(msg.err);
        if self.settings.pattern.is_some() && code == RDKafkaErrorCode::UnknownTopicOrPartition {
            return Ok(());
        }
        let e = KafkaError::MessageConsumption(code);
        if kafka::user_code(code) {
            Err(kafka::error("reading from Kafka", &e))
        } else {
            // Fetch errors librdkafka retries by itself.
            Ok(())
        }
    }

    /// Hands the runs read ahead of assigned partitions to the decoders (in order, before
    /// anything the group's consumer read of them).
    fn submit_read_ahead(&mut self) {
        while let Some(run) = self.ahead_runs.pop_front() {
            if self.ctx.stopped() || !self.pool.submit(run) {
                self.ahead_runs.clear();
                return;
            }
        }
    }

    /// Hands every partial run to the decoders.
    fn submit_all(&mut self) -> Result<(), ConnectorError> {
        for a in self.assigned.values_mut() {
            if a.run.is_empty() {
                continue;
            }
            let partition = a.run.kafka_partition;
            let run = std::mem::replace(&mut a.run, Run::new(a.id, a.name.clone(), partition));
            if !self.pool.submit(run) {
                break;
            }
        }
        Ok(())
    }
}

/// Consecutive messages of one partition, copied out of librdkafka: the unit the decoders
/// work on.
struct Run {
    partition: u32,
    name: Arc<str>,
    kafka_partition: i32,
    /// Every message's value, back to back; `ends[i]` is where message `i` ends.
    values: Vec<u8>,
    ends: Vec<u32>,
    offsets: Vec<i64>,
    /// Kafka timestamps (ms), -1 when a record has none.
    timestamps: Vec<i64>,
    /// Keys (when a metadata field wants them): bytes back to back, `None` for no key.
    keys: Vec<Option<std::ops::Range<usize>>>,
    key_bytes: Vec<u8>,
    /// Headers as JSON objects (when a metadata field wants them).
    headers: Vec<String>,
    /// Bytes of text in `headers`.
    header_bytes: usize,
    topic: String,
}

impl Run {
    fn new(partition: u32, name: Arc<str>, kafka_partition: i32) -> Run {
        Run {
            partition,
            name,
            kafka_partition,
            values: Vec::new(),
            ends: Vec::new(),
            offsets: Vec::new(),
            timestamps: Vec::new(),
            keys: Vec::new(),
            key_bytes: Vec::new(),
            headers: Vec::new(),
            header_bytes: 0,
            topic: String::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn is_full(&self) -> bool {
        self.values.len() >= RUN_BYTES || self.ends.len() >= RUN_MESSAGES
    }

    /// Copies message `m` in.
    ///
    /// # Safety
    /// `m` must point to a valid message.
    unsafe fn push(
        &mut self,
        m: *mut rdsys::rd_kafka_message_t,
        metadata: &[KafkaMetadata],
        topic: &str,
    ) {
        // SAFETY: the caller guarantees `m` is valid; payload and key are `len` bytes.
        let msg = unsafe { &*m };
        if self.values.capacity() == 0 {
            self.values.reserve(RUN_BYTES + 4096);
            self.ends.reserve(1024);
            self.offsets.reserve(1024);
            self.timestamps.reserve(1024);
        }
        if !msg.payload.is_null() {
            let value = unsafe { std::slice::from_raw_parts(msg.payload as *const u8, msg.len) };
            self.values.extend_from_slice(value);
        }
        self.ends.push(self.values.len() as u32);
        self.offsets.push(msg.offset);
        let mut ts_type = rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
        self.timestamps
            .push(unsafe { rdsys::rd_kafka_message_timestamp(m, &mut ts_type) });
        if metadata.contains(&KafkaMetadata::Key) {
            if msg.key.is_null() {
                self.keys.push(None);
            } else {
                let key = unsafe { std::slice::from_raw_parts(msg.key as *const u8, msg.key_len) };
                let start = self.key_bytes.len();
                self.key_bytes.extend_from_slice(key);
                self.keys.push(Some(start..self.key_bytes.len()));
            }
        }
        if metadata.contains(&KafkaMetadata::Headers) {
            let headers = unsafe { headers_json(m) };
            self.header_bytes += headers.len();
            self.headers.push(headers);
        }
        if self.topic.is_empty() {
            self.topic = topic.to_string();
        }
    }

    /// Heap bytes the run's buffers hold (their capacities; headers by their text).
    fn heap_bytes(&self) -> usize {
        self.values.capacity()
            + self.ends.capacity() * std::mem::size_of::<u32>()
            + (self.offsets.capacity() + self.timestamps.capacity()) * std::mem::size_of::<i64>()
            + self.keys.capacity() * std::mem::size_of::<Option<std::ops::Range<usize>>>()
            + self.key_bytes.capacity()
            + self.header_bytes
    }

    fn value(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.values[start..self.ends[i] as usize]
    }
}

/// A message's headers as a JSON object of text values (NULL values as `null`; a name that
/// repeats keeps its last value).
///
/// # Safety
/// `m` must point to a valid message.
unsafe fn headers_json(m: *mut rdsys::rd_kafka_message_t) -> String {
    let mut map = serde_json::Map::new();
    let mut headers: *mut rdsys::rd_kafka_headers_t = std::ptr::null_mut();
    // SAFETY: valid message; the headers belong to it and are only read here.
    unsafe {
        if rdsys::rd_kafka_message_headers(m, &mut headers)
            == RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR
        {
            let mut i = 0;
            loop {
                let mut name: *const std::ffi::c_char = std::ptr::null();
                let mut value: *const c_void = std::ptr::null();
                let mut size = 0usize;
                if rdsys::rd_kafka_header_get_all(headers, i, &mut name, &mut value, &mut size)
                    != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR
                {
                    break;
                }
                let name = CStr::from_ptr(name).to_string_lossy().into_owned();
                let value = if value.is_null() {
                    serde_json::Value::Null
                } else {
                    let bytes = std::slice::from_raw_parts(value as *const u8, size);
                    serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned())
                };
                map.insert(name, value);
                i += 1;
            }
        }
    }
    serde_json::Value::Object(map).to_string()
}

/// Decodes a run: values into the value fields, metadata into the fields after them, event
/// time extracted; undecodable records become bad records naming their offset.
fn decode_run(
    run: Run,
    decoder: &mut dyn Decoder,
    settings: &Settings,
    ctx: &SourceContext,
) -> Decoded {
    let value_types: Vec<DataType> = ctx.schema.fields[..settings.value_fields]
        .iter()
        .map(|f| f.data_type.clone())
        .collect();
    let n = run.ends.len();
    let mut batch = Batch::with_capacity(&value_types, n);
    let mut bad = Vec::new();
    let mut good: Vec<usize> = Vec::with_capacity(n);
    for i in 0..n {
        let value = run.value(i);
        match decoder.decode_message(value, &mut batch) {
            Ok(()) => good.push(i),
            Err(error) => bad.push(BadRecord {
                raw: value.to_vec(),
                error,
                line: 0,
                offset: Some(run.offsets[i].to_string()),
            }),
        }
    }
    for what in &settings.metadata {
        batch.columns.push(metadata_column(*what, &run, &good));
    }
    if let Some(et) = &ctx.event_time {
        // Rows without an event time become bad records; they name their offsets.
        let column = &batch.columns[et.column];
        let missing: Vec<i64> = (0..batch.num_rows)
            .filter(|&row| column.is_null(row))
            .map(|row| run.offsets[good[row]])
            .collect();
        let before = bad.len();
        let origin = |row: usize| Some((0, run.value(good[row])));
        extract_event_time(&mut batch, et, &ctx.schema, &origin, &mut bad);
        for (b, offset) in bad[before..].iter_mut().zip(missing) {
            b.offset = Some(offset.to_string());
        }
        // In offset order (the text of decimal offsets does not sort as numbers).
        bad.sort_by_cached_key(|b| b.offset.as_deref().and_then(|o| o.parse::<i64>().ok()));
    }
    let next = run.offsets.last().map_or(0, |o| o + 1);
    Decoded {
        partition: run.partition,
        batch,
        bad,
        bytes: run.values.len() as u64,
        position: Some(Position::new(run.name.to_string(), Offset::Next(next))),
    }
}

/// The column of one metadata field for the decoded rows `good` of `run`.
fn metadata_column(what: KafkaMetadata, run: &Run, good: &[usize]) -> Column {
    let mut column = Column::new(&what.data_type(), good.len());
    for &i in good {
        match what {
            KafkaMetadata::Key => match &run.keys[i] {
                Some(range) => {
                    column.push_str(&String::from_utf8_lossy(&run.key_bytes[range.clone()]))
                }
                None => column.push_null(),
            },
            KafkaMetadata::Headers => column.push_str(&run.headers[i]),
            KafkaMetadata::Topic => column.push_str(&run.topic),
            KafkaMetadata::Partition => column.push_int(i64::from(run.kafka_partition)),
            KafkaMetadata::Offset => column.push_int(run.offsets[i]),
            KafkaMetadata::Timestamp => match run.timestamps[i] {
                t if t >= 0 => column.push_int(t),
                _ => column.push_null(),
            },
        }
    }
    column
}
