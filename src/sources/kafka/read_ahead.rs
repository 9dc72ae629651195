//! Reading ahead while the consumer group forms.
//!
//! A broker holds a new group's first JoinGroup so that members starting together land in one
//! generation: 3 s on Apache Kafka (`group.initial.rebalance.delay.ms`), half the session
//! timeout on the test broker. For a backfill of ten million records that was half the run.
//! Meanwhile a second client, outside the group, reads every partition from where the group
//! will start it, into runs held here (at most the source's `read_ahead`, 256 MiB by
//! default). When the group assigns a partition whose start is still the one read from, the
//! runs go to the decoders and the group's consumer continues after them; otherwise they are
//! dropped and the partition is read from the group's start as usual. So the guess costs
//! memory and broker fetches, never correctness: a partition handed over by another member
//! (which committed on the way) is simply read again from the new commit.

use std::collections::HashMap;
use std::ffi::CStr;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::bindings as rdsys;
use rdkafka::consumer::{BaseConsumer, Consumer, DefaultConsumerContext};
use rdkafka::topic_partition_list::{Offset as KafkaOffset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;

use super::{DataQueue, FETCH_BATCH, Run, forward_partition};
use crate::kafka;
use crate::plan::connectors::KafkaMetadata;
use crate::runtime::ConnectorError;

/// Where a partition's read-ahead started, in the terms the group's start is decided in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AheadFrom {
    /// A checkpoint's offset (the run resumes from it).
    Restored(i64),
    /// The group's committed offset; `None`: the group had none (so the earliest).
    Committed(Option<i64>),
    /// The earliest offset (`start_from: earliest`).
    Earliest,
}

impl AheadFrom {
    fn offset(self) -> KafkaOffset {
        match self {
            AheadFrom::Restored(n) | AheadFrom::Committed(Some(n)) => KafkaOffset::Offset(n),
            AheadFrom::Committed(None) | AheadFrom::Earliest => KafkaOffset::Beginning,
        }
    }
}

/// One partition to read ahead: its topic and number, where to start, and the engine's id
/// and name for its runs.
pub struct AheadPartition {
    pub topic: String,
    pub partition: i32,
    pub from: AheadFrom,
    pub id: u32,
    pub name: Arc<str>,
}

struct Ahead {
    spec: AheadPartition,
    /// Runs read, oldest first, each with its place in the order runs were started across
    /// partitions; the last may be partial.
    runs: Vec<(u64, Run)>,
    /// The offset after the last record read (`None`: nothing read yet).
    next: Option<i64>,
    /// An error (offset out of range, …): what was read cannot be trusted to line up.
    failed: bool,
}

pub struct ReadAhead {
    /// Declared before the consumer: destroyed first, as in the group consumer's path.
    queue: DataQueue,
    /// Kept alive: it fetches into `queue`.
    _consumer: BaseConsumer<DefaultConsumerContext>,
    partitions: Vec<Ahead>,
    /// Messages carry their topic's handle: (handle, partition) → index in `partitions`.
    by_handle: HashMap<(usize, i32), usize>,
    /// Heap bytes the runs hold (their buffers' capacities).
    bytes: usize,
    /// `read_ahead`: at most this many bytes.
    limit: usize,
    /// Runs started so far, across partitions.
    runs_started: u64,
    messages: Vec<*mut rdsys::rd_kafka_message_t>,
}

// SAFETY: the raw pointers are librdkafka's queue handle (librdkafka's queues are
// thread-safe) and a scratch array of message pointers that is empty between calls; the
// read-ahead lives in the reader behind its mutex, used by one thread at a time.
unsafe impl Send for ReadAhead {}

