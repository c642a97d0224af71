"""The battle batch: a self-contained unit of work, file in and file out (WarriorCoder step 4).

It is exactly what one Kubernetes pod runs (``warriorflow battle-batch --in URI --out URI``); in the
embedded default the same command runs as a local process. It never opens the DuckDB store.

Input: one JSON document (``BattleBatchInput``)::

    {"run_id": "...", "arena": {ArenaSettings fields},
     "battles": [{"battle_id", "instruction_id", "instruction", "attacker", "defender",
                  "judges": [names], "battle_order": int}, ...]}

Output: JSONL, one record per line, each with a ``type``:

* ``response``: ``response_id, instruction_id, expert, text, sampling {max_tokens, temperature, top_p},
  seed, finish_reason, prompt_tokens, completion_tokens, run_id``;
* ``vote``: ``vote_id, battle_id, judge, shown_order, raw_verdict (A|B|tie|invalid),
  verdict (attacker|defender|tie|invalid), raw_text, run_id``;
* ``battle``: ``battle_id, instruction_id, attacker, defender, attacker_response_id,
  defender_response_id, battle_order, judges_asked, judge_calls, judge_calls_saved,
  effective_votes {judge: verdict}, run_id``.

Records are ordered responses (by response_id), votes (by vote_id), battles (by battle_order,
battle_id); keys are sorted. The output depends only on the input and the backends' outputs.

The work:

1. **Responses.** Each expert answers each instruction once per batch (an attacker's response is
   reused across its battles on that instruction), with a seed derived from (arena seed,
   instruction_id, expert); one batched ``chat`` call per expert.
2. **Judging.** Every (battle, judge) gets a seeded shown order (attacker_first | defender_first); in
   both-orders mode the judge is asked in both orders. All calls of a round are batched per judge
   (one ``chat`` call per judge per round), constrained to ``[[A]]``/``[[B]]``/``[[Tie]]`` and parsed
   with :func:`~warriorflow.method.judging.parse_verdict` either way.
3. **Sequential voting** (``arena.sequential_voting``): each battle asks its judges in a seeded
   order, and stops once the remaining judges can no longer change the majority. Each round asks a
   battle's next ``k`` judges, where ``k`` is the fewest that could decide it, so it makes exactly the
   calls that asking one judge at a time would make, in fewer rounds. The battle result (sign of
   attacker votes minus defender votes) is always the full panel's.
4. **Resuming.** After each expert's responses and each judge's batch, the new records go to the
   ``Ledger`` (the stage's checkpoint file, :mod:`warriorflow.store.checkpoint`). Finished responses
   and votes already in it are not redone.

This module is the pure algorithm; :mod:`warriorflow.stages.battle` reads the input, opens the
backends and the checkpoint, and writes the output.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from warriorflow.config import ArenaSettings
from warriorflow.errors import BackendError, ConfigError, WarriorflowError
from warriorflow.method import ids
from warriorflow.method import votes as V
from warriorflow.method.backend import Backend, Sampling
from warriorflow.method.judging import VERDICT_CHOICES, check_template, parse_verdict, render_judge_prompt
from warriorflow.method.progress import Progress

Backends = Mapping[str, Backend] | Callable[[str], Backend]

RESPONSE, VOTE, BATTLE = "response", "vote", "battle"


class BatchInputError(WarriorflowError, ValueError):
    """A battle-batch input file is malformed."""


# ------------------------------------------------------------------------------------------ input


@dataclass(frozen=True)
class PlannedBattle:
    battle_id: str
    instruction_id: str
    instruction: str
    attacker: str
    defender: str
    judges: tuple[str, ...]
    battle_order: int

    def to_dict(self) -> dict:
        return {"battle_id": self.battle_id, "instruction_id": self.instruction_id, "instruction": self.instruction,
                "attacker": self.attacker, "defender": self.defender, "judges": list(self.judges),
                "battle_order": self.battle_order}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "battle") -> PlannedBattle:
        if not isinstance(d, Mapping):
            raise BatchInputError(where, f"must be a JSON object, not {type(d).__name__}")
        need = ("battle_id", "instruction_id", "instruction", "attacker", "defender", "judges", "battle_order")
        missing = [k for k in need if k not in d]
        extra = sorted(set(d) - set(need))
        if missing or extra:
            problems = ([f"missing {', '.join(missing)}"] if missing else []) + (
                [f"unknown {', '.join(extra)}"] if extra else [])
            raise BatchInputError(where, "; ".join(problems), "write every battle with exactly: " + ", ".join(need))
        for k in ("battle_id", "instruction_id", "instruction", "attacker", "defender"):
            if not isinstance(d[k], str) or (k != "instruction" and not d[k]):
                raise BatchInputError(f"{where}.{k}", "must be a non-empty string")
        judges = d["judges"]
        if not isinstance(judges, list) or not all(isinstance(j, str) and j for j in judges):
            raise BatchInputError(f"{where}.judges", "must be a list of expert names")
        if len(set(judges)) != len(judges):
            raise BatchInputError(f"{where}.judges", f"names a judge twice: {judges}")
        if isinstance(d["battle_order"], bool) or not isinstance(d["battle_order"], int):
            raise BatchInputError(f"{where}.battle_order", "must be an integer")
        if d["attacker"] == d["defender"]:
            raise BatchInputError(where, f"attacker and defender are both '{d['attacker']}'")
        return cls(d["battle_id"], d["instruction_id"], d["instruction"], d["attacker"], d["defender"],
                   tuple(judges), d["battle_order"])


@dataclass(frozen=True)
class BattleBatchInput:
    run_id: str
    arena: ArenaSettings
    battles: tuple[PlannedBattle, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "arena": self.arena.model_dump(mode="json"),
                "battles": [b.to_dict() for b in self.battles]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BattleBatchInput:
        if not isinstance(d, Mapping):
            raise BatchInputError("battle batch input", f"must be a JSON object, not {type(d).__name__}")
        if not isinstance(d.get("run_id"), str) or not d["run_id"]:
            raise BatchInputError("battle batch input", "run_id must be a non-empty string")
        try:
            arena = ArenaSettings.model_validate(d.get("arena") or {})
        except ValidationError as exc:
            problems = "; ".join(f"arena.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise BatchInputError("battle batch input", problems, "use the ArenaSettings fields") from None
        raw = d.get("battles")
        if not isinstance(raw, list):
            raise BatchInputError("battle batch input", "battles must be a list")
        battles = tuple(PlannedBattle.from_dict(b, f"battles[{i}]") for i, b in enumerate(raw))
        seen: dict[str, PlannedBattle] = {}
        texts: dict[str, str] = {}
        for b in battles:
            if b.battle_id in seen:
                raise BatchInputError(f"battle {b.battle_id}", "appears twice in the batch", "plan each battle once")
            seen[b.battle_id] = b
            if texts.setdefault(b.instruction_id, b.instruction) != b.instruction:
                raise BatchInputError(f"instruction {b.instruction_id}", "has two different texts in the batch")
        return cls(d["run_id"], arena, battles)

    @classmethod
    def from_json(cls, data: str | bytes | Mapping[str, Any]) -> BattleBatchInput:
        if isinstance(data, Mapping):
            return cls.from_dict(data)
        try:
            return cls.from_dict(json.loads(data))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BatchInputError("battle batch input", f"is not valid JSON: {exc}") from None

    def experts(self) -> list[str]:
        """Every expert the batch needs (competitors and judges), sorted."""
        return sorted({n for b in self.battles for n in (b.attacker, b.defender, *b.judges)})


# ------------------------------------------------------------------------------------------ seeds


def stable_int(*parts: Any, bits: int = 64) -> int:
    """An integer from a hash of ``parts``, the same in every process and Python version."""
    payload = json.dumps(parts, separators=(",", ":")).encode()
    return int.from_bytes(hashlib.sha256(payload).digest()[:8], "big") >> (64 - bits)


def response_seed(run_seed: int, instruction_id: str, expert: str) -> int:
    """The sampling seed of an expert's response to an instruction (31 bits: fits every backend)."""
    return stable_int("response", run_seed, instruction_id, expert, bits=31)


