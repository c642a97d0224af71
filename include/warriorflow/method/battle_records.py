"""What a battle result file may say: every record checked against the plan and the registry.

A battle batch runs in a pod, and its result file is input the writer must not trust. Each record is
checked for its shape (field types) and its meaning:

* a **vote** (with optional positional probabilities ``probs``: three numbers in [0, 1] summing to 1)
  names a planned battle, a registered judge-role expert that was on that battle's panel and is
  not one of its competitors (suspicion averting), a shown order, a raw verdict, the competitor verdict
  that the raw verdict and the shown order imply, and its content-addressed id;
* a **response** is a registered competitor's answer to an instruction of a planned battle, with its
  content-addressed id;
* a **battle** names a planned battle and, as its attacker's and defender's responses, responses by
  exactly those experts to that battle's instruction (in the file, or stored before).

:func:`check_battle_records` returns one problem per bad record, naming its line; the ingest step
quarantines a file with any problem whole, so ratings are only ever computed from accepted votes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from warriorflow.method import ids
from warriorflow.method.votes import ATTACKER_FIRST, DEFENDER_FIRST, VERDICTS, check_probs, to_competitor

RAW_VERDICTS = ("A", "B", "tie", "invalid")
_STR, _INT, _DICT = (str,), (int,), (dict,)
FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "response": {"response_id": _STR, "instruction_id": _STR, "expert": _STR, "text": _STR, "sampling": _DICT,
                 "run_id": _STR},
    "vote": {"vote_id": _STR, "battle_id": _STR, "judge": _STR, "shown_order": _STR, "raw_verdict": _STR,
             "verdict": _STR, "run_id": _STR},
    "battle": {"battle_id": _STR, "attacker_response_id": _STR, "defender_response_id": _STR},
}
OPTIONAL: dict[str, dict[str, tuple[type, ...]]] = {
    "response": {"seed": _INT, "finish_reason": _STR, "prompt_tokens": _INT, "completion_tokens": _INT},
    "vote": {"raw_text": _STR, "probs": (list,)},
    "battle": {"judge_calls": _INT, "judge_calls_saved": _INT},
}


@dataclass(frozen=True)
class PlannedBattleRef:
    """What the plan says of a battle: its instruction, competitors and judge panel."""

    instruction_id: str
    attacker: str
    defender: str
    judges: tuple[str, ...]


@dataclass(frozen=True)
class ArenaFacts:
    """What a result file is checked against: the planned battles, the registry's experts and judges, and the
    responses stored before ({response_id: (instruction_id, expert)})."""

    battles: Mapping[str, PlannedBattleRef]
    experts: Collection[str]
    judges: Collection[str]
    stored_responses: Mapping[str, tuple[str, str]] = field(default_factory=dict)


def _shape(n: int, kind: str, r: Mapping[str, Any]) -> list[str]:
    problems = []
    for name, types in FIELDS[kind].items():
        value = r.get(name)
        if value is None:
            problems.append(f"line {n} ({kind}): missing {name}")
        elif not isinstance(value, types) or isinstance(value, bool):
            problems.append(f"line {n} ({kind}): {name} must be a {types[0].__name__}, not {type(value).__name__}")
    for name, types in OPTIONAL[kind].items():
        value = r.get(name)
        if value is not None and (not isinstance(value, types) or isinstance(value, bool)):
            problems.append(f"line {n} ({kind}): {name} must be a {types[0].__name__} or null")
    return problems


def check_battle_records(records: Sequence[Mapping[str, Any]], facts: ArenaFacts | None = None) -> list[str]:
    """Problems of a battle result file, one per bad record (empty when it is sound). Without ``facts`` only
    the shape and the internal consistency are checked."""
    problems: list[str] = []
    responses: dict[str, tuple[str, str]] = dict(facts.stored_responses) if facts else {}
    seen: dict[tuple[str, str], int] = {}
    typed = []
    for n, r in enumerate(records, start=1):
        kind = r.get("type")
        if kind not in FIELDS:
            problems.append(f"line {n}: unknown type {kind!r}")
            continue
        shape = _shape(n, kind, r)
        problems += shape
        if shape:
            continue
        key = (kind, r.get(f"{kind}_id") or r["battle_id"])
        if key in seen:
            problems.append(f"line {n} ({kind}): {key[1]} repeats line {seen[key]}")
            continue
        seen[key] = n
        typed.append((n, kind, r))
        if kind == "response":
            responses[r["response_id"]] = (r["instruction_id"], r["expert"])
    for n, kind, r in typed:
        problems += _meaning(n, kind, r, facts, responses)
    return problems


def _meaning(n: int, kind: str, r: Mapping[str, Any], facts: ArenaFacts | None,
             responses: Mapping[str, tuple[str, str]]) -> list[str]:
    where = f"line {n} ({kind})"
    if kind == "vote":
        out = []
        if r["shown_order"] not in (ATTACKER_FIRST, DEFENDER_FIRST):
            out.append(f"{where}: shown_order {r['shown_order']!r}")
        if r["raw_verdict"] not in RAW_VERDICTS or r["verdict"] not in VERDICTS:
            out.append(f"{where}: verdict {r['verdict']!r} / raw verdict {r['raw_verdict']!r}")
        elif not out and to_competitor(r["raw_verdict"], r["shown_order"]) != r["verdict"]:
            out.append(f"{where}: verdict {r['verdict']!r} is not what raw verdict {r['raw_verdict']!r} means "
                       f"when shown {r['shown_order']}")
        if r.get("probs") is not None:
            try:
                check_probs(r["probs"])
            except ValueError as e:
                out.append(f"{where}: probs: {e}")
        if r["vote_id"] != ids.vote_id(r["battle_id"], r["judge"], r["shown_order"]):
            out.append(f"{where}: vote_id is not the id of (battle, judge, shown order)")
        if facts is not None:
            b = facts.battles.get(r["battle_id"])
            if b is None:
                out.append(f"{where}: battle {r['battle_id']} was never planned")
            elif r["judge"] in (b.attacker, b.defender):
                out.append(f"{where}: judge {r['judge']!r} is a competitor of battle {r['battle_id']}")
            elif r["judge"] not in b.judges:
                out.append(f"{where}: judge {r['judge']!r} is not on battle {r['battle_id']}'s panel")
            if r["judge"] not in facts.judges:
                out.append(f"{where}: judge {r['judge']!r} is not a judge in the registry")
        return out
    if kind == "response":
        out = []
        if r["response_id"] != ids.response_id(r["instruction_id"], r["expert"], r["sampling"], r.get("seed")):
            out.append(f"{where}: response_id is not the id of (instruction, expert, sampling, seed)")
        if facts is not None:
            if r["expert"] not in facts.experts:
                out.append(f"{where}: expert {r['expert']!r} is not in the registry")
            if not any(b.instruction_id == r["instruction_id"] and r["expert"] in (b.attacker, b.defender)
                       for b in facts.battles.values()):
                out.append(f"{where}: no planned battle of {r['expert']!r} on instruction {r['instruction_id']}")
        return out
    out = []
    b = facts.battles.get(r["battle_id"]) if facts is not None else None
    if facts is not None and b is None:
        return [f"{where}: battle {r['battle_id']} was never planned"]
    for side in ("attacker", "defender"):
        rid = r[f"{side}_response_id"]
        if rid not in responses:
            out.append(f"{where}: {side} response {rid} is in neither the file nor the store")
        elif b is not None and responses[rid] != (b.instruction_id, getattr(b, side)):
            out.append(f"{where}: {side} response {rid} is not {getattr(b, side)}'s answer to the battle's "
                       "instruction")
    return out
