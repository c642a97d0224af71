"""Select gold: each instruction's best response by final score (Elo expectation and vote share), ties
to the shorter response, from the ratings the rate step stored for the current vote log.

``selected_at`` says when an instruction's gold response became the one it is now: a re-selection that
keeps the same winner keeps the time, so the retrain gate counts only gold that is really new since a
snapshot.

Every response's final score (with its Elo expectation and local score) is stored too, in
``response_scores``: the snapshot's preference pairs and responses dataset are built from it.

The vote log is the one the rate step saved (``rating_logs``) when nothing it is built from changed since (its
input fingerprint is the same), else it is built again.

Bounded memory: the scores are summed over the battles streamed in log order as NumPy arrays
(:meth:`~warriorflow.store.vote_log.Log.score_sums`, the numbers of ``method.rating.response_scores``); the
choice (``method.rating.select_gold``: highest score, ties within ``GOLD_TIE_EPS`` to the shorter response,
then to the first expert name) and the writes are SQL over those arrays registered as an Arrow table.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

from warriorflow.config import Config
from warriorflow.errors import StoreError
from warriorflow.method.rating import GOLD_TIE_EPS
from warriorflow.stages.base import Outcome, now_utc, stage
from warriorflow.store.rating_store import RatingStore, Select
from warriorflow.store.vote_log import Log, log_fingerprint, open_log, open_saved_log, run_script

SCORE_COLUMNS = ("response_id", "final_score", "elo_expectation", "local_score", "n_battles", "alpha",
                 "rating_version")


@contextlib.contextmanager
def _the_log(store: RatingStore, config: Config) -> Iterator[Log]:
    """The vote log the rate step saved, when nothing it is built from changed since; else the log built again."""
    with open_saved_log(store, log_fingerprint(store, config.settings.arena)) as saved:
        if saved is not None:
            yield saved
            return
    with open_log(store, config.settings.arena) as log:
        yield log


@stage("gold")
def gold_stage(config: Config, store: RatingStore, run_id: str) -> Outcome:
    import pyarrow as pa

    alpha = config.settings.rating.alpha
    with _the_log(store, config) as log:
        version = log.version()
        elo = {r["expert"]: r["rating"] for r in store.query(
            "SELECT expert, rating FROM rating_history WHERE rating_version = ? AND method = 'elo'", [version])}
        if log.n_battles and not elo:
            raise StoreError(f"ratings of vote log version {version}", "have not been computed",
                             "run the rate step first (`warriorflow rate`, or the battle DAG's rate task)")
        if not log.n_battles:
            return Outcome({"instructions": 0, "gold": 0, "new_or_changed": 0}, [f"rating version {version}"])
        sums = log.score_sums(elo, alpha)
        store.register("_wf_scores_src", pa.table({
            "slot": pa.array(np.arange(len(sums.final), dtype=np.int64)), "final_score": pa.array(sums.final),
            "elo_expectation": pa.array(sums.elo_expectation), "local_score": pa.array(sums.local),
            "n_battles": pa.array(sums.battles.astype(np.int32))}))
        try:
            run_script(store, "gold_choice", {"eps": GOLD_TIE_EPS})
        finally:
            store.unregister("_wf_scores_src")
        lacking = store.query("SELECT instruction_id, expert FROM _wf_gold WHERE response_id IS NULL LIMIT 1")
        if lacking:
            raise StoreError(f"instruction {lacking[0]['instruction_id']}",
                             f"its best response (expert {lacking[0]['expert']}) is not stored",
                             "ingest the battle's responses (the ingest_responses step) and select gold again")
        now = now_utc()
        counts = store.query("SELECT count(DISTINCT s.instruction_id) AS instructions, "
                             "count(g.instruction_id) AS gold, count(g.instruction_id) "
                             "FILTER (WHERE o.response_id IS DISTINCT FROM g.response_id) AS changed "
                             "FROM _wf_scored s LEFT JOIN _wf_gold g ON g.slot = s.slot "
                             "LEFT JOIN gold_selections o ON o.instruction_id = g.instruction_id")[0]
        with store.transaction():
            store.upsert("gold_selections", Select(
                "SELECT g.instruction_id, g.response_id, g.expert, g.final_score, $version AS rating_version, "
                "CASE WHEN o.response_id = g.response_id THEN o.selected_at ELSE $now END AS selected_at "
                "FROM _wf_gold g LEFT JOIN gold_selections o USING (instruction_id)",
                {"version": version, "now": now}),
                key=["instruction_id"],
                update=["response_id", "expert", "final_score", "rating_version", "selected_at"])
            store.upsert("response_scores", Select(
                "SELECT instruction_id, expert, response_id, final_score, elo_expectation, local_score, n_battles, "
                "$alpha AS alpha, $version AS rating_version FROM _wf_scored WHERE response_id IS NOT NULL",
                {"alpha": float(alpha), "version": version}),
                key=["instruction_id", "expert"], update=list(SCORE_COLUMNS))
        for table in ("_wf_scored", "_wf_gold"):
            store.con.execute(f"DROP TABLE IF EXISTS temp.{table}")
    return Outcome({"instructions": int(counts["instructions"]), "gold": int(counts["gold"]),
                    "new_or_changed": int(counts["changed"])}, [f"rating version {version}"])

