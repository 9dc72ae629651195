//! What the Kafka source, the Kafka sink and `streamctl replay` share: librdkafka client
//! settings (streamctl's defaults, the user's properties, the ones streamctl owns), the
//! reachability check every client makes first, and librdkafka errors in the runtime's
//! domains. Messages never show the values of secret properties.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::client::{Client, ClientContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::Producer as _;

use crate::runtime::ConnectorError;

/// How long a client waits for the brokers to answer at start-up before it gives up with a
/// clear error (rather than retrying forever, as librdkafka would).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether this build can speak TLS to brokers (the `kafka-tls` cargo feature).
pub const TLS_BUILT_IN: bool = cfg!(feature = "kafka-tls");

/// Why a consumer property cannot be set in `properties`, when streamctl owns it.
pub fn reserved_consumer_property(key: &str, value: &str) -> Option<&'static str> {
    let on = matches!(value.trim().to_ascii_lowercase().as_str(), "true" | "1");
    match key {
        "enable.auto.commit" | "enable.auto.offset.store" if on => Some(
            "streamctl commits offsets itself, once the checkpoint (or the bounded run) that covers them is complete",
        ),
        "group.id" => Some("set `group_id`"),
        "bootstrap.servers" | "metadata.broker.list" => Some("set `brokers`"),
        "auto.offset.reset" => Some("set `start_from`"),
        "enable.partition.eof" => Some("streamctl uses partition-end events for `run --bounded`"),
        _ => None,
    }
}

/// Why a producer property cannot be set in `properties`, when streamctl owns it.
pub fn reserved_producer_property(key: &str, _value: &str) -> Option<&'static str> {
    match key {
        "bootstrap.servers" | "metadata.broker.list" => Some("set `brokers`"),
        "transactional.id" => Some(
            "the Kafka sink does not use transactions: it is at-least-once (every record written, and flushed before a checkpoint completes)",
        ),
        _ => None,
    }
}

/// Whether a property holds a secret (its value is never printed).
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "jaas",
        "token",
        "key.pem",
        "keystore",
        "credential",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// A client configuration: `brokers`, streamctl's `defaults`, then the user's `properties`
/// (which win over the defaults). Checks that this build can do what
/// `security.protocol` and `sasl.mechanism` ask for.
///
/// # Errors
/// When the properties need TLS or SASL support this build does not have.
pub fn client_config(
    brokers: &str,
    defaults: &[(&str, &str)],
    properties: &[(String, String)],
) -> Result<ClientConfig, ConnectorError> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    config.set("client.id", "streamctl");
    for (k, v) in defaults {
        config.set(*k, *v);
    }
    for (k, v) in properties {
        config.set(k, v);
    }
    check_security(&config)?;
    Ok(config)
}

fn check_security(config: &ClientConfig) -> Result<(), ConnectorError> {
    let protocol = config
        .get("security.protocol")
        .unwrap_or("plaintext")
        .to_ascii_lowercase();
    let mechanism = config
        .get("sasl.mechanism")
        .or_else(|| config.get("sasl.mechanisms"))
        .unwrap_or("PLAIN")
        .to_ascii_uppercase();
    let tls = matches!(protocol.as_str(), "ssl" | "sasl_ssl");
    let sasl = protocol.starts_with("sasl");
    if tls && !TLS_BUILT_IN {
        return Err(ConnectorError::user(format!(
            "`security.protocol: {}` needs TLS, which this streamctl build does not include: build it with `cargo build --release --features kafka-tls` (needs OpenSSL headers, e.g. the libssl-dev package)",
            protocol.to_ascii_uppercase()
        )));
    }
    if sasl && mechanism == "GSSAPI" {
        return Err(ConnectorError::user(
            "`sasl.mechanism: GSSAPI` (Kerberos) is not supported by streamctl; use PLAIN, SCRAM-SHA-256/512 or OAUTHBEARER",
        ));
    }
    if sasl && mechanism.starts_with("SCRAM") && !TLS_BUILT_IN {
        return Err(ConnectorError::user(format!(
            "`sasl.mechanism: {mechanism}` needs OpenSSL, which this streamctl build does not include: build it with `cargo build --release --features kafka-tls`"
        )));
    }
    Ok(())
}

/// Creates a client from `config`, wording configuration errors without secret values.
///
/// # Errors
/// An invalid property (the user's), or librdkafka failing to start.
pub fn create<T, C>(config: &ClientConfig, context: C) -> Result<T, ConnectorError>
where
    C: ClientContext,
    T: rdkafka::config::FromClientConfigAndContext<C>,
{
    config.create_with_context(context).map_err(|e| match e {
        KafkaError::ClientConfig(_, description, key, value) => {
            let description = if is_secret(&key) && !value.is_empty() {
                description.replace(&value, "***")
            } else {
                description
            };
            ConnectorError::user(format!("Kafka property `{key}`: {description}"))
        }
        other => error("starting the Kafka client", &other),
    })
}

