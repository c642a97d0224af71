"""Rate: Elo and Bradley-Terry (bootstrap CIs) from the whole vote log, in the recorded battle order.

The ratings are a cache of the vote log, versioned by its hash (``rating_history``); re-rating an
unchanged log rewrites the same rows.
"""

from __future__ import annotations

from collections import Counter

from warriorflow.config import Config
from warriorflow.method.rating import bt_bootstrap, elo_fold
from warriorflow.stages.base import Outcome, stage
from warriorflow.store.rating_store import RatingStore
from warriorflow.store.vote_log import log_version, vote_log


@stage("rate")
def rate_stage(config: Config, store: RatingStore, run_id: str) -> Outcome:
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
    invalid = sum(v == "invalid" for b in log_ for v in b.votes.values())
    return Outcome({"battles": len(log_), "experts": len(elo), "invalid_effective_votes": invalid},
                   [f"rating version {version}"], version)
