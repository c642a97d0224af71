"""The battle cycle as per-model jobs through the real stages (DuckDB store, local object store, scripted
models): every job loads exactly one model and never opens the store; the stored votes, battles and
ratings equal the single-process batch's; a failed shard leaves the others ingested and is re-planned
next run without redoing anything finished; forged job results are quarantined."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from tests.helpers import write_yaml
from tests.scripted_backend import ScriptedBackend
from warriorflow.config import load_config
from warriorflow.method import battle_batch as bb
from warriorflow.method import ids
from warriorflow.method.jobs import Job
from warriorflow.stages.base import run_as_writer
from warriorflow.stages.cycles import judging_rounds
from warriorflow.stages.execute import ingest_executions_stage, plan_executions_stage
from warriorflow.stages.ingest_battles import ingest_responses_stage, ingest_votes_stage
from warriorflow.stages.jobs import run_job
from warriorflow.stages.judging import plan_votes_stage
from warriorflow.stages.plan import plan_stage
from warriorflow.stages.rate import rate_stage
from warriorflow.store.jsonl import decode_jsonl, encode_jsonl
from warriorflow.store.keys import job_out_for, job_receipt_for
from warriorflow.store.objects import open_objects
from warriorflow.store.rating_store import RatingStore
from warriorflow.store.vote_log import vote_log

EXPERTS = """experts:
  - {name: c1, backend: llamacpp, model: {gguf: /nonexistent/c1.gguf}, roles: [mine, answer, judge]}
  - {name: c2, backend: llamacpp, model: {gguf: /nonexistent/c2.gguf}, roles: [mine, answer, judge]}
  - {name: c3, backend: llamacpp, model: {gguf: /nonexistent/c3.gguf}, roles: [mine, answer, judge]}
  - {name: j1, backend: llamacpp, model: {gguf: /nonexistent/j1.gguf}, roles: [judge]}
  - {name: j2, backend: llamacpp, model: {gguf: /nonexistent/j2.gguf}, roles: [judge]}
"""
STYLES = {"j1": "favour:c2", "j2": "hash", "c1": "always:[[A]]", "c2": "oppose:c3", "c3": "hash"}


def make_config(tmp_path, sequential: bool = True, both: bool = True):
    experts = write_yaml(tmp_path / "experts.yaml", EXPERTS)
    settings = write_yaml(tmp_path / "settings.yaml", f"""
experts_file: {experts}
paths: {{home: {tmp_path / "home"}}}
arena: {{both_orders: {str(both).lower()}, sequential_voting: {str(sequential).lower()}, seed: 4,
         defenders_per_instruction: 2}}
