"""An independent EMR and S3 client for tests (boto3, from scripts/services/emr.sh's venv).

usage: emr_client.py cluster NAME                  # starts a cluster; prints its id
       emr_client.py terminate CLUSTER
       emr_client.py step CLUSTER STEP             # DescribeStep as JSON (Name, State, Jar, Args…)
       emr_client.py steps CLUSTER                 # ListSteps: one JSON object per line
       emr_client.py add-step CLUSTER NAME         # a step of our own (to queue ours behind); prints its id
       emr_client.py mkbucket BUCKET
       emr_client.py keys BUCKET PREFIX            # one key per line
       emr_client.py get BUCKET KEY                # an object's bytes to stdout
       emr_client.py s3 cp SRC DST [--only-show-errors]
           # the one AWS CLI command EMR steps use here (s3:// → local file or directory)
The endpoints and credentials come from the standard AWS variables.
"""
import json
import os
import sys

import boto3

REGION = os.environ.get("AWS_REGION", "us-east-1")


def emr():
    return boto3.client("emr", endpoint_url=os.environ["AWS_ENDPOINT_URL_EMR"], region_name=REGION)


def s3():
    return boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL_S3"], region_name=REGION)


def step_json(step):
    status = step["Status"]
    return json.dumps(
        {
            "Id": step["Id"],
            "Name": step["Name"],
            "State": status["State"],
            "ActionOnFailure": step.get("ActionOnFailure"),
            "Jar": step["Config"].get("Jar"),
            "Args": step["Config"].get("Args", []),
        }
    )


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "cluster":
        out = emr().run_job_flow(
            Name=args[0],
            ReleaseLabel="emr-7.7.0",
            Applications=[{"Name": "Flink"}],
            Instances={
                "InstanceCount": 1,
                "KeepJobFlowAliveWhenNoSteps": True,
                "MasterInstanceType": "m5.xlarge",
            },
            JobFlowRole="EMR_EC2_DefaultRole",
            ServiceRole="EMR_DefaultRole",
        )
        print(out["JobFlowId"])
    elif cmd == "terminate":
        emr().terminate_job_flows(JobFlowIds=[args[0]])
    elif cmd == "step":
        print(step_json(emr().describe_step(ClusterId=args[0], StepId=args[1])["Step"]))
    elif cmd == "steps":
        for s in emr().list_steps(ClusterId=args[0])["Steps"]:
            print(step_json(s))
    elif cmd == "add-step":
        step = {
            "Name": args[1],
            "ActionOnFailure": "CONTINUE",
            "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["true"]},
        }
        print(emr().add_job_flow_steps(JobFlowId=args[0], Steps=[step])["StepIds"][0])
    elif cmd == "mkbucket":
        s3().create_bucket(Bucket=args[0])
    elif cmd == "keys":
        for page in s3().get_paginator("list_objects_v2").paginate(Bucket=args[0], Prefix=args[1]):
            for o in page.get("Contents", []):
                print(o["Key"])
    elif cmd == "get":
        sys.stdout.buffer.write(s3().get_object(Bucket=args[0], Key=args[1])["Body"].read())
    elif cmd == "s3" and args[0] == "cp":
        src, dst = [a for a in args[1:] if not a.startswith("--")]
        bucket, key = src[len("s3://"):].split("/", 1)
        if dst.endswith("/") or os.path.isdir(dst):
            dst = os.path.join(dst, key.rsplit("/", 1)[-1])
        s3().download_file(bucket, key, dst)
    else:
        sys.exit("unknown command: %s" % " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
