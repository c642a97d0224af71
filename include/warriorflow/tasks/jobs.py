"""A model job as a local worker process: ``warriorflow job --in URI`` (what a pod runs on Kubernetes)."""

from __future__ import annotations

from warriorflow.method.jobs import Job
from warriorflow.store.objects import open_objects
from warriorflow.tasks.worker import config, run_cli


def run_local_job(job: dict) -> str:
    """Run one job in its own process (it loads its one model there); return its input URI."""
    uri = open_objects(config()).uri(Job.from_dict(job).key)
    run_cli("job", "--in", uri)
    return uri
