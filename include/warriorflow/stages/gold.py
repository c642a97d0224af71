"""Select gold: each instruction's best response by final score (Elo expectation and vote share), ties
to the shorter response, from the ratings the rate step stored for the current vote log.

``selected_at`` says when an instruction's gold response became the one it is now: a re-selection that
keeps the same winner keeps the time, so the retrain gate counts only gold that is really new since a
snapshot.

Every response's final score (with its Elo expectation and local score) is stored too, in
``response_scores``: the snapshot's preference pairs and responses dataset are built from it.
"""

from __future__ import annotations

from warriorflow.config import Config
from warriorflow.errors import StoreError
from warriorflow.method.rating import response_scores, select_gold
from warriorflow.stages.base import Outcome, now_utc, stage
from warriorflow.store.rating_store import RatingStore
from warriorflow.store.vote_log import log_version, vote_log


@stage("gold")
def gold_stage(config: Config, store: RatingStore, run_id: str) -> Outcome:
    log_ = vote_log(store, config.settings.arena)
    version = log_version(log_)
    elo = {r["expert"]: r["rating"] for r in store.query(
        "SELECT expert, rating FROM rating_history WHERE rating_version = ? AND method = 'elo'", [version])}
    if log_ and not elo:
        raise StoreError(f"ratings of vote log version {version}", "have not been computed",
                         "run the rate step first (`warriorflow rate`, or the battle DAG's rate task)")
    alpha = config.settings.rating.alpha
    scores = response_scores(log_, elo, alpha=alpha)
    final = {iid: {e: s.final for e, s in per.items()} for iid, per in scores.items()}
    resp = store.query("SELECT response_id, instruction_id, expert, length(text) AS n FROM responses "
                       "WHERE instruction_id IN (SELECT DISTINCT instruction_id FROM battles WHERE status = 'done')")
    lengths = {(x["instruction_id"], x["expert"]): x["n"] for x in resp}
    response_of = {(x["instruction_id"], x["expert"]): x["response_id"] for x in resp}
    gold = select_gold(final, lengths)
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
    store.upsert("response_scores", [
        {"instruction_id": iid, "expert": e, "response_id": response_of[(iid, e)], "final_score": s.final,
         "elo_expectation": s.elo_expectation, "local_score": s.local, "n_battles": s.battles, "alpha": alpha,
         "rating_version": version}
        for iid, per in scores.items() for e, s in per.items() if (iid, e) in response_of],
        key=["instruction_id", "expert"],
        update=["response_id", "final_score", "elo_expectation", "local_score", "n_battles", "alpha", "rating_version"])
    changed = sum(1 for iid, e in gold.items() if before.get(iid, (None,))[0] != response_of[(iid, e)])
    return Outcome({"instructions": len(final), "gold": len(gold), "new_or_changed": changed},
                   [f"rating version {version}"])