/// Waits until the brokers answer a metadata request (for `topics`, or the whole cluster),
/// and checks that each named topic exists. Returns each topic's partition count.
///
/// # Errors
/// Brokers that do not answer within [`CONNECT_TIMEOUT`] (external, retryable), or a topic
/// that does not exist (the user's).
pub fn check_topics<C: ClientContext>(
    client: &Client<C>,
    brokers: &str,
    topics: &[String],
) -> Result<Vec<(String, usize)>, ConnectorError> {
    let unreachable = |e: &KafkaError| {
        ConnectorError::external(
            format!(
                "cannot reach the Kafka brokers at {brokers} (no answer within {} s: {}); check `brokers` and that they are running",
                CONNECT_TIMEOUT.as_secs(),
                describe(e)
            ),
            true,
        )
    };
    if topics.is_empty() {
        client
            .fetch_metadata(None, CONNECT_TIMEOUT)
            .map_err(|e| unreachable(&e))?;
        return Ok(Vec::new());
    }
    let mut counts = Vec::new();
    for topic in topics {
        let metadata = client
            .fetch_metadata(Some(topic), CONNECT_TIMEOUT)
            .map_err(|e| unreachable(&e))?;
        let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else {
            return Err(missing_topic(topic, brokers));
        };
        match t.error() {
            None if !t.partitions().is_empty() => {
                counts.push((topic.clone(), t.partitions().len()))
            }
            None => return Err(missing_topic(topic, brokers)),
            Some(code) => {
                let code: RDKafkaErrorCode = code.into();
                if code == RDKafkaErrorCode::UnknownTopicOrPartition
                    || code == RDKafkaErrorCode::UnknownTopic
                {
                    return Err(missing_topic(topic, brokers));
                }
                return Err(ConnectorError::external(
                    format!(
                        "reading the metadata of topic `{topic}`: {}",
                        describe_code(code)
                    ),
                    true,
                ));
            }
        }
    }
    Ok(counts)
}

fn missing_topic(topic: &str, brokers: &str) -> ConnectorError {
    ConnectorError::user(format!(
        "topic `{topic}` does not exist on the Kafka brokers at {brokers}; create it first (or check the topic name)"
    ))
}

/// A librdkafka error as a connector error, by who must act.
pub fn error(what: &str, e: &KafkaError) -> ConnectorError {
    let message = format!("{what}: {}", describe(e));
    match e.rdkafka_error_code() {
        Some(code) if user_code(code) => ConnectorError::user(message),
        Some(RDKafkaErrorCode::Fatal) => ConnectorError::external(message, false),
        Some(code) => ConnectorError::external(message, retryable_code(code)),
        None => ConnectorError::internal(message),
    }
}

/// Error codes that a setting (or the lack of a topic or permission) causes.
pub fn user_code(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        code,
        UnknownTopicOrPartition
            | UnknownTopic
            | TopicAuthorizationFailed
            | GroupAuthorizationFailed
            | ClusterAuthorizationFailed
            | SaslAuthenticationFailed
            | Authentication
            | InvalidConfig
            | InvalidArgument
            | MessageSizeTooLarge
            | InvalidRecord
            | InvalidSessionTimeout
            | UnsupportedSASLMechanism
    )
}

/// Errors that can go away by themselves (brokers restarting, leaders moving, timeouts).
fn retryable_code(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        code,
        BrokerTransportFailure
            | AllBrokersDown
            | OperationTimedOut
            | RequestTimedOut
            | NetworkException
            | LeaderNotAvailable
            | NotLeaderForPartition
            | NotEnoughReplicas
            | NotEnoughReplicasAfterAppend
            | CoordinatorNotAvailable
            | NotCoordinator
            | CoordinatorLoadInProgress
            | RebalanceInProgress
            | TimedOutQueue
            | MessageTimedOut
            | QueueFull
    )
}

/// A librdkafka error in plain words: the code's description, not the Rust wrapper's name.
pub fn describe(e: &KafkaError) -> String {
    match e.rdkafka_error_code() {
        Some(code) => describe_code(code),
        None => e.to_string(),
    }
}

/// librdkafka's description of a code (its `Display` adds the Rust variant name first).
pub fn describe_code(code: RDKafkaErrorCode) -> String {
    let text = code.to_string();
    match text.split_once(" (") {
        Some((_, rest)) => rest.strip_suffix(')').unwrap_or(rest).to_string(),
        None => text,
    }
}

