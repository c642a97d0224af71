"""The object-store key layout: where each step's result files live under a run's prefix.

    runs/RUN/mine/EXPERT.jsonl              mined records of one expert (+ EXPERT.dropped.jsonl)
    runs/RUN/jobs/STEP/in/JOB.json          a model job's input (step: respond, judge, score, tag, embed)
    runs/RUN/jobs/STEP/out/JOB.jsonl        its results (+ JOB.receipt.json: what it loaded, counts, time)
    runs/RUN/jobs/STEP/ckpt/JOB/part-N.jsonl  finished records of a job still running (an evicted pod resumes)
    quarantine/STAGE/KEY                    a batch that failed its checks (+ .report.json, .gx.json)
"""

from __future__ import annotations

QUARANTINE_PREFIX = "quarantine"
DROPPED_SUFFIX = ".dropped.jsonl"


def run_prefix(run_id: str, step: str) -> str:
    return f"runs/{run_id}/{step}/"


def mine_key(run_id: str, expert: str, dropped: bool = False) -> str:
    return f"runs/{run_id}/mine/{expert}{DROPPED_SUFFIX if dropped else '.jsonl'}"


def dropped_key(key: str) -> str:
    """The companion file of a mined batch: the records its sanitiser dropped, with their reasons."""
    return key.removesuffix(".jsonl") + DROPPED_SUFFIX












def job_in_key(run_id: str, step: str, job_id: str) -> str:
    return f"runs/{run_id}/jobs/{step}/in/{job_id}.json"


def job_out_for(in_key: str) -> str:
    """Where a job writes its results: ``.../jobs/STEP/in/JOB.json`` -> ``.../jobs/STEP/out/JOB.jsonl``."""
    head, _, name = in_key.rpartition("/in/")
    return f"{head}/out/{name.removesuffix('.json')}.jsonl"


def job_receipt_for(out_key: str) -> str:
    return out_key.removesuffix(".jsonl") + ".receipt.json"


def job_checkpoint_prefix(in_key: str) -> str:
    head, _, name = in_key.rpartition("/in/")
    return f"{head}/ckpt/{name.removesuffix('.json')}/"


def quarantine_key(stage: str, key: str) -> str:
    return f"{QUARANTINE_PREFIX}/{stage}/{key}"
