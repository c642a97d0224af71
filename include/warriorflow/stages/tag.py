"""Tag: a judge puts each untagged instruction in scope (``tagging.scope``) into one task category.

Two writer steps around the tag jobs (one per judge and shard): :func:`plan_tags_stage` writes, per
judge, the untagged instructions it is the first eligible tagger for (``tagging.judges`` in order of
preference); :func:`tag_stage` ingests the jobs' result files (each checked against its job and the
category set; a failing file is quarantined and the step fails). An instruction whose job failed stays
untagged and is planned again next run. Re-running changes nothing.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from warriorflow.config import Config
from warriorflow.method.tagging import (
    NO_JUDGE,
    SCOPE_STATUSES,
    check_tag_rows,
    check_template,
    choose_judge,
    tagging_judges,
)
from warriorflow.stages.base import Outcome, fail_on_quarantine, ingest_outcome, stage
from warriorflow.stages.job_plans import answers_its_job, result_keys, write_jobs
from warriorflow.stages.prompt_files import read_prompt
from warriorflow.store.ingest import Rejection, ingest_files
from warriorflow.store.objects import ObjectStore
from warriorflow.store.rating_store import RatingStore


def untagged(store: RatingStore, statuses: tuple[str, ...]) -> list[dict]:
    """Instructions at one of ``statuses`` with no task tag yet, in id order."""
    return store.query(
        "SELECT instruction_id, text, expert FROM instructions i WHERE status IN (SELECT unnest(?)) "
        "AND NOT EXISTS (SELECT 1 FROM task_tags t WHERE t.instruction_id = i.instruction_id) "
        "ORDER BY instruction_id", [list(statuses)])


@stage("plan_tags")
def plan_tags_stage(config: Config, store: RatingStore, objects: ObjectStore, run_id: str) -> Outcome:
    """Write the tag jobs; the value is the jobs (dicts: key, step, model, items)."""
    t = config.settings.tagging
    if not t.enabled:
        return Outcome({"disabled": 1}, ["tagging.enabled is false"], [])
    judges = tagging_judges(config.registry, t.judges)
    todo = untagged(store, SCOPE_STATUSES[t.scope])
    per_judge: dict[str, list[dict]] = defaultdict(list)
    for ins in todo:
        judge = choose_judge(ins["expert"], config.registry, judges)
        if judge is not None:
            per_judge[judge.name].append({"instruction_id": ins["instruction_id"], "text": ins["text"]})
    jobs = []
    if per_judge:
        params = {"template": read_prompt(config, t.prompt, check_template, "tagging.prompt"),
                  "categories": list(t.categories), "language": config.settings.mining.language,
                  "max_tokens": t.max_tokens}
        jobs = write_jobs(config, objects, run_id, "tag", per_judge, params)
    asked = sum(len(v) for v in per_judge.values())
    return Outcome({"untagged": len(todo), NO_JUDGE: len(todo) - asked, "tag_jobs": len(jobs), "tags_asked": asked},
                   [], [j.to_dict() for j in jobs])


@stage("tag")
def tag_stage(config: Config, store: RatingStore, objects: ObjectStore, run_id: str) -> Outcome:
    """Ingest the tag jobs' results."""
    t = config.settings.tagging
    if not t.enabled:
        return Outcome({"disabled": 1}, ["tagging.enabled is false"])
    per_category: Counter = Counter()

    def check(rows: list[dict]) -> Rejection | None:
        problems = check_tag_rows(rows, t.categories)
        return Rejection("; ".join(problems[:5]), {"problems": problems}) if problems else None

    def merge(_key: str, rows: list[dict]) -> dict[str, int]:
        store.upsert("task_tags", rows, key=["instruction_id"])
        store.update("instructions", "instruction_id", [
            {"instruction_id": r["instruction_id"], "task_category": r["category"]} for r in rows if r["valid"]])
        per_category.update(r["category"] for r in rows if r["valid"])
        return {"tagged": len(rows), "invalid": sum(not r["valid"] for r in rows)}

    report = ingest_files(store, objects, result_keys(objects, run_id, "tag"), kind="task_tags", stage="tag",
                          merge=merge, check=check, check_file=answers_its_job(objects, "tag"))
    fail_on_quarantine(objects, report, "fix the judge backend and re-run: its instructions are asked again")
    return Outcome({**ingest_outcome(report).counts,
                    **{f"category_{c.replace(' ', '_')}": per_category[c] for c in t.categories if per_category[c]}})
