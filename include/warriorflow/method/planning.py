"""Battle planning with the fairness rules (WarriorCoder step 4). A pure function of its inputs.

* **Attacker** = the instruction's miner. A miner that cannot answer (a base model) cannot attack; its
  instruction is then fought over by answer-role experts, the least-attacking one taking the attacker
  slot.
* **Defenders** are chosen so that every expert defends (and attacks) as evenly as the instructions
  allow: each instruction, in a fixed order, takes the answer-role experts with the fewest defences so
  far (ties broken by fewest battles overall, then by name). ``defenders_per_instruction`` of them,
  default 1, up to all others.
* **Judges** are every judge-role expert except the two competitors and any expert on their weights
  (suspicion averting). A battle with no eligible judge is not planned; it is reported.
* **Missing only.** Battles already in the store are never planned again. An expert that joined
  after an instruction's battles were planned battles the attacker on it. So after adding an
  expert, the plan holds only that expert's battles.

Planning twice gives the same plan: every choice is a deterministic function of the inputs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from warriorflow.config import Expert, Registry
from warriorflow.method import ids
from warriorflow.method.battle_jobs import PlannedBattle  # the battle-batch input item


@dataclass(frozen=True)
class Existing:
    """What the store already holds about an instruction's battles."""

    defenders: frozenset[str] = frozenset()
    attacker: str | None = None
    first_planned_at: datetime | None = None


@dataclass
class Plan:
    battles: list[PlannedBattle] = field(default_factory=list)
    attacks: Counter = field(default_factory=Counter)  # over existing + planned battles
    defences: Counter = field(default_factory=Counter)
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> instruction ids

    def balance(self) -> dict[str, dict[str, int]]:
        names = sorted(set(self.attacks) | set(self.defences))
        return {n: {"attacks": self.attacks[n], "defences": self.defences[n]} for n in names}


def eligible_judges(a: Expert, b: Expert, registry: Registry) -> tuple[str, ...]:
    banned = {a.name, b.name}
    banned_weights = {a.weights, b.weights}
    return tuple(e.name for e in registry.with_role("judge")
                 if e.name not in banned and e.weights not in banned_weights)


def plan_battles(
    instructions: Sequence[Mapping],
    registry: Registry,
    *,
    defenders_per_instruction: int = 1,
    existing: Mapping[str, Existing] | None = None,
    existing_counts: tuple[Mapping[str, int], Mapping[str, int]] = ({}, {}),
    expert_since: Mapping[str, datetime] | None = None,
    next_order: int = 0,
) -> Plan:
    """Plan the missing battles for ``instructions`` (dicts with instruction_id, text, expert=miner).

    ``existing_counts`` = (attacks, defences) per expert over battles already stored, so balance holds
    across runs. ``expert_since`` = when each expert joined the registry (the store's first_seen_at).
    """
    existing = existing or {}
    expert_since = expert_since or {}
    answerers = {e.name: e for e in registry.with_role("answer")}
    plan = Plan(attacks=Counter(existing_counts[0]), defences=Counter(existing_counts[1]))
    order = next_order

    def rank(name: str) -> tuple:
        return (plan.defences[name], plan.attacks[name] + plan.defences[name], name)

    for ins in sorted(instructions, key=lambda r: r["instruction_id"]):
        iid = ins["instruction_id"]
        prior = existing.get(iid, Existing())
        miner = ins["expert"]
        if prior.attacker is not None:
            attacker = prior.attacker
        elif miner in answerers:
            attacker = miner
        else:  # a miner that cannot answer: the least-attacking answerer takes the attacker slot
            candidates = sorted(answerers, key=lambda n: (plan.attacks[n], plan.attacks[n] + plan.defences[n], n))
            if not candidates:
                plan.skipped.setdefault("no_answerers", []).append(iid)
                continue
            attacker = candidates[0]
        others = [n for n in answerers if n != attacker]
        if prior.defenders:
            # an expert that joined after this instruction was planned battles the attacker on it
            joined = prior.first_planned_at
            defenders = sorted(n for n in others if n not in prior.defenders and joined is not None
                               and n in expert_since and expert_since[n] > joined)
        else:
            defenders = sorted(others, key=rank)[:defenders_per_instruction]
        if not defenders and not prior.defenders:
            plan.skipped.setdefault("no_defenders", []).append(iid)
        for defender in defenders:
            judges = eligible_judges(answerers[attacker], answerers[defender], registry)
            if not judges:
                plan.skipped.setdefault("no_eligible_judges", []).append(iid)
                continue
            plan.battles.append(PlannedBattle(ids.battle_id(iid, attacker, defender), iid, ins["text"], attacker,
                                              defender, judges, order))
            order += 1
            plan.attacks[attacker] += 1
            plan.defences[defender] += 1
    return plan
