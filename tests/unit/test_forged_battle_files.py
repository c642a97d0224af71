"""Forged and malformed battle job results: each file is quarantined whole, with the problem of each bad
line in its report, nothing of it is committed, and the ratings never see its votes. The honest files of
the same battle (real job output, scripted models) go in."""

from __future__ import annotations

import json

import pytest

from tests.helpers import GEMMA, QWEN, SMOLLM2, select_instruction
from warriorflow.method import ids
from warriorflow.method.battle_records import ArenaFacts, PlannedBattleRef, check_battle_records
from warriorflow.stages.base import run_as_writer
from warriorflow.stages.ingest_battles import ingest_responses_stage, ingest_votes_stage
from warriorflow.stages.jobs import run_job
from warriorflow.stages.judging import plan_votes_stage
from warriorflow.stages.plan import plan_stage
from warriorflow.stages.rate import rate_stage
from warriorflow.store.jsonl import decode_jsonl
from warriorflow.store.keys import job_out_for
from warriorflow.store.objects import open_objects
from warriorflow.store.rating_store import RatingStore

IID = ids.instruction_id("Write a function that merges two sorted lists.")
BID = ids.battle_id(IID, SMOLLM2, QWEN)
SAMPLING = {"max_tokens": 64, "temperature": 0.0, "top_p": 1.0}


def _response(expert: str, text: str = "def merge(a, b): ...") -> dict:
    return {"type": "response", "response_id": ids.response_id(IID, expert, SAMPLING, 7), "instruction_id": IID,
            "expert": expert, "text": text, "sampling": SAMPLING, "seed": 7, "finish_reason": "stop",
            "prompt_tokens": 10, "completion_tokens": 5, "run_id": "b1"}


def _vote(judge: str = GEMMA, order: str = "attacker_first", raw: str = "A", verdict: str = "attacker",
          battle: str = BID) -> dict:
    return {"type": "vote", "vote_id": ids.vote_id(battle, judge, order), "battle_id": battle, "judge": judge,
            "shown_order": order, "raw_verdict": raw, "verdict": verdict, "raw_text": f"[[{raw}]]", "run_id": "b1"}


def _battle() -> dict:
    return {"type": "battle", "battle_id": BID, "attacker_response_id": _response(SMOLLM2)["response_id"],
            "defender_response_id": _response(QWEN)["response_id"], "judge_calls": 1, "judge_calls_saved": 0}


def honest() -> list[dict]:
    return [_response(SMOLLM2), _response(QWEN), _vote(), _battle()]


FORGED = {
    "judge not in the registry": [_vote(judge="gpt-9")],
    "a competitor votes on its own battle": [_vote(judge=SMOLLM2)],
    "a vote for a battle never planned": [_vote(battle=ids.battle_id(IID, QWEN, SMOLLM2))],
    "verdict contradicts the raw verdict": [_vote(raw="B", verdict="attacker")],
    "vote_id forged": [dict(_vote(), vote_id="v-forged")],
    "unknown shown order": [dict(_vote(), shown_order="sideways", vote_id=ids.vote_id(BID, GEMMA, "sideways"))],
    "verdict of the wrong type": [dict(_vote(), verdict=1)],
    "text is a list": [dict(_response(SMOLLM2), text=["def f(): pass"])],
    "response by an expert outside the battle": [_response(GEMMA)],
    "response_id forged": [dict(_response(SMOLLM2), response_id="r-forged")],
    "battle points at another expert's response": [dict(_battle(), defender_response_id=_response(SMOLLM2)[
        "response_id"])],
    "battle points at a response nowhere": [dict(_battle(), attacker_response_id="r-missing")],
    "a line that is a list": [["type", "vote"]],
    "a line that is a string": ["vote"],
    "a record of unknown type": [{"type": "rating", "expert": SMOLLM2, "elo": 3000}],
    "the same vote twice": [_vote(), _vote()],
    "seed is a boolean": [dict(_response(SMOLLM2), seed=True)],
}


