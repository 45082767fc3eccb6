"""MLflow runs a fan-out left RUNNING: reads and ends them on the tracking server; nothing else.

A stage ends its own run (FINISHED, FAILED, or KILLED on SIGTERM), and `filterlab.core.tracking.mark_dead_runs`
settles a run whose process is gone, but only from the same host. A worker machine that is lost (powered off,
preempted, cut off) leaves its run RUNNING on a host nobody will look from again. Every task of one fan-out logs
under one sweep id (the tag `filterlab.core.run_context.SWEEP_TAG` names), and once the fan-out is over none of its
processes may still log: the submitter ends whatever of that sweep is still RUNNING as KILLED.

This module imports MLflow outside `filterlab.core.tracking` on purpose: the train stages depend on that file, and a
change to it would invalidate every trained variant's run-cache entry.
"""

import contextlib
import io
import sys
from typing import Any

from filterlab.core.run_context import SWEEP_TAG
from filterlab.core.secrets import mask_url
from filterlab.core.tracking import bound_http_calls, first_line, tracking_errors


def running_runs(client: Any, sweep: str) -> list[Any]:
    """Every run of `sweep` that is still RUNNING, in every experiment."""
    experiments = [experiment.experiment_id for experiment in client.search_experiments()]
    if not experiments:
        return []
    query = f"attributes.status = 'RUNNING' and tags.`{SWEEP_TAG}` = '{sweep}'"
    found: list[Any] = client.search_runs(experiments, filter_string=query, max_results=1000)
    return found


def end_left_running(uri: str, sweep: str) -> list[str]:
    """Mark KILLED every run of `sweep` still RUNNING on `uri`; their names. A tracking server that cannot be
    reached is one warning line, not an error: the fan-out's results are in DVC either way."""
    bound_http_calls()
    from mlflow.tracking import MlflowClient

    try:
        client = MlflowClient(tracking_uri=uri)
        left = running_runs(client, sweep)
        for run in left:
            with contextlib.redirect_stdout(io.StringIO()):  # MLflow prints a link per ended run
                client.set_terminated(run.info.run_id, status="KILLED")
    except tracking_errors() as error:
        print(
            f"warning: could not check {mask_url(uri)} for runs of {sweep} left RUNNING ({first_line(error)})",
            file=sys.stderr,
        )
        return []
    return [str(run.info.run_name) for run in left]
