"""The battle as jobs over one model each (WarriorCoder step 4), pure functions.

A battle cycle is a few rounds of per-model work instead of batches that need every expert:

1. **Responses.** Each answering expert answers every instruction its planned battles need, once
   (:func:`response_requests`, :func:`answer`): a *response job* per (expert, shard).
2. **Judging rounds.** Round by round, each open battle asks the judges it still needs
   (:func:`next_judges`): all of its panel at once, or with sequential voting the fewest further
   judges (in the battle's seeded panel order) that could still decide the majority, so round *k*
   asks only the judges still needed. :func:`vote_requests` turns that into a *judge job* per
   (judge, shard) over finished responses (:func:`cast_votes`).
3. **Closing.** A battle whose judging is over becomes a battle record (:func:`battle_record`): the
   judges asked, the calls made and saved, the effective votes.

Seeds, shown orders, panel orders, ids and records are exactly those of the single-process battle
batch (:mod:`warriorflow.method.battle_batch`, which uses these builders), so the same plan gives
the same responses, votes, battles and ratings either way; a test runs both on a scripted backend.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from warriorflow.config import ArenaSettings
from warriorflow.errors import BackendError, WarriorflowError
from warriorflow.method import ids
from warriorflow.method import votes as V
from warriorflow.method.backend import Backend, Sampling
from warriorflow.method.execution import judge_section
from warriorflow.method.judging import VERDICT_CHOICES, parse_verdict, render_judge_prompt, verdict_probabilities

RESPONSE, VOTE, BATTLE = "response", "vote", "battle"


class BatchInputError(WarriorflowError, ValueError):
    """A battle batch or job input file is malformed."""


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


# ------------------------------------------------------------------------------------------ responses
@dataclass(frozen=True)
class ResponseRequest:
    """One answer to produce: an expert's response to an instruction, with its seed and content id."""

    response_id: str
    instruction_id: str
    instruction: str
    expert: str
    seed: int

    def to_dict(self) -> dict:
        return {"response_id": self.response_id, "instruction_id": self.instruction_id,
                "instruction": self.instruction, "expert": self.expert, "seed": self.seed}


def response_request(arena: ArenaSettings, instruction_id: str, instruction: str, expert: str) -> ResponseRequest:
    seed = response_seed(arena.seed, instruction_id, expert)
    return ResponseRequest(ids.response_id(instruction_id, expert, response_sampling(arena), seed), instruction_id,
                           instruction, expert, seed)


def response_requests(battles: Iterable[PlannedBattle], arena: ArenaSettings,
                      have: Iterable[str] = ()) -> dict[str, list[ResponseRequest]]:
    """Per answering expert, the responses ``battles`` need that are not in ``have`` (response ids), by
    instruction id. An attacker's response serves all its battles on that instruction."""
    done = set(have)
    wanted: dict[str, dict[str, ResponseRequest]] = defaultdict(dict)
    for b in battles:
        for expert in (b.attacker, b.defender):
            r = response_request(arena, b.instruction_id, b.instruction, expert)
            if r.response_id not in done:
                wanted[expert][r.instruction_id] = r
    return {e: [rs[i] for i in sorted(rs)] for e, rs in sorted(wanted.items())}


