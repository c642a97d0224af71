"""Filter: drop unique instructions that are not coding requests before the judges score them.

Runs the configured rules of :mod:`warriorflow.method.instruction_filters` (``filters:``) over every
instruction at status ``unique``. One that fails a rule is dropped with the reason ``filter:<rule>``
(and the rule's detail in its ``dropped_records`` provenance); the rest stay ``unique`` for
plan_scores. The rules are deterministic, so a re-run drops nothing more (with the same settings).
The counts give the drops per enabled rule (``dropped_<rule>``, zeros included).
"""

from __future__ import annotations

from warriorflow.config import Config
from warriorflow.method.instruction_filters import REASON_PREFIX, build_filters
from warriorflow.stages.base import UNIQUE, Outcome, at_status, drop, stage
from warriorflow.store.rating_store import RatingStore


@stage("filter")
def filter_stage(config: Config, store: RatingStore, run_id: str) -> Outcome:
    filters = build_filters(config.settings.filters, config.settings.mining.language)
    todo = at_status(store, UNIQUE)
    drops: dict[str, list[dict]] = {}
    for row in todo:
        hit = filters.first(row["text"])
        if hit is not None:
            drops.setdefault(hit.reason, []).append(dict(row, filter_detail=f"{hit.rule}: {hit.detail}"))
    drop(store, "filter", drops, run_id)
    per_rule = {f"dropped_{name}": len(drops.get(REASON_PREFIX + name, [])) for name in filters.names}
    dropped = sum(per_rule.values())
    notes = [] if filters.rules else ["filters.enabled is false (or every rule is off): nothing was checked"]
    return Outcome({"input": len(todo), "kept": len(todo) - dropped, **per_rule}, notes)