def _facts() -> ArenaFacts:
    return ArenaFacts({BID: PlannedBattleRef(IID, SMOLLM2, QWEN, (GEMMA,))}, {SMOLLM2, QWEN, GEMMA},
                      {SMOLLM2, QWEN, GEMMA})


def test_the_honest_file_is_sound():
    assert check_battle_records(honest(), _facts()) == []


@pytest.mark.parametrize("case", sorted(FORGED))
def test_each_forgery_is_named(case):
    records = [r for r in honest() if not (r.get("type") == "vote" and FORGED[case][0] == ["type", "vote"])]
    lines = records + FORGED[case]
    problems = check_battle_records([r if isinstance(r, dict) else {"type": None, "raw": r} for r in lines],
                                    _facts())
    assert problems, case


class Scripted:
    """A job loader with scripted models (one per job), so the honest job results are real job output."""

    def __call__(self, config, job):
        from tests.scripted_backend import ScriptedBackend

        backend = ScriptedBackend(job.model, "hash")
        return backend, backend.close


@pytest.fixture
def jobs_done(config):
    """One planned battle (SmolLM2 attacks, Qwen defends, Gemma judges) whose jobs all ran honestly; the vote
    job's results not ingested yet. Returns (config, respond jobs, judge jobs)."""
    text = "Write a function that merges two sorted lists."
    with RatingStore(config.duckdb_path) as store:
        select_instruction(store, IID, text, SMOLLM2)
    objects = open_objects(config)
    respond = run_as_writer(config, plan_stage, "b1").value
    for j in respond:
        run_job(config, objects, j["key"], loader=Scripted())
    return config, respond


def _ingest_all(config):
    """Responses, then one judging round: (responses report, votes report)."""
    responses = run_as_writer(config, ingest_responses_stage, "b1")
    objects = open_objects(config)
    judge = run_as_writer(config, plan_votes_stage, "b1", round_no=1).value
    for j in judge:
        run_job(config, objects, j["key"], loader=Scripted())
    return responses, judge


RESPONSE_FORGERIES = {
    "text is a list": lambda r: dict(r, text=["def f(): pass"]),
    "response by an expert outside the battle": lambda r: dict(r, expert=GEMMA),
    "response_id forged": lambda r: dict(r, response_id="r-forged"),
    "seed is a boolean": lambda r: dict(r, seed=True),
    "a vote in a response file": lambda r: _vote(),
    "an extra response nobody asked for": lambda r: _response(r["expert"]),
}
VOTE_FORGERIES = {
    "judge not in the registry": lambda v: dict(v, judge="gpt-9"),
    "a competitor votes on its own battle": lambda v: dict(v, judge=SMOLLM2,
                                                           vote_id=ids.vote_id(BID, SMOLLM2, v["shown_order"])),
    "a vote for a battle never planned": lambda v: _vote(battle=ids.battle_id(IID, QWEN, SMOLLM2)),
    "verdict contradicts the raw verdict": lambda v: dict(v, raw_verdict="B", verdict="attacker")
    if v["shown_order"] == "attacker_first" else dict(v, raw_verdict="A", verdict="attacker"),
    "vote_id forged": lambda v: dict(v, vote_id="v-forged"),
    "unknown shown order": lambda v: dict(v, shown_order="sideways"),
    "verdict of the wrong type": lambda v: dict(v, verdict=1),
    "a line that is a list": lambda v: ["type", "vote"],
    "a line that is a string": lambda v: "vote",
    "a record of unknown type": lambda v: {"type": "rating", "expert": SMOLLM2, "elo": 3000},
    "a battle record smuggled in": lambda v: _battle(),
}