/// Producer settings streamctl chooses (the sink's and `replay`'s); `properties` may
/// override them. `murmur2_random` places keyed records on the partitions Java clients
/// (Kafka Streams, Flink) would, so keys line up with other producers of the same topic.
pub const PRODUCER_DEFAULTS: &[(&str, &str)] = &[
    ("enable.idempotence", "true"),
    ("acks", "all"),
    ("linger.ms", "20"),
    ("compression.type", "lz4"),
    ("partitioner", "murmur2_random"),
];

/// Records the first failed delivery (librdkafka reports deliveries from `poll`/`flush`).
pub struct Deliveries {
    failure: std::sync::Mutex<Option<ConnectorError>>,
}

impl ClientContext for Deliveries {}

impl rdkafka::producer::ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &rdkafka::producer::DeliveryResult<'_>, _: ()) {
        use rdkafka::message::Message;
        let Err((e, message)) = result else { return };
        let key = message.key().map_or_else(
            || "no key".to_string(),
            |k| format!("key `{}`", String::from_utf8_lossy(k)),
        );
        let value = message.payload().map_or_else(String::new, |v| {
            let text = String::from_utf8_lossy(v);
            let excerpt: String = text.chars().take(120).collect();
            let more = if excerpt.len() < text.len() {
                "…"
            } else {
                ""
            };
            format!(", value {excerpt}{more}")
        });
        let partition = match message.partition() {
            p if p >= 0 => format!(" partition {p}"),
            _ => String::new(),
        };
        let error = error(
            &format!(
                "the record with {key}{value} could not be delivered to topic `{}`{partition}",
                message.topic()
            ),
            e,
        );
        if let Ok(mut f) = self.failure.lock()
            && f.is_none()
        {
            *f = Some(error);
        }
    }
}

/// How long a flush waits for outstanding deliveries before failing.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(120);

/// An idempotent producer to one topic that reports failed deliveries as errors.
pub struct Producer {
    inner: rdkafka::producer::BaseProducer<Deliveries>,
    topic: String,
    /// Messages sent since the last flush.
    pub unflushed: u64,
}

impl Producer {
    /// Connects to `brokers` and checks that `topic` exists.
    ///
    /// # Errors
    /// Unreachable brokers, a missing topic, bad properties.
    pub fn connect(
        brokers: &str,
        topic: &str,
        properties: &[(String, String)],
    ) -> Result<Producer, ConnectorError> {
        let config = client_config(brokers, PRODUCER_DEFAULTS, properties)?;
        let inner: rdkafka::producer::BaseProducer<Deliveries> = create(
            &config,
            Deliveries {
                failure: std::sync::Mutex::new(None),
            },
        )?;
        check_topics(inner.client(), brokers, &[topic.to_string()])?;
        Ok(Producer {
            inner,
            topic: topic.to_string(),
            unflushed: 0,
        })
    }

    fn check(&self) -> Result<(), ConnectorError> {
        match self
            .inner
            .context()
            .failure
            .lock()
            .ok()
            .and_then(|mut f| f.take())
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Queues one message, waiting while librdkafka's queue is full.
    ///
    /// # Errors
    /// A failed delivery of an earlier message, or a message librdkafka refuses.
    pub fn send(
        &mut self,
        value: &[u8],
        key: Option<&[u8]>,
        headers: Option<rdkafka::message::OwnedHeaders>,
    ) -> Result<(), ConnectorError> {
        let mut record = rdkafka::producer::BaseRecord::to(&self.topic).payload(value);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(h) = headers {
            record = record.headers(h);
        }
        loop {
            match self.inner.send(record) {
                Ok(()) => {
                    self.unflushed += 1;
                    return Ok(());
                }
                Err((e, back)) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::QueueFull) => {
                    record = back;
                    self.inner.poll(Duration::from_millis(20));
                    self.check()?;
                }
                Err((e, _)) => {
                    return Err(error(&format!("sending to topic `{}`", self.topic), &e));
                }
            }
        }
    }

    /// Serves delivery reports without waiting.
    ///
    /// # Errors
    /// A failed delivery.
    pub fn poll(&self) -> Result<(), ConnectorError> {
        self.inner.poll(Duration::ZERO);
        self.check()
    }

    /// Waits until the brokers acknowledged every message sent; returns how many that was.
    ///
    /// # Errors
    /// A failed delivery, or acknowledgements that do not come within [`FLUSH_TIMEOUT`].
    pub fn flush(&mut self) -> Result<u64, ConnectorError> {
        self.inner.flush(FLUSH_TIMEOUT).map_err(|e| {
            error(
                &format!(
                    "waiting for Kafka to acknowledge {} records",
                    self.inner.in_flight_count()
                ),
                &e,
            )
        })?;
        self.check()?;
        Ok(std::mem::take(&mut self.unflushed))
    }
}
