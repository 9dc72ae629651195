"""An independent Kinesis client for tests (boto3, from scripts/services/kinesis.sh's venv).

usage: kinesis_client.py create STREAM SHARDS      # waits until ACTIVE
       kinesis_client.py put STREAM KEY_FIELD       # JSON lines on stdin; partition key = that field
       kinesis_client.py split STREAM SHARD_ID      # splits the shard in the middle of its hash range
       kinesis_client.py shards STREAM              # one JSON object per line: id, parents, closed
       kinesis_client.py read STREAM                # every record, one JSON object per line:
                                                    # shard, key, sequence, data (text)
       kinesis_client.py delete STREAM
The endpoint and credentials come from the standard AWS variables.
"""
import json
import os
import sys
import time

import boto3


def client():
    return boto3.client(
        "kinesis",
        endpoint_url=os.environ["AWS_ENDPOINT_URL_KINESIS"],
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
    )


def wait_active(k, stream):
    for _ in range(600):
        status = k.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamStatus"]
        if status == "ACTIVE":
            return
        time.sleep(0.05)
    raise SystemExit(f"stream {stream} did not become ACTIVE")


def put(k, stream, key_field, lines):
    """PutRecords in batches of 500, sending failed entries again in order."""
    batch = []

    def flush():
        pending = batch[:]
        while pending:
            out = k.put_records(StreamName=stream, Records=pending)
            pending = [e for e, r in zip(pending, out["Records"]) if "ErrorCode" in r]
            if pending:
                time.sleep(0.1)
        batch.clear()

    for line in lines:
        line = line.strip()
        if not line:
            continue
        key = str(json.loads(line)[key_field])
        batch.append({"Data": line.encode(), "PartitionKey": key})
        if len(batch) == 500:
            flush()
    flush()


def shards(k, stream):
    out, token = [], None
    while True:
        page = k.list_shards(NextToken=token) if token else k.list_shards(StreamName=stream)
        out.extend(page["Shards"])
        token = page.get("NextToken")
        if not token:
            return out


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    k = client()
    if cmd == "create":
        k.create_stream(StreamName=args[0], ShardCount=int(args[1]))
        wait_active(k, args[0])
    elif cmd == "put":
        put(k, args[0], args[1], sys.stdin)
    elif cmd == "split":
        stream, shard_id = args
        shard = next(s for s in shards(k, stream) if s["ShardId"] == shard_id)
        low = int(shard["HashKeyRange"]["StartingHashKey"])
        high = int(shard["HashKeyRange"]["EndingHashKey"])
        k.split_shard(StreamName=stream, ShardToSplit=shard_id, NewStartingHashKey=str((low + high) // 2))
        wait_active(k, stream)
    elif cmd == "shards":
        for s in shards(k, args[0]):
            parents = [p for p in (s.get("ParentShardId"), s.get("AdjacentParentShardId")) if p]
            closed = "EndingSequenceNumber" in s["SequenceNumberRange"]
            print(json.dumps({"id": s["ShardId"], "parents": parents, "closed": closed}))
    elif cmd == "read":
        for s in shards(k, args[0]):
            it = k.get_shard_iterator(StreamName=args[0], ShardId=s["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            while it:
                page = k.get_records(ShardIterator=it, Limit=10000)
                for r in page["Records"]:
                    print(json.dumps({
                        "shard": s["ShardId"],
                        "key": r["PartitionKey"],
                        "sequence": r["SequenceNumber"],
                        "data": r["Data"].decode("utf-8", "replace"),
                    }))
                if not page["Records"]:
                    break
                it = page.get("NextShardIterator")
    elif cmd == "delete":
        k.delete_stream(StreamName=args[0])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