jobs: {{respond_items: 3, judge_items: 5, checkpoint_items: 2}}
rating: {{bootstrap_rounds: 0}}
""")
    return load_config(settings)


def seed_selected(config, n: int = 6) -> None:
    now = datetime(2026, 11, 30, 12)
    rows = []
    for i in range(n):
        text = f"Write a Python function number {i} that merges two sorted lists."
        rows.append({"instruction_id": ids.instruction_id(text), "text": text, "expert": ("c1", "c2", "c3")[i % 3],
                     "mined_at": now, "run_id": "mine-1", "status": "selected"})
    with RatingStore(config.duckdb_path) as store:
        store.upsert("instructions", rows, key=["instruction_id"])
        store.upsert("instruction_selections", [{"instruction_id": r["instruction_id"], "run_id": "mine-1",
                                                 "pick_rank": k, "embed_model": "m", "selected_at": now}
                                                for k, r in enumerate(rows)], key=["instruction_id"])


class Loader:
    """Loads a scripted model per job (and can make one model's jobs fail); records every load."""

    def __init__(self, fail: set[str] = frozenset()):
        self.loads: list[str] = []
        self.fail = set(fail)

    def __call__(self, config, job):
        if f"{job.step}:{job.model}" in self.fail:
            raise RuntimeError(f"{job.model}: the pod was evicted")
        self.loads.append(job.model)
        backend = ScriptedBackend(job.model, STYLES[job.model])
        return backend, backend.close


def run_jobs(config, jobs, loader) -> list[str]:
    """Run each job; return the keys of those that failed (as a failed mapped task would)."""
    objects, failed = open_objects(config), []
    for j in jobs:
        try:
            run_job(config, objects, Job.from_dict(j).key, loader=loader)
        except RuntimeError:
            failed.append(j["key"])
    return failed


def cycle(config, run_id, loader) -> dict:
    plan = run_as_writer(config, plan_stage, run_id)
    failed = run_jobs(config, plan.value, loader)
    run_as_writer(config, ingest_responses_stage, run_id)
    failed += run_jobs(config, run_as_writer(config, plan_executions_stage, run_id).value, loader)  # the sandbox
    run_as_writer(config, ingest_executions_stage, run_id)
    rounds = 0
    for round_no in range(1, judging_rounds(config) + 1):
        jobs = run_as_writer(config, plan_votes_stage, run_id, round_no=round_no).value
        if not jobs:
            break
        rounds += 1
        failed += run_jobs(config, jobs, loader)
        run_as_writer(config, ingest_votes_stage, run_id)
    run_as_writer(config, rate_stage, run_id)
    return {"plan": plan, "failed": failed, "rounds": rounds}


def stored(config):
    with RatingStore(config.duckdb_path, read_only=True) as store:
        return (store.query("SELECT * FROM responses ORDER BY response_id"),
                store.query("SELECT * FROM votes ORDER BY vote_id"),
                store.query("SELECT * FROM battles ORDER BY battle_order"), vote_log(store))


@pytest.mark.parametrize("sequential", [True, False])
def test_job_cycle_equals_the_batch_and_loads_one_model_per_job(tmp_path, sequential):
    config = make_config(tmp_path, sequential=sequential)
    seed_selected(config)
    loader = Loader()
    out = cycle(config, "battle-1", loader)
    responses, votes, battles, log = stored(config)
    assert battles and all(b["status"] == "done" for b in battles)
    assert out["rounds"] == (1 if not sequential else out["rounds"]) and out["rounds"] >= 1

    # every job loaded exactly its one model, and says so in its receipt (an execute job runs the sandbox: none)
    objects = open_objects(config)
    receipts = [json.loads(objects.get_bytes(k)) for k in objects.list("runs/battle-1/jobs/")
                if k.endswith(".receipt.json")]
    assert receipts and all(r["models_loaded"] == ([] if r["step"] == "execute" else [r["model"]])
                            for r in receipts)
    assert sorted(loader.loads) == sorted(r["model"] for r in receipts if r["step"] != "execute")
    with RatingStore(config.duckdb_path, read_only=True) as store:  # every battle has its execution evidence
        executed = store.query("SELECT battle_id, role, status FROM executions")
    assert {(e["battle_id"], e["role"]) for e in executed} == {(b["battle_id"], r) for b in battles
                                                               for r in ("attacker", "defender")}
    assert {e["status"] for e in executed} == {"no_code"}  # scripted answers hold no code: prompts unchanged

    # the same plan through the single-process batch gives the same responses, votes, battles, ratings
    planned = [bb.PlannedBattle(b["battle_id"], b["instruction_id"], t, b["attacker"], b["defender"],
                                tuple(b["judges"]), b["battle_order"])
               for b, t in zip(battles, _texts(config, battles))]
    batch = bb.BattleBatchInput("battle-1", config.settings.arena, tuple(planned))

    class Ledger:
        responses: dict = {}
        votes: dict = {}

        def append(self, records):
            for r in records:
                (self.responses if r["type"] == "response" else self.votes)[
                    r.get("response_id") or r["vote_id"]] = r

    template = config.prompt_path(config.settings.arena.judge_prompt).read_text()
    ref = bb.battle_batch(batch, lambda n: ScriptedBackend(n, STYLES[n]), Ledger(), template)
    ref_votes = sorted((r for r in ref if r["type"] == "vote"), key=lambda r: r["vote_id"])
    assert [(v["vote_id"], v["verdict"], v["raw_text"]) for v in votes] == [
        (v["vote_id"], v["verdict"], v["raw_text"]) for v in ref_votes]
    ref_resp = sorted((r for r in ref if r["type"] == "response"), key=lambda r: r["response_id"])
    assert [(r["response_id"], r["text"]) for r in responses] == [(r["response_id"], r["text"]) for r in ref_resp]
    ref_battles = {r["battle_id"]: r for r in ref if r["type"] == "battle"}
    for b in battles:
        want = ref_battles[b["battle_id"]]
        assert (b["judge_calls"], b["judge_calls_saved"], b["attacker_response_id"]) == (
            want["judge_calls"], want["judge_calls_saved"], want["attacker_response_id"])
    assert {x.battle_id: dict(x.votes) for x in log} == {k: v["effective_votes"] for k, v in ref_battles.items()}


def _texts(config, battles):
    with RatingStore(config.duckdb_path, read_only=True) as store:
        text = {r["instruction_id"]: r["text"] for r in store.query("SELECT instruction_id, text FROM instructions")}
    return [text[b["instruction_id"]] for b in battles]


def test_a_failed_shard_leaves_the_others_ingested_and_is_replanned_next_run(tmp_path):
    config = make_config(tmp_path, sequential=False, both=False)
    seed_selected(config)
    out = cycle(config, "battle-1", Loader(fail={"respond:c2"}))
    assert out["failed"] and all("/respond-c2-" in k for k in out["failed"])
    responses, _votes, battles, _ = stored(config)
    assert responses and {r["expert"] for r in responses} == {"c1", "c3"}  # the finished shards went in
    done = [b for b in battles if b["status"] == "done"]
    waiting = [b for b in battles if b["status"] == "planned"]
    assert done and waiting and all("c2" in (b["attacker"], b["defender"]) for b in waiting)
    assert all("c2" not in (b["attacker"], b["defender"]) for b in done)

    loader = Loader()
    second = cycle(config, "battle-2", loader)
    assert second["plan"].counts["planned"] == 0 and second["plan"].counts["retried"] == len(waiting)
    # only c2's responses and the waiting battles' votes were asked: nothing finished was redone
    objects = open_objects(config)
    asked = [json.loads(objects.get_bytes(k)) for k in objects.list("runs/battle-2/jobs/") if "/in/" in k]
    assert {j["model"] for j in asked if j["step"] == "respond"} == {"c2"}
    waiting_ids = {b["battle_id"] for b in waiting}
    assert {i["battle_id"] for j in asked if j["step"] == "judge" for i in j["items"]} == waiting_ids
    _r, _v, battles2, _ = stored(config)
    assert all(b["status"] == "done" for b in battles2)


def test_a_job_resumes_from_its_checkpoints_in_the_object_store(tmp_path):
    config = make_config(tmp_path, sequential=False)
    seed_selected(config)
    plan = run_as_writer(config, plan_stage, "battle-1")
    job = max(plan.value, key=lambda j: j["items"])
    assert job["items"] > config.settings.jobs.checkpoint_items

    class Evicted(Loader):
        def __call__(self, config, job_input):
            backend, release = super().__call__(config, job_input)
            real = backend.chat
            calls = []

            def chat(convs, sampling):
                calls.append(len(convs))
                if len(calls) == 2:
                    raise RuntimeError("evicted mid-job")
                return real(convs, sampling)

            backend.chat = chat
            return backend, release

    objects = open_objects(config)
    with pytest.raises(RuntimeError, match="evicted"):
        run_job(config, objects, job["key"], loader=Evicted())
    parts = list(objects.list(job["key"].replace("/in/", "/ckpt/").removesuffix(".json") + "/"))
    assert len(parts) == 1  # the first chunk was saved
    retry = Loader()
    result = run_job(config, objects, job["key"], loader=retry)
    assert result.resumed == config.settings.jobs.checkpoint_items and result.records == job["items"]
    assert result.receipt["resumed_items"] == config.settings.jobs.checkpoint_items
    assert not list(objects.list(job["key"].replace("/in/", "/ckpt/").removesuffix(".json") + "/"))
    again = run_job(config, objects, job["key"], loader=Loader())
    assert again.skipped  # the result exists: nothing runs


def test_forged_job_results_are_quarantined_whole(tmp_path):
    config = make_config(tmp_path, sequential=False, both=False)
    seed_selected(config, 3)
    plan = run_as_writer(config, plan_stage, "battle-1")
    run_jobs(config, plan.value, Loader())
    objects = open_objects(config)
    job = plan.value[0]
    out = job_out_for(job["key"])
    records = decode_jsonl(objects.get_bytes(out))
    forged = [dict(records[0], text="forged"), *records[1:], dict(records[0], response_id="r-extra")]
    objects.put_bytes(out, encode_jsonl(forged))  # a worker answering what it was not asked
    report = run_as_writer(config, ingest_responses_stage, "battle-1")
    assert report.counts.get("quarantined_batches") == 1
    with RatingStore(config.duckdb_path, read_only=True) as store:
        got = {r["expert"] for r in store.query("SELECT expert FROM responses")}
    assert job["model"] not in got  # nothing of the forged file was committed
    assert json.loads(objects.get_bytes(job_receipt_for(out)))["models_loaded"] == [job["model"]]


@pytest.mark.parametrize("doc", [b"{not json", b'{"job_id": "j", "step": "respond", "model": "c1", "run_id": "r", '
                                              b'"params": {"arena": {"seed": "x"}}, "items": []}',
                                 b'{"job_id": "j", "step": "respond", "model": "c1", "run_id": "r", "params": '
                                 b'{"arena": {}}, "items": [{"response_id": "a"}]}'])
def test_a_forged_job_input_is_a_clear_cli_error(tmp_path, doc):
    from click.testing import CliRunner

    from warriorflow.cli import main

    config = make_config(tmp_path)
    objects = open_objects(config)
    key = "runs/r/jobs/respond/in/respond-c1-s0000.json"
    objects.put_bytes(key, doc)
    args = ["--config", str(config.settings_file), "job", "--in"]
    result = CliRunner().invoke(main, [*args, objects.uri(key)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "error:" in result.output
    assert not objects.exists(job_out_for(key))
    outside = CliRunner().invoke(main, [*args, f"file://{tmp_path}/elsewhere/jobs/x.json"])
    assert outside.exit_code == 2 and "not a job input under the configured object store" in outside.output


def test_a_result_whose_job_input_was_tampered_with_is_quarantined_not_a_crash(tmp_path):
    config = make_config(tmp_path, sequential=False, both=False)
    seed_selected(config, 3)
    plan = run_as_writer(config, plan_stage, "battle-1")
    run_jobs(config, plan.value, Loader())
    objects = open_objects(config)
    objects.put_bytes(plan.value[0]["key"], b'{"job_id": "x"}')  # the input rewritten after the job ran
    report = run_as_writer(config, ingest_responses_stage, "battle-1")
    assert report.counts.get("quarantined_batches") == 1
    assert any("job input is not valid" in n for n in report.notes)


def test_the_execution_steps_by_hand_from_the_cli(tmp_path):
    """`plan-executions` writes the execute jobs (one URI each, what a pod or `job --in` runs) and
    `ingest-executions` merges their results: the same steps the battle DAG's writer tasks run."""
    from click.testing import CliRunner

    from warriorflow.cli import main

    config = make_config(tmp_path, sequential=False, both=False)
    seed_selected(config, 3)
    plan = run_as_writer(config, plan_stage, "battle-1")
    run_jobs(config, plan.value, Loader())
    run_as_writer(config, ingest_responses_stage, "battle-1")
    args = ["--config", str(config.settings_file)]
    planned = CliRunner().invoke(main, [*args, "plan-executions", "--run-id", "battle-1"])
    assert planned.exit_code == 0, planned.output
    objects = open_objects(config)
    uris = [line for line in planned.output.splitlines() if line.startswith("file://")]
    assert uris and all("/jobs/execute/in/" in u for u in uris)
    for uri in uris:
        ran = CliRunner().invoke(main, [*args, "job", "--in", uri])
        assert ran.exit_code == 0, ran.output
    ingested = CliRunner().invoke(main, [*args, "ingest-executions", "--run-id", "battle-1"])
    assert ingested.exit_code == 0, ingested.output
    with RatingStore(config.duckdb_path, read_only=True) as store:
        battles = {r["battle_id"] for r in store.query("SELECT battle_id FROM battles")}
        executed = {r["battle_id"] for r in store.query("SELECT DISTINCT battle_id FROM executions")}
    assert battles and executed == battles
    again = CliRunner().invoke(main, [*args, "plan-executions", "--run-id", "battle-1"])  # nothing left to run
    assert again.exit_code == 0 and not [x for x in again.output.splitlines() if x.startswith("file://")]
    assert objects.list("runs/battle-1/jobs/execute/out/")
