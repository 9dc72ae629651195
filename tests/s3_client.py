"""An independent S3 client for tests (boto3 and pyarrow, from scripts/services/s3.sh's venv).

usage: s3_client.py mkbucket BUCKET
       s3_client.py put BUCKET KEY FILE
       s3_client.py objects BUCKET PREFIX        # one JSON object per line: key, size, text
       s3_client.py keys BUCKET PREFIX           # one key per line
       s3_client.py uploads BUCKET PREFIX        # open multipart uploads, one key per line
       s3_client.py hive BUCKET PREFIX FORMAT    # rows read by pyarrow.dataset with Hive partitioning
The endpoint and credentials come from the standard AWS variables.
"""
import json
import os
import sys

import boto3


def client():
    return boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"])


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    s3 = client()
    if cmd == "mkbucket":
        s3.create_bucket(Bucket=args[0])
    elif cmd == "put":
        with open(args[2], "rb") as f:
            s3.put_object(Bucket=args[0], Key=args[1], Body=f.read())
    elif cmd == "objects":
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=args[0], Prefix=args[1]):
            for o in page.get("Contents", []):
                body = s3.get_object(Bucket=args[0], Key=o["Key"])["Body"].read()
                print(json.dumps({"key": o["Key"], "size": o["Size"], "text": body.decode()}))
    elif cmd == "keys":
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=args[0], Prefix=args[1]):
            for o in page.get("Contents", []):
                print(o["Key"])
    elif cmd == "uploads":
        for u in s3.list_multipart_uploads(Bucket=args[0], Prefix=args[1]).get("Uploads", []):
            print(u["Key"])
    elif cmd == "hive":
        import pyarrow.dataset as ds
        from pyarrow import fs

        endpoint = os.environ["AWS_ENDPOINT_URL_S3"]
        scheme, host = endpoint.split("://", 1)
        filesystem = fs.S3FileSystem(
            endpoint_override=host,
            scheme=scheme,
            access_key=os.environ["AWS_ACCESS_KEY_ID"],
            secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
            region=os.environ.get("AWS_REGION", "us-east-1"),
        )
        data = ds.dataset(
            f"{args[0]}/{args[1]}",
            filesystem=filesystem,
            format=args[2],
            partitioning="hive",
        )
        for row in data.to_table().to_pylist():
            print(json.dumps(row, default=str, sort_keys=True))
    else:
        sys.exit(f"unknown command {cmd}")


main()
