"""A deterministic rating store for the report tests: every table the report reads, with known contents.

``build_store(config)`` writes it through the store's own upserts and the real rate stage (two rating
versions: after the first half of the battles, then after all), and returns ``Truth``: what was written,
so tests can compute the expected numbers on their own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

EXPERTS = ("alpha", "bravo", "charlie", "delta")
BENCHMARKS = ("humaneval", "mbppplus", "cruxeval")
CATEGORY_PICKS = ("code generation", "code generation", "debugging", "reasoning", "transpile", "analysis",
                  "code generation", "optimisation", "debugging", "theory", None, None)
DROPS = {("mine", "too_short"): 2, ("dedup", "near_duplicate"): 3, ("score", "low_difficulty"): 4,
         ("score", "no_valid_scores"): 1, ("decontaminate", "contaminated"): 2}
QUARANTINED = {"mine": 1, "battle": 2}
STRENGTH = {"alpha": 0.8, "bravo": 0.6, "charlie": 0.4, "delta": 0.2}


@dataclass
class Truth:
    medians: dict[str, float | None] = field(default_factory=dict)  # instruction -> median (None: no valid score)
    judge_scores: list[int | None] = field(default_factory=list)  # every difficulty score (None: invalid)
    tags: dict[str, str | None] = field(default_factory=dict)  # instruction -> category (None: invalid)
    overlaps: dict[str, list[float]] = field(default_factory=dict)
    battles: list[dict] = field(default_factory=list)  # {battle_id, attacker, defender, done}
    votes: list[dict] = field(default_factory=list)  # {battle_id, judge, shown_order, raw_verdict, verdict}
    evals: list[dict] = field(default_factory=list)


def _raw(verdict: str, shown: str) -> str:
    if verdict in ("tie", "invalid"):
        return verdict
    first = "attacker" if shown == "attacker_first" else "defender"
    return "A" if verdict == first else "B"


def build_store(config) -> Truth:
    from warriorflow.stages.cycles import rate_and_select_gold
    from warriorflow.store.rating_store import RatingStore

    rng = random.Random(7)
    t = Truth()
    with RatingStore(config.duckdb_path) as store:
        store.upsert("experts", [{"name": e, "backend": "llamacpp", "model_source": f"gguf:/{e}.gguf",
                                  "weights_id": e, "roles": ["mine", "answer", "judge"], "config": {}}
                                 for e in EXPERTS], key=["name"])
        # instructions: 30 with judge scores (2 judges each), in all statuses
        ins_rows, score_rows = [], []
        for n in range(30):
            iid = f"ins{n:02d}"
            miner = EXPERTS[n % 4]
            judges = [e for e in EXPERTS if e != miner][:2]
            scores = [rng.randint(1, 10) if rng.random() > 0.1 else None for _ in judges]
            valid = sorted(s for s in scores if s is not None)
            median = None if not valid else (valid[0] + valid[-1]) / 2  # two judges: the mean is the median
            t.medians[iid] = median
            t.judge_scores += scores
            status = "dropped" if median is None or median < 6 else ("selected" if n % 3 else "clean")
            ins_rows.append({"instruction_id": iid, "text": f"Write function number {n}", "expert": miner,
                             "mined_at": "2026-11-20 00:00:00", "run_id": "m1", "status": status,
                             "difficulty": median})
            score_rows += [{"instruction_id": iid, "judge": j, "score": s, "valid": s is not None,
                            "raw_text": str(s) if s is not None else "hmm", "run_id": "m1"}
                           for j, s in zip(judges, scores)]
        ins_rows.append({"instruction_id": "unscored", "text": "Not judged yet", "expert": "alpha",
                         "mined_at": "2026-11-20 00:00:00", "run_id": "m1", "status": "unique", "difficulty": None})
        store.upsert("instructions", ins_rows, key=["instruction_id"])
        store.upsert("difficulty_scores", score_rows, key=["instruction_id", "judge"])

        drops = []
        for (stage, reason), k in DROPS.items():
            drops += [{"record_id": f"{stage}-{reason}-{i}", "stage": stage, "reason": reason, "expert": "alpha",
                       "instruction_id": f"d-{stage}-{i}", "raw_text": "x", "run_id": "m1"} for i in range(k)]
        store.upsert("dropped_records", drops, key=["record_id"])
        store.upsert("quarantine", [{"batch_uri": f"s3://b/{stage}/{i}", "stage": stage, "reason": "bad"}
                                    for stage, k in QUARANTINED.items() for i in range(k)], key=["batch_uri"])

        cont = []
        for n in range(20):
            for b in BENCHMARKS:
                ov = 1.0 if (n, b) in ((3, "humaneval"), (11, "mbppplus")) else round(rng.random() * 0.3, 4)
                t.overlaps.setdefault(b, []).append(ov)
                cont.append({"instruction_id": f"ins{n:02d}", "benchmark": b, "task_id": f"{b}/{n}", "ngram": 13,
                             "shared_ngrams": 9 if ov == 1.0 else 0, "overlap": ov, "run_id": "m1"})
        store.upsert("contamination", cont, key=["instruction_id", "benchmark"])

        tag_rows = []
        for n, cat in enumerate(CATEGORY_PICKS):
            iid = f"ins{n:02d}"
            t.tags[iid] = cat
            tag_rows.append({"instruction_id": iid, "category": cat, "valid": cat is not None, "judge": "bravo",
                             "raw_text": cat or "not sure", "categories": list(config.settings.tagging.categories),
                             "prompt_sha256": "0" * 64, "run_id": "m1"})
        store.upsert("task_tags", tag_rows, key=["instruction_id"])

        # battles: 24, each pair 4 times (2 each way), on their own instructions; the other two experts judge
        pairs = [(a, d) for a in EXPERTS for d in EXPERTS if a != d]
        battles, responses, votes = [], [], []
        for k in range(24):
            a, d = pairs[k % len(pairs)]
            bid, iid = f"b{k:02d}", f"bi{k:02d}"
            battles.append({"battle_id": bid, "instruction_id": iid, "attacker": a, "defender": d,
                            "attacker_response_id": f"r-{bid}-a", "defender_response_id": f"r-{bid}-d",
                            "battle_order": k, "status": "planned", "run_id": "b1"})
            t.battles.append({"battle_id": bid, "attacker": a, "defender": d, "done": True})
            responses += [{"response_id": f"r-{bid}-{s}", "instruction_id": iid, "expert": e,
                           "text": f"answer by {e}" + "!" * k, "sampling": {}, "run_id": "b1"}
                          for s, e in (("a", a), ("d", d))]
            for judge in (e for e in EXPERTS if e not in (a, d)):
                p_a = STRENGTH[a] / (STRENGTH[a] + STRENGTH[d])
                x = rng.random()
                verdict = ("invalid" if x < 0.08 else "tie" if x < 0.2 else
                           "attacker" if rng.random() < p_a else "defender")
                shown = rng.choice(("attacker_first", "defender_first"))
                vote = {"battle_id": bid, "judge": judge, "shown_order": shown, "raw_verdict": _raw(verdict, shown),
                        "verdict": verdict}
                t.votes.append(vote)
                votes.append({"vote_id": f"v-{bid}-{judge}", **vote, "raw_text": f"[[{vote['raw_verdict']}]]",
                              "run_id": "b1"})
        # two planned battles never fought: they count for the balance, not for the ratings
        battles += [{"battle_id": f"p{k}", "instruction_id": f"pi{k}", "attacker": "alpha", "defender": "delta",
                     "battle_order": 100 + k, "status": "planned", "run_id": "b2"} for k in range(2)]
        t.battles += [{"battle_id": f"p{k}", "attacker": "alpha", "defender": "delta", "done": False} for k in range(2)]
        store.upsert("battles", battles, key=["battle_id"])
        store.upsert("responses", responses, key=["response_id"])
        store.upsert("votes", votes, key=["vote_id"])
        store.update("battles", "battle_id", [{"battle_id": f"b{k:02d}", "status": "done"} for k in range(12)])
        rate_and_select_gold(config, store, "rate-1")
        store.update("battles", "battle_id", [{"battle_id": f"b{k:02d}", "status": "done"} for k in range(12, 24)])
        rate_and_select_gold(config, store, "rate-2")

        # one retrain: a snapshot, a training run, the base model and the trained one evaluated
        store.upsert("snapshots", [{"snapshot_id": "snap-1", "uri": "s3://b/snapshots/snap-1", "manifest_sha256":
                                    "f" * 64, "n_examples": 18, "config_hash": "c" * 64,
                                    "rating_version": "v", "created_at": "2026-11-21 00:00:00"}],
                     key=["snapshot_id"])
        store.upsert("training_runs", [{"training_run_id": "run-1", "snapshot_id": "snap-1",
                                        "base_model": "tiny", "config": {"lr": 1e-5}, "status": "done",
                                        "started_at": "2026-11-21 01:00:00"}], key=["training_run_id"])
        t.evals = [{"model_ref": m, "benchmark": b, "pass_at_1": p, "evaluated_at": at}
                   for m, at, ps in (("base", "2026-11-21 00:30:00", (0.25, 0.30)),
                                     ("run-1", "2026-11-21 02:00:00", (0.35, 0.40)))
                   for b, p in zip(("humaneval", "mbpp"), ps)]
        store.upsert("eval_results", [{"eval_id": f"e-{e['model_ref']}-{e['benchmark']}", **e, "n_problems": 20,
                                       "data_sha256": "d" * 64, "harness_version": "1"} for e in t.evals],
                     key=["eval_id"])
    return t
