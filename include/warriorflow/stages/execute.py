"""Execution evidence in the battle cycle: plan_executions (writer) -> execute jobs (workers: the sandbox)
-> ingest_executions (writer), between ingesting the responses and the first judging round.

* :func:`plan_executions_stage`: every open battle whose two responses are stored and that has no
  execution record yet becomes an item of an ``execute`` job (``arena.execution.shard_size`` battles a
  job, model ``sandbox``: it loads no model). Off (``arena.execution.enabled: false``): no jobs.
* the ``execute`` job (:func:`execute_items`, run by :func:`warriorflow.stages.jobs.run_job` in the worker,
  never in the writer): for each battle, :func:`warriorflow.method.execution.plan_execution` (code and
  tests), then one sandboxed :class:`~warriorflow.sandbox.CheckProgram` run per response (the candidate:
  its code; the checks, in the sandbox's trusted launcher: the tests), with ``evaluation.sandbox``'s
  limits and ``arena.execution.wall_s`` a run.
* :func:`ingest_executions_stage`: a result file is checked record by record against what the writer
  computes itself from the *stored* instruction and responses (the same tests, the same code or none,
  counts that follow from the results); a file with any bad record is quarantined whole, nothing of it
  committed. A worker can only report what the sandbox said about each test.

:func:`execution_records` runs the same in process on any items (``warriorflow judges calibrate`` runs
it on labeled pairs): an :class:`ExecutionItem` is an id, an instruction and two responses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from warriorflow.config import Config
from warriorflow.method import execution as X
from warriorflow.method.battle_jobs import BatchInputError, response_request
from warriorflow.method.jobs import EXECUTOR, JobInput
from warriorflow.sandbox import CheckProgram, Sandbox, SandboxLimits
from warriorflow.stages.base import Outcome, ingest_outcome, stage
from warriorflow.stages.ingest_battles import open_battles
from warriorflow.stages.job_plans import answers_its_job, result_keys, write_jobs
from warriorflow.store.ingest import Rejection, ingest_files
from warriorflow.store.objects import ObjectStore
from warriorflow.store.rating_store import RatingStore

EXECUTION = "execution"
RECORD_KEYS = {"type", "battle_id", "executor", "attacker", "defender", "run_id"}
LIMITS = {"memory_mb": int, "cpu_s": int, "wall_s": float, "nproc": int, "file_size_mb": int, "tmpfs_mb": int,
          "stdout_kb": int}


@dataclass(frozen=True)
class ExecutionItem:
    """What to execute: an instruction and two responses (``attacker`` / ``defender``, or a pair's A / B)."""

    item_id: str
    instruction: str
    attacker: str
    defender: str

    @classmethod
    def of(cls, item: ExecutionItem | Mapping[str, Any], n: int = 0) -> ExecutionItem:
        """An item from itself or a mapping: ``item_id`` (or ``id``/``battle_id``; default its position),
        ``instruction``, ``attacker`` or ``response_a``, ``defender`` or ``response_b``."""
        if isinstance(item, ExecutionItem):
            return item
        get = item.get
        item_id = get("item_id") or get("id") or get("battle_id") or str(n)
        fields = (get("instruction"), get("attacker", get("response_a")), get("defender", get("response_b")))
        if not all(isinstance(f, str) for f in fields):
            raise BatchInputError(f"execution item {str(item_id)[:40]}",
                                  "needs instruction, response_a (attacker) and response_b (defender) strings")
        return cls(str(item_id), *fields)


# ------------------------------------------------------------------------------------------------ running
def execution_limits(config: Config) -> dict:
    """The limits of one run (an execute job's ``limits`` param): ``evaluation.sandbox`` with
    ``arena.execution.wall_s`` (and CPU time no longer than it)."""
    sb, ex = config.settings.evaluation.sandbox, config.settings.arena.execution
    return {"memory_mb": sb.memory_mb, "cpu_s": max(1, min(sb.cpu_s, math.ceil(ex.wall_s))), "wall_s": ex.wall_s,
            "nproc": sb.nproc, "file_size_mb": sb.file_size_mb, "tmpfs_mb": sb.tmpfs_mb, "stdout_kb": sb.stdout_kb}


def sandbox_limits(limits: Mapping[str, Any], where: str = "limits") -> SandboxLimits:
    """Checked :class:`SandboxLimits` from an execute job's ``limits`` (a clear error for anything odd)."""
    if set(limits) != set(LIMITS):
        raise BatchInputError(where, f"must hold exactly {', '.join(sorted(LIMITS))}", "re-plan the executions")
    for k, kind in LIMITS.items():
        v = limits[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not isinstance(v, int)) or \
                not 0 < v <= 1 << 20:
            raise BatchInputError(f"{where}.{k}", f"must be a positive {kind.__name__}", "re-plan the executions")
    return SandboxLimits(memory_mb=limits["memory_mb"], cpu_s=limits["cpu_s"], wall_s=float(limits["wall_s"]),
                         nproc=limits["nproc"], file_size_mb=limits["file_size_mb"], tmpfs_mb=limits["tmpfs_mb"],
                         stdout_bytes=limits["stdout_kb"] << 10)


def sandbox_for(config: Config, limits: SandboxLimits) -> Sandbox:
    """The sandbox of ``evaluation.sandbox`` (interpreter, uid, memory cgroup) with ``limits``."""
    sb = config.settings.evaluation.sandbox
    return Sandbox(limits, python=sb.python, sandbox_uid=sb.sandbox_uid, memory_cgroup=sb.memory_cgroup)


def execute(box: Sandbox, limits: SandboxLimits, items: Sequence[ExecutionItem], workers: int = 2) -> list[dict]:
    """Per item: ``{"item_id", "code_task", "tests", "attacker", "defender"}`` (each role's execution record),
    both roles of every item run ``workers`` sandboxes at a time."""
    plans = [X.plan_execution(i.instruction, i.attacker, i.defender) for i in items]

    def check(candidate: str, checks: str) -> X.RunOutcome:
        r = box.check(CheckProgram(candidate, checks), limits)
        return X.RunOutcome(r.reason, r.report, r.duration_s, (r.detail or "")[:X.MAX_DETAIL])

    def one(k: int) -> dict:
        n, role = divmod(k, 2)
        return X.run_tests(plans[n], X.ROLES[role], check)

    jobs = range(2 * len(items))
    if workers > 1 and len(jobs) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            records = list(pool.map(one, jobs))
    else:
        records = [one(k) for k in jobs]
    return [{"item_id": item.item_id, "code_task": plan.code_task, "tests": plan.tests_dicts(),
             "attacker": records[2 * n], "defender": records[2 * n + 1]}
            for n, (item, plan) in enumerate(zip(items, plans, strict=True))]


def execution_records(config: Config, items: Sequence[ExecutionItem | Mapping[str, Any]]) -> list[dict]:
    """Execution evidence for ``items`` in this process (see :func:`execute`), each with its ``vote``
    (``"attacker"``/``"defender"``/None: A/B for a pair) and ``why``."""
    checked = [ExecutionItem.of(i, n) for n, i in enumerate(items)]
    if not checked:
        return []
    limits = sandbox_limits(execution_limits(config))
    out = execute(sandbox_for(config, limits), limits, checked, config.settings.evaluation.sandbox.workers)
    for rec in out:
        rec["vote"], rec["why"] = X.execution_vote(rec["attacker"], rec["defender"])
    return out


def pair_execution_verdicts(config: Config, pairs: Sequence[tuple[str, str, str]]) -> list[str | None]:
    """The execution vote on each (instruction, response A, response B): ``"attacker"`` (A), ``"defender"`` (B)
    or None (no vote)."""
    items = [ExecutionItem(str(n), *p) for n, p in enumerate(pairs)]
    return [r["vote"] for r in execution_records(config, items)]


def load_executor(config: Config, job: JobInput) -> tuple[Sandbox, Any]:
    """An execute job's "model": the sandbox with the job's limits (it loads no model)."""
    return sandbox_for(config, sandbox_limits(job.params["limits"], f"job {job.job_id}.params.limits")), lambda: None


def execute_items(config: Config, job: JobInput, box: Sandbox, items: Sequence[dict]) -> list[dict]:
    """An execute job's records for a chunk of its items (battles)."""
    limits = sandbox_limits(job.params["limits"], f"job {job.job_id}.params.limits")
    got = execute(box, limits, [ExecutionItem(i["battle_id"], i["instruction"], i["attacker"], i["defender"])
                                for i in items], config.settings.evaluation.sandbox.workers)
    return [{"type": EXECUTION, "battle_id": g["item_id"], "executor": EXECUTOR, "attacker": g["attacker"],
             "defender": g["defender"], "run_id": job.run_id} for g in got]


# ------------------------------------------------------------------------------------------------ writer steps
def _response_ids(config: Config, instruction_id: str, instruction: str, attacker: str,
                  defender: str) -> dict[str, str]:
    arena = config.settings.arena
    return {role: response_request(arena, instruction_id, instruction, expert).response_id
            for role, expert in (("attacker", attacker), ("defender", defender))}


def _texts(store: RatingStore, response_ids: Sequence[str]) -> dict[str, str]:
    return {r["response_id"]: r["text"] for r in store.query(
        "SELECT response_id, text FROM responses WHERE response_id IN (SELECT unnest(?))", [sorted(response_ids)])}


@stage("plan_executions")
def plan_executions_stage(config: Config, store: RatingStore, objects: ObjectStore, run_id: str) -> Outcome:
    """Write the execute jobs of every open battle with both responses stored and no execution record; the value
    is the jobs (dicts: key, step, model, items)."""
    ex = config.settings.arena.execution
    if not ex.enabled:
        return Outcome({}, ["arena.execution.enabled is false: no execution evidence"], [])
    battles = open_battles(store)
    done = {r["battle_id"] for r in store.query("SELECT DISTINCT battle_id FROM executions WHERE battle_id IN "
                                                "(SELECT unnest(?))", [[b.battle_id for b in battles]])}
    rids = {b.battle_id: _response_ids(config, b.instruction_id, b.instruction, b.attacker, b.defender)
            for b in battles}
    texts = _texts(store, [r for ids_ in rids.values() for r in ids_.values()])
    items = [{"battle_id": b.battle_id, "instruction": b.instruction, "attacker": texts[rids[b.battle_id]["attacker"]],
              "defender": texts[rids[b.battle_id]["defender"]],
              "attacker_response_id": rids[b.battle_id]["attacker"],
              "defender_response_id": rids[b.battle_id]["defender"]}
             for b in battles if b.battle_id not in done and all(r in texts for r in rids[b.battle_id].values())]
    jobs = write_jobs(config, objects, run_id, "execute", {EXECUTOR: items}, {"limits": execution_limits(config)},
                      items_per_job=ex.shard_size)
    return Outcome({"battles_to_execute": len(items), "execute_jobs": len(jobs), "executed_before": len(done)}, [],
                   [j.to_dict() for j in jobs])


def _row(battle_id: str, role: str, response_id: str, plan: X.ExecutionPlan, rec: dict, run_id: str) -> dict:
    t = rec["tests"]
    tests = [{**d, "result": rec["results"].get(d["id"], "not_run")} for d in plan.tests_dicts()]
    return {"battle_id": battle_id, "role": role, "response_id": response_id, "code_task": rec["code_task"],
            "has_code": rec["has_code"], "status": rec["status"], "tests_total": t["all"][0],
            "tests_passed": t["all"][1], "instruction_total": t["instruction"][0],
            "instruction_passed": t["instruction"][1], "attacker_total": t["attacker"][0],
            "attacker_passed": t["attacker"][1], "defender_total": t["defender"][0],
            "defender_passed": t["defender"][1], "runs": rec["runs"], "seconds": float(rec["seconds"]),
            "details": {"tests": tests, "detail": rec["detail"]}, "run_id": run_id}


@stage("ingest_executions")
def ingest_executions_stage(config: Config, store: RatingStore, objects: ObjectStore, run_id: str) -> Outcome:
    """Merge the run's execute job results (checked against the stored texts; a bad file is quarantined whole)."""
    checked: dict[str, tuple[dict[str, str], X.ExecutionPlan]] = {}

    def facts(battle_ids: list[str]) -> dict[str, tuple[dict[str, str], X.ExecutionPlan]]:
        rows = store.query("SELECT b.battle_id, b.instruction_id, i.text, b.attacker, b.defender FROM battles b "
                           "JOIN instructions i USING (instruction_id) WHERE b.battle_id IN (SELECT unnest(?))",
                           [battle_ids])
        out = {}
        for r in rows:
            rids = _response_ids(config, r["instruction_id"], r["text"], r["attacker"], r["defender"])
            texts = _texts(store, list(rids.values()))
            if all(x in texts for x in rids.values()):
                out[r["battle_id"]] = (rids, X.plan_execution(r["text"], texts[rids["attacker"]],
                                                              texts[rids["defender"]]))
        return out

    def check(records: list[dict]) -> Rejection | None:
        known = facts(sorted({r["battle_id"] for r in records if isinstance(r.get("battle_id"), str)}))
        problems = []
        for n, r in enumerate(records, start=1):
            if set(r) != RECORD_KEYS or r.get("type") != EXECUTION:
                problems.append(f"line {n}: an execution record holds exactly {', '.join(sorted(RECORD_KEYS))}")
                continue
            if r["battle_id"] not in known:
                problems.append(f"line {n}: battle {str(r['battle_id'])[:40]!r} is not planned with both responses "
                                "stored")
                continue
            if not isinstance(r["run_id"], str):
                problems.append(f"line {n}: run_id must be a string")
            plan = known[r["battle_id"]][1]
            problems += [f"line {n}: {p}" for role in X.ROLES for p in X.check_record(plan, role, r[role])]
        if problems:
            return Rejection(f"{len(problems)} problem(s): " + "; ".join(problems[:5]), {"problems": problems})
        checked.update(known)
        return None

    def merge(_key: str, records: list[dict]) -> dict[str, int]:
        rows = []
        for r in records:
            rids, plan = checked[r["battle_id"]]
            rows += [_row(r["battle_id"], role, rids[role], plan, r[role], r["run_id"]) for role in X.ROLES]
        store.upsert("executions", rows, key=["battle_id", "role"])
        votes = [X.execution_vote(r["attacker"], r["defender"])[0] for r in records]
        return {"executions": len(records), "execution_votes": sum(v is not None for v in votes)}

    report = ingest_files(store, objects, result_keys(objects, run_id, "execute"), kind="executions", stage="execute",
                          merge=merge, check=check, check_file=answers_its_job(objects, "execute"))
    return ingest_outcome(report)
