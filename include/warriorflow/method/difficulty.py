"""Judge-scored difficulty (WarriorCoder step 2, second half).

Judges are the experts with the judge role, except the instruction's own miner and any expert on the
same weights. Each judge scores every instruction it may judge, in one batched call, with the output
constrained to the strings "1".."10". Scores aggregate by the median; an instruction is kept when the
median reaches ``keep_min``. An output that is not a score (possible with backends that cannot
constrain) is an invalid score: stored with its raw text, counted, never guessed.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from warriorflow.config import Expert, Registry
from warriorflow.method import prompts
from warriorflow.method.backend import Backend, Sampling

SCORES = tuple(str(i) for i in range(1, 11))
_SCORE = re.compile(r"\b(10|[1-9])\b")

DROP_LOW = "low_difficulty"
DROP_NO_VALID = "no_valid_scores"
DROP_NO_JUDGES = "no_eligible_judges"


def eligible_judges(miner: str, registry: Registry) -> list[Expert]:
    """Judge-role experts other than the miner and anything on the miner's weights."""
    miner_weights = registry.get(miner).weights if miner in registry.names() else None
    return [e for e in registry.with_role("judge") if e.name != miner and e.weights != miner_weights]


def parse_score(text: str) -> int | None:
    """The score in a judge's output, or None. Exact choices first; else the only 1-10 number present."""
    stripped = text.strip()
    if stripped in SCORES:
        return int(stripped)
    found = set(_SCORE.findall(stripped))
    return int(found.pop()) if len(found) == 1 else None


def level(score: float | None) -> str:
    """The rubric level of a (median) score."""
    if score is None:
        return "invalid"
    if score >= 9:
        return "excellent"
    if score >= 6:
        return "good"
    if score >= 3:
        return "average"
    return "poor"


@dataclass(frozen=True)
class Verdict:
    instruction_id: str
    median: float | None
    n_valid: int
    n_invalid: int
    keep: bool
    reason: str | None  # drop reason when not kept


DIFFICULTY_PROMPT = prompts.PromptTemplate("difficulty prompt", ("instruction",), ("language",))
check_template = DIFFICULTY_PROMPT.check


def judge_prompt(template: str, instruction: str, language: str) -> list[dict]:
    return DIFFICULTY_PROMPT.conversation(template, instruction=instruction, language=language)


def judges_for(instruction: Mapping, registry: Registry, max_judges: int | None = None) -> list[Expert]:
    """The judges that score an instruction: every eligible judge, or the first ``max_judges`` of them."""
    judges = eligible_judges(instruction["expert"], registry)
    return judges[:max_judges] if max_judges else judges


SCORE_SAMPLING = Sampling(max_tokens=4, temperature=0.0, choices=SCORES)


def score_with(judge: str, backend: Backend, instructions: Sequence[Mapping], template: str, language: str,
               run_id: str) -> list[dict]:
    """One judge's score rows for ``instructions`` (each with instruction_id and text), in one batched call."""
    check_template(template)
    convs = [judge_prompt(template, ins["text"], language) for ins in instructions]
    rows = []
    for ins, gen in zip(instructions, backend.chat(convs, SCORE_SAMPLING), strict=True):
        score = parse_score(gen.text)
        rows.append({"instruction_id": ins["instruction_id"], "judge": judge, "score": score,
                     "valid": score is not None, "raw_text": gen.text, "run_id": run_id})
    return rows


def score_instructions(instructions: Sequence[Mapping], registry: Registry, backends: Mapping[str, Backend],
                       template: str, language: str, run_id: str, max_judges: int | None = None) -> list[dict]:
    """Score rows (for `difficulty_scores`): one per (instruction, eligible judge), batched per judge."""
    check_template(template)
    per_judge: dict[str, list[Mapping]] = defaultdict(list)
    for ins in instructions:
        for judge in judges_for(ins, registry, max_judges):
            per_judge[judge.name].append(ins)
    rows = []
    for judge_name, batch in per_judge.items():
        rows += score_with(judge_name, backends[judge_name], batch, template, language, run_id)
    return rows


def aggregate(instruction_ids: Sequence[str], scores: Sequence[Mapping], keep_min: int) -> list[Verdict]:
    """Median of the valid scores per instruction, and the keep/drop decision with its reason."""
    by_id: dict[str, list[Mapping]] = defaultdict(list)
    for s in scores:
        by_id[s["instruction_id"]].append(s)
    verdicts = []
    for iid in instruction_ids:
        rows = by_id.get(iid, [])
        valid = [r["score"] for r in rows if r["valid"]]
        median = float(statistics.median(valid)) if valid else None
        if not rows:
            reason = DROP_NO_JUDGES
        elif median is None:
            reason = DROP_NO_VALID
        elif median < keep_min:
            reason = DROP_LOW
        else:
            reason = None
        verdicts.append(Verdict(iid, median, len(valid), len(rows) - len(valid), reason is None, reason))
    return verdicts