def response_sampling(arena: ArenaSettings) -> dict:
    return {"max_tokens": arena.response_max_tokens, "temperature": arena.response_temperature,
            "top_p": arena.response_top_p}


def shown_order(run_seed: int, battle_id: str, judge: str) -> str:
    """The seeded position order a judge sees a battle in (one-order mode)."""
    rng = random.Random(stable_int("shown_order", run_seed, battle_id, judge))
    return V.ATTACKER_FIRST if rng.random() < 0.5 else V.DEFENDER_FIRST


def judge_order(run_seed: int, battle: PlannedBattle) -> list[str]:
    """The seeded order in which a battle's judges are asked (sequential voting reads it front first)."""
    order = sorted(battle.judges)
    random.Random(stable_int("judge_order", run_seed, battle.battle_id)).shuffle(order)
    return order


def shown_orders(arena: ArenaSettings, battle_id: str, judge: str) -> tuple[str, ...]:
    if arena.both_orders:
        return (V.ATTACKER_FIRST, V.DEFENDER_FIRST)
    return (shown_order(arena.seed, battle_id, judge),)


def judges_needed(effective: Sequence[str], remaining: int) -> int:
    """The fewest further judges that could decide the majority (0 when already decided or none left)."""
    if remaining <= 0 or V.majority_decided(effective, remaining):
        return 0
    margin = abs(effective.count(V.ATTACKER) - effective.count(V.DEFENDER))
    return min(remaining, (remaining - margin) // 2 + 1)


# ------------------------------------------------------------------------------------------ the batch


class _BackendPool:
    """Backends by expert name, from a mapping or built lazily (once each) by a factory."""

    def __init__(self, backends: Backends):
        self._source = backends
        self._cache: dict[str, Backend] = {}

    def get(self, name: str) -> Backend:
        if name not in self._cache:
            if isinstance(self._source, Mapping):
                if name not in self._source:
                    raise ConfigError(f"expert '{name}'", "has no backend in this battle batch",
                                      f"known: {', '.join(sorted(self._source)) or '(none)'}")
                self._cache[name] = self._source[name]
            else:
                self._cache[name] = self._source(name)
        return self._cache[name]

    def check(self, names: Iterable[str]) -> None:
        if isinstance(self._source, Mapping):
            for name in names:
                self.get(name)

    def built(self) -> list[Backend]:
        return list(self._cache.values())


def _chat(backend: Backend, name: str, conversations: list, sampling) -> list:
    gens = backend.chat(conversations, sampling)
    if len(gens) != len(conversations):
        raise BackendError(f"expert '{name}'", f"returned {len(gens)} generations for {len(conversations)} prompts",
                           "the backend breaks the batched protocol")
    return gens


@dataclass
class _Request:
    battle: PlannedBattle
    judge: str
    order: str
    vote_id: str


class Ledger(Protocol):
    """Where finished work is kept as it is done (the stage gives a checkpoint file): records by id."""

    responses: dict[str, dict]
    votes: dict[str, dict]

    def append(self, records: Sequence[dict]) -> None: ...


def preflight(batch: BattleBatchInput, backends: Backends, template: str) -> None:
    """Fail before any work: the judge prompt lacks a placeholder, or an expert of the batch has no backend."""
    check_template(template)
    _BackendPool(backends).check(batch.experts())


def battle_batch(batch: BattleBatchInput, backends: Backends, ledger: Ledger, template: str,
                 progress: Progress | None = None) -> list[dict]:
    """Run (or resume, from what ``ledger`` holds) a battle batch; return its output records (formats above)."""
    say = progress or (lambda _msg: None)
    check_template(template)
    arena, run_id = batch.arena, batch.run_id
    pool = _BackendPool(backends)
    pool.check(batch.experts())  # a missing name fails before any work
    ckpt = ledger
    response_ids = _responses(batch, pool, ckpt, say)
    asked = _judging(batch, pool, ckpt, template, response_ids, say)

    vote_records = []
    battle_records = []
    for b in batch.battles:
        effective = {}
        for judge in asked[b.battle_id]:
            mine = [ckpt.votes[ids.vote_id(b.battle_id, judge, o)] for o in shown_orders(arena, b.battle_id, judge)]
            vote_records += mine
            effective[judge] = V.effective_vote([v["verdict"] for v in mine])
        calls = sum(len(shown_orders(arena, b.battle_id, j)) for j in asked[b.battle_id])
        full = len(b.judges) * (2 if arena.both_orders else 1)
        battle_records.append({
            "type": BATTLE, "battle_id": b.battle_id, "instruction_id": b.instruction_id,
            "attacker": b.attacker, "defender": b.defender,
            "attacker_response_id": response_ids[(b.instruction_id, b.attacker)],
            "defender_response_id": response_ids[(b.instruction_id, b.defender)],
            "battle_order": b.battle_order, "judges_asked": list(asked[b.battle_id]),
            "judge_calls": calls, "judge_calls_saved": full - calls, "effective_votes": effective, "run_id": run_id,
        })
    responses = [ckpt.responses[rid] for rid in sorted(set(response_ids.values()))]
    vote_records.sort(key=lambda v: v["vote_id"])
    battle_records.sort(key=lambda r: (r["battle_order"], r["battle_id"]))
    say(f"done: {len(responses)} responses, {len(vote_records)} votes, {len(battle_records)} battles")
    return responses + vote_records + battle_records


def _responses(batch: BattleBatchInput, pool: _BackendPool, ckpt: Ledger, say: Progress) -> dict:
    """Generate the missing responses, one batched chat call per expert. Returns {(iid, expert): rid}."""
    arena = batch.arena
    sampling = response_sampling(arena)
    texts = {b.instruction_id: b.instruction for b in batch.battles}
    needed: dict[str, set[str]] = defaultdict(set)
    for b in batch.battles:
        needed[b.attacker].add(b.instruction_id)
        needed[b.defender].add(b.instruction_id)
    rids: dict[tuple[str, str], str] = {}
    for expert in sorted(needed):
        todo = []
        for iid in sorted(needed[expert]):
            seed = response_seed(arena.seed, iid, expert)
            rid = ids.response_id(iid, expert, sampling, seed)
            rids[(iid, expert)] = rid
            if rid not in ckpt.responses:
                todo.append((iid, seed, rid))
        if not todo:
            continue
        say(f"responses: {expert} answers {len(todo)} instruction(s)")
        convs = [[{"role": "user", "content": texts[iid]}] for iid, _, _ in todo]
        samp = [Sampling(max_tokens=arena.response_max_tokens, temperature=arena.response_temperature,
                         top_p=arena.response_top_p, seed=seed) for _, seed, _ in todo]
        gens = _chat(pool.get(expert), expert, convs, samp)
        ckpt.append([{
            "type": RESPONSE, "response_id": rid, "instruction_id": iid, "expert": expert, "text": g.text,
            "sampling": dict(sampling), "seed": seed, "finish_reason": g.finish_reason,
            "prompt_tokens": g.prompt_tokens, "completion_tokens": g.completion_tokens, "run_id": batch.run_id,
        } for (iid, seed, rid), g in zip(todo, gens)])
    return rids


def _judging(batch: BattleBatchInput, pool: _BackendPool, ckpt: Ledger, template: str,
             rids: dict, say: Progress) -> dict[str, list[str]]:
    """Ask the judges in rounds; returns {battle_id: judges asked, in order}."""
    arena = batch.arena
    judge_sampling = Sampling(max_tokens=arena.judge_max_tokens, temperature=0.0, choices=VERDICT_CHOICES)
    orders = {b.battle_id: judge_order(arena.seed, b) for b in batch.battles}
    asked: dict[str, list[str]] = {b.battle_id: [] for b in batch.battles}
    open_battles = list(batch.battles)
    rnd = 0
    while open_battles:
        per_judge: dict[str, list[_Request]] = defaultdict(list)
        still_open = []
        for b in open_battles:
            panel = orders[b.battle_id]
            done = asked[b.battle_id]
            if arena.sequential_voting:
                effective = [_effective(ckpt, arena, b.battle_id, j) for j in done]
                k = judges_needed(effective, len(panel) - len(done))
            else:
                k = len(panel) - len(done)
            if k == 0:
                continue
            still_open.append(b)
            for judge in panel[len(done):len(done) + k]:
                for order in shown_orders(arena, b.battle_id, judge):
                    per_judge[judge].append(_Request(b, judge, order, ids.vote_id(b.battle_id, judge, order)))
        for judge in sorted(per_judge):
            todo = [r for r in per_judge[judge] if r.vote_id not in ckpt.votes]
            if not todo:
                continue
            say(f"judging round {rnd + 1}: {judge} casts {len(todo)} vote(s)")
            convs = [_judge_conversation(template, r, ckpt, rids) for r in todo]
            gens = _chat(pool.get(judge), judge, convs, judge_sampling)
            records = []
            for r, g in zip(todo, gens):
                raw = parse_verdict(g.text)
                records.append({"type": VOTE, "vote_id": r.vote_id, "battle_id": r.battle.battle_id, "judge": judge,
                                "shown_order": r.order, "raw_verdict": raw, "verdict": V.to_competitor(raw, r.order),
                                "raw_text": g.text, "run_id": batch.run_id})
            ckpt.append(records)
        for requests in per_judge.values():
            for r in requests:
                if r.judge not in asked[r.battle.battle_id]:
                    asked[r.battle.battle_id].append(r.judge)
        for b in still_open:  # keep the panel order in judges_asked
            asked[b.battle_id].sort(key=orders[b.battle_id].index)
        open_battles = still_open if arena.sequential_voting else []
        rnd += 1
    return asked


def _effective(ckpt: Ledger, arena: ArenaSettings, battle_id: str, judge: str) -> str:
    return V.effective_vote([ckpt.votes[ids.vote_id(battle_id, judge, o)]["verdict"]
                             for o in shown_orders(arena, battle_id, judge)])


def _judge_conversation(template: str, r: _Request, ckpt: Ledger, rids: dict) -> list[dict]:
    b = r.battle
    att = ckpt.responses[rids[(b.instruction_id, b.attacker)]]["text"]
    dfd = ckpt.responses[rids[(b.instruction_id, b.defender)]]["text"]
    first, second = (att, dfd) if r.order == V.ATTACKER_FIRST else (dfd, att)
    return render_judge_prompt(template, b.instruction, first, second)
