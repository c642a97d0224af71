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

The store-level step is :mod:`warriorflow.stages.tag` (after compression): it tags the
instructions in scope that have no tag yet, so re-running it changes nothing. The judge outputs go to
a result file in the object store first; a file that fails its checks is quarantined.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence

from warriorflow.config import Expert, Registry, Role
from warriorflow.errors import ConfigError
from warriorflow.method import prompts
from warriorflow.method.backend import Backend, Sampling
from warriorflow.method.difficulty import eligible_judges

log = logging.getLogger(__name__)

PLACEHOLDERS = ("instruction", "categories")
SCOPE_STATUSES = {"selected": ("selected",), "kept": ("scored", "clean", "selected")}
NO_JUDGE = "no_eligible_judges"

_EDGE = re.compile(r"^[\s\"'`*.:;!\[\](){}-]+|[\s\"'`*.:;!\[\](){}-]+$")


TAGGING_PROMPT = prompts.PromptTemplate("task tagging prompt", PLACEHOLDERS, ("language",))
check_template = TAGGING_PROMPT.check


def render_prompt(template: str, instruction: str, categories: Sequence[str], language: str) -> list[dict]:
    """One user message: the template with the texts filled in a single pass (braces in them stay verbatim)."""
    return TAGGING_PROMPT.conversation(template, instruction=instruction,
                                       categories="\n".join(f"- {c}" for c in categories), language=language)


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


def tag_with(judge: str, backend: Backend, instructions: Sequence[Mapping], template: str,
             categories: Sequence[str], language: str, run_id: str, *, max_tokens: int = 8) -> list[dict]:
    """One judge's tag rows for ``instructions`` (each with instruction_id and text), in one batched call."""
    check_template(template)
    sha = hashlib.sha256(template.encode()).hexdigest()
    sampling = Sampling(max_tokens=max_tokens, temperature=0.0, choices=tuple(categories))
    convs = [render_prompt(template, ins["text"], categories, language) for ins in instructions]
    rows = []
    for ins, gen in zip(instructions, backend.chat(convs, sampling), strict=True):
        category = parse_category(gen.text, categories)
        rows.append({"instruction_id": ins["instruction_id"], "category": category, "valid": category is not None,
                     "judge": judge, "raw_text": gen.text, "categories": list(categories),
                     "prompt_sha256": sha, "run_id": run_id})
    return rows


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
    rows = []
    for judge_name, batch in per_judge.items():
        rows += tag_with(judge_name, backends[judge_name], batch, template, categories, language, run_id,
                         max_tokens=max_tokens)
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
