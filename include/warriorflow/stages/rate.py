"""Rate: Elo and Bradley-Terry (bootstrap CIs) from the whole vote log, in the recorded battle order, and
(``rating.style_control``) style-controlled Bradley-Terry from the same log plus the style counts of the two
responses of each battle (``method.style_control``).

The ratings are a cache of the vote log, versioned by its hash (``rating_history``); re-rating an
unchanged log rewrites the same rows. Methods: ``elo``, ``bt``, ``bt_style`` (one row per expert) and
``bt_style_coef`` (one row per style feature, its ``expert`` column naming the feature: the coefficient in
Elo points per std of the feature, with its CI). A battle whose responses are not both stored (a
hand-made store, a FastChat import) is left out of the style fit only.

Bounded memory: the log is built in DuckDB (:func:`~warriorflow.store.vote_log.open_log`); Bradley-Terry fits
the (attacker, defender, result) cells counted in SQL, Elo folds the results streamed in battle order as NumPy
arrays, the version hash is computed over the battles' lines in that stream. Each response's style counts are
computed once (``response_style``, by the response ingest; here only for responses that have none).
"""

from __future__ import annotations

import numpy as np

from warriorflow.config import Config
from warriorflow.method.rating import bt_bootstrap
from warriorflow.method.style_control import (
    FEATURES,
    FEATURES_VERSION,
    StyleControlled,
    bt_style_arrays,
    style_features,
)
from warriorflow.stages.base import Outcome, stage
from warriorflow.store.rating_store import RatingStore, load_query
from warriorflow.store.vote_log import Log, log_fingerprint, open_log

TEXT_PAGE = 1000  # response texts read per record batch: only their counts are kept


def cache_style_counts(store: RatingStore) -> int:
    """Compute and store the style counts of every fought response that has none of the current algorithm (the
    response ingest computes them as responses arrive; this fills in a store from before that, a hand-made one or
    a new algorithm version); return how many. Texts are streamed a batch at a time, only their counts kept."""
    import pyarrow as pa

    ids_, counts = [], []
    reader = store.stream(load_query("unstyled_response_texts"), [FEATURES_VERSION], TEXT_PAGE)
    for batch in reader:
        ids_.append(batch.column(0))
        counts.append(np.array([tuple(style_features(t)) for t in batch.column(1).to_pylist()],
                               dtype=np.int64).reshape(-1, len(FEATURES)))
    if not ids_:
        return 0
    table = np.concatenate(counts)
    rows = pa.table({"response_id": pa.concat_arrays([c.cast(pa.string()) for c in ids_]),
                     "algorithm": pa.array(np.full(len(table), FEATURES_VERSION, dtype=np.int32)),
                     **{f: pa.array(table[:, i].astype(np.int32)) for i, f in enumerate(FEATURES)}})
    store.upsert("response_style", rows, key=["response_id"], update=["algorithm", *FEATURES])
    return len(table)


def style_ratings(store: RatingStore, log: Log, *, rounds: int, seed: int, initial: float) -> StyleControlled:
    """Style-controlled Bradley-Terry on the log's battles whose two responses have style counts."""
    k = len(FEATURES)
    parts = list(log.batches(load_query("log_style_counts"), [FEATURES_VERSION, FEATURES_VERSION]))
    cols = {c: np.concatenate([p[c] for p in parts]) if parts else np.zeros(0)
            for c in ["a", "d", "s"] + [f"{side}_{f}" for side in "ad" for f in FEATURES]}
    counts = {side: np.stack([cols[f"{side}_{f}"] for f in FEATURES], axis=1).astype(np.float64).reshape(-1, k)
              for side in "ad"}
    return bt_style_arrays(cols["a"].astype(np.int64), cols["d"].astype(np.int64), cols["s"].astype(np.float64),
                           counts["a"], counts["d"], log.experts, log.n_battles - len(cols["a"]), rounds, seed,
                           initial=initial)


@stage("rate")
def rate_stage(config: Config, store: RatingStore, run_id: str) -> Outcome:
    r = config.settings.rating
    styled_now = cache_style_counts(store) if r.style_control else 0
    fingerprint = log_fingerprint(store, config.settings.arena)
    with open_log(store, config.settings.arena) as log:
        version = log.version()
        elo = log.elo(k=r.k, initial=r.initial)
        bt = bt_bootstrap(log.cells(), rounds=r.bootstrap_rounds, seed=r.seed, initial=r.initial) \
            if log.n_battles else {}
        n_battles = log.battles_per_expert()
        rows = [
            {"rating_version": version, "method": "elo", "expert": e, "rating": v, "lo": None, "hi": None,
             "n_battles": n_battles[e]} for e, v in elo.items()] + [
            {"rating_version": version, "method": "bt", "expert": e, "rating": v["rating"], "lo": v["lo"],
             "hi": v["hi"], "n_battles": n_battles[e]} for e, v in bt.items()]
        style_battles = 0
        if r.style_control and log.n_battles:
            styled = style_ratings(store, log, rounds=r.bootstrap_rounds, seed=r.seed, initial=r.initial)
            style_battles = styled.n_battles
            rows += [{"rating_version": version, "method": "bt_style", "expert": e, "rating": v["rating"],
                      "lo": v["lo"], "hi": v["hi"], "n_battles": styled.battles_per_expert[e]}
                     for e, v in styled.ratings.items()]
            rows += [{"rating_version": version, "method": "bt_style_coef", "expert": f, "rating": c["elo"],
                      "lo": c["lo"], "hi": c["hi"], "n_battles": styled.n_battles}
                     for f in FEATURES if (c := styled.coefficients[f])["elo"] is not None]
        counts = log.counts()
        with store.transaction():
            store.upsert("rating_history", rows, key=["rating_version", "method", "expert"])
            log.save(version, fingerprint)  # the gold step reads it back while nothing it is built from changes
    return Outcome({**{k: v for k, v in counts.items() if k != "invalid_effective_votes"}, "experts": len(elo),
                    "invalid_effective_votes": counts["invalid_effective_votes"],
                    "style_controlled_battles": style_battles, "style_counts_computed": styled_now},
                   [f"rating version {version}"], version)
