"""Task tagging: a judge puts each kept instruction into one category of a fixed set.

The categories (``tagging.categories``; by default code generation, debugging, optimisation,
reasoning, analysis, theory, transpile) are the report's task-category mix. One judge tags each
instruction. The judge is chosen from ``tagging.judges`` (default: every judge-role expert, in registry
order) with the eligibility rule of difficulty scoring: never the instruction's miner, nor any expert
on the miner's weights. The first eligible judge in that order is taken, so the choice is
deterministic and each judge's instructions go out in one batched call.

The answer is constrained to exactly one category name (``Sampling.choices``). Backends that cannot
constrain may write free text; :func:`parse_category` then accepts it only when exactly one category
name is in it. Anything else is an *invalid* tag: it is stored with its raw text, counted and
reported, never guessed.

``tag_stage`` is the store-level stage (after compression in ``pipeline.writer_stages``): it tags the
instructions in scope that have no tag yet, so re-running it changes nothing. The judge outputs go to
a result file in the object store first; a file that fails its checks is quarantined.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

from warriorflow.config import Config, Expert, Registry, Role
from warriorflow.errors import ConfigError, StoreError
from warriorflow.inference.base import Backend, Sampling
from warriorflow.stages.difficulty import eligible_judges

log = logging.getLogger(__name__)

PLACEHOLDERS = ("instruction", "categories")
SCOPE_STATUSES = {"selected": ("selected",), "kept": ("scored", "clean", "selected")}
NO_JUDGE = "no_eligible_judges"

_PLACEHOLDER = re.compile(r"\{(instruction|categories|language)\}")
_EDGE = re.compile(r"^[\s\"'`*.:;!\[\](){}-]+|[\s\"'`*.:;!\[\](){}-]+$")


def check_template(template: str, what: str = "task tagging prompt") -> None:
    missing = [p for p in PLACEHOLDERS if "{" + p + "}" not in template]
    if missing:
        raise ConfigError(what, f"lacks the placeholder(s) {', '.join('{' + p + '}' for p in missing)}",
                          "add {instruction} and {categories} (and optionally {language}) to the prompt file")


def render_prompt(template: str, instruction: str, categories: Sequence[str], language: str) -> list[dict]:
    """One user message: the template with the texts filled in a single pass (braces in them stay verbatim)."""
    values = {"instruction": instruction, "categories": "\n".join(f"- {c}" for c in categories),
              "language": language}
    return [{"role": "user", "content": _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)}]


def parse_category(text: str, categories: Sequence[str]) -> str | None:
    """The category a judge answered, or None (invalid).

    An exact answer (any case, surrounding quotes, brackets or punctuation ignored) first; else the one
    category whose name occurs as whole words in the text. No name, or two different names: None."""
    if not isinstance(text, str):
        return None
    by_key = {c.lower(): c for c in categories}
    exact = by_key.get(" ".join(_EDGE.sub("", text).lower().split()))
    if exact is not None:
        return exact
    flat = " ".join(text.lower().split())
    found = {c for key, c in by_key.items() if re.search(rf"(?<![a-z0-9]){re.escape(key)}(?![a-z0-9])", flat)}
    return found.pop() if len(found) == 1 else None


def tagging_judges(registry: Registry, names: Sequence[str] | None) -> list[Expert]:
    """The experts that may tag, in order of preference; ConfigError for an unknown name or a non-judge."""
    if names is None:
        return registry.with_role(Role.judge)
    out = []
    for name in names:
        expert = registry.get(name)  # ConfigError naming the unknown expert
        if not expert.has_role(Role.judge):
            raise ConfigError(f"tagging.judges: expert '{name}'", "does not have the 'judge' role",
                              "list judge-role experts only, or give the expert the judge role in the registry")
        out.append(expert)
    return out


def choose_judge(miner: str, registry: Registry, judges: Sequence[Expert]) -> Expert | None:
    """The first of ``judges`` that may judge the miner's instruction (the difficulty eligibility rule)."""
    allowed = {e.name for e in eligible_judges(miner, registry)}
    return next((j for j in judges if j.name in allowed), None)


def tag_instructions(instructions: Sequence[Mapping], registry: Registry, backends: Mapping[str, Backend],
                     template: str, categories: Sequence[str], language: str, run_id: str, *,
                     judges: Sequence[Expert] | None = None, max_tokens: int = 8) -> list[dict]:
    """Tag rows (for ``task_tags``), one per instruction with an eligible judge; one batched call per judge.

    Instructions without an eligible judge get no row (they stay untagged until one joins)."""
    check_template(template)
    judges = list(judges) if judges is not None else registry.with_role(Role.judge)
    per_judge: dict[str, list[Mapping]] = defaultdict(list)
    for ins in instructions:
        judge = choose_judge(ins["expert"], registry, judges)
        if judge is not None:
            per_judge[judge.name].append(ins)
    sha = hashlib.sha256(template.encode()).hexdigest()
    sampling = Sampling(max_tokens=max_tokens, temperature=0.0, choices=tuple(categories))
    rows = []
    for judge_name, batch in per_judge.items():
        convs = [render_prompt(template, ins["text"], categories, language) for ins in batch]
        for ins, gen in zip(batch, backends[judge_name].chat(convs, sampling), strict=True):
            category = parse_category(gen.text, categories)
            rows.append({"instruction_id": ins["instruction_id"], "category": category, "valid": category is not None,
                         "judge": judge_name, "raw_text": gen.text, "categories": list(categories),
                         "prompt_sha256": sha, "run_id": run_id})
    return rows


