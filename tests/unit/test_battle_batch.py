"""The battle batch: batching, seeded shown orders, both orders, sequential voting, checkpoint/resume
(including kill -9 of a real subprocess at random points), the URI entry point, and a real-model run."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.helpers import QWEN, REPO, SMOLLM2
from tests.scripted_backend import ScriptedBackend, backends_for
from warriorflow.config import PROMPTS_DIR, ArenaSettings
from warriorflow.errors import BackendError, ConfigError, StoreError
from warriorflow.inference.base import Generation, per_item
from warriorflow.method import battle_batch as bb
from warriorflow.method import battle_jobs as jobs
from warriorflow.method import ids
from warriorflow.method import votes as V
from warriorflow.stages import battle as battle_stage
from warriorflow.store import checkpoint as ck
from warriorflow.store.jsonl import decode_jsonl, encode_jsonl
from warriorflow.store.objects import split_object_uri

TEMPLATE = (PROMPTS_DIR / "battle_judge.txt").read_text()


def make_batch(pairs, judges, run_id="run-1", **arena) -> bb.BattleBatchInput:
    """pairs: (instruction text, attacker, defender); judges: a list for every battle, or a function of the pair."""
    battles = []
    for order, (text, att, dfd) in enumerate(pairs):
        iid = ids.instruction_id(text)
        panel = judges(att, dfd) if callable(judges) else judges
        battles.append({"battle_id": ids.battle_id(iid, att, dfd), "instruction_id": iid, "instruction": text,
                        "attacker": att, "defender": dfd, "judges": list(panel), "battle_order": order})
    return bb.BattleBatchInput.from_json({"run_id": run_id, "arena": arena, "battles": battles})


def by_type(records):
    out = {"response": [], "vote": [], "battle": []}
    for r in records:
        out[r["type"]].append(r)
    return out


def run(batch, backends, tmp_path, name="ckpt"):
    return battle_stage.run_battle_batch(batch, backends, tmp_path / name, TEMPLATE)


COMPETITORS = ["c1", "c2", "c3"]
PAIRS = [(f"Write a Python function number {i} that sorts a list {{x}}.", COMPETITORS[i % 3],
          COMPETITORS[(i + 1) % 3]) for i in range(6)]
# c1 attacks one instruction twice: its one response is reused in both battles
PAIRS.append((PAIRS[0][0], "c1", "c3"))


# ------------------------------------------------------------------------------------------ batching


def test_one_chat_call_per_expert_and_per_judge(tmp_path):
    batch = make_batch(PAIRS, ["j1", "j2", "j3"])
    backends = backends_for(COMPETITORS + ["j1", "j2", "j3"])
    records = by_type(run(batch, backends, tmp_path))
    for c in COMPETITORS:
        assert len(backends[c].calls) == 1
        convs, sampling = backends[c].calls[0]
        assert all(len(conv) == 1 and conv[0]["role"] == "user" for conv in convs)
        assert len({s.seed for s in sampling}) == len(convs)  # a seed per item
    for j in ("j1", "j2", "j3"):
        assert len(backends[j].calls) == 1
        convs, sampling = backends[j].calls[0]
        assert len(convs) == len(PAIRS)
        assert sampling.choices == ("[[A]]", "[[B]]", "[[Tie]]") and sampling.temperature == 0
    # distinct (instruction, expert) pairs: c1's answer to instruction 0 is generated once, used twice
    assert len(records["response"]) == len({(t, e) for t, a, d in PAIRS for e in (a, d)}) == 13
    first, last = records["battle"][0], records["battle"][-1]
    assert first["attacker_response_id"] == last["attacker_response_id"]
    assert len(records["vote"]) == 3 * len(PAIRS)
    for b in records["battle"]:
        assert (b["judge_calls"], b["judge_calls_saved"]) == (3, 0)
        assert sorted(b["judges_asked"]) == ["j1", "j2", "j3"] and set(b["effective_votes"]) == {"j1", "j2", "j3"}


def test_record_formats_and_ids(tmp_path):
    batch = make_batch(PAIRS[:2], ["j1"], response_max_tokens=64, response_temperature=0.5, response_top_p=0.9,
                       seed=3)
    records = by_type(run(batch, backends_for(COMPETITORS + ["j1"]), tmp_path))
    r = records["response"][0]
    assert set(r) == {"type", "response_id", "instruction_id", "expert", "text", "sampling", "seed",
                      "finish_reason", "prompt_tokens", "completion_tokens", "run_id"}
    assert r["sampling"] == {"max_tokens": 64, "temperature": 0.5, "top_p": 0.9}
    assert r["seed"] == jobs.response_seed(3, r["instruction_id"], r["expert"])
    assert r["response_id"] == ids.response_id(r["instruction_id"], r["expert"], r["sampling"], r["seed"])
    v = records["vote"][0]
    assert set(v) == {"type", "vote_id", "battle_id", "judge", "shown_order", "raw_verdict", "verdict",
                      "probs", "raw_text", "run_id"}
    assert v["probs"] is None  # the scripted backend reports no logprobs: a discrete vote
    assert v["vote_id"] == ids.vote_id(v["battle_id"], v["judge"], v["shown_order"])
    assert v["verdict"] == V.to_competitor(v["raw_verdict"], v["shown_order"]) and v["run_id"] == "run-1"
    b = records["battle"][0]
    assert set(b) == {"type", "battle_id", "instruction_id", "attacker", "defender", "attacker_response_id",
                      "defender_response_id", "battle_order", "judges_asked", "judge_calls", "judge_calls_saved",
                      "effective_votes", "run_id"}
    assert [x["battle_order"] for x in records["battle"]] == [0, 1]
    assert [x["response_id"] for x in records["response"]] == sorted(x["response_id"] for x in records["response"])
    assert [x["vote_id"] for x in records["vote"]] == sorted(x["vote_id"] for x in records["vote"])


def test_judge_sees_both_responses_in_the_shown_order(tmp_path):
    batch = make_batch(PAIRS[:4], ["j1"])
    backends = backends_for(COMPETITORS + ["j1"])
    records = by_type(run(batch, backends, tmp_path))
    texts = {r["response_id"]: r["text"] for r in records["response"]}
    battles = {b["battle_id"]: b for b in records["battle"]}
    prompts = [conv[0]["content"] for conv in backends["j1"].calls[0][0]]
    for v in records["vote"]:
        b = battles[v["battle_id"]]
        att, dfd = texts[b["attacker_response_id"]], texts[b["defender_response_id"]]
        a, bb_ = (att, dfd) if v["shown_order"] == V.ATTACKER_FIRST else (dfd, att)
        assert any(f"[Response A]\n{a}\n[End of Response A]" in p and f"[Response B]\n{bb_}\n" in p
                   for p in prompts)


# ------------------------------------------------------------------------------------------ orders


def test_shown_orders_are_seeded_and_mixed(tmp_path):
    pairs = [(f"Task {i}: parse a CSV line", "c1", "c2") for i in range(24)]
    batch = make_batch(pairs, ["j1", "j2"])
    orders = []
    for name in ("a", "b"):
        recs = by_type(run(batch, backends_for(["c1", "c2", "j1", "j2"]), tmp_path, name))
        orders.append({(v["battle_id"], v["judge"]): v["shown_order"] for v in recs["vote"]})
    assert orders[0] == orders[1]  # same input, same orders
    assert len(orders[0]) == 48 and set(Counter(orders[0].values())) == {V.ATTACKER_FIRST, V.DEFENDER_FIRST}
    for (battle_id, judge), order in orders[0].items():
        assert order == bb.shown_order(0, battle_id, judge)
    other_seed = make_batch(pairs, ["j1", "j2"], seed=99)
    recs = by_type(run(other_seed, backends_for(["c1", "c2", "j1", "j2"]), tmp_path, "c"))
    assert {(v["battle_id"], v["judge"]): v["shown_order"] for v in recs["vote"]} != orders[0]


def test_both_orders_inconsistent_pair_is_a_tie(tmp_path):
    batch = make_batch(PAIRS[:3], ["biased", "fair"], both_orders=True)
    backends = backends_for(COMPETITORS + ["biased", "fair"], {"biased": "always:[[A]]", "fair": "favour:c1"})
    records = by_type(run(batch, backends, tmp_path))
    assert len(backends["biased"].calls) == 1 and len(backends["biased"].calls[0][0]) == 6
    for b in records["battle"]:
        mine = [v for v in records["vote"] if v["battle_id"] == b["battle_id"] and v["judge"] == "biased"]
        assert sorted(v["shown_order"] for v in mine) == [V.ATTACKER_FIRST, V.DEFENDER_FIRST]
        assert sorted(v["verdict"] for v in mine) == [V.ATTACKER, V.DEFENDER]
        assert b["effective_votes"]["biased"] == V.TIE
        expected = V.TIE if "c1" not in (b["attacker"], b["defender"]) else (
            V.ATTACKER if b["attacker"] == "c1" else V.DEFENDER)
        assert b["effective_votes"]["fair"] == expected  # consistent in both orders
        assert (b["judge_calls"], b["judge_calls_saved"]) == (4, 0)


def test_invalid_verdict_is_stored_with_its_raw_text(tmp_path):
    batch = make_batch(PAIRS[:2], ["mute", "ambiguous"], both_orders=True)
    styles = {"mute": "always:I cannot decide.", "ambiguous": "always:[[A]] or maybe [[B]]"}
    records = by_type(run(batch, backends_for(COMPETITORS + ["mute", "ambiguous"], styles), tmp_path))
    assert len(records["vote"]) == 8
    for v in records["vote"]:
        assert (v["raw_verdict"], v["verdict"]) == ("invalid", "invalid")
        assert v["raw_text"] == styles[v["judge"]].removeprefix("always:")
    assert all(set(b["effective_votes"].values()) == {"invalid"} for b in records["battle"])


# ------------------------------------------------------------------------------------------ sequential


def _result(battle: dict) -> int:
    votes = list(battle["effective_votes"].values())
    return (votes.count(V.ATTACKER) > votes.count(V.DEFENDER)) - (votes.count(V.ATTACKER) < votes.count(V.DEFENDER))


@pytest.mark.parametrize("both_orders", [False, True])
def test_sequential_voting_saves_calls_and_keeps_every_outcome(tmp_path, both_orders):
    judges = ["j1", "j2", "j3", "j4", "j5"]
    styles = {"j1": "favour:c1", "j2": "favour:c1", "j3": "favour:c1", "j4": "favour:c2", "j5": "favour:c2"}
    pairs = [(f"Task {i}: implement an LRU cache", *(("c1", "c2") if i % 2 else ("c2", "c1"))) for i in range(10)]
    pairs += [(f"Task {i}: reverse a linked list", "c1", "c3") for i in range(10)]  # judges j4, j5 tie these
    results = {}
    for mode in (False, True):
        batch = make_batch(pairs, judges, both_orders=both_orders, sequential_voting=mode)
        backends = backends_for(["c1", "c2", "c3", *judges], styles)
        recs = by_type(run(batch, backends, tmp_path, f"seq-{mode}"))
        results[mode] = ({b["battle_id"]: _result(b) for b in recs["battle"]}, recs, backends)
    full, seq = results[False], results[True]
    assert full[0] == seq[0]  # identical battle outcomes
    assert set(full[0].values()) == {1, -1}
    per_judge = 2 if both_orders else 1
    saved = 0
    for b in seq[1]["battle"]:
        assert b["judge_calls"] + b["judge_calls_saved"] == 5 * per_judge
        assert b["judge_calls"] == per_judge * len(b["judges_asked"]) == per_judge * len(b["effective_votes"])
        assert b["judges_asked"] == bb.judge_order(0, _planned(pairs, b))[:len(b["judges_asked"])]
        saved += b["judge_calls_saved"]
    assert saved > 0
    assert sum(b["judge_calls"] for b in seq[1]["battle"]) == len(seq[1]["vote"])
    assert all(b["judge_calls_saved"] == 0 for b in full[1]["battle"])
    # one chat call per judge per round, at most 3 rounds for a panel of 5
    assert all(len(seq[2][j].calls) <= 3 for j in judges)


def _planned(pairs, battle_record):
    text = next(t for t, a, d in pairs if ids.instruction_id(t) == battle_record["instruction_id"])
    return bb.PlannedBattle(battle_record["battle_id"], battle_record["instruction_id"], text,
                            battle_record["attacker"], battle_record["defender"], ("j1", "j2", "j3", "j4", "j5"),
                            battle_record["battle_order"])


def test_sequential_voting_matches_full_panel_on_noisy_judges(tmp_path):
    judges = [f"j{i}" for i in range(7)]
    pairs = [(f"Noisy task {i}", f"c{i % 3 + 1}", f"c{(i + 1) % 3 + 1}") for i in range(60)]
    outcome = {}
    for mode in (False, True):
        batch = make_batch(pairs, judges, sequential_voting=mode, both_orders=True)
        recs = by_type(run(batch, backends_for(COMPETITORS + judges), tmp_path, f"n-{mode}"))
        outcome[mode] = ({b["battle_id"]: _result(b) for b in recs["battle"]},
                         sum(b["judge_calls"] for b in recs["battle"]))
    assert outcome[False][0] == outcome[True][0]
    assert outcome[True][1] <= outcome[False][1]


def test_judges_needed_is_the_fewest_that_could_decide():
    assert bb.judges_needed([], 5) == 3
    assert bb.judges_needed([V.ATTACKER, V.ATTACKER, V.ATTACKER], 2) == 0
    assert bb.judges_needed([V.ATTACKER, V.ATTACKER, V.DEFENDER], 2) == 1
    assert bb.judges_needed([V.ATTACKER, V.TIE], 3) == 2
    assert bb.judges_needed([V.INVALID, V.INVALID], 3) == 2
    assert bb.judges_needed([V.ATTACKER], 0) == 0
    # brute force: asking one at a time never stops before the lookahead says it could
    for remaining in range(0, 7):
        for a in range(0, 5):
            for d in range(0, 5):
                eff = [V.ATTACKER] * a + [V.DEFENDER] * d
                k = bb.judges_needed(eff, remaining)
                for j in range(1, k):  # fewer than k more votes can never decide
                    assert not V.majority_decided(eff + [V.ATTACKER] * j, remaining - j)
                    assert not V.majority_decided(eff + [V.DEFENDER] * j, remaining - j)


# ------------------------------------------------------------------------------------------ checkpoint


class Exploding(ScriptedBackend):
    def chat(self, conversations, sampling):
        raise BackendError(f"expert '{self.name}'", "server down")


def test_resume_never_redoes_finished_work(tmp_path):
    batch = make_batch(PAIRS, ["j1", "j2"], both_orders=True)
    names = COMPETITORS + ["j1", "j2"]
    reference = run(batch, backends_for(names), tmp_path, "ref")

    broken = backends_for(names)
    broken["j2"] = Exploding("j2")
    with pytest.raises(BackendError, match="server down"):
        run(batch, broken, tmp_path)
    fresh = backends_for(names)
    assert run(batch, fresh, tmp_path) == reference
    assert [len(fresh[n].calls) for n in names] == [0, 0, 0, 0, 1]  # only j2's votes were left

    done = {n: Exploding(n) for n in names}  # all finished: no call at all
    assert run(batch, done, tmp_path) == reference
    lines = [json.loads(x) for x in (tmp_path / "ckpt").glob("*.jsonl").__next__().read_text().splitlines()]
    assert len(lines) == len({x.get("vote_id") or x["response_id"] for x in lines}) == 13 + 4 * len(PAIRS)


def test_torn_or_damaged_tail_is_cut_and_interior_damage_is_an_error(tmp_path):
    batch = make_batch(PAIRS[:3], ["j1"])
    names = COMPETITORS + ["j1"]
    reference = run(batch, backends_for(names), tmp_path)
    path = ck.checkpoint_path(tmp_path / "ckpt", batch, TEMPLATE)
    good = path.read_bytes()
    for tail in (b'{"type": "vote", "vote_id": "ab', b'{"type": "vote"}\n', b"\x00\x00\x00\x00\n", b"garbage"):
        path.write_bytes(good + tail)
        assert run(batch, {n: Exploding(n) for n in names}, tmp_path) == reference
        assert path.read_bytes() == good
    # a torn response line: that response (and the votes after it) are redone
    lines = good.splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2]) + lines[2][:20])
    assert run(batch, backends_for(names), tmp_path) == reference
    path.write_bytes(lines[0] + b"not json\n" + b"".join(lines[1:]))
    with pytest.raises(ck.CheckpointError, match="line 2"):
        run(batch, backends_for(names), tmp_path)


def test_checkpoint_is_locked_and_keyed_to_its_input(tmp_path):
    batch = make_batch(PAIRS[:2], ["j1"])
    held = ck.Checkpoint(ck.checkpoint_path(tmp_path / "ckpt", batch, TEMPLATE))
    try:
        with pytest.raises(ck.CheckpointError, match="locked"):
            run(batch, backends_for(COMPETITORS + ["j1"]), tmp_path)
    finally:
        held.close()
    other = make_batch(PAIRS[:2], ["j1"], run_id="run-2")
    assert ck.checkpoint_path(tmp_path, batch, TEMPLATE) != ck.checkpoint_path(tmp_path, other, TEMPLATE)
    assert ck.checkpoint_path(tmp_path, batch, TEMPLATE) != ck.checkpoint_path(tmp_path, batch, TEMPLATE + " ")


class OddText(ScriptedBackend):
    """Answers with non-ASCII text and a lone surrogate (a multibyte character cut by max_tokens)."""

    def chat(self, conversations, sampling):
        gens = super().chat(conversations, sampling)
        return [g if s.choices else Generation(g.text + " héllo ✓ 日本 \ud800", g.finish_reason)
                for g, s in zip(gens, per_item(sampling, len(gens)))]


def test_any_text_round_trips_through_checkpoint_and_output(tmp_path):
    batch = make_batch([("Écris une fonction {f} — « vite » 🙂", "c1", "c2")], ["j1"])
    names = ["c1", "c2", "j1"]
    first = run(batch, {n: OddText(n) for n in names}, tmp_path)
    assert any("\ud800" in r.get("text", "") for r in first)
    assert run(batch, {n: Exploding(n) for n in names}, tmp_path) == first  # read back from the checkpoint
    assert decode_jsonl(encode_jsonl(first)) == first


KILL_BATCH_PAIRS = [(f"Kill task {i}: write a tokenizer for arithmetic", f"e{i % 6}", f"e{(i + k) % 6}")
                    for i in range(12) for k in (1, 3)]


def _kill_batch():
    experts = [f"e{i}" for i in range(6)]
    return make_batch(KILL_BATCH_PAIRS, lambda a, d: [e for e in experts if e not in (a, d)],
                      run_id="kill-run", both_orders=True, sequential_voting=True, seed=5)


def _step(message: str) -> str:
    """A progress message without its count: 'responses: e3' or 'judging round 2: e1'."""
    return message.split(" answers ")[0].split(" casts ")[0]


def test_kill9_at_random_points_resumes_to_identical_votes(tmp_path):
    """SIGKILL a subprocess running the batch at >= 10 random points; each resume ends identical.

    Kill points are drawn (seeded) over the whole run: each targets a step of the reference run (an
    expert's response call or a judge's batch in some round) and lands a random 0-120 ms after the
    resumed process announces that step (or a later one, when earlier steps are already done): mid-call,
    while appending the checkpoint, or at the start of the next step. Two more land during start-up."""
    batch = _kill_batch()
    messages: list[str] = []
    reference = encode_jsonl(battle_stage.run_battle_batch(batch, backends_for(batch.experts()),
                                                        tmp_path / "reference", TEMPLATE, messages.append))
    steps = [_step(m) for m in messages if m.startswith(("responses:", "judging"))]
    assert len(steps) >= 15
    batch_file, template_file = tmp_path / "batch.json", tmp_path / "judge.txt"
    batch_file.write_text(batch.to_json())
    template_file.write_text(TEMPLATE)
    out, ckpt = tmp_path / "out.jsonl", tmp_path / "kill-ckpt"
    cmd = [sys.executable, "-m", "tests.scripted_backend", str(batch_file), str(out), str(ckpt), str(template_file),
           "0.08"]  # every batched call takes >= 80 ms, so a kill <= 120 ms after step n lands before step n + 2 ends
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    rng = random.Random(20240501)
    targets: list[int | None] = sorted(rng.randrange(0, len(steps) - 1) for _ in range(10))
    for _ in range(2):
        targets.insert(rng.randrange(0, len(targets) + 1), None)  # None: kill during start-up
    killed_at: list[str] = []
    for target in targets:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert proc.stdout.readline().strip() == b"ready", proc.stderr.read().decode()
            where = "start-up"
            if target is not None:
                while True:
                    line = proc.stdout.readline().decode()
                    assert line.startswith("step "), (line, proc.stderr.read().decode())
                    where = _step(line.removeprefix("step ").strip())
                    if where in steps and steps.index(where) >= target:
                        break
            time.sleep(rng.uniform(0.0, 0.12) if target is not None else rng.uniform(0.0, 0.03))
            assert proc.poll() is None, "the batch finished before it could be killed"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            killed_at.append(where)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        assert not out.exists()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    assert len(killed_at) >= 10
    assert any(k.startswith("responses") for k in killed_at) and any(k.startswith("judging") for k in killed_at)
    assert out.read_bytes() == reference  # identical final records, byte for byte
    lines = [json.loads(x) for x in next(ckpt.glob("*.jsonl")).read_text().splitlines()]
    vote_ids = [x["vote_id"] for x in lines if x["type"] == "vote"]
    response_ids = [x["response_id"] for x in lines if x["type"] == "response"]
    assert len(vote_ids) == len(set(vote_ids)) and len(response_ids) == len(set(response_ids))
    final = by_type(decode_jsonl(reference))
    assert sorted(vote_ids) == sorted(v["vote_id"] for v in final["vote"])  # none lost, none extra


# ------------------------------------------------------------------------------------------ input / errors


def test_input_round_trips_and_validates():
    batch = make_batch(PAIRS[:2], ["j1"], both_orders=True)
    again = bb.BattleBatchInput.from_json(batch.to_json())
    assert again == batch and json.loads(again.to_json()) == json.loads(batch.to_json())
    assert again.arena == ArenaSettings(both_orders=True) and batch.experts() == ["c1", "c2", "c3", "j1"]
    doc = json.loads(batch.to_json())
    bad = [
        ("not json", "valid JSON"),
        ({**doc, "run_id": ""}, "run_id"),
        ({**doc, "arena": {"both_orders": "maybe"}}, "both_orders"),
        ({**doc, "arena": {"nope": 1}}, "nope"),
        ({**doc, "battles": [{**doc["battles"][0], "judges": "j1"}]}, "judges"),
        ({**doc, "battles": [{**doc["battles"][0], "judges": ["j1", "j1"]}]}, "twice"),
        ({**doc, "battles": [{**doc["battles"][0], "defender": doc["battles"][0]["attacker"]}]}, "both"),
        ({**doc, "battles": [doc["battles"][0], doc["battles"][0]]}, "appears twice"),
        ({**doc, "battles": [{k: v for k, v in doc["battles"][0].items() if k != "battle_order"}]}, "battle_order"),
        ({**doc, "battles": [{**doc["battles"][0], "extra": 1}]}, "extra"),
        ({**doc, "battles": [doc["battles"][0], {**doc["battles"][1], "battle_id": "x",
                                                 "instruction_id": doc["battles"][0]["instruction_id"]}]},
         "two different texts"),
    ]
    for payload, message in bad:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        with pytest.raises(bb.BatchInputError, match=message):
            bb.BattleBatchInput.from_json(data)


def test_missing_backend_is_a_config_error_naming_it(tmp_path):
    batch = make_batch(PAIRS[:2], ["j1", "ghost-judge"])
    with pytest.raises(ConfigError, match="ghost-judge"):
        run(batch, backends_for(COMPETITORS + ["j1"]), tmp_path)
    assert not list((tmp_path / "ckpt").glob("*.jsonl"))  # failed before any work


def test_split_object_uri(tmp_path):
    assert split_object_uri("s3://bucket/runs/r1/battles/out.jsonl") == ("s3://bucket/runs/r1/battles", "out.jsonl")
    assert split_object_uri("s3://bucket/out.jsonl") == ("s3://bucket", "out.jsonl")
    assert split_object_uri((tmp_path / "a b" / "in.json").as_uri()) == ((tmp_path / "a b").as_uri(), "in.json")
    assert split_object_uri(str(tmp_path / "x.json")) == (tmp_path.as_uri(), "x.json")
    for bad in ("", "s3://bucket", "s3://bucket/", "http://h/x.json", "file://host/x.json", str(tmp_path) + "/"):
        with pytest.raises(StoreError):
            split_object_uri(bad)


# ------------------------------------------------------------------------------------------ URI entry point


def _write_input(tmp_path, batch) -> str:
    path = tmp_path / "store" / "runs" / "r1" / "battles" / "in-0.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(batch.to_json())
    return path.as_uri()


def test_uri_entry_writes_atomically_is_idempotent_and_closes_backends(tmp_path, config, monkeypatch):
    from warriorflow.inference import factory

    batch = make_batch([(t, SMOLLM2, QWEN) for t, _, _ in PAIRS[:3]], [SMOLLM2], both_orders=True)
    built: list[ScriptedBackend] = []

    def fake_backend_for(expert, cfg):
        built.append(ScriptedBackend(expert.name))
        return built[-1]

    monkeypatch.setattr(factory, "backend_for", fake_backend_for)
    in_uri = _write_input(tmp_path, batch)
    out_uri = in_uri.replace("in-0.json", "out-0.jsonl")
    messages: list[str] = []
    records = battle_stage.run_battle_batch_uri(in_uri, out_uri, config, progress=messages.append)
    assert sorted(b.name for b in built) == [QWEN, SMOLLM2] and all(b.closed for b in built)
    out_path = Path(out_uri.removeprefix("file://"))
    assert decode_jsonl(out_path.read_bytes()) == records and len(by_type(records)["battle"]) == 3
    assert messages[-1].startswith("wrote")
    ckpt_dir = battle_stage.default_checkpoint_dir(out_uri, config)
    assert ckpt_dir.is_relative_to(Path(os.environ["WARRIORFLOW_HOME"]) / "checkpoints")
    assert not list(ckpt_dir.glob("*.jsonl"))  # removed once the output is written
    built.clear()
    # idempotent: nothing built, nothing run
    assert battle_stage.run_battle_batch_uri(in_uri, out_uri, config) == records
    assert built == []


def test_uri_entry_rejects_unknown_experts_and_wrong_roles(tmp_path, config, monkeypatch):
    from tests.helpers import GEMMA
    from warriorflow.inference import factory

    monkeypatch.setattr(factory, "backend_for", lambda e, c: pytest.fail("no backend may be built"))
    unknown = make_batch([("Sort a list", SMOLLM2, QWEN)], ["nobody-9b"])
    with pytest.raises(ConfigError, match="nobody-9b"):
        battle_stage.run_battle_batch_uri(_write_input(tmp_path, unknown), str(tmp_path / "o1.jsonl"), config)
    base_defender = make_batch([("Sort a list", SMOLLM2, GEMMA)], [QWEN])  # the base model only mines
    with pytest.raises(ConfigError, match="'answer' role"):
        battle_stage.run_battle_batch_uri(_write_input(tmp_path, base_defender), str(tmp_path / "o2.jsonl"), config)
    assert not (tmp_path / "o1.jsonl").exists() and not (tmp_path / "o2.jsonl").exists()


# ------------------------------------------------------------------------------------------ real models


@pytest.mark.slow
def test_real_models_battle_batch(tmp_path, config):
    """SmolLM2 vs Qwen2.5-Coder on two instructions, judged by SmolLM2 in both orders (constrained)."""
    instructions = ["Write a Python function that returns the factorial of n.",
                    "Write a Python function that checks whether a string is a palindrome."]
    batch = make_batch([(instructions[0], SMOLLM2, QWEN), (instructions[1], QWEN, SMOLLM2)], [SMOLLM2],
                       run_id="real", both_orders=True, response_max_tokens=48, judge_max_tokens=8)
    in_uri = _write_input(tmp_path, batch)
    out = tmp_path / "out.jsonl"
    records = by_type(battle_stage.run_battle_batch_uri(in_uri, str(out), config))
    assert len(records["response"]) == 4
    for r in records["response"]:
        assert r["text"].strip() and r["completion_tokens"] > 0 and r["finish_reason"] in ("stop", "length")
    assert len(records["vote"]) == 4
    for v in records["vote"]:
        assert v["raw_verdict"] in ("A", "B", "tie"), v["raw_text"]  # constrained: always a valid token
        assert v["raw_text"].strip() in ("[[A]]", "[[B]]", "[[Tie]]")
    assert {v["shown_order"] for v in records["vote"]} == {V.ATTACKER_FIRST, V.DEFENDER_FIRST}
    for b in records["battle"]:
        assert b["judges_asked"] == [SMOLLM2] and (b["judge_calls"], b["judge_calls_saved"]) == (2, 0)
        assert b["effective_votes"][SMOLLM2] in (V.ATTACKER, V.DEFENDER, V.TIE)
    assert decode_jsonl(out.read_bytes()) == sum(records.values(), [])
