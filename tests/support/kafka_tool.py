"""An independent Kafka client for the tests (confluent-kafka, not streamctl's code).

usage: kafka_tool.py BROKERS create TOPIC PARTITIONS
       kafka_tool.py BROKERS counts TOPIC            -> JSON {partition: records}
       kafka_tool.py BROKERS committed GROUP TOPIC   -> JSON {partition: offset or -1}
       kafka_tool.py BROKERS dump TOPIC              -> JSON lines {partition, offset, key, value, headers, timestamp}
       kafka_tool.py BROKERS produce TOPIC < lines   (each line JSON {key, value, timestamp[, partition]})
       kafka_tool.py BROKERS offsets-for-times TOPIC MS -> JSON {partition: first offset at or after MS, -1 for none}

Partition ends are found with partition-EOF events: the test broker's high watermark is wrong.
"""
import json
import sys
import uuid

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def partitions(brokers, topic):
    admin = AdminClient({"bootstrap.servers": brokers})
    md = admin.list_topics(topic, timeout=10)
    return sorted(md.topics[topic].partitions)


def read_all(brokers, topic):
    """Every record of every partition, from the beginning to the end as of now."""
    parts = partitions(brokers, topic)
    c = Consumer({
        "bootstrap.servers": brokers,
        "group.id": "kafka-tool-" + uuid.uuid4().hex,
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    })
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    done, out = set(), []
    while len(done) < len(parts):
        m = c.poll(10)
        if m is None:
            raise SystemExit("no record or partition end within 10 s")
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                done.add(m.partition())
                continue
            raise SystemExit(str(m.error()))
        out.append(m)
    c.close()
    return parts, out


def main():
    brokers, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if cmd == "create":
        topic, n = args[0], int(args[1])
        admin = AdminClient({"bootstrap.servers": brokers})
        fs = admin.create_topics([NewTopic(topic, n, 1)])
        for f in fs.values():
            f.result(15)
    elif cmd == "counts":
        parts, records = read_all(brokers, args[0])
        counts = {p: 0 for p in parts}
        for m in records:
            counts[m.partition()] += 1
        print(json.dumps(counts))
    elif cmd == "committed":
        group, topic = args
        c = Consumer({"bootstrap.servers": brokers, "group.id": group, "enable.auto.commit": False})
        tps = c.committed([TopicPartition(topic, p) for p in partitions(brokers, topic)], timeout=10)
        print(json.dumps({tp.partition: tp.offset for tp in tps}))
        c.close()
    elif cmd == "dump":
        _, records = read_all(brokers, args[0])
        for m in records:
            print(json.dumps({
                "partition": m.partition(),
                "offset": m.offset(),
                "key": None if m.key() is None else m.key().decode(),
                "value": m.value().decode(),
                "headers": {k: (None if v is None else v.decode()) for k, v in (m.headers() or [])},
                "timestamp": m.timestamp()[1],
            }))
    elif cmd == "offsets-for-times":
        topic, ms = args[0], int(args[1])
        c = Consumer({"bootstrap.servers": brokers, "group.id": "kafka-tool-" + uuid.uuid4().hex})
        tps = c.offsets_for_times([TopicPartition(topic, p, ms) for p in partitions(brokers, topic)], timeout=10)
        print(json.dumps({tp.partition: tp.offset for tp in tps}))
        c.close()
    elif cmd == "produce":
        p = Producer({"bootstrap.servers": brokers, "acks": "all", "enable.idempotence": True})
        failed = []
        for line in sys.stdin:
            r = json.loads(line)
            while True:
                try:
                    p.produce(args[0], value=r["value"].encode(), key=r["key"].encode(),
                              timestamp=r["timestamp"], partition=r.get("partition", -1),
                              on_delivery=lambda err, _m: err and failed.append(str(err)))
                    break
                except BufferError:  # the local queue is full: let deliveries drain it
                    p.poll(0.1)
            p.poll(0)
        if p.flush(15) or failed:
            raise SystemExit(f"not delivered: {failed[:3]}")
    else:
        raise SystemExit(f"unknown command {cmd}")


main()