impl ReadAhead {
    /// Starts reading `partitions` with a client of `config` (the group consumer's settings;
    /// this client never joins the group nor commits).
    ///
    /// # Errors
    /// The client cannot be created or assigned (the caller then does without).
    pub fn start(
        config: &ClientConfig,
        partitions: Vec<AheadPartition>,
        limit: usize,
    ) -> Result<ReadAhead, ConnectorError> {
        let mut config = config.clone();
        config
            .set("enable.partition.eof", "false")
            // An offset out of range is an error here, not a silent jump: a read that does
            // not start where it was asked to is dropped.
            .set("auto.offset.reset", "error")
            // librdkafka's assign needs a `group.id` (without one it fails with "Unknown
            // group"), but this client never subscribes, so it never joins the group, and
            // never commits (`enable.auto.commit` is off and reserved). Static membership is
            // the group consumer's alone.
            .remove("group.instance.id")
            // Drained into runs as it arrives: a small pre-fetch queue is enough and keeps
            // the read-ahead's memory close to `read_ahead`.
            .set("queued.max.messages.kbytes", "16384");
        let consumer: BaseConsumer<DefaultConsumerContext> =
            kafka::create(&config, DefaultConsumerContext)?;
        let queue = DataQueue::new(consumer.client().native_ptr())?;
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            forward_partition(
                consumer.client().native_ptr(),
                queue.0,
                &p.topic,
                p.partition,
            )?;
            tpl.add_partition_offset(&p.topic, p.partition, p.from.offset())
                .map_err(|e| kafka::error("reading ahead", &e))?;
        }
        consumer
            .assign(&tpl)
            .map_err(|e| kafka::error("reading ahead", &e))?;
        Ok(ReadAhead {
            queue,
            _consumer: consumer,
            partitions: partitions
                .into_iter()
                .map(|spec| Ahead {
                    spec,
                    runs: Vec::new(),
                    next: None,
                    failed: false,
                })
                .collect(),
            by_handle: HashMap::new(),
            bytes: 0,
            limit,
            runs_started: 0,
            messages: vec![std::ptr::null_mut(); FETCH_BATCH],
        })
    }

    /// Whether the read-ahead holds all it may.
    pub fn full(&self) -> bool {
        self.bytes >= self.limit
    }

    /// Copies what has been fetched into runs, waiting up to `wait_ms` for the first
    /// message. Once full it takes no more (what was fetched is dropped, so each partition's
    /// records stay contiguous) and stops consuming (librdkafka then stops fetching when its
    /// own pre-fetch queue is full).
    pub fn read(&mut self, wait_ms: i32, metadata: &[KafkaMetadata]) {
        if self.full() {
            std::thread::sleep(Duration::from_millis(wait_ms.max(0) as u64));
            return;
        }
        // SAFETY: the queue and the consumer are alive; librdkafka writes at most
        // `messages.len()` pointers, which we own until destroyed below.
        let n = unsafe {
            rdsys::rd_kafka_consume_batch_queue(
                self.queue.0,
                wait_ms,
                self.messages.as_mut_ptr(),
                self.messages.len(),
            )
        };
        let n = usize::try_from(n).unwrap_or(0);
        for i in 0..n {
            let m = self.messages[i];
            // SAFETY: librdkafka returned a valid message, destroyed right after.
            unsafe {
                self.take(m, metadata);
                rdsys::rd_kafka_message_destroy(m);
            }
        }
    }

    /// # Safety
    /// `m` must point to a valid message.
    unsafe fn take(&mut self, m: *mut rdsys::rd_kafka_message_t, metadata: &[KafkaMetadata]) {
        // SAFETY: the caller guarantees `m` is valid.
        let msg = unsafe { &*m };
        if msg.rkt.is_null() {
            return; // a client-wide error: librdkafka retries, the group consumer reports
        }
        let key = (msg.rkt as usize, msg.partition);
        let index = match self.by_handle.get(&key) {
            Some(i) => *i,
            None => {
                // SAFETY: a valid topic handle has a NUL-terminated name.
                let topic = unsafe { CStr::from_ptr(rdsys::rd_kafka_topic_name(msg.rkt)) };
                let topic = topic.to_string_lossy();
                let Some(i) = self
                    .partitions
                    .iter()
                    .position(|a| a.spec.topic == topic && a.spec.partition == msg.partition)
                else {
                    return;
                };
                self.by_handle.insert(key, i);
                i
            }
        };
        if self.full() {
            return;
        }
        let a = &mut self.partitions[index];
        if a.failed {
            return;
        }
        if msg.err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
            a.failed = true;
            return;
        }
        if a.next.is_some_and(|n| msg.offset < n) {
            return; // delivered twice (librdkafka may around a retry)
        }
        a.next = Some(msg.offset + 1);
        if a.runs.last().is_none_or(|(_, r)| r.is_full()) {
            let run = Run::new(a.spec.id, a.spec.name.clone(), a.spec.partition);
            a.runs.push((self.runs_started, run));
            self.runs_started += 1;
        }
        let (_, run) = a.runs.last_mut().expect("pushed above");
        let before = run.heap_bytes();
        // SAFETY: `m` is valid.
        unsafe { run.push(m, metadata, &a.spec.topic) };
        self.bytes += run.heap_bytes().saturating_sub(before);
    }

    /// The partitions read from the group's committed offsets (the group's start must be
    /// checked again when it assigns them).
    pub fn committed_partitions(&self) -> impl Iterator<Item = (&str, i32)> {
        self.partitions
            .iter()
            .filter(|a| matches!(a.spec.from, AheadFrom::Committed(_)) && a.next.is_some())
            .map(|a| (a.spec.topic.as_str(), a.spec.partition))
    }

    /// Takes what was read of `topic/partition` if reading started at `from` (where the
    /// group starts it now): the runs, each with its place in the order runs were started
    /// across partitions, and the offset to continue at.
    pub fn take_partition(
        &mut self,
        topic: &str,
        partition: i32,
        from: AheadFrom,
    ) -> Option<(Vec<(u64, Run)>, i64)> {
        let a = self
            .partitions
            .iter_mut()
            .find(|a| a.spec.topic == topic && a.spec.partition == partition)?;
        if a.failed || a.spec.from != from {
            return None;
        }
        let next = a.next?;
        let runs = std::mem::take(&mut a.runs);
        a.next = None;
        Some((runs, next))
    }
}

/// Where the group will start each of `partitions` that it has no checkpoint offset for:
/// the group's committed offsets (`None` for none), looked up with the group's consumer
/// (a member or not). `None` if the lookup failed: the callers then read none of these
/// partitions ahead (or drop what they read of them).
pub fn committed<C: rdkafka::consumer::ConsumerContext>(
    consumer: &BaseConsumer<C>,
    partitions: &[(String, i32)],
    timeout: Duration,
) -> Option<HashMap<(String, i32), Option<i64>>> {
    let mut tpl = TopicPartitionList::new();
    for (topic, partition) in partitions {
        tpl.add_partition(topic, *partition);
    }
    let found = consumer.committed_offsets(tpl, timeout).ok()?;
    let mut out = HashMap::new();
    for e in found.elements() {
        let offset = match e.offset() {
            KafkaOffset::Offset(n) => Some(n),
            KafkaOffset::Invalid => None,
            _ => continue,
        };
        if e.error().is_err() {
            continue;
        }
        out.insert((e.topic().to_string(), e.partition()), offset);
    }
    Some(out)
}