def response_record(r: ResponseRequest, arena: ArenaSettings, text: str, finish_reason: str | None,
                    prompt_tokens: int | None, completion_tokens: int | None, run_id: str) -> dict:
    return {"type": RESPONSE, "response_id": r.response_id, "instruction_id": r.instruction_id, "expert": r.expert,
            "text": text, "sampling": dict(response_sampling(arena)), "seed": r.seed, "finish_reason": finish_reason,
            "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "run_id": run_id}


def chat(backend: Backend, name: str, conversations: list, sampling) -> list:
    """One batched call; a backend that answers a different number of prompts breaks the protocol."""
    gens = backend.chat(conversations, sampling)
    if len(gens) != len(conversations):
        raise BackendError(f"expert '{name}'", f"returned {len(gens)} generations for {len(conversations)} prompts",
                           "the backend breaks the batched protocol")
    return gens


def answer(requests: Sequence[ResponseRequest], backend: Backend, arena: ArenaSettings, run_id: str) -> list[dict]:
    """Response records for ``requests`` (all of one expert), in one batched call."""
    if not requests:
        return []
    expert = requests[0].expert
    convs = [[{"role": "user", "content": r.instruction}] for r in requests]
    samp = [Sampling(max_tokens=arena.response_max_tokens, temperature=arena.response_temperature,
                     top_p=arena.response_top_p, seed=r.seed) for r in requests]
    gens = chat(backend, expert, convs, samp)
    return [response_record(r, arena, g.text, g.finish_reason, g.prompt_tokens, g.completion_tokens, run_id)
            for r, g in zip(requests, gens, strict=True)]


# ------------------------------------------------------------------------------------------ judging
@dataclass(frozen=True)
class VoteRequest:
    """One verdict to ask for: a judge's view of a battle's two responses in one shown order."""

    vote_id: str
    battle_id: str
    judge: str
    shown_order: str
    instruction: str
    first: str
    second: str
    execution: str = ""  # the judge prompt's execution-evidence section (method/execution.py); "" when none

    def to_dict(self) -> dict:
        d = {"vote_id": self.vote_id, "battle_id": self.battle_id, "judge": self.judge,
             "shown_order": self.shown_order, "instruction": self.instruction, "first": self.first,
             "second": self.second}
        return {**d, "execution": self.execution} if self.execution else d


Verdicts = Mapping[str, "str | V.CastVote"]
"""Stored votes: vote id -> competitor verdict, or a :class:`~warriorflow.method.votes.CastVote` (with its
probabilities, when the backend reported them)."""


def vote_rule(arena: ArenaSettings) -> V.ProbabilisticRule:
    v = arena.votes
    return V.ProbabilisticRule(margin=v.margin, debias=v.debias, enabled=v.probabilities)


def effective(arena: ArenaSettings, battle_id: str, judge: str, verdicts: Verdicts,
              priors: Mapping[str, float] | None = None) -> str | None:
    """A judge's effective vote on a battle from ``verdicts``; None while incomplete. Probabilistic votes
    are decided with the judge's first-position prior from ``priors`` (0 when not given)."""
    mine = []
    for order in shown_orders(arena, battle_id, judge):
        v = verdicts.get(ids.vote_id(battle_id, judge, order))
        if v is None:
            return None
        mine.append(v if isinstance(v, V.CastVote) else V.CastVote(v, order))
    return V.judge_vote(mine, vote_rule(arena), (priors or {}).get(judge, 0.0))


def judging_state(battle: PlannedBattle, arena: ArenaSettings, verdicts: Verdicts,
                  priors: Mapping[str, float] | None = None) -> tuple[list[str], list[str]]:
    """(asked, next): the judges whose votes are complete, in the battle's panel order (a prefix of it), and
    the judges the next round must ask (empty: the battle's judging is over)."""
    panel = judge_order(arena.seed, battle)
    asked: list[str] = []
    for judge in panel:
        if effective(arena, battle.battle_id, judge, verdicts, priors) is None:
            break
        asked.append(judge)
    remaining = len(panel) - len(asked)
    if arena.sequential_voting:
        votes = [effective(arena, battle.battle_id, j, verdicts, priors) for j in asked]
        k = judges_needed(votes, remaining)
    else:
        k = remaining
    return asked, panel[len(asked):len(asked) + k]


def next_judges(battle: PlannedBattle, arena: ArenaSettings, verdicts: Verdicts,
                priors: Mapping[str, float] | None = None) -> list[str]:
    return judging_state(battle, arena, verdicts, priors)[1]


def vote_requests(battles: Iterable[PlannedBattle], arena: ArenaSettings, verdicts: Verdicts,
                  responses: Mapping[tuple[str, str], str],
                  priors: Mapping[str, float] | None = None,
                  execution: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, list[VoteRequest]]:
    """Per judge, this round's vote requests: for each battle (whose two responses are in ``responses``,
    (instruction_id, expert) -> text), the judges :func:`next_judges` names, in each shown order, minus the
    votes already cast (``verdicts``, vote id -> verdict). Sorted by vote id within a judge. ``execution``
    (battle id -> role -> summary line) puts each battle's execution summaries in its prompts, in shown order."""
    out: dict[str, list[VoteRequest]] = defaultdict(list)
    for b in battles:
        att, dfd = responses.get((b.instruction_id, b.attacker)), responses.get((b.instruction_id, b.defender))
        if att is None or dfd is None:
            continue
        lines = (execution or {}).get(b.battle_id, {})
        for judge in next_judges(b, arena, verdicts, priors):
            for order in shown_orders(arena, b.battle_id, judge):
                vid = ids.vote_id(b.battle_id, judge, order)
                if vid in verdicts:
                    continue
                first, second = (att, dfd) if order == V.ATTACKER_FIRST else (dfd, att)
                shown = ("attacker", "defender") if order == V.ATTACKER_FIRST else ("defender", "attacker")
                evidence = judge_section(lines.get(shown[0], ""), lines.get(shown[1], ""))
                out[judge].append(VoteRequest(vid, b.battle_id, judge, order, b.instruction, first, second, evidence))
    return {j: sorted(rs, key=lambda r: r.vote_id) for j, rs in sorted(out.items())}


def judge_sampling(arena: ArenaSettings) -> Sampling:
    top = arena.votes.top_logprobs if arena.votes.probabilities else 0
    return Sampling(max_tokens=arena.judge_max_tokens, temperature=0.0, choices=VERDICT_CHOICES, top_logprobs=top)


def vote_record(r: VoteRequest, text: str, run_id: str, probs: tuple[float, float, float] | None = None) -> dict:
    """A vote: the parsed verdict and, when the backend reported them, [P(A), P(B), P(Tie)] (positional)."""
    raw = parse_verdict(text)
    return {"type": VOTE, "vote_id": r.vote_id, "battle_id": r.battle_id, "judge": r.judge,
            "shown_order": r.shown_order, "raw_verdict": raw, "verdict": V.to_competitor(raw, r.shown_order),
            "probs": None if probs is None else [round(p, 9) for p in probs], "raw_text": text, "run_id": run_id}


def cast_votes(requests: Sequence[VoteRequest], backend: Backend, template: str, arena: ArenaSettings,
               run_id: str) -> list[dict]:
    """Vote records for ``requests`` (all of one judge), in one batched call."""
    if not requests:
        return []
    judge = requests[0].judge
    convs = [render_judge_prompt(template, r.instruction, r.first, r.second, r.execution) for r in requests]
    gens = chat(backend, judge, convs, judge_sampling(arena))
    keep = arena.votes.probabilities
    return [vote_record(r, g.text, run_id, verdict_probabilities(g.logprobs) if keep else None)
            for r, g in zip(requests, gens, strict=True)]


# ------------------------------------------------------------------------------------------ closing
def battle_record(battle: PlannedBattle, arena: ArenaSettings, asked: Sequence[str], verdicts: Verdicts,
                  run_id: str, priors: Mapping[str, float] | None = None) -> dict:
    """The record of a battle whose judging is over (``asked``: its judges in panel order)."""
    seen = {j: effective(arena, battle.battle_id, j, verdicts, priors) for j in asked}
    calls = sum(len(shown_orders(arena, battle.battle_id, j)) for j in asked)
    full = len(battle.judges) * (2 if arena.both_orders else 1)
    return {"type": BATTLE, "battle_id": battle.battle_id, "instruction_id": battle.instruction_id,
            "attacker": battle.attacker, "defender": battle.defender,
            "attacker_response_id": response_request(arena, battle.instruction_id, battle.instruction,
                                                     battle.attacker).response_id,
            "defender_response_id": response_request(arena, battle.instruction_id, battle.instruction,
                                                     battle.defender).response_id,
            "battle_order": battle.battle_order, "judges_asked": list(asked), "judge_calls": calls,
            "judge_calls_saved": full - calls, "effective_votes": seen, "run_id": run_id}


def close(battles: Iterable[PlannedBattle], arena: ArenaSettings, verdicts: Verdicts,
          run_id: str, priors: Mapping[str, float] | None = None) -> list[dict]:
    """Battle records for every battle of ``battles`` whose judging is over."""
    out = []
    for b in battles:
        asked, nxt = judging_state(b, arena, verdicts, priors)
        if not nxt:
            out.append(battle_record(b, arena, asked, verdicts, run_id, priors))
    return out
