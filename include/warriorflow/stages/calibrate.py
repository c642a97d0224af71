"""`warriorflow judges calibrate`: every judge on labeled pairs, in both orders, through the battle path.

Each pair becomes a battle (response A the attacker, B the defender) that every judge sees in both
shown orders with the configured judge prompt, sampling and vote rule (:mod:`warriorflow.method.battle_jobs`),
and the execution judge when it is on. The figures (:mod:`warriorflow.method.calibration`) are written to
``judge_calibrations`` (one row per judge and one for the panel), where the report, the UI page and,
with ``arena.votes.judge_weights: calibrated``, the ratings read the latest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from warriorflow.config import Config
from warriorflow.errors import ConfigError
from warriorflow.method import calibration as C
from warriorflow.method import ids
from warriorflow.method import votes as V
from warriorflow.method.battle_jobs import VoteRequest, cast_votes, vote_rule
from warriorflow.method.execution import execution_summary, judge_section
from warriorflow.method.judging import check_template
from warriorflow.stages.execute import ExecutionItem, execution_records
from warriorflow.stages.prompt_files import read_prompt
from warriorflow.store.jsonl import JSONLError, iter_jsonl
from warriorflow.store.rating_store import RatingStore

PAIR_FIELDS = ("instruction", "response_a", "response_b", "label")
ATTACKER_NAME, DEFENDER_NAME = "response_a", "response_b"


@dataclass(frozen=True)
class LabeledPair:
    instruction: str
    response_a: str
    response_b: str
    label: str
    source: str = ""


def read_pairs(path: Path) -> tuple[list[LabeledPair], str]:
    """The labeled pairs of a JSONL file and its sha256; ConfigError naming the line of anything malformed."""
    what = f"labeled pairs file {path}"
    if not path.is_file():
        raise ConfigError(what, "not found", "give --pairs FILE.jsonl, e.g. from `warriorflow judges make-pairs`")
    data = path.read_bytes()
    pairs = []
    try:
        for n, rec in iter_jsonl(data):
            missing = [k for k in PAIR_FIELDS if k not in rec]
            if missing:
                raise ConfigError(what, f"line {n} lacks {', '.join(missing)}",
                                "each line needs instruction, response_a, response_b and label (a | b | tie)")
            bad = [k for k in PAIR_FIELDS[:3] if not isinstance(rec[k], str) or not rec[k].strip()]
            if bad:
                raise ConfigError(what, f"line {n}: {', '.join(bad)} must be non-empty strings", "fix the line")
            if rec["label"] not in C.LABELS:
                raise ConfigError(what, f"line {n}: label {rec['label']!r} is not one of a, b, tie", "fix the line")
            source = rec.get("source")
            pairs.append(LabeledPair(rec["instruction"], rec["response_a"], rec["response_b"], rec["label"],
                                     source if isinstance(source, str) else ""))
    except JSONLError as e:
        raise ConfigError(what, f"line {e.line}: not a JSON object ({e.detail})", "one JSON object per line") from None
    except UnicodeDecodeError:
        raise ConfigError(what, "is not UTF-8 text", "write the pairs as UTF-8 JSON Lines") from None
    if not pairs:
        raise ConfigError(what, "holds no pairs", "write at least one labeled pair")
    return pairs, hashlib.sha256(data).hexdigest()


def pair_battle_id(pair: LabeledPair, n: int) -> str:
    return ids.record_id("calibration", n, pair.instruction, pair.response_a, pair.response_b)


def vote_requests_for(pairs: Sequence[LabeledPair], judge: str,
                      evidence: Sequence[Mapping[str, str]] | None = None) -> list[VoteRequest]:
    """Both shown orders of every pair for ``judge`` (A = response_a = the attacker); ``evidence``: per pair,
    role -> execution summary line, shown in the prompt in shown order (as in battles)."""
    out = []
    for n, p in enumerate(pairs):
        bid = pair_battle_id(p, n)
        lines = evidence[n] if evidence else {}
        for order in (V.ATTACKER_FIRST, V.DEFENDER_FIRST):
            first, second = (p.response_a, p.response_b) if order == V.ATTACKER_FIRST else (p.response_b, p.response_a)
            roles = ("attacker", "defender") if order == V.ATTACKER_FIRST else ("defender", "attacker")
            section = judge_section(lines.get(roles[0], ""), lines.get(roles[1], "")) if lines else ""
            out.append(VoteRequest(ids.vote_id(bid, judge, order), bid, judge, order, p.instruction, first, second,
                                   section))
    return out


def judge_outcomes(records: Sequence[dict], pairs: Sequence[LabeledPair], rule: V.ProbabilisticRule) -> tuple[
        list[C.PairOutcome], float]:
    """One judge's outcome per pair from its vote records, and its measured first-position prior."""
    by_id = {r["vote_id"]: r for r in records}
    prior = V.first_position_prior(tuple(r["probs"]) for r in records if r.get("probs") is not None)
    out = []
    for n, p in enumerate(pairs):
        bid = pair_battle_id(p, n)
        judge = records[0]["judge"]
        cast = []
        for order in (V.ATTACKER_FIRST, V.DEFENDER_FIRST):
            r = by_id[ids.vote_id(bid, judge, order)]
            cast.append(V.CastVote(r["verdict"], order, tuple(r["probs"]) if r.get("probs") is not None else None))
        probabilistic = rule.enabled and all(c.probs is not None for c in cast)
        out.append(C.PairOutcome(V.judge_vote(cast, rule, prior), {c.shown_order: c.verdict for c in cast},
                                 probabilistic))
    return out, prior