def check_tag_rows(rows: Sequence[Mapping], categories: Sequence[str]) -> list[str]:
    """Problems of a tag result file (empty when it is sound)."""
    problems, seen = [], set()
    for n, r in enumerate(rows, start=1):
        missing = [k for k in ("instruction_id", "judge", "valid", "run_id", "prompt_sha256") if r.get(k) is None]
        if missing:
            problems.append(f"row {n}: missing {missing}")
            continue
        if r["valid"] is True and r.get("category") not in categories:
            problems.append(f"row {n}: category {r.get('category')!r} is not one of the categories")
        elif r["valid"] is False and r.get("category") is not None:
            problems.append(f"row {n}: an invalid tag must have no category")
        elif not isinstance(r["valid"], bool):
            problems.append(f"row {n}: valid must be true or false")
        if r["instruction_id"] in seen:
            problems.append(f"row {n}: instruction {r['instruction_id']} tagged twice")
        seen.add(r["instruction_id"])
    return problems


def untagged(store, statuses: Sequence[str]) -> list[dict]:
    """Instructions at one of ``statuses`` with no task tag yet, in id order."""
    return store.query(
        "SELECT instruction_id, text, expert FROM instructions i WHERE status IN (SELECT unnest(?)) "
        "AND NOT EXISTS (SELECT 1 FROM task_tags t WHERE t.instruction_id = i.instruction_id) "
        "ORDER BY instruction_id", [list(statuses)])


def tag_stage(config: Config, store, objects, run_id: str, progress=log.info):
    """Tag the untagged instructions in scope (``tagging.scope``); idempotent. Returns a StageReport."""
    from warriorflow.pipeline import StageReport, _jsonl, _read_jsonl, _record, now_utc
    from warriorflow.store.ingest import quarantine, record_quarantine

    started, report = now_utc(), StageReport("tag", run_id)
    t = config.settings.tagging
    if not t.enabled:
        report.counts = {"disabled": 1}
        report.notes.append("tagging.enabled is false")
        return _record(store, report, started)
    judges = tagging_judges(config.registry, t.judges)
    todo = untagged(store, SCOPE_STATUSES[t.scope])
    chosen = {ins["instruction_id"]: choose_judge(ins["expert"], config.registry, judges) for ins in todo}
    taggable = [ins for ins in todo if chosen[ins["instruction_id"]] is not None]
    rows: list[dict] = []
    if taggable:
        # one result file per set of instructions: a re-run after a crash reuses it, new work gets its own
        digest = hashlib.sha256("\n".join(i["instruction_id"] for i in taggable).encode()).hexdigest()[:16]
        key = f"runs/{run_id}/tag/tags-{digest}.jsonl"
        if not objects.exists(key):
            from warriorflow.inference import factory

            template = config.prompt_path(t.prompt).read_text(encoding="utf-8")
            check_template(template, f"tagging prompt {config.prompt_path(t.prompt)}")
            names = sorted({chosen[i["instruction_id"]].name for i in taggable})
            backends: dict[str, Backend] = {}
            try:
                for name in names:
                    backends[name] = factory.backend_for(config.registry.get(name), config)
                progress(f"tag: {len(taggable)} instructions, judges {names} ...")
                new = tag_instructions(taggable, config.registry, backends, template, t.categories,
                                       config.settings.mining.language, run_id, judges=judges,
                                       max_tokens=t.max_tokens)
            finally:
                for b in backends.values():
                    b.close()
            objects.put_bytes(key, _jsonl(new))
        try:
            rows = _read_jsonl(objects.get_bytes(key))
            problems = check_tag_rows(rows, t.categories)
        except (ValueError, UnicodeDecodeError) as exc:
            problems = [f"not JSON Lines: {exc}"]
        if problems:
            reason = "; ".join(problems[:5])
            record_quarantine(store, objects, key, quarantine(objects, key, "tag", reason, {"problems": problems}),
                              "tag", reason)
            raise StoreError(objects.uri(key), f"failed its checks and was quarantined: {reason}",
                             "see the report beside the quarantined file; fix the judge backend and re-run")
        wanted = {i["instruction_id"] for i in taggable}
        rows = [r for r in rows if r["instruction_id"] in wanted]
        store.upsert("task_tags", rows, key=["instruction_id"])
        store.update("instructions", "instruction_id", [
            {"instruction_id": r["instruction_id"], "task_category": r["category"]} for r in rows if r["valid"]])
    per_category = Counter(r["category"] for r in rows if r["valid"])
    report.counts = {"input": len(todo), "tagged": len(rows), "invalid": sum(not r["valid"] for r in rows),
                     NO_JUDGE: len(todo) - len(taggable),
                     **{f"category_{c.replace(' ', '_')}": per_category[c] for c in t.categories if per_category[c]}}
    return _record(store, report, started)
