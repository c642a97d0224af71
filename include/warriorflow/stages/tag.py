"""Tag: a judge puts each untagged instruction in scope (``tagging.scope``) into one task category.

The judges' outputs go to ``runs/RUN/tag/tags-DIGEST.jsonl`` first (one file per set of instructions:
a re-run after a crash reuses it, new work gets its own), then through the ingest loop; a file that
fails its checks is quarantined and the step fails. Re-running changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter

from warriorflow.config import Config
from warriorflow.errors import StoreError
from warriorflow.inference.factory import OpenBackends
from warriorflow.method.progress import Progress
from warriorflow.method.tagging import (
    NO_JUDGE,
    SCOPE_STATUSES,
    check_tag_rows,
    check_template,
    choose_judge,
    tag_instructions,
    tagging_judges,
)
from warriorflow.stages.base import Outcome, stage
from warriorflow.store.ingest import Rejection, ingest_files
from warriorflow.store.jsonl import decode_jsonl, encode_jsonl
from warriorflow.store.keys import tag_key
from warriorflow.store.objects import ObjectStore
from warriorflow.store.rating_store import RatingStore

log = logging.getLogger(__name__)


def untagged(store: RatingStore, statuses: tuple[str, ...]) -> list[dict]:
    """Instructions at one of ``statuses`` with no task tag yet, in id order."""
    return store.query(
        "SELECT instruction_id, text, expert FROM instructions i WHERE status IN (SELECT unnest(?)) "
        "AND NOT EXISTS (SELECT 1 FROM task_tags t WHERE t.instruction_id = i.instruction_id) "
        "ORDER BY instruction_id", [list(statuses)])


@stage("tag")
def tag_stage(config: Config, store: RatingStore, objects: ObjectStore, run_id: str,
              progress: Progress = log.info) -> dict[str, int] | Outcome:
    t = config.settings.tagging
    if not t.enabled:
        return Outcome({"disabled": 1}, ["tagging.enabled is false"])
    judges = tagging_judges(config.registry, t.judges)
    todo = untagged(store, SCOPE_STATUSES[t.scope])
    chosen = {ins["instruction_id"]: choose_judge(ins["expert"], config.registry, judges) for ins in todo}
    taggable = [ins for ins in todo if chosen[ins["instruction_id"]] is not None]
    rows: list[dict] = []
    if taggable:
        digest = hashlib.sha256("\n".join(i["instruction_id"] for i in taggable).encode()).hexdigest()[:16]
        key = tag_key(run_id, digest)
        if not objects.exists(key):
            template = config.prompt_path(t.prompt).read_text(encoding="utf-8")
            check_template(template, f"tagging prompt {config.prompt_path(t.prompt)}")
            names = sorted({chosen[i["instruction_id"]].name for i in taggable})
            with OpenBackends(config) as backends:
                progress(f"tag: {len(taggable)} instructions, judges {names} ...")
                new = tag_instructions(taggable, config.registry, backends, template, t.categories,
                                       config.settings.mining.language, run_id, judges=judges,
                                       max_tokens=t.max_tokens)
            objects.put_bytes(key, encode_jsonl(new))
        wanted = {i["instruction_id"] for i in taggable}

        def check(file_rows: list[dict]) -> Rejection | None:
            problems = check_tag_rows(file_rows, t.categories)
            return Rejection("; ".join(problems[:5]), {"problems": problems}) if problems else None

        def merge(_key: str, file_rows: list[dict]) -> None:
            rows.extend(r for r in file_rows if r["instruction_id"] in wanted)
            store.upsert("task_tags", rows, key=["instruction_id"])
            store.update("instructions", "instruction_id", [
                {"instruction_id": r["instruction_id"], "task_category": r["category"]} for r in rows if r["valid"]])

        report = ingest_files(store, objects, [key], kind="task_tags", stage="tag", merge=merge, check=check)
        if report.quarantined:
            raise StoreError(objects.uri(key), f"failed its checks and was quarantined: {report.quarantined[key]}",
                             "see the report beside the quarantined file; fix the judge backend and re-run")
        if report.skipped:  # merged, in one transaction, by an earlier attempt: count what it holds
            rows = [r for r in decode_jsonl(objects.get_bytes(key)) if r["instruction_id"] in wanted]
    per_category = Counter(r["category"] for r in rows if r["valid"])
    return {"input": len(todo), "tagged": len(rows), "invalid": sum(not r["valid"] for r in rows),
            NO_JUDGE: len(todo) - len(taggable),
            **{f"category_{c.replace(' ', '_')}": per_category[c] for c in t.categories if per_category[c]}}
