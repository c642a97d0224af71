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

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from warriorflow.config import ArenaSettings
from warriorflow.errors import ConfigError
from warriorflow.method import ids
from warriorflow.method.backend import Backend
from warriorflow.method.battle_jobs import (
    BATTLE,
    RESPONSE,
    VOTE,
    BatchInputError,
    PlannedBattle,
    VoteRequest,
    answer,
    battle_record,
    cast_votes,
    judge_order,
    judges_needed,
    response_request,
    shown_order,
    shown_orders,
    stable_int,
)
from warriorflow.method.judging import check_template
from warriorflow.method.progress import Progress
from warriorflow.method.votes import ATTACKER_FIRST, effective_vote

Backends = Mapping[str, Backend] | Callable[[str], Backend]

__all__ = ["BATTLE", "RESPONSE", "VOTE", "BatchInputError", "BattleBatchInput", "Ledger", "PlannedBattle",
           "battle_batch", "judge_order", "judges_needed", "preflight", "shown_order", "shown_orders", "stable_int"]

# ------------------------------------------------------------------------------------------ input


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
    verdicts = {vid: v["verdict"] for vid, v in ckpt.votes.items()}
    for b in batch.battles:
        for judge in asked[b.battle_id]:
            vote_records += [ckpt.votes[ids.vote_id(b.battle_id, judge, o)]
                             for o in shown_orders(arena, b.battle_id, judge)]
        battle_records.append(battle_record(b, arena, asked[b.battle_id], verdicts, run_id))
    responses = [ckpt.responses[rid] for rid in sorted(set(response_ids.values()))]
    vote_records.sort(key=lambda v: v["vote_id"])
    battle_records.sort(key=lambda r: (r["battle_order"], r["battle_id"]))
    say(f"done: {len(responses)} responses, {len(vote_records)} votes, {len(battle_records)} battles")
    return responses + vote_records + battle_records


def _responses(batch: BattleBatchInput, pool: _BackendPool, ckpt: Ledger, say: Progress) -> dict:
    """Generate the missing responses, one batched chat call per expert. Returns {(iid, expert): rid}."""
    arena = batch.arena
    texts = {b.instruction_id: b.instruction for b in batch.battles}
    needed: dict[str, set[str]] = defaultdict(set)
    for b in batch.battles:
        needed[b.attacker].add(b.instruction_id)
        needed[b.defender].add(b.instruction_id)
    rids: dict[tuple[str, str], str] = {}
    for expert in sorted(needed):
        todo = []
        for iid in sorted(needed[expert]):
            request = response_request(arena, iid, texts[iid], expert)
            rids[(iid, expert)] = request.response_id
            if request.response_id not in ckpt.responses:
                todo.append(request)
        if not todo:
            continue
        say(f"responses: {expert} answers {len(todo)} instruction(s)")
        ckpt.append(answer(todo, pool.get(expert), arena, batch.run_id))
    return rids


def _judging(batch: BattleBatchInput, pool: _BackendPool, ckpt: Ledger, template: str,
             rids: dict, say: Progress) -> dict[str, list[str]]:
    """Ask the judges in rounds; returns {battle_id: judges asked, in order}."""
    arena = batch.arena
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
            ckpt.append(cast_votes([_vote_request(r, ckpt, rids) for r in todo], pool.get(judge), template, arena,
                                   batch.run_id))
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
    return effective_vote([ckpt.votes[ids.vote_id(battle_id, judge, o)]["verdict"]
                           for o in shown_orders(arena, battle_id, judge)])


def _vote_request(r: _Request, ckpt: Ledger, rids: dict) -> VoteRequest:
    b = r.battle
    att = ckpt.responses[rids[(b.instruction_id, b.attacker)]]["text"]
    dfd = ckpt.responses[rids[(b.instruction_id, b.defender)]]["text"]
    first, second = (att, dfd) if r.order == ATTACKER_FIRST else (dfd, att)
    return VoteRequest(r.vote_id, b.battle_id, r.judge, r.order, b.instruction, first, second)
