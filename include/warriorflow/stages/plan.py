"""Plan: the missing battles of the selected instructions (the fairness rules are the method's, in
:mod:`warriorflow.method.planning`), recorded as ``planned``, and the response jobs they need: one per
(answering expert, shard), each answering every instruction its expert's planned battles need and that
has no stored response yet. Battles planned earlier but never completed are planned again, with their
original order; their finished responses are not redone.

Bounded memory: the instructions that may miss a battle are found in SQL (an anti-join against the battles,
plus those planned before an expert joined), and only they are read; the counts the fairness rules need
are SQL aggregates. The battles already planned are never loaded."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from warriorflow.config import Config, Registry
from warriorflow.method.battle_jobs import PlannedBattle, response_requests
from warriorflow.method.planning import Existing, eligible_judges, plan_battles
from warriorflow.stages.base import Outcome, now_utc, stage
from warriorflow.stages.ingest_battles import open_battles
from warriorflow.stages.job_plans import write_jobs
from warriorflow.store.objects import ObjectStore
from warriorflow.store.rating_store import RatingStore, load_query


def arena_registry(config: Config, objects: ObjectStore) -> Registry:
    """The experts that can battle now: the registry, less the champion (``flywheel.champion_joins_arena``) until a
    model has been promoted (the object store's champion alias). From its first promotion on, the champion
    joins like any new expert: the newcomer rule has it battle the instructions selected before it."""
    f = config.settings.flywheel
    if not f.champion_joins_arena or f.champion_name not in config.registry.names():
        return config.registry
    from warriorflow.store.champion import read_champion

    if read_champion(objects) is not None:
        return config.registry
    return Registry(experts=[e for e in config.registry.experts if e.name != f.champion_name])


def register_experts(config: Config, store: RatingStore, registry: Registry | None = None) -> None:
    """Record the registry (default: the configured one); first_seen_at keeps when each expert joined (the
    planner's newcomer rule), and updated_at changes only when an expert's entry does."""
    fields = ("backend", "model_source", "weights_id", "roles", "config")
    stored = {r["name"]: r for r in store.query(f"SELECT name, {', '.join(fields)} FROM experts")}
    rows = [{"name": e.name, "backend": e.backend.value, "model_source": e.model.describe(), "weights_id": e.weights,
             "roles": [r.value for r in e.roles], "config": e.model_dump(mode="json")}
            for e in (registry or config.registry).experts]

    def same(row: dict, old: dict | None) -> bool:
        return old is not None and all(json.dumps(row[f], sort_keys=True, default=str) == json.dumps(
            json.loads(old[f]) if f == "config" and isinstance(old[f], str) else old[f], sort_keys=True,
            default=str) for f in fields)

    changed = [dict(r, updated_at=now_utc()) for r in rows if not same(r, stored.get(r["name"]))]
    store.upsert("experts", changed, key=["name"], update=[*fields, "updated_at"])


def existing_battles(store: RatingStore, where: str = "TRUE", params: Sequence = ()
                     ) -> tuple[list[dict], dict[str, Existing], tuple[Counter, Counter], int]:
    """What planning needs of the battles already planned, found in SQL (sql/queries/plan_candidates.sql): the
    instructions selected (``where``) that may miss a battle, with what is planned on them already, the attack
    and defence counts of every expert, and the next battle order. An instruction may miss a battle when it has
    none (an anti-join), or when an expert joined after its first battle was planned (the newcomer rule);
    every other instruction gets nothing from the planner, so it is never read."""
    rows = store.query(load_query("plan_candidates").replace("$where", where), list(params))
    candidates = [{"instruction_id": r["instruction_id"], "text": r["text"], "expert": r["expert"]} for r in rows]
    existing = {r["instruction_id"]: Existing(frozenset(r["defenders"]), r["attacker"], r["first_planned_at"])
                for r in rows if r["defenders"]}
    attacks = Counter({r["name"]: int(r["n"]) for r in store.query(
        "SELECT attacker AS name, count(*) AS n FROM battles GROUP BY attacker")})
    defences = Counter({r["name"]: int(r["n"]) for r in store.query(
        "SELECT defender AS name, count(*) AS n FROM battles GROUP BY defender")})
    next_order = store.query("SELECT coalesce(max(battle_order), -1) + 1 AS n FROM battles")[0]["n"]
    return candidates, existing, (attacks, defences), int(next_order)


def stale_battles(config: Config, store: RatingStore) -> list[PlannedBattle]:
    """Battles planned before but never completed (a failed job), between experts still registered, each with
    the panel the registry of today gives it."""
    names = set(config.registry.names())
    return [replace(b, judges=eligible_judges(config.registry.get(b.attacker), config.registry.get(b.defender),
                                              config.registry))
            for b in open_battles(store) if b.attacker in names and b.defender in names]


@stage("plan")
def plan_stage(config: Config, store: RatingStore, objects: ObjectStore, run_id: str,
               since: datetime | None = None, until: datetime | None = None) -> Outcome:
    """Plan the missing battles of the instructions selected in [since, until); the value is the response jobs
    (dicts: key, step, model, items)."""
    registry = arena_registry(config, objects)
    register_experts(config, store, registry)
    where, params = ["i.status = 'selected'"], []
    if since is not None:
        where.append("s.selected_at >= ?")
        params.append(since)
    if until is not None:
        where.append("s.selected_at < ?")
        params.append(until)
    condition = " AND ".join(where)
    n_selected = store.query("SELECT count(*) AS n FROM instructions i JOIN instruction_selections s "
                             f"USING (instruction_id) WHERE {condition}", params)[0]["n"]
    instructions, existing, counts, next_order = existing_battles(store, condition, params)
    since_rows = store.query("SELECT name, first_seen_at FROM experts")
    plan = plan_battles(instructions, registry,
                        defenders_per_instruction=config.settings.arena.defenders_per_instruction,
                        existing=existing, existing_counts=counts,
                        expert_since={r["name"]: r["first_seen_at"] for r in since_rows}, next_order=next_order)
    retry = stale_battles(config, store)
    battles = sorted(retry + plan.battles, key=lambda b: b.battle_order)
    store.upsert("battles", [{"battle_id": b.battle_id, "instruction_id": b.instruction_id, "attacker": b.attacker,
                              "defender": b.defender, "battle_order": b.battle_order, "status": "planned",
                              "judges": list(b.judges), "run_id": run_id} for b in plan.battles],
                 key=["battle_id"])
    # a re-planned battle's panel follows the registry of today: record it, so its votes are checked against it
    store.update("battles", "battle_id", [{"battle_id": b.battle_id, "judges": list(b.judges)} for b in retry])
    jobs = respond_jobs(config, store, objects, run_id, battles)
    counts_out = {"instructions": int(n_selected), "planned": len(plan.battles), "retried": len(retry),
                  "response_jobs": len(jobs), "responses_asked": sum(j.items for j in jobs),
                  **{f"skipped_{k}": len(v) for k, v in sorted(plan.skipped.items())}}
    return Outcome(counts_out, ["balance " + json.dumps(plan.balance(), sort_keys=True)],
                   [j.to_dict() for j in jobs])


def respond_jobs(config: Config, store: RatingStore, objects: ObjectStore, run_id: str,
                 battles: list[PlannedBattle]) -> list:
    """Write the response jobs ``battles`` need: per answering expert, the responses not stored yet."""
    arena = config.settings.arena
    wanted = response_requests(battles, arena)
    ids_ = [r.response_id for rs in wanted.values() for r in rs]
    have = {r["response_id"] for r in store.query(
        "SELECT response_id FROM responses WHERE response_id IN (SELECT unnest(?))", [ids_])}
    items = {e: [r.to_dict() for r in rs if r.response_id not in have] for e, rs in wanted.items()}
    return write_jobs(config, objects, run_id, "respond", items, {"arena": arena.model_dump(mode="json")})
