"""moto's server (pinned 5.2.5) as an EMR API endpoint whose steps move on by themselves.

Stock moto keeps a cluster's first step RUNNING and the others PENDING forever, and has no
CancelSteps. No real cluster runs the steps here, so this launcher gives moto's steps the
lifecycle EMR gives them, driven by the clock:

- the steps of one cluster run one after another: PENDING until the previous step ended (and
  at least PENDING_S after it was added), then RUNNING for RUNNING_S, then COMPLETED, or
  FAILED when the step's name ends with `#fail` (so a test can ask for a failure); a step
  whose name ends with `#hold` stays RUNNING until it is cancelled or its cluster ends (so a
  test can act on a running or queued step without racing the clock);
- CancelSteps cancels a PENDING or RUNNING step (CANCELLED), as EMR does with
  SEND_INTERRUPT / TERMINATE_PROCESS; a step that has ended cannot be cancelled;
- TerminateJobFlows: the cluster is TERMINATING for TERMINATING_S and then TERMINATED. Steps
  that had not started are CANCELLED at once; the running step keeps RUNNING while the
  cluster shuts down and is INTERRUPTED when it is TERMINATED (so a client sees the cluster
  end before the step does, as it can on EMR).

Everything else (S3, RunJobFlow, DescribeCluster, AddJobFlowSteps, ListSteps, DescribeStep…)
is moto as it is. This patches moto internals: keep moto pinned.

usage: emr_server.py -H 127.0.0.1 -p PORT   (moto_server's arguments)
Durations: STREAMCTL_EMR_PENDING_S (default 1), STREAMCTL_EMR_RUNNING_S (default 2),
STREAMCTL_EMR_TERMINATING_S (default 1).
"""
import datetime
import os

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.emr import models, responses
from moto.emr.exceptions import InvalidRequestException

PENDING = datetime.timedelta(seconds=float(os.environ.get("STREAMCTL_EMR_PENDING_S", "1")))
RUNNING = datetime.timedelta(seconds=float(os.environ.get("STREAMCTL_EMR_RUNNING_S", "2")))
TERMINATING = datetime.timedelta(
    seconds=float(os.environ.get("STREAMCTL_EMR_TERMINATING_S", "1"))
)
FOREVER = datetime.datetime.max  # moto's times are naive UTC
ENDED = ("COMPLETED", "FAILED", "CANCELLED", "INTERRUPTED")


def schedule(step):
    """(state, start, end) of a step now, from its cluster's steps before it."""
    cluster = getattr(step, "_cluster", None)
    if cluster is None:
        return step.__dict__.get("_moto_state", "PENDING"), None, None
    now = utcnow()
    previous_end = None
    # When termination was asked for; steps not started by then never start.
    asked = getattr(cluster, "_terminate_asked", None)
    for s in cluster.steps:
        added = s.creation_date_time
        start = added + PENDING
        if previous_end is not None and previous_end > start:
            start = previous_end
        if start == FOREVER or s.name.endswith("#hold"):
            end = FOREVER
        else:
            end = start + RUNNING
        done = "FAILED" if s.name.endswith("#fail") else "COMPLETED"
        # A cancellation or the cluster's end stops a step that has not ended by then.
        stop = getattr(s, "_cancelled_at", None)
        stop_state = "CANCELLED"
        if asked is not None:
            # A step running when termination was asked is interrupted when the cluster is
            # TERMINATED; one that had not started is cancelled at once.
            if asked >= start:
                cut, cut_state = asked + TERMINATING, "INTERRUPTED"
            else:
                cut, cut_state = asked, "CANCELLED"
            if stop is None or cut < stop:
                stop, stop_state = cut, cut_state
        if stop is not None and stop < end:
            end = stop
            if now >= stop:
                result = (stop_state, start if stop >= start else None, stop)
            elif now < start:
                result = ("PENDING", None, None)
            else:
                result = ("RUNNING", start, None)
        elif now < start:
            result = ("PENDING", None, None)
        elif now < end:
            result = ("RUNNING", start, None)
        else:
            result = (done, start, end)
        if s is step:
            return result
        previous_end = end
    return "PENDING", None, None


def _ignore_write(name):
    def setter(self, value):
        self.__dict__["_moto_" + name] = value

    return setter


models.Step.state = property(lambda self: schedule(self)[0], _ignore_write("state"))
models.Step.start_date_time = property(
    lambda self: schedule(self)[1], _ignore_write("start_date_time")
)
models.Step.end_date_time = property(lambda self: schedule(self)[2], _ignore_write("end_date_time"))


def _status(self):
    state, start, end = schedule(self)
    status = {
        "State": state,
        "StateChangeReason": {},
        "Timeline": {
            "CreationDateTime": self.creation_date_time,
            "StartDateTime": start,
            "EndDateTime": end,
        },
    }
    if state == "FAILED":
        status["FailureDetails"] = {
            "Reason": "Unknown Error.",
            "Message": "the step's command exited with status 1",
            "LogFile": "s3://logs/steps/%s/stderr.gz" % self.id,
        }
    return status


models.Step.status = property(_status)


def _cluster_state(self):
    state = self.__dict__.get("_moto_state")
    asked = getattr(self, "_terminate_asked", None)
    if state == "TERMINATED" and asked is not None and utcnow() < asked + TERMINATING:
        return "TERMINATING"
    return state


models.Cluster.state = property(_cluster_state, _ignore_write("state"))
_terminate = models.Cluster.terminate


def terminate(self):
    if getattr(self, "_terminate_asked", None) is None:
        self._terminate_asked = utcnow()
    _terminate(self)


models.Cluster.terminate = terminate

_add_steps = models.Cluster.add_steps


def add_steps(self, steps):
    added = _add_steps(self, steps)
    for s in added:
        s._cluster = self
    return added


models.Cluster.add_steps = add_steps


def cancel_steps(self, cluster_id, step_ids):
    cluster = self.describe_cluster(cluster_id)
    infos = []
    for step_id in step_ids:
        step = next((s for s in cluster.steps if s.id == step_id), None)
        if step is None:
            infos.append({"StepId": step_id, "Status": "FAILED", "Reason": "no such step"})
            continue
        state = step.state
        if state in ENDED:
            infos.append(
                {"StepId": step_id, "Status": "FAILED", "Reason": "the step is %s" % state}
            )
            continue
        step._cancelled_at = utcnow()
        infos.append({"StepId": step_id, "Status": "SUBMITTED"})
    return infos


models.ElasticMapReduceBackend.cancel_steps = cancel_steps


def cancel_steps_response(self):
    cluster_id = self._get_param("ClusterId")
    step_ids = self._get_param("StepIds", [])
    if not step_ids:
        raise InvalidRequestException("StepIds is required")
    return ActionResult({"CancelStepsInfoList": self.backend.cancel_steps(cluster_id, step_ids)})


responses.ElasticMapReduceResponse.cancel_steps = cancel_steps_response

if __name__ == "__main__":
    from moto.server import main

    main()
