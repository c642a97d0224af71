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
from warriorflow.method.battle_jobs import PlannedBattle, VoteRequest, cast_votes, effective, vote_requests
from warriorflow.method.execution import summary_lines
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


def pair_battle(pair: LabeledPair, n: int, judge: str) -> PlannedBattle:
    """A pair as a battle judged by ``judge`` alone: response A is the attacker, B the defender."""
    bid = ids.record_id("calibration", n, pair.instruction, pair.response_a, pair.response_b)
    return PlannedBattle(bid, bid, pair.instruction, ATTACKER_NAME, DEFENDER_NAME, (judge,), n)


def vote_requests_for(arena, pairs: Sequence[LabeledPair], judge: str,
                      evidence: Sequence[Mapping[str, str]] | None = None) -> list[VoteRequest]:
    """``judge``'s vote requests on every pair, through the battle path (:func:`vote_requests`); ``evidence``:
    per pair, role -> execution summary line, shown in the prompt in shown order as in battles."""
    battles = [pair_battle(p, n, judge) for n, p in enumerate(pairs)]
    texts = {(b.instruction_id, side): text for b, p in zip(battles, pairs)
             for side, text in ((ATTACKER_NAME, p.response_a), (DEFENDER_NAME, p.response_b))}
    lines = {b.battle_id: evidence[n] for n, b in enumerate(battles)} if evidence else None
    return vote_requests(battles, arena, {}, texts, execution=lines).get(judge, [])


def judge_outcomes(arena, records: Sequence[dict], pairs: Sequence[LabeledPair], judge: str) -> tuple[
        list[C.PairOutcome], float]:
    """One judge's outcome per pair from its vote records (the battle path's effective vote), and its measured
    first-position prior."""
    verdicts = {r["vote_id"]: V.CastVote(r["verdict"], r["shown_order"],
                                         tuple(r["probs"]) if r.get("probs") is not None else None) for r in records}
    prior = V.first_position_prior(v.probs for v in verdicts.values() if v.probs is not None)
    probabilistic_rule = arena.votes.probabilities
    out = []
    for n, p in enumerate(pairs):
        bid = pair_battle(p, n, judge).battle_id
        cast = [verdicts[ids.vote_id(bid, judge, order)] for order in (V.ATTACKER_FIRST, V.DEFENDER_FIRST)]
        out.append(C.PairOutcome(effective(arena, bid, judge, verdicts, {judge: prior}),
                                 {c.shown_order: c.verdict for c in cast},
                                 probabilistic_rule and all(c.probs is not None for c in cast)))
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
            evidence = [summary_lines({role: r[role] for role in ("attacker", "defender")}) for r in records]
        if use_execution:
            outcomes[C.EXECUTION] = [None if r["vote"] is None else C.PairOutcome(r["vote"]) for r in records]
            figures[C.EXECUTION] = C.metrics(outcomes[C.EXECUTION], labels)
            weights[C.EXECUTION] = ex.vote_weight
    make = backend_factory or (lambda expert: backend_for(expert, config))
    for name in names:
        progress(f"judge {name}: {len(pairs)} pairs x 2 orders")
        backend = make(config.registry.get(name))
        try:
            records = cast_votes(vote_requests_for(arena, pairs, name, evidence), backend, template, arena,
                                 "calibration")
        finally:
            backend.close()
        outcomes[name], prior = judge_outcomes(arena, records, pairs, name)
        figures[name] = {**C.metrics(outcomes[name], labels), "prior": prior}
    if arena.votes.judge_weights == "calibrated" and store_weights:
        weights.update({j: w for j, w in store_weights.items() if j in names})
    panel = [C.panel_outcome({j: outcomes[j][i] for j in outcomes}, weights) for i in range(len(pairs))]
    return {"judges": figures, "panel": C.metrics(panel, labels),
            "rule": {"margin": arena.votes.margin, "debias": arena.votes.debias,
                     "probabilities": arena.votes.probabilities},
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
    return store.named("latest_calibration")