def calibrate(config: Config, pairs: Sequence[LabeledPair], judges: Sequence[str] | None = None, *,
              execution: bool | None = None, progress: Callable[[str], None] = lambda _m: None,
              backend_factory: Callable | None = None, store_weights: Mapping[str, float] | None = None) -> dict:
    """``{"judges": {name: figures}, "panel": figures}`` for ``pairs`` (both orders, every judge). The panel
    weighs the execution vote with ``arena.execution.vote_weight`` and, with ``judge_weights: calibrated``,
    each judge with ``store_weights`` (its previous calibration), exactly as ratings do."""
    from warriorflow.inference.factory import backend_for

    arena = config.settings.arena.model_copy(update={"both_orders": True})
    names = list(judges) if judges else [e.name for e in config.registry.with_role("judge")]
    for name in names:
        expert = config.registry.get(name)
        if not expert.has_role("judge"):
            raise ConfigError(f"judge '{name}'", "does not have the judge role",
                              "pick judges from `warriorflow experts`")
    template = read_prompt(config, arena.judge_prompt, check_template, "arena.judge_prompt")
    rule = vote_rule(arena)
    labels = [p.label for p in pairs]
    outcomes: dict[str, list[C.PairOutcome | None]] = {}
    figures: dict[str, dict] = {}
    weights: dict[str, float] = {}
    ex = arena.execution
    use_execution = execution if execution is not None else (ex.enabled and ex.vote)
    evidence = None
    if use_execution or (ex.enabled and ex.in_prompt):
        progress(f"execution: {len(pairs)} pairs in the sandbox")
        records = execution_records(config, [ExecutionItem(str(n), p.instruction, p.response_a, p.response_b)
                                             for n, p in enumerate(pairs)])
        if ex.enabled and ex.in_prompt:
            evidence = [{role: execution_summary(r[role]) for role in ("attacker", "defender")}
                        if (r["attacker"].get("has_code") or r["defender"].get("has_code")) else {} for r in records]
        if use_execution:
            outcomes[C.EXECUTION] = [None if r["vote"] is None else C.PairOutcome(r["vote"]) for r in records]
            figures[C.EXECUTION] = C.metrics(outcomes[C.EXECUTION], labels)
            weights[C.EXECUTION] = ex.vote_weight
    make = backend_factory or (lambda expert: backend_for(expert, config))
    for name in names:
        progress(f"judge {name}: {len(pairs)} pairs x 2 orders")
        backend = make(config.registry.get(name))
        try:
            records = cast_votes(vote_requests_for(pairs, name, evidence), backend, template, arena, "calibration")
        finally:
            backend.close()
        outcomes[name], prior = judge_outcomes(records, pairs, rule)
        figures[name] = {**C.metrics(outcomes[name], labels), "prior": prior}
    if arena.votes.judge_weights == "calibrated" and store_weights:
        weights.update({j: w for j, w in store_weights.items() if j in names})
    panel = [C.panel_outcome({j: outcomes[j][i] for j in outcomes}, weights) for i in range(len(pairs))]
    return {"judges": figures, "panel": C.metrics(panel, labels),
            "rule": {"margin": rule.margin, "debias": rule.debias, "probabilities": rule.enabled},
            "weights": weights}


def save_calibration(store: RatingStore, result: dict, source: str) -> str:
    """Write the figures as ``judge_calibrations`` rows; the calibration id."""
    cid = hashlib.sha256(json.dumps([result, source], sort_keys=True, default=str).encode()).hexdigest()[:16]
    rows = []
    for judge, fig in [*result["judges"].items(), (C.PANEL, result["panel"])]:
        rows.append({"calibration_id": cid, "judge": judge, "pairs": fig["pairs"], "accuracy": fig["accuracy"],
                     "tie_rate": fig["tie_rate"], "flip_rate": fig["flip_rate"],
                     "first_position_share": fig["first_position_share"],
                     "metrics": json.dumps({**fig, "rule": result["rule"], "weights": result["weights"]}),
                     "pairs_source": source})
    store.upsert("judge_calibrations", rows, key=["calibration_id", "judge"])
    return cid


def latest_calibration(store: RatingStore) -> list[dict]:
    """The rows of the latest calibration (judges, then the panel), or []."""
    return store.query(
        "SELECT * FROM judge_calibrations WHERE calibration_id = (SELECT calibration_id FROM judge_calibrations "
        "ORDER BY created_at DESC LIMIT 1) ORDER BY judge = 'panel', judge")
