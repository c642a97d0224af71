"""Run inside a stack container (its python, its settings): what the rating store and the object store hold after
a cycle, as one JSON object on stdout. The stack test asserts on it: nothing lost (every planned job has a result,
every result was ingested, no battle left open, nothing quarantined) and nothing duplicated (one response per
instruction, expert and seed, one vote per battle, judge and order, one battle per instruction and pair, one gold
answer per instruction)."""

from __future__ import annotations

import json
import sys

from warriorflow.config import load_config
from warriorflow.store.objects import open_objects
from warriorflow.store.rating_store import RatingStore

config = load_config(sys.argv[1] if len(sys.argv) > 1 else None)
objects = open_objects(config)
keys = list(objects.list("runs/"))
inputs = [k for k in keys if "/jobs/" in k and "/in/" in k and k.endswith(".json")]
outputs = {k for k in keys if "/jobs/" in k and "/out/" in k and k.endswith(".jsonl")}


def out_for(in_key: str) -> str:
    head, name = in_key.rsplit("/in/", 1)
    return f"{head}/out/{name.removesuffix('.json')}.jsonl"


with RatingStore(config.duckdb_path, read_only=True) as store:
    q = store.con.execute

    def one(sql: str) -> int:
        return int(q(sql).fetchone()[0])

    ingested = {r[0] for r in q("SELECT uri FROM ingested_files").fetchall()}
    report = {
        "job_inputs": len(inputs),
        "job_outputs": len(outputs),
        "jobs_without_result": sorted(k for k in inputs if out_for(k) not in outputs),
        "results_not_ingested": sorted(k for k in outputs if objects.uri(k) not in ingested and k not in ingested),
        "quarantined": [r[0] for r in q("SELECT batch_uri FROM quarantine").fetchall()],
        "instructions": one("SELECT count(*) FROM instructions"),
        "selected": one("SELECT count(*) FROM instruction_selections"),
        "responses": one("SELECT count(*) FROM responses"),
        "battles": one("SELECT count(*) FROM battles"),
        "battles_open": one("SELECT count(*) FROM battles WHERE status = 'planned'"),
        "votes": one("SELECT count(*) FROM votes"),
        "gold": one("SELECT count(*) FROM gold_selections"),
        "snapshots": [dict(zip(("snapshot_id", "uri", "n_examples"), r))
                      for r in q("SELECT snapshot_id, uri, n_examples FROM snapshots ORDER BY created_at").fetchall()],
        "training_runs": [dict(zip(("run_id", "status"), r))
                          for r in q("SELECT training_run_id, status FROM training_runs "
                                     "ORDER BY training_run_id").fetchall()],
        "duplicates": {
            "responses": one("SELECT count(*) FROM (SELECT instruction_id, expert, seed FROM responses "
                             "GROUP BY ALL HAVING count(*) > 1)"),
            "battles": one("SELECT count(*) FROM (SELECT instruction_id, attacker, defender FROM battles "
                           "GROUP BY ALL HAVING count(*) > 1)"),
            "votes": one("SELECT count(*) FROM (SELECT battle_id, judge, shown_order FROM votes "
                         "GROUP BY ALL HAVING count(*) > 1)"),
            "gold": one("SELECT count(*) FROM (SELECT instruction_id FROM gold_selections "
                        "GROUP BY ALL HAVING count(*) > 1)"),
        },
    }
    for snap in report["snapshots"]:
        manifest = snap["uri"].rstrip("/") + "/manifest.json"
        root = objects.uri("").rstrip("/") + "/"
        snap["manifest_in_object_store"] = manifest.startswith(root) and objects.exists(manifest[len(root):])
print(json.dumps(report, sort_keys=True))