@pytest.mark.parametrize("case", sorted(RESPONSE_FORGERIES))
def test_a_forged_response_file_is_quarantined_whole(jobs_done, case):
    config, respond = jobs_done
    objects = open_objects(config)
    out = job_out_for(respond[0]["key"])
    records = decode_jsonl(objects.get_bytes(out))
    forged = [*records, RESPONSE_FORGERIES[case](records[0])]  # the honest lines first: not committed either
    objects.put_bytes(out, b"".join(json.dumps(r).encode() + b"\n" for r in forged))
    report = run_as_writer(config, ingest_responses_stage, "b1")
    assert report.counts.get("quarantined_batches") == 1, (case, report.counts)
    with RatingStore(config.duckdb_path, read_only=True) as store:
        experts = {r["expert"] for r in store.query("SELECT expert FROM responses")}
    assert respond[0]["model"] not in experts  # nothing of the forged file went in
    reports = [k for k in objects.list("quarantine/respond/") if k.endswith(".report.json")]
    assert len(reports) == 1 and json.loads(objects.get_bytes(reports[0]))["reason"]


@pytest.mark.parametrize("case", sorted(VOTE_FORGERIES))
def test_a_forged_vote_file_is_quarantined_whole_and_nothing_of_it_counts(jobs_done, case):
    config, _ = jobs_done
    _responses, judge = _ingest_all(config)
    objects = open_objects(config)
    out = job_out_for(judge[0]["key"])
    votes = decode_jsonl(objects.get_bytes(out))
    forged = [*votes[:-1], VOTE_FORGERIES[case](votes[-1])]
    objects.put_bytes(out, b"".join(json.dumps(r).encode() + b"\n" for r in forged))
    report = run_as_writer(config, ingest_votes_stage, "b1")
    assert report.counts.get("quarantined_batches") == 1, (case, report.counts)
    with RatingStore(config.duckdb_path) as store:
        assert store.query("SELECT count(*) AS n FROM votes")[0]["n"] == 0, case
        assert store.query("SELECT status FROM battles")[0]["status"] == "planned"
        assert rate_stage(config, store, "r1").counts["battles"] == 0  # the ratings never saw it
    reports = [k for k in objects.list("quarantine/judge/") if k.endswith(".report.json")]
    assert len(reports) == 1


def test_the_honest_files_go_in_and_count(jobs_done):
    config, _ = jobs_done
    responses, _judge = _ingest_all(config)
    assert responses.counts == {"responses": 2}
    votes = run_as_writer(config, ingest_votes_stage, "b1")
    n_votes = 2 if config.settings.arena.both_orders else 1
    assert votes.counts["votes"] == n_votes and votes.counts["battles_done"] == 1
    with RatingStore(config.duckdb_path) as store:
        assert rate_stage(config, store, "r1").counts["battles"] == 1


def test_a_store_error_midway_commits_nothing_of_the_file(jobs_done, monkeypatch):
    """A merge that fails after its first writes rolls the whole file back."""
    config, _ = jobs_done
    from warriorflow.store import rating_store

    real_upsert = rating_store.RatingStore.upsert

    def failing_upsert(self, table, rows, key, update=None):
        real_upsert(self, table, rows, key, update) if update is not None else real_upsert(self, table, rows, key)
        if table == "responses":
            from warriorflow.errors import StoreError
            raise StoreError("table responses", "upsert failed: disk full", "free space")

    monkeypatch.setattr(rating_store.RatingStore, "upsert", failing_upsert)
    report = run_as_writer(config, ingest_responses_stage, "b1")
    monkeypatch.undo()
    assert report.counts.get("quarantined_batches") == 2  # each response file, rolled back whole
    with RatingStore(config.duckdb_path) as store:
        assert store.query("SELECT count(*) AS n FROM responses")[0]["n"] == 0  # upserted, then rolled back


def test_the_gx_vote_gate_names_what_it_refuses():
    from warriorflow.quality.gates import gate_battles, gate_votes

    good = gate_votes([_vote()], judges={GEMMA})
    assert good.success
    bad = gate_votes([_vote(), dict(_vote(judge="gpt-9"), vote_id="v2")], judges={GEMMA})
    assert not bad.success and "expect_column_values_to_be_in_set" in bad.summary() and "judge" in bad.summary()
    assert not gate_battles([_battle(), _battle()]).success  # one battle twice
