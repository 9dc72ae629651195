"""Runs a Flink SQL script written by `streamctl plan --target flink-sql` through PyFlink.

Flink 1.20's `bin/flink run` takes a jar or a Python program, not an SQL file, and the
sql-client needs a SQL gateway that the PyPI build does not ship; this program is what
`streamctl submit` hands to `bin/flink run -py`. It executes the script statement by statement
in one TableEnvironment, the way the SQL client does: `SET 'key' = 'value'` sets the
configuration, everything else goes to `execute_sql` (an `EXECUTE STATEMENT SET BEGIN … END`
block is one statement).

    python sql_runner.py SCRIPT.sql [--detached]   # run one script; wait unless --detached
    python sql_runner.py --batch JOBS.json         # many scripts in one JVM (tests)

In batch mode JOBS.json is a list of {"name", "script", "settings"} objects ("settings", a
map of Flink options applied before the script, is optional); each runs in a fresh
TableEnvironment, and one JSON line per job goes to standard output: {"name", "ok", "error",
"seconds", "job_seconds", "jvm_peak_rss_kb"}, where job_seconds runs from the submission of
the job to its end (no JVM start-up, no planning) and jvm_peak_rss_kb is the peak resident
memory of the Flink JVM so far.
"""

import json
import re
import sys
import time

SET = re.compile(r"^SET\s+'((?:[^']|'')*)'\s*=\s*'((?:[^']|'')*)'$", re.IGNORECASE | re.DOTALL)


def statements(script):
    """Splits a script at `;` outside quotes and comments; comments are dropped."""
    parts, current, i, n = [], [], 0, len(script)
    while i < n:
        c = script[i]
        if c == "-" and script.startswith("--", i):
            end = script.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        if c == "/" and script.startswith("/*", i):
            end = script.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        if c in "'`":
            end = i + 1
            while end < n:
                if script[end] == c:
                    if end + 1 < n and script[end + 1] == c:
                        end += 2
                        continue
                    break
                end += 1
            current.append(script[i:end + 1])
            i = end + 1
            continue
        if c == ";":
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(c)
        i += 1
    parts.append("".join(current).strip())
    parts = [p for p in parts if p]
    # EXECUTE STATEMENT SET BEGIN …; …; END is one statement.
    merged, block = [], None
    for p in parts:
        upper = " ".join(p.upper().split())
        if block is not None:
            if upper == "END":
                merged.append(block + ";\nEND")
                block = None
            else:
                block += ";\n" + p
        elif upper.startswith("EXECUTE STATEMENT SET BEGIN") or upper.startswith("BEGIN STATEMENT SET"):
            block = p
        else:
            merged.append(p)
    if block is not None:
        raise ValueError("STATEMENT SET without END")
    return merged


def run(script, env):
    """Executes every statement; returns the result of the last INSERT / STATEMENT SET."""
    last = None
    for statement in statements(script):
        m = SET.match(statement)
        if m:
            key, value = (g.replace("''", "'") for g in m.groups())
            env.get_config().set(key, value)
            continue
        result = env.execute_sql(statement)
        if result.get_job_client() is not None:
            last = result
    return last


def new_env():
    from pyflink.table import EnvironmentSettings, TableEnvironment

    return TableEnvironment.create(EnvironmentSettings.in_streaming_mode())


def error_text(e):
    """The innermost cause of a Java exception, or the Python error."""
    lines = [l.strip() for l in str(e).splitlines() if l.strip()]
    causes = [l[len("Caused by:"):].strip() for l in lines if l.startswith("Caused by:")]
    if causes:
        return causes[-1]
    # py4j puts the Java exception on the line after "An error occurred while calling …".
    thrown = [l.lstrip(": ") for l in lines if l.startswith(": ") or "Exception:" in l]
    if thrown:
        return thrown[0]
    return lines[0] if lines else repr(e)


def jvm_peak_rss_kb():
    """VmHWM of the JVM PyFlink started (Linux), or None."""
    try:
        from pyflink.java_gateway import get_gateway

        pid = get_gateway().jvm.java.lang.ProcessHandle.current().pid()
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except Exception:
        return None
    return None


def batch(path):
    jobs = json.load(open(path))
    for job in jobs:
        start = time.time()
        submitted = None
        try:
            env = new_env()
            for key, value in job.get("settings", {}).items():
                env.get_config().set(key, str(value))
            result = run(open(job["script"]).read(), env)
            submitted = time.time()
            if result is not None:
                result.wait()
            line = {"name": job["name"], "ok": True, "error": None}
        except Exception as e:  # a failing job must not stop the others
            line = {"name": job["name"], "ok": False, "error": error_text(e)}
        end = time.time()
        line["seconds"] = round(end - start, 2)
        line["job_seconds"] = round(end - submitted, 2) if submitted else None
        line["jvm_peak_rss_kb"] = jvm_peak_rss_kb()
        print(json.dumps(line), flush=True)


def main(argv):
    if len(argv) == 2 and argv[0] == "--batch":
        batch(argv[1])
        return 0
    if not argv or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    detached = "--detached" in argv[1:]
    try:
        result = run(open(argv[0]).read(), new_env())
    except Exception as e:
        print(f"error: {error_text(e)}", file=sys.stderr)
        return 1
    if result is None:
        print("the script started no job", file=sys.stderr)
        return 0
    job_id = result.get_job_client().get_job_id()
    print(f"Flink job {job_id} submitted", flush=True)
    if not detached:
        try:
            result.wait()
        except Exception as e:
            print(f"error: job {job_id} failed: {error_text(e)}", file=sys.stderr)
            return 1
        print(f"Flink job {job_id} finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
