"""Forged and malformed battle result files: each is quarantined whole, with the problem of each bad line
in its report, nothing of it is committed, and the ratings never see its votes. The honest file of the
same battle goes in."""

from __future__ import annotations

import json

import pytest

from tests.helpers import GEMMA, QWEN, SMOLLM2
from warriorflow.method import ids
from warriorflow.method.battle_records import ArenaFacts, PlannedBattleRef, check_battle_records
from warriorflow.stages.ingest_battles import ingest_battles_stage
from warriorflow.stages.rate import rate_stage
from warriorflow.store.jsonl import encode_jsonl
from warriorflow.store.keys import battle_out_key
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


@pytest.fixture
def planned(config):
    with RatingStore(config.duckdb_path) as store:
        store.upsert("battles", [{"battle_id": BID, "instruction_id": IID, "attacker": SMOLLM2, "defender": QWEN,
                                  "battle_order": 0, "status": "planned", "judges": [GEMMA], "run_id": "b1"}],
                     key=["battle_id"])
    return config


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


@pytest.mark.parametrize("case", sorted(FORGED))
def test_a_forged_file_is_quarantined_whole_and_nothing_of_it_counts(planned, case):
    objects = open_objects(planned)
    key = battle_out_key("b1", 0)
    lines = honest() + FORGED[case]  # the good lines first: they must not be committed either
    objects.put_bytes(key, b"".join(json.dumps(r).encode() + b"\n" for r in lines))
    with RatingStore(planned.duckdb_path) as store:
        report = ingest_battles_stage(planned, store, objects, "b1")
        assert report.counts.get("quarantined_batches") == 1, (case, report.counts)
        for table in ("responses", "votes"):
            assert store.query(f"SELECT count(*) AS n FROM {table}")[0]["n"] == 0, (case, table)
        assert store.query("SELECT status FROM battles")[0]["status"] == "planned"
        assert store.query("SELECT count(*) AS n FROM ingested_files")[0]["n"] == 0
        assert rate_stage(planned, store, "r1").counts["battles"] == 0  # the ratings never saw it
    reports = [k for k in objects.list("quarantine/battle/") if k.endswith(".report.json")]
    assert len(reports) == 1 and json.loads(objects.get_bytes(reports[0]))["details"]["problems"]


def test_the_honest_file_goes_in_and_counts(planned):
    objects = open_objects(planned)
    objects.put_bytes(battle_out_key("b1", 0), encode_jsonl(honest()))
    with RatingStore(planned.duckdb_path) as store:
        report = ingest_battles_stage(planned, store, objects, "b1")
        assert report.counts == {"responses": 2, "votes": 1, "battles": 1}
        assert rate_stage(planned, store, "r1").counts["battles"] == 1


def test_a_store_error_midway_commits_nothing_of_the_file(planned, monkeypatch):
    """A merge that fails after its first writes (here: the battles update) rolls the whole file back."""
    objects = open_objects(planned)
    objects.put_bytes(battle_out_key("b1", 0), encode_jsonl(honest()))
    with RatingStore(planned.duckdb_path) as store:
        real_update = store.update

        def failing_update(table, key, rows):
            if table == "battles":
                from warriorflow.errors import StoreError
                raise StoreError("table battles", "update failed: disk full", "free space")
            return real_update(table, key, rows)

        monkeypatch.setattr(store, "update", failing_update)
        report = ingest_battles_stage(planned, store, objects, "b1")
        assert report.counts.get("quarantined_batches") == 1
        assert store.query("SELECT count(*) AS n FROM responses")[0]["n"] == 0  # upserted, then rolled back
        assert store.query("SELECT count(*) AS n FROM votes")[0]["n"] == 0


def test_the_gx_vote_gate_names_what_it_refuses():
    from warriorflow.quality.gates import gate_battles, gate_votes

    good = gate_votes([_vote()], judges={GEMMA})
    assert good.success
    bad = gate_votes([_vote(), dict(_vote(judge="gpt-9"), vote_id="v2")], judges={GEMMA})
    assert not bad.success and "expect_column_values_to_be_in_set" in bad.summary() and "judge" in bad.summary()
    assert not gate_battles([_battle(), _battle()]).success  # one battle twice
