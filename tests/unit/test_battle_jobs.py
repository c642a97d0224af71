"""Battles as per-model jobs (response jobs, judging rounds, closing) give exactly the records of the
single-process battle batch on the same plan: same responses, votes, ids, battle records and ratings,
in every arena mode, with any shard size; each job loads one model; the loads per cycle are
(answerers + judges) x shards."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from tests.scripted_backend import ScriptedBackend
from warriorflow.config import PROMPTS_DIR, ArenaSettings
from warriorflow.method import battle_batch as bb
from warriorflow.method import battle_jobs as bj
from warriorflow.method import ids
from warriorflow.method.battle_jobs import BatchInputError
from warriorflow.method.jobs import JobInput, job_id, shard, shard_size
from warriorflow.method.rating import BattleVotes, elo_fold
from warriorflow.method.votes import effective_vote

TEMPLATE = (PROMPTS_DIR / "battle_judge.txt").read_text()
EXPERTS = ["c1", "c2", "c3", "c4"]
JUDGES = ["j1", "j2", "j3", "c3", "c4"]  # two competitors judge too, never their own battles


def plan(n: int = 12) -> list[bj.PlannedBattle]:
    battles = []
    for i in range(n):
        text = f"Write a Python function number {i} that reverses a list."
        iid = ids.instruction_id(text)
        att, dfd = EXPERTS[i % 4], EXPERTS[(i + 1 + i // 4) % 4]
        if att == dfd:
            dfd = EXPERTS[(i + 2) % 4]
        panel = tuple(j for j in JUDGES if j not in (att, dfd))
        battles.append(bj.PlannedBattle(ids.battle_id(iid, att, dfd), iid, text, att, dfd, panel, i))
    # one instruction fought twice by the same attacker: its response serves both battles
    b0 = battles[0]
    other = next(e for e in EXPERTS if e not in (b0.attacker, b0.defender))
    battles.append(bj.PlannedBattle(ids.battle_id(b0.instruction_id, b0.attacker, other), b0.instruction_id,
                                    b0.instruction, b0.attacker, other,
                                    tuple(j for j in JUDGES if j not in (b0.attacker, other)), n))
    return battles


STYLES = {"j1": "hash", "j2": "favour:c2", "j3": "always:[[A]]", "c3": "oppose:c1", "c4": "hash"}


class Loads:
    """A backend factory that counts model loads (one ScriptedBackend per load)."""

    def __init__(self):
        self.loads: Counter = Counter()

    def __call__(self, name: str) -> ScriptedBackend:
        self.loads[name] += 1
        return ScriptedBackend(name, STYLES.get(name, "hash"))


class MemoryLedger:
    def __init__(self):
        self.responses: dict[str, dict] = {}
        self.votes: dict[str, dict] = {}

    def append(self, records) -> None:
        for r in records:
            (self.responses if r["type"] == "response" else self.votes).setdefault(
                r["response_id"] if r["type"] == "response" else r["vote_id"], r)


def reference(battles, arena: ArenaSettings) -> list[dict]:
    batch = bb.BattleBatchInput("run-1", arena, tuple(battles))
    return bb.battle_batch(batch, lambda n: ScriptedBackend(n, STYLES.get(n, "hash")), MemoryLedger(), TEMPLATE)


def as_jobs(battles, arena: ArenaSettings, items_per_job: int, loads: Loads) -> tuple[list[dict], int]:
    """The job flow in memory: response jobs, then judging rounds of judge jobs, then closing."""
    responses: dict[str, dict] = {}
    for model, _n, items in shard({e: [r.to_dict() for r in rs]
                                   for e, rs in bj.response_requests(battles, arena).items()}, items_per_job, 1000):
        backend = loads(model)
        for r in bj.answer([bj.ResponseRequest(**i) for i in items], backend, arena, "run-1"):
            responses[r["response_id"]] = r
    texts = {(r["instruction_id"], r["expert"]): r["text"] for r in responses.values()}
    votes: dict[str, dict] = {}
    rounds = 0
    while True:
        requests = bj.vote_requests(battles, arena, {k: v["verdict"] for k, v in votes.items()}, texts)
        if not requests:
            break
        rounds += 1
        for model, _n, items in shard({j: [r.to_dict() for r in rs] for j, rs in requests.items()},
                                      items_per_job, 1000):
            for v in bj.cast_votes([bj.VoteRequest(**i) for i in items], loads(model), TEMPLATE, arena, "run-1"):
                votes[v["vote_id"]] = v
    closed = bj.close(battles, arena, {k: v["verdict"] for k, v in votes.items()}, "run-1")
    assert len(closed) == len(battles)  # every battle's judging is over
    out = sorted(responses.values(), key=lambda r: r["response_id"]) + sorted(votes.values(),
                                                                                key=lambda v: v["vote_id"])
    return out + sorted(closed, key=lambda r: (r["battle_order"], r["battle_id"])), rounds


def ratings(records) -> dict[str, float]:
    battles = [r for r in records if r["type"] == "battle"]
    log = [BattleVotes(b["battle_id"], b["instruction_id"], b["attacker"], b["defender"],
                       {j: v for j, v in sorted(b["effective_votes"].items())}) for b in battles]
    return elo_fold(log, k=40, initial=1000)


@pytest.mark.parametrize("both_orders", [False, True])
@pytest.mark.parametrize("sequential", [False, True])
@pytest.mark.parametrize("items_per_job", [1, 3, 1000])
def test_jobs_give_the_batch_records_exactly(both_orders, sequential, items_per_job):
    arena = ArenaSettings(both_orders=both_orders, sequential_voting=sequential, seed=5)
    battles = plan()
    want = reference(battles, arena)
    got, rounds = as_jobs(battles, arena, items_per_job, Loads())
    assert got == want
    assert ratings(got) == ratings(want)
    assert rounds == 1 if not sequential else rounds >= 2  # sequential voting asks in rounds
    if sequential:
        saved = sum(b["judge_calls_saved"] for b in got if b["type"] == "battle")
        assert saved > 0  # the rounds stopped early somewhere, as the batch does


def test_model_loads_are_answerers_plus_judges_times_shards():
    arena = ArenaSettings(both_orders=True, seed=1)
    battles = plan(16)
    loads = Loads()
    as_jobs(battles, arena, items_per_job=4, loads=loads)
    per_answerer = {e: len(rs) for e, rs in bj.response_requests(battles, arena).items()}
    votes_per_judge = Counter(j for b in battles for j in b.judges for _ in range(2))
    expected = {**{e: math.ceil(n / 4) for e, n in per_answerer.items()}}
    for j, n in votes_per_judge.items():
        expected[j] = expected.get(j, 0) + math.ceil(n / 4)
    assert dict(loads.loads) == expected
    # the batch path loads every expert of a batch in every batch (here: one batch -> one each)
    assert sum(loads.loads.values()) == sum(expected.values())


def test_next_judges_is_a_prefix_of_the_panel_and_skips_cast_votes():
    arena = ArenaSettings(sequential_voting=True, seed=2)
    b = plan(1)[0]
    panel = bb.judge_order(arena.seed, b)
    first = bj.next_judges(b, arena, {})
    assert first == panel[:len(first)] and len(first) == len(panel) // 2 + 1
    # the first judge voted; a later judge's vote alone does not count as the prefix
    verdicts = {ids.vote_id(b.battle_id, panel[0], o): "attacker" for o in bb.shown_orders(arena, b.battle_id,
                                                                                              panel[0])}
    asked, nxt = bj.judging_state(b, arena, verdicts)
    assert asked == [panel[0]] and nxt[0] == panel[1]
    requests = bj.vote_requests([b], arena, verdicts, {(b.instruction_id, b.attacker): "x",
                                                       (b.instruction_id, b.defender): "y"})
    assert all(r.judge != panel[0] for rs in requests.values() for r in rs)
    assert bj.vote_requests([b], arena, {}, {(b.instruction_id, b.attacker): "x"}) == {}  # a response missing


def test_effective_votes_of_a_closed_battle_match_its_votes():
    arena = ArenaSettings(both_orders=True, seed=9)
    battles = plan(4)
    got, _ = as_jobs(battles, arena, 2, Loads())
    votes = [r for r in got if r["type"] == "vote"]
    for b in (r for r in got if r["type"] == "battle"):
        for judge, eff in b["effective_votes"].items():
            mine = [v["verdict"] for v in votes if v["battle_id"] == b["battle_id"] and v["judge"] == judge]
            assert len(mine) == 2 and eff == effective_vote(mine)


# ------------------------------------------------------------------------------------------------ shards
def test_shards_never_exceed_the_job_cap():
    counts = {f"m{i}": n for i, n in enumerate([70_000, 70_000, 35_000, 10, 1])}
    size = shard_size(counts, 512, 256)
    assert sum(math.ceil(n / size) for n in counts.values()) <= 256 and size >= 512
    assert shard_size(counts, 10**9, 256) == 10**9
    assert shard_size({"a": 5}, 2, 1) == 5  # one model, one job
    cut = shard({"a": [{"i": k} for k in range(7)], "b": []}, 3, 100)
    assert [(m, n, len(items)) for m, n, items in cut] == [("a", 0, 3), ("a", 1, 3), ("a", 2, 1)]


def test_job_ids_are_file_safe():
    assert job_id("judge", "org/model@abc", 3, 2) == "judge-r02-org-model-abc-s0003"
    assert job_id("respond", "c1", 0) == "respond-c1-s0000"


SCORE = {"job_id": "j", "step": "score", "model": "m", "run_id": "r",
         "params": {"template": "Rate {instruction}", "language": "Python"}, "items": []}


@pytest.mark.parametrize(("doc", "what"), [
    (b"{", "not valid JSON"), (b"[]", "JSON object"),
    (dict(SCORE, step="dance"), "dance"),
    (dict(SCORE, items=[{"text": "x"}]), "instruction_id"),
    (dict(SCORE, items=[{"instruction_id": "a", "text": "x"}, {"instruction_id": "a", "text": "y"}]), "repeat"),
    (dict(SCORE, params=[]), "params"),
    (dict(SCORE, params={"template": "t"}), "params.language"),
    (dict(SCORE, round=0), "round"),
    (dict(SCORE, items=[{"instruction_id": "a", "text": "x", "extra": 1}]), "exactly"),
    (dict(SCORE, items=[{"instruction_id": "a", "text": ["x"]}]), "text: must be a str"),
    ({"job_id": "j", "step": "respond", "model": "c1", "run_id": "r", "params": {"arena": {}},
      "items": [{"response_id": "a", "instruction_id": "i", "instruction": "x", "expert": "c2", "seed": 1}]},
     "not the job's model"),
    ({"job_id": "j", "step": "respond", "model": "c1", "run_id": "r", "params": {"arena": {}},
      "items": [{"response_id": "a", "instruction_id": "i", "instruction": "x", "expert": "c1", "seed": True}]},
     "seed: must be a int"),
])
def test_forged_job_inputs_are_refused(doc, what):
    import json

    with pytest.raises(BatchInputError, match=what):
        JobInput.from_json(doc if isinstance(doc, bytes) else json.dumps(doc))
