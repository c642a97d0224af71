"""The arena over the stores: plan -> battle batches -> ingest -> rate and select gold.

* ``plan_stage`` plans the missing battles of selected instructions (the fairness rules are in
  ``stages.plan``), records them as ``planned`` and writes self-contained batch files to the object
  store: ``runs/RUN/battle/in/batch-NNNN.json``. Battles planned earlier but never completed are
  planned again, with their original order.
* A batch runs anywhere, as ``warriorflow battle-batch --in URI --out URI`` (a pod, or a local process).
  It writes ``runs/RUN/battle/out/batch-NNNN.jsonl`` and never opens the rating store.
* ``ingest_battles`` merges the result files: responses, votes and completed battles. It validates the
  records first and quarantines a batch that fails.
* ``rate_stage`` rebuilds the ratings from the whole vote log, in the recorded battle order: Elo,
  Bradley-Terry with bootstrap CIs, final scores and gold. The ratings are a cache of the vote log,
  versioned by its hash.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter, defaultdict
from datetime import datetime

from warriorflow.config import Config
from warriorflow.pipeline import Progress, StageReport, _read_jsonl, _record, now_utc
from warriorflow.stages.plan import Existing, PlannedBattle, eligible_judges, plan_battles
from warriorflow.stages.votes import effective_vote
from warriorflow.store.object_store import ObjectStore
from warriorflow.store.rating_store import RatingStore

log = logging.getLogger(__name__)


def batch_key(run_id: str, n: int, out: bool = False) -> str:
    return f"runs/{run_id}/battle/{'out' if out else 'in'}/batch-{n:04d}.{'jsonl' if out else 'json'}"


def register_experts(config: Config, store: RatingStore) -> None:
    """Record the registry; first_seen_at keeps when each expert joined (the planner's newcomer rule)."""
    store.upsert("experts", [
        {"name": e.name, "backend": e.backend.value, "model_source": e.model.describe(), "weights_id": e.weights,
         "roles": [r.value for r in e.roles], "config": e.model_dump(mode="json"), "updated_at": now_utc()}
        for e in config.registry.experts],
        key=["name"], update=["backend", "model_source", "weights_id", "roles", "config", "updated_at"])


def _existing(store: RatingStore) -> tuple[dict[str, Existing], tuple[Counter, Counter], int]:
    rows = store.query("SELECT instruction_id, attacker, defender, planned_at, battle_order FROM battles")
    by_ins: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_ins[r["instruction_id"]].append(r)
    existing = {iid: Existing(frozenset(r["defender"] for r in rs), rs[0]["attacker"],
                              min(r["planned_at"] for r in rs)) for iid, rs in by_ins.items()}
    attacks, defences = Counter(r["attacker"] for r in rows), Counter(r["defender"] for r in rows)
    next_order = max((r["battle_order"] for r in rows if r["battle_order"] is not None), default=-1) + 1
    return existing, (attacks, defences), next_order


def plan_stage(config: Config, store: RatingStore, objects: ObjectStore, run_id: str,
               since: datetime | None = None, until: datetime | None = None) -> tuple[StageReport, list[str]]:
    """Plan the missing battles of the instructions selected in [since, until); write batch files."""
    started, report = now_utc(), StageReport("plan", run_id)
    register_experts(config, store)
    where, params = ["i.status = 'selected'"], []
    if since is not None:
        where.append("s.selected_at >= ?")
        params.append(since)
    if until is not None:
        where.append("s.selected_at < ?")
        params.append(until)
    instructions = store.query(
        "SELECT i.instruction_id, i.text, i.expert FROM instructions i JOIN instruction_selections s "
        f"USING (instruction_id) WHERE {' AND '.join(where)} ORDER BY i.instruction_id", params)
    existing, counts, next_order = _existing(store)
    since_rows = store.query("SELECT name, first_seen_at FROM experts")
    plan = plan_battles(instructions, config.registry,
                        defenders_per_instruction=config.settings.arena.defenders_per_instruction,
                        existing=existing, existing_counts=counts,
                        expert_since={r["name"]: r["first_seen_at"] for r in since_rows}, next_order=next_order)
    # battles planned before but never completed (a failed batch) go into this run again
    stale = store.query(
        "SELECT b.battle_id, b.instruction_id, i.text, b.attacker, b.defender, b.battle_order FROM battles b "
        "JOIN instructions i USING (instruction_id) WHERE b.status = 'planned' ORDER BY b.battle_order")
    retry = []
    for r in stale:
        if r["attacker"] not in config.registry.names() or r["defender"] not in config.registry.names():
            continue
        judges = eligible_judges(config.registry.get(r["attacker"]), config.registry.get(r["defender"]),
                                 config.registry)
        retry.append(PlannedBattle(r["battle_id"], r["instruction_id"], r["text"], r["attacker"], r["defender"],
                                   judges, r["battle_order"]))
    battles = sorted(retry + plan.battles, key=lambda b: b.battle_order)
    store.upsert("battles", [{"battle_id": b.battle_id, "instruction_id": b.instruction_id, "attacker": b.attacker,
                              "defender": b.defender, "battle_order": b.battle_order, "status": "planned",
                              "judges": list(b.judges), "run_id": run_id} for b in plan.battles],
                 key=["battle_id"])
    size = config.settings.arena.battles_per_batch
    keys = []
    for n, start in enumerate(range(0, len(battles), size)):
        key = batch_key(run_id, n)
        payload = {"run_id": run_id, "arena": config.settings.arena.model_dump(mode="json"),
                   "battles": [b.to_dict() for b in battles[start:start + size]]}
        if not objects.exists(key):
            objects.put_bytes(key, json.dumps(payload, indent=1, sort_keys=True).encode())
        keys.append(key)
    report.counts = {"instructions": len(instructions), "planned": len(plan.battles), "retried": len(retry),
                     "batches": len(keys), **{f"skipped_{k}": len(v) for k, v in sorted(plan.skipped.items())}}
    report.notes.append("balance " + json.dumps(plan.balance(), sort_keys=True))
    return _record(store, report, started), keys


def run_batches(config: Config, objects: ObjectStore, keys: list[str], progress: Progress = log.info) -> list[str]:
    """Run battle batches in this process (the embedded default; production runs each in a pod)."""
    from warriorflow.stages.battle import run_battle_batch_uri

    outs = []
    for key in keys:
        out = key.replace("/battle/in/", "/battle/out/").removesuffix(".json") + ".jsonl"
        progress(f"battle batch {key} ...")
        run_battle_batch_uri(objects.uri(key), objects.uri(out), config, progress=progress)
        outs.append(out)
    return outs


REQUIRED = {
    "response": ("response_id", "instruction_id", "expert", "text", "sampling", "run_id"),
    "vote": ("vote_id", "battle_id", "judge", "shown_order", "raw_verdict", "verdict", "run_id"),
    "battle": ("battle_id", "attacker_response_id", "defender_response_id"),
}


def check_battle_records(records: list[dict]) -> list[str]:
    """Structural problems of a battle result file (empty when it is sound)."""
    problems = []
    for n, r in enumerate(records, start=1):
        kind = r.get("type")
        if kind not in REQUIRED:
            problems.append(f"record {n}: unknown type {kind!r}")
            continue
        missing = [k for k in REQUIRED[kind] if r.get(k) is None]
        if missing:
            problems.append(f"record {n} ({kind}): missing {missing}")
        if kind == "vote" and r.get("verdict") not in ("attacker", "defender", "tie", "invalid"):
            problems.append(f"record {n} (vote): verdict {r.get('verdict')!r}")
    vote_ids = [r["vote_id"] for r in records if r.get("type") == "vote" and r.get("vote_id")]
    if len(vote_ids) != len(set(vote_ids)):
        problems.append("duplicate vote_id")
    return problems


def ingest_battles(config: Config, store: RatingStore, objects: ObjectStore, run_id: str) -> StageReport:
    """Merge battle result files (responses, votes, completed battles); quarantine unsound ones."""
    from warriorflow.store.ingest import quarantine, record_quarantine

    started, report = now_utc(), StageReport("ingest_battles", run_id)
    c: Counter = Counter()
    done = {r["uri"] for r in store.query("SELECT uri FROM ingested_files")}
    for key in sorted(objects.list(f"runs/{run_id}/battle/out/")):
        uri = objects.uri(key)
        if not key.endswith(".jsonl") or uri in done:
            continue
        data = objects.get_bytes(key)
        try:
            records = _read_jsonl(data)
            problems = check_battle_records(records)
        except (ValueError, UnicodeDecodeError) as exc:
            records, problems = [], [f"not JSON Lines: {exc}"]
        if problems:
            reason = "; ".join(problems[:5])
            target = quarantine(objects, key, "battle", reason, {"problems": problems})
            record_quarantine(store, objects, key, target, "battle", reason)
            report.notes.append(f"quarantined {key}: {reason}")
            c["quarantined_batches"] += 1
            continue
        by_type: dict[str, list[dict]] = defaultdict(list)
        for r in records:
            by_type[r["type"]].append(r)
        cols = ("response_id", "instruction_id", "expert", "text", "sampling", "seed", "finish_reason",
                "prompt_tokens", "completion_tokens", "run_id")
        store.upsert("responses", [{k: r.get(k) for k in cols} for r in by_type["response"]], key=["response_id"])
        vcols = ("vote_id", "battle_id", "judge", "shown_order", "raw_verdict", "verdict", "raw_text", "run_id")
        store.upsert("votes", [{k: r.get(k) for k in vcols} for r in by_type["vote"]], key=["vote_id"])
        store.update("battles", "battle_id", [
            {"battle_id": b["battle_id"], "attacker_response_id": b["attacker_response_id"],
             "defender_response_id": b["defender_response_id"], "status": "done",
             "judge_calls": b.get("judge_calls"), "judge_calls_saved": b.get("judge_calls_saved"),
             "completed_at": now_utc()} for b in by_type["battle"]])
        store.upsert("ingested_files", [{"uri": uri, "sha256": hashlib.sha256(data).hexdigest(), "kind": "battles",
                                         "n_rows": len(records)}], key=["uri"])
        c.update({"responses": len(by_type["response"]), "votes": len(by_type["vote"]),
                  "battles": len(by_type["battle"])})
        c["invalid_votes"] += sum(v["verdict"] == "invalid" for v in by_type["vote"])
    report.counts = {k: v for k, v in c.items() if v}
    return _record(store, report, started)


def vote_log(store: RatingStore) -> list:
    """The completed battles in recorded order, each with one effective vote per judge."""
    from warriorflow.stages.rating import BattleVotes

    battles = store.query("SELECT battle_id, instruction_id, attacker, defender FROM battles "
                          "WHERE status = 'done' ORDER BY battle_order, battle_id")
    per: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for v in store.query("SELECT battle_id, judge, verdict FROM votes ORDER BY battle_id, judge, shown_order"):
        per[v["battle_id"]][v["judge"]].append(v["verdict"])
    return [BattleVotes(b["battle_id"], b["instruction_id"], b["attacker"], b["defender"],
                        {j: effective_vote(vs) for j, vs in sorted(per[b["battle_id"]].items())}) for b in battles]


def log_version(log_: list) -> str:
    blob = json.dumps([[b.battle_id, b.attacker, b.defender, dict(b.votes)] for b in log_], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def rate_stage(config: Config, store: RatingStore, run_id: str) -> StageReport:
    """Recompute Elo, BT (bootstrap CI), final scores and gold from the whole vote log."""
    from warriorflow.stages.rating import bt_bootstrap, elo_fold, final_scores, select_gold

    started, report = now_utc(), StageReport("rate", run_id)
    r = config.settings.rating
    log_ = vote_log(store)
    version = log_version(log_)
    elo = elo_fold(log_, k=r.k, initial=r.initial)
    bt = bt_bootstrap(log_, rounds=r.bootstrap_rounds, seed=r.seed) if log_ else {}
    n_battles = Counter(x for b in log_ for x in (b.attacker, b.defender))
    store.upsert("rating_history", [
        {"rating_version": version, "method": "elo", "expert": e, "rating": v, "lo": None, "hi": None,
         "n_battles": n_battles[e]} for e, v in elo.items()] + [
        {"rating_version": version, "method": "bt", "expert": e, "rating": v["rating"], "lo": v["lo"], "hi": v["hi"],
         "n_battles": n_battles[e]} for e, v in bt.items()], key=["rating_version", "method", "expert"])
    final = final_scores(log_, elo, alpha=r.alpha)
    resp = store.query("SELECT response_id, instruction_id, expert, length(text) AS n FROM responses "
                       "WHERE instruction_id IN (SELECT DISTINCT instruction_id FROM battles WHERE status = 'done')")
    lengths = {(x["instruction_id"], x["expert"]): x["n"] for x in resp}
    response_of = {(x["instruction_id"], x["expert"]): x["response_id"] for x in resp}
    gold = select_gold(final, lengths)
    # selected_at says when an instruction's gold response became the one it is now: a re-rating that keeps the
    # same winner keeps the time, so the retrain gate counts only gold that is really new since a snapshot.
    before = {x["instruction_id"]: (x["response_id"], x["selected_at"])
              for x in store.query("SELECT instruction_id, response_id, selected_at FROM gold_selections")}
    now = now_utc()

    def since(iid: str, response_id: str):
        old = before.get(iid)
        return old[1] if old and old[0] == response_id else now

    store.upsert("gold_selections", [
        {"instruction_id": iid, "response_id": response_of[(iid, e)], "expert": e, "final_score": final[iid][e],
         "rating_version": version, "selected_at": since(iid, response_of[(iid, e)])} for iid, e in gold.items()],
        key=["instruction_id"], update=["response_id", "expert", "final_score", "rating_version", "selected_at"])
    invalid = sum(v == "invalid" for b in log_ for v in b.votes.values())
    report.counts = {"battles": len(log_), "experts": len(elo), "gold": len(gold), "invalid_effective_votes": invalid}
    report.notes.append(f"rating version {version}")
    return _record(store, report, started)


def ingest_and_rate(config: Config, run_id: str) -> list[StageReport]:
    """The battle cycle's writer steps: merge the run's result files, then rate and select gold."""
    from warriorflow.pipeline import open_objects

    with RatingStore(config.duckdb_path) as store:
        return [ingest_battles(config, store, open_objects(config), run_id), rate_stage(config, store, run_id)]


def run_arena(config: Config, run_id: str, progress: Progress = log.info) -> list[StageReport]:
    """Plan, run the batches locally, ingest, rate: one battle cycle (what `make run` does)."""
    from warriorflow.pipeline import open_objects

    objects = open_objects(config)
    with RatingStore(config.duckdb_path) as store:
        plan_report, keys = plan_stage(config, store, objects, run_id)
    run_batches(config, objects, keys, progress)  # workers: the store is closed meanwhile
    return [plan_report, *ingest_and_rate(config, run_id)]


def export_battles(store: RatingStore) -> list[dict]:
    """The vote log in the interchange format of `warriorflow rate --battles`."""
    return [{"battle_id": b.battle_id, "instruction_id": b.instruction_id, "attacker": b.attacker,
             "defender": b.defender, "votes": dict(b.votes)} for b in vote_log(store)]

