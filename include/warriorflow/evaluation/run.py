"""Evaluate a model end to end (``warriorflow evaluate``) and decide promotion.

``evaluate_model`` runs the evaluation's jobs in this process, the same steps the retrain DAG runs as jobs
(:mod:`warriorflow.evaluation.jobs`): plan, generate, check in the sandbox, ingest. ``model_ref`` names what
is evaluated: ``expert:<name>`` (a registry expert through its backend), ``base:<model>`` (the training
base model), ``hf:<directory>``, or a training run id (its published model, downloaded and checked).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from warriorflow.config import Config
from warriorflow.errors import ConfigError
from warriorflow.evaluation import jobs, records
from warriorflow.evaluation.compare import Decision, decide
from warriorflow.evaluation.harness import HARNESS_VERSION
from warriorflow.inference.base import Backend
from warriorflow.method.progress import Progress, quiet
from warriorflow.sandbox import Sandbox
from warriorflow.store.rating_store import RatingStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluationReport:
    model_ref: str
    eval_id: str
    scores: list[jobs.IngestedScore]
    generation_s: float
    scoring_s: float

    def pass_at_1(self) -> dict[str, float]:
        return {s.name: s.pass_at_1 for s in self.scores}


def evaluate_model(config: Config, model_ref: str, *, names: list[str] | None = None, limit: int | None = None,
                   all_problems: bool = False, backend: Backend | None = None, sandbox: Sandbox | None = None,
                   progress: Progress = quiet) -> EvaluationReport:
    """Plan, generate, check and ingest the evaluation of ``model_ref`` here; record its eval_results rows."""
    from warriorflow.store.objects import open_objects

    config.home.mkdir(parents=True, exist_ok=True)
    req, scores, gen_s, check_s = jobs.evaluate_in_process(
        config, config.duckdb_path, open_objects(config), model_ref, backend=backend, sandbox=sandbox,
        progress=progress, names=names, limit=limit, all_problems=all_problems)
    for s in scores:
        log.info("%s %s: pass@1 %.3f (%d problems) %s", model_ref, s.name, s.pass_at_1, s.n_problems, s.reasons)
    return EvaluationReport(model_ref, req.eval_id, scores, gen_s, check_s)


def compare_and_decide(config: Config, candidate: str, previous: str | None = None, *,
                       publish_alias: bool = True) -> Decision:
    """Compare ``candidate``'s recorded per-problem results with ``previous`` (default: the champion, else the
    baseline), decide by ``evaluation.promotion`` (a paired significance test: evaluation/compare.py) and record
    the decision. A promoted training run that is now the champion gets the object store's champion alias
    (``models/champion/manifest.json``, written after its model's manifest is checked); expert:/hf: models
    are recorded but get no alias."""
    import dataclasses

    rule = config.settings.evaluation.promotion
    with RatingStore(config.duckdb_path) as store:
        cand = records.latest_problem_scores(store, candidate)
        if not cand:
            raise ConfigError(f"model '{candidate}'", "has no evaluation results", "run `warriorflow evaluate` first")
        if previous is None:
            champ = records.champion(store)
            previous = champ if champ and champ != candidate else jobs.baseline_ref(config)
        prev = records.latest_problem_scores(store, previous) if previous and previous != candidate else {}
        if previous and previous != candidate and not prev:
            log.warning("previous model %s has no evaluation results; evaluate it to compare", previous)
        decision = decide(candidate, cand, previous if prev else None, prev or None, rule)
        did = records.write_decision(store, decision, rule.model_dump(), HARNESS_VERSION)
        decision = dataclasses.replace(decision, decision_id=did)
        run = records.training_run(store, candidate) if decision.promoted else None
        is_champion = decision.promoted and records.champion(store) == candidate
    if publish_alias and run is not None and is_champion:
        from warriorflow.store.champion import alias_key, publish_champion
        from warriorflow.store.objects import open_objects

        objects = open_objects(config)
        publish_champion(objects, candidate, {"decision_id": did, "p_value": decision.p_value})
        decision = dataclasses.replace(decision, champion_alias=objects.uri(alias_key()))
    return decision
