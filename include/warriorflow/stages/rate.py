"""Rate: Elo and Bradley-Terry (bootstrap CIs) from the whole vote log, in the recorded battle order, and
(``rating.style_control``) style-controlled Bradley-Terry from the same log plus the two response texts
of each battle (``method.style_control``).

The ratings are a cache of the vote log, versioned by its hash (``rating_history``); re-rating an
unchanged log rewrites the same rows. Methods: ``elo``, ``bt``, ``bt_style`` (one row per expert) and
``bt_style_coef`` (one row per style feature, its ``expert`` column naming the feature: the coefficient in
Elo points per std of the feature, with its CI). A battle whose responses are not both stored (a
hand-made store, a FastChat import) is left out of the style fit only.
"""

from __future__ import annotations

from collections import Counter

from warriorflow.config import Config
from warriorflow.method.rating import bt_bootstrap, elo_fold
from warriorflow.method.style_control import FEATURES, StyleFeatures, bt_style, style_features
from warriorflow.stages.base import Outcome, stage
from warriorflow.store.rating_store import RatingStore
from warriorflow.store.vote_log import log_version, vote_counts, vote_log

TEXT_PAGE = 1000  # response texts read per query: features are computed a page at a time


def battle_style_features(store: RatingStore) -> dict[str, tuple[StyleFeatures, StyleFeatures]]:
    """battle_id -> (attacker's, defender's) style features, for the fought battles whose two responses
    are stored. Texts are read a page at a time and only their features are kept."""
    per_response: dict[str, StyleFeatures] = {}
    after = ""
    while True:
        page = store.named("fought_response_texts", [after, TEXT_PAGE])
        for row in page:
            per_response[row["response_id"]] = style_features(row["text"])
        if len(page) < TEXT_PAGE:
            break
        after = page[-1]["response_id"]
    return {row["battle_id"]: (per_response[row["attacker_response_id"]], per_response[row["defender_response_id"]])
            for row in store.named("fought_battle_responses")
            if row["attacker_response_id"] in per_response and row["defender_response_id"] in per_response}


@stage("rate")
def rate_stage(config: Config, store: RatingStore, run_id: str) -> Outcome:
    r = config.settings.rating
    log_ = vote_log(store, config.settings.arena)
    version = log_version(log_)
    elo = elo_fold(log_, k=r.k, initial=r.initial)
    bt = bt_bootstrap(log_, rounds=r.bootstrap_rounds, seed=r.seed, initial=r.initial) if log_ else {}
    n_battles = Counter(x for b in log_ for x in (b.attacker, b.defender))
    rows = [
        {"rating_version": version, "method": "elo", "expert": e, "rating": v, "lo": None, "hi": None,
         "n_battles": n_battles[e]} for e, v in elo.items()] + [
        {"rating_version": version, "method": "bt", "expert": e, "rating": v["rating"], "lo": v["lo"], "hi": v["hi"],
         "n_battles": n_battles[e]} for e, v in bt.items()]
    style_battles = 0
    if r.style_control and log_:
        styled = bt_style(log_, battle_style_features(store), rounds=r.bootstrap_rounds, seed=r.seed,
                          initial=r.initial)
        style_battles = styled.n_battles
        rows += [{"rating_version": version, "method": "bt_style", "expert": e, "rating": v["rating"], "lo": v["lo"],
                  "hi": v["hi"], "n_battles": styled.battles_per_expert[e]} for e, v in styled.ratings.items()]
        rows += [{"rating_version": version, "method": "bt_style_coef", "expert": f, "rating": c["elo"], "lo": c["lo"],
                  "hi": c["hi"], "n_battles": styled.n_battles}
                 for f in FEATURES if (c := styled.coefficients[f])["elo"] is not None]
    store.upsert("rating_history", rows, key=["rating_version", "method", "expert"])
    invalid = sum(v == "invalid" for b in log_ for v in b.votes.values())
    return Outcome({**vote_counts(store, log_), "experts": len(elo), "invalid_effective_votes": invalid,
                    "style_controlled_battles": style_battles},
                   [f"rating version {version}"], version)
